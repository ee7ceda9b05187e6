//! IPv4/IPv6 with etherparse's lax slicing, then the few transport bytes a
//! flow needs, read directly so that first fragments and SCTP keep their ports.
use etherparse::LaxIpSlice;

use crate::{Frag, Ip, Tcp};

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

pub(crate) fn decode_ip(p: &[u8], ip: &mut Ip) -> Result<(), &'static str> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(p).map_err(|_| "undecodable IP header")?;
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
            ip.frag = match (offset, h.more_fragments()) {
                (0, false) => Frag::Whole,
                (0, true) => Frag::First { id },
                _ => Frag::Later { id },
            };
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
                ip.frag = match (offset, more) {
                    (0, false) => Frag::Whole,
                    (0, true) => Frag::First { id },
                    _ => Frag::Later { id },
                };
            }
        }
    }
    if matches!(ip.frag, Frag::Later { .. }) {
        return Ok(());
    }
    let t = payload.payload;
    if has_ports(ip.proto) && t.len() >= 4 {
        ip.ports = Some((
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ));
        if ip.proto == 6 && t.len() >= 14 {
            ip.tcp = Some(Tcp {
                flags: t[13],
                seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            });
        }
    } else if matches!(ip.proto, 1 | 58) && t.len() >= 2 {
        ip.icmp = Some((t[0], t[1]));
    }
    Ok(())
}
