//! IPv4/IPv6 with etherparse's lax slicing (plain IPv4 by hand, by the same
//! rules), then the few transport bytes a flow needs, read directly so that
//! first fragments and SCTP keep their ports.
use etherparse::LaxIpSlice;

use crate::{Frag, Ip, Span, Tcp};

/// Protocols whose header starts with a 16-bit source and destination port.
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// The fragment header in an IPv6 extension chain, as (offset in 8-byte
/// units, more fragments, identification); `None` if there is none or the
/// chain is cut before it.
fn ipv6_fragment(mut next: u8, mut rest: &[u8]) -> Option<(u16, bool, u32)> {
    // Hop-by-hop, routing, destination options, mobility, HIP, shim6 have a
    // length in 8-byte units after 8; AH in 4-byte units after 8. A chain is
    // short in practice; the bound only stops crafted ones.
    for _ in 0..8 {
        let len = match next {
            44 => {
                let f = rest.get(..8)?;
                let field = u16::from_be_bytes([f[2], f[3]]);
                let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                return Some((field >> 3, field & 1 == 1, id));
            }
            0 | 43 | 60 | 135 | 139 | 140 => (usize::from(*rest.get(1)?) + 1) * 8,
            51 => (usize::from(*rest.get(1)?) + 2) * 4,
            _ => return None,
        };
        next = *rest.first()?;
        rest = rest.get(len..)?;
    }
    None
}

const UNDECODABLE: &str = "undecodable IP header";

pub(crate) fn decode_ip(p: &[u8], ip: &mut Ip) -> Result<(), &'static str> {
    // IPv4 without an authentication header, by hand: etherparse's lax slice
    // is a large value built and copied for every packet (by hand an index
    // run takes 2.4% fewer instructions). Same rules as etherparse's.
    if p.first().is_some_and(|b| b >> 4 == 4) && p.get(9) != Some(&51) {
        return decode_ipv4(p, ip);
    }
    decode_lax(p, ip)
}

/// Any IP packet, with etherparse's lax slicing.
fn decode_lax(p: &[u8], ip: &mut Ip) -> Result<(), &'static str> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(p).map_err(|_| UNDECODABLE)?;
    let payload = slice.payload();
    ip.proto = payload.ip_number.0;
    match &slice {
        LaxIpSlice::Ipv4(s) => {
            let h = s.header();
            ip.version = 4;
            ip.src[..4].copy_from_slice(&h.source());
            ip.dst[..4].copy_from_slice(&h.destination());
            let offset = h.fragments_offset().value();
            let id = u32::from(h.identification());
            ip.frag = frag(offset, h.more_fragments(), id);
            ip.frag_offset = u32::from(offset) * 8;
            ip.more_fragments = h.more_fragments();
        }
        LaxIpSlice::Ipv6(s) => {
            let h = s.header();
            ip.version = 6;
            ip.src = h.source();
            ip.dst = h.destination();
            // Not etherparse's extension iterator: on a lax slice whose
            // extension headers are cut short it reads past the slice (found
            // by the `decode` fuzz target; fuzz/regressions/decode/).
            if let Some((offset, more, id)) =
                ipv6_fragment(h.next_header().0, &p[40.min(p.len())..])
            {
                ip.frag = frag(offset, more, id);
                ip.frag_offset = u32::from(offset) * 8;
                ip.more_fragments = more;
            }
        }
    }
    transport(payload.payload, ip);
    let declared = match &slice {
        LaxIpSlice::Ipv4(s) => {
            usize::from(s.header().total_len()).saturating_sub(s.header().slice().len())
        }
        // The payload length counts the extension headers before it.
        LaxIpSlice::Ipv6(s) => (usize::from(s.header().payload_length()) + 40)
            .saturating_sub(payload.payload.as_ptr() as usize - p.as_ptr() as usize),
    };
    ip.payload_wire_len = declared.max(payload.payload.len()) as u32;
    Ok(())
}

fn frag(offset: u16, more: bool, id: u32) -> Frag {
    match (offset, more) {
        (0, false) => Frag::Whole,
        (0, true) => Frag::First { id },
        _ => Frag::Later { id },
    }
}

