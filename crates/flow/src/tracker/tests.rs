//! The tracker's tests: sessions, splits, timeouts, fragments, positions,
//! checkpoints and restores, the state blob, the rows a sink receives.
use super::*;
use pcapidx_decode::{Decoded, Ip, Layer};
use std::collections::BTreeMap;

/// Keeps what an index would: flow rows, positions, the open-flow state.
#[derive(Default)]
struct Rec {
    flows: BTreeMap<u64, FlowRecord>,
    chunks: BTreeMap<u64, Vec<Position>>,
    open: Vec<u8>,
    /// The last flow whose first row came: first rows come in id order.
    last_new: u64,
    /// The files each flow's rows named.
    files: BTreeMap<u64, Vec<u32>>,
}

impl FlowSink for Rec {
    fn chunk(&mut self, id: u64, data: Vec<u8>) {
        let v = self.chunks.entry(id).or_default();
        pcapidx_positions::decode_into(&data, v).unwrap();
    }
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    ) {
        assert_eq!(
            before,
            self.flows.get(&rec.id).map(RowCounts::of),
            "flow {}: what its last row said",
            rec.id
        );
        let named = self.files.entry(rec.id).or_default();
        for f in new_files {
            assert!(!named.contains(f), "flow {} named file {f} twice", rec.id);
            named.push(*f);
        }
        if !self.flows.contains_key(&rec.id) {
            assert!(
                rec.id > self.last_new,
                "first row of {} after {}",
                rec.id,
                self.last_new
            );
            self.last_new = rec.id;
        }
        if let Some(data) = first_chunk {
            let v = self.chunks.entry(rec.id).or_default();
            assert!(v.is_empty(), "the first chunk comes first");
            pcapidx_positions::decode_into(&data, v).unwrap();
        }
        self.flows.insert(rec.id, rec.clone());
    }
    fn open_flows(&mut self, state: Vec<u8>) {
        self.open = state;
    }
}

impl Rec {
    /// The open flows as a later run would restore them.
    fn saved(&self) -> Vec<state::SavedFlow> {
        state::decode_all(&self.open)
            .unwrap()
            .into_iter()
            .map(|(id, st)| state::SavedFlow::from_record(&self.flows[&id], st))
            .collect()
    }
}

fn ip4(a: u8) -> [u8; 16] {
    let mut v = [0; 16];
    v[..4].copy_from_slice(&[10, 0, 0, a]);
    v
}

/// A decoded IPv4 packet from host `s` port `sp` to host `d` port `dp`.
fn pkt(proto: u8, s: u8, sp: u16, d: u8, dp: u16, flags: u8, seq: u32) -> Decoded {
    Decoded {
        layer: Layer::Ip,
        src_mac: Some([0, 0, 0, 0, 0, s]),
        dst_mac: Some([0, 0, 0, 0, 0, d]),
        ethertype: 0x0800,
        ip: Ip {
            version: 4,
            src: ip4(s),
            dst: ip4(d),
            proto,
            ports: (proto != 1).then_some((sp, dp)),
            tcp: (proto == 6).then_some(Tcp {
                flags,
                header_len: 20,
                seq,
                ack: 0,
            }),
            icmp: (proto == 1).then_some((8, 0)),
            frag: Frag::Whole,
            ..Default::default()
        },
        ..Default::default()
    }
}

const S: u8 = tcp_flags::SYN;
const A: u8 = tcp_flags::ACK;
const F: u8 = tcp_flags::FIN;
const R: u8 = tcp_flags::RST;

/// Flows as "id src>dst fwd/rev flags" lines.
fn lines(rec: &Rec) -> Vec<String> {
    rec.flows
        .values()
        .map(|f| {
            let (s, sp) = f.src();
            let (d, dp) = f.dst();
            format!(
                "{} {}:{}>{}:{} {}/{} {:02x}/{:02x}",
                f.id,
                s[3],
                sp,
                d[3],
                dp,
                f.packets[0],
                f.packets[1],
                f.tcp_flags[0],
                f.tcp_flags[1]
            )
        })
        .collect()
}

