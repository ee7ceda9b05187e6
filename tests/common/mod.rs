//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod s3;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pcapidx"))
}

/// Runs pcapidx with `args` against `db`.
pub fn pcapidx(db: &Path, args: &[&str]) -> Output {
    let mut c = bin();
    c.arg("--db").arg(db).args(args);
    c.output().expect("run pcapidx")
}

/// Runs pcapidx and insists on the given exit code; returns stdout.
pub fn pcapidx_ok(db: &Path, args: &[&str], code: i32) -> String {
    let out = pcapidx(db, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "pcapidx {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bundled sample set under `testdata/`.
pub fn testdata(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(set)
}

/// A bundled sample set indexed into a fresh folder's `i.db`.
pub fn indexed(name: &str, set: &str) -> PathBuf {
    let db = tmpdir(name).join("i.db");
    pcapidx_ok(&db, &["index", testdata(set).to_str().unwrap(), "-q"], 0);
    db
}

/// A fresh, empty folder for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("create temp dir");
    p
}

/// Rows of a query as JSON objects (through `pcapidx sql --format jsonl`).
pub fn sql(db: &Path, query: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let out = pcapidx_ok(db, &["sql", query, "--format", "jsonl"], 0);
    out.lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(m)) => m,
            other => panic!("not a JSON object: {l}: {other:?}"),
        })
        .collect()
}

/// A test that cannot run here says why and skips; where the oracles are
/// promised (`PCAPIDX_REQUIRE_ORACLES=1`, set by `.ci/run`), it fails
/// instead, so a missing install cannot pass silently.
pub fn skip(why: &str) {
    if std::env::var_os("PCAPIDX_REQUIRE_ORACLES").is_some_and(|v| v == "1") {
        panic!("{why}, and PCAPIDX_REQUIRE_ORACLES=1 says it must be here");
    }
    eprintln!("skipped: {why}");
}

/// The shared third-party corpus, if present.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.join("MANIFEST.tsv").exists() {
        Some(p)
    } else {
        skip("../shared/corpus is not present");
        None
    }
}

/// Whether an external tool (tshark, mergecap...) can be run.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!("{tool} is not installed"));
    }
    ok
}

