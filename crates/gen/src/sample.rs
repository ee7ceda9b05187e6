//! The sample captures: small, deterministic, covering every container
//! format, link type and decoding feature, each with its ground truth.
//! `pcapidx generate --profile sample` writes them; `testdata/` holds them.
use std::io;
use std::path::{Path, PathBuf};

use crate::link::{EthOpts, Link};
use crate::packet::{Body, Host, Pkt, flags};
use crate::run::{Container, Frag, RunSpec, RunWriter};
use crate::truth::Truth;

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
/// 2024-03-01T00:00:00Z plus a few ns, so that rounding to µs is visible.
const T0: i64 = 1_709_251_200 * SEC + 123_456_789;

/// A set of captures and what they contain.
pub struct SampleSet {
    /// Folder name under the output directory.
    pub name: String,
    pub files: Vec<PathBuf>,
    pub truth: Truth,
}

/// Packets to write, in any order; written sorted by time (stable).
#[derive(Default)]
pub struct Script {
    flows: Vec<Pkt>,
    items: Vec<(i64, usize, usize, bool, Pkt, Option<Frag>)>,
}

impl Script {
    /// Declares a flow by its first packet (sent by the originator).
    pub fn flow(&mut self, first: &Pkt) -> usize {
        self.flows.push(*first);
        self.flows.len() - 1
    }

    pub fn send(&mut self, ts: i64, flow: usize, reverse: bool, p: Pkt) {
        let n = self.items.len();
        self.items.push((ts, n, flow, reverse, p, None));
    }

    pub fn send_fragmented(&mut self, ts: i64, flow: usize, reverse: bool, p: Pkt, frag: Frag) {
        let n = self.items.len();
        self.items.push((ts, n, flow, reverse, p, Some(frag)));
    }

    /// Writes everything (sorted by time) with `w`; flows keep their declaration order.
    pub fn write(mut self, w: &mut RunWriter) -> io::Result<()> {
        let ids: Vec<usize> = self.flows.iter().map(|f| w.flow(f)).collect();
        self.items.sort_by_key(|i| (i.0, i.1));
        for (ts, _, flow, rev, p, frag) in &self.items {
            w.write(*ts, ids[*flow], *rev, p, *frag)?;
        }
        Ok(())
    }
}

/// A TCP packet; the arguments are the header fields, in header order.
#[allow(clippy::too_many_arguments)]
fn tcp(src: Host, dst: Host, sport: u16, dport: u16, fl: u8, seq: u32, ack: u32, len: u16) -> Pkt {
    Pkt::new(
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
    )
}

/// How a TCP session ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Close {
    Fin,
    Rst,
    /// Still open at the end of the capture.
    Open,
}