fn push(t: &mut Tracker, sink: &mut impl FlowSink, pkts: &[(f64, Decoded)], i: usize) {
    push_in(t, sink, pkts, i, 1);
}

fn push_in(
    t: &mut Tracker,
    sink: &mut impl FlowSink,
    pkts: &[(f64, Decoded)],
    i: usize,
    file_id: u32,
) {
    let (secs, d) = &pkts[i];
    // Packets with nothing to key on never reach the tracker.
    let Some(s) = Summary::of(d) else { return };
    let p = PacketIn {
        ts_ns: (secs * 1e9) as i64,
        record_ts_ns: (secs * 1e9) as i64,
        file_id,
        offset: 24 + i as u64 * 100,
        caplen: 60,
        orig_len: 60,
        iface: 0,
        s: &s,
    };
    t.push(&p, sink);
}

/// Runs packets (seconds, decoded) through a tracker.
fn run_with(cfg: Config, pkts: &[(f64, Decoded)]) -> (Vec<String>, Rec) {
    let mut t = Tracker::new(cfg, 1);
    let mut rec = Rec::default();
    for i in 0..pkts.len() {
        push(&mut t, &mut rec, pkts, i);
    }
    t.finish(&mut rec);
    (lines(&rec), rec)
}

fn run(pkts: &[(f64, Decoded)]) -> Vec<String> {
    run_with(Config::default(), pkts).0
}

#[test]
fn tcp_session_and_orientation() {
    let session = [
        (0.0, pkt(6, 1, 1000, 2, 80, S, 100)),
        (0.1, pkt(6, 2, 80, 1, 1000, S | A, 500)),
        (0.2, pkt(6, 1, 1000, 2, 80, A, 101)),
        (0.3, pkt(6, 1, 1000, 2, 80, F | A, 101)),
        (0.4, pkt(6, 2, 80, 1, 1000, F | A, 501)),
    ];
    assert_eq!(run(&session), ["1 1:1000>2:80 3/2 13/13"]);
    // First seen at the SYN-ACK: the client is still src.
    assert_eq!(run(&session[1..]), ["1 1:1000>2:80 2/2 11/13"]);
    // First seen mid-stream from the server: the first sender is src.
    assert_eq!(run(&session[4..]), ["1 2:80>1:1000 1/0 11/00"]);
}

#[test]
fn tcp_session_splits() {
    let syn = |t, seq| (t, pkt(6, 1, 1000, 2, 80, S, seq));
    // A retransmitted SYN stays; another ISN on the same ports is a new connection.
    assert_eq!(
        run(&[syn(0.0, 7), syn(1.0, 7), syn(2.0, 9)]),
        ["1 1:1000>2:80 2/0 02/00", "2 1:1000>2:80 1/0 02/00"]
    );
    // A SYN after FIN both ways, or after RST, starts a new session even with the same ISN.
    let fin_both = [
        syn(0.0, 7),
        (0.1, pkt(6, 1, 1000, 2, 80, F | A, 8)),
        (0.2, pkt(6, 2, 80, 1, 1000, F | A, 3)),
        syn(0.3, 7),
    ];
    assert_eq!(run(&fin_both).len(), 2);
    let rst = [
        syn(0.0, 7),
        (0.1, pkt(6, 2, 80, 1, 1000, R | A, 0)),
        syn(0.2, 7),
    ];
    assert_eq!(run(&rst).len(), 2);
    // FIN one way only: the SYN with the same ISN is a retransmission.
    let fin_one = [
        syn(0.0, 7),
        (0.1, pkt(6, 1, 1000, 2, 80, F | A, 8)),
        syn(0.2, 7),
    ];
    assert_eq!(run(&fin_one).len(), 1);
    // A session first seen mid-stream gets a base sequence from its first
    // segment: a SYN from that side with another sequence number splits.
    let mid = [
        (0.0, pkt(6, 1, 1000, 2, 80, A, 50)),
        syn(0.1, 49),
        syn(0.2, 7),
    ];
    assert_eq!(run(&mid).len(), 2);
}

