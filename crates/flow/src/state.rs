//! The open-flow state blob: everything needed to continue a flow in a
//! later run. Fixed little-endian layout behind a version byte.
use thiserror::Error;

use crate::key::{FlowKey, KeyKind};
use crate::tracker::{FlowRecord, TcpState};

const VERSION: u8 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StateError {
    #[error("open-flow state is truncated")]
    Truncated,
    #[error("open-flow state has unknown version {0}")]
    Version(u8),
    #[error("open-flow state has an invalid field")]
    Invalid,
}

struct W(Vec<u8>);
impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

struct R<'a>(&'a [u8]);
impl R<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(StateError::Truncated)?;
        self.0 = rest;
        head.try_into().map_err(|_| StateError::Truncated)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

pub(crate) fn encode(rec: &FlowRecord, tcp: &TcpState, files: &[u32]) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(160 + 4 * files.len()));
    w.u8(VERSION);
    w.u64(rec.id);
    let k = &rec.key;
    w.u8(match k.kind {
        KeyKind::L2 => 0,
        KeyKind::Ip4 => 4,
        KeyKind::Ip6 => 6,
    });
    w.u8(k.proto);
    w.u8(u8::from(k.has_ports));
    w.u8(k.vlan_count);
    for v in k.vlans {
        w.u16(v);
    }
    w.u16(k.ethertype);
    w.bytes(&k.a);
    w.bytes(&k.b);
    w.u16(k.a_port);
    w.u16(k.b_port);
    w.u8(u8::from(rec.src_is_a));
    w.u64(rec.first_ts_ns as u64);
    w.u64(rec.last_ts_ns as u64);
    for i in 0..2 {
        w.u64(rec.packets[i]);
        w.u64(rec.bytes[i]);
        w.u8(rec.tcp_flags[i]);
    }
    for m in [rec.src_mac, rec.dst_mac] {
        w.u8(u8::from(m.is_some()));
        w.bytes(&m.unwrap_or_default());
    }
    for b in tcp.base {
        w.u8(u8::from(b.is_some()));
        w.u32(b.unwrap_or(0));
    }
    w.u8(u8::from(tcp.fin[0]) | u8::from(tcp.fin[1]) << 1 | u8::from(tcp.rst) << 2);
    w.u32(files.len() as u32);
    for f in files {
        w.u32(*f);
    }
    w.0
}

pub(crate) fn decode(b: &[u8]) -> Result<(FlowRecord, TcpState, Vec<u32>), StateError> {
    let mut r = R(b);
    let v = r.u8()?;
    if v != VERSION {
        return Err(StateError::Version(v));
    }
    let id = r.u64()?;
    let kind = match r.u8()? {
        0 => KeyKind::L2,
        4 => KeyKind::Ip4,
        6 => KeyKind::Ip6,
        _ => return Err(StateError::Invalid),
    };
    let proto = r.u8()?;
    let has_ports = r.u8()? != 0;
    let vlan_count = r.u8()?;
    if vlan_count > 3 {
        return Err(StateError::Invalid);
    }
    let vlans = [r.u16()?, r.u16()?, r.u16()?];
    let ethertype = r.u16()?;
    let a = r.take::<16>()?;
    let b2 = r.take::<16>()?;
    let a_port = r.u16()?;
    let b_port = r.u16()?;
    let key = FlowKey {
        kind,
        proto,
        has_ports,
        vlan_count,
        vlans,
        ethertype,
        a,
        b: b2,
        a_port,
        b_port,
    };
    let src_is_a = r.u8()? != 0;
    let first_ts_ns = r.u64()? as i64;
    let last_ts_ns = r.u64()? as i64;
    let mut packets = [0; 2];
    let mut bytes = [0; 2];
    let mut tcp_flags = [0; 2];
    for i in 0..2 {
        packets[i] = r.u64()?;
        bytes[i] = r.u64()?;
        tcp_flags[i] = r.u8()?;
    }
    let mut macs = [None; 2];
    for m in &mut macs {
        let present = r.u8()? != 0;
        let v = r.take::<6>()?;
        *m = present.then_some(v);
    }
    let mut tcp = TcpState::default();
    for base in &mut tcp.base {
        let present = r.u8()? != 0;
        let v = r.u32()?;
        *base = present.then_some(v);
    }
    let bits = r.u8()?;
    tcp.fin = [bits & 1 != 0, bits & 2 != 0];
    tcp.rst = bits & 4 != 0;
    let n = r.u32()? as usize;
    if n > r.0.len() / 4 {
        return Err(StateError::Truncated);
    }
    let files = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let rec = FlowRecord {
        id,
        key,
        src_is_a,
        first_ts_ns,
        last_ts_ns,
        packets,
        bytes,
        tcp_flags,
        src_mac: macs[0],
        dst_mac: macs[1],
        files: files.len() as u32,
    };
    Ok((rec, tcp, files))
}
