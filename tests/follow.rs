//! `pcapidx follow` against tshark's `-z follow,tcp,raw` and
//! `-z follow,udp,raw` on every stream of the corpus that tshark reports
//! unambiguously, and against the generator's truth.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use crate::common::*;
use crate::corpus::{fixture, flow_of_stream};

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
    /// The summary's bytes delivered and missing, per direction.
    bytes: [u64; 2],
    missing: [u64; 2],
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
                        o.bytes[i] = v[side]["bytes"].as_u64().unwrap();
                        o.missing[i] = v[side]["missing"].as_u64().unwrap();
                    }
                }
                t => panic!("unknown event type {t}"),
            }
        }
    }
    out
}

/// `pcapidx follow --flow-id 1 --format raw` one way, with a gap policy.
fn raw_of_flow_1(db: &Path, direction: &str, gaps: &str) -> std::process::Output {
    let args = ["follow", "--flow-id", "1", "--format", "raw", "-q"];
    let mut args = args.to_vec();
    args.extend(["--direction", direction, "--gaps", gaps]);
    pcapidx(db, &args)
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
    /// TCP directions whose index counts (payload, missed) differ from
    /// what follow delivered and found missing.
    counts_differ: Vec<String>,
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
    let fx = fixture(file);
    let (streams, db) = (&fx.streams, &fx.db);
    let flows = sql(db, "SELECT * FROM flows WHERE proto IN (6, 17)");
    let mut ids: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    for (&(proto, id), s) in streams {
        let f = flow_of_stream(&flows, proto, s).map_err(|e| format!("{}: {e}", file.display()))?;
        ids.insert((proto, id), f["flow_id"].as_u64().unwrap());
    }
    let mut tally = Tally::default();
    let mut errors = Vec::new();
    let counts: BTreeMap<u64, [Option<u64>; 4]> = flows
        .iter()
        .map(|f| {
            let c =
                ["payload_fwd", "payload_rev", "missed_fwd", "missed_rev"].map(|k| f[k].as_u64());
            (f["flow_id"].as_u64().unwrap(), c)
        })
        .collect();
    for (proto, name) in [(6u8, "tcp"), (17, "udp")] {
        let stream_ids: Vec<u64> = ids.keys().filter(|k| k.0 == proto).map(|k| k.1).collect();
        if stream_ids.is_empty() {
            continue;
        }
        let flow_ids: Vec<u64> = stream_ids.iter().map(|s| ids[&(proto, *s)]).collect();
        let theirs = tshark_follow(file, name, &stream_ids);
        let ours = pcapidx_follow(db, &flow_ids, &[]);
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
            let c = counts[fid];
            for d in 0..2 {
                let follow = (o.bytes[d] + o.missing[d], o.missing[d]);
                if (c[d], c[2 + d]) != (Some(follow.0), Some(follow.1)) {
                    tally.counts_differ.push(format!(
                        "{} flow {fid} dir {d}: index {:?}/{:?}, follow {follow:?}",
                        file.display(),
                        c[d],
                        c[2 + d]
                    ));
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
    let results: Vec<Result<Tally, String>> = on_four_threads(&files, follow_matches_tshark);
    assert_no_errors(&results);
    let mut t = Tally::default();
    for r in results.iter().flatten() {
        t.compared += r.compared;
        t.with_payload += r.with_payload;
        t.stopped_at_hole += r.stopped_at_hole;
        t.conflicting += r.conflicting;
        t.gaps += r.gaps;
        t.counts_differ.extend(r.counts_differ.iter().cloned());
    }
    // The index's payload and missed bytes are what follow finds.
    assert!(t.counts_differ.is_empty(), "{}", t.counts_differ.join("\n"));
    eprintln!("{t:?}");
    assert!(t.with_payload >= 300, "{t:?}");
}

mod generated {
    //! Captures with known payloads (the generator fills TCP payloads by
    //! sequence number), followed and compared with what was sent.
    use std::path::{Path, PathBuf};

    use pcapidx_gen::link::{EthOpts, Link};
    use pcapidx_gen::packet::{Body, Host, Pkt, flags::*, payload_byte};
    use pcapidx_gen::run::{Container, Frag, RunSpec, RunWriter};

    use super::{Ev, pcapidx_follow};
    use crate::common::*;

    const T0: i64 = 1_709_251_200_000_000_000;
    const MS: i64 = 1_000_000;

    fn c() -> Host {
        Host::v4(1, [10, 0, 0, 1])
    }

    fn s() -> Host {
        Host::v4(2, [10, 0, 0, 2])
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(from_client: bool, fl: u8, seq: u32, ack: u32, len: u16, fill: u8) -> Pkt {
        let (src, dst, sport, dport) = if from_client {
            (c(), s(), 40000, 80)
        } else {
            (s(), c(), 80, 40000)
        };
        let mut p = Pkt::new(
            src,
            dst,
            Body::Tcp {
                sport,
                dport,
                flags: fl,
                seq,
                ack,
                len,
            },
        );
        p.fill = fill;
        p
    }

    fn spec(prefix: &str, snaplen: Option<u32>, rotate: Option<usize>) -> RunSpec {
        RunSpec {
            prefix: prefix.into(),
            containers: vec![Container::Pcap {
                big_endian: false,
                nanos: false,
            }],
            link: Link::Ethernet(EthOpts::default()),
            snaplen,
            rotate_packets: rotate,
            rotate_bytes: None,
        }
    }

    /// Writes packets (client side first) as one flow; returns the folder.
    fn write(name: &str, spec: RunSpec, pkts: &[(bool, Pkt)], frag: Option<Frag>) -> PathBuf {
        let dir = tmpdir(name);
        let mut w = RunWriter::new(&dir, spec).unwrap();
        let id = w.flow(&pkts[0].1);
        for (i, (from_client, p)) in pkts.iter().enumerate() {
            w.write(T0 + i as i64 * MS, id, !from_client, p, frag)
                .unwrap();
        }
        let (files, _) = w.finish().unwrap();
        assert!(!files.is_empty());
        dir
    }

    fn index(dir: &Path) -> PathBuf {
        let db = dir.join("i.db");
        pcapidx_ok(&db, &["index", dir.to_str().unwrap(), "-q"], 0);
        db
    }

    fn raw(db: &Path, direction: &str, gaps: &str) -> Vec<u8> {
        let out = super::raw_of_flow_1(db, direction, gaps);
        assert!(out.status.success(), "{out:?}");
        out.stdout
    }

    fn truth(fill: u8, first_seq: u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| payload_byte(fill, first_seq.wrapping_add(i as u32)))
            .collect()
    }

    /// Out of order, retransmitted, a conflicting copy, a lost segment
    /// (declared missing when the server acknowledges past it), sequence
    /// numbers wrapping in both directions, and files rotated every four
    /// packets so the session spans many of them.
    #[test]
    fn messy_session_across_files_equals_what_was_sent() {
        let isn = u32::MAX - 3000;
        let sisn = u32::MAX - 200;
        let d = |k: u32| isn.wrapping_add(1 + 1000 * k);
        let mut p = vec![
            (true, tcp(true, SYN, isn, 0, 0, 0)),
            (
                false,
                tcp(false, SYN | ACK, sisn, isn.wrapping_add(1), 0, 0),
            ),
            (true, tcp(true, ACK, d(0), sisn.wrapping_add(1), 0, 0)),
        ];
        for k in [0, 1, 3, 2, 4, 4] {
            p.push((
                true,
                tcp(true, ACK | PSH, d(k), sisn.wrapping_add(1), 1000, 1),
            ));
        }
        // Segment 5, then a copy of its second half with other bytes.
        p.push((true, tcp(true, ACK, d(5), sisn.wrapping_add(1), 1000, 1)));
        p.push((
            true,
            tcp(true, ACK, d(5) + 500, sisn.wrapping_add(1), 500, 2),
        ));
        // Segment 6 is lost; 7 arrives and the server acknowledges past 6.
        p.push((true, tcp(true, ACK, d(7), sisn.wrapping_add(1), 1000, 1)));
        p.push((false, tcp(false, ACK, sisn.wrapping_add(1), d(8), 0, 0)));
        p.push((true, tcp(true, ACK, d(8), sisn.wrapping_add(1), 1000, 1)));
        // The response crosses 2^32.
        p.push((
            false,
            tcp(false, ACK | PSH, sisn.wrapping_add(1), d(9), 300, 3),
        ));
        p.push((
            false,
            tcp(false, ACK | PSH, sisn.wrapping_add(301), d(9), 200, 3),
        ));
        p.push((
            true,
            tcp(true, FIN | ACK, d(9), sisn.wrapping_add(501), 0, 0),
        ));
        p.push((
            false,
            tcp(false, FIN | ACK, sisn.wrapping_add(501), d(9) + 1, 0, 0),
        ));
        let dir = write("follow-messy", spec("messy", None, Some(4)), &p, None);
        let db = index(&dir);
        let files = sql(&db, "SELECT files FROM flows");
        assert_eq!(files.len(), 1, "one flow");
        assert!(files[0]["files"].as_u64().unwrap() >= 4);

        let mut client = truth(1, d(0), 9000);
        client[6000..7000].fill(0);
        assert_eq!(raw(&db, "client", "zero"), client);
        let mut skipped = client.clone();
        skipped.drain(6000..7000);
        assert_eq!(raw(&db, "client", "skip"), skipped);
        assert_eq!(
            raw(&db, "server", "zero"),
            truth(3, sisn.wrapping_add(1), 500)
        );

        let ours = &pcapidx_follow(&db, &[1], &[])[&1];
        let gaps: Vec<&Ev> = ours
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Gap(..)))
            .collect();
        assert!(matches!(gaps[..], [Ev::Gap(0, 1000, false)]), "{gaps:?}");
        assert_eq!(ours.inconsistent, [500, 0]);
        // Both directions interleaved: the client's request, then the response.
        let dirs: Vec<usize> = ours
            .events
            .iter()
            .map(|e| match e {
                Ev::Data(d, _) | Ev::Gap(d, ..) => *d,
            })
            .collect();
        let first_server = dirs.iter().position(|&d| d == 1).unwrap();
        assert!(dirs[..first_server].iter().all(|&d| d == 0));
        assert!(dirs[first_server..].iter().all(|&d| d == 1));

        // --gaps error stops at the hole, after what precedes it.
        let out = super::raw_of_flow_1(&db, "client", "error");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(out.stdout, &client[..6000]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("1000 bytes missing at offset 6000 of the client stream"),
            "{err}"
        );
    }

    /// A capture that starts mid-session (no handshake) and a snaplen
    /// that cuts every data segment: offsets stay those of the stream.
    #[test]
    fn mid_stream_start_and_snaplen_cut_segments() {
        let base = 5_000_000u32;
        let mut p = Vec::new();
        for k in [0u32, 1, 2] {
            p.push((true, tcp(true, ACK | PSH, base + 1000 * k, 77, 1000, 4)));
        }
        // A retransmission of bytes before the first segment seen: dropped.
        p.push((true, tcp(true, ACK, base - 500, 77, 1000, 4)));
        p.push((false, tcp(false, ACK, 77, base + 3000, 0, 0)));
        // Ethernet 14 + IP 20 + TCP 20: 146 bytes of each payload are kept.
        let dir = write("follow-cut", spec("cut", Some(200), None), &p, None);
        let db = index(&dir);
        let sent = truth(4, base, 3000);
        let mut zeroed = sent.clone();
        let mut kept = Vec::new();
        for k in 0..3 {
            zeroed[1000 * k + 146..1000 * (k + 1)].fill(0);
            kept.extend_from_slice(&sent[1000 * k..1000 * k + 146]);
        }
        assert_eq!(raw(&db, "client", "zero"), zeroed);
        assert_eq!(raw(&db, "client", "skip"), kept);
        let ours = &pcapidx_follow(&db, &[1], &[])[&1];
        let cuts = ours
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Gap(0, 854, true)))
            .count();
        assert_eq!(cuts, 3);
    }

    /// UDP datagrams sent in IP fragments (last fragment first): each comes
    /// out whole, one chunk per datagram.
    #[test]
    fn fragmented_datagrams_are_joined() {
        let mut p = Vec::new();
        for (i, len) in [1200u16, 50, 3000].iter().enumerate() {
            let mut d = Pkt::new(
                c(),
                s(),
                Body::Udp {
                    sport: 5000,
                    dport: 53,
                    len: *len,
                },
            );
            d.fill = 5 + i as u8;
            d.ip_id = 100 + i as u32;
            p.push((true, d));
        }
        let dir = write(
            "follow-frag",
            spec("frag", None, None),
            &p,
            Some(Frag {
                max: 512,
                reversed: true,
            }),
        );
        let db = index(&dir);
        let ours = &pcapidx_follow(&db, &[1], &[])[&1];
        let datagrams: Vec<&Vec<u8>> = ours
            .events
            .iter()
            .map(|e| match e {
                Ev::Data(0, b) => b,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<Vec<u8>> = [1200usize, 50, 3000]
            .iter()
            .enumerate()
            .map(|(i, len)| {
                (0..*len)
                    .map(|j| payload_byte(5 + i as u8, j as u32))
                    .collect()
            })
            .collect();
        assert_eq!(datagrams, expected.iter().collect::<Vec<_>>());
    }
}

/// What a user sees: each format carries the same bytes, one file per
/// direction with tcpflow names, layer-2 flows and unknown ids explained.
#[test]
fn formats_files_and_refusals() {
    let db = indexed("follow-formats", "encap-qinq");
    let raw = |direction: &str| {
        let out = raw_of_flow_1(&db, direction, "zero");
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let (client, server) = (raw("client"), raw("server"));
    assert!(!client.is_empty() && !server.is_empty());
    let both = raw("both");
    assert_eq!(both.len(), client.len() + server.len());

    // json: one array of flows, events in order, base64 bytes.
    let text = pcapidx_ok(
        &db,
        &["follow", "--flow-id", "1,4", "--format", "json", "-q"],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let flows = v.as_array().unwrap();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["flow_id"], 1);
    assert_eq!(flows[0]["client"], "10.1.0.10:40001");
    // (The generator's ssh session skips sequence numbers: tshark shows
    // the same holes.)
    let mut from_json = [Vec::new(), Vec::new()];
    let mut missing = [0, 0];
    for e in flows[0]["events"].as_array().unwrap() {
        let d = usize::from(e["dir"] == "server");
        assert_eq!(e["offset"].as_u64().unwrap(), from_json[d].len() as u64);
        let len = e["len"].as_u64().unwrap() as usize;
        if e["type"] == "gap" {
            assert_eq!(e["why"], "not captured");
            from_json[d].resize(from_json[d].len() + len, 0);
            missing[d] += len;
            continue;
        }
        let b = base64::engine::general_purpose::STANDARD
            .decode(e["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(b.len(), len);
        from_json[d].extend(b);
    }
    assert!(missing[0] > 0 && missing[1] > 0);
    assert_eq!(from_json, [client.clone(), server.clone()]);
    let summary = &flows[0]["summary"];
    assert_eq!(summary["client"]["bytes"], client.len() - missing[0]);
    assert_eq!(summary["server"]["missing"], missing[1]);

    // ascii: tshark's layout, each chunk after its length.
    let text = pcapidx_ok(&db, &["follow", "--flow-id", "4", "-q"], 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[2], "Follow: tcp,ascii (flow 4)");
    assert!(lines[3].starts_with("Node 0: 10.1.0.11:50100"));
    assert!(lines[5].parse::<usize>().is_ok(), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('\t') && l[1..].parse::<usize>().is_ok())
    );
    // hex: the same bytes.
    let text = pcapidx_ok(
        &db,
        &["follow", "--flow-id", "1", "--format", "hex", "-q"],
        0,
    );
    let mut from_hex = [Vec::new(), Vec::new()];
    for l in text.lines() {
        let d = usize::from(l.starts_with('\t'));
        let l = l.trim_start();
        if let Some(n) = l
            .strip_prefix('[')
            .and_then(|m| m.split_once(" bytes missing"))
        {
            let len = n.0.parse::<usize>().unwrap();
            from_hex[d].resize(from_hex[d].len() + len, 0);
        } else if l.len() > 10 && l[..8].chars().all(|c| c.is_ascii_hexdigit()) {
            let at = usize::from_str_radix(&l[..8], 16).unwrap();
            assert_eq!(at, from_hex[d].len(), "{l}");
            let hex = &l[10..58.min(l.len())];
            from_hex[d].extend(
                hex.split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).unwrap()),
            );
        }
    }
    assert_eq!(from_hex, [client.clone(), server.clone()]);

    // --output-dir: one raw file per direction, tcpflow names.
    let dir = tmpdir("follow-out").join("streams");
    let out = pcapidx(
        &db,
        &[
            "follow",
            "--where",
            "dst_port = 22",
            "--output-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flow 1 (tcp 10.1.0.10:40001 > 198.51.100.7:22)"),
        "{err}"
    );
    assert!(err.contains("bytes missing in"), "{err}");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(
        read("1-010.001.000.010.40001-198.051.100.007.00022.client"),
        client
    );
    assert_eq!(
        read("1-198.051.100.007.00022-010.001.000.010.40001.server"),
        server
    );

    // Layer-2 flows have no payload: named when asked for, left out of a
    // selection; nothing left is "no flow matches" (exit 1).
    let arp = sql(&db, "SELECT flow_id FROM flows WHERE proto IS NULL LIMIT 1");
    let arp = arp[0]["flow_id"].to_string();
    let out = pcapidx(&db, &["follow", "--flow-id", &arp]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a layer-2 flow"));
    let out = pcapidx(&db, &["follow", "--where", "proto IS NULL"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no flow with an IP payload matches"));
    let out = pcapidx(&db, &["follow", "--flow-id", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no flow 999 in the index"));
    // --output-dir writes raw files only.
    let out = pcapidx(
        &db,
        &[
            "follow",
            "--flow-id",
            "1",
            "--format",
            "hex",
            "--output-dir",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A real session cut into rotated files (`multi/ssh-half-duplex`, made
/// from one Zeek capture): followed across them, each stream is what tshark
/// follows in the original single file.
#[test]
fn streams_across_rotated_files_match_tshark_on_the_original() {
    let Some(corpus) = corpus() else { return };
    if !have("tshark") {
        return;
    }
    let original = corpus.join("zeek/ssh-client-side-half-duplex.pcap");
    let db = tmpdir("follow-rotated").join("i.db");
    let set = corpus.join("multi/ssh-half-duplex");
    pcapidx_ok(&db, &["index", set.to_str().unwrap(), "-q"], 0);
    let fx = fixture(&original);
    let flows = sql(&db, "SELECT * FROM flows WHERE proto = 6");
    let mut pairs = Vec::new();
    for (&(proto, id), s) in fx.streams.iter().filter(|(k, _)| k.0 == 6) {
        let f = flow_of_stream(&flows, proto, s).unwrap();
        pairs.push((
            id,
            f["flow_id"].as_u64().unwrap(),
            f["files"].as_u64().unwrap(),
        ));
    }
    let stream_ids: Vec<u64> = pairs.iter().map(|p| p.0).collect();
    let flow_ids: Vec<u64> = pairs.iter().map(|p| p.1).collect();
    let theirs = tshark_follow(&original, "tcp", &stream_ids);
    let ours = pcapidx_follow(&db, &flow_ids, &[]);
    let mut spanning = 0;
    for &(sid, fid, files) in &pairs {
        let (t, o) = (&theirs[&sid], &ours[&fid]);
        let nodes = nodes_of(t, o);
        for (dir, node) in nodes.iter().enumerate() {
            let node = node.unwrap();
            let bytes: Vec<u8> = t
                .chunks
                .iter()
                .filter(|c| c.0 == node)
                .flat_map(|c| c.1.iter().copied())
                .collect();
            assert_eq!(compare(o, dir, &bytes), Ok(Verdict::Same), "stream {sid}");
        }
        spanning += usize::from(files > 1 && !t.chunks.is_empty());
    }
    assert!(spanning >= 5, "{spanning} streams with payload span files");
}
