//! `pcapidx carve`: choose flows, check their files, write the capture.
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use pcapidx_carve::{CarveError, Container};

use crate::Outcome;
use crate::cli::{CarveArgs, CarveFormat};

pub fn run(db: &Path, args: &CarveArgs) -> Result<Outcome> {
    let started = Instant::now();
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && io::stdout().is_terminal() {
        bail!("refusing to write a capture to a terminal (redirect it, or use -o FILE)");
    }
    let store = crate::open_read_only(db)?;
    let crate::Chosen {
        mut ids, window, ..
    } = crate::chosen_flows(&store, &args.flows)?;
    let mut foreign = 0;
    if let Some(from) = &args.from {
        let wanted = pcapidx_export::read_flow_list(from)
            .map_err(|e| anyhow::anyhow!("--from {}: {e}", from.display()))?;
        let ours = store.sensor()?;
        ids = Vec::new();
        let mut others = std::collections::BTreeSet::new();
        for w in wanted {
            match (&w.sensor, &ours) {
                (Some(s), Some(o)) if s != o => {
                    foreign += 1;
                    others.insert(s.clone());
                }
                (Some(s), None) => {
                    bail!(
                        "--from names sensor {s:?}, but this index has no sensor id yet \
                         (`pcapidx index` gives it one)"
                    )
                }
                _ => ids.push(w.flow_id),
            }
        }
        if foreign > 0 {
            eprintln!(
                "pcapidx: {foreign} row{} of --from belong to another sensor ({}), not this \
                 index's ({}): carve them on that sensor",
                if foreign == 1 { "" } else { "s" },
                others.into_iter().collect::<Vec<_>>().join(", "),
                ours.unwrap_or_default()
            );
        }
        ids.sort_unstable();
        ids.dedup();
    }
    if ids.is_empty() {
        eprintln!("pcapidx: no flow matches; nothing written");
        return Ok(Outcome::Incomplete);
    }
    let container = match args.format {
        CarveFormat::Auto => Container::Auto,
        CarveFormat::Pcap => Container::Pcap,
        CarveFormat::Pcapng => Container::PcapNg,
    };
    // A regular file is written beside and renamed at the end: a record
    // that is not the one indexed removes it, so records are checked as
    // they are written (each read once). Anything written in place is
    // checked first, since what reaches it cannot be taken back.
    let in_place = to_stdout
        || !matches!(
            pcapidx_carve::output_target(&args.output),
            Ok(pcapidx_carve::OutputTarget::Replace(_))
        );
    let planned = if in_place {
        pcapidx_carve::plan(&store, &ids, container, window)
    } else {
        pcapidx_carve::plan_streaming(&store, &ids, container, window)
    };
    let plan = match planned {
        // Not found, like a --where that matches nothing: exit status 1.
        Err(CarveError::NoSuchFlow(id)) => {
            eprintln!("pcapidx: no flow {id} in the index; nothing written");
            return Ok(Outcome::Incomplete);
        }
        plan => plan?,
    };
    if plan.packets() == 0 {
        eprintln!("pcapidx: no packet of the flows is inside --since/--until; nothing written");
        return Ok(Outcome::Incomplete);
    }
    let carved = if to_stdout {
        let out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
        let carved = plan.write(out)?;
        io::stdout().flush()?;
        carved
    } else {
        pcapidx_carve::write_file(&plan, &args.output)
            .with_context(|| format!("writing {}", args.output.display()))?
    };
    if !args.quiet {
        let objects = if carved.requests > 0 {
            format!(
                "; {} in {} request{} to object storage",
                human_bytes(carved.fetched),
                carved.requests,
                if carved.requests == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        eprintln!(
            "carved {} flow{}, {} packets, {:.1} KB from {} file{} ({} read{objects}) in {:.1} ms as {}",
            carved.flows,
            if carved.flows == 1 { "" } else { "s" },
            carved.packets,
            carved.bytes as f64 / 1e3,
            carved.files_read,
            if carved.files_read == 1 { "" } else { "s" },
            human_bytes(carved.bytes_read),
            started.elapsed().as_secs_f64() * 1e3,
            if carved.pcapng { "pcapng" } else { "pcap" },
        );
    }
    for u in &plan.unavailable {
        eprintln!(
            "pcapidx: {}; {} packet{} of it left out",
            u.error,
            u.packets,
            if u.packets == 1 { "" } else { "s" }
        );
    }
    Ok(if plan.unavailable.is_empty() && foreign == 0 {
        Outcome::Success
    } else {
        Outcome::Incomplete
    })
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}
