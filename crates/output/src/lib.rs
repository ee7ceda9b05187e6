//! Printing query results as a table, CSV, a JSON array or JSON lines,
//! and the summary as one JSON document. Only this layer knows about these
//! formats; the command line and the server both print through it, so a
//! script gets the same bytes from either.
#![forbid(unsafe_code)]

pub mod follow;
use std::io::{self, Write};

use pcapidx_store::{LIST_COLUMNS, Store, StoreError, TimeWindow, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
}

pub struct RowPrinter<W: Write> {
    out: W,
    format: Format,
    columns: Vec<String>,
    /// Table output is aligned on its first [`TABLE_SAMPLE`] rows, kept
    /// here until then; after them, rows print as they come.
    table: Vec<Vec<String>>,
    /// The table's column widths, once the sample is printed.
    widths: Option<Vec<usize>>,
    /// A table of no rows prints nothing (not even its header).
    quiet_when_empty: bool,
    /// Per column: every value so far is a number (numbers align right).
    numeric: Vec<bool>,
    /// Table output narrower than this (the terminal's width), cells cut with `…`.
    max_width: Option<usize>,
    rows: u64,
    /// JSON: each column's `"name":`, escaped once (None when two columns
    /// share a name: then an object is built, and the last one's value wins).
    json_keys: Option<Vec<String>>,
    /// The line being written (kept for its capacity).
    line: Vec<u8>,
}

/// Rows a table's column widths are fitted to: enough to see the shape of
/// the data, few enough that the first rows show at once and memory stays
/// flat whatever the result's size. A later, wider cell is cut on a
/// terminal and overflows its column elsewhere (nothing is lost in a pipe).
const TABLE_SAMPLE: usize = 1000;

/// Columns are not cut below this many characters to fit a terminal.
const MIN_CUT_WIDTH: usize = 6;

pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

pub fn json(v: &Value) -> serde_json::Value {
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
            widths: None,
            quiet_when_empty: false,
            numeric: Vec::new(),
            max_width: None,
            rows: 0,
            json_keys: None,
            line: Vec::new(),
        }
    }

    /// Fits table output into `width` characters (a terminal's).
    pub fn fit_to(mut self, width: Option<usize>) -> Self {
        self.max_width = width;
        self
    }

    /// An empty table prints nothing, not a lone header (the caller says why).
    pub fn quiet_when_empty(mut self) -> Self {
        self.quiet_when_empty = true;
        self
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.columns = names.to_vec();
        self.numeric = vec![true; names.len()];
        let distinct = names.iter().collect::<std::collections::HashSet<_>>().len();
        self.json_keys = (distinct == names.len()).then(|| {
            names
                .iter()
                .map(|n| format!("{}:", serde_json::Value::from(n.as_str())))
                .collect()
        });
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
                let cells: Vec<String> = values.iter().map(text).collect();
                if let Some(widths) = &self.widths {
                    let l = line(
                        &cells,
                        widths,
                        &self.numeric,
                        false,
                        self.max_width.is_some(),
                    );
                    return writeln!(self.out, "{l}");
                }
                for (n, v) in self.numeric.iter_mut().zip(values) {
                    *n &= match v {
                        Value::Null | Value::Integer(_) | Value::Real(_) => true,
                        // Numbers formatted by the query (`printf('%.3f', x)`),
                        // not addresses (an IPv4 address without a port is all
                        // digits and dots, and aligns with the others left).
                        Value::Text(t) => t.parse::<f64>().is_ok_and(f64::is_finite),
                        Value::Blob(_) => false,
                    };
                }
                self.table.push(cells);
                if self.table.len() >= TABLE_SAMPLE {
                    self.print_sample()?;
                }
                Ok(())
            }
            Format::Csv => {
                // Written straight into one line: millions of rows stream.
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    match v {
                        Value::Null => {}
                        Value::Integer(n) => write!(line, "{n}")?,
                        Value::Text(t) if !t.contains([',', '"', '\n', '\r']) => {
                            line.extend_from_slice(t.as_bytes())
                        }
                        v => line.extend_from_slice(csv_field(&text(v)).as_bytes()),
                    }
                }
                line.push(b'\n');
                let r = self.out.write_all(&line);
                self.line = line;
                r
            }
            Format::Json | Format::Jsonl if self.json_keys.is_some() => {
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                if self.format == Format::Json {
                    line.extend_from_slice(if self.rows == 1 { b"\n" } else { b",\n" });
                }
                line.push(b'{');
                let keys = self.json_keys.as_deref().unwrap_or_default();
                for (i, (k, v)) in keys.iter().zip(values).enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    line.extend_from_slice(k.as_bytes());
                    match v {
                        Value::Null => line.extend_from_slice(b"null"),
                        Value::Integer(n) => write!(line, "{n}")?,
                        Value::Text(t) => serde_json::to_writer(&mut line, t.as_str())?,
                        v => serde_json::to_writer(&mut line, &json(v))?,
                    }
                }
                line.push(b'}');
                if self.format == Format::Jsonl {
                    line.push(b'\n');
                }
                let r = self.out.write_all(&line);
                self.line = line;
                r
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

    /// Fits the widths to the rows so far and prints them with the header.
    fn print_sample(&mut self) -> io::Result<()> {
        let mut widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.table
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if let Some(max) = self.max_width {
            fit(&mut widths, max);
        }
        let cut = self.max_width.is_some();
        writeln!(
            self.out,
            "{}",
            line(&self.columns, &widths, &self.numeric, true, cut)
        )?;
        for r in std::mem::take(&mut self.table) {
            writeln!(self.out, "{}", line(&r, &widths, &self.numeric, false, cut))?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}]", if self.rows > 0 { "\n" } else { "" })?,
            Format::Table
                if self.widths.is_none() && !(self.rows == 0 && self.quiet_when_empty) =>
            {
                self.print_sample()?;
            }
            _ => {}
        }
        self.out.flush()
    }
}

