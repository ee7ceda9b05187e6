//! Link layers, down to an EtherType and its payload.
use crate::ip::decode_ip;
use crate::{Decoded, Layer, Span};

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn set_macs(out: &mut Decoded, src: Option<[u8; 6]>, dst: Option<[u8; 6]>) {
    out.src_mac = src;
    out.dst_mac = dst;
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// Decodes a packet of the given link type into `out` (fully overwritten).
pub fn decode(link_type: u16, data: &[u8], out: &mut Decoded) {
    *out = Decoded::default();
    link(link_type, data, out);
    // The IP layer recorded where its payload starts as the low 32 bits of
    // its address (it is handed sub-slices, not the frame); the difference
    // with the frame's, modulo 2^32, is the offset, as frames are < 4 GiB.
    if out.layer == Layer::Ip {
        out.ip.payload.at = out
            .ip
            .payload
            .at
            .wrapping_sub(data.as_ptr() as usize as u32);
    } else {
        out.ip.payload = Span::default();
    }
}

fn link(link_type: u16, data: &[u8], out: &mut Decoded) {
    match link_type {
        1 => ethernet(data, out),
        0 => null(data, out, false),
        108 => null(data, out, true),
        12 | 14 | 101 => raw_ip(data, out),
        228 => ip_or_l2(ETH_IPV4, data, out),
        229 => ip_or_l2(ETH_IPV6, data, out),
        113 => sll(data, out),
        276 => sll2(data, out),
        9 => ppp(data, out),
        104 => chdlc(data, out),
        105 => wifi(data, out),
        127 => radiotap(data, out),
        239 => nflog(data, out),
        _ => out.problem = Some("unsupported link type"),
    }
}

fn ethernet(d: &[u8], out: &mut Decoded) {
    let (Some(dst), Some(src), Some(et)) = (mac(d, 0), mac(d, 6), be16(d, 12)) else {
        out.problem = Some("truncated Ethernet header");
        return;
    };
    set_macs(out, Some(src), Some(dst));
    ethertype(et, &d[14..], out);
}

/// Follows an EtherType through tags and encapsulations to the network layer.
fn ethertype(mut et: u16, mut p: &[u8], out: &mut Decoded) {
    // Bounded: each step consumes bytes, but a crafted frame could nest deeply.
    for _ in 0..16 {
        match et {
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                let (Some(tci), Some(next)) = (be16(p, 0), be16(p, 2)) else {
                    return l2(et, out, "truncated VLAN tag");
                };
                if usize::from(out.vlan_count) < out.vlans.len() {
                    out.vlans[usize::from(out.vlan_count)] = tci & 0x0fff;
                    out.vlan_count += 1;
                }
                et = next;
                p = &p[4..];
            }
            0x8847 | 0x8848 => {
                // MPLS: skip the label stack to its bottom, then guess the payload.
                let mut i = 0;
                loop {
                    // A label entry is 4 bytes; bottom-of-stack is bit 0 of its third.
                    let Some(entry) = p.get(i..i + 4) else {
                        return l2(et, out, "truncated MPLS label stack");
                    };
                    i += 4;
                    if entry[2] & 1 == 1 {
                        break;
                    }
                }
                p = p.get(i..).unwrap_or_default();
                match p.first().map(|b| b >> 4) {
                    Some(4) => return ip_or_l2(ETH_IPV4, p, out),
                    Some(6) => return ip_or_l2(ETH_IPV6, p, out),
                    // Pseudowire control word, then an Ethernet frame.
                    Some(0) if p.len() >= 18 => {
                        let inner = &p[4..];
                        if let (Some(dst), Some(src), Some(t)) =
                            (mac(inner, 0), mac(inner, 6), be16(inner, 12))
                        {
                            set_macs(out, Some(src), Some(dst));
                            et = t;
                            p = &inner[14..];
                        }
                    }
                    _ => return l2(et, out, "unknown MPLS payload"),
                }
            }
            0x8864 => {
                // PPPoE session: 6-byte header, then a PPP protocol number.
                let Some(proto) = be16(p, 6) else {
                    return l2(et, out, "truncated PPPoE header");
                };
                match proto {
                    0x0021 => return ip_or_l2(ETH_IPV4, &p[8..], out),
                    0x0057 => return ip_or_l2(ETH_IPV6, &p[8..], out),
                    _ => return l2(et, out, "PPPoE frame without IP"),
                }
            }
            0x8909 => {
                // Cisco MetaData: version, length, option type, SGT, then an EtherType.
                let Some(next) = be16(p, 6) else {
                    return l2(et, out, "truncated Cisco MetaData header");
                };
                et = next;
                p = &p[8..];
            }
            0x894f => {
                // Network Service Header (RFC 8300): length in 4-byte words, then
                // the next protocol: 1 IPv4, 2 IPv6, 3 Ethernet.
                let (Some(&b1), Some(&next)) = (p.get(1), p.get(3)) else {
                    return l2(et, out, "truncated NSH header");
                };
                let len = usize::from(b1 & 0x3f) * 4;
                let Some(inner) = p.get(len..) else {
                    return l2(et, out, "truncated NSH header");
                };
                match next {
                    1 => return ip_or_l2(ETH_IPV4, inner, out),
                    2 => return ip_or_l2(ETH_IPV6, inner, out),
                    3 => {
                        let (Some(dst), Some(src), Some(t)) =
                            (mac(inner, 0), mac(inner, 6), be16(inner, 12))
                        else {
                            return l2(et, out, "truncated NSH Ethernet frame");
                        };
                        set_macs(out, Some(src), Some(dst));
                        et = t;
                        p = &inner[14..];
                    }
                    _ => return l2(et, out, "NSH with an unknown next protocol"),
                }
            }
            0x8903 => {
                // Cisco FabricPath: FTag/TTL, then the original Ethernet frame.
                let inner = &p[p.len().min(2)..];
                let (Some(dst), Some(src), Some(t)) =
                    (mac(inner, 0), mac(inner, 6), be16(inner, 12))
                else {
                    return l2(et, out, "truncated FabricPath frame");
                };
                set_macs(out, Some(src), Some(dst));
                et = t;
                p = &inner[14..];
            }
            0..=1500 => {
                // An 802.3 length field: LLC, and with SNAP an EtherType after it.
                if p.get(..3) == Some(&[0xaa, 0xaa, 0x03]) {
                    let Some(t) = be16(p, 6) else {
                        return l2(0, out, "truncated SNAP header");
                    };
                    et = t;
                    p = &p[8..];
                } else {
                    return l2(0, out, "");
                }
            }
            ETH_IPV4 | ETH_IPV6 => return ip_or_l2(et, p, out),
            _ => return l2(et, out, ""),
        }
    }
    l2(et, out, "too many nested headers")
}

