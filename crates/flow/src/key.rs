//! Flow keys: the direction-free identity of a flow.
use std::hash::{Hash, Hasher};

use pcapidx_decode::{Decoded, Frag, Layer, Tcp};
use rustc_hash::FxHasher;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    L2,
    Ip4,
    Ip6,
}

/// Endpoints are stored in canonical order (`a <= b`), so both directions
/// of a conversation map to the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub kind: KeyKind,
    /// IP protocol number (0 for layer-2 flows).
    pub proto: u8,
    pub has_ports: bool,
    pub vlan_count: u8,
    pub vlans: [u16; 3],
    /// EtherType of a layer-2 flow (0 for IP flows).
    pub ethertype: u16,
    /// IP addresses (IPv4 in the first 4 bytes) or MAC addresses (first 6).
    pub a: [u8; 16],
    pub b: [u8; 16],
    pub a_port: u16,
    pub b_port: u16,
}

impl FlowKey {
    /// The key of a decoded packet and whether the packet was sent by side `a`.
    /// `None` for packets with nothing to key on.
    #[inline]
    pub fn of(d: &Decoded) -> Option<(FlowKey, bool)> {
        let (kind, proto, ethertype, src, dst, ports) = match d.layer {
            Layer::None => return None,
            Layer::L2 => {
                let mut s = [0; 16];
                let mut t = [0; 16];
                s[..6].copy_from_slice(&d.src_mac.unwrap_or_default());
                t[..6].copy_from_slice(&d.dst_mac.unwrap_or_default());
                (KeyKind::L2, 0, d.ethertype, s, t, None)
            }
            Layer::Ip => {
                let kind = if d.ip.version == 6 {
                    KeyKind::Ip6
                } else {
                    KeyKind::Ip4
                };
                (kind, d.ip.proto, 0, d.ip.src, d.ip.dst, d.ip.ports)
            }
        };
        let (sp, dp) = ports.unwrap_or((0, 0));
        // Compared as integers: one comparison instead of a byte-wise tuple compare.
        let (s, t) = (u128::from_be_bytes(src), u128::from_be_bytes(dst));
        let from_a = s < t || (s == t && sp <= dp);
        let vlan_count = d.vlan_count.min(3);
        let mut vlans = [0u16; 3];
        vlans[..usize::from(vlan_count)].copy_from_slice(&d.vlans[..usize::from(vlan_count)]);
        let (a, b, a_port, b_port) = if from_a {
            (src, dst, sp, dp)
        } else {
            (dst, src, dp, sp)
        };
        Some((
            FlowKey {
                kind,
                proto,
                has_ports: ports.is_some(),
                vlan_count,
                vlans,
                ethertype,
                a,
                b,
                a_port,
                b_port,
            },
            from_a,
        ))
    }

    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count.min(3))]
    }

    pub fn is_l2(&self) -> bool {
        self.kind == KeyKind::L2
    }
}

/// A packet's flow key, its direction, and the key's hash: worked out
/// together (by the decoding threads) so that the flow tracker, the
/// pipeline's one serial stage, only looks the flow up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed {
    pub key: FlowKey,
    /// Sent by side `a`.
    pub from_a: bool,
    hash: u64,
}

impl Keyed {
    /// `None` for packets with nothing to key on.
    #[inline]
    pub fn of(d: &Decoded) -> Option<Keyed> {
        let (key, from_a) = FlowKey::of(d)?;
        Some(Keyed {
            hash: key.hash64(),
            key,
            from_a,
        })
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// What the flow tracker needs of a decoded packet: its key and the few
/// header fields flows keep. The decoding stage makes it and hands it to
/// the tracker's thread, so it holds only those: with the whole `Decoded`
/// beside the key, 224 bytes a packet crossed between cores; now 160.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub keyed: Keyed,
    /// TCP header fields (TCP over IP only).
    pub tcp: Option<Tcp>,
    pub frag: Frag,
    /// ICMP type and code (IP flows only).
    pub icmp: Option<(u8, u8)>,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Transport payload bytes on the wire (after the TCP or UDP header;
    /// the whole IP payload for other protocols and later fragments).
    pub payload_len: u32,
}

fn payload_len(d: &Decoded) -> u32 {
    let wire = d.ip.payload_wire_len;
    let header = match (d.ip.frag, d.ip.proto, d.ip.tcp) {
        (Frag::Later { .. }, _, _) => 0,
        (_, 6, Some(t)) => u32::from(t.header_len),
        (_, 6, None) => wire,
        (_, 17, _) => 8,
        _ => 0,
    };
    wire.saturating_sub(header)
}

impl Summary {
    /// `None` for packets with nothing to key a flow on.
    #[inline]
    pub fn of(d: &Decoded) -> Option<Summary> {
        let keyed = Keyed::of(d)?;
        let ip = d.layer == Layer::Ip;
        Some(Summary {
            tcp: d.ip.tcp.filter(|_| ip && d.ip.proto == 6),
            frag: if ip { d.ip.frag } else { Frag::Whole },
            icmp: d.ip.icmp.filter(|_| ip),
            src_mac: d.src_mac,
            dst_mac: d.dst_mac,
            payload_len: if ip { payload_len(d) } else { 0 },
            keyed,
        })
    }

    /// The packet's source and destination addresses, as in the key.
    pub fn addresses(&self) -> (&[u8; 16], &[u8; 16]) {
        let k = &self.keyed.key;
        if self.keyed.from_a {
            (&k.a, &k.b)
        } else {
            (&k.b, &k.a)
        }
    }
}

impl FlowKey {
    /// The hash the flow table files this key under.
    #[inline]
    pub fn hash64(&self) -> u64 {
        // Whole words, not the derived byte-wise hash.
        let [v0, v1, v2] = self.vlans.map(u64::from);
        let head = u64::from(self.kind as u8)
            | u64::from(self.proto) << 8
            | u64::from(self.has_ports) << 16
            | u64::from(self.vlan_count) << 24
            | u64::from(self.ethertype) << 32
            | u64::from(self.a_port) << 48;
        let vl = v0 | v1 << 16 | v2 << 32 | u64::from(self.b_port) << 48;
        let (a, b) = (u128::from_ne_bytes(self.a), u128::from_ne_bytes(self.b));
        let mut h = FxHasher::default();
        for w in [
            head,
            vl,
            a as u64,
            (a >> 64) as u64,
            b as u64,
            (b >> 64) as u64,
        ] {
            h.write_u64(w);
        }
        h.finish()
    }
}
