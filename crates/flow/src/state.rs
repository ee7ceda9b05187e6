//! The open-flow state: what a later run needs to continue a flow and cannot
//! read back from the flow's row — TCP sequence bases and close state, the
//! holes in its sequence space not yet filled, a third VLAN tag, the first
//! ICMP type and code, and the files the flow is in. Varint-encoded behind a
//! version byte: a few bytes per flow. At each checkpoint the states of all
//! open flows are saved together ([`encode_all`]), sorted by flow id.
use thiserror::Error;

use crate::key::{FlowKey, KeyKind};
use crate::orient::Turned;
use crate::payload::Holes;
use crate::record::{FlowRecord, Payload};
use crate::tcp::TcpState;

/// Version 3 added the holes in a flow's TCP sequence space; version 2
/// states (no holes) are still read.
const VERSION: u8 = 3;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StateError {
    #[error("open-flow state is truncated")]
    Truncated,
    #[error("open-flow state has unknown version {0}")]
    Version(u8),
    #[error("open-flow state has an invalid field")]
    Invalid,
}

/// A flow as saved in the index: its row's fields plus its state blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFlow {
    pub id: u64,
    pub kind: KeyKind,
    /// IP protocol (0 for layer-2 flows).
    pub proto: u8,
    /// Addresses of `src` and `dst` (IPv4 in the first 4 bytes); for a
    /// layer-2 flow, its MAC addresses (zeros when absent).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ports: Option<(u16, u16)>,
    /// EtherType of a layer-2 flow (ignored for IP flows).
    pub ethertype: u16,
    pub vlan: Option<u16>,
    pub vlan_inner: Option<u16>,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub tcp_flags: [u8; 2],
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// The row's payload columns (None when an older pcapidx wrote it).
    pub payload: Option<Payload>,
    /// Why `src` did not send the first packet (the row's `turned`).
    pub turned: Option<Turned>,
    pub state: Vec<u8>,
}

impl SavedFlow {
    /// What the index keeps of a flow: its record's fields and its state.
    pub fn from_record(rec: &FlowRecord, state: Vec<u8>) -> SavedFlow {
        let k = &rec.key;
        let ((src, sp), (dst, dp)) = (rec.src(), rec.dst());
        SavedFlow {
            id: rec.id,
            kind: k.kind,
            proto: k.proto,
            src: *src,
            dst: *dst,
            ports: k.has_ports.then_some((sp, dp)),
            ethertype: k.ethertype,
            vlan: k.vlans().first().copied(),
            vlan_inner: k.vlans().get(1).copied(),
            first_ts_ns: rec.first_ts_ns,
            last_ts_ns: rec.last_ts_ns,
            packets: rec.packets,
            bytes: rec.bytes,
            tcp_flags: rec.tcp_flags,
            src_mac: rec.src_mac,
            dst_mac: rec.dst_mac,
            payload: rec.payload,
            turned: rec.turned,
            state,
        }
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn u8(&mut self) -> Result<u8, StateError> {
        let (b, rest) = self.0.split_first().ok_or(StateError::Truncated)?;
        self.0 = rest;
        Ok(*b)
    }
    fn var(&mut self) -> Result<u64, StateError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StateError::Invalid)
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        u32::try_from(self.var()?).map_err(|_| StateError::Invalid)
    }
}

const BASE0: u8 = 1;
const BASE1: u8 = 2;
const FIN0: u8 = 4;
const FIN1: u8 = 8;
const RST: u8 = 16;
const VLAN3: u8 = 32;
const ICMP: u8 = 64;
const HOLES: u8 = 128;

const ALL_VERSION: u8 = 1;

/// The states of all open flows, given in id order:
/// `[version, count, (id delta, length, state)...]`.
pub(crate) fn encode_all<'a>(
    flows: impl ExactSizeIterator<Item = (&'a FlowRecord, &'a TcpState, &'a Holes, &'a [u32])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 12 * flows.len());
    out.push(ALL_VERSION);
    put(&mut out, flows.len() as u64);
    let mut prev = 0;
    for (r, t, h, f) in flows {
        debug_assert!(r.id >= prev, "flows must come in id order");
        put(&mut out, r.id - prev);
        // Encoded in place behind a one-byte length (states are short),
        // moved along in the rare case the length needs more.
        let at = out.len();
        out.push(0);
        encode_into(&mut out, r, t, h, f);
        let len = out.len() - at - 1;
        if len < 0x80 {
            out[at] = len as u8;
        } else {
            let state = out.split_off(at + 1);
            out.truncate(at);
            put(&mut out, len as u64);
            out.extend_from_slice(&state);
        }
        prev = r.id;
    }
    out
}

