//! The flow table: assigning packets to flows in processing order.
use std::collections::VecDeque;

use pcapidx_decode::{Frag, Tcp, tcp_flags};
use pcapidx_positions::{Encoder, Position};
use rustc_hash::FxHashMap;

use crate::deadlines::Deadlines;
use crate::key::{FlowKey, KeyKind, Keyed, Summary};
use crate::orient::{self, Orient, ServerPorts};
use crate::payload;
use crate::record::{FlowRecord, Payload, RowCounts};
use crate::state::{self, StateError};
use crate::table::{SlotTable, prefetch};
use crate::tcp::TcpState;

const SECOND: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub tcp_timeout_ns: i64,
    /// Idle time after which a TCP session that has closed (FIN both ways,
    /// or RST) ends: late packets still join it (Zeek's `tcp_close_delay`,
    /// Arkime's `tcpClosingTimeout`), and closed sessions do not stay in
    /// memory for the full TCP timeout.
    pub tcp_closed_timeout_ns: i64,
    pub udp_timeout_ns: i64,
    pub other_timeout_ns: i64,
    /// Position bytes kept per flow before a chunk is handed to the sink.
    pub chunk_bytes: usize,
    /// Position bytes of a flow idle this long are handed to the sink.
    pub idle_flush_ns: i64,
    /// A flow's row is first written once it is idle (see `idle_flush_ns`)
    /// or this old, in flow id order (see `Tracker::unstored`).
    pub first_row_ns: i64,
    /// How long a fragment whose first fragment has not been seen waits for it.
    pub frag_hold_ns: i64,
    /// How a new flow's client is chosen (orient.rs).
    pub orient: Orient,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp_timeout_ns: 480 * SECOND,
            tcp_closed_timeout_ns: 5 * SECOND,
            udp_timeout_ns: 60 * SECOND,
            other_timeout_ns: 60 * SECOND,
            // A chunk ends once it reaches this, a few bytes over at most:
            // four such chunks and their cell headers fill an 8 KB page,
            // where 2048 left a quarter of the page unused.
            chunk_bytes: 2000,
            idle_flush_ns: 2 * SECOND,
            first_row_ns: 10 * SECOND,
            // Linux's default IP reassembly timeout (ipfrag_time).
            frag_hold_ns: 30 * SECOND,
            orient: Orient::Evidence,
        }
    }
}

/// One packet to assign to a flow.
#[derive(Debug, Clone, Copy)]
pub struct PacketIn<'a> {
    /// When the packet counts as seen: its record's time, or where a time far
    /// out of line with its file's neighbours was placed (see the index crate).
    pub ts_ns: i64,
    /// Its record's own time, which its position keeps (carving checks it).
    pub record_ts_ns: i64,
    pub file_id: u32,
    pub offset: u64,
    pub caplen: u32,
    pub orig_len: u32,
    pub iface: u32,
    /// `Summary::of` its decoded headers, worked out ahead (in parallel).
    pub s: &'a Summary,
}

/// A packet held while its datagram's first fragment is awaited.
#[derive(Debug, Clone, Copy)]
struct Held {
    ts_ns: i64,
    record_ts_ns: i64,
    file_id: u32,
    offset: u64,
    caplen: u32,
    orig_len: u32,
    iface: u32,
    s: Summary,
}

impl Held {
    fn of(p: &PacketIn) -> Self {
        Held {
            ts_ns: p.ts_ns,
            record_ts_ns: p.record_ts_ns,
            file_id: p.file_id,
            offset: p.offset,
            caplen: p.caplen,
            orig_len: p.orig_len,
            iface: p.iface,
            s: *p.s,
        }
    }
    fn packet(&self) -> PacketIn<'_> {
        PacketIn {
            ts_ns: self.ts_ns,
            record_ts_ns: self.record_ts_ns,
            file_id: self.file_id,
            offset: self.offset,
            caplen: self.caplen,
            orig_len: self.orig_len,
            iface: self.iface,
            s: &self.s,
        }
    }
}

