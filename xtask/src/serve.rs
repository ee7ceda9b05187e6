//! `cargo xtask bench --serve`: `pcapidx serve` on the bench index, with
//! 20 clients at once asking what the page asks (the first page of flows,
//! the count, the overview, the chart, a flow, its packets), and the time
//! to the first byte of a carve download.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const CLIENTS: usize = 20;
const ROUNDS: usize = 10;

/// One GET; returns (status, time to the first byte, time to the last).
fn get(addr: SocketAddr, path: &str) -> Result<(u16, Duration, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut first = [0u8; 12];
    s.read_exact(&mut first)?;
    let ttfb = started.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    let status = String::from_utf8_lossy(&first[9..12]).parse().unwrap_or(0);
    Ok((status, ttfb, started.elapsed()))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

pub fn run(bin: &Path, db: &Path) -> Result<Vec<(String, String)>> {
    let flows: u64 = {
        let c =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        c.query_row("SELECT count(*) FROM flow_data", [], |r| r.get::<_, i64>(0))? as u64
    };
    let mut child = Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting pcapidx serve")?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().context("serve's stdout")?),
        &mut line,
    )?;
    let addr: SocketAddr = line
        .split_whitespace()
        .last()
        .and_then(|l| l.trim_start_matches("http://").split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no address in {line:?}"))?;
    // A busy flow for the detail calls.
    let flow: u64 = {
        let c =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        c.query_row(
            "SELECT flow_id FROM flow_data ORDER BY packets_fwd + packets_rev DESC LIMIT 1",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64
    };
    let calls: Vec<(&str, String)> = vec![
        ("first page of flows", "/api/flows?limit=200".into()),
        (
            "flows matching a where",
            "/api/flows?limit=200&where=dst_port%20%3D%2053".into(),
        ),
        ("flow count", "/api/flows/count".into()),
        ("overview (summary)", "/api/summary?top=8".into()),
        (
            "traffic chart (timeline)",
            "/api/timeline?buckets=120".into(),
        ),
        ("one flow", format!("/api/flows/{flow}")),
        (
            "a flow's first 500 packets",
            format!("/api/flows/{flow}/packets?limit=500"),
        ),
    ];
    eprintln!(
        "{CLIENTS} clients x {ROUNDS} rounds of {} page calls against pcapidx serve ({flows} flows)...",
        calls.len()
    );
    let results: Vec<Vec<(usize, u16, f64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let calls = &calls;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for r in 0..ROUNDS {
                        for i in 0..calls.len() {
                            // Clients start at different calls, as pages do.
                            let k = (i + c + r) % calls.len();
                            if let Ok((status, _, total)) = get(addr, &calls[k].1) {
                                out.push((k, status, total.as_secs_f64()));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut rows = Vec::new();
    for (k, (name, _)) in calls.iter().enumerate() {
        let mut times: Vec<f64> = results
            .iter()
            .flatten()
            .filter(|r| r.0 == k && r.1 == 200)
            .map(|r| r.2 * 1e3)
            .collect();
        let failed = results
            .iter()
            .flatten()
            .filter(|r| r.0 == k && r.1 != 200)
            .count();
        let n = times.len();
        let (p50, p95) = (percentile(&mut times, 0.5), percentile(&mut times, 0.95));
        let mut text =
            format!("p50 {p50:.0} ms, p95 {p95:.0} ms ({n} calls, {CLIENTS} clients at once)");
        if failed > 0 {
            text.push_str(&format!(
                "; {failed} answered an error (over the 5 s query budget)"
            ));
        }
        rows.push((format!("serve: {name}"), text));
    }
    // A carve download: time to its first byte, alone.
    let mut ttfb = Vec::new();
    for _ in 0..5 {
        let (status, first, _) = get(addr, &format!("/api/carve?flow_id={flow}"))?;
        if status != 200 {
            bail!("carve answered {status}");
        }
        ttfb.push(first.as_secs_f64() * 1e3);
    }
    rows.push((
        "serve: carve download, first byte".into(),
        format!(
            "median {:.1} ms (flow {flow}, the busiest)",
            percentile(&mut ttfb, 0.5)
        ),
    ));
    let _ = child.kill();
    let _ = child.wait();
    Ok(rows)
}
