//! Flow keys: the direction-free identity of a flow.
use pcapidx_decode::{Decoded, Layer};

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
    pub fn of(d: &Decoded) -> Option<(FlowKey, bool)> {
        let mut k = FlowKey {
            kind: KeyKind::L2,
            proto: 0,
            has_ports: false,
            vlan_count: d.vlan_count.min(3),
            vlans: d.vlans,
            ethertype: 0,
            a: [0; 16],
            b: [0; 16],
            a_port: 0,
            b_port: 0,
        };
        for v in &mut k.vlans[usize::from(k.vlan_count)..] {
            *v = 0;
        }
        let (src, dst, sp, dp) = match d.layer {
            Layer::None => return None,
            Layer::L2 => {
                k.ethertype = d.ethertype;
                let mut s = [0; 16];
                let mut t = [0; 16];
                s[..6].copy_from_slice(&d.src_mac.unwrap_or_default());
                t[..6].copy_from_slice(&d.dst_mac.unwrap_or_default());
                (s, t, 0, 0)
            }
            Layer::Ip => {
                k.kind = if d.ip.version == 6 {
                    KeyKind::Ip6
                } else {
                    KeyKind::Ip4
                };
                k.proto = d.ip.proto;
                let (sp, dp) = match d.ip.ports {
                    Some(p) => {
                        k.has_ports = true;
                        p
                    }
                    None => (0, 0),
                };
                (d.ip.src, d.ip.dst, sp, dp)
            }
        };
        let from_a = (src, sp) <= (dst, dp);
        if from_a {
            (k.a, k.a_port, k.b, k.b_port) = (src, sp, dst, dp);
        } else {
            (k.a, k.a_port, k.b, k.b_port) = (dst, dp, src, sp);
        }
        Some((k, from_a))
    }

    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count.min(3))]
    }

    pub fn is_l2(&self) -> bool {
        self.kind == KeyKind::L2
    }
}
