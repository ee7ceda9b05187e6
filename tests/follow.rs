//! `pcapidx follow` against tshark's `-z follow,tcp,raw` and
//! `-z follow,udp,raw` on every stream of the corpus that tshark reports
//! unambiguously, and against the generator's truth.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use crate::common::*;
use crate::corpus::{NO_TIMEOUTS, flow_of_stream, index_one, tshark_streams};

/// One stream as `tshark -z follow,PROTO,raw,N` prints it.
#[derive(Debug, Default)]
struct Theirs {
    /// "Node 0" and "Node 1": `ip:port` (`[ip]:port` for IPv6).
    nodes: [String; 2],
    /// Chunks in order, with the node that sent them.
    chunks: Vec<(usize, Vec<u8>)>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Runs tshark once for all `ids` of one protocol of `file`.
fn tshark_follow(file: &Path, proto: &str, ids: &[u64]) -> BTreeMap<u64, Theirs> {
    let mut out = BTreeMap::new();
    // Each follow tap filters every packet: a few hundred per run keep
    // tshark fast on captures with thousands of streams.
    for batch in ids.chunks(200) {
        let mut cmd = Command::new("tshark");
        cmd.args(["-n", "-q", "-r"]).arg(file);
        for id in batch {
            cmd.args(["-z", &format!("follow,{proto},raw,{id}")]);
        }
        let o = cmd.output().expect("run tshark");
        let text = String::from_utf8_lossy(&o.stdout);
        let mut cur: Option<(u64, Theirs)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Filter: ") {
                let id = rest.rsplit(' ').next().unwrap().parse().unwrap();
                cur = Some((id, Theirs::default()));
            } else if let Some(n) = line.strip_prefix("Node 0: ") {
                cur.as_mut().unwrap().1.nodes[0] = n.to_string();
            } else if let Some(n) = line.strip_prefix("Node 1: ") {
                cur.as_mut().unwrap().1.nodes[1] = n.to_string();
            } else if line.starts_with("=====") {
                if let Some((id, t)) = cur.take() {
                    out.insert(id, t);
                }
            } else if let Some((_, t)) = cur.as_mut() {
                if line.starts_with("Follow: ") || line.is_empty() {
                    continue;
                }
                let (node, hex) = match line.strip_prefix('\t') {
                    Some(h) => (1, h),
                    None => (0, line),
                };
                t.chunks.push((node, unhex(hex)));
            }
        }
    }
    out
}

/// One event of `pcapidx follow --format jsonl`.
#[derive(Debug, Clone)]
enum Ev {
    Data(usize, Vec<u8>),
    /// Direction, length, and whether the snaplen cut it (else never captured).
    Gap(usize, u64, bool),
}

#[derive(Debug, Default)]
struct Ours {
    client: String,
    server: String,
    events: Vec<Ev>,
    inconsistent: [u64; 2],
}

fn pcapidx_follow(db: &Path, ids: &[u64], extra: &[&str]) -> BTreeMap<u64, Ours> {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut out: BTreeMap<u64, Ours> = BTreeMap::new();
    // Comma lists, in batches that keep the command line short.
    for batch in list.chunks(500) {
        let joined = batch.join(",");
        let mut args = vec!["follow", "--flow-id", &joined, "--format", "jsonl", "-q"];
        args.extend_from_slice(extra);
        let text = pcapidx_ok(db, &args, 0);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["flow_id"].as_u64().unwrap();
            let o = out.entry(id).or_default();
            let dir = usize::from(v["dir"] == "server");
            match v["type"].as_str().unwrap() {
                "flow" => {
                    o.client = cell(&v["client"]);
                    o.server = cell(&v["server"]);
                }
                "data" => {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(v["data"].as_str().unwrap())
                        .unwrap();
                    assert_eq!(b.len() as u64, v["len"].as_u64().unwrap());
                    o.events.push(Ev::Data(dir, b));
                }
                "gap" => o.events.push(Ev::Gap(
                    dir,
                    v["len"].as_u64().unwrap(),
                    v["why"] == "cut by snaplen",
                )),
                "end" => {
                    for (i, side) in ["client", "server"].iter().enumerate() {
                        o.inconsistent[i] = v[side]["inconsistent"].as_u64().unwrap();
                    }
                }
                t => panic!("unknown event type {t}"),
            }
        }
    }
    out
}

/// How one direction compared.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Same,
    /// tshark stopped at a hole nobody acknowledged; pcapidx went on.
    TsharkStoppedAtHole,
    /// The stream had conflicting copies of some bytes (counted), and
    /// tshark kept another one.
    ConflictingCopies,
}

/// Compares one direction. What tshark would print of our events: the
/// bytes; for a hole it filled, its marker text "[N bytes missing in
/// capture file]" and a NUL (Wireshark writes it into the stream); for a
/// snaplen-cut segment nothing (Wireshark drops the missing bytes, and
/// what follows moves up). Where tshark never filled a hole (no ACK past
/// it), it prints nothing from there on; pcapidx reports the gap and
/// delivers the rest.
fn compare(ours: &Ours, dir: usize, theirs: &[u8]) -> Result<Verdict, String> {
    let mut expected = Vec::new();
    let mut cuts_at_holes = Vec::new();
    for e in &ours.events {
        match e {
            Ev::Data(d, b) if *d == dir => expected.extend_from_slice(b),
            Ev::Gap(d, len, false) if *d == dir => {
                cuts_at_holes.push(expected.len());
                expected
                    .extend_from_slice(format!("[{len} bytes missing in capture file]").as_bytes());
                expected.push(0);
            }
            _ => {}
        }
    }
    if expected == theirs {
        return Ok(Verdict::Same);
    }
    if cuts_at_holes.iter().any(|&at| expected[..at] == *theirs) {
        return Ok(Verdict::TsharkStoppedAtHole);
    }
    if ours.inconsistent[dir] > 0 {
        return Ok(Verdict::ConflictingCopies);
    }
    let first = expected
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(theirs.len()));
    Err(format!(
        "{} bytes, tshark {}, first difference at {first}",
        expected.len(),
        theirs.len()
    ))
}