/// Where finished position chunks and flow totals go.
pub trait FlowSink {
    /// A chunk of the flow's position list after its first (chunks arrive
    /// in order).
    fn chunk(&mut self, flow_id: u64, data: Vec<u8>);
    /// The flow's totals so far (its row): written when it ends, when it
    /// goes idle, and at checkpoints if it changed. The first time, with
    /// the first chunk of its position list (`first_chunk`): most flows
    /// have no other, and a chunk stored in the row costs no row and no
    /// index entry of its own. `new_files`: the files it has packets in that
    /// no earlier row of it named (what the store's file-to-flows table needs);
    /// `before`: what its previous row said (None: this is its first).
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    );
    /// At a checkpoint: the state of every flow that may continue, replacing
    /// the previous one (see [`crate::state::encode_all`]).
    fn open_flows(&mut self, state: Vec<u8>);
}

pub(crate) struct Active {
    pub rec: FlowRecord,
    /// `rec.key`'s hash.
    hash: u64,
    pub tcp: TcpState,
    /// TCP: holes in its sequence space not filled yet (usually none). Kept
    /// out of the record, which is copied to the store's writer.
    pub holes: payload::Holes,
    /// Distinct files, in first-seen order.
    pub files: Vec<u32>,
    /// The last of `files` to have a packet (u32::MAX: none yet), kept
    /// inline: most packets are in the same file as the flow's previous
    /// one, and this spares them a trip to `files`' heap memory.
    last_file: u32,
    /// How many of `files` a row handed to the sink has named.
    files_out: usize,
    /// What the last row handed to the sink said (None: none yet).
    row_out: Option<RowCounts>,
    enc: Encoder,
    /// Changed since the sink last had its row.
    dirty: bool,
    /// The sink has had its row.
    stored: bool,
    /// Its first chunk filled up before its row was written, and went to
    /// the sink on its own.
    first_out: bool,
}

impl Active {
    /// Hands the pending positions to the sink, and the row if `row`; the
    /// first hand-over always carries the row, with the first chunk.
    fn hand_over(&mut self, sink: &mut impl FlowSink, row: bool) {
        if !self.stored {
            let pending = (!self.enc.is_empty()).then(|| self.enc.take());
            if self.first_out {
                if let Some(c) = pending {
                    sink.chunk(self.rec.id, c);
                }
                sink.flow(&self.rec, None, &self.files, self.row_out);
            } else {
                sink.flow(&self.rec, pending, &self.files, self.row_out);
            }
            self.files_out = self.files.len();
            self.row_out = Some(RowCounts::of(&self.rec));
            self.stored = true;
            self.dirty = false;
            return;
        }
        if !self.enc.is_empty() {
            sink.chunk(self.rec.id, self.enc.take());
        }
        if row {
            sink.flow(&self.rec, None, &self.files[self.files_out..], self.row_out);
            self.files_out = self.files.len();
            self.row_out = Some(RowCounts::of(&self.rec));
            self.dirty = false;
        }
    }
}

/// Fragments of one datagram: addresses, protocol, IP id, VLANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    v6: bool,
    proto: u8,
    vlans: [u16; 3],
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
}