/// A layer-2 frame: flows are keyed by MACs and EtherType.
fn l2(et: u16, out: &mut Decoded, problem: &'static str) {
    out.layer = Layer::L2;
    out.ethertype = et;
    if !problem.is_empty() {
        out.problem = Some(problem);
    }
}

/// An IP packet behind a link layer; if its header is unusable the frame
/// still forms a layer-2 flow when there are MAC addresses to key it by.
fn ip_or_l2(et: u16, p: &[u8], out: &mut Decoded) {
    out.ethertype = et;
    match decode_ip(p, &mut out.ip) {
        Ok(()) => out.layer = Layer::Ip,
        Err(problem) if out.src_mac.is_some() || out.dst_mac.is_some() => l2(et, out, problem),
        Err(problem) => {
            out.ip = Default::default();
            out.problem = Some(problem);
        }
    }
}

fn raw_ip(d: &[u8], out: &mut Decoded) {
    match d.first().map(|b| b >> 4) {
        Some(4) => ip_or_l2(ETH_IPV4, d, out),
        Some(6) => ip_or_l2(ETH_IPV6, d, out),
        _ => out.problem = Some("raw IP packet with no IP version"),
    }
}

/// BSD loopback: a 4-byte address family, host byte order (NULL) or network (LOOP).
fn null(d: &[u8], out: &mut Decoded, network_order: bool) {
    let Some(b) = d.get(..4) else {
        out.problem = Some("truncated loopback header");
        return;
    };
    let b = [b[0], b[1], b[2], b[3]];
    let mut af = if network_order {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    };
    if af > 0xffff {
        // Written on a host of the other byte order.
        af = af.swap_bytes();
    }
    match af {
        2 => ip_or_l2(ETH_IPV4, &d[4..], out),
        // AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
        10 | 24 | 28 | 30 => ip_or_l2(ETH_IPV6, &d[4..], out),
        _ => l2(0, out, "loopback frame that is not IP"),
    }
}

/// Linux cooked capture v1: 16-byte header ending in the protocol.
fn sll(d: &[u8], out: &mut Decoded) {
    let (Some(hatype), Some(alen), Some(proto)) = (be16(d, 2), be16(d, 4), be16(d, 14)) else {
        out.problem = Some("truncated SLL header");
        return;
    };
    if hatype == 1 && alen == 6 {
        out.src_mac = mac(d, 6);
    }
    sll_payload(proto, &d[16..], out);
}

/// Linux cooked capture v2: 20-byte header starting with the protocol.
fn sll2(d: &[u8], out: &mut Decoded) {
    let (Some(proto), Some(hatype), Some(&alen)) = (be16(d, 0), be16(d, 8), d.get(11)) else {
        out.problem = Some("truncated SLL2 header");
        return;
    };
    if d.len() < 20 {
        out.problem = Some("truncated SLL2 header");
        return;
    }
    if hatype == 1 && alen == 6 {
        out.src_mac = mac(d, 12);
    }
    sll_payload(proto, &d[20..], out);
}

