//! A flow's record: what its row in the index holds (totals per direction,
//! MACs, files, payload bytes, orientation), and what the last row said.
use crate::key::FlowKey;
use crate::orient::Turned;

/// A flow's totals. Index 0 of the pairs is the forward direction
/// (sent by `src`), 1 the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub id: u64,
    pub key: FlowKey,
    /// Whether `src` is the key's side `a`.
    pub src_is_a: bool,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub tcp_flags: [u8; 2],
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Number of distinct files the flow's packets are in.
    pub files: u32,
    /// ICMP type and code of the flow's first packet (ICMP flows only).
    pub icmp: Option<(u8, u8)>,
    /// Payload bytes sent and missing, per direction; None for a flow
    /// continued from an index made before pcapidx counted them.
    pub payload: Option<Payload>,
    /// Why `src` did not send the flow's first packet (None: it did).
    pub turned: Option<Turned>,
}

/// What a flow's last row said of its counts and MACs: what the store takes
/// out of its running totals before adding the new row's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
}

impl RowCounts {
    pub fn of(rec: &FlowRecord) -> Self {
        RowCounts {
            packets: rec.packets,
            bytes: rec.bytes,
            src_mac: rec.src_mac,
            dst_mac: rec.dst_mac,
        }
    }
}

/// A flow's payload bytes per direction (see [`crate::payload`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payload {
    /// TCP: the sequence space sent; other protocols: payload bytes.
    pub sent: [u64; 2],
    /// Of those, bytes not in the capture (lost, or cut by the snaplen).
    pub missed: [u64; 2],
}

impl FlowRecord {
    /// Source address bytes and port (the originator).
    pub fn src(&self) -> (&[u8; 16], u16) {
        if self.src_is_a {
            (&self.key.a, self.key.a_port)
        } else {
            (&self.key.b, self.key.b_port)
        }
    }

    pub fn dst(&self) -> (&[u8; 16], u16) {
        if self.src_is_a {
            (&self.key.b, self.key.b_port)
        } else {
            (&self.key.a, self.key.a_port)
        }
    }
}