impl FragKey {
    fn of(s: &Summary, id: u32) -> Self {
        let k = &s.keyed.key;
        let (src, dst) = s.addresses();
        FragKey {
            v6: k.kind == KeyKind::Ip6,
            proto: k.proto,
            vlans: k.vlans,
            src: *src,
            dst: *dst,
            id,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub packets: u64,
    pub flows_started: u64,
    pub flows_finished: u64,
}

pub struct Tracker {
    cfg: Config,
    /// The ports that mark a server (orient.rs): the index's services.
    servers: ServerPorts,
    /// The slots of the active flows, filed by key hash (the keys are in
    /// the slots): four bytes an entry keep the table in the CPU caches,
    /// and deadlines name a slot, not a key.
    flows: SlotTable,
    slots: Vec<Option<Active>>,
    free: Vec<u32>,
    /// When each flow may have timed out (checked lazily: entries can be stale).
    expiry: Deadlines,
    /// When each flow may have gone idle: its pending positions and row are then handed over.
    idle: Deadlines,
    /// Flows whose row has not been written yet, in id order. First rows
    /// are written in this order, so that the store appends them: rows
    /// inserted out of order split b-tree pages and left a tenth of the
    /// flow table unused.
    unstored: VecDeque<(u64, u32)>,
    /// First fragments seen: the flow their later fragments belong to.
    frags: FxHashMap<FragKey, (Keyed, i64)>,
    /// Later fragments awaiting their first fragment.
    held: FxHashMap<FragKey, Vec<Held>>,
    next_id: u64,
    now: i64,
    last_tick: i64,
    /// No deadline, first row or tick is due before this capture time:
    /// `expire` is skipped until the clock passes it (it is called for
    /// nearly every packet otherwise, and most times finds nothing to do).
    next_due: i64,
    stats: TrackerStats,
}

impl Tracker {
    /// `next_id` is the first flow id to assign.
    pub fn new(cfg: Config, next_id: u64) -> Self {
        Tracker {
            cfg,
            servers: ServerPorts::default(),
            flows: SlotTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            expiry: Deadlines::default(),
            idle: Deadlines::default(),
            unstored: VecDeque::new(),
            frags: FxHashMap::default(),
            held: FxHashMap::default(),
            next_id,
            now: i64::MIN,
            last_tick: i64::MIN,
            next_due: i64::MIN,
            stats: TrackerStats::default(),
        }
    }

    /// The ports that mark a server for orienting flows first seen
    /// mid-stream (by default the well-known ones).
    pub fn set_server_ports(&mut self, servers: ServerPorts) {
        self.servers = servers;
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// The next flow id that would be assigned.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    fn timeout(&self, key: &FlowKey, tcp: &TcpState) -> i64 {
        flow_timeout(&self.cfg, key, tcp)
    }

    /// Makes `f` an active flow; returns its slot.
    fn insert(&mut self, f: Active) -> u32 {
        let hash = f.hash;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(f);
                s
            }
            None => {
                self.slots.push(Some(f));
                (self.slots.len() - 1) as u32
            }
        };
        self.flows.insert(hash, slot);
        slot
    }

    /// The slot of the active flow with this key.
    fn find(&self, k: &Keyed) -> Option<u32> {
        let slots = &self.slots;
        self.flows.find(k.hash(), |s| {
            slots[s as usize]
                .as_ref()
                .is_some_and(|f| f.rec.key == k.key)
        })
    }

    /// Prefetching, first step: asks the CPU to start loading the table
    /// entry for a packet some way ahead. A hint only, like the second step.
    #[inline]
    pub fn prefetch_entry(&self, k: &Keyed) {
        prefetch(self.flows.home_entry(k.hash()));
    }

    /// Prefetching, second step, for a packet nearer ahead (whose table
    /// entry the first step has brought into cache): asks for the state of
    /// its flow. Keys are not compared, as that would wait for the very
    /// memory asked for; every slot under the key's hash is asked for
    /// (almost always one). The flow may have ended by the time the packet
    /// comes; that costs a wasted load, nothing more.
    #[inline]
    pub fn prefetch_flow(&self, k: &Keyed) {
        for slot in self.flows.candidates(k.hash()) {
            if let Some(f) = self.slots.get(slot as usize) {
                prefetch(f);
            }
        }
    }

    /// Ends the active flow in `slot`.
    fn remove(&mut self, slot: u32) -> Option<Active> {
        let f = self.slots.get_mut(slot as usize)?.take()?;
        self.flows.remove(f.hash, slot);
        self.free.push(slot);
        Some(f)
    }

    /// The flow a deadline names, unless its slot moved on to another flow.
    fn live(&mut self, slot: u32, id: u64) -> Option<&mut Active> {
        self.slots
            .get_mut(slot as usize)?
            .as_mut()
            .filter(|f| f.rec.id == id)
    }