/// Splits what [`encode_all`] saved into (flow id, state) pairs.
pub fn decode_all(blob: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, StateError> {
    let mut r = R(blob);
    let v = r.u8()?;
    if v != ALL_VERSION {
        return Err(StateError::Version(v));
    }
    let n = r.var()? as usize;
    if n > blob.len() {
        return Err(StateError::Truncated);
    }
    let mut out = Vec::with_capacity(n);
    let mut id = 0u64;
    for _ in 0..n {
        id = id.checked_add(r.var()?).ok_or(StateError::Invalid)?;
        let len = r.var()? as usize;
        let (state, rest) = r.0.split_at_checked(len).ok_or(StateError::Truncated)?;
        out.push((id, state.to_vec()));
        r.0 = rest;
    }
    Ok(out)
}

/// The open flows of an [`encode_all`] blob after files were removed from
/// the index: flows in `drop` are no longer open, and the file ids in
/// `gone` leave the others' file lists (the rest of each state is kept as
/// it is).
pub fn without(
    blob: &[u8],
    drop: &dyn Fn(u64) -> bool,
    gone: &dyn Fn(u32) -> bool,
) -> Result<Vec<u8>, StateError> {
    let kept: Vec<(u64, Vec<u8>)> = decode_all(blob)?
        .into_iter()
        .filter(|(id, _)| !drop(*id))
        .map(|(id, st)| Ok((id, files_without(&st, gone)?)))
        .collect::<Result<_, StateError>>()?;
    let mut out = vec![ALL_VERSION];
    put(&mut out, kept.len() as u64);
    let mut prev = 0;
    for (id, st) in kept {
        put(&mut out, id - prev);
        put(&mut out, st.len() as u64);
        out.extend_from_slice(&st);
        prev = id;
    }
    Ok(out)
}

/// One flow's state with the files in `gone` taken out of its file list.
fn files_without(state: &[u8], gone: &dyn Fn(u32) -> bool) -> Result<Vec<u8>, StateError> {
    let mut r = R(state);
    let v = r.u8()?;
    if v != VERSION && v != 2 {
        return Err(StateError::Version(v));
    }
    let bits = r.u8()?;
    for bit in [BASE0, BASE1] {
        if bits & bit != 0 {
            r.u32()?;
        }
    }
    if bits & VLAN3 != 0 {
        r.var()?;
    }
    if bits & ICMP != 0 {
        r.u8()?;
        r.u8()?;
    }
    let head = state.len() - r.0.len();
    let n = r.var()? as usize;
    if n > r.0.len() {
        return Err(StateError::Truncated);
    }
    let files = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let mut out = state[..head].to_vec();
    let kept: Vec<u32> = files.into_iter().filter(|f| !gone(*f)).collect();
    put(&mut out, kept.len() as u64);
    for f in kept {
        put(&mut out, u64::from(f));
    }
    out.extend_from_slice(r.0);
    Ok(out)
}

#[cfg(test)]
pub(crate) fn encode(rec: &FlowRecord, tcp: &TcpState, holes: &Holes, files: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, rec, tcp, holes, files);
    out
}