/// A TCP session: handshake, request/response exchanges, close. The
/// server's responses are split into 1460-byte segments. Returns the time
/// of its last packet.
#[allow(clippy::too_many_arguments)]
pub fn tcp_session(
    s: &mut Script,
    t: i64,
    c: Host,
    cport: u16,
    srv: Host,
    sport: u16,
    isn: u32,
    exchanges: &[(u16, u32)],
    rtt: i64,
    close: Close,
    vlans: &[u16],
) -> i64 {
    use flags::*;
    let tag = |mut p: Pkt| {
        for (i, v) in vlans.iter().enumerate().take(3) {
            p.vlans[i] = *v;
        }
        p.vlan_count = vlans.len().min(3) as u8;
        p
    };
    let (mut cs, mut ss) = (isn, isn.wrapping_mul(7).wrapping_add(99));
    let first = tag(tcp(c, srv, cport, sport, SYN, cs, 0, 0));
    let f = s.flow(&first);
    let mut t = t;
    s.send(t, f, false, first);
    t += rtt / 2;
    s.send(
        t,
        f,
        true,
        tag(tcp(srv, c, sport, cport, SYN | ACK, ss, cs + 1, 0)),
    );
    cs += 1;
    ss += 1;
    t += rtt / 2;
    s.send(t, f, false, tag(tcp(c, srv, cport, sport, ACK, cs, ss, 0)));
    for &(req, resp) in exchanges {
        t += MS;
        s.send(
            t,
            f,
            false,
            tag(tcp(c, srv, cport, sport, PSH | ACK, cs, ss, req)),
        );
        cs = cs.wrapping_add(u32::from(req));
        let mut left = resp;
        let mut n = 0;
        while left > 0 {
            let seg = left.min(1460) as u16;
            left -= u32::from(seg);
            t += rtt / 2 + 50_000;
            let fl = if left == 0 { PSH | ACK } else { ACK };
            s.send(t, f, true, tag(tcp(srv, c, sport, cport, fl, ss, cs, seg)));
            ss = ss.wrapping_add(u32::from(seg));
            n += 1;
            if n % 2 == 0 || left == 0 {
                t += 20_000;
                s.send(t, f, false, tag(tcp(c, srv, cport, sport, ACK, cs, ss, 0)));
            }
        }
    }
    t += rtt;
    match close {
        Close::Fin => {
            s.send(
                t,
                f,
                false,
                tag(tcp(c, srv, cport, sport, FIN | ACK, cs, ss, 0)),
            );
            t += rtt / 2;
            s.send(
                t,
                f,
                true,
                tag(tcp(srv, c, sport, cport, FIN | ACK, ss, cs + 1, 0)),
            );
            t += rtt / 2;
            s.send(
                t,
                f,
                false,
                tag(tcp(c, srv, cport, sport, ACK, cs + 1, ss + 1, 0)),
            );
        }
        Close::Rst => s.send(
            t,
            f,
            false,
            tag(tcp(c, srv, cport, sport, RST | ACK, cs, ss, 0)),
        ),
        Close::Open => {}
    }
    t
}

/// A UDP request and its answer (DNS-like).
#[allow(clippy::too_many_arguments)]
pub fn udp_exchange(
    s: &mut Script,
    t: i64,
    c: Host,
    cport: u16,
    srv: Host,
    sport: u16,
    req: u16,
    resp: u16,
) {
    let q = Pkt::new(
        c,
        srv,
        Body::Udp {
            sport: cport,
            dport: sport,
            len: req,
        },
    );
    let f = s.flow(&q);
    s.send(t, f, false, q);
    s.send(
        t + 2 * MS,
        f,
        true,
        Pkt::new(
            srv,
            c,
            Body::Udp {
                sport,
                dport: cport,
                len: resp,
            },
        ),
    );
}

/// ICMP echo requests and replies; returns the flow.
pub fn ping(s: &mut Script, t: i64, a: Host, b: Host, n: usize) -> usize {
    let (req, rep) = if a.v6 { (128, 129) } else { (8, 0) };
    let first = Pkt::new(
        a,
        b,
        Body::Icmp {
            ty: req,
            code: 0,
            len: 56,
        },
    );
    let f = s.flow(&first);
    for i in 0..n as i64 {
        s.send(t + i * SEC, f, false, first);
        s.send(
            t + i * SEC + 3 * MS,
            f,
            true,
            Pkt::new(
                b,
                a,
                Body::Icmp {
                    ty: rep,
                    code: 0,
                    len: 56,
                },
            ),
        );
    }
    f
}

fn hosts() -> [Host; 8] {
    let mut v6a = [0u8; 16];
    v6a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    v6a[15] = 0x10;
    let mut v6b = v6a;
    v6b[5] = 2;
    v6b[15] = 0x80;
    [
        Host::v4(1, [10, 1, 0, 10]),
        Host::v4(2, [10, 1, 0, 11]),
        Host::v4(3, [10, 1, 0, 12]),
        Host::v4(4, [192, 0, 2, 10]),
        Host::v4(5, [192, 0, 2, 53]),
        Host::v4(6, [198, 51, 100, 7]),
        Host::v6(7, v6a),
        Host::v6(8, v6b),
    ]
}

