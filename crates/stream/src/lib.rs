//! Reassembled payloads of one indexed flow: what `pcapidx follow` prints
//! and a server's flow page shows. The flow's records are read back at the
//! index's offsets (the carve crate's checked record reading), decoded,
//! IP fragments joined, then TCP reassembled per direction ([`tcp`]) or,
//! for UDP and other datagram flows, each datagram's payload in order.
//!
//! Invariants:
//! - Bytes are the captured bytes, never marker text: what was never
//!   captured (a lost segment, a snaplen-cut one) is an [`Event::Gap`] of
//!   its own, with its stream offset and length.
//! - Packets are taken in capture order (file, then offset), as a tool
//!   reading the files sees them; that order decides which copy of a byte
//!   came first.
//! - Memory is bounded whatever the session's size: bytes are handed out
//!   as soon as they are in order; what waits ahead of a hole is bounded
//!   ([`tcp::PENDING_LIMIT`]).
#![forbid(unsafe_code)]

mod defrag;
#[doc(hidden)]
pub mod fuzzing;
pub mod tcp;

use pcapidx_carve::{CarveError, Container, Window};
use pcapidx_decode::{Decoded, Frag, Layer, decode, tcp_flags};
use pcapidx_store::{FlowEnds, Store, StoreError};
use thiserror::Error;

pub use tcp::{HalfStats, Piece};

/// A direction of a flow. The client is the flow's `src` side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Client,
    Server,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::Client => "client",
            Dir::Server => "server",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn other(self) -> Dir {
        match self {
            Dir::Client => Dir::Server,
            Dir::Server => Dir::Client,
        }
    }
}

/// Why bytes are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// Never in the capture (lost, or before a window).
    NotCaptured,
    /// The packet was captured, but cut short by the snaplen.
    CutBySnaplen,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::NotCaptured => "not captured",
            GapKind::CutBySnaplen => "cut by snaplen",
        }
    }
}

/// What following a flow produces, in the order Wireshark shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Bytes at `offset` of the direction's stream (for datagrams: the
    /// sum of the earlier datagrams' lengths; each datagram is one event).
    Data {
        dir: Dir,
        offset: u64,
        /// The time of the packet that carried them.
        ts_ns: i64,
        bytes: &'a [u8],
    },
    Gap {
        dir: Dir,
        offset: u64,
        len: u64,
        ts_ns: i64,
        kind: GapKind,
    },
}

#[derive(Debug, Error)]
pub enum FollowError {
    #[error(transparent)]
    Carve(#[from] CarveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no flow {0} in the index")]
    NoSuchFlow(u64),
    #[error("flow {0} is a layer-2 flow: it carries no IP payload to follow")]
    NotIp(u64),
    /// Writing the events failed (a closed pipe, a full disk).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The consumer of the events chose to stop (it refuses gaps, say).
    #[error("{0}")]
    Stopped(String),
}

/// The flow being followed.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: u64,
    pub ends: FlowEnds,
}

impl Flow {
    pub fn is_tcp(&self) -> bool {
        self.ends.proto == Some(6)
    }

    /// One side's address and port.
    pub fn end(&self, dir: Dir) -> (Option<&str>, Option<u16>) {
        match dir {
            Dir::Client => (self.ends.src_ip.as_deref(), self.ends.src_port),
            Dir::Server => (self.ends.dst_ip.as_deref(), self.ends.dst_port),
        }
    }

    /// `ip:port` (`[ip]:port` for IPv6) of one side.
    pub fn endpoint(&self, dir: Dir) -> String {
        let (ip, port) = self.end(dir);
        let ip = ip.unwrap_or("?");
        match port {
            Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
            Some(p) => format!("{ip}:{p}"),
            None => ip.to_string(),
        }
    }
}

/// Looks a flow up.
pub fn flow(store: &Store, id: u64) -> Result<Flow, FollowError> {
    let ends = store.flow_ends(id)?.ok_or(FollowError::NoSuchFlow(id))?;
    if ends.proto.is_none() {
        return Err(FollowError::NotIp(id));
    }
    Ok(Flow { id, ends })
}

/// What was followed, per direction (indexed by [`Dir::index`]).
#[derive(Debug, Clone, Default)]
pub struct Followed {
    pub packets: [u64; 2],
    pub stats: [HalfStats; 2],
    /// Packets of the flow with no decodable IP payload.
    pub undecodable: u64,
    /// Fragmented datagrams whose fragments never all arrived.
    pub incomplete_datagrams: u64,
}

impl Followed {
    pub fn missing(&self) -> u64 {
        self.stats.iter().map(|s| s.missing).sum()
    }
}

type Sink<'s> = dyn FnMut(&Event<'_>) -> Result<(), FollowError> + 's;

