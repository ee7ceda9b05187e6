//! pcapidx: the command line. Parses arguments, calls the library crates,
//! formats their results, and owns every exit-code decision.
mod carve_cmd;
mod cli;
mod follow_cmd;
mod index_cmd;
mod summary;
mod watch_cmd;

use std::io;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use pcapidx_store::{FlowQuery, QueryRow, Store, Value};

use cli::{Cli, Command, FlowChoice, FlowFilter, Format, TimeArg};
use pcapidx_output::RowPrinter;

/// What a command wants the process to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Nothing found, or work not done completely.
    Incomplete,
    /// Stopped by Ctrl-C after committing what was done (the shell's 128 + SIGINT).
    Interrupted,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcapidx: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, joined by ": " (the libraries' wrapping
/// variants are transparent, so no cause is said twice).
fn describe(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// `pcapidx flows | head` closes the pipe early: that is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Index(args) => index_cmd::run(args.db.or(&cli.db), &args),
        Command::Flows(args) => {
            let store = open_read_only(args.db.or(&cli.db))?;
            let table = args.format.format == Format::Table;
            let query = FlowQuery {
                sort: args.sort.as_deref(),
                desc: args.desc,
                limit: args.limit,
                table,
                ..flow_query(&store, &args.filter)?
            };
            let (sql, params) = pcapidx_store::flows_sql(&query);
            let mut p = stdout_printer(args.format.format).quiet_when_empty();
            print_rows(&store, &sql, &params, &mut p).context("flows")?;
            let rows = p.rows();
            p.finish()?;
            if rows > 0 || args.limit == Some(0) {
                return Ok(Outcome::Success);
            }
            if !query.filters() {
                eprintln!("pcapidx: {}", store.why_no_flows()?);
            } else if table {
                eprintln!("pcapidx: no flow matches");
            }
            Ok(Outcome::Incomplete)
        }
        Command::Macs(args) => {
            let store = open_read_only(args.db.or(&cli.db))?;
            let table = args.format.format == Format::Table;
            let macs = store.macs(table, args.limit).context("macs")?;
            let mut p = stdout_printer(args.format.format);
            p.columns(&macs.columns)?;
            for r in &macs.rows {
                p.row(r)?;
            }
            p.finish()?;
            Ok(Outcome::Success)
        }
        Command::Summary(args) => {
            let store = open_read_only(args.db.or(&cli.db))?;
            let window = pcapidx_store::TimeWindow {
                since_ns: resolve_time(&store, args.since)?,
                until_ns: resolve_time(&store, args.until)?,
            };
            summary::print(&store, args.top, args.format, window)?;
            Ok(Outcome::Success)
        }
        Command::Carve(args) => carve_cmd::run(args.db.or(&cli.db), &args),
        Command::Follow(args) => follow_cmd::run(args.db.or(&cli.db), &args),
        Command::Files(args) => {
            let store = open_read_only(args.db.or(&cli.db))?;
            let table = args.format.format == Format::Table;
            let (sql, params) = pcapidx_store::files_sql(table, &args.status);
            print_query(&store, &sql, &params, args.format.format)?;
            Ok(Outcome::Success)
        }
        Command::Forget(args) => index_cmd::forget(args.db.or(&cli.db), &args),
        Command::Serve(args) => serve(args.db.or(&cli.db), &args),
        Command::Export(args) => export(args.db.or(&cli.db), &args),
        Command::Sql(args) => {
            let store = open_read_only(args.db.or(&cli.db))?;
            print_query(&store, &args.query, &[], args.format.format).map_err(explain_sql_error)?;
            Ok(Outcome::Success)
        }
        Command::Generate(args) => {
            match args.profile {
                cli::Profile::Sample => {
                    let files = pcapidx_gen::sample::write_all(&args.out)
                        .with_context(|| format!("writing samples to {}", args.out.display()))?;
                    eprintln!(
                        "wrote {} sample captures to {}",
                        files.len(),
                        args.out.display()
                    );
                }
                cli::Profile::Bench => {
                    let cfg = pcapidx_gen::bench::Config {
                        total_bytes: args.size,
                        file_bytes: args.file_size,
                        mean_frame: args.mean_frame,
                        seed: args.seed,
                    };
                    let s = pcapidx_gen::bench::write(&args.out, &cfg)
                        .with_context(|| format!("writing to {}", args.out.display()))?;
                    eprintln!(
                        "wrote {} files, {} packets, {:.1} MB to {}",
                        s.files,
                        s.packets,
                        s.bytes as f64 / 1e6,
                        args.out.display()
                    );
                }
            }
            Ok(Outcome::Success)
        }
    }
}