/// The common traffic mix: about 300 packets over 100 s. `ethernet_only`
/// adds what only an Ethernet link can carry (ARP, VLAN-separated twins).
pub fn mix(s: &mut Script, t0: i64, ethernet_only: bool) {
    let [c1, c2, c3, web, dns, ssh, c6, s6] = hosts();
    // A long interactive session across the whole capture.
    let ex: Vec<(u16, u32)> = (0..60)
        .map(|i| (36 + (i % 5) as u16 * 16, 52 + (i % 3) * 40))
        .collect();
    tcp_session(
        s,
        t0,
        c1,
        40001,
        ssh,
        22,
        1_000_000,
        &ex[..1],
        40 * MS,
        Close::Open,
        &[],
    );
    let f = s.flows.len() - 1;
    let mut t = t0 + SEC;
    for (i, &(req, resp)) in ex.iter().enumerate() {
        let (cs, ss) = (1_000_001 + i as u32 * 500, 7_000_099 + i as u32 * 500);
        s.send(
            t,
            f,
            false,
            tcp(c1, ssh, 40001, 22, flags::PSH | flags::ACK, cs, ss, req),
        );
        s.send(
            t + 20 * MS,
            f,
            true,
            tcp(
                ssh,
                c1,
                22,
                40001,
                flags::PSH | flags::ACK,
                ss,
                cs,
                resp as u16,
            ),
        );
        t += 1_600 * MS;
    }
    s.send(
        t,
        f,
        false,
        tcp(
            c1,
            ssh,
            40001,
            22,
            flags::FIN | flags::ACK,
            2_000_000,
            9_000_000,
            0,
        ),
    );
    s.send(
        t + 20 * MS,
        f,
        true,
        tcp(
            ssh,
            c1,
            22,
            40001,
            flags::FIN | flags::ACK,
            9_000_000,
            2_000_001,
            0,
        ),
    );
    // Web sessions, one with a large response.
    for i in 0..6u16 {
        let resp = if i == 2 {
            40_000
        } else {
            900 + u32::from(i) * 700
        };
        tcp_session(
            s,
            t0 + i64::from(i) * 7 * SEC + 300 * MS,
            c2,
            50100 + i,
            web,
            80,
            50 + u32::from(i),
            &[(320, resp)],
            30 * MS,
            Close::Fin,
            &[],
        );
    }
    // Port reuse: the same four-tuple twice, a new connection after FIN.
    tcp_session(
        s,
        t0 + 10 * SEC,
        c3,
        51000,
        web,
        443,
        111,
        &[(200, 3000)],
        25 * MS,
        Close::Fin,
        &[],
    );
    tcp_session(
        s,
        t0 + 12 * SEC,
        c3,
        51000,
        web,
        443,
        98_765,
        &[(200, 1000)],
        25 * MS,
        Close::Fin,
        &[],
    );
    // Refused connection (RST), and a session first seen at its SYN-ACK.
    let syn = tcp(c3, web, 51001, 8080, flags::SYN, 5, 0, 0);
    let f = s.flow(&syn);
    s.send(t0 + 15 * SEC, f, false, syn);
    s.send(t0 + 15 * SEC + MS, f, false, syn); // retransmitted SYN, same ISN
    s.send(
        t0 + 15 * SEC + 3 * MS,
        f,
        true,
        tcp(web, c3, 8080, 51001, flags::RST | flags::ACK, 0, 6, 0),
    );
    // Declared by the client's SYN (the originator), which was not captured.
    let f = s.flow(&tcp(c2, web, 51002, 8443, flags::SYN, 10, 0, 0));
    s.send(
        t0 + 16 * SEC,
        f,
        true,
        tcp(web, c2, 8443, 51002, flags::SYN | flags::ACK, 700, 11, 0),
    );
    s.send(
        t0 + 16 * SEC + 10 * MS,
        f,
        false,
        tcp(c2, web, 51002, 8443, flags::ACK, 11, 701, 0),
    );
    // DNS over IPv4 and IPv6.
    for i in 0..12u16 {
        udp_exchange(
            s,
            t0 + i64::from(i) * 4 * SEC + 50 * MS,
            c1,
            33000 + i * 7,
            dns,
            53,
            40 + i,
            120 + i * 9,
        );
    }
    for i in 0..3u16 {
        udp_exchange(
            s,
            t0 + i64::from(i) * 9 * SEC + 70 * MS,
            c6,
            34000 + i,
            s6,
            53,
            44,
            160,
        );
    }
    // ICMP: echo, then an error between the same hosts (same flow: keyed by addresses).
    let f = ping(s, t0 + 20 * SEC, c1, web, 4);
    s.send(
        t0 + 26 * SEC,
        f,
        true,
        Pkt::new(
            web,
            c1,
            Body::Icmp {
                ty: 3,
                code: 3,
                len: 36,
            },
        ),
    );
    ping(s, t0 + 30 * SEC, c6, s6, 3);
    // An mDNS-like flow idle longer than the UDP timeout: two flows.
    for (t, _) in [(t0 + SEC, 0), (t0 + 75 * SEC, 1)] {
        let p = Pkt::new(
            c2,
            Host::v4(0xfb, [224, 0, 0, 251]),
            Body::Udp {
                sport: 5353,
                dport: 5353,
                len: 60,
            },
        );
        let f = s.flow(&p);
        s.send(t, f, false, p);
        s.send(t + SEC, f, false, p);
    }
    // Other IP protocols: GRE (no ports) and SCTP (ports).
    let gre = Pkt::new(c3, ssh, Body::Proto { proto: 47, len: 64 });
    let f = s.flow(&gre);
    for i in 0..3 {
        s.send(
            t0 + 40 * SEC + i * MS,
            f,
            i % 2 == 1,
            if i % 2 == 1 {
                Pkt::new(ssh, c3, Body::Proto { proto: 47, len: 64 })
            } else {
                gre
            },
        );
    }
    let sctp = Pkt::new(
        c1,
        ssh,
        Body::Sctp {
            sport: 2905,
            dport: 2905,
            len: 48,
        },
    );
    let f = s.flow(&sctp);
    s.send(t0 + 41 * SEC, f, false, sctp);
    s.send(
        t0 + 41 * SEC + MS,
        f,
        true,
        Pkt::new(
            ssh,
            c1,
            Body::Sctp {
                sport: 2905,
                dport: 2905,
                len: 48,
            },
        ),
    );
    // IPv6 TCP with hop-by-hop and destination-options headers.
    let mut first = tcp(c6, s6, 45000, 443, flags::SYN, 1, 0, 0);
    first.v6_ext = true;
    let f = s.flow(&first);
    for i in 0..5i64 {
        let (src, dst, sp, dp, fl) = if i % 2 == 0 {
            (
                c6,
                s6,
                45000,
                443,
                if i == 0 { flags::SYN } else { flags::ACK },
            )
        } else {
            (
                s6,
                c6,
                443,
                45000,
                if i == 1 {
                    flags::SYN | flags::ACK
                } else {
                    flags::ACK
                },
            )
        };
        let mut p = tcp(src, dst, sp, dp, fl, 1 + i as u32, 1, 0);
        p.v6_ext = true;
        s.send(t0 + 50 * SEC + i * MS, f, i % 2 == 1, p);
    }
    if ethernet_only {
        // ARP: a broadcast request and a unicast reply are two layer-2 flows.
        let mut bcast = c1;
        bcast.mac = [0xff; 6];
        bcast.ip = web.ip;
        let req = Pkt::new(c1, bcast, Body::Arp { op: 1 });
        let f = s.flow(&req);
        s.send(t0 + 2 * SEC, f, false, req);
        let rep = Pkt::new(web, c1, Body::Arp { op: 2 });
        let f = s.flow(&rep);
        s.send(t0 + 2 * SEC + MS, f, false, rep);
        // The same UDP conversation in two VLANs: two flows.
        for v in [10u16, 20] {
            let mut p = Pkt::new(
                c2,
                dns,
                Body::Udp {
                    sport: 7000,
                    dport: 7000,
                    len: 30,
                },
            );
            p.vlans[0] = v;
            p.vlan_count = 1;
            let f = s.flow(&p);
            s.send(t0 + 60 * SEC + i64::from(v) * MS, f, false, p);
            let mut r = Pkt::new(
                dns,
                c2,
                Body::Udp {
                    sport: 7000,
                    dport: 7000,
                    len: 30,
                },
            );
            r.vlans[0] = v;
            r.vlan_count = 1;
            s.send(t0 + 60 * SEC + i64::from(v) * MS + 1, f, true, r);
        }
        // QinQ-tagged TCP session.
        tcp_session(
            s,
            t0 + 62 * SEC,
            c3,
            52000,
            web,
            25,
            4242,
            &[(100, 200)],
            10 * MS,
            Close::Fin,
            &[100, 200],
        );
    }
}

