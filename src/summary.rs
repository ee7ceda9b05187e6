//! `pcapidx summary`: the overview queries of the store, printed for people
//! or as one JSON object for scripts.
use std::io::{self, Write};

use anyhow::{Context, Result};
use pcapidx_store::{LIST_COLUMNS, Store, TimeWindow, Value};

use crate::cli::{Format, SummaryFormat};
use crate::output::{RowPrinter, json, text};

pub fn print(store: &Store, top: u32, format: SummaryFormat, window: TimeWindow) -> Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let index = store.path().display().to_string();
    let mut doc = serde_json::Map::new();
    doc.insert("index".into(), index.clone().into());
    if format == SummaryFormat::Text {
        writeln!(out, "Index: {index}")?;
    }
    for (s, t) in store.summary(top, window).context("summary")? {
        match format {
            SummaryFormat::Json => {
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
            SummaryFormat::Text => {
                writeln!(out, "\n{}", s.title)?;
                if s.single {
                    let width = t.columns.iter().map(String::len).max().unwrap_or(0) + 1;
                    for row in &t.rows {
                        for (c, v) in t.columns.iter().zip(row) {
                            // The window is named only when there is one.
                            if c.starts_with("window_") && *v == Value::Null {
                                continue;
                            }
                            let (label, value) = text_cell(c, v);
                            let label = format!("{label}:");
                            writeln!(out, "  {label:<width$} {value}")?;
                        }
                    }
                } else if t.rows.is_empty() {
                    writeln!(out, "  (none)")?;
                } else {
                    let mut buf = Vec::new();
                    let width = crate::terminal_width().map(|w| w.saturating_sub(2));
                    let mut p = RowPrinter::new(&mut buf, Format::Table).fit_to(width);
                    p.columns(&t.columns)?;
                    for r in &t.rows {
                        p.row(r)?;
                    }
                    p.finish()?;
                    for line in String::from_utf8_lossy(&buf).lines() {
                        writeln!(out, "  {line}")?;
                    }
                }
            }
        }
    }
    if format == SummaryFormat::Json {
        writeln!(out, "{}", serde_json::Value::Object(doc))?;
    }
    out.flush()?;
    Ok(())
}

/// A summary value for JSON: lists (see `LIST_COLUMNS`) as arrays.
fn json_cell(column: &str, v: &Value) -> serde_json::Value {
    match v {
        Value::Text(t) if LIST_COLUMNS.contains(&column) => {
            serde_json::from_str(t).unwrap_or_else(|_| json(v))
        }
        _ => json(v),
    }
}

/// A summary value's label and text for people: lists joined by commas,
/// a span of seconds as days, hours, minutes and seconds.
fn text_cell(column: &str, v: &Value) -> (String, String) {
    match (column, v) {
        ("span_seconds", Value::Real(s)) => ("span".into(), human_duration(*s)),
        ("span_seconds", Value::Integer(s)) => ("span".into(), human_duration(*s as f64)),
        (c, _) if LIST_COLUMNS.contains(&c) => {
            let items: Vec<String> = match json_cell(c, v) {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect(),
                _ => vec![text(v)],
            };
            (c.replace('_', " "), items.join(", "))
        }
        (c, v) => (c.replace('_', " "), text(v)),
    }
}

/// 97.02 s as "1 min 37.020 s", 90061.5 s as "1 d 1 h 1 min 1.500 s".
fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return format!("{seconds} s");
    }
    let whole = seconds.trunc() as u64;
    let (d, h, m) = (whole / 86_400, whole / 3600 % 24, whole / 60 % 60);
    let s = seconds - (whole - whole % 60) as f64;
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} d"));
    }
    if d > 0 || h > 0 {
        parts.push(format!("{h} h"));
    }
    if d > 0 || h > 0 || m > 0 {
        parts.push(format!("{m} min"));
    }
    parts.push(format!("{s:.3} s"));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_time() {
        assert_eq!(human_duration(0.25), "0.250 s");
        assert_eq!(human_duration(97.02), "1 min 37.020 s");
        assert_eq!(human_duration(90_061.5), "1 d 1 h 1 min 1.500 s");
        assert_eq!(human_duration(3600.0), "1 h 0 min 0.000 s");
    }
}
