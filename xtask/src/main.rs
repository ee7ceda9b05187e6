//! Project tasks. `cargo xtask oui DIR` regenerates the MAC vendor table
//! from IEEE registry files. `cargo xtask bench`: generate (and cache) a rotated capture
//! run with the project's generator, then measure, side by side in one run
//! with a warm page cache: `pcapidx index` (all cores and one), `tcpdump -r
//! FILE -w /dev/null` over the same files (the cost of reading and copying
//! the records), `tshark -n -q -z conv,tcp -z conv,udp` (the conversation
//! table), the index size, and carving the largest multi-file session and a
//! ~1000-packet one beside tshark extracting them. Prints a table and appends
//! it, with the commit and the machine, to BENCHMARKS.md.
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

mod oui;
mod seeds;
mod serve;
mod watch;

struct Opts {
    size: String,
    file_size: String,
    mean_frame: u32,
    seed: u64,
    runs: usize,
    tshark_runs: usize,
    tshark: bool,
    append: bool,
    /// Measure `index --watch` instead: (packets/s, seconds).
    watch: Option<watch::WatchBench>,
    /// Measure `pcapidx serve` instead.
    serve: bool,
}

const USAGE: &str =
    "usage: cargo xtask bench [--size 1G] [--file-size 100M] [--mean-frame 340] [--seed 1]
                        [--runs 5] [--tshark-runs 3] [--no-tshark] [--no-append]
                        [--watch [--rate 100000] [--seconds 20]] [--serve]
       cargo xtask fuzz-seeds   (writes fuzz/corpus/* from testdata/)
       cargo xtask oui DIR      (DIR holds IEEE's oui.csv, mam.csv, oui36.csv, iab.csv,
                                 e.g. /usr/share/ieee-data from Debian's ieee-data)";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("bench") => bench_command(args),
        Some("oui") => {
            let dir = args.next().context(USAGE)?;
            oui::regenerate(Path::new(&dir), &root().join(oui::TABLE))
        }
        Some("fuzz-seeds") => {
            build_pcapidx(&root())?;
            seeds::write(&root(), &root().join("target/release/pcapidx"))
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn bench_command(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut o = Opts {
        size: "1G".into(),
        file_size: "100M".into(),
        mean_frame: 340,
        seed: 1,
        runs: 5,
        tshark_runs: 3,
        tshark: true,
        append: true,
        watch: None,
        serve: false,
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--size" => o.size = val()?,
            "--file-size" => o.file_size = val()?,
            "--mean-frame" => o.mean_frame = val()?.parse()?,
            "--seed" => o.seed = val()?.parse()?,
            "--runs" => o.runs = val()?.parse::<usize>()?.max(1),
            "--tshark-runs" => o.tshark_runs = val()?.parse()?,
            "--no-tshark" => o.tshark = false,
            "--no-append" => o.append = false,
            "--serve" => o.serve = true,
            "--watch" => {
                o.watch.get_or_insert(watch::WatchBench {
                    rate: 100_000,
                    seconds: 20,
                });
            }
            "--rate" | "--seconds" => {
                let v: u64 = val()?.parse()?;
                let w = o.watch.get_or_insert(watch::WatchBench {
                    rate: 100_000,
                    seconds: 20,
                });
                if a == "--rate" {
                    w.rate = v.max(1);
                } else {
                    w.seconds = v.max(1);
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    bench(&o)
}

fn build_pcapidx(root: &Path) -> Result<()> {
    eprintln!("building pcapidx (release)...");
    let st = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "--quiet", "--bin", "pcapidx"])
        .status()?;
    if !st.success() {
        bail!("cargo build failed");
    }
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command to completion, returning its wall time and stdout.
fn timed(cmd: &mut Command) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// A fixed amount of CPU work that stays in the core's cache: a
/// multiply-xorshift walk over 64 KiB, about 0.1 s here.
fn spin() -> u64 {
    let buf: Vec<u64> = (0..8192u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut h = 1u64;
    for _ in 0..6000 {
        for &x in &buf {
            h = (h ^ x).wrapping_mul(0x0100_0000_01B3);
            h ^= h >> 29;
        }
    }
    h
}

/// How much faster `cores` copies of [`spin`] at once finish than one
/// alone would: whether this machine's cores are all there right now (a
/// VM's may be hyperthreads of one physical core, or busy). Work that
/// leans on memory can scale less even when this says 2x.
fn parallel_scaling(cores: usize) -> f64 {
    let start = Instant::now();
    std::hint::black_box(spin());
    let one = start.elapsed();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| std::hint::black_box(spin()));
        }
    });
    cores as f64 * one.as_secs_f64() / start.elapsed().as_secs_f64()
}

/// The lowest and highest of `v` (zeros if it is empty).
fn min_max(v: &[f64]) -> (f64, f64) {
    let by = |f: fn(f64, f64) -> f64| v.iter().copied().reduce(f).unwrap_or(0.0);
    (by(f64::min), by(f64::max))
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn remove_db(db: &Path) {
    for s in ["", "-wal", "-shm", ".lock"] {
        let mut p = db.as_os_str().to_owned();
        p.push(s);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn db_size(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
        })
        .sum()
}

fn sql(bin: &Path, db: &Path, q: &str) -> Result<Vec<Value>> {
    let (_, out) = timed(
        Command::new(bin)
            .arg("--db")
            .arg(db)
            .args(["sql", q, "--format", "json"]),
    )?;
    Ok(serde_json::from_str::<Value>(&out)?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {:.0} GiB", kb as f64 / 1048576.0)
        });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores{mem}")
}

/// The commit measured, `+dirty` when tracked files have changes (the
/// binary was built from them).
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root())
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(hash) = git(&["rev-parse", "--short", "HEAD"]).filter(|s| !s.is_empty()) else {
        return "unknown".into();
    };
    // BENCHMARKS.md itself changes with every run: not a change to the code.
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| s.lines().any(|l| !l.ends_with("BENCHMARKS.md")));
    if dirty { format!("{hash}+dirty") } else { hash }
}

/// The phases on the summary's `time:` line ("reading 1.16 s, saving open
/// flows 0.13 s, ..."), as (name, seconds).
fn time_phases(text: &str) -> Vec<(String, f64)> {
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("time:")) else {
        return Vec::new();
    };
    line.split(", ")
        .filter_map(|part| {
            let (name, secs) = part.trim().strip_suffix(" s")?.rsplit_once(' ')?;
            Some((name.to_string(), secs.parse().ok()?))
        })
        .collect()
}

/// A run's phases split into reading (the part more jobs can share) and
/// the phases after it (which run on one core whatever `--jobs` says).
fn split_phases(mut all: Vec<(String, f64)>) -> (f64, Vec<(String, f64)>) {
    let reading = all
        .iter()
        .position(|p| p.0 == "reading")
        .map_or(0.0, |i| all.remove(i).1);
    (reading, all)
}

/// The value after `label` on the summary line that starts with it.
fn summary_number(text: &str, label: &str, after: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    let rest = line.split_once(after).map_or(line, |x| x.1);
    rest.split_whitespace().find_map(|w| w.parse::<f64>().ok())
}

fn bench(o: &Opts) -> Result<()> {
    let root = root();
    build_pcapidx(&root)?;
    let bin = root.join("target/release/pcapidx");
    let data = root.join("bench-data").join(format!(
        "run-{}-{}-{}-{}-v{}",
        o.size,
        o.file_size,
        o.mean_frame,
        o.seed,
        pcapidx_gen::bench::VERSION
    ));
    // The marker sits beside the folder: inside it, `pcapidx index` would
    // meet it as a file that is not a capture.
    let complete = data.with_extension("complete");
    if !complete.exists() {
        eprintln!(
            "generating {} into {} (cached for later runs)...",
            o.size,
            data.display()
        );
        let _ = std::fs::remove_dir_all(&data);
        timed(
            Command::new(&bin)
                .args(["generate", "--profile", "bench", "--out"])
                .arg(&data)
                .args([
                    "--size",
                    &o.size,
                    "--file-size",
                    &o.file_size,
                    "--mean-frame",
                    &o.mean_frame.to_string(),
                    "--seed",
                    &o.seed.to_string(),
                ]),
        )?;
        std::fs::write(&complete, "")?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    if o.serve {
        let db = root.join("bench-data").join("serve.db");
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        eprintln!("indexing {} for the server...", data.display());
        timed(
            Command::new(&bin)
                .arg("--db")
                .arg(&db)
                .args(["index", "-q"])
                .arg(&data),
        )?;
        let rows = serve::run(&bin, &db)?;
        let header = format!(
            "Run: `cargo xtask bench --serve` (the index of `--size {} --mean-frame {} --seed {}`)",
            o.size, o.mean_frame, o.seed
        );
        return report(o, &root, &header, &rows);
    }
    if let Some(w) = &o.watch {
        let rows = watch::run(&bin, root.join("bench-data").as_path(), &files, w)?;
        let header = format!(
            "Run: `cargo xtask bench --watch --rate {} --seconds {}` (the bench traffic of `--size {} --mean-frame {} --seed {}`, written into a watched folder)",
            w.rate, w.seconds, o.size, o.mean_frame, o.seed
        );
        return report(o, &root, &header, &rows);
    }
    // This VM's page cache loses a few MB a second even with most of the
    // memory free (34 MB of the 3 GB run within 30 s idle): warmed only once,
    // whichever tool ran first after a loss read those pages from disk. So
    // every timed run starts with every page read again (untimed; 0.35 s for
    // 3 GB when they are all there).
    let warm = || -> Result<()> {
        for f in &files {
            std::io::copy(&mut std::fs::File::open(f)?, &mut std::io::sink())?;
        }
        Ok(())
    };
    eprintln!(
        "warming the page cache ({} files, {:.2} GB)...",
        files.len(),
        bytes as f64 / 1e9
    );
    warm()?;
    let db = data.with_file_name(format!(
        "{}.db",
        data.file_name().and_then(|n| n.to_str()).unwrap_or("bench")
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows: Vec<(String, String)> = Vec::new();
    let mb = bytes as f64 / 1e6;

    // The runs of tcpdump, `--jobs 1` and `--jobs N` take turns, so that a
    // slow spell of the machine (these VMs have them) weighs on all three
    // rather than on whichever ran during it: the ratios are what count.
    let tcpdump_once = || -> Result<Duration> {
        warm()?;
        let start = Instant::now();
        for f in &files {
            timed(
                Command::new("tcpdump")
                    .arg("-r")
                    .arg(f)
                    .args(["-w", "/dev/null"]),
            )?;
        }
        Ok(start.elapsed())
    };
    let index_once = |jobs: usize| -> Result<(Duration, String)> {
        remove_db(&db);
        warm()?;
        timed(
            Command::new(&bin)
                .arg("--db")
                .arg(&db)
                .args(["index", "--jobs", &jobs.to_string()])
                .arg(&data),
        )
    };
    let with_tcpdump = have("tcpdump");
    eprintln!(
        "{} runs each of {}pcapidx index --jobs 1 and --jobs {cores}, taking turns...",
        o.runs,
        if with_tcpdump {
            "tcpdump -r FILE -w /dev/null, "
        } else {
            ""
        }
    );
    let (mut td, mut i1, mut i_n) = (Vec::new(), Vec::new(), Vec::new());
    let mut tails = Vec::new();
    let mut summary = String::new();
    let mut scaling = Vec::new();
    let (mut reading_ratios, mut caps) = (Vec::new(), Vec::new());
    for _ in 0..o.runs {
        if with_tcpdump {
            td.push(tcpdump_once()?);
        }
        scaling.push(parallel_scaling(cores));
        let (d1, out) = index_once(1)?;
        let (read1, _) = split_phases(time_phases(&out));
        let (dn, out) = index_once(cores)?;
        let (read_n, tail) = split_phases(time_phases(&out));
        if read1 > 0.0 && read_n > 0.0 {
            reading_ratios.push(read1 / read_n);
            // The --jobs N run with its reading `cores` times as fast as
            // --jobs 1's and all else as it was: the most this pair's
            // ratio could be while the rest runs on one core.
            let best = dn.as_secs_f64() - read_n + read1 / cores as f64;
            caps.push(d1.as_secs_f64() / best);
        }
        i1.push(d1);
        i_n.push(dn);
        tails.push(tail);
        summary = out;
    }
    let tcpdump = with_tcpdump.then(|| median(td));
    // Each --jobs 1 run and the --jobs N run after it saw about the same
    // machine: the spread of their ratios shows how far one run can be off.
    let pair_ratios: Vec<f64> = i1
        .iter()
        .zip(&i_n)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    let (lo, hi) = min_max(&pair_ratios);
    let (t1, tn) = (median(i1), median(i_n));
    let (s_lo, s_hi) = min_max(&scaling);
    let scaling = median(scaling);
    let packets = summary_number(&summary, "packets:", "packets:").unwrap_or(0.0);
    let peak = summary_number(&summary, "memory:", "memory:").unwrap_or(0.0);
    let size = db_size(&db);

    // tshark takes tens of seconds, long enough for the machine's speed to
    // drift between its runs: each run is followed by a `--jobs N` run, and
    // the ratio reported is the median of those pairs' ratios.
    let tshark_conv = if o.tshark && have("tshark") {
        eprintln!(
            "{} runs of tshark -n -q -z conv,tcp -z conv,udp, each followed by pcapidx index --jobs {cores} (this takes a while)...",
            o.tshark_runs.max(1)
        );
        let (mut took, mut ratios) = (Vec::new(), Vec::new());
        for _ in 0..o.tshark_runs.max(1) {
            warm()?;
            let start = Instant::now();
            for f in &files {
                timed(
                    Command::new("tshark")
                        .args(["-n", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r"])
                        .arg(f)
                        .stdout(Stdio::null()),
                )?;
            }
            let t = start.elapsed();
            let ours = index_once(cores)?.0;
            ratios.push(t.as_secs_f64() / ours.as_secs_f64());
            took.push(t);
        }
        let n = took.len();
        Some((median(took), median(ratios), n))
    } else {
        None
    };

    rows.push((
        "capture".into(),
        format!(
            "{} files, {mb:.0} MB, {packets:.0} packets, {:.0} bytes/packet",
            files.len(),
            bytes as f64 / packets.max(1.0)
        ),
    ));
    let rate = |d: Duration| {
        format!(
            "{:.2} s ({:.0} MB/s, {:.2} M packets/s)",
            d.as_secs_f64(),
            mb / d.as_secs_f64(),
            packets / d.as_secs_f64() / 1e6
        )
    };
    rows.push((format!("pcapidx index --jobs {cores}"), rate(tn)));
    rows.push((
        "pcapidx index --jobs 1".into(),
        format!(
            "{} — {cores} jobs are {:.2}x faster (pairs of runs: {lo:.2}x to {hi:.2}x)",
            rate(t1),
            t1.as_secs_f64() / tn.as_secs_f64()
        ),
    ));
    // The --jobs ratio cannot pass what the machine gives parallel work.
    rows.push((
        format!("the machine, {cores} copies of a CPU loop at once"),
        format!(
            "{scaling:.2}x as fast as one ({s_lo:.2}x to {s_hi:.2}x, measured before each --jobs 1 run)"
        ),
    ));
    // The ratio split in two: how the reading itself scales, and how far
    // the phases after it (one core) let the whole go.
    if !reading_ratios.is_empty() {
        let (r_lo, r_hi) = min_max(&reading_ratios);
        rows.push((
            format!("reading alone, --jobs {cores} against --jobs 1"),
            format!(
                "{:.2}x as fast (pairs of runs: {r_lo:.2}x to {r_hi:.2}x); were it {cores}x, the whole run would be at most {:.2}x as fast, the rest staying on one core",
                median(reading_ratios),
                median(caps)
            ),
        ));
    }
    // What follows the last byte runs on one core whatever --jobs says.
    // The split shown is the median run's, so that its parts add up.
    let sum = |t: &[(String, f64)]| t.iter().map(|p| p.1).sum::<f64>();
    tails.sort_by(|a, b| sum(a).total_cmp(&sum(b)));
    let phases = tails.swap_remove(tails.len() / 2);
    let tail = sum(&phases);
    rows.push((
        format!("after the last byte (--jobs {cores})"),
        format!(
            "{tail:.2} s, {:.0}% of the run ({})",
            100.0 * tail / tn.as_secs_f64(),
            phases
                .iter()
                .map(|(name, secs)| format!("{name} {secs:.2} s"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    if let Some(t) = tcpdump {
        rows.push((
            "tcpdump -r -w /dev/null".into(),
            format!(
                "{} — pcapidx takes {:.2}x its time",
                rate(t),
                tn.as_secs_f64() / t.as_secs_f64()
            ),
        ));
    }
    if let Some((t, ratio, n)) = tshark_conv {
        rows.push((
            "tshark conv,tcp conv,udp".into(),
            format!(
                "{} — pcapidx is {ratio:.1}x faster (median of {n} runs, each beside a --jobs {cores} run)",
                rate(t),
            ),
        ));
    }
    rows.push((
        "index size".into(),
        format!(
            "{:.1} MB = {:.2}% of the capture, {:.1} bytes/packet",
            size as f64 / 1e6,
            100.0 * size as f64 / bytes as f64,
            size as f64 / packets.max(1.0)
        ),
    ));
    rows.push(("peak memory (index)".into(), format!("{peak:.0} MB")));

    // Carving: the largest session spanning files, and one of about 1000 packets.
    let picks = [
        (
            "largest multi-file session",
            "ORDER BY packets_fwd + packets_rev DESC",
        ),
        (
            "~1000-packet multi-file session",
            "ORDER BY abs(packets_fwd + packets_rev - 1000)",
        ),
    ];
    for (what, order) in picks {
        let q = format!(
            "SELECT flow_id, src_ip, src_port, dst_ip, dst_port, packets_fwd + packets_rev AS n, files FROM flows WHERE proto = 6 AND files > 1 {order} LIMIT 1"
        );
        let Some(f) = sql(&bin, &db, &q)?.into_iter().next() else {
            continue;
        };
        let id = f["flow_id"].to_string();
        let out = data.with_file_name("carved.pcap");
        let mut t = Vec::new();
        warm()?;
        for _ in 0..5.max(o.runs) {
            t.push(
                timed(
                    Command::new(&bin)
                        .arg("--db")
                        .arg(&db)
                        .args(["carve", "-q", "--flow-id", &id, "-o"])
                        .arg(&out),
                )?
                .0,
            );
        }
        let ours = median(t);
        let mut line = format!(
            "{:.1} ms ({} packets from {} files)",
            ours.as_secs_f64() * 1e3,
            f["n"],
            f["files"]
        );
        if o.tshark && have("tshark") {
            let (a, b) = (
                f["src_ip"].as_str().unwrap_or(""),
                f["dst_ip"].as_str().unwrap_or(""),
            );
            let field = if a.contains(':') {
                "ipv6.addr"
            } else {
                "ip.addr"
            };
            let filter = format!(
                "{field} == {a} && {field} == {b} && tcp.port == {} && tcp.port == {}",
                f["src_port"], f["dst_port"]
            );
            let paths = sql(
                &bin,
                &db,
                &format!(
                    "SELECT DISTINCT f.path FROM packets p JOIN files f USING (file_id) WHERE p.flow_id = {id}"
                ),
            )?;
            warm()?;
            let start = Instant::now();
            for p in paths {
                let tmp = data.with_file_name("tshark-carved.pcap");
                timed(
                    Command::new("tshark")
                        .args([
                            "-n",
                            "-r",
                            p["path"].as_str().unwrap_or(""),
                            "-Y",
                            &filter,
                            "-w",
                        ])
                        .arg(&tmp),
                )?;
            }
            let theirs = start.elapsed();
            let _ = write!(
                line,
                " — tshark -Y on the same files: {:.2} s, pcapidx {:.0}x faster",
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
        rows.push((format!("carve {what}"), line));
    }

    let header = format!(
        "Run: `cargo xtask bench --size {} --file-size {} --mean-frame {} --seed {}` (median of {} runs taking turns, warm page cache)",
        o.size, o.file_size, o.mean_frame, o.seed, o.runs
    );
    report(o, &root, &header, &rows)
}

/// Prints the table and appends it to BENCHMARKS.md.
fn report(o: &Opts, root: &Path, header: &str, rows: &[(String, String)]) -> Result<()> {
    let mut table = format!(
        "\n### {} — commit {} — {}\n\n{header}\n\n| measure | result |\n|---|---|\n",
        today(),
        commit(),
        machine(),
    );
    for (k, v) in rows {
        let _ = writeln!(table, "| {k} | {v} |");
    }
    println!("{table}");
    if o.append {
        let path = root.join("BENCHMARKS.md");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(table.as_bytes())?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_splits_into_reading_and_what_follows() {
        let summary = "packets: 3 in 1 new flows\n\
            time:    reading 1.16 s, saving open flows 0.13 s, building indexes 0.17 s, writing the database file 0.05 s\n\
            memory:  95 MB peak\n";
        let (reading, phases) = split_phases(time_phases(summary));
        assert!((reading - 1.16).abs() < 1e-9);
        let names: Vec<&str> = phases.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "saving open flows",
                "building indexes",
                "writing the database file"
            ]
        );
        let total: f64 = phases.iter().map(|p| p.1).sum();
        assert!((total - 0.35).abs() < 1e-9);
        assert!(time_phases("no such line").is_empty());
        assert_eq!(split_phases(Vec::new()), (0.0, Vec::new()));
    }
}