/// IP fragments: in order, reversed, IPv4 and IPv6, with ports only in the first.
pub fn fragments(s: &mut Script, t0: i64) {
    let [c1, _, _, web, dns, _, c6, s6] = hosts();
    let mut big = Pkt::new(
        c1,
        dns,
        Body::Udp {
            sport: 33333,
            dport: 53,
            len: 3000,
        },
    );
    big.ip_id = 0x4242;
    let f = s.flow(&big);
    s.send_fragmented(
        t0,
        f,
        false,
        big,
        Frag {
            max: 1480,
            reversed: false,
        },
    );
    let mut back = Pkt::new(
        dns,
        c1,
        Body::Udp {
            sport: 53,
            dport: 33333,
            len: 2500,
        },
    );
    back.ip_id = 0x5151;
    s.send_fragmented(
        t0 + 5 * MS,
        f,
        true,
        back,
        Frag {
            max: 1000,
            reversed: true,
        },
    );
    let mut big6 = Pkt::new(
        c6,
        s6,
        Body::Udp {
            sport: 40000,
            dport: 4789,
            len: 4000,
        },
    );
    big6.ip_id = 0xa5d3_3a2d;
    let f = s.flow(&big6);
    s.send_fragmented(
        t0 + 10 * MS,
        f,
        false,
        big6,
        Frag {
            max: 1400,
            reversed: false,
        },
    );
    let mut rev6 = big6;
    rev6.ip_id = 7;
    s.send_fragmented(
        t0 + 20 * MS,
        f,
        false,
        rev6,
        Frag {
            max: 1400,
            reversed: true,
        },
    );
    let mut tcpf = tcp(c1, web, 44444, 80, flags::PSH | flags::ACK, 9, 9, 2000);
    tcpf.ip_id = 99;
    let f = s.flow(&tcpf);
    s.send_fragmented(
        t0 + 30 * MS,
        f,
        false,
        tcpf,
        Frag {
            max: 800,
            reversed: false,
        },
    );
}

