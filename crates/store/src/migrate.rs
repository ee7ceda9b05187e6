//! Forward-only schema migrations: numbered `.sql` files from `migrations/`,
//! applied in order in one transaction; the version lives in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::{Result, StoreError};

/// (version, name, SQL) of every migration, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_initial.sql",
        include_str!("../../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "0002_first_chunk_in_row.sql",
        include_str!("../../../migrations/0002_first_chunk_in_row.sql"),
    ),
    (
        3,
        "0003_payload_bytes.sql",
        include_str!("../../../migrations/0003_payload_bytes.sql"),
    ),
    (
        4,
        "0004_file_lifecycle.sql",
        include_str!("../../../migrations/0004_file_lifecycle.sql"),
    ),
    (
        5,
        "0005_forgotten_files.sql",
        include_str!("../../../migrations/0005_forgotten_files.sql"),
    ),
    (
        6,
        "0006_sensor_and_exports.sql",
        include_str!("../../../migrations/0006_sensor_and_exports.sql"),
    ),
    (
        7,
        "0007_files_clocks_orientation.sql",
        include_str!("../../../migrations/0007_files_clocks_orientation.sql"),
    ),
    (
        8,
        "0008_object_sources.sql",
        include_str!("../../../migrations/0008_object_sources.sql"),
    ),
];

/// Secondary indexes, built after bulk loads (see the file).
pub const INDEXES: &str = include_str!("../../../migrations/indexes.sql");

/// The statements of `INDEXES` (one per line).
pub(crate) fn index_statements() -> impl Iterator<Item = &'static str> {
    INDEXES.lines().filter(|l| l.starts_with("CREATE INDEX"))
}

/// Names of the indexes `INDEXES` creates.
pub(crate) fn index_names() -> impl Iterator<Item = &'static str> {
    index_statements().filter_map(|l| {
        l.strip_prefix("CREATE INDEX IF NOT EXISTS ")?
            .split_whitespace()
            .next()
    })
}

/// Whether the database has any schema object (a new or empty file has none).
pub(crate) fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema)", [], |r| {
        r.get(0)
    })
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// A read-only store needs exactly the current schema.
pub(crate) fn check_version(found: i64) -> Result<()> {
    match found {
        0 => Err(StoreError::NotAnIndex),
        v if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            found: v,
            known: SCHEMA_VERSION,
        }),
        v if v < SCHEMA_VERSION => Err(StoreError::OlderSchema {
            found: v,
            known: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // An empty file is fine; a database with other tables is not ours.
    if found == 0 && has_tables(conn)? {
        return Err(StoreError::NotAnIndex);
    }
    apply(conn, found, SCHEMA_VERSION)
}

/// Applies migrations after `from` up to `to` in one transaction: a failure
/// leaves the database as it was.
pub(crate) fn apply(conn: &Connection, from: i64, to: i64) -> Result<()> {
    // A migration that rebuilds a table (SQLite's way to change a
    // constraint) drops the old one: foreign keys are off meanwhile (they
    // cannot change inside a transaction) and checked before the commit.
    let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let r = apply_steps(conn, from, to);
    conn.pragma_update(None, "foreign_keys", fk)?;
    r
}

fn apply_steps(conn: &Connection, from: i64, to: i64) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for &(version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 > from && m.0 <= to) {
        let step = conn
            .execute_batch(sql)
            .and_then(|()| fill(conn, version))
            .and_then(|()| conn.pragma_update(None, "user_version", version));
        if let Err(source) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Migration { version, source });
        }
    }
    let broken: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(StoreError::Damaged(format!(
            "migration to schema version {to} would leave {broken} rows without their parent"
        )));
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// What a migration's SQL cannot do itself: rows computed from the position
/// blobs, which only Rust decodes (version 7: `file_flows`, `traffic` and `tallies`).
fn fill(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    if version != 7 {
        return Ok(());
    }
    let mut read = conn.prepare("SELECT flow_id, data FROM flow_chunks")?;
    let mut pairs: Vec<(u32, u64)> = Vec::new();
    let mut rows = read.query([])?;
    let mut positions = Vec::new();
    let mut files: Vec<u32> = Vec::new();
    let mut traffic = crate::Traffic::default();
    while let Some(row) = rows.next()? {
        let flow_id: i64 = row.get(0)?;
        positions.clear();
        pcapidx_positions::decode_into(row.get_ref(1)?.as_blob()?, &mut positions)
            .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
        files.clear();
        for p in &positions {
            if !files.contains(&p.file_id) {
                files.push(p.file_id);
            }
            traffic.add(p.ts_ns, p.orig_len);
        }
        pairs.extend(files.iter().map(|&f| (f, flow_id as u64)));
    }
    drop(rows);
    drop(read);
    let plain = |e: crate::StoreError| match e {
        crate::StoreError::Sqlite(e) => e,
        other => rusqlite::Error::ModuleError(other.to_string()),
    };
    crate::write::save_file_flows(conn, &mut pairs).map_err(plain)?;
    traffic.save(conn).map_err(plain)?;
    crate::tallies::recompute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql") && n.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        names.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.1).collect();
        assert_eq!(names, listed);
        assert_eq!(
            index_names().count(),
            INDEXES.matches("CREATE INDEX").count()
        );
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0, i as i64 + 1);
            assert!(m.1.starts_with(&format!("{:04}_", m.0)));
        }
    }

    #[test]
    fn upgrades_from_every_earlier_version_and_refuses_newer() {
        for from in 0..SCHEMA_VERSION {
            let conn = Connection::open_in_memory().unwrap();
            apply(&conn, 0, from).unwrap();
            migrate(&conn).unwrap();
            let v: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, SCHEMA_VERSION);
        }
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = migrate(&conn).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{e}"
        );
    }

    #[test]
    fn a_failed_migration_leaves_the_database_as_it_was() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE tracker_state (x)")
            .unwrap();
        // Migration 1 creates four tables, then fails on `tracker_state`.
        assert!(matches!(
            apply(&conn, 0, 1),
            Err(StoreError::Migration { version: 1, .. })
        ));
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(tables, ["tracker_state"]);
    }

    #[test]
    fn a_foreign_database_is_not_an_index() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE notes (t TEXT)").unwrap();
        assert!(matches!(migrate(&conn), Err(StoreError::NotAnIndex)));
    }
}
