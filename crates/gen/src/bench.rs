//! The benchmark run: a rotated set of pcap files with realistic traffic,
//! streamed (memory does not grow with the size asked for).
//!
//! The mix is heavy-tailed like real traffic: most packets belong to long
//! flows — RTP-like voice streams, bulk downloads, interactive sessions
//! (some spanning every file) — while most flows are small: DNS, NTP,
//! pings, short TCP exchanges, web requests. The default mix averages about
//! 340 bytes per frame; a larger `mean_frame` shifts packets towards bulk
//! transfers.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};

use crate::link::{EthOpts, Link};
use crate::packet::{Body, Host, Pkt, flags};
use crate::rng::Rng;
use crate::run::{Container, RunSpec, RunWriter};

/// Changes whenever the same configuration would write different bytes
/// (benchmark data cached under an older version is regenerated).
pub const VERSION: u32 = 3;

#[derive(Debug, Clone)]
pub struct Config {
    /// Stop after this many bytes of capture.
    pub total_bytes: u64,
    /// Rotate after this many bytes per file.
    pub file_bytes: u64,
    /// Target mean frame size (default: the small-packet mix, about 340).
    pub mean_frame: Option<u32>,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    pub packets: u64,
    pub bytes: u64,
    pub paths: Vec<PathBuf>,
}

const SEC: f64 = 1e9;
const T0: i64 = 1_717_200_000_000_000_000; // 2024-06-01

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Voice-like UDP stream: a packet each way every 20 ms.
    Rtp { until: i64, turn: bool },
    /// TCP download: handshake, then segments of 1448 bytes, an ACK every second one.
    Bulk { until: i64, step: u32, gap: i64 },
    /// Interactive TCP: small packets both ways at a human pace.
    Chatty { until: i64, step: u32 },
    /// Web request: handshake, request, `segs` response segments, close.
    Web { segs: u32, step: u32 },
    /// Short TCP exchange of small messages.
    Small { rounds: u32, step: u32 },
    /// A UDP question and answer (DNS, NTP).
    Ask { len: (u16, u16), step: u32 },
    /// ICMP echo requests and replies, one second apart.
    Ping { n: u32, step: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Session {
    client: Host,
    server: Host,
    cport: u16,
    sport: u16,
    kind: Kind,
    seq: [u32; 2],
}

struct Sim {
    rng: Rng,
    sessions: Vec<Session>,
    free: Vec<usize>,
    queue: BinaryHeap<Reverse<(i64, usize)>>,
    clients: Vec<(Host, u16)>,
    servers: Vec<Host>,
    bulk_share: f64,
}

impl Sim {
    fn client(&mut self) -> (Host, u16) {
        let i = self.rng.range(0, self.clients.len() as u64) as usize;
        let (h, p) = &mut self.clients[i];
        *p = if *p >= 60_999 { 32_768 } else { *p + 1 };
        (*h, *p)
    }

    fn server(&mut self, v6: bool) -> Host {
        let n = self.servers.len() as u64 / 2;
        let i = self.rng.range(0, n) as usize;
        self.servers[i * 2 + usize::from(v6)]
    }

    fn start(&mut self, t: i64, kind: Kind, sport: u16, v6: bool) {
        let (mut client, cport) = self.client();
        if v6 {
            client.v6 = true;
            client.ip = [
                0x20,
                0x01,
                0x0d,
                0xb8,
                0,
                0x10,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                client.ip[2],
                client.ip[3],
            ];
        }
        let server = self.server(v6);
        let s = Session {
            client,
            server,
            cport,
            sport,
            kind,
            seq: [self.rng.next_u32(), self.rng.next_u32()],
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.sessions[i] = s;
                i
            }
            None => {
                self.sessions.push(s);
                self.sessions.len() - 1
            }
        };
        self.queue.push(Reverse((t, i)));
    }

    /// Starts a new short session of a random kind at `t`.
    fn arrival(&mut self, t: i64) {
        let v6 = self.rng.chance(0.1);
        let r = self.rng.unit();
        let (kind, port) = if r < 0.34 {
            let len = (
                30 + self.rng.range(0, 30) as u16,
                60 + self.rng.range(0, 200) as u16,
            );
            (Kind::Ask { len, step: 0 }, 53)
        } else if r < 0.46 {
            (
                Kind::Ask {
                    len: (48, 48),
                    step: 0,
                },
                123,
            )
        } else if r < 0.55 {
            (
                Kind::Ping {
                    n: 2 + self.rng.range(0, 5) as u32,
                    step: 0,
                },
                0,
            )
        } else if r < 0.78 {
            (
                Kind::Small {
                    rounds: 1 + self.rng.range(0, 3) as u32,
                    step: 0,
                },
                [443u16, 8080, 5432, 6379][self.rng.range(0, 4) as usize],
            )
        } else {
            // Heavy-tailed response sizes (Pareto, shape 1.3): mostly a few
            // segments, now and then thousands.
            let xm = 2.0 * (1.0 + 4.0 * self.bulk_share);
            let segs = (xm / (1.0 - self.rng.unit()).powf(1.0 / 1.3)).min(200_000.0) as u32;
            (
                Kind::Web { segs, step: 0 },
                if self.rng.chance(0.7) { 443 } else { 80 },
            )
        };
        self.start(t, kind, port, v6);
    }
}