/// pcapng with two sections of different byte order, each with two
/// interfaces of different link types and timestamp resolutions.
fn multi_interface(dir: &Path, t0: i64) -> io::Result<SampleSet> {
    use crate::truth::{TruthFlow, TruthPacket};
    use pcapidx_capture::{CaptureWriter, WriteRecord, ns_to_ticks, ticks_to_ns};
    std::fs::create_dir_all(dir)?;
    let path = dir.join("multi-interface.pcapng");
    let mut w = CaptureWriter::pcapng(io::BufWriter::new(std::fs::File::create(&path)?), false)?;
    let mut truth = Truth::default();
    let [c1, _, _, web, dns, _, c6, s6] = hosts();
    let eth = Link::Ethernet(EthOpts::default());
    let mut l3 = Vec::new();
    let mut frame = Vec::new();
    let mut global_if = 0u32;
    for (section, big) in [(0, false), (1, true)] {
        if section > 0 {
            w.new_section(big)?;
        }
        // Ethernet in µs; raw IP in ns, with a one-hour offset.
        w.add_interface(1, 65535, 6, 0)?;
        w.add_interface(101, 65535, 9, 3600)?;
        let flows = [
            (
                eth,
                0u32,
                Pkt::new(
                    c1,
                    web,
                    Body::Udp {
                        sport: 6000 + section,
                        dport: 514,
                        len: 80,
                    },
                ),
            ),
            (
                Link::Raw,
                1u32,
                Pkt::new(
                    c6,
                    s6,
                    Body::Udp {
                        sport: 6100 + section,
                        dport: 514,
                        len: 90,
                    },
                ),
            ),
            (
                Link::Raw,
                1u32,
                Pkt::new(
                    c1,
                    dns,
                    Body::Tcp {
                        sport: 6200 + section,
                        dport: 53,
                        flags: flags::SYN,
                        seq: 1,
                        ack: 0,
                        len: 0,
                    },
                ),
            ),
        ];
        for (k, (link, iface, p)) in flows.iter().enumerate() {
            let (resol, off) = if *iface == 0 { (6, 0) } else { (9, 3600 * SEC) };
            let mut tf = TruthFlow {
                proto: Some(p.body.proto(p.src.v6)),
                src_ip: Some(p.src.ip_text()),
                dst_ip: Some(p.dst.ip_text()),
                src_port: p.body.ports().map(|x| x.0),
                dst_port: p.body.ports().map(|x| x.1),
                ethertype: p.ethertype(),
                ..TruthFlow::default()
            };
            (tf.src_mac, tf.dst_mac) = link.macs(p.src.mac, p.dst.mac);
            for n in 0..3i64 {
                let ts = t0 + i64::from(section) * 100 * SEC + k as i64 * 10 * SEC + n * 777_777;
                crate::packet::l3(p, &mut l3);
                link.wrap(p.ethertype(), p.src.mac, p.dst.mac, &[], &l3, &mut frame);
                let offset = w.write(&WriteRecord {
                    ts_ns: ts,
                    orig_len: frame.len() as u32,
                    data: &frame,
                    iface: *iface,
                })?;
                tf.packets.push(TruthPacket {
                    file: 0,
                    offset,
                    ts_ns: ticks_to_ns(resol, ns_to_ticks(resol, ts - off)) + off,
                    caplen: frame.len() as u32,
                    orig_len: frame.len() as u32,
                    reverse: false,
                    tcp_flags: p.body.tcp_flags(),
                    iface: global_if + iface,
                });
            }
            truth.flows.push(tf);
        }
        global_if += 2;
    }
    w.finish()?;
    Ok(SampleSet {
        name: "multi-interface".into(),
        files: vec![path],
        truth,
    })
}