#[test]
fn closed_tcp_sessions_end_sooner() {
    let c = |t, flags| (t, pkt(6, 1, 1000, 2, 80, flags, 5));
    let s = |t, flags| (t, pkt(6, 2, 80, 1, 1000, flags, 9));
    // FIN both ways, then a late ACK within 5 s: one flow; after 5 s
    // of silence the ports' next packet is another flow.
    let closing = [c(0.0, A), c(1.0, F | A), s(1.1, F | A)];
    let with = |late: (f64, Decoded)| {
        let mut v = closing.to_vec();
        v.push(late);
        run(&v)
    };
    assert_eq!(with(c(5.0, A)).len(), 1);
    assert_eq!(with(c(7.0, A)).len(), 2);
    // One FIN is not closed: the full TCP timeout applies.
    assert_eq!(run(&[c(0.0, A), c(1.0, F | A), c(100.0, A)]).len(), 1);
    // RST closes too, in either direction.
    assert_eq!(run(&[c(0.0, A), s(1.0, R), c(3.0, A)]).len(), 1);
    assert_eq!(run(&[c(0.0, A), s(1.0, R), c(9.0, A)]).len(), 2);
    // The flow ends on time while other traffic goes on: it is written
    // out, not kept for the run's end.
    let mut t = Tracker::new(Config::default(), 1);
    let mut rec = Rec::default();
    let mut pkts = closing.to_vec();
    pkts.extend((0..20).map(|i| (2.0 + f64::from(i), pkt(17, 7, 53, 8, 53, 0, 0))));
    for i in 0..pkts.len() {
        push(&mut t, &mut rec, &pkts, i);
    }
    assert_eq!(t.stats().flows_finished, 1);
    assert_eq!(t.active_flows(), 1);
}

#[test]
fn timeouts() {
    let u = |t| (t, pkt(17, 1, 5353, 2, 53, 0, 0));
    assert_eq!(
        run(&[u(0.0), u(60.0), u(120.0)]).len(),
        1,
        "a gap equal to the timeout continues"
    );
    assert_eq!(run(&[u(0.0), u(60.5)]).len(), 2);
    let t = |t| (t, pkt(6, 1, 1000, 2, 80, A, 5));
    assert_eq!(run(&[t(0.0), t(400.0)]).len(), 1);
    assert_eq!(run(&[t(0.0), t(481.0)]).len(), 2);
    let cfg = Config {
        udp_timeout_ns: 5 * SECOND,
        ..Config::default()
    };
    assert_eq!(run_with(cfg, &[u(0.0), u(6.0)]).0.len(), 2);
    // Timestamps going back a little never count as idle time.
    assert_eq!(run(&[u(100.0), u(90.0), u(100.0)]).len(), 1);
    // Idle time is measured on the capture clock: a packet stamped in the
    // past does not revive a flow that has timed out.
    let other = |t| (t, pkt(17, 3, 53, 4, 53, 0, 0));
    assert_eq!(run(&[u(0.0), other(30.0), other(90.0), u(59.0)]).len(), 3);
    // Back by more than the longest timeout: the clock follows, so the
    // flows after the jump are whole, and nothing ends at the jump.
    let lines = run(&[
        u(10_000.0),
        other(0.0),
        other(50.0),
        other(100.0),
        u(10_001.0),
    ]);
    assert_eq!(lines, ["1 1:5353>2:53 2/0 00/00", "2 3:53>4:53 3/0 00/00"]);
}

