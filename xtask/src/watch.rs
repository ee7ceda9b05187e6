//! `cargo xtask bench --watch`: `pcapidx index --watch` on a spool that a
//! writer fills at a steady packet rate (the bench traffic, rotated every
//! 100 MB as `tcpdump -C 100` does), measuring the rate held, how long a
//! written packet takes to be visible to a reader, and the CPU it costs
//! while writing and while idle.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct WatchBench {
    pub rate: u64,
    pub seconds: u64,
}

/// Records of the source files, one after another: (pcap header, records).
struct Source {
    header: Vec<u8>,
    files: Vec<Vec<u8>>,
    little_endian: bool,
}

impl Source {
    fn load(files: &[PathBuf], need_packets: u64) -> Result<Self> {
        let mut out = Source {
            header: Vec::new(),
            files: Vec::new(),
            little_endian: true,
        };
        let mut packets = 0;
        for f in files {
            let bytes = std::fs::read(f)?;
            if bytes.len() < 24 {
                bail!("{}: too short for a pcap file", f.display());
            }
            let le = match bytes[..4] {
                [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
                [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
                _ => bail!("{}: the watch bench writes classic pcap", f.display()),
            };
            out.little_endian = le;
            out.header = bytes[..24].to_vec();
            packets += records(&bytes[24..], le).count() as u64;
            out.files.push(bytes[24..].to_vec());
            if packets >= need_packets {
                break;
            }
        }
        Ok(out)
    }
}

/// The records of a pcap body, as byte ranges.
fn records(body: &[u8], le: bool) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = body.get(at..at + 16)?;
        let b = [h[8], h[9], h[10], h[11]];
        let len = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize;
        let end = at + 16 + len;
        (end <= body.len()).then(|| {
            let r = at..end;
            at = end;
            r
        })
    })
}

/// Process CPU seconds (user + system) so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the measurement; returns the rows for BENCHMARKS.md.
pub fn run(
    bin: &Path,
    work: &Path,
    files: &[PathBuf],
    o: &WatchBench,
) -> Result<Vec<(String, String)>> {
    let need = o.rate * o.seconds;
    let src = Source::load(files, need)?;
    let spool = work.join("watch-spool");
    let db = work.join("watch.db");
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool)?;
    for s in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{s}", db.display()));
    }
    let child = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["index", "--watch", "-q"])
        .arg(&spool)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting pcapidx index --watch")?;
    let pid = child.id();
    // The first (empty) pass creates the index.
    let t0 = Instant::now();
    while !db.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    eprintln!(
        "writing {} packets/s for {} s into {} while pcapidx index --watch follows...",
        o.rate,
        o.seconds,
        spool.display()
    );
    let writing = AtomicBool::new(true);
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let (written, polls, write_secs, cpu_writing) = std::thread::scope(|s| -> Result<_> {
        let poller = s.spawn(|| poll(&db, &writing));
        let started = Instant::now();
        let written = write(&spool, &src, o.rate, o.seconds);
        let write_secs = started.elapsed().as_secs_f64();
        let cpu_writing = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
        // Let the last writes be read, then stop polling.
        let total = written.as_ref().map_or(0, |w| w.last().map_or(0, |l| l.1));
        let wait = Instant::now();
        while wait.elapsed() < Duration::from_secs(15) && visible(&db).unwrap_or(0) < total {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The poller's own next look sees it too.
        std::thread::sleep(Duration::from_millis(100));
        writing.store(false, Ordering::Relaxed);
        let polls = poller
            .join()
            .map_err(|_| anyhow::anyhow!("poller panicked"))?;
        Ok((written?, polls, write_secs, cpu_writing))
    })?;
    let total = written.last().map_or(0, |l| l.1);
    // Idle: nothing written; what does following cost? Measured from past
    // the first rescan after the writing (which reads the last file, left
    // alone while it held only its header, and saves the open flows once).
    std::thread::sleep(Duration::from_secs(12));
    let idle_from = cpu_seconds(pid).unwrap_or(0.0);
    let idle_secs = 15.0;
    std::thread::sleep(Duration::from_secs_f64(idle_secs));
    let idle_cpu = cpu_seconds(pid).unwrap_or(0.0) - idle_from;
    let stop = Instant::now();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    let out = child.wait_with_output()?;
    let stop_secs = stop.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("pcapidx index --watch exited with {}", out.status);
    }
    // Each write's delay: from when it was written to the first poll that
    // saw it committed.
    let mut delays: Vec<f64> = Vec::new();
    let mut p = 0;
    for &(at, count) in &written {
        while p < polls.len() && (polls[p].1 < count || polls[p].0 < at) {
            p += 1;
        }
        match polls.get(p) {
            Some(&(seen, _)) => delays.push(seen.duration_since(at).as_secs_f64()),
            None => delays.push(f64::INFINITY),
        }
    }
    delays.sort_by(f64::total_cmp);
    let once = work.join("watch-once.db");
    for s in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{s}", once.display()));
    }
    Command::new(bin)
        .arg("--db")
        .arg(&once)
        .args(["index", "-q"])
        .arg(&spool)
        .status()?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    let indexed = visible(&db).unwrap_or(0);
    let mut rows = vec![
        (
            "write rate held".to_string(),
            format!(
                "{:.0} packets/s for {:.1} s ({} packets, asked for {} packets/s); {} of them indexed",
                total as f64 / write_secs,
                write_secs,
                total,
                o.rate,
                indexed
            ),
        ),
        (
            "write to visible (files.packets, committed with the flows)".to_string(),
            format!(
                "p50 {:.2} s, p95 {:.2} s, max {:.2} s ({} writes, polled every 20 ms)",
                percentile(&delays, 0.5),
                percentile(&delays, 0.95),
                delays.last().copied().unwrap_or(f64::NAN),
                delays.len()
            ),
        ),
        (
            "CPU while writing".to_string(),
            format!(
                "{:.0}% of a core ({:.1} s CPU over {:.1} s)",
                100.0 * cpu_writing / write_secs,
                cpu_writing,
                write_secs
            ),
        ),
        (
            "CPU while idle".to_string(),
            format!(
                "{:.2}% of a core ({:.3} s CPU over {idle_secs:.0} s)",
                100.0 * idle_cpu / idle_secs,
                idle_cpu
            ),
        ),
        (
            "stop (SIGINT to exit)".to_string(),
            format!("{:.2} s, exit status 0", stop_secs),
        ),
        (
            "index size, watched against one-shot".to_string(),
            format!("{:.1} MB against {:.1} MB", size(&db), size(&once)),
        ),
    ];
    if indexed < total {
        rows.push((
            "not indexed".into(),
            format!("{} packets were not visible within 15 s", total - indexed),
        ));
    }
    Ok(rows)
}

