//! The SQLite index. All SQL lives here and in `migrations/`: the [`Store`]
//! opens the database, sets its pragmas, applies migrations, and offers
//! batched writes ([`Batch`], one transaction each) and typed reads.
//!
//! Invariants:
//! - A database whose schema is newer than this binary is refused, naming
//!   both versions; an older one is migrated in one transaction.
//! - Read-only stores ([`Store::open_read_only`]) cannot write, whatever SQL
//!   they are given; user SQL runs only there.
//! - Parameters are always bound; the only SQL text from outside is a
//!   user's own query or `--where` expression, on a read-only store.
#![deny(unsafe_code)]

mod checkpoint;
mod forget;
mod format;
mod functions;
mod guard;
mod meta;
mod migrate;
mod packets_vtab;
mod read;
mod reports;
mod summary;
mod tallies;
mod timeline;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

pub use forget::Forgotten;
pub use format::{IpKey, civil_from_days, parse_iso, ts_iso};
pub use functions::{check_regexp, parse_cidr};
pub use ipnet::IpNet;
pub use meta::{ExportState, check_sensor_name};
pub use migrate::{MIGRATIONS, SCHEMA_VERSION};
pub use read::{FileRow, FileStatus, FlowEnds, QueryRow};
pub use reports::{
    FLOW_COLUMNS, FLOW_FILTER, FlowQuery, LIST_COLUMNS, Section, TimeWindow, files_sql, flows_sql,
    macs_sql, sort_columns, summary_sections,
};
pub use rusqlite::ErrorCode as SqliteCode;
pub use rusqlite::types::Value;
pub use summary::Table;
pub use timeline::{Bucket, Traffic};
pub use write::Batch;

/// Page cache of a writing connection, in KiB (negative, as SQLite takes it).
const CACHE_SIZE: i64 = -65536;
/// Page cache while building indexes; it also sizes the sorter's runs.
const SORT_CACHE_SIZE: i64 = -2048;
/// A load of at least 1/DEFER_FRACTION of the bytes an index holds runs
/// without its secondary indexes and builds them again at its end. Appending
/// to a 2 GB index (3 GB benchmark run, --jobs 2), keeping them was faster
/// up to 300 MB, even at 500 MB, and 5-20% slower from 700 MB on: each
/// row-by-row update costs a b-tree descent, while a build sorts once.
const DEFER_FRACTION: u64 = 4;

#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite's own message, once: the cause chain stops here, since
    /// rusqlite's error would repeat it with its code number.
    #[error("{}", sqlite_text(.0))]
    Sqlite(rusqlite::Error),
    // The next three leave naming the file to the caller, which says what
    // it was doing with it.
    #[error("there is no such file (run `pcapidx index` first)")]
    Missing,
    #[error("it is not a pcapidx index")]
    NotAnIndex,
    #[error(
        "it holds no index yet: the `pcapidx index` run that created it stopped before its first commit (run it again)"
    )]
    NoIndexYet,
    #[error(
        "the index was written by a newer pcapidx (schema version {found}); this pcapidx knows up to version {known}: upgrade pcapidx"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "the index uses schema version {found} but this pcapidx needs {known}: run `pcapidx index` once to upgrade it"
    )]
    OlderSchema { found: i64, known: i64 },
    #[error("migration to schema version {version} failed")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
    /// An SQL expression given by the user that does not compile.
    #[error("{0}")]
    Expression(String),
    #[error("damaged index: {0}")]
    Damaged(String),
    /// A statement refused on a read-only store, before it ran.
    #[error("{0}")]
    ReadOnly(String),
    /// A name given by the user (a file) that the index does not hold, or
    /// holds several of.
    #[error("{0}")]
    NoSuch(String),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl StoreError {
    /// SQLite's error code, when SQLite said no.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
            _ => None,
        }
    }
}

/// One line for a rusqlite error: SQLite's message (its code's meaning
/// when it gave none), never the message followed by itself again.
fn sqlite_text(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqliteFailure(f, None) => f.to_string(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        e => e.to_string(),
    }
}