fn eth() -> Link {
    Link::Ethernet(EthOpts::default())
}

fn run_set(dir: &Path, name: &str, spec: RunSpec, script: Script) -> io::Result<SampleSet> {
    let mut w = RunWriter::new(&dir.join(name), spec)?;
    script.write(&mut w)?;
    let (files, truth) = w.finish()?;
    Ok(SampleSet {
        name: name.into(),
        files,
        truth,
    })
}

fn single(prefix: &str, c: Container, link: Link) -> RunSpec {
    RunSpec {
        prefix: prefix.into(),
        containers: vec![c],
        link,
        snaplen: None,
        rotate_packets: None,
        rotate_bytes: None,
    }
}

const PCAP: Container = Container::Pcap {
    big_endian: false,
    nanos: false,
};

/// The sets kept in the repository's `testdata/`.
pub const BUNDLED: &[&str] = &[
    "rotated",
    "rotated-mixed",
    "overlap",
    "multi-interface",
    "fragments",
    "format-pcapng-mixed",
    "link-radiotap",
    "encap-qinq",
];

/// Writes every sample set under `dir` (each in its own folder, with its
/// ground truth in `EXPECTED.tsv`); returns them with their truth.
pub fn write_all(dir: &Path) -> io::Result<Vec<SampleSet>> {
    write_sets(dir, |_| true)
}