    fn longest_timeout(&self) -> i64 {
        self.cfg
            .tcp_timeout_ns
            .max(self.cfg.tcp_closed_timeout_ns)
            .max(self.cfg.udp_timeout_ns)
            .max(self.cfg.other_timeout_ns)
    }

    /// Continues a flow saved by an earlier run.
    pub fn restore(&mut self, saved: &state::SavedFlow) -> Result<(), StateError> {
        let (rec, tcp, holes, files) = state::decode(saved)?;
        self.next_id = self.next_id.max(rec.id + 1);
        let timeout = self.timeout(&rec.key, &tcp);
        let (deadline, id) = (rec.last_ts_ns.saturating_add(timeout), rec.id);
        let row_out = Some(RowCounts::of(&rec));
        let slot = self.insert(Active {
            hash: rec.key.hash64(),
            rec,
            tcp,
            holes,
            last_file: files.last().copied().unwrap_or(u32::MAX),
            // The run that saved it wrote rows naming all of them, and its row.
            files_out: files.len(),
            row_out,
            files,
            enc: Encoder::new(),
            dirty: false,
            stored: true,
            first_out: false,
        });
        self.expiry.push((deadline, id, slot), timeout);
        self.next_due = self.next_due.min(deadline);
        Ok(())
    }

    /// Assigns one packet to its flow.
    pub fn push(&mut self, p: &PacketIn, sink: &mut impl FlowSink) {
        if p.ts_ns > self.now {
            self.now = p.ts_ns;
            if self.now > self.next_due {
                self.expire(sink);
            }
        } else if self.now.saturating_sub(p.ts_ns) > self.longest_timeout() {
            // The capture's clock was set back, or files far apart in time
            // were merged: the clock follows. Nothing ends here; flows of
            // the later time end when the clock passes them again.
            self.now = p.ts_ns;
        }
        let k = p.s.keyed;
        match p.s.frag {
            Frag::Whole => self.add(k, p, sink),
            Frag::Later { id } => {
                let fk = FragKey::of(p.s, id);
                match self.frags.get(&fk) {
                    Some(&(first, _)) => self.add(first, p, sink),
                    None => self.held.entry(fk).or_default().push(Held::of(p)),
                }
            }
            Frag::First { id } => {
                self.add(k, p, sink);
                let fk = FragKey::of(p.s, id);
                self.frags.insert(fk, (k, p.ts_ns));
                for h in self.held.remove(&fk).unwrap_or_default() {
                    self.add(k, &h.packet(), sink);
                }
            }
        }
    }

