//! `cargo xtask oui DIR`: rebuilds the MAC vendor table the binary ships
//! from IEEE's public registry listings (MA-L, MA-M, MA-S and IAB), as
//! Debian's `ieee-data` package installs them under /usr/share/ieee-data.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Where the table lives, relative to the workspace root.
pub const TABLE: &str = "crates/oui/data/ieee-oui.tsv";

const SOURCES: &[&str] = &["oui.csv", "mam.csv", "oui36.csv", "iab.csv"];

pub fn regenerate(dir: &Path, out: &Path) -> Result<()> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for name in SOURCES {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in csv_records(&text).into_iter().enumerate().skip(1) {
            let [_, assignment, org, ..] = line.as_slice() else {
                bail!("{}: record {} has too few fields", path.display(), i + 1);
            };
            let prefix = assignment.trim().to_ascii_uppercase();
            if !matches!(prefix.len(), 6 | 7 | 9) || !prefix.chars().all(|c| c.is_ascii_hexdigit())
            {
                bail!(
                    "{}: record {}: bad assignment {prefix:?}",
                    path.display(),
                    i + 1
                );
            }
            let org = org.split_whitespace().collect::<Vec<_>>().join(" ");
            rows.push((prefix, org));
        }
    }
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0);
    let mut text = String::from(
        "# MAC address blocks and their registrants, from the IEEE Registration Authority's\n\
         # public listings (MA-L 24-bit, MA-M 28-bit, MA-S/IAB 36-bit prefixes).\n\
         # Regenerate with `cargo xtask oui /usr/share/ieee-data`.\n",
    );
    // Debian's ieee-data records when its copy was fetched.
    if let Ok(when) = std::fs::read_to_string(dir.join(".lastupdate")) {
        let date = when
            .trim()
            .parse::<i64>()
            .map_or(when.trim().to_string(), |s| {
                // The date part of the RFC 3339 time.
                pcapidx_store::ts_iso(s.saturating_mul(1_000_000_000))[..10].to_string()
            });
        writeln!(text, "# Listings as of {date}.")?;
    }
    for (prefix, org) in &rows {
        writeln!(text, "{prefix}\t{org}")?;
    }
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} prefixes to {}", rows.len(), out.display());
    Ok(())
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields() {
        let r = csv_records("a,b\nMA-L,F4BD9E,\"Cisco Systems, Inc\",\"x \"\"y\"\"\"\n");
        assert_eq!(r[1], ["MA-L", "F4BD9E", "Cisco Systems, Inc", "x \"y\""]);
    }
}
