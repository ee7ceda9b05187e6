//! `pcapidx index`: options, a progress bar on a terminal, per-file
//! messages and the closing summary.
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pcapidx_index::{Action, FileOutcome, FlowConfig, Options, Phase, Progress, Report};

use crate::Outcome;
use crate::cli::IndexArgs;

fn ns(seconds: f64) -> i64 {
    (seconds * 1e9).min(i64::MAX as f64) as i64
}

/// The run's options from the command line, with `stop` raised by the
/// first Ctrl-C or SIGTERM (a second one ends the process at once).
pub fn options(args: &IndexArgs) -> Result<Options> {
    let stop = Arc::new(AtomicBool::new(false));
    for (signal, status) in [
        (signal_hook::consts::SIGINT, 130),
        (signal_hook::consts::SIGTERM, 143),
    ] {
        signal_hook::flag::register_conditional_shutdown(signal, status, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()))
            .context("installing the signal handlers")?;
    }
    let mut ignore = args.ignore.clone();
    if let Some(f) = &args.ignore_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("--ignore-file {}", f.display()))?;
        ignore.extend(
            pcapidx_index::parse_ignore_file(&text)
                .map_err(|e| anyhow::anyhow!("--ignore-file {}: {e}", f.display()))?,
        );
    }
    let events = match &args.s3_event {
        Some(f) => read_event(f)?,
        None => Vec::new(),
    };
    let opts = Options {
        events,
        flow: FlowConfig {
            tcp_timeout_ns: ns(args.tcp_timeout),
            tcp_closed_timeout_ns: ns(args.tcp_closed_timeout),
            udp_timeout_ns: ns(args.udp_timeout),
            other_timeout_ns: ns(args.other_timeout),
            orient: match args.orient {
                crate::cli::OrientArg::Evidence => pcapidx_index::Orient::Evidence,
                crate::cli::OrientArg::FirstPacket => pcapidx_index::Orient::FirstPacket,
            },
            ..FlowConfig::default()
        },
        ignore,
        jobs: args.jobs.unwrap_or_else(|| Options::default().jobs).max(1),
        max_file_size: args.max_file_size,
        checkpoint_packets: args.checkpoint_packets,
        stop: Some(stop),
        retain: args.retain,
        reindex: args.reindex,
        sensor: args.sensor.clone(),
        ..Options::default()
    };
    Ok(opts)
}

/// The objects an S3 event document names as created; its other records
/// are noted on stderr. A malformed document is an error before anything
/// is opened or written.
fn read_event(f: &Path) -> Result<Vec<pcapidx_source::event::Created>> {
    let text = if f.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .context("--s3-event -: reading standard input")?;
        t
    } else {
        std::fs::read_to_string(f).with_context(|| format!("--s3-event {}", f.display()))?
    };
    let ev = pcapidx_source::event::parse(&text)
        .map_err(|e| anyhow::anyhow!("--s3-event {}: {e}", f.display()))?;
    for note in &ev.skipped {
        eprintln!("pcapidx: skipped: {note}");
    }
    Ok(ev.created)
}

/// What `pcapidx serve --s3-events` does with an event POSTed to it: index
/// its objects (one run, under default options) and say what was done.
pub fn event_handler(db: std::path::PathBuf) -> pcapidx_serve::EventHandler {
    Arc::new(move |ev: pcapidx_source::event::Event| {
        let opts = Options {
            events: ev.created,
            ..Options::default()
        };
        let progress = Progress::default();
        let report =
            pcapidx_index::run(&db, &[], &opts, &progress, &mut |_| {}).map_err(|e| match e {
                pcapidx_index::IndexError::Locked(_) => {
                    pcapidx_serve::EventRefused::Busy(e.to_string())
                }
                e => pcapidx_serve::EventRefused::Failed(e.to_string()),
            })?;
        let files: Vec<serde_json::Value> = report
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path,
                    "action": format!("{:?}", f.action).to_lowercase(),
                    "status": f.status.as_str(),
                    "error": f.error,
                    "packets": f.packets,
                })
            })
            .collect();
        let problems: Vec<String> = report
            .walk_errors
            .iter()
            .map(|(p, e)| format!("{}: {e}", p.display()))
            .collect();
        Ok(serde_json::json!({
            "files": files,
            "errors": problems,
            "skipped": ev.skipped,
            "packets": report.packets,
            "complete": report.complete(),
        }))
    })
}