    fn add(&mut self, k: Keyed, p: &PacketIn, sink: &mut impl FlowSink) {
        let Keyed { key, from_a, .. } = k;
        let tcp = match (key.is_l2(), key.proto) {
            (false, 6) => p.s.tcp,
            _ => None,
        };
        let cfg = self.cfg;
        if let Some(slot) = self.find(&k)
            && let Some(f) = self.slots[slot as usize].as_mut()
        {
            let forward = from_a == f.rec.src_is_a;
            let dir = usize::from(!forward);
            // Idle time is measured on the capture clock (the latest timestamp seen), as
            // expiry is: a packet stamped in the past does not revive a flow that ended.
            let timeout = flow_timeout(&cfg, &key, &f.tcp);
            let idle_too_long = self.now.saturating_sub(f.rec.last_ts_ns) > timeout;
            let new_session = tcp.is_some_and(|t| f.tcp.starts_new_session(&t, dir));
            if !idle_too_long && !new_session {
                let was_clean = !f.dirty;
                let was_closed = f.tcp.closed();
                update(f, p, forward, tcp.as_ref(), cfg.chunk_bytes, sink);
                if !was_closed && f.tcp.closed() {
                    // Its timeout just got shorter.
                    let timeout = flow_timeout(&cfg, &key, &f.tcp);
                    let due = f.rec.last_ts_ns.saturating_add(timeout);
                    self.expiry.push((due, f.rec.id, slot), timeout);
                    self.next_due = self.next_due.min(due);
                }
                if was_clean {
                    let due = p.ts_ns.saturating_add(cfg.idle_flush_ns);
                    self.idle.push((due, f.rec.id, slot), cfg.idle_flush_ns);
                    self.next_due = self.next_due.min(due);
                }
                return;
            }
            if let Some(old) = self.remove(slot) {
                self.finish_flow(old, sink);
            }
        }
        let sent = if from_a {
            (key.a_port, key.b_port)
        } else {
            (key.b_port, key.a_port)
        };
        let turned = orient::turned(
            cfg.orient,
            &self.servers,
            key.proto,
            (!key.is_l2() && key.has_ports).then_some(sent),
            tcp.map(|t| t.flags),
        );
        let src_is_a = from_a != turned.is_some();
        let id = self.next_id;
        self.next_id += 1;
        self.stats.flows_started += 1;
        let mut f = Active {
            hash: k.hash(),
            rec: FlowRecord {
                id,
                key,
                src_is_a,
                first_ts_ns: p.ts_ns,
                last_ts_ns: p.ts_ns,
                packets: [0; 2],
                bytes: [0; 2],
                tcp_flags: [0; 2],
                src_mac: None,
                dst_mac: None,
                files: 0,
                icmp: p.s.icmp.filter(|_| !key.is_l2()),
                // Layer-2 flows have no IP payload to count.
                payload: (!key.is_l2()).then(Payload::default),
                turned,
            },
            tcp: TcpState::default(),
            holes: None,
            files: Vec::new(),
            last_file: u32::MAX,
            files_out: 0,
            row_out: None,
            enc: Encoder::new(),
            dirty: true,
            stored: false,
            first_out: false,
        };
        update(
            &mut f,
            p,
            from_a == src_is_a,
            tcp.as_ref(),
            self.cfg.chunk_bytes,
            sink,
        );
        let timeout = self.timeout(&key, &f.tcp);
        let slot = self.insert(f);
        self.unstored.push_back((id, slot));
        let expires = p.ts_ns.saturating_add(timeout);
        self.expiry.push((expires, id, slot), timeout);
        // Also when its first row could be due (it may be the oldest without one).
        let due = p.ts_ns.saturating_add(cfg.idle_flush_ns);
        self.idle.push((due, id, slot), cfg.idle_flush_ns);
        self.next_due = self.next_due.min(expires).min(due);
    }

    fn finish_flow(&mut self, mut f: Active, sink: &mut impl FlowSink) {
        if !f.stored {
            self.store_through(f.rec.id, sink);
        }
        let row = f.dirty;
        f.hand_over(sink, row);
        self.stats.flows_finished += 1;
    }

    /// Writes the first rows of the flows up to `last_id`, in id order.
    fn store_through(&mut self, last_id: u64, sink: &mut impl FlowSink) {
        while let Some(&(id, slot)) = self.unstored.front() {
            if id > last_id {
                break;
            }
            self.unstored.pop_front();
            // The next oldest may be due sooner.
            self.next_due = i64::MIN;
            if let Some(f) = self.live(slot, id).filter(|f| !f.stored) {
                f.hand_over(sink, true);
            }
        }
    }

    /// Writes first rows, in id order, while the oldest flow without one is
    /// idle or old enough.
    fn store_due(&mut self, sink: &mut impl FlowSink) {
        let (now, idle_ns, first_ns) = (self.now, self.cfg.idle_flush_ns, self.cfg.first_row_ns);
        while let Some(&(id, slot)) = self.unstored.front() {
            let due = self.live(slot, id).is_none_or(|f| {
                f.stored
                    || now.saturating_sub(f.rec.last_ts_ns) > idle_ns
                    || now.saturating_sub(f.rec.first_ts_ns) > first_ns
            });
            if !due {
                break;
            }
            self.store_through(id, sink);
        }
    }