fn ms(rng: &mut Rng, lo: f64, hi: f64) -> i64 {
    ((lo + (hi - lo) * rng.unit()) * 1e6) as i64
}

/// Writes the run into `dir`.
pub fn write(dir: &Path, cfg: &Config) -> io::Result<Summary> {
    let target = f64::from(cfg.mean_frame.unwrap_or(340));
    // Shift packets from small streams to bulk transfers for larger frames.
    let bulk_share = ((target - 340.0) / 700.0).clamp(0.0, 1.0);
    let spec = RunSpec {
        prefix: "bench".into(),
        containers: vec![Container::Pcap {
            big_endian: false,
            nanos: false,
        }],
        link: Link::Ethernet(EthOpts::default()),
        snaplen: None,
        rotate_packets: None,
        rotate_bytes: Some(cfg.file_bytes.max(1 << 16)),
    };
    let mut w = RunWriter::new(dir, spec)?;
    w.record_packets = false;
    let truth_id = w.flow(&Pkt::new(
        Host::v4(0, [0; 4]),
        Host::v4(0, [0; 4]),
        Body::Proto { proto: 0, len: 0 },
    ));
    let mut rng = Rng::new(cfg.seed);
    let clients = (0..4000u32)
        .map(|i| {
            (
                Host::v4(
                    (i % 251) as u8,
                    [10, 20 + (i >> 12) as u8, (i >> 8) as u8 & 0x0f, i as u8],
                ),
                32_768 + (i % 1000) as u16,
            )
        })
        .collect();
    let mut servers = Vec::new();
    for i in 0..300u32 {
        let mut s4 = Host::v4(
            1,
            [
                198,
                18 + (i / 250) as u8,
                (i / 50) as u8,
                1 + (i % 250) as u8,
            ],
        );
        s4.mac = [0x00, 0x00, 0x0c, 0x07, 0xac, 0x01]; // the gateway (Cisco HSRP)
        let mut v6ip = [0u8; 16];
        v6ip[..4].copy_from_slice(&[0x26, 0x00, 0x1f, 0x18]);
        v6ip[14] = (i >> 8) as u8;
        v6ip[15] = i as u8;
        let mut s6 = Host::v6(1, v6ip);
        s6.mac = s4.mac;
        servers.push(s4);
        servers.push(s6);
    }
    let mut sim = Sim {
        rng: Rng::new(cfg.seed.wrapping_add(1)),
        sessions: Vec::new(),
        free: Vec::new(),
        queue: BinaryHeap::new(),
        clients,
        servers,
        bulk_share,
    };
    // Long-lived flows: voice streams, bulk transfers, interactive sessions;
    // a few of each last the whole run and so span every file.
    let forever = i64::MAX;
    let voice = (300.0 * (1.0 - bulk_share)) as usize;
    let bulk = 20 + (100.0 * bulk_share) as usize;
    for i in 0..voice {
        let until = if i < 6 {
            forever
        } else {
            T0 + (rng.range(20, 200) as f64 * SEC) as i64
        };
        let t = T0 + ms(&mut rng, 0.0, 2000.0);
        sim.start(
            t,
            Kind::Rtp { until, turn: false },
            16_384 + (i as u16 % 1000) * 2,
            false,
        );
    }
    for i in 0..bulk {
        let until = if i < 4 {
            forever
        } else {
            T0 + (rng.range(5, 120) as f64 * SEC) as i64
        };
        let t = T0 + ms(&mut rng, 0.0, 5000.0);
        let gap = ms(&mut rng, 1.0, 6.0);
        sim.start(
            t,
            Kind::Bulk {
                until,
                step: 0,
                gap,
            },
            443,
            i % 10 == 3,
        );
    }
    for i in 0..700 {
        let until = if i < 10 {
            forever
        } else {
            T0 + (rng.range(10, 300) as f64 * SEC) as i64
        };
        let t = T0 + ms(&mut rng, 0.0, 3000.0);
        sim.start(t, Kind::Chatty { until, step: 0 }, 22, i % 7 == 0);
    }
    // Short sessions arrive at random (Poisson) times.
    let arrivals_per_s = 2_300.0 * (1.0 - 0.5 * bulk_share);
    let mut next_arrival = T0;
    let mut buf_pkt = Pkt::new(
        sim.servers[0],
        sim.servers[0],
        Body::Proto { proto: 0, len: 0 },
    );
    // Bulk transfers carry most bytes: their pace is steered so that the
    // mean frame size approaches the one asked for.
    let mut pace = 1.0f64;
    let mut checked_at = 0;
    while w.bytes < cfg.total_bytes {
        if w.packets >= checked_at + 20_000 {
            checked_at = w.packets;
            let mean = w.bytes as f64 / w.packets as f64 - 16.0;
            pace = (pace * (mean / target).powf(2.0)).clamp(0.05, 50.0);
        }
        let Some(Reverse((t, i))) = sim.queue.pop() else {
            break;
        };
        while next_arrival <= t {
            sim.arrival(next_arrival);
            next_arrival += (sim.rng.exp(1.0 / arrivals_per_s) * SEC) as i64 + 1;
        }
        let s = &mut sim.sessions[i];
        let rng = &mut sim.rng;
        let next = step(s, t, rng, pace, &mut buf_pkt);
        let (reverse, p) = buf_pkt_dir(&buf_pkt, s);
        w.write(t, truth_id, reverse, &p, None)?;
        match next {
            Some(n) => sim.queue.push(Reverse((n, i))),
            None => sim.free.push(i),
        }
    }
    let packets = w.packets;
    let bytes = w.bytes;
    let (paths, _) = w.finish()?;
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(Summary {
        files: paths.len(),
        packets,
        bytes: total.max(bytes),
        paths,
    })
}