pub fn run(db: &Path, args: &IndexArgs) -> Result<Outcome> {
    let opts = options(args)?;
    if args.watch {
        return crate::watch_cmd::run(db, args, &opts);
    }
    let progress = Progress::default();
    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let done = Arc::new(AtomicBool::new(false));
    let report = std::thread::scope(|s| {
        let bar = show_bar.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        if let Some(bar) = &bar {
            let bar = bar.clone();
            let done = done.clone();
            let p = &progress;
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    bar.set_length(p.bytes_total.load(Ordering::Relaxed));
                    bar.set_position(p.bytes_read.load(Ordering::Relaxed));
                    bar.set_message(bar_message(p));
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            });
        }
        let quiet = args.quiet;
        let mut on_file = |o: &FileOutcome| {
            if let Some(msg) = file_message(o) {
                let print = || eprintln!("{msg}");
                match &bar {
                    Some(b) => b.suspend(print),
                    None if !quiet || o.is_failure() => print(),
                    None => {}
                }
            }
        };
        let r = pcapidx_index::run(db, &args.paths, &opts, &progress, &mut on_file);
        done.store(true, Ordering::Relaxed);
        r
    })
    .with_context(|| format!("indexing into {}", db.display()))?;
    if !args.quiet {
        // A reader that went away (`pcapidx index DIR | head -1`) does not
        // change how the run went, which the exit status still says.
        match write_summary(&mut std::io::stdout().lock(), &report) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("printing the summary");
            }
            _ => {}
        }
    }
    warn_other_options(&report);
    if let Some(r) = &report.retained
        && !args.quiet
    {
        eprintln!("{}", retained_message(r));
    }
    for (path, err) in &report.walk_errors {
        eprintln!("pcapidx: {}: {err}", path.display());
    }
    if report.interrupted {
        eprintln!(
            "pcapidx: interrupted: {} packets read in this run are committed; run the same \
             command again to continue where it stopped",
            report.packets
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(if report.complete() {
        Outcome::Success
    } else {
        Outcome::Incomplete
    })
}

/// `pcapidx forget PATH...`.
pub fn forget(db: &Path, args: &crate::cli::ForgetArgs) -> Result<Outcome> {
    if !db.exists() {
        anyhow::bail!("no index at {}", db.display());
    }
    let r = pcapidx_index::forget(db, &args.paths)
        .with_context(|| format!("forgetting files in {}", db.display()))?;
    for p in &r.unmatched {
        eprintln!(
            "pcapidx: {}: no file under this path is in the index (or it is forgotten already)",
            p.display()
        );
    }
    if !args.quiet && !r.paths.is_empty() {
        println!("{}", forgotten_line(&r.forgotten));
    }
    Ok(if r.unmatched.is_empty() {
        Outcome::Success
    } else {
        Outcome::Incomplete
    })
}

fn forgotten_line(f: &pcapidx_index::Forgotten) -> String {
    format!(
        "forgot {} file{} ({} packets): {} flow{} deleted, {} kept with packets in other files \
         (their counts recomputed)",
        f.files,
        if f.files == 1 { "" } else { "s" },
        f.packets,
        f.flows_deleted,
        if f.flows_deleted == 1 { "" } else { "s" },
        f.flows_trimmed
    )
}

/// What `--retain` forgot, in one line.
pub fn retained_message(r: &pcapidx_index::Retained) -> String {
    format!(
        "pcapidx: --retain: {} (the oldest {})",
        forgotten_line(&r.forgotten),
        r.paths.first().map(String::as_str).unwrap_or("")
    )
}

/// Files indexed earlier under other options than this run's, and files
/// older than what the index held.
pub fn warn_other_options(report: &Report) {
    if let Some(first) = report.backfilled.first() {
        let n = report.backfilled.len();
        eprintln!(
            "pcapidx: {n} file{} older packets than the index already held ({first}{}): \
             sessions crossing between {} and later files may be split in two flows; \
             `pcapidx index --reindex` of the folder rebuilds them whole",
            if n == 1 { " holds" } else { "s hold" },
            if n > 1 { ", and others" } else { "" },
            if n == 1 { "it" } else { "them" }
        );
    }
    if let Some((path, what)) = report.other_options.first() {
        let n = report.other_options.len();
        eprintln!(
            "pcapidx: {n} file{} indexed earlier under other options ({path}: {what}{}); \
             their flows stay as they were built, and flows continuing into them mix both: \
             `pcapidx index --reindex` on them applies this run's options",
            if n == 1 { " was" } else { "s were" },
            if n > 1 { ", and others" } else { "" }
        );
    }
}

/// The bar's text after the byte counts: files, then what the run does
/// once every byte is read (the bar stands at 100% meanwhile).
fn bar_message(p: &Progress) -> String {
    let files = format!(
        "files {}/{}",
        p.files_done.load(Ordering::Relaxed),
        p.files_total.load(Ordering::Relaxed)
    );
    match p.phase() {
        Phase::Reading => files,
        phase => format!("{files}, {}...", phase.describe()),
    }
}

/// One line about a file worth telling the user about.
pub fn file_message(o: &FileOutcome) -> Option<String> {
    let err = o.error.as_deref().unwrap_or("");
    match o.action {
        Action::Failed => Some(format!("pcapidx: {}: {err}", o.path)),
        Action::Skipped => Some(format!("pcapidx: skipped {}: {err}", o.path)),
        Action::Indexed | Action::Resumed if o.is_failure() => Some(format!(
            "pcapidx: {}: {} (read only in part, {} packet{} kept): {err}",
            o.path,
            o.status.as_str(),
            o.packets,
            if o.packets == 1 { "" } else { "s" }
        )),
        Action::Moved | Action::Duplicate | Action::Missing | Action::Indexed | Action::Resumed => {
            o.note
                .as_ref()
                .map(|n| format!("pcapidx: {}: {n}", o.path))
                .or_else(|| {
                    (o.action == Action::Missing)
                        .then(|| format!("pcapidx: {}: missing: {err}", o.path))
                })
        }
        _ => None,
    }
}

fn write_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    // Each file in exactly one group, so the groups add up to the files seen.
    let count = |action: Action, complete: bool| {
        r.files
            .iter()
            .filter(|f| f.action == action && f.is_failure() != complete)
            .count()
    };
    let partial = r
        .files
        .iter()
        .filter(|f| matches!(f.action, Action::Indexed | Action::Resumed) && f.is_failure())
        .count();
    writeln!(
        out,
        "files:   {} indexed, {} continued, {} unchanged, {} partial, {} failed, {} skipped, {} not captures",
        count(Action::Indexed, true),
        count(Action::Resumed, true),
        r.count(Action::Unchanged),
        partial,
        r.count(Action::Failed),
        r.count(Action::Skipped),
        r.count(Action::NotACapture),
    )?;
    let changes: Vec<String> = [
        (Action::Moved, "moved"),
        (Action::Duplicate, "duplicates (not indexed again)"),
        (Action::Missing, "missing"),
    ]
    .iter()
    .map(|&(a, what)| (r.count(a), what))
    .chain(std::iter::once((
        r.files
            .iter()
            .filter(|f| {
                f.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("new content"))
            })
            .count(),
        "overwritten (new content indexed)",
    )))
    .filter(|&(n, _)| n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !changes.is_empty() {
        writeln!(out, "changed: {}", changes.join(", "))?;
    }
    if let Some((named, total)) = r.reindexed {
        writeln!(
            out,
            "reindex: {named} file{} named, {total} read again in all (files sharing flows with them)",
            if named == 1 { "" } else { "s" }
        )?;
    }
    let not_captures: Vec<&str> = r
        .files
        .iter()
        .filter(|f| f.action == Action::NotACapture)
        .map(|f| f.path.as_str())
        .collect();
    // A folder of logs beside the captures must not make a line of kilobytes.
    const NAMED: usize = 3;
    match not_captures.len() {
        0 => {}
        n if n <= NAMED => writeln!(out, "not captures: {}", not_captures.join(", "))?,
        n => writeln!(
            out,
            "not captures: {}, and {} more (`pcapidx files --status not-a-capture` lists them)",
            not_captures[..NAMED].join(", "),
            n - NAMED
        )?,
    }
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "packets: {} in {} new flows",
        r.packets, r.flows_started
    )?;
    writeln!(
        out,
        "read:    {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} packets/s)",
        r.bytes as f64 / 1e6,
        secs,
        r.bytes as f64 / 1e6 / secs,
        r.packets as f64 / secs
    )?;
    // A run that read nothing has no ratio to give (it used to say 0.0%).
    let share = if r.bytes > 0 {
        let pct = 100.0 * r.index_bytes as f64 / r.bytes as f64;
        format!(" ({pct:.1}% of the bytes read this run)")
    } else {
        String::new()
    };
    writeln!(out, "index:   {:.1} MB{share}", r.index_bytes as f64 / 1e6)?;
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(p, d)| format!("{} {:.2} s", p.describe(), d.as_secs_f64()))
        .collect();
    writeln!(out, "time:    {}", phases.join(", "))?;
    if let Some(peak) = peak_memory() {
        writeln!(out, "memory:  {:.0} MB peak", peak as f64 / 1e6)?;
    }
    Ok(())
}

/// Peak resident memory of this process, where the system tells it (Linux).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_says_what_follows_the_last_byte() {
        let p = Progress::default();
        p.files_total.store(3, Ordering::Relaxed);
        p.files_done.store(1, Ordering::Relaxed);
        assert_eq!(bar_message(&p), "files 1/3");
        p.files_done.store(3, Ordering::Relaxed);
        p.set_phase(Phase::Indexing);
        assert_eq!(bar_message(&p), "files 3/3, building indexes...");
    }
}
