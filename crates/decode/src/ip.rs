//! IPv4/IPv6 with etherparse's lax slicing, then the few transport bytes a
//! flow needs, read directly so that first fragments and SCTP keep their ports.
use etherparse::{Ipv6ExtensionSlice, LaxIpSlice};

use crate::{Frag, Ip, Tcp};

/// Protocols whose header starts with a 16-bit source and destination port.
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
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
            for ext in s.extensions().clone() {
                if let Ipv6ExtensionSlice::Fragment(f) = ext {
                    let id = f.identification();
                    ip.frag = match (f.fragment_offset().value(), f.more_fragments()) {
                        (0, false) => Frag::Whole,
                        (0, true) => Frag::First { id },
                        _ => Frag::Later { id },
                    };
                }
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