/// A JSON value as the text a TSV cell would hold (null is empty).
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The columns every flow has (the index issue's interface).
pub const FLOW_COLUMNS: [&str; 19] = [
    "flow_id",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "ethertype",
    "vlan",
    "first_ts_ns",
    "last_ts_ns",
    "packets_fwd",
    "packets_rev",
    "bytes_fwd",
    "bytes_rev",
    "tcp_flags_fwd",
    "tcp_flags_rev",
    "src_mac",
    "dst_mac",
    "files",
];

/// The captures (`.pcap`, `.pcapng`) directly in `dir`, sorted.
pub fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

/// Every file below `dir`, recursively (none if it cannot be read).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The file name of a `files.path` value.
pub fn file_name(path: &serde_json::Value) -> String {
    Path::new(path.as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// (file name, status) of every file the index knows, by path.
pub fn statuses(db: &Path) -> Vec<(String, String)> {
    sql(db, "SELECT path, status FROM files ORDER BY path")
        .iter()
        .map(|r| (file_name(&r["path"]), cell(&r["status"])))
        .collect()
}

/// Flow summaries in the generator's truth format (see `TruthFlow::summary`).
/// Each flow's ends and first time with its payload counts, sorted: what
/// runs that index the same packets differently must agree on too.
pub fn flow_payloads(db: &Path) -> Vec<String> {
    let rows = sql(
        db,
        "SELECT proto, src_ip, src_port, dst_ip, dst_port, vlan, first_ts_ns,
                payload_fwd, payload_rev, missed_fwd, missed_rev FROM flows",
    );
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r.values().map(cell).collect::<Vec<_>>().join("\t"))
        .collect();
    v.sort();
    v
}

pub fn flow_summaries(db: &Path) -> Vec<String> {
    let cols = &FLOW_COLUMNS[1..];
    let rows = sql(db, &format!("SELECT {} FROM flows", cols.join(", ")));
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| cell(&r[*c]))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    v.sort();
    v
}

/// `f` over `files` on four threads (each capture's work is mostly tshark
/// and pcapidx processes), results in the files' order.
pub fn on_four_threads<T: Send>(files: &[PathBuf], f: impl Fn(&Path) -> T + Sync) -> Vec<T> {
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(4).max(1))
            .map(|c| s.spawn(move || c.iter().map(|p| f(p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Fails with every error of `results` (one per line), if any.
pub fn assert_no_errors<T>(results: &[Result<T, String>]) {
    let errors: Vec<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(String::as_str))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A running `pcapidx serve` on 127.0.0.1 (an ephemeral port), stopped
/// when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/` (with `?token=` when one is set).
    pub link: String,
    pub addr: std::net::SocketAddr,
}

impl Served {
    pub fn start(db: &Path, extra: &[&str]) -> Served {
        Served::start_with(db, extra, |_| {})
    }

    /// As `start`, with the command adjusted first (its environment).
    pub fn start_with(db: &Path, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Served {
        use std::io::BufRead;
        let mut c = bin();
        c.arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        adjust(&mut c);
        let mut child = c.spawn().expect("start pcapidx serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let link = line.split_whitespace().last().unwrap_or("").to_string();
        let hostport = link
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        let addr = hostport
            .parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"));
        Served { child, link, addr }
    }

    /// GET `path` with extra header lines; (status, headers, body).
    pub fn get(&self, path: &str, headers: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http_get(self.addr, path, headers)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET (the server's own answer, chunked or not).
pub fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[&str],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http_request(addr, "GET", path, headers, b"")
}

/// A plain HTTP/1.1 request with a body.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let hs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if hs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = at + body[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&body[at..end])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&body[end + 2..end + 2 + size]);
            at = end + 2 + size + 2;
        }
        body = out;
    }
    (status, hs, body)
}

pub fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Asserts that the tables pcapidx keeps up to date as it indexes hold what
/// the flows and their positions (`packets`) say, after any run, forget or
/// reindex: `file_flows` exactly their (file, flow) pairs (what `--in-file`
/// and the files' flow counts stand on), `traffic` their packets and bytes
/// per second, minute and hour (what charts read), `tallies` the summary's
/// groupings of the flows.
pub fn assert_kept_tables_agree(db: &Path) {
    let pairs = |q: &str| -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = sql(db, q)
            .iter()
            .map(|r| {
                (
                    r["file_id"].as_u64().unwrap(),
                    r["flow_id"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort_unstable();
        v
    };
    let from_positions = pairs("SELECT DISTINCT file_id, flow_id FROM packets");
    assert!(!from_positions.is_empty(), "no packets in {}", db.display());
    assert_eq!(
        pairs("SELECT file_id, flow_id FROM file_flows"),
        from_positions,
        "file_flows of {}",
        db.display()
    );
    for (level, unit) in [
        (0, 1_000_000_000i64),
        (1, 60_000_000_000),
        (2, 3_600_000_000_000),
    ] {
        let counted = sql(
            db,
            &format!(
                "SELECT slot, packets, bytes FROM traffic WHERE level = {level} ORDER BY slot"
            ),
        );
        let from_positions = sql(
            db,
            &format!(
                "SELECT (ts_ns - ((ts_ns % {unit}) + {unit}) % {unit}) / {unit} AS slot,
                    count(*) AS packets, sum(orig_len) AS bytes
                 FROM packets GROUP BY slot ORDER BY slot"
            ),
        );
        assert_eq!(
            counted,
            from_positions,
            "traffic level {level} of {}",
            db.display()
        );
    }
}

/// Turns an index of schema 7 back into what schema 6 wrote (no
/// `file_flows`, `traffic`, `tallies`, `files.out_of_line_ts` or
/// `flow_data.turned`; version 3's flows view), to test upgrades.
pub fn undo_schema_7(db: &Path) {
    // Version 8's columns go too: the upgrade adds them again.
    let v3 = pcapidx_store::MIGRATIONS[2].2;
    let view = &v3[v3.find("CREATE VIEW flows AS").unwrap()..];
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "DROP VIEW file_flows; DROP TABLE file_flow_ranges; DROP TABLE traffic; DROP TABLE tallies;
         ALTER TABLE files DROP COLUMN out_of_line_ts;
         ALTER TABLE files DROP COLUMN etag; ALTER TABLE files DROP COLUMN version_id;
         DROP VIEW flows; {view} ALTER TABLE flow_data DROP COLUMN turned;
         PRAGMA user_version = 6;"
    ))
    .unwrap();
}