/// Direction of the packet just built: reverse when the server sent it.
fn buf_pkt_dir(p: &Pkt, s: &Session) -> (bool, Pkt) {
    (p.src.ip != s.client.ip, *p)
}

/// Builds session `s`'s packet at time `t` into `out`; returns when its next one is due.
/// Sequence number `base + off`, wrapping as TCP's do.
fn seq(base: u32, off: u64) -> u32 {
    (u64::from(base) + off) as u32
}

/// `pace` stretches the gaps of bulk transfers (see `write`).
fn step(s: &mut Session, t: i64, rng: &mut Rng, pace: f64, out: &mut Pkt) -> Option<i64> {
    use flags::*;
    let (c, sv, cp, sp) = (s.client, s.server, s.cport, s.sport);
    let up = |fl, seq: u32, ack: u32, len| {
        Pkt::new(
            c,
            sv,
            Body::Tcp {
                sport: cp,
                dport: sp,
                flags: fl,
                seq,
                ack,
                len,
            },
        )
    };
    let down = |fl, seq: u32, ack: u32, len| {
        Pkt::new(
            sv,
            c,
            Body::Tcp {
                sport: sp,
                dport: cp,
                flags: fl,
                seq,
                ack,
                len,
            },
        )
    };
    let [cs, ss] = s.seq;
    // The TCP handshake shared by the TCP kinds: steps 0..3.
    let handshake = |step: u32| match step {
        0 => Some(up(SYN, cs, 0, 0)),
        1 => Some(down(SYN | ACK, ss, seq(cs, 1), 0)),
        2 => Some(up(ACK, seq(cs, 1), seq(ss, 1), 0)),
        _ => None,
    };
    let rtt = 20_000_000 + i64::from(cp % 40) * 1_000_000;
    match &mut s.kind {
        Kind::Rtp { until, turn } => {
            *out = if *turn {
                Pkt::new(
                    sv,
                    c,
                    Body::Udp {
                        sport: sp,
                        dport: cp,
                        len: 172,
                    },
                )
            } else {
                Pkt::new(
                    c,
                    sv,
                    Body::Udp {
                        sport: cp,
                        dport: sp,
                        len: 172,
                    },
                )
            };
            *turn = !*turn;
            let next = t + if *turn { 3_000_000 } else { 17_000_000 };
            (next < *until).then_some(next)
        }
        Kind::Bulk { until, step, gap } => {
            *step += 1;
            let n = *step - 1;
            if let Some(p) = handshake(n) {
                *out = p;
                return Some(t + rtt / 2);
            }
            let k = n - 3;
            *out = if k % 3 == 2 {
                up(
                    ACK,
                    seq(cs, 1),
                    seq(ss, 1 + (u64::from(k) / 3 + 1) * 2 * 1448),
                    0,
                )
            } else {
                down(
                    ACK,
                    seq(ss, 1 + (u64::from(k) - u64::from(k) / 3) * 1448),
                    seq(cs, 1),
                    1448,
                )
            };
            let next = t + if k % 3 == 2 {
                (*gap as f64 * pace) as i64
            } else {
                30_000
            };
            (next < *until).then_some(next)
        }
        Kind::Chatty { until, step } => {
            *step += 1;
            let n = *step - 1;
            if let Some(p) = handshake(n) {
                *out = p;
                return Some(t + rtt / 2);
            }
            let len = 36 + (rng.next_u32() % 5) as u16 * 16;
            *out = if n % 2 == 1 {
                up(PSH | ACK, seq(cs, u64::from(n)), seq(ss, u64::from(n)), len)
            } else {
                down(PSH | ACK, seq(ss, u64::from(n)), seq(cs, u64::from(n)), len)
            };
            let next = t + if n % 2 == 1 {
                rtt
            } else {
                ms(rng, 50.0, 900.0)
            };
            (next < *until).then_some(next)
        }
        Kind::Web { segs, step } => {
            *step += 1;
            let n = *step - 1;
            if let Some(p) = handshake(n) {
                *out = p;
                return Some(t + rtt / 2);
            }
            let body_end = 4 + *segs + *segs / 2;
            let seq_down = seq(ss, 1 + u64::from(n.saturating_sub(4)) * 1448);
            let (p, next) = match n {
                3 => (up(PSH | ACK, seq(cs, 1), seq(ss, 1), 380), rtt),
                k if k < body_end => {
                    if (k - 4) % 3 == 2 {
                        (up(ACK, seq(cs, 381), seq_down, 0), 40_000)
                    } else {
                        let fl = if k + 1 == body_end { PSH | ACK } else { ACK };
                        (down(fl, seq_down, seq(cs, 381), 1448), 60_000)
                    }
                }
                k if k == body_end => (up(FIN | ACK, seq(cs, 381), seq_down, 0), rtt / 2),
                k if k == body_end + 1 => (down(FIN | ACK, seq_down, seq(cs, 382), 0), rtt / 2),
                _ => (up(ACK, seq(cs, 382), seq(seq_down, 1), 0), -1),
            };
            *out = p;
            (next >= 0).then_some(t + next)
        }
        Kind::Small { rounds, step } => {
            *step += 1;
            let n = *step - 1;
            if let Some(p) = handshake(n) {
                *out = p;
                return Some(t + rtt / 2);
            }
            let k = n - 3;
            let last = *rounds * 3;
            let (p, next) = if k < last {
                match k % 3 {
                    0 => (
                        up(
                            PSH | ACK,
                            seq(cs, 1 + u64::from(k) * 100),
                            seq(ss, 1 + u64::from(k) * 100),
                            120,
                        ),
                        rtt / 2,
                    ),
                    1 => (
                        down(
                            PSH | ACK,
                            seq(ss, 1 + u64::from(k) * 100),
                            seq(cs, 1 + u64::from(k) * 100),
                            200,
                        ),
                        200_000,
                    ),
                    _ => (
                        up(
                            ACK,
                            seq(cs, 1 + u64::from(k) * 100),
                            seq(ss, 1 + u64::from(k) * 100),
                            0,
                        ),
                        ms(rng, 5.0, 200.0),
                    ),
                }
            } else {
                match k - last {
                    0 => (up(FIN | ACK, seq(cs, 9999), seq(ss, 9999), 0), rtt / 2),
                    1 => (down(FIN | ACK, seq(ss, 9999), seq(cs, 10_000), 0), rtt / 2),
                    _ => (up(ACK, seq(cs, 10_000), seq(ss, 10_000), 0), -1),
                }
            };
            *out = p;
            (next >= 0).then_some(t + next)
        }
        Kind::Ask { len, step } => {
            *step += 1;
            if *step == 1 {
                *out = Pkt::new(
                    c,
                    sv,
                    Body::Udp {
                        sport: cp,
                        dport: sp,
                        len: len.0,
                    },
                );
                Some(t + rtt / 2)
            } else {
                *out = Pkt::new(
                    sv,
                    c,
                    Body::Udp {
                        sport: sp,
                        dport: cp,
                        len: len.1,
                    },
                );
                None
            }
        }
        Kind::Ping { n, step } => {
            *step += 1;
            let v6 = c.v6;
            let (req, rep) = if v6 { (128, 129) } else { (8, 0) };
            if *step % 2 == 1 {
                *out = Pkt::new(
                    c,
                    sv,
                    Body::Icmp {
                        ty: req,
                        code: 0,
                        len: 56,
                    },
                );
                Some(t + rtt)
            } else {
                *out = Pkt::new(
                    sv,
                    c,
                    Body::Icmp {
                        ty: rep,
                        code: 0,
                        len: 56,
                    },
                );
                (*step < *n * 2).then_some(t + 1_000_000_000 - rtt)
            }
        }
    }
}