fn sll_payload(proto: u16, p: &[u8], out: &mut Decoded) {
    match proto {
        // 802.3 frames and 802.2 LLC: not IP.
        0x0001 | 0x0004 => l2(0, out, ""),
        _ => ethertype(proto, p, out),
    }
}

/// PPP protocol number to the network layer.
fn ppp_proto(proto: u16, p: &[u8], out: &mut Decoded) {
    match proto {
        0x0021 => ip_or_l2(ETH_IPV4, p, out),
        0x0057 => ip_or_l2(ETH_IPV6, p, out),
        _ => l2(0, out, "PPP frame without IP"),
    }
}

fn ppp(d: &[u8], out: &mut Decoded) {
    // Optional HDLC address/control bytes, then a 1- or 2-byte protocol.
    let d = if d.get(..2) == Some(&[0xff, 0x03]) {
        &d[2..]
    } else {
        d
    };
    match d.first() {
        Some(b) if b & 1 == 1 => ppp_proto(u16::from(*b), &d[1..], out),
        Some(_) => match be16(d, 0) {
            Some(proto) => ppp_proto(proto, &d[2..], out),
            None => out.problem = Some("truncated PPP header"),
        },
        None => out.problem = Some("empty PPP frame"),
    }
}

/// Cisco HDLC: address, control, then an EtherType.
fn chdlc(d: &[u8], out: &mut Decoded) {
    match be16(d, 2) {
        Some(et) => ethertype(et, &d[4..], out),
        None => out.problem = Some("truncated Cisco HDLC header"),
    }
}

fn radiotap(d: &[u8], out: &mut Decoded) {
    match le16(d, 2) {
        Some(len) if usize::from(len) <= d.len() => wifi(&d[usize::from(len)..], out),
        _ => out.problem = Some("truncated radiotap header"),
    }
}

/// IEEE 802.11: data frames carry LLC/SNAP and an EtherType; other frames
/// form layer-2 flows between transmitter and receiver.
fn wifi(d: &[u8], out: &mut Decoded) {
    let Some(fc) = le16(d, 0) else {
        out.problem = Some("truncated 802.11 header");
        return;
    };
    let ftype = (fc >> 2) & 3;
    let subtype = (fc >> 4) & 0xf;
    let to_ds = fc & 0x0100 != 0;
    let from_ds = fc & 0x0200 != 0;
    let protected = fc & 0x4000 != 0;
    let order = fc & 0x8000 != 0;
    let a1 = mac(d, 4);
    let a2 = mac(d, 10);
    if ftype != 2 {
        // Management and control frames; some control frames carry only a receiver address.
        if let Some(rx) = a1 {
            set_macs(out, a2, Some(rx));
            l2(0, out, "");
        } else {
            out.problem = Some("truncated 802.11 header");
        }
        return;
    }
    let a3 = mac(d, 16);
    let four_addr = to_ds && from_ds;
    let a4 = if four_addr { mac(d, 24) } else { None };
    let (Some(a1), Some(a2), Some(a3)) = (a1, a2, a3) else {
        out.problem = Some("truncated 802.11 header");
        return;
    };
    let (sa, da) = match (to_ds, from_ds) {
        (false, false) => (a2, a1),
        (false, true) => (a3, a1),
        (true, false) => (a2, a3),
        (true, true) => (a4.unwrap_or(a2), a3),
    };
    set_macs(out, Some(sa), Some(da));
    let qos = subtype & 0x8 != 0;
    let mut hdr = 24 + if four_addr { 6 } else { 0 } + if qos { 2 } else { 0 };
    if qos && order {
        hdr += 4; // HT control
    }
    if protected || subtype & 0x4 != 0 {
        // Encrypted payload, or a null-data frame without a body.
        return l2(0, out, "");
    }
    match d.get(hdr..) {
        Some(body) if body.get(..3) == Some(&[0xaa, 0xaa, 0x03]) => match be16(body, 6) {
            Some(et) => ethertype(et, &body[8..], out),
            None => l2(0, out, "truncated SNAP header"),
        },
        _ => l2(0, out, ""),
    }
}

/// Linux NFLOG: a 4-byte header, then TLVs in host byte order; TLV 9 holds the packet.
fn nflog(d: &[u8], out: &mut Decoded) {
    let Some(&family) = d.first() else {
        out.problem = Some("empty NFLOG record");
        return;
    };
    let mut off = 4;
    while let (Some(len), Some(ty)) = (le16(d, off), le16(d, off + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if ty == 9 {
            let end = (off + len).min(d.len());
            let payload = &d[off + 4..end];
            return match family {
                2 => ip_or_l2(ETH_IPV4, payload, out),
                10 => ip_or_l2(ETH_IPV6, payload, out),
                _ => raw_ip(payload, out),
            };
        }
        off += (len + 3) & !3;
    }
    out.problem = Some("NFLOG record without a packet");
}