/// `pcapidx export DEST`.
fn export(db: &std::path::Path, args: &cli::ExportArgs) -> Result<Outcome> {
    // An index that is not there is an error, not one made empty.
    open_read_only(db)?;
    let _lock = pcapidx_index::lock(db).context("pcapidx export")?;
    let store =
        Store::open(db).with_context(|| format!("cannot open the index {}", db.display()))?;
    let opts = pcapidx_export::Options {
        packets: args.packets,
    };
    let url = args.dest.to_str().filter(|d| pcapidx_source::is_url(d));
    if url.is_some() && args.compact {
        anyhow::bail!(
            "--compact merges files of a local DEST; an object-store DEST is compacted by \
             the engine that reads it (or export to a folder, compact, then copy)"
        );
    }
    let done = match url {
        Some(u) => pcapidx_export::export_to_objects(&store, u, opts),
        None => pcapidx_export::export(&store, &args.dest, opts),
    }
    .with_context(|| format!("exporting into {}", args.dest.display()))?;
    let compacted = if args.compact {
        Some(
            pcapidx_export::compact(&args.dest, &done.sensor)
                .with_context(|| format!("compacting {}", args.dest.display()))?,
        )
    } else {
        None
    };
    store.leave_wal();
    if !args.quiet {
        println!(
            "export {} of sensor {}: {} flows (new, or still open at the last export){} and the \
             files table, in {} Parquet files under {}",
            done.version,
            done.sensor,
            done.flows,
            if args.packets {
                format!(", their {} packets", done.packets)
            } else {
                String::new()
            },
            done.files.len(),
            args.dest.display()
        );
        if let Some(c) = &compacted {
            println!(
                "compacted: {} Parquet files merged into {} (earlier files tables removed)",
                c.merged, c.into
            );
        }
    }
    Ok(Outcome::Success)
}

/// `pcapidx serve`: prints the link to open, then serves until stopped.
fn serve(db: &std::path::Path, args: &cli::ServeArgs) -> Result<Outcome> {
    // A check now, so that a wrong --db is said at once, not on each page.
    open_read_only(db)?;
    let mut cfg = pcapidx_serve::Config::new(db.to_path_buf(), args.listen);
    cfg.token = pcapidx_serve::token_for(args.listen, args.token.as_deref(), args.no_auth)?;
    if args.s3_events {
        if cfg.token.is_none() {
            cfg.token = Some(pcapidx_serve::new_token()?);
        }
        cfg.on_s3_event = Some(index_cmd::event_handler(db.to_path_buf()));
    }
    let token = cfg.token.clone();
    pcapidx_serve::run(cfg, |addr| {
        let host = if addr.ip().is_unspecified() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into())
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let link = match &token {
            Some(t) => format!("http://{host}:{}/?token={t}", addr.port()),
            None => format!("http://{host}:{}/", addr.port()),
        };
        println!("serving {} at {link}", db.display());
        if token.is_none() && !addr.ip().is_loopback() {
            eprintln!("pcapidx: --no-auth: anyone who can reach this port can read the index and its packets");
        }
        eprintln!("pcapidx: Ctrl-C stops");
        let _ = io::Write::flush(&mut io::stdout());
    })
    .context("pcapidx serve")?;
    Ok(Outcome::Success)
}

pub(crate) fn open_read_only(db: &std::path::Path) -> Result<Store> {
    Store::open_read_only(db).with_context(|| format!("cannot open the index {}", db.display()))
}

