//! `pcapidx index --watch`: a status line on a terminal (or a line a minute
//! when piped), a line per notable file, and one closing line.
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pcapidx_index::{Action, FileOutcome, Options, Progress, WatchEvent, WatchOptions};

use crate::Outcome;
use crate::cli::IndexArgs;
use crate::index_cmd::{file_message, warn_other_options};

/// What the status line shows, updated at each pass.
#[derive(Default)]
struct Status {
    files: usize,
    flows: u64,
    lag: Option<Duration>,
    last_commit: Option<Instant>,
    /// Since the last line printed when piped.
    packets_since: u64,
    flows_since: u64,
    files_since: std::collections::BTreeSet<String>,
}

/// How often a piped watch reports, at most.
const LINE_EVERY: Duration = Duration::from_secs(60);

pub fn run(db: &Path, args: &IndexArgs, opts: &Options) -> Result<Outcome> {
    // Objects are listed at each rescan; a prefix may be empty for now.
    for p in args
        .paths
        .iter()
        .filter(|p| !p.to_str().is_some_and(pcapidx_source::is_url))
    {
        if let Err(e) = std::fs::metadata(p) {
            anyhow::bail!(
                "{}: {e} (--watch follows files and folders that exist: create it first)",
                p.display()
            );
        }
    }
    let wopts = WatchOptions {
        commit_interval: args.commit_interval,
        rescan_interval: args.rescan_interval,
    };
    let progress = Progress::default();
    let tty = !args.quiet && std::io::stderr().is_terminal();
    let status = Mutex::new(Status::default());
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let report = std::thread::scope(|s| {
        let bar = tty.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        if let Some(bar) = &bar {
            let (bar, status, progress, done) = (bar.clone(), &status, &progress, &done);
            s.spawn(move || status_loop(&bar, status, progress, done));
        }
        let quiet = args.quiet;
        let mut last_line = Instant::now();
        let mut first_done = false;
        let mut reported = std::collections::BTreeSet::new();
        let print = |msg: &str| match &bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        };
        let mut on_event = |e: WatchEvent| match e {
            WatchEvent::File(o) => {
                let msg = watch_file_message(o, first_done);
                if let Some(msg) = msg.filter(|_| !quiet || o.is_failure()) {
                    print(&msg);
                }
            }
            WatchEvent::Notice(n) => {
                if !quiet {
                    print(&format!("pcapidx: {n}"));
                }
            }
            WatchEvent::Pass(p) => {
                let r = &p.report;
                let Ok(mut st) = status.lock() else { return };
                if p.full {
                    st.files = r.files.len();
                }
                st.flows += r.flows_started;
                st.lag = p.lag.or(st.lag);
                st.last_commit = Some(Instant::now());
                st.packets_since += r.packets;
                st.flows_since += r.flows_started;
                st.files_since.extend(
                    r.files
                        .iter()
                        .filter(|f| f.packets > 0)
                        .map(|f| f.path.clone()),
                );
                for (path, err) in &r.walk_errors {
                    // A folder that cannot be listed is said once, not every rescan.
                    if reported.insert((path.clone(), err.clone())) {
                        print(&format!("pcapidx: {}: {err}", path.display()));
                    }
                }
                if let Some(ret) = r.retained.as_ref().filter(|_| !quiet) {
                    print(&crate::index_cmd::retained_message(ret));
                }
                if p.first {
                    first_done = true;
                    drop(st);
                    warn_other_options(r);
                    if !quiet {
                        print(&format!(
                            "pcapidx: watching {} ({} files, {} packets indexed now in {:.1} s); \
                             Ctrl-C or SIGTERM stops",
                            args.paths
                                .iter()
                                .map(|p| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            r.files.len(),
                            r.packets,
                            r.elapsed.as_secs_f64()
                        ));
                    }
                    last_line = Instant::now();
                    return;
                }
                if bar.is_none() && !quiet && last_line.elapsed() >= LINE_EVERY {
                    if st.packets_since > 0 {
                        print(&format!(
                            "pcapidx: watching: {} packets, {} new flows from {} files in the \
                             last {:.0} s; lag {}",
                            st.packets_since,
                            st.flows_since,
                            st.files_since.len(),
                            last_line.elapsed().as_secs_f64(),
                            lag_text(st.lag)
                        ));
                    }
                    st.packets_since = 0;
                    st.flows_since = 0;
                    st.files_since.clear();
                    last_line = Instant::now();
                }
            }
        };
        let r = pcapidx_index::watch(db, &args.paths, opts, &wopts, &progress, &mut on_event);
        done.store(true, Ordering::Relaxed);
        r
    })
    .with_context(|| format!("watching into {}", db.display()))?;
    if !args.quiet {
        println!(
            "stopped after {}: {} packets in {} new flows from {} files indexed and \
             committed ({:.1} MB index); `pcapidx index --watch` on the same paths continues \
             from here",
            span(started.elapsed()),
            report.packets,
            report.flows_started,
            report.files_read,
            report.index_bytes as f64 / 1e6
        );
    }
    Ok(Outcome::Success)
}

/// Redraws the status line until the watch is done.
fn status_loop(bar: &ProgressBar, status: &Mutex<Status>, p: &Progress, done: &AtomicBool) {
    let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
    while !done.load(Ordering::Relaxed) {
        let packets = p.packets.load(Ordering::Relaxed);
        let now = Instant::now();
        window.push_back((now, packets));
        while window
            .front()
            .is_some_and(|w| now.duration_since(w.0) > Duration::from_secs(5))
        {
            window.pop_front();
        }
        let rate = window.front().map_or(0.0, |&(t, n)| {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.5 {
                (packets - n) as f64 / dt
            } else {
                0.0
            }
        });
        if let Ok(st) = status.lock() {
            let commit = st.last_commit.map_or("none yet".into(), |t| {
                format!("{:.1} s ago", t.elapsed().as_secs_f64())
            });
            bar.set_message(format!(
                "watching: {} files, {packets} packets ({rate:.0}/s), {} new flows, lag {}, \
                 last commit {commit}",
                st.files,
                st.flows,
                lag_text(st.lag)
            ));
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(250));
    }
    bar.finish_and_clear();
}

fn lag_text(lag: Option<Duration>) -> String {
    lag.map_or("-".into(), |l| format!("{:.1} s", l.as_secs_f64()))
}

/// After the first pass, a file read from the start is news.
fn watch_file_message(o: &FileOutcome, after_first: bool) -> Option<String> {
    file_message(o).or_else(|| {
        (after_first && o.action == Action::Indexed)
            .then(|| format!("pcapidx: {}: new file", o.path))
    })
}

/// "3 h 2 min", "4 min 10 s", "12.3 s".
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(span(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 120)), "3 h 2 min");
        assert_eq!(span(Duration::from_secs(2 * 86400 + 3600)), "2 d 1 h");
    }
}