#[test]
fn icmp_and_layer2() {
    let echo = pkt(1, 1, 0, 2, 0, 0, 0);
    let reply = pkt(1, 2, 0, 1, 0, 0, 0);
    assert_eq!(
        run(&[(0.0, echo), (0.1, reply), (0.2, echo)]),
        ["1 1:0>2:0 2/1 00/00"]
    );
    let arp = |s: u8, d: u8| Decoded {
        layer: Layer::L2,
        ethertype: 0x0806,
        src_mac: Some([0, 0, 0, 0, 0, s]),
        dst_mac: Some([0, 0, 0, 0, 0, d]),
        ..Default::default()
    };
    let (lines, rec) = run_with(
        Config::default(),
        &[(0.0, arp(1, 2)), (0.1, arp(2, 1)), (0.2, arp(1, 3))],
    );
    assert_eq!(lines.len(), 2);
    let first = &rec.flows[&1];
    assert_eq!((first.packets, first.key.ethertype), ([1, 1], 0x0806));
    assert_eq!(first.src_mac, Some([0, 0, 0, 0, 0, 1]));
}

fn frag(d: Decoded, f: Frag) -> Decoded {
    let mut d = d;
    d.ip.frag = f;
    if matches!(f, Frag::Later { .. }) {
        d.ip.ports = None;
        d.ip.tcp = None;
    }
    d
}

#[test]
fn fragments_join_their_datagram() {
    let u = pkt(17, 1, 5353, 2, 53, 0, 0);
    let first = frag(u, Frag::First { id: 9 });
    let later = frag(u, Frag::Later { id: 9 });
    assert_eq!(
        run(&[(0.0, first), (0.0, later), (0.0, later)]),
        ["1 1:5353>2:53 3/0 00/00"]
    );
    // Out of order: the later fragments wait for the first.
    assert_eq!(
        run(&[(0.0, later), (0.0, later), (0.0, first)]),
        ["1 1:5353>2:53 3/0 00/00"]
    );
    // Never completed: a flow without ports, after the hold time.
    let other = frag(u, Frag::Later { id: 10 });
    let lines = run(&[(0.0, other), (1.0, first), (40.0, u)]);
    assert_eq!(lines, ["1 1:5353>2:53 2/0 00/00", "2 1:0>2:0 1/0 00/00"]);
}

#[test]
fn fragments_join_their_datagram_across_a_checkpoint() {
    let u = pkt(17, 1, 5353, 2, 53, 0, 0);
    let pkts = [
        (0.0, frag(u, Frag::First { id: 9 })),
        (0.1, frag(u, Frag::Later { id: 9 })),
    ];
    let mut rec = Rec::default();
    let mut t = Tracker::new(Config::default(), 1);
    push(&mut t, &mut rec, &pkts, 0);
    t.checkpoint(&mut rec);
    push(&mut t, &mut rec, &pkts, 1);
    t.finish(&mut rec);
    assert_eq!(lines(&rec), ["1 1:5353>2:53 2/0 00/00"]);
}

#[test]
fn first_rows_come_in_id_order_while_reading() {
    // A busy session from 0 s to 30 s (never idle) among short UDP
    // flows, one every 100 ms. `Rec` checks that first rows come in id
    // order; they must not wait for the run's end either.
    let mut pkts = Vec::new();
    for i in 0..3000u32 {
        let t = f64::from(i) * 0.01;
        pkts.push((t, pkt(6, 1, 1000, 2, 80, A, i)));
        if i % 10 == 5 {
            let port = 5000 + (i / 10) as u16;
            pkts.push((t, pkt(17, 3, port, 250, 53, 0, 0)));
        }
    }
    let mut t = Tracker::new(Config::default(), 1);
    let mut rec = Rec::default();
    let upto = |s: f64| pkts.iter().take_while(|(t, _)| *t < s).count();
    for i in 0..upto(13.0) {
        push(&mut t, &mut rec, &pkts, i);
    }
    // The session's row (forced at 10 s old) and those of the short
    // flows idle since, are in; the flows of the last 2 s are not.
    assert!(rec.flows.contains_key(&1));
    assert!(rec.flows.len() > 80, "{}", rec.flows.len());
    assert!(rec.flows.len() < 120, "{}", rec.flows.len());
    for i in upto(13.0)..pkts.len() {
        push(&mut t, &mut rec, &pkts, i);
    }
    t.finish(&mut rec);
    assert_eq!(rec.flows.len(), 301);
    assert_eq!(rec.chunks[&1].len(), 3000);
    assert!(rec.chunks.values().skip(1).all(|c| c.len() == 1));
}