/// The first read of a file that is not SQLite fails with NotADatabase:
/// say it is not an index.
fn not_an_index(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            StoreError::NotAnIndex
        }
        e => e.into(),
    }
}

/// A read-only connection and the schema version it reads.
fn open_reader(path: &Path, immutable: bool) -> Result<(Connection, i64)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = if immutable {
        Connection::open_with_flags(file_uri(path, "immutable=1")?, flags)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", "ON")?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(not_an_index)?;
    Ok((conn, version))
}

/// `file:` URI of a path, with a query string: every byte that is not
/// plain ASCII, or that a URI gives a meaning (`?`, `#`, `%`), escaped.
fn file_uri(path: &Path, query: &str) -> Result<String> {
    use std::fmt::Write;
    let abs = std::path::absolute(path).map_err(|e| StoreError::Damaged(e.to_string()))?;
    let mut uri = String::from("file:");
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%') {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    Ok(format!("{uri}?{query}"))
}

/// The index database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    services: write::Services,
    checkpointer: checkpoint::Checkpointer,
}

impl Store {
    /// Opens (creating if needed) an index for writing, migrating it to the
    /// current schema.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        if !migrate::has_tables(&conn).map_err(not_an_index)? {
            // Must precede the first write; larger pages suit the position blobs.
            conn.pragma_update(None, "page_size", 8192)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", CACHE_SIZE)?;
        // Statement journals (REPLACE over several indexes needs them) stay off disk.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The secondary indexes are not built here: if a load was
        // interrupted they are missing, and the next load is faster without
        // them and builds them at its end (`build_indexes`).
        migrate::migrate(&conn)?;
        packets_vtab::register(&conn, path)?;
        functions::register(&conn)?;
        let services = write::Services::load(&conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            services,
            checkpointer: Default::default(),
        })
    }

    /// Opens an existing index read-only: nothing done through it can
    /// change the database.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing);
        }
        let (conn, version) = match open_reader(path, false) {
            // A folder this process cannot write (read-only media, a shared
            // drive, evidence storage) cannot hold the lock files: there
            // nothing can be changing the index either, so it is read as
            // immutable.
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly
                ) =>
            {
                open_reader(path, true)?
            }
            r => r?,
        };
        if version == 0 && !migrate::has_tables(&conn)? {
            return Err(StoreError::NoIndexYet);
        }
        migrate::check_version(version)?;
        packets_vtab::register(&conn, path)?;
        functions::register(&conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            services: write::Services::default(),
            checkpointer: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a batch of writes (one transaction; one at a time).
    pub fn batch(&self) -> Result<Batch<'_>> {
        Batch::begin(&self.conn, &self.services, &self.checkpointer)
    }

    /// From now until [`Store::checkpoint_wal`], commits are folded into
    /// the database file by a thread of their own rather than by the
    /// committing thread (see `checkpoint.rs`); past `wal_limit` bytes the
    /// WAL asks to start over ([`Store::wal_wants_restart`]).
    pub fn checkpoint_in_background(&mut self, wal_limit: u64) -> Result<()> {
        if !self.checkpointer.is_running() {
            self.checkpointer = checkpoint::Checkpointer::start(&self.path, wal_limit)?;
            self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        Ok(())
    }

    /// Has the WAL outgrown the limit given to
    /// [`Store::checkpoint_in_background`] while a background checkpoint
    /// copies it? A transaction begun now would keep it from starting over.
    pub fn wal_wants_restart(&self) -> bool {
        self.checkpointer.pending() && self.file_bytes("-wal") > self.checkpointer.wal_limit()
    }

    /// Size of the database file with `suffix` (0 if there is none).
    fn file_bytes(&self, suffix: &str) -> u64 {
        let mut p = self.path.clone().into_os_string();
        p.push(suffix);
        std::fs::metadata(&p).map_or(0, |m| m.len())
    }

    /// Size on disk of the database and its WAL.
    pub fn disk_bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .map(|s| self.file_bytes(s))
            .iter()
            .sum()
    }

    /// Before a load of `new_bytes` of captures: drops the secondary indexes
    /// when the load is large beside what the index already holds (see
    /// `DEFER_FRACTION`; always into an empty index), and
    /// [`Store::build_indexes`] builds them at the end. (A load that was
    /// interrupted left them missing: the next one also loads without them.)
    pub fn defer_indexes(&self, new_bytes: u64) -> Result<()> {
        let held: i64 = self.conn.query_row(
            "SELECT coalesce(sum(indexed_bytes), 0) FROM files",
            [],
            |r| r.get(0),
        )?;
        if new_bytes > 0 && new_bytes.saturating_mul(DEFER_FRACTION) >= held as u64 {
            let tx = self.conn.unchecked_transaction()?;
            for name in migrate::index_names() {
                tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// Builds any missing secondary index (after a load, or a load that was
    /// interrupted).
    pub fn build_indexes(&self, threads: usize) -> Result<()> {
        // Nothing to build: leave the cache as it is (the settings below
        // would empty it, and `--watch` ends a pass here every second).
        let mut present = self
            .conn
            .prepare_cached("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1")?;
        let mut missing = false;
        for name in migrate::index_names() {
            missing |= !present.exists([name])?;
        }
        if !missing {
            return Ok(());
        }
        // SQLite's sorter may hand sorting and merging runs to helper threads.
        self.conn
            .pragma_update(None, "threads", threads.saturating_sub(1) as i64)?;
        // With temp_store=MEMORY SQLite's sorter allocates every key on its
        // own and never spills; with FILE it packs keys into one buffer
        // (15-20% faster here) and spills a sorted run to a temporary file
        // each time the buffer passes cache_size, then merges the runs. Runs
        // of 2 MiB (the least SQLite takes with 8 KiB pages) sort in the CPU
        // cache: 30-40% faster than one 64 MiB run on 500k flows, and the
        // memory does not grow with the index.
        self.conn.pragma_update(None, "temp_store", "FILE")?;
        self.conn
            .pragma_update(None, "cache_size", SORT_CACHE_SIZE)?;
        // One at a time, so that a background checkpoint copies each while
        // the next one is built.
        let built = migrate::index_statements().try_for_each(|sql| {
            self.conn.execute_batch(sql)?;
            self.checkpointer.wake();
            Ok::<_, StoreError>(())
        });
        self.conn.pragma_update(None, "cache_size", CACHE_SIZE)?;
        self.conn.pragma_update(None, "temp_store", "MEMORY")?;
        built?;
        Ok(())
    }

    /// At the end of a run: leaves the database in rollback-journal mode
    /// when no other connection has it open, so that a copy of the lone
    /// file opens anywhere, a read-only folder included, in any SQLite
    /// client (a WAL database needs its `-shm` file created beside it).
    /// The next writer turns WAL on again. Never fails the run: a reader
    /// holding the database keeps it in WAL, which is fine.
    pub fn leave_wal(&self) {
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let _ = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
        let _ = self.conn.busy_timeout(Duration::from_secs(10));
    }

    /// Folds the WAL back into the database file (after a large load),
    /// after the background checkpoint, if any, has finished.
    pub fn checkpoint_wal(&mut self) -> Result<()> {
        if self.checkpointer.is_running() {
            self.checkpointer.stop()?;
            // SQLite's default.
            self.conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        }
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;
    use pcapidx_flow::{FlowKey, FlowRecord, KeyKind};
    use std::net::IpAddr;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pcapidx-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("i.db")
    }

    /// A UDP flow from `src` to `dst` at `ts` (seconds may be negative).
    fn flow(id: u64, src: &str, dst: &str, ts_ns: i64) -> FlowRecord {
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(a) => {
                let mut v = [0u8; 16];
                v[..4].copy_from_slice(&a.octets());
                (KeyKind::Ip4, v)
            }
            IpAddr::V6(a) => (KeyKind::Ip6, a.octets()),
        };
        let ((kind, a), (_, b)) = (bytes(src.parse().unwrap()), bytes(dst.parse().unwrap()));
        FlowRecord {
            id,
            key: FlowKey {
                kind,
                proto: 17,
                has_ports: true,
                vlan_count: 0,
                vlans: [0; 3],
                ethertype: 0,
                a,
                b,
                a_port: 1000,
                b_port: 53,
            },
            src_is_a: true,
            first_ts_ns: ts_ns,
            last_ts_ns: ts_ns + 1_500_000_000,
            packets: [1, 1],
            bytes: [60, 90],
            tcp_flags: [0, 0],
            src_mac: Some([0x00, 0x1b, 0x21, 0, 0, id as u8]),
            dst_mac: Some([0xff; 6]),
            files: 1,
            icmp: None,
            payload: Some(pcapidx_flow::Payload {
                sent: [18, 48],
                missed: [0, 0],
            }),
            turned: None,
        }
    }

    const EDGE_ADDRESSES: &[&str] = &[
        "0.0.0.0",
        "0.0.0.1",
        "9.255.255.255",
        "10.0.0.0",
        "10.20.255.255",
        "10.255.255.255",
        "11.0.0.0",
        "127.255.255.255",
        "128.0.0.0",
        "192.168.1.1",
        "255.255.255.254",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:10.0.0.1",
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "fe80::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];

    const EDGE_RANGES: &[&str] = &[
        "0.0.0.0/0",
        "10.0.0.0/8",
        "10.20.0.0/16",
        "10.20.255.255/32",
        "10.1.2.3/8",
        "127.255.255.255/1",
        "128.0.0.0/1",
        "255.255.255.255/32",
        "0.0.0.0/32",
        "::/0",
        "::/128",
        "::ffff:0:0/96",
        "2001:db8::/32",
        "2001:db8::/128",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        "fe80::/10",
        "192.168.1.1",
    ];

    #[test]
    fn computed_summary_sections_and_macs_equal_their_queries() {
        let path = temp_db("summary");
        let store = Store::open(&path).unwrap();
        // A small xorshift, so a failure replays.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let macs = [
            None,
            Some([0x00, 0x1b, 0x21, 0, 0, 1]),
            Some([0x00, 0x1b, 0x21, 0, 0, 2]),
            Some([0x02, 0, 0, 0, 0, 3]),
            Some([0xff; 6]),
            Some([0x01, 0x00, 0x5e, 0, 0, 1]),
        ];
        let mut b = store.batch().unwrap();
        for id in 1..=600u64 {
            let src = EDGE_ADDRESSES[next(EDGE_ADDRESSES.len() as u64) as usize];
            let v6 = src.contains(':');
            let dst = if v6 { "2001:db8::53" } else { "10.0.0.53" };
            let mut f = flow(id, src, dst, id as i64 * 1_000_000);
            f.key.proto = [6, 17, 1, 58, 47][next(5) as usize];
            f.key.b_port = [53, 80, 443, 123, 9999][next(5) as usize];
            if next(8) == 0 {
                // Not IP: named from `ethertypes`, or its number when unknown.
                f.key.kind = KeyKind::L2;
                f.key.ethertype = [0x0806, 0x88cc, 0x1234][next(3) as usize];
            }
            // Small numbers, so that rows tie and the tie-breaks count.
            f.packets = [next(3) + 1, next(3)];
            f.bytes = [60 * next(4), 90 * next(3)];
            f.src_mac = macs[next(6) as usize];
            f.dst_mac = if next(4) == 0 {
                f.src_mac
            } else {
                macs[next(6) as usize]
            };
            b.put_flow(&f, None, None).unwrap();
        }
        b.commit().unwrap();
        for (table, limit) in [
            (true, None),
            (false, None),
            (true, Some(2)),
            (false, Some(3)),
        ] {
            let by_query = store.run_section(&macs_sql(table, limit)).unwrap();
            assert!(by_query.rows.len() > 1);
            if !table {
                // The list of addresses behind a MAC is cut: both ways agree there too.
                assert!(
                    by_query
                        .rows
                        .iter()
                        .any(|r| matches!(r[2], Value::Integer(n) if n > 3)),
                    "{by_query:?}"
                );
            }
            assert_eq!(
                store.macs(table, limit).unwrap(),
                by_query,
                "macs {table} {limit:?}"
            );
        }
        for top in [3, 1000] {
            let all = TimeWindow::default();
            // A window that holds some flows, cut by both ends.
            let window = TimeWindow {
                since_ns: Some(150_000_000),
                until_ns: Some(420_000_000),
            };
            for (w, computed) in [
                (all, store.summary(top, all).unwrap()),
                (window, store.summary(top, window).unwrap()),
            ] {
                assert_eq!(computed.len(), reports::summary_sections(top, w).len());
                let flows = &computed[0].1;
                let count = |t: &Table| match t.rows[0]
                    [t.columns.iter().position(|c| c == "flows").unwrap()]
                {
                    Value::Integer(n) => n,
                    _ => -1,
                };
                if w == window {
                    assert!(count(flows) > 100 && count(flows) < 600, "{flows:?}");
                } else {
                    assert_eq!(count(flows), 600);
                }
                for (section, table) in computed {
                    let by_query = store.run_section(&section.sql).unwrap();
                    let grouped = [
                        "protocols",
                        "top_talkers",
                        "top_services",
                        "top_mac_vendors",
                    ];
                    if grouped.contains(&section.key) {
                        assert!(
                            by_query.rows.len() > 1,
                            "{}: too little to compare",
                            section.key
                        );
                    }
                    assert_eq!(table, by_query, "{} (top {top}, {w:?})", section.key);
                }
            }
        }
    }

    /// Commits checkpointed in the background reach the database file; a
    /// writer that waits while `wal_wants_restart` keeps the WAL at one
    /// transaction's size (it starts over each time), and one that does
    /// not wait (the WAL is under its limit) lets it grow. The final
    /// checkpoint leaves no WAL behind.
    #[test]
    fn background_checkpoints_copy_commits_and_let_the_wal_start_over() {
        check_background_checkpoints(0, true);
        check_background_checkpoints(1 << 30, false);
    }

    fn check_background_checkpoints(wal_limit: u64, restarts: bool) {
        let path = temp_db(&format!("bgcheckpoint-{wal_limit}"));
        let mut store = Store::open(&path).unwrap();
        store.checkpoint_in_background(wal_limit).unwrap();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let chunk = vec![7u8; 300];
        let mut wal_sizes = Vec::new();
        for round in 0..8u64 {
            let waited = std::time::Instant::now();
            while store.wal_wants_restart() {
                assert!(
                    waited.elapsed() < Duration::from_secs(20),
                    "checkpoint stuck"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            if round > 0 && restarts {
                // Everything committed so far is in the database file.
                assert_eq!(flows_in(&path), round * 2000);
                assert!(size(&path) > round * 2000 * 300, "round {round}");
            }
            let mut b = store.batch().unwrap();
            for i in 0..2000 {
                let id = round * 2000 + i + 1;
                b.put_flow(
                    &flow(id, "10.0.0.1", "10.0.0.2", id as i64),
                    Some(&chunk),
                    None,
                )
                .unwrap();
            }
            b.commit().unwrap();
            wal_sizes.push(size(&wal));
        }
        assert!(wal_sizes[0] > 2000 * 300, "{wal_sizes:?}");
        let grew = wal_sizes.iter().any(|&s| s > wal_sizes[0] * 3 / 2);
        assert_eq!(grew, !restarts, "WAL sizes {wal_sizes:?}");
        store.checkpoint_wal().unwrap();
        assert_eq!(size(&wal), 0);
        drop(store);
        assert_eq!(flows_in(&path), 16_000);
    }

    #[test]
    fn the_indexes_wait_for_the_end_of_large_loads_and_of_loads_after_a_cut() {
        let path = temp_db("deferred");
        let indexes = |s: &Store| -> Vec<String> {
            let mut st = s
                .conn
                .prepare(
                    "SELECT name FROM sqlite_schema
                     WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .unwrap();
            // The deferred ones (migrations create others, kept always).
            st.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap()
                .into_iter()
                .filter(|n| migrate::index_names().any(|d| d == n))
                .collect()
        };
        let mut all: Vec<String> = migrate::index_names().map(String::from).collect();
        all.sort();
        // Load `bytes` of one file and a flow, and build the indexes if the
        // load is not cut short.
        let load = |id: u64, bytes: u64, finish: bool| {
            let store = Store::open(&path).unwrap();
            store.defer_indexes(bytes).unwrap();
            let mut b = store.batch().unwrap();
            b.put_flow(&flow(id, "10.0.0.1", "10.0.0.2", 0), None, None)
                .unwrap();
            let mut file = FileRow::new(format!("{id}.pcap"), bytes, 0, FileStatus::Ok);
            file.indexed_bytes = bytes;
            b.put_file(&file).unwrap();
            b.commit().unwrap();
            if finish {
                store.build_indexes(1).unwrap();
            }
            indexes(&store)
        };
        // The first load is cut short before its end: no indexes.
        assert!(load(1, 1000, false).is_empty());
        // Opening does not build them; the next load builds them at its end.
        assert!(indexes(&Store::open(&path).unwrap()).is_empty());
        assert_eq!(load(2, 1000, true), all);
        // A load under a quarter of what the index holds keeps them ...
        assert_eq!(load(3, 100, false), all);
        // ... a larger one runs without them (and is cut short here) ...
        assert!(load(4, 600, false).is_empty());
        // ... and the next load builds them, however small.
        assert_eq!(load(5, 10, true), all);
        assert_eq!(flows_in(&path), 5);
    }

    #[test]
    fn readers_say_why_a_file_is_not_an_index_they_can_read() {
        let path = temp_db("readers");
        let err = |p: &Path| Store::open_read_only(p).err().unwrap();
        assert!(matches!(err(&path), StoreError::Missing));
        // What a first run killed before its first commit leaves.
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(err(&path), StoreError::NoIndexYet));
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
        }
        assert!(matches!(err(&path), StoreError::NoIndexYet));
        // The next run makes it an index.
        Store::open(&path).unwrap();
        assert_eq!(flows_in(&path), 0);
        let foreign = path.with_file_name("notes.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE notes (t TEXT)")
            .unwrap();
        assert!(matches!(err(&foreign), StoreError::NotAnIndex));
        let text = path.with_file_name("notes.txt");
        std::fs::write(
            &text,
            "not a database, longer than a header would be: ".repeat(4),
        )
        .unwrap();
        assert!(matches!(err(&text), StoreError::NotAnIndex));
    }

    #[test]
    fn user_sql_that_would_write_is_refused_before_it_touches_anything() {
        let path = temp_db("refuse");
        Store::open(&path).unwrap();
        let r = Store::open_read_only(&path).unwrap();
        let copy = path.with_file_name("copy.db");
        let run = |sql: &str| r.query::<StoreError>(sql, &[], |_| Ok(()));
        for sql in [
            format!("VACUUM INTO '{}'", copy.display()),
            "PRAGMA journal_mode=DELETE".into(),
            "DELETE FROM flow_data".into(),
            "CREATE TABLE t (x)".into(),
            "PRAGMA user_version = 7".into(),
        ] {
            match run(&sql) {
                Err(StoreError::ReadOnly(why)) => assert!(why.contains("read-only"), "{why}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert!(!copy.exists(), "VACUUM INTO left a file behind");
        for sql in ["", "  -- nothing\n /* at all */ "] {
            match run(sql) {
                Err(StoreError::Expression(why)) => assert!(why.contains("no SQL"), "{why}"),
                other => panic!("{sql:?}: {other:?}"),
            }
        }
        assert!(matches!(
            run("SELECT 1; SELECT 2"),
            Err(StoreError::Expression(_))
        ));
        run("PRAGMA journal_mode").unwrap();
        run("PRAGMA table_info(flow_data)").unwrap();
        run("SELECT count(*) FROM flows").unwrap();
        // One line: SQLite's message, not followed by itself and its code.
        let e = run("SELECT nope FROM flows").unwrap_err();
        assert_eq!(e.to_string(), "no such column: nope");
        assert!(std::error::Error::source(&e).is_none());
    }

    /// Rows of `flow_data`, as a new reader sees them.
    fn flows_in(path: &Path) -> u64 {
        let r = Store::open_read_only(path).unwrap();
        r.conn
            .query_row("SELECT count(*) FROM flow_data", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }

    #[test]
    fn range_scans_agree_with_ip_in_cidr_and_use_the_index() {
        let path = temp_db("ranges");
        let store = Store::open(&path).unwrap();
        let mut b = store.batch().unwrap();
        for (i, a) in EDGE_ADDRESSES.iter().enumerate() {
            let other = if a.contains(':') {
                "2001:db8::53"
            } else {
                "10.0.0.53"
            };
            b.put_flow(&flow(i as u64 + 1, a, other, 0), None, None)
                .unwrap();
        }
        b.commit().unwrap();
        store.build_indexes(1).unwrap();
        let ids = |sql: &str, cidr: &str| -> Vec<i64> {
            let mut st = store.conn.prepare(sql).unwrap();
            st.query_map([cidr], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        for cidr in EDGE_RANGES {
            let by_function = ids(
                "SELECT flow_id FROM flows WHERE ip_in_cidr(src_ip, ?1) ORDER BY flow_id",
                cidr,
            );
            let by_range = ids(
                "SELECT flow_id FROM flows WHERE src_key BETWEEN cidr_first(?1) AND cidr_last(?1)
                 ORDER BY flow_id",
                cidr,
            );
            let net: IpNet = parse_cidr(cidr).unwrap();
            let expected: Vec<i64> = EDGE_ADDRESSES
                .iter()
                .enumerate()
                .filter(|(_, a)| net.contains(&a.parse::<IpAddr>().unwrap()))
                .map(|(i, _)| i as i64 + 1)
                .collect();
            assert_eq!(by_function, expected, "ip_in_cidr over {cidr}");
            assert_eq!(by_range, expected, "range scan over {cidr}");
        }
        let plan: Vec<String> = store
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT flow_id FROM flows
                 WHERE dst_key BETWEEN cidr_first('10.0.0.0/8') AND cidr_last('10.0.0.0/8')",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("INDEX flow_data_dst_key")),
            "{plan:?}"
        );
    }

    #[test]
    fn views_render_what_the_functions_render() {
        let path = temp_db("views");
        let store = Store::open(&path).unwrap();
        let mut b = store.batch().unwrap();
        let times = [
            0,
            -1,
            -1_500_000_000,
            1_714_564_800_123_456_789,
            951_782_400_000_000_000,
        ];
        for (i, ts) in times.iter().enumerate() {
            let (s, d) = if i % 2 == 0 {
                ("192.168.1.1", "10.0.0.53")
            } else {
                ("2001:db8::1", "2001:db8::53")
            };
            b.put_flow(&flow(i as u64 + 1, s, d, *ts), None, None)
                .unwrap();
        }
        b.commit().unwrap();
        let mut st = store
            .conn
            .prepare(
                "SELECT s.start_time, ts_iso(f.first_ts_ns), s.end_time, ts_iso(f.last_ts_ns),
                    f.src_ip, ip_text(f.src_key), f.src_mac, s.protocol, c.src, c.dst
                 FROM flow_summary s JOIN flows f USING (flow_id)
                 JOIN conversations c USING (flow_id) ORDER BY flow_id",
            )
            .unwrap();
        let rows: Vec<Vec<String>> = st
            .query_map([], |r| (0..10).map(|i| r.get::<_, String>(i)).collect())
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), times.len());
        for r in &rows {
            assert_eq!(r[0], r[1]);
            assert_eq!(r[2], r[3]);
            assert_eq!(r[4], r[5]);
            assert_eq!(r[7], "udp");
        }
        assert_eq!(rows[1][0], "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rows[0][6], "00:1b:21:00:00:01");
        assert_eq!(rows[0][8], "192.168.1.1:1000");
        assert_eq!(rows[1][9], "[2001:db8::53]:53");
    }
}