fn encode_into(out: &mut Vec<u8>, rec: &FlowRecord, tcp: &TcpState, holes: &Holes, files: &[u32]) {
    out.push(VERSION);
    let mut bits = 0;
    for (b, bit) in tcp.base.iter().zip([BASE0, BASE1]) {
        if b.is_some() {
            bits |= bit;
        }
    }
    for (f, bit) in tcp.fin.iter().zip([FIN0, FIN1]) {
        if *f {
            bits |= bit;
        }
    }
    if tcp.rst {
        bits |= RST;
    }
    if rec.key.vlan_count > 2 {
        bits |= VLAN3;
    }
    if rec.icmp.is_some() {
        bits |= ICMP;
    }
    let holes = holes.as_ref().filter(|h| h.iter().any(|l| !l.is_empty()));
    if holes.is_some() {
        bits |= HOLES;
    }
    out.push(bits);
    for b in tcp.base.iter().flatten() {
        put(out, u64::from(*b));
    }
    if rec.key.vlan_count > 2 {
        put(out, u64::from(rec.key.vlans[2]));
    }
    if let Some((t, c)) = rec.icmp {
        out.extend_from_slice(&[t, c]);
    }
    put(out, files.len() as u64);
    for f in files {
        put(out, u64::from(*f));
    }
    if bits & HOLES != 0
        && let Some(h) = holes
    {
        for list in h.iter() {
            put(out, list.len() as u64);
            for &(s, e) in list {
                put(out, s);
                put(out, e - s);
            }
        }
    }
}

/// Rebuilds a flow from its saved row and state.
pub(crate) fn decode(s: &SavedFlow) -> Result<(FlowRecord, TcpState, Holes, Vec<u32>), StateError> {
    let mut r = R(&s.state);
    let v = r.u8()?;
    if v != VERSION && v != 2 {
        return Err(StateError::Version(v));
    }
    let bits = r.u8()?;
    let mut tcp = TcpState::default();
    for (b, bit) in tcp.base.iter_mut().zip([BASE0, BASE1]) {
        if bits & bit != 0 {
            *b = Some(r.u32()?);
        }
    }
    tcp.fin = [bits & FIN0 != 0, bits & FIN1 != 0];
    tcp.rst = bits & RST != 0;
    let mut vlans = [0u16; 3];
    let mut vlan_count = 0u8;
    for v in [s.vlan, s.vlan_inner].into_iter().flatten() {
        vlans[usize::from(vlan_count)] = v;
        vlan_count += 1;
    }
    if bits & VLAN3 != 0 {
        if vlan_count != 2 {
            return Err(StateError::Invalid);
        }
        vlans[2] = u16::try_from(r.var()?).map_err(|_| StateError::Invalid)?;
        vlan_count = 3;
    }
    let icmp = if bits & ICMP != 0 {
        Some((r.u8()?, r.u8()?))
    } else {
        None
    };
    let n = r.var()? as usize;
    if n > r.0.len() {
        return Err(StateError::Truncated);
    }
    let files = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let mut holes: Holes = None;
    if bits & HOLES != 0 {
        let mut h: [std::collections::VecDeque<(u64, u64)>; 2] = Default::default();
        for list in h.iter_mut() {
            let n = r.var()? as usize;
            if n > r.0.len() {
                return Err(StateError::Truncated);
            }
            for _ in 0..n {
                let start = r.var()?;
                let end = start.checked_add(r.var()?).ok_or(StateError::Invalid)?;
                list.push_back((start, end));
            }
        }
        holes = Some(Box::new(h));
    }
    let (sp, dp) = s.ports.unwrap_or((0, 0));
    let (a_src, b_src) = (u128::from_be_bytes(s.src), u128::from_be_bytes(s.dst));
    let src_is_a = a_src < b_src || (a_src == b_src && sp <= dp);
    let (a, b, a_port, b_port) = if src_is_a {
        (s.src, s.dst, sp, dp)
    } else {
        (s.dst, s.src, dp, sp)
    };
    let key = FlowKey {
        kind: s.kind,
        proto: if s.kind == KeyKind::L2 { 0 } else { s.proto },
        has_ports: s.ports.is_some(),
        vlan_count,
        vlans,
        ethertype: if s.kind == KeyKind::L2 {
            s.ethertype
        } else {
            0
        },
        a,
        b,
        a_port,
        b_port,
    };
    let rec = FlowRecord {
        id: s.id,
        key,
        src_is_a,
        first_ts_ns: s.first_ts_ns,
        last_ts_ns: s.last_ts_ns,
        packets: s.packets,
        bytes: s.bytes,
        tcp_flags: s.tcp_flags,
        src_mac: s.src_mac,
        dst_mac: s.dst_mac,
        files: files.len() as u32,
        icmp,
        payload: s.payload,
        turned: s.turned,
    };
    Ok((rec, tcp, holes, files))
}