#[test]
fn positions_follow_the_packets() {
    let pkts: Vec<(f64, Decoded)> = (0..3000)
        .map(|i| {
            (
                i as f64 * 0.001,
                pkt(
                    6,
                    (i % 2 + 1) as u8,
                    1000 - (i % 2) as u16 * 920,
                    (2 - i % 2) as u8,
                    80 + (i % 2) as u16 * 920,
                    A,
                    i as u32,
                ),
            )
        })
        .collect();
    let (lines, rec) = run_with(Config::default(), &pkts);
    assert_eq!(lines, ["1 1:1000>2:80 1500/1500 10/10"]);
    let pos = &rec.chunks[&1];
    assert_eq!(pos.len(), 3000);
    assert!(
        pos.iter()
            .enumerate()
            .all(|(i, p)| p.offset == 24 + i as u64 * 100 && p.reverse == (i % 2 == 1))
    );
}

#[test]
fn checkpoint_and_restore_continue_flows() {
    let pkts = [
        (0.0, pkt(6, 1, 1000, 2, 80, S, 100)),
        (0.1, pkt(6, 2, 80, 1, 1000, S | A, 500)),
        (0.2, pkt(17, 1, 53, 2, 5353, 0, 0)),
        (0.3, pkt(6, 1, 1000, 2, 80, A, 101)),
        (0.4, pkt(6, 1, 1000, 2, 80, S, 999)),
        (0.5, pkt(17, 2, 5353, 1, 53, 0, 0)),
    ];
    let whole = run(&pkts);
    for cut in 1..pkts.len() {
        // Run up to the cut, checkpoint, and continue in a new tracker
        // that knows only the saved open states.
        let mut rec = Rec::default();
        let mut t1 = Tracker::new(Config::default(), 1);
        for i in 0..cut {
            push(&mut t1, &mut rec, &pkts, i);
        }
        t1.checkpoint(&mut rec);
        let mut t2 = Tracker::new(Config::default(), t1.next_id());
        for saved in rec.saved() {
            t2.restore(&saved).unwrap();
        }
        for i in cut..pkts.len() {
            push(&mut t2, &mut rec, &pkts, i);
        }
        t2.finish(&mut rec);
        assert_eq!(lines(&rec), whole, "cut at {cut}");
        let total: usize = rec.chunks.values().map(Vec::len).sum();
        assert_eq!(
            total,
            pkts.len(),
            "cut at {cut}: every packet positioned once"
        );
    }
}

#[test]
fn rows_name_each_file_of_a_flow_once_across_checkpoints() {
    // Two flows over files 1, 2, 1, 3 (a flow returning to a file), with a
    // checkpoint and a restore in a new tracker between every packet pair.
    let pkts: Vec<(f64, Decoded)> = (0..16)
        .map(|i| {
            let d = if i % 2 == 0 {
                pkt(6, 1, 1000, 2, 80, A, i)
            } else {
                pkt(17, 3, 53, 4, 5353, 0, 0)
            };
            (f64::from(i) * 0.01, d)
        })
        .collect();
    let file_of = |i: usize| [1, 2, 1, 3][i / 4];
    let mut rec = Rec::default();
    let mut t = Tracker::new(Config::default(), 1);
    for i in 0..pkts.len() {
        push_in(&mut t, &mut rec, &pkts, i, file_of(i));
        if i % 2 == 1 {
            t.checkpoint(&mut rec);
            let mut next = Tracker::new(Config::default(), t.next_id());
            for saved in rec.saved() {
                next.restore(&saved).unwrap();
            }
            t = next;
        }
    }
    t.finish(&mut rec);
    assert_eq!(rec.flows.len(), 2);
    for (id, positions) in &rec.chunks {
        let mut from_positions: Vec<u32> = Vec::new();
        for p in positions {
            if !from_positions.contains(&p.file_id) {
                from_positions.push(p.file_id);
            }
        }
        assert_eq!(rec.files[id], from_positions, "flow {id}");
        assert_eq!(rec.files[id], [1, 2, 3]);
    }
}

