//! Printing query results as a table, CSV, a JSON array or JSON lines.
//! Only this layer knows about these formats.
use std::io::{self, Write};

use pcapidx_store::Value;

use crate::cli::Format;

pub struct RowPrinter<W: Write> {
    out: W,
    format: Format,
    columns: Vec<String>,
    /// Table output is aligned, so its rows are kept until the end.
    table: Vec<Vec<String>>,
    rows: u64,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(s) => s.as_str().into(),
        Value::Blob(_) => text(v).into(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl<W: Write> RowPrinter<W> {
    pub fn new(out: W, format: Format) -> Self {
        RowPrinter {
            out,
            format,
            columns: Vec::new(),
            table: Vec::new(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.columns = names.to_vec();
        match self.format {
            Format::Csv => {
                let line: Vec<String> = names.iter().map(|n| csv_field(n)).collect();
                writeln!(self.out, "{}", line.join(","))
            }
            Format::Json => write!(self.out, "["),
            _ => Ok(()),
        }
    }

    pub fn row(&mut self, values: &[Value]) -> io::Result<()> {
        self.rows += 1;
        match self.format {
            Format::Table => {
                self.table.push(values.iter().map(text).collect());
                Ok(())
            }
            Format::Csv => {
                let line: Vec<String> = values.iter().map(|v| csv_field(&text(v))).collect();
                writeln!(self.out, "{}", line.join(","))
            }
            Format::Json | Format::Jsonl => {
                let mut obj = serde_json::Map::with_capacity(values.len());
                for (c, v) in self.columns.iter().zip(values) {
                    obj.insert(c.clone(), json(v));
                }
                let s = serde_json::Value::Object(obj).to_string();
                if self.format == Format::Json {
                    let sep = if self.rows == 1 { "\n" } else { ",\n" };
                    write!(self.out, "{sep}{s}")
                } else {
                    writeln!(self.out, "{s}")
                }
            }
        }
    }

    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}]", if self.rows > 0 { "\n" } else { "" })?,
            Format::Table => {
                let widths: Vec<usize> = (0..self.columns.len())
                    .map(|i| {
                        self.table
                            .iter()
                            .map(|r| r[i].chars().count())
                            .chain([self.columns[i].chars().count()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: &[String]| -> String {
                    let parts: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    parts.join("  ").trim_end().to_string()
                };
                writeln!(self.out, "{}", line(&self.columns))?;
                for r in &self.table {
                    writeln!(self.out, "{}", line(r))?;
                }
            }
            _ => {}
        }
        self.out.flush()
    }
}