#[derive(Debug, Default)]
struct Tally {
    compared: usize,
    with_payload: usize,
    stopped_at_hole: usize,
    conflicting: usize,
    gaps: usize,
}

/// tshark's node (Node 0 sent the stream's first packet) for our client
/// and server. Its nodes are the packet's last addresses: behind a tunnel
/// (VXLAN) the inner frame's MACs, with an IPv6 routing header the final
/// destination. So: the exact `ip:port`; else the other node when one side
/// matched; else the port, when the two ports differ.
fn nodes_of(t: &Theirs, o: &Ours) -> [Option<usize>; 2] {
    let eps = [&o.client, &o.server];
    let mut nodes = eps.map(|ep| t.nodes.iter().position(|n| n == ep));
    match nodes {
        [Some(n), None] => nodes[1] = Some(1 - n),
        [None, Some(n)] => nodes[0] = Some(1 - n),
        [None, None] => {
            let port = |s: &str| s.rsplit(':').next().unwrap_or("").to_string();
            if port(eps[0]) != port(eps[1]) {
                nodes = eps.map(|ep| t.nodes.iter().position(|n| port(n) == port(ep)));
            }
        }
        _ => {}
    }
    nodes
}

/// Follows every unambiguous stream of `file` both ways and compares.
fn follow_matches_tshark(file: &Path) -> Result<Tally, String> {
    let (streams, _) = tshark_streams(file);
    let db = index_one("follow", file, &NO_TIMEOUTS);
    let flows = sql(&db, "SELECT * FROM flows WHERE proto IN (6, 17)");
    let mut ids: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    for (&(proto, id), s) in &streams {
        let f = flow_of_stream(&flows, proto, s).map_err(|e| format!("{}: {e}", file.display()))?;
        ids.insert((proto, id), f["flow_id"].as_u64().unwrap());
    }
    let mut tally = Tally::default();
    let mut errors = Vec::new();
    for (proto, name) in [(6u8, "tcp"), (17, "udp")] {
        let stream_ids: Vec<u64> = ids.keys().filter(|k| k.0 == proto).map(|k| k.1).collect();
        if stream_ids.is_empty() {
            continue;
        }
        let flow_ids: Vec<u64> = stream_ids.iter().map(|s| ids[&(proto, *s)]).collect();
        let theirs = tshark_follow(file, name, &stream_ids);
        let ours = pcapidx_follow(&db, &flow_ids, &[]);
        for (sid, fid) in stream_ids.iter().zip(&flow_ids) {
            let t = &theirs[sid];
            let o = &ours[fid];
            if t.chunks.is_empty() && o.events.is_empty() {
                tally.compared += 1;
                continue;
            }
            let nodes = nodes_of(t, o);
            for dir in 0..2 {
                let Some(node) = nodes[dir] else {
                    errors.push(format!(
                        "{} {name} stream {sid} (flow {fid}): nodes {:?}, ours {} / {}",
                        file.display(),
                        t.nodes,
                        o.client,
                        o.server
                    ));
                    break;
                };
                let bytes: Vec<u8> = t
                    .chunks
                    .iter()
                    .filter(|c| c.0 == node)
                    .flat_map(|c| c.1.iter().copied())
                    .collect();
                match compare(o, dir, &bytes) {
                    Ok(Verdict::Same) => {}
                    Ok(Verdict::TsharkStoppedAtHole) => tally.stopped_at_hole += 1,
                    Ok(Verdict::ConflictingCopies) => tally.conflicting += 1,
                    Err(e) => errors.push(format!(
                        "{} {name} stream {sid} (flow {fid}) {}: {e}",
                        file.display(),
                        ["client", "server"][dir]
                    )),
                }
            }
            tally.compared += 1;
            tally.with_payload += 1;
            tally.gaps += o.events.iter().filter(|e| matches!(e, Ev::Gap(..))).count();
        }
    }
    if errors.is_empty() {
        Ok(tally)
    } else {
        Err(errors.join("\n"))
    }
}

fn corpus_captures(corpus: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["zeek", "arkime", "formats"] {
        files.extend(captures_in(&corpus.join(folder)));
    }
    let mut suricata: Vec<PathBuf> = std::fs::read_dir(corpus.join("suricata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    suricata.sort();
    for d in suricata {
        files.extend(captures_in(&d));
    }
    files
}

#[test]
fn follow_matches_tshark_on_the_corpus() {
    let Some(corpus) = corpus() else { return };
    if !have("tshark") {
        return;
    }
    let files = corpus_captures(&corpus);
    let results: Vec<Result<Tally, String>> = std::thread::scope(|s| {
        let chunks: Vec<_> = files.chunks(files.len().div_ceil(4).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|f| follow_matches_tshark(f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut t = Tally::default();
    for r in results.iter().flatten() {
        t.compared += r.compared;
        t.with_payload += r.with_payload;
        t.stopped_at_hole += r.stopped_at_hole;
        t.conflicting += r.conflicting;
        t.gaps += r.gaps;
    }
    eprintln!("{t:?}");
    assert!(t.with_payload >= 300, "{t:?}");
}