/// One table line: numbers right-aligned (not in the header), cells wider
/// than their column cut with `…` when `cut` (a terminal), else left whole.
fn line(
    cells: &[String],
    widths: &[usize],
    numeric: &[bool],
    header: bool,
    cut_cells: bool,
) -> String {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .zip(numeric)
        .map(|((c, &w), &num)| {
            let c = if cut_cells { cut(c, w) } else { c.into() };
            if num && !header {
                format!("{c:>w$}")
            } else {
                format!("{c:<w$}")
            }
        })
        .collect();
    parts.join("  ").trim_end().to_string()
}

/// Narrows the widest columns, one character at a time, until the row fits
/// in `max` characters; when every column is down to [`MIN_CUT_WIDTH`] and
/// it still does not, leaves out columns from the right (width 0: not
/// printed), keeping at least the first.
fn fit(widths: &mut Vec<usize>, max: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > max {
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(i, w)| (**w, *i)) else {
            return;
        };
        if w <= MIN_CUT_WIDTH {
            break;
        }
        widths[i] = w - 1;
    }
    while widths.len() > 1 && total(widths) > max {
        widths.pop();
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

/// The summary as `pcapidx summary --format json` prints it: one object,
/// a member per section (a single-row section as an object, the others as
/// arrays of objects).
pub fn summary_json(
    store: &Store,
    top: u32,
    window: TimeWindow,
) -> Result<serde_json::Value, StoreError> {
    let mut doc = serde_json::Map::new();
    doc.insert("index".into(), store.path().display().to_string().into());
    for (s, t) in store.summary(top, window)? {
        let objects = t.rows.iter().map(|r| {
            let obj: serde_json::Map<String, serde_json::Value> = t
                .columns
                .iter()
                .zip(r)
                .map(|(c, v)| (c.clone(), json_cell(c, v)))
                .collect();
            serde_json::Value::Object(obj)
        });
        let value = if s.single {
            objects.into_iter().next().unwrap_or_default()
        } else {
            serde_json::Value::Array(objects.collect())
        };
        doc.insert(s.key.into(), value);
    }
    Ok(serde_json::Value::Object(doc))
}

/// A summary value for JSON: lists (see `LIST_COLUMNS`) as arrays.
pub fn json_cell(column: &str, v: &Value) -> serde_json::Value {
    match v {
        Value::Text(t) if LIST_COLUMNS.contains(&column) => {
            serde_json::from_str(t).unwrap_or_else(|_| json(v))
        }
        _ => json(v),
    }
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

    #[test]
    fn tables_stream_after_their_sample() {
        let mut p = RowPrinter::new(Vec::new(), Format::Table);
        p.columns(&["Id".into(), "Name".into()]).unwrap();
        for i in 0..TABLE_SAMPLE {
            p.row(&[Value::Integer(i as i64), Value::Text("ab".into())])
                .unwrap();
        }
        // The sample is out: the header and every row so far.
        assert_eq!(
            p.out.iter().filter(|&&b| b == b'\n').count(),
            TABLE_SAMPLE + 1
        );
        assert!(p.table.is_empty());
        p.row(&[Value::Integer(1), Value::Text("a wider name".into())])
            .unwrap();
        let text = String::from_utf8(p.out.clone()).unwrap();
        // Piped: the wider cell is whole, past its column.
        assert!(text.ends_with("  1  a wider name\n"), "{text}");
        for (quiet, want) in [(true, ""), (false, "Id\n")] {
            let mut out = Vec::new();
            let mut p = RowPrinter::new(&mut out, Format::Table);
            if quiet {
                p = p.quiet_when_empty();
            }
            p.columns(&["Id".into()]).unwrap();
            p.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn narrow_terminals_lose_columns_from_the_right() {
        let names: Vec<String> = (0..11).map(|i| format!("Column{i}")).collect();
        let mut out = Vec::new();
        let mut p = RowPrinter::new(&mut out, Format::Table).fit_to(Some(50));
        p.columns(&names).unwrap();
        let row: Vec<Value> = (0..11)
            .map(|i| Value::Text(format!("10.0.0.{i}")))
            .collect();
        p.row(&row).unwrap();
        p.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 50, "{line:?}");
        }
        assert_eq!(
            text.lines().next().unwrap().matches("Colum…").count(),
            6,
            "{text}"
        );
        // Addresses are text: left-aligned, like the header.
        assert!(
            text.lines().nth(1).unwrap().starts_with("10.0.… "),
            "{text}"
        );
    }
}