/// Writes the sets of [`BUNDLED`] (what `testdata/` holds).
pub fn write_bundled(dir: &Path) -> io::Result<Vec<SampleSet>> {
    write_sets(dir, |name| BUNDLED.contains(&name))
}

/// The header of `EXPECTED.tsv`: the columns of [`crate::truth::TruthFlow::summary`].
pub const EXPECTED_HEADER: &str = "proto\tsrc_ip\tsrc_port\tdst_ip\tdst_port\tethertype\tvlan\tfirst_ts_ns\tlast_ts_ns\tpackets_fwd\tpackets_rev\tbytes_fwd\tbytes_rev\ttcp_flags_fwd\ttcp_flags_rev\tsrc_mac\tdst_mac\tfiles";

fn write_sets(dir: &Path, wanted: impl Fn(&str) -> bool) -> io::Result<Vec<SampleSet>> {
    let mut sets = Vec::new();
    // Each set lives in its own hour, so a folder of them indexes to distinct flows.
    let mut hour = 0;
    let mut next_t0 = || {
        hour += 1;
        T0 + hour * 3600 * SEC
    };
    let mixed = |t0, eth_only| {
        let mut s = Script::default();
        mix(&mut s, t0, eth_only);
        s
    };
    let add = |sets: &mut Vec<SampleSet>, set: io::Result<SampleSet>| -> io::Result<()> {
        let set = set?;
        let mut text = String::from(EXPECTED_HEADER);
        text.push('\n');
        for l in set.truth.summaries() {
            text.push_str(&l);
            text.push('\n');
        }
        std::fs::write(dir.join(&set.name).join("EXPECTED.tsv"), text)?;
        sets.push(set);
        Ok(())
    };
    // A tcpdump -C style rotated run.
    let t0 = next_t0();
    if wanted("rotated") {
        let mut spec = single("rotated", PCAP, eth());
        spec.rotate_packets = Some(40);
        add(&mut sets, run_set(dir, "rotated", spec, mixed(t0, true)))?;
    }
    // A rotated run mixing containers, byte orders and resolutions, cut at 128 bytes.
    let t0 = next_t0();
    if wanted("rotated-mixed") {
        let spec = RunSpec {
            prefix: "mixed".into(),
            containers: vec![
                PCAP,
                Container::PcapNg {
                    big_endian: true,
                    ts_resol: 9,
                    ts_offset_s: 0,
                },
                Container::Pcap {
                    big_endian: true,
                    nanos: true,
                },
                Container::PcapNg {
                    big_endian: false,
                    ts_resol: 6,
                    ts_offset_s: 0,
                },
                Container::PcapNgMixed { section_packets: 9 },
            ],
            link: eth(),
            snaplen: Some(128),
            rotate_packets: Some(50),
            rotate_bytes: None,
        };
        add(
            &mut sets,
            run_set(dir, "rotated-mixed", spec, mixed(t0, true)),
        )?;
    }
    // The same traffic in every container, one file each.
    for c in [
        Container::Pcap {
            big_endian: true,
            nanos: false,
        },
        Container::Pcap {
            big_endian: false,
            nanos: true,
        },
        Container::Pcap {
            big_endian: true,
            nanos: true,
        },
        Container::PcapNg {
            big_endian: false,
            ts_resol: 6,
            ts_offset_s: 0,
        },
        Container::PcapNg {
            big_endian: true,
            ts_resol: 9,
            ts_offset_s: 0,
        },
        Container::PcapNg {
            big_endian: false,
            ts_resol: 3,
            ts_offset_s: 86_400,
        },
        Container::PcapNgMixed {
            section_packets: 25,
        },
    ] {
        let name = format!("format-{}", c.name());
        let t0 = next_t0();
        if wanted(&name) {
            add(
                &mut sets,
                run_set(dir, &name, single(&name, c, eth()), mixed(t0, true)),
            )?;
        }
    }
    // Every link type.
    for link in Link::ALL {
        let name = format!("link-{}", link.name());
        let t0 = next_t0();
        if wanted(&name) {
            let eth_only = matches!(link, Link::Ethernet(_));
            add(
                &mut sets,
                run_set(dir, &name, single(&name, PCAP, link), mixed(t0, eth_only)),
            )?;
        }
    }
    // Encapsulations on Ethernet.
    for (name, o) in [
        (
            "encap-mpls",
            EthOpts {
                mpls: 2,
                ..EthOpts::default()
            },
        ),
        (
            "encap-pppoe",
            EthOpts {
                pppoe: true,
                ..EthOpts::default()
            },
        ),
        (
            "encap-snap",
            EthOpts {
                snap: true,
                ..EthOpts::default()
            },
        ),
        (
            "encap-qinq",
            EthOpts {
                qinq: true,
                ..EthOpts::default()
            },
        ),
    ] {
        let t0 = next_t0();
        if wanted(name) {
            add(
                &mut sets,
                run_set(
                    dir,
                    name,
                    single(name, PCAP, Link::Ethernet(o)),
                    mixed(t0, o.qinq),
                ),
            )?;
        }
    }
    for (name, link) in [("fragments", eth()), ("fragments-raw", Link::Raw)] {
        let t0 = next_t0();
        if wanted(name) {
            let mut s = Script::default();
            fragments(&mut s, t0);
            add(&mut sets, run_set(dir, name, single(name, PCAP, link), s))?;
        }
    }
    let t0 = next_t0();
    if wanted("snaplen") {
        let mut spec = single("snaplen", PCAP, eth());
        // Longer than any header chain in the mix (98 bytes), shorter than most packets.
        spec.snaplen = Some(100);
        add(&mut sets, run_set(dir, "snaplen", spec, mixed(t0, true)))?;
    }
    let t0 = next_t0();
    if wanted("multi-interface") {
        add(&mut sets, multi_interface(&dir.join("multi-interface"), t0))?;
    }
    // Two sensors writing the same hour: files overlap in time.
    let t0 = next_t0();
    if wanted("overlap") {
        let mut a = Script::default();
        let mut b = Script::default();
        mix(&mut a, t0, true);
        fragments(&mut b, t0);
        let [c1, _, _, web, ..] = hosts();
        tcp_session(
            &mut b,
            t0 + 5 * SEC,
            c1,
            60000,
            web,
            80,
            77,
            &[(100, 5000); 8],
            50 * MS,
            Close::Fin,
            &[],
        );
        let mut spec_a = single("sensor-a", PCAP, eth());
        spec_a.rotate_packets = Some(70);
        let mut spec_b = single(
            "sensor-b",
            Container::PcapNg {
                big_endian: false,
                ts_resol: 9,
                ts_offset_s: 0,
            },
            eth(),
        );
        spec_b.rotate_packets = Some(15);
        let sa = run_set(dir, "overlap", spec_a, a)?;
        let sb = run_set(dir, "overlap", spec_b, b)?;
        let mut truth = sa.truth;
        let base = sa.files.len();
        for mut f in sb.truth.flows {
            for p in &mut f.packets {
                p.file += base;
            }
            truth.flows.push(f);
        }
        add(
            &mut sets,
            Ok(SampleSet {
                name: "overlap".into(),
                files: [sa.files, sb.files].concat(),
                truth,
            }),
        )?;
    }
    Ok(sets)
}