/// Hands pieces of one direction to the sink; keeps its first error (the
/// reassembler's callbacks cannot fail) for the caller to return.
fn relay<'s>(
    sink: &'s mut Sink<'_>,
    failed: &'s mut Option<FollowError>,
    dir: Dir,
) -> impl FnMut(Piece<'_>) + 's {
    move |p| {
        if failed.is_some() {
            return;
        }
        let e = match p {
            Piece::Data {
                offset,
                ts_ns,
                bytes,
            } => Event::Data {
                dir,
                offset,
                ts_ns,
                bytes,
            },
            Piece::Gap {
                offset,
                len,
                ts_ns,
                kind,
            } => Event::Gap {
                dir,
                offset,
                len,
                ts_ns,
                kind,
            },
        };
        if let Err(err) = sink(&e) {
            *failed = Some(err);
        }
    }
}

/// Reassembly state of one flow.
struct Follower {
    proto: u8,
    halves: [tcp::Half; 2],
    /// Datagram flows: stream offset of each direction.
    offsets: [u64; 2],
    defrag: defrag::Defrag,
    done: Followed,
    failed: Option<FollowError>,
}

impl Follower {
    fn packet(&mut self, sink: &mut Sink<'_>, dir: Dir, t: &[u8], wire_len: u32, ts_ns: i64) {
        if self.proto == 6 {
            self.tcp_segment(sink, dir, t, wire_len, ts_ns);
        } else {
            self.datagram(sink, dir, t, wire_len, ts_ns);
        }
    }

    fn tcp_segment(&mut self, sink: &mut Sink<'_>, dir: Dir, t: &[u8], wire_len: u32, ts_ns: i64) {
        let header = usize::from(t.get(12).map_or(0, |b| b >> 4)) * 4;
        if header < 20 || t.len() < header {
            self.done.undecodable += 1;
            return;
        }
        let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
        let (seq, ack, flags) = (be32(4), be32(8), t[13]);
        let [client, server] = &mut self.halves;
        let (mine, other) = match dir {
            Dir::Client => (client, server),
            Dir::Server => (server, client),
        };
        if flags & tcp_flags::ACK != 0 {
            other.acknowledged(ack, ts_ns, &mut relay(sink, &mut self.failed, dir.other()));
        }
        let seg = tcp::Segment {
            seq,
            syn: flags & tcp_flags::SYN != 0,
            fin: flags & tcp_flags::FIN != 0,
            data: &t[header..],
            wire_len: wire_len.saturating_sub(header as u32),
            ts_ns,
        };
        mine.segment(&seg, &mut relay(sink, &mut self.failed, dir));
    }

    fn datagram(&mut self, sink: &mut Sink<'_>, dir: Dir, t: &[u8], wire_len: u32, ts_ns: i64) {
        let (data, wire) = if self.proto == 17 {
            if t.len() < 8 {
                self.done.undecodable += 1;
                return;
            }
            // The UDP length bounds the payload (when it is sane).
            let udp_len = u32::from(u16::from_be_bytes([t[4], t[5]]));
            let wire = if (8..=wire_len).contains(&udp_len) {
                udp_len
            } else {
                wire_len
            };
            let wire = wire - 8;
            (&t[8..(8 + wire as usize).min(t.len())], wire)
        } else {
            (t, wire_len)
        };
        let i = dir.index();
        let offset = self.offsets[i];
        let mut emit = relay(sink, &mut self.failed, dir);
        if !data.is_empty() {
            emit(Piece::Data {
                offset,
                ts_ns,
                bytes: data,
            });
        }
        let cut = u64::from(wire).saturating_sub(data.len() as u64);
        if cut > 0 {
            emit(Piece::Gap {
                offset: offset + data.len() as u64,
                len: cut,
                ts_ns,
                kind: GapKind::CutBySnaplen,
            });
            self.done.stats[i].missing += cut;
            self.done.stats[i].gaps += 1;
        }
        self.done.stats[i].bytes += data.len() as u64;
        self.offsets[i] = offset + u64::from(wire);
    }
}

/// Follows a flow: reads its records (those inside `window`) and hands
/// `sink` its payload as events. An error from `sink` stops it and is
/// returned as is.
pub fn follow(
    store: &Store,
    flow: &Flow,
    window: Window,
    sink: &mut Sink<'_>,
) -> Result<Followed, FollowError> {
    let plan = pcapidx_carve::plan(store, &[flow.id], Container::Auto, window)?.in_capture_order();
    // A stream with a file's packets left out would show its bytes as gaps
    // that the capture does not have: refuse, naming the file.
    if let Some(u) = plan.unavailable.first() {
        return Err(FollowError::Carve(pcapidx_carve::CarveError::Unavailable(
            u.error.clone(),
        )));
    }
    let mut f = Follower {
        proto: flow.ends.proto.unwrap_or(0),
        halves: Default::default(),
        offsets: [0; 2],
        defrag: defrag::Defrag::default(),
        done: Followed::default(),
        failed: None,
    };
    let mut d = Decoded::default();
    plan.each_record(|r| -> Result<(), FollowError> {
        decode(r.link_type, r.data, &mut d);
        let dir = if r.position.reverse {
            Dir::Server
        } else {
            Dir::Client
        };
        f.done.packets[dir.index()] += 1;
        if d.layer != Layer::Ip {
            f.done.undecodable += 1;
            return Ok(());
        }
        let ip = &d.ip;
        let bytes = ip.payload.of(r.data);
        let ts = r.position.ts_ns;
        match ip.frag {
            Frag::Whole => f.packet(sink, dir, bytes, ip.payload_wire_len, ts),
            Frag::First { id } | Frag::Later { id } => {
                let frag = defrag::Fragment {
                    reverse: r.position.reverse,
                    id,
                    offset: ip.frag_offset,
                    more: ip.more_fragments,
                    bytes,
                    cut: ip.payload_wire_len as usize > bytes.len(),
                    ts_ns: ts,
                };
                if let Some(w) = f.defrag.add(&frag) {
                    f.packet(sink, dir, &w.payload, w.payload.len() as u32, w.ts_ns);
                }
            }
        }
        f.failed.take().map_or(Ok(()), Err)
    })?;
    let [client, server] = &mut f.halves;
    client.finish(&mut relay(sink, &mut f.failed, Dir::Client));
    server.finish(&mut relay(sink, &mut f.failed, Dir::Server));
    if let Some(e) = f.failed.take() {
        return Err(e);
    }
    f.defrag.finish();
    f.done.incomplete_datagrams = f.defrag.incomplete;
    if f.proto == 6 {
        f.done.stats = [f.halves[0].stats, f.halves[1].stats];
    }
    Ok(f.done)
}
