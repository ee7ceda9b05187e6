//! `pcapidx summary`: the overview queries of the store, printed for people
//! or as one JSON object for scripts.
use std::io::{self, Write};

use anyhow::{Context, Result};
use pcapidx_output::{Format, RowPrinter, json_cell, text};
use pcapidx_store::{LIST_COLUMNS, Store, TimeWindow, Value};

use crate::cli::SummaryFormat;

pub fn print(store: &Store, top: u32, format: SummaryFormat, window: TimeWindow) -> Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    if format == SummaryFormat::Json {
        let doc = pcapidx_output::summary_json(store, top, window).context("summary")?;
        writeln!(out, "{doc}")?;
        out.flush()?;
        return Ok(());
    }
    writeln!(out, "Index: {}", store.path().display())?;
    for (s, t) in store.summary(top, window).context("summary")? {
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
    out.flush()?;
    Ok(())
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
