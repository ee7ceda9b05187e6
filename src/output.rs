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
    /// Per column: every value so far is a number (numbers align right).
    numeric: Vec<bool>,
    /// Table output narrower than this (the terminal's width), cells cut with `…`.
    max_width: Option<usize>,
    rows: u64,
}

/// Columns are not cut below this many characters to fit a terminal.
const MIN_CUT_WIDTH: usize = 6;

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

pub(crate) fn json(v: &Value) -> serde_json::Value {
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
            numeric: Vec::new(),
            max_width: None,
            rows: 0,
        }
    }

    /// Fits table output into `width` characters (a terminal's).
    pub fn fit_to(mut self, width: Option<usize>) -> Self {
        self.max_width = width;
        self
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.columns = names.to_vec();
        self.numeric = vec![true; names.len()];
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
                for (n, v) in self.numeric.iter_mut().zip(values) {
                    *n &= match v {
                        Value::Null | Value::Integer(_) | Value::Real(_) => true,
                        // Numbers formatted by the query (`printf('%.3f', x)`).
                        Value::Text(t) => {
                            !t.is_empty()
                                && t.bytes()
                                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                        }
                        Value::Blob(_) => false,
                    };
                }
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
                let mut widths: Vec<usize> = (0..self.columns.len())
                    .map(|i| {
                        self.table
                            .iter()
                            .map(|r| r[i].chars().count())
                            .chain([self.columns[i].chars().count()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                if let Some(max) = self.max_width {
                    fit(&mut widths, max);
                }
                let numeric = &self.numeric;
                let line = |cells: &[String], header: bool| -> String {
                    let parts: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .zip(numeric)
                        .map(|((c, &w), &num)| {
                            let c = cut(c, w);
                            if num && !header {
                                format!("{c:>w$}")
                            } else {
                                format!("{c:<w$}")
                            }
                        })
                        .collect();
                    parts.join("  ").trim_end().to_string()
                };
                writeln!(self.out, "{}", line(&self.columns, true))?;
                for r in &self.table {
                    writeln!(self.out, "{}", line(r, false))?;
                }
            }
            _ => {}
        }
        self.out.flush()
    }
}

/// Narrows the widest columns, one character at a time, until the row fits
/// in `max` characters or every column is down to [`MIN_CUT_WIDTH`].
fn fit(widths: &mut [usize], max: usize) {
    let gaps = 2 * widths.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > max {
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(i, w)| (**w, *i)) else {
            return;
        };
        if w <= MIN_CUT_WIDTH {
            return;
        }
        widths[i] = w - 1;
    }
}

/// A cell cut to `w` characters, its end replaced by `…` when cut.
fn cut(s: &str, w: usize) -> std::borrow::Cow<'_, str> {
    if s.chars().count() <= w {
        return s.into();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(width: Option<usize>, rows: &[Vec<Value>]) -> String {
        let mut out = Vec::new();
        let mut p = RowPrinter::new(&mut out, Format::Table).fit_to(width);
        p.columns(&["Id".into(), "Src".into(), "Bytes".into()])
            .unwrap();
        for r in rows {
            p.row(r).unwrap();
        }
        p.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_align_numbers_and_fit_the_terminal() {
        let rows = vec![
            vec![
                Value::Integer(7),
                Value::Text("[2001:db8::1]:443".into()),
                Value::Integer(1500),
            ],
            vec![
                Value::Integer(12),
                Value::Text("10.0.0.1:53".into()),
                Value::Null,
            ],
        ];
        let wide = table(None, &rows);
        assert_eq!(
            wide,
            "Id  Src                Bytes\n 7  [2001:db8::1]:443   1500\n12  10.0.0.1:53\n"
        );
        let narrow = table(Some(20), &rows);
        for line in narrow.lines() {
            assert!(line.chars().count() <= 20, "{line:?}");
        }
        // 20 columns leave Src 9: eight characters and the ellipsis.
        assert!(narrow.contains(" [2001:db…   1500"), "{narrow}");
    }
}