#[test]
fn state_blob_roundtrips_and_rejects_garbage() {
    let mut t = Tracker::new(Config::default(), 1);
    let d = pkt(6, 1, 1000, 2, 80, S, 100);
    let p = PacketIn {
        ts_ns: 5,
        record_ts_ns: 5,
        file_id: 3,
        offset: 24,
        caplen: 60,
        orig_len: 70,
        iface: 0,
        s: &Summary::of(&d).unwrap(),
    };
    let mut rec = Rec::default();
    t.push(&p, &mut rec);
    // Data past a hole: the hole is part of the state.
    let mut late = Summary::of(&pkt(6, 1, 1000, 2, 80, A, 1101)).unwrap();
    late.payload_len = 100;
    // (10 of its bytes were cut by the snaplen, as the SYN's were.)
    t.push(&PacketIn { s: &late, ..p }, &mut rec);
    let f = t.slots.iter().flatten().next().unwrap();
    let payload = f.rec.payload.unwrap();
    assert_eq!((payload.sent[0], payload.missed[0]), (1100, 1010));
    assert!(f.holes.is_some());
    let blob = state::encode(&f.rec, &f.tcp, &f.holes, &f.files);
    let saved = state::SavedFlow::from_record(&f.rec, blob.clone());
    let (r2, tcp2, holes2, files2) = state::decode(&saved).unwrap();
    assert_eq!(
        (&r2, &tcp2, &holes2, &files2),
        (&f.rec, &f.tcp, &f.holes, &f.files)
    );
    for n in 0..blob.len() {
        let cut = state::SavedFlow {
            state: blob[..n].to_vec(),
            ..saved.clone()
        };
        assert!(state::decode(&cut).is_err());
    }
    let bad = state::SavedFlow {
        state: vec![9],
        ..saved
    };
    assert_eq!(state::decode(&bad), Err(StateError::Version(9)));
}

#[test]
fn saved_states_of_any_length_come_back() {
    // Flows in 1, 50 and 300 files: states shorter and longer than the
    // 127 bytes a one-byte length holds.
    let mut t = Tracker::new(Config::default(), 1);
    let mut rec = Rec::default();
    for (host, files) in [(1u8, 1u32), (2, 50), (3, 300)] {
        let d = pkt(17, host, 1000, 9, 53, 0, 0);
        for file_id in 1..=files {
            let p = PacketIn {
                ts_ns: i64::from(file_id),
                record_ts_ns: i64::from(file_id),
                file_id,
                offset: 24,
                caplen: 60,
                orig_len: 60,
                iface: 0,
                s: &Summary::of(&d).unwrap(),
            };
            t.push(&p, &mut rec);
        }
    }
    t.checkpoint(&mut rec);
    let saved = rec.saved();
    assert_eq!(saved.len(), 3);
    for s in &saved {
        let (r, _, _, files) = state::decode(s).unwrap();
        let f = t.slots.iter().flatten().find(|f| f.rec.id == r.id).unwrap();
        assert_eq!((&r, &files), (&f.rec, &f.files));
    }
    assert!(saved.iter().any(|s| s.state.len() > 127));
    // Files forgotten: one flow is no longer open, the others lose the
    // forgotten files from their lists and keep the rest of their state.
    let first = saved[0].id;
    let blob = state::without(&rec.open, &|id| id == first, &|f| f <= 10).unwrap();
    let left = state::decode_all(&blob).unwrap();
    assert_eq!(left.len(), 2);
    for (id, st) in left {
        let s = saved.iter().find(|s| s.id == id).unwrap();
        let (r, tcp, holes, files) = state::decode(&state::SavedFlow {
            state: st,
            ..s.clone()
        })
        .unwrap();
        let (r0, tcp0, holes0, files0) = state::decode(s).unwrap();
        assert_eq!((r.key, tcp, holes), (r0.key, tcp0, holes0));
        assert_eq!(
            files,
            files0.into_iter().filter(|&f| f > 10).collect::<Vec<_>>()
        );
    }
}