/// The flows a [`FlowFilter`] chooses, its times resolved against the
/// index. A `--where` that does not compile is an error naming it (not the
/// query built around it).
pub(crate) fn flow_query<'a>(store: &Store, f: &'a FlowFilter) -> Result<FlowQuery<'a>> {
    if let Some(w) = &f.where_ {
        store
            .check_where(w)
            .with_context(|| format!("--where {w:?}"))?;
    }
    Ok(FlowQuery {
        where_: f.where_.as_deref(),
        grep: &f.grep,
        ignore_case: f.ignore_case,
        hosts: &f.host,
        since_ns: resolve_time(store, f.since)?,
        until_ns: resolve_time(store, f.until)?,
        in_files: in_files(store, &f.in_file)?,
        ..FlowQuery::default()
    })
}

/// The file ids `--in-file` names.
fn in_files(store: &Store, names: &[String]) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for n in names {
        ids.extend(store.files_named(n).context("--in-file")?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The flows a [`FlowChoice`] names, and its time window.
pub(crate) struct Chosen {
    pub ids: Vec<u64>,
    pub window: pcapidx_carve::Window,
    /// Chosen by filters rather than named by id.
    pub by_filter: bool,
}

pub(crate) fn chosen_flows(store: &Store, c: &FlowChoice) -> Result<Chosen> {
    let query = flow_query(store, &c.filter)?;
    let by_filter = c.flow_id.is_empty();
    Ok(Chosen {
        ids: if by_filter {
            store.flow_ids(&query)?
        } else {
            c.flow_id.clone()
        },
        window: pcapidx_carve::Window {
            since_ns: query.since_ns,
            until_ns: query.until_ns,
        },
        by_filter,
    })
}

/// A `--since`/`--until` value as nanoseconds since the epoch (relative
/// ones against the index's last packet, or the clock).
pub(crate) fn resolve_time(store: &Store, t: Option<TimeArg>) -> Result<Option<i64>> {
    Ok(match t {
        None => None,
        Some(TimeArg::At(ns)) => Some(ns),
        Some(TimeArg::BeforeLast(d)) => {
            Some(store.last_packet_ns()?.unwrap_or(0).saturating_sub(d))
        }
        Some(TimeArg::BeforeNow(d)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            Some(now.saturating_sub(d))
        }
    })
}

/// Makes SQLite's refusal to write through a read-only connection readable
/// (the store refuses most such statements before they run; this is what
/// SQLite itself refuses at run time), by its error code.
fn explain_sql_error(e: anyhow::Error) -> anyhow::Error {
    let readonly = e.chain().any(|c| {
        c.downcast_ref::<pcapidx_store::StoreError>()
            .and_then(pcapidx_store::StoreError::sqlite_code)
            == Some(pcapidx_store::SqliteCode::ReadOnly)
    });
    if readonly {
        anyhow::anyhow!("refused: the SQL is read-only and this statement would write")
    } else {
        e
    }
}

/// Rows to standard output in `format`, tables fitted to the terminal.
fn stdout_printer(format: Format) -> RowPrinter<io::BufWriter<io::StdoutLock<'static>>> {
    let out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    RowPrinter::new(out, format.into()).fit_to(terminal_width())
}

/// Runs a query and prints its rows; returns how many were printed.
fn print_query(store: &Store, sql: &str, params: &[Value], format: Format) -> Result<u64> {
    let mut p = stdout_printer(format);
    print_rows(store, sql, params, &mut p)?;
    let rows = p.rows();
    p.finish()?;
    Ok(rows)
}

/// Runs a query into a printer (which the caller finishes).
fn print_rows<W: io::Write>(
    store: &Store,
    sql: &str,
    params: &[Value],
    p: &mut RowPrinter<W>,
) -> Result<()> {
    store.query::<anyhow::Error>(sql, params, |row| {
        match row {
            QueryRow::Columns(c) => p.columns(c)?,
            QueryRow::Values(v) => p.row(v)?,
        }
        Ok(())
    })
}

/// The width of the terminal standard output goes to, if it goes to one.
pub(crate) fn terminal_width() -> Option<usize> {
    terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| usize::from(w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let full = io::Error::new(io::ErrorKind::StorageFull, "No space left on device");
        let e =
            anyhow::Error::from(pcapidx_carve::CarveError::Io(full)).context("writing out.pcap");
        assert_eq!(describe(&e), "writing out.pcap: No space left on device");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
