//! `pcapidx follow`: the reassembled payload of flows, as text, hex, raw
//! bytes, JSON or one file per direction (printed by `pcapidx_output::follow`).
use std::io::{self, BufWriter, IsTerminal};
use std::path::Path;

use anyhow::{Context, Result, bail};
use pcapidx_output::follow::{DirFiles, Printer, summary_line};
use pcapidx_stream::FollowError;

use crate::Outcome;
use crate::cli::{FollowArgs, FollowFormat};

pub fn run(db: &Path, args: &FollowArgs) -> Result<Outcome> {
    let to_files = args.output_dir.is_some();
    if !to_files && args.format == FollowFormat::Raw && io::stdout().is_terminal() {
        bail!(
            "refusing to write raw bytes to a terminal (redirect them, or use --format ascii or hex)"
        );
    }
    let store = crate::open_read_only(db)?;
    let chosen = crate::chosen_flows(&store, &args.flows)?;
    let (ids, window) = (&chosen.ids, chosen.window);
    if ids.is_empty() {
        eprintln!("pcapidx: no flow matches");
        return Ok(Outcome::Incomplete);
    }
    let mut flows = Vec::with_capacity(ids.len());
    for &id in ids {
        match pcapidx_stream::flow(&store, id) {
            Ok(f) => flows.push(f),
            Err(FollowError::NoSuchFlow(id)) => {
                eprintln!("pcapidx: no flow {id} in the index");
                return Ok(Outcome::Incomplete);
            }
            Err(e @ FollowError::NotIp(_)) if chosen.by_filter => {
                if !args.quiet {
                    eprintln!("pcapidx: {e}; left out");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if flows.is_empty() {
        eprintln!("pcapidx: no flow with an IP payload matches");
        return Ok(Outcome::Incomplete);
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let stdout = io::stdout().lock();
    let format = if to_files {
        FollowFormat::Raw
    } else {
        args.format
    };
    let mut out = Printer::new(
        format.into(),
        args.direction.into(),
        args.gaps.into(),
        BufWriter::with_capacity(1 << 16, stdout),
    );
    out.start()?;
    for flow in &flows {
        if let Some(dir) = &args.output_dir {
            out.files = Some(DirFiles::create(dir, flow, args.direction.into())?);
        }
        out.begin(flow)?;
        let done = pcapidx_stream::follow(&store, flow, window, &mut |e| out.event(flow, e));
        let done = match done {
            Ok(d) => d,
            Err(FollowError::Stopped(why)) => {
                // --gaps error: what came before the gap is out; say where it stopped.
                io::Write::flush(&mut out.out)?;
                if let Some(files) = out.files.take() {
                    files.finish()?;
                }
                eprintln!("pcapidx: flow {}: {why} (--gaps error)", flow.id);
                return Ok(Outcome::Incomplete);
            }
            // Writing failed (a closed pipe is no error: main says nothing).
            Err(FollowError::Io(e)) => return Err(e.into()),
            Err(e) => return Err(anyhow::Error::from(e).context(format!("flow {}", flow.id))),
        };
        out.end(flow, &done)?;
        if let Some(files) = out.files.take() {
            files.finish()?;
        }
        if !args.quiet {
            eprintln!("{}", summary_line(flow, &done));
        }
    }
    out.close()?;
    Ok(Outcome::Success)
}