/// Writes the source's records at `rate` for `seconds`, in 10 ms ticks,
/// rotating files every 100 MB; returns (when, packets written so far)
/// after each write.
fn write(spool: &Path, src: &Source, rate: u64, seconds: u64) -> Result<Vec<(Instant, u64)>> {
    const ROTATE: u64 = 100 << 20;
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut out = Vec::new();
    let mut n_file = 0;
    let open = |n: usize| -> Result<std::fs::File> {
        let mut f = std::fs::File::create(spool.join(format!("live-{n:03}.pcap")))?;
        f.write_all(&src.header)?;
        Ok(f)
    };
    let mut f = open(n_file)?;
    let mut in_file = 24u64;
    let mut written = 0u64;
    let mut buf = Vec::new();
    let mut recs = src
        .files
        .iter()
        .flat_map(|body| records(body, src.little_endian).map(move |r| &body[r]));
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = (rate as f64 * now.duration_since(started).as_secs_f64()) as u64;
        buf.clear();
        while written < due {
            let Some(r) = recs.next() else { break };
            buf.extend_from_slice(r);
            written += 1;
        }
        if !buf.is_empty() {
            f.write_all(&buf)?;
            in_file += buf.len() as u64;
            out.push((Instant::now(), written));
            if in_file >= ROTATE {
                n_file += 1;
                f = open(n_file)?;
                in_file = 24;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(out)
}

/// Records the index has committed.
fn visible(db: &Path) -> Option<u64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.busy_timeout(Duration::from_secs(1)).ok()?;
    c.query_row("SELECT total(packets) FROM files", [], |r| {
        r.get::<_, f64>(0)
    })
    .ok()
    .map(|v| v as u64)
}

/// Polls the committed count every 20 ms while `writing`.
fn poll(db: &Path, writing: &AtomicBool) -> Vec<(Instant, u64)> {
    let mut out = Vec::new();
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return out;
    };
    let _ = c.busy_timeout(Duration::from_secs(1));
    while writing.load(Ordering::Relaxed) {
        if let Ok(v) = c.query_row("SELECT total(packets) FROM files", [], |r| {
            r.get::<_, f64>(0)
        }) {
            out.push((Instant::now(), v as u64));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}
