//! `pcapidx summary`: the overview queries of the store, printed for people
//! or as one JSON object for scripts.
use std::io::{self, Write};

use anyhow::{Context, Result};
use pcapidx_store::Store;

use crate::cli::{Format, SummaryFormat};
use crate::output::{RowPrinter, json, text};

pub fn print(store: &Store, top: u32, format: SummaryFormat) -> Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let index = store.path().display().to_string();
    let mut doc = serde_json::Map::new();
    doc.insert("index".into(), index.clone().into());
    if format == SummaryFormat::Text {
        writeln!(out, "Index: {index}")?;
    }
    for (s, t) in store.summary(top).context("summary")? {
        match format {
            SummaryFormat::Json => {
                let objects = t.rows.iter().map(|r| {
                    let obj: serde_json::Map<String, serde_json::Value> =
                        t.columns.iter().cloned().zip(r.iter().map(json)).collect();
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
                            let label = format!("{}:", c.replace('_', " "));
                            writeln!(out, "  {label:<width$} {}", text(v))?;
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