/// An IPv4 header and its payload: a total length shorter than the header
/// or longer than what was captured gives way to the captured length.
fn decode_ipv4(p: &[u8], ip: &mut Ip) -> Result<(), &'static str> {
    let header_len = usize::from(p.first().map_or(0, |b| b & 0xf)) * 4;
    let Some(h) = p.get(..header_len).filter(|_| header_len >= 20) else {
        return Err(UNDECODABLE);
    };
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let end = if total < header_len || p.len() < total {
        p.len()
    } else {
        total
    };
    ip.version = 4;
    ip.proto = h[9];
    ip.src[..4].copy_from_slice(&h[12..16]);
    ip.dst[..4].copy_from_slice(&h[16..20]);
    let field = u16::from_be_bytes([h[6], h[7]]);
    let id = u32::from(u16::from_be_bytes([h[4], h[5]]));
    ip.frag = frag(field & 0x1fff, field & 0x2000 != 0, id);
    ip.frag_offset = u32::from(field & 0x1fff) * 8;
    ip.more_fragments = field & 0x2000 != 0;
    let t = p.get(header_len..end).unwrap_or_default();
    transport(t, ip);
    ip.payload_wire_len = total.saturating_sub(header_len).max(t.len()) as u32;
    Ok(())
}

/// The few transport-header bytes a flow needs (none for a later fragment).
#[inline]
fn transport(t: &[u8], ip: &mut Ip) {
    // An address, made an offset by `decode` (which knows the frame).
    ip.payload = Span {
        at: t.as_ptr() as usize as u32,
        len: t.len() as u32,
    };
    if matches!(ip.frag, Frag::Later { .. }) {
        return;
    }
    if has_ports(ip.proto) && t.len() >= 4 {
        ip.ports = Some((
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ));
        if ip.proto == 6 && t.len() >= 14 {
            ip.tcp = Some(Tcp {
                flags: t[13],
                header_len: (t[12] >> 4) * 4,
                seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            });
        }
    } else if matches!(ip.proto, 1 | 58) && t.len() >= 2 {
        ip.icmp = Some((t[0], t[1]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 fast path decodes exactly what etherparse's lax slicing does.
    #[test]
    fn ipv4_by_hand_equals_etherparse() {
        let mut base = vec![
            0x45, 0, 0, 44, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 192, 168, 1, 2,
        ];
        // TCP: ports 1234 -> 80, seq, ack, flags SYN|ACK.
        base.extend_from_slice(&[4, 210, 0, 80, 0, 0, 1, 0, 0, 0, 2, 0, 0x50, 0x12, 0, 0]);
        base.extend_from_slice(&[0; 8]);
        let mut cases = Vec::new();
        for proto in [1u8, 4, 6, 17, 58, 132, 255] {
            for ihl in [0u8, 4, 5, 6, 15] {
                for total in [0u16, 19, 20, 24, 40, 44, 100, 65535] {
                    for frag in [0u16, 0x2000, 0x0001, 0x2001, 0x4000, 0x1fff] {
                        let mut q = base.clone();
                        q[0] = 0x40 | ihl;
                        q[9] = proto;
                        q[2..4].copy_from_slice(&total.to_be_bytes());
                        q[6..8].copy_from_slice(&frag.to_be_bytes());
                        for cut in [0, 1, 9, 10, 19, 20, 23, 24, 33, 34, q.len()] {
                            cases.push(q[..cut.min(q.len())].to_vec());
                        }
                    }
                }
            }
        }
        // And mangled bytes (a small LCG: deterministic).
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let mut q = base.clone();
            for _ in 0..3 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (x >> 16) as usize % q.len();
                q[at] = (x >> 8) as u8;
            }
            q[0] = 0x40 | (q[0] & 0xf);
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            q.truncate((x >> 16) as usize % (q.len() + 1));
            cases.push(q);
        }
        for q in cases.iter().filter(|q| q.get(9) != Some(&51)) {
            let (mut a, mut b) = (Ip::default(), Ip::default());
            let ra = decode_ipv4(q, &mut a);
            let rb = decode_lax(q, &mut b);
            assert_eq!((ra, a), (rb, b), "{q:02x?}");
        }
    }
}