    /// Finishes timed-out flows, hands over idle flows' positions, and gives
    /// up on fragments whose first fragment did not come.
    fn expire(&mut self, sink: &mut impl FlowSink) {
        let (now, cfg) = (self.now, self.cfg);
        while let Some((due, id, slot)) = self.expiry.peek() {
            if due >= now {
                break;
            }
            self.expiry.pop();
            // A stale entry: its flow ended, and the slot may hold a newer one.
            let Some(f) = self.live(slot, id) else {
                continue;
            };
            let timeout = flow_timeout(&cfg, &f.rec.key, &f.tcp);
            let due = f.rec.last_ts_ns.saturating_add(timeout);
            if due < now {
                if let Some(f) = self.remove(slot) {
                    self.finish_flow(f, sink);
                }
            } else {
                self.expiry.push((due, id, slot), timeout);
            }
        }
        self.store_due(sink);
        let idle_ns = self.cfg.idle_flush_ns;
        while let Some((due, id, slot)) = self.idle.peek() {
            if due >= now {
                break;
            }
            self.idle.pop();
            let Some(f) = self.live(slot, id) else {
                continue;
            };
            // A first row waits its turn in `unstored`.
            if (f.enc.is_empty() && !f.dirty) || !f.stored {
                continue;
            }
            let due = f.rec.last_ts_ns.saturating_add(idle_ns);
            if due < now {
                // Its row too: written now, in parallel with the reading,
                // rather than all at the run's end.
                f.hand_over(sink, true);
            } else {
                self.idle.push((due, id, slot), idle_ns);
            }
        }
        if now.saturating_sub(self.last_tick) >= SECOND {
            self.last_tick = now;
            let hold = self.cfg.frag_hold_ns;
            if !self.held.is_empty() {
                let late: Vec<FragKey> = self
                    .held
                    .iter()
                    .filter(|(_, v)| {
                        v.first()
                            .is_some_and(|h| now.saturating_sub(h.ts_ns) > hold)
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for k in late {
                    self.release_held(k, sink);
                }
            }
            let keep = self.cfg.other_timeout_ns;
            self.frags
                .retain(|_, (_, ts)| now.saturating_sub(*ts) <= keep);
        }
        self.next_due = self.next_due_after_expire();
    }

    /// The earliest capture time at which `expire` could find work: a flow
    /// timing out or going idle, the oldest flow without a row becoming due
    /// for one, or the once-a-second fragment tick. Work is due when the
    /// clock is past it.
    fn next_due_after_expire(&self) -> i64 {
        let heap = |h: &Deadlines| h.peek().map_or(i64::MAX, |d| d.0);
        let first_row = self.unstored.front().map_or(i64::MAX, |&(id, slot)| {
            self.slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .filter(|f| f.rec.id == id && !f.stored)
                .map_or(i64::MIN, |f| {
                    f.rec
                        .last_ts_ns
                        .saturating_add(self.cfg.idle_flush_ns)
                        .min(f.rec.first_ts_ns.saturating_add(self.cfg.first_row_ns))
                })
        });
        heap(&self.expiry)
            .min(heap(&self.idle))
            .min(first_row)
            .min(self.last_tick.saturating_add(SECOND - 1))
    }

    /// Fragments whose first fragment never came form a flow without ports.
    fn release_held(&mut self, k: FragKey, sink: &mut impl FlowSink) {
        for h in self.held.remove(&k).unwrap_or_default() {
            let p = h.packet();
            self.add(p.s.keyed, &p, sink);
        }
    }

    /// Hands every change since the last checkpoint to the sink: pending
    /// positions, the rows of flows that changed, and the state of every
    /// flow that may continue. Held fragments are released and fragment
    /// tracking restarts, so that what follows a checkpoint does not depend
    /// on unsaved state.
    pub fn checkpoint(&mut self, sink: &mut impl FlowSink) {
        let mut keys: Vec<FragKey> = self.held.keys().copied().collect();
        keys.sort_by_key(|k| {
            self.held
                .get(k)
                .and_then(|v| v.first())
                .map(|h| (h.ts_ns, h.offset))
        });
        // Fragments waiting for their first must be in a flow before the
        // commit (their records count as read); datagrams whose first
        // fragment was seen stay known, so that their later fragments,
        // after the commit, still join them (a `--watch` commits each second).
        for k in keys {
            self.release_held(k, sink);
        }
        self.store_through(u64::MAX, sink);
        // In id order, so the sink sees a deterministic sequence.
        let mut all: Vec<&mut Active> = self.slots.iter_mut().flatten().collect();
        all.sort_by_key(|f| f.rec.id);
        for f in all.iter_mut().filter(|f| f.dirty) {
            f.hand_over(sink, true);
        }
        debug_assert!(self.unstored.is_empty());
        sink.open_flows(state::encode_all(
            all.iter().map(|f| (&f.rec, &f.tcp, &f.holes, &f.files[..])),
        ));
    }

    /// Ends a run: finishes flows that timed out, then checkpoints the rest,
    /// which stay open for a later run.
    pub fn finish(&mut self, sink: &mut impl FlowSink) {
        self.expire(sink);
        self.checkpoint(sink);
    }
}

/// How long `key`'s flow may stay idle before it ends.
fn flow_timeout(cfg: &Config, key: &FlowKey, tcp: &TcpState) -> i64 {
    match (key.is_l2(), key.proto) {
        (false, 6) if tcp.closed() => cfg.tcp_closed_timeout_ns,
        (false, 6) => cfg.tcp_timeout_ns,
        (false, 17) => cfg.udp_timeout_ns,
        _ => cfg.other_timeout_ns,
    }
}

fn update(
    f: &mut Active,
    p: &PacketIn,
    forward: bool,
    tcp: Option<&Tcp>,
    chunk_bytes: usize,
    sink: &mut impl FlowSink,
) {
    let dir = usize::from(!forward);
    let r = &mut f.rec;
    r.packets[dir] += 1;
    r.bytes[dir] += u64::from(p.orig_len);
    r.first_ts_ns = r.first_ts_ns.min(p.ts_ns);
    r.last_ts_ns = r.last_ts_ns.max(p.ts_ns);
    if let Some(t) = tcp {
        r.tcp_flags[dir] |= t.flags;
        f.tcp.update(t, dir);
    }
    if let Some(pl) = r.payload.as_mut() {
        let cut = p.orig_len.saturating_sub(p.caplen);
        let len = p.s.payload_len;
        if r.key.proto != 6 {
            payload::datagram(pl, dir, len, cut);
        } else if let (Some(t), Frag::Whole, Some(base)) = (tcp, p.s.frag, f.tcp.base[dir]) {
            let syn = t.flags & tcp_flags::SYN != 0;
            payload::tcp_segment(pl, &mut f.holes, dir, base, t.seq, syn, len, cut);
        }
        // TCP in IP fragments: its sequence numbers and lengths are in
        // different packets; not counted (the gap shows as missed).
    }
    if r.src_mac.is_none()
        && r.dst_mac.is_none()
        && (p.s.src_mac.is_some() || p.s.dst_mac.is_some())
    {
        (r.src_mac, r.dst_mac) = if forward {
            (p.s.src_mac, p.s.dst_mac)
        } else {
            (p.s.dst_mac, p.s.src_mac)
        };
    }
    if f.last_file != p.file_id {
        // From the end: a flow returns to a recent file (overlapping
        // captures) far more often than to an old one.
        if !f.files.iter().rev().any(|&id| id == p.file_id) {
            f.files.push(p.file_id);
            r.files = f.files.len() as u32;
        }
        f.last_file = p.file_id;
    }
    f.enc.push(&Position {
        file_id: p.file_id,
        offset: p.offset,
        ts_ns: p.record_ts_ns,
        caplen: p.caplen,
        orig_len: p.orig_len,
        reverse: !forward,
        iface: p.iface,
    });
    f.dirty = true;
    if f.enc.len() >= chunk_bytes {
        if f.stored {
            f.hand_over(sink, false);
        } else {
            // The row waits its turn (see `Tracker::unstored`); the chunk does not.
            sink.chunk(r.id, f.enc.take());
            f.first_out = true;
        }
    }
}

#[cfg(test)]
mod tests;
