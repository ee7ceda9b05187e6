//! Community ID v1 (Corelight's spec): a direction-free flow hash that Zeek,
//! Suricata, Arkime and Wireshark also compute, so flows join across tools.
//!
//! `"1:" + base64(sha1(seed . addr_lo . addr_hi . proto . 0 . port_lo . port_hi))`,
//! where the endpoint with the smaller (address, port) comes first. ICMP
//! types stand in for ports the way Zeek maps them: a request and its reply
//! get the same pair; one-way messages keep their own order.
use sha1::{Digest, Sha1};

use crate::key::KeyKind;
use crate::record::FlowRecord;

/// ICMPv4 types that have a counterpart (request, reply) in Zeek's mapping.
const ICMP4_PAIRS: &[(u8, u8)] = &[
    (8, 0),   // echo
    (13, 14), // timestamp
    (15, 16), // information
    (10, 9),  // router solicitation / advertisement
    (17, 18), // address mask
];

/// The same for ICMPv6.
const ICMP6_PAIRS: &[(u8, u8)] = &[
    (128, 129), // echo
    (133, 134), // router solicitation / advertisement
    (135, 136), // neighbor solicitation / advertisement
    (130, 131), // multicast listener query / report
    (139, 140), // node information query / reply
    (144, 145), // home agent address discovery
];

/// The "ports" an ICMP message hashes with, and whether it is one-way (its
/// endpoints are then never reordered).
pub fn icmp_ports(v6: bool, icmp_type: u8, code: u8) -> (u16, u16, bool) {
    let pairs = if v6 { ICMP6_PAIRS } else { ICMP4_PAIRS };
    let counterpart = pairs.iter().find_map(|&(a, b)| {
        if a == icmp_type {
            Some(b)
        } else if b == icmp_type {
            Some(a)
        } else {
            None
        }
    });
    match counterpart {
        Some(c) => (u16::from(icmp_type), u16::from(c), false),
        None => (u16::from(icmp_type), u16::from(code), true),
    }
}

/// A Community ID string (`1:` and 28 base64 characters), kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; 30]);

impl CommunityId {
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// The Community ID of one tuple (addresses of 4 or 16 bytes, both the same
/// family). `ports` is `None` for protocols without them. With `one_way`
/// the endpoints keep the order given.
pub fn community_id(
    seed: u16,
    proto: u8,
    src: &[u8],
    dst: &[u8],
    ports: Option<(u16, u16)>,
    one_way: bool,
) -> CommunityId {
    let (sp, dp) = ports.unwrap_or((0, 0));
    let keep = one_way || (src, sp) < (dst, dp);
    let ((a, ap), (b, bp)) = if keep {
        ((src, sp), (dst, dp))
    } else {
        ((dst, dp), (src, sp))
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(ap.to_be_bytes());
        h.update(bp.to_be_bytes());
    }
    let digest: [u8; 20] = h.finalize().into();
    let mut out = [0u8; 30];
    out[..2].copy_from_slice(b"1:");
    base64(&digest, &mut out[2..]);
    CommunityId(out)
}

/// Standard base64 with padding: 20 bytes in, 28 characters out.
fn base64(input: &[u8; 20], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            out[o + i] = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
        }
        o += 4;
    }
}

impl FlowRecord {
    /// The flow's Community ID (seed 0); `None` for layer-2 flows. An ICMP
    /// flow hashes with its first message's type and code, as Zeek's ICMP
    /// "connection" of that message would.
    pub fn community_id(&self) -> Option<CommunityId> {
        let len = match self.key.kind {
            KeyKind::L2 => return None,
            KeyKind::Ip4 => 4,
            KeyKind::Ip6 => 16,
        };
        let ((src, sp), (dst, dp)) = (self.src(), self.dst());
        let (src, dst) = (&src[..len], &dst[..len]);
        let proto = self.key.proto;
        let (ports, one_way) = match (proto, self.icmp) {
            (1 | 58, Some((t, c))) => {
                let (a, b, one_way) = icmp_ports(proto == 58, t, c);
                (Some((a, b)), one_way)
            }
            _ => (self.key.has_ports.then_some((sp, dp)), false),
        };
        Some(community_id(0, proto, src, dst, ports, one_way))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn addr(s: &str) -> Vec<u8> {
        match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    /// The spec's published baseline (community-id-spec, baseline/baseline_deflt.json):
    /// proto, source, destination, source port, destination port, expected ID.
    /// For ICMP the ports are the already-mapped type pair.
    type Vector = (
        u8,
        &'static str,
        &'static str,
        Option<(u16, u16)>,
        &'static str,
    );
    const BASELINE: &[Vector] = &[
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            Some((135, 136)),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            Some((136, 135)),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            Some((135, 136)),
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        ),
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            Some((136, 135)),
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        ),
        (
            58,
            "3ffe:501:1800:2345::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            Some((3, 0)),
            "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
        ),
        (
            58,
            "3ffe:501:410:0:2c0:dfff:fe47:33e",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            Some((1, 4)),
            "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
        ),
        (
            58,
            "3ffe:507:0:1:200:86ff:fe05:80da",
            "3ffe:501:0:1001::2",
            Some((128, 129)),
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        ),
        (
            58,
            "3ffe:501:0:1001::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            Some((129, 128)),
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        ),
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "ff02::2",
            Some((133, 134)),
            "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "ff02::1",
            Some((134, 133)),
            "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
        ),
        (
            1,
            "192.168.0.89",
            "192.168.0.1",
            Some((8, 0)),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        ),
        (
            1,
            "192.168.0.1",
            "192.168.0.89",
            Some((0, 8)),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        ),
        (
            1,
            "10.0.0.1",
            "10.0.0.2",
            Some((11, 0)),
            "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
        ),
        (
            6,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            "2607:f8b0:400c:c03::1a",
            Some((63943, 25)),
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        ),
        (
            6,
            "2607:f8b0:400c:c03::1a",
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            Some((25, 63943)),
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        ),
        (
            132,
            "192.168.170.8",
            "192.168.170.56",
            Some((7, 7)),
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        ),
        (
            132,
            "192.168.170.56",
            "192.168.170.8",
            Some((7, 7)),
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        ),
        (
            6,
            "128.232.110.120",
            "66.35.250.204",
            Some((34855, 80)),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        ),
        (
            6,
            "66.35.250.204",
            "128.232.110.120",
            Some((80, 34855)),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        ),
        (
            17,
            "192.168.1.52",
            "8.8.8.8",
            Some((54585, 53)),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        ),
        (
            17,
            "8.8.8.8",
            "192.168.1.52",
            Some((53, 54585)),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        ),
        (
            46,
            "10.1.12.1",
            "10.1.12.2",
            None,
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        ),
        (
            46,
            "10.1.12.2",
            "10.1.12.1",
            None,
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        ),
    ];

    #[test]
    fn published_baseline() {
        for &(proto, s, d, ports, want) in BASELINE {
            let got = community_id(0, proto, &addr(s), &addr(d), ports, false);
            assert_eq!(got.as_str(), want, "{proto} {s} {d} {ports:?}");
        }
    }

    #[test]
    fn icmp_mapping() {
        // Echo request and reply map to the same pair, in opposite order.
        assert_eq!(icmp_ports(false, 8, 0), (8, 0, false));
        assert_eq!(icmp_ports(false, 0, 0), (0, 8, false));
        assert_eq!(icmp_ports(true, 135, 0), (135, 136, false));
        // Destination unreachable is one-way: its code is the second "port".
        assert_eq!(icmp_ports(false, 3, 1), (3, 1, true));
        assert_eq!(icmp_ports(true, 1, 4), (1, 4, true));
    }

    #[test]
    fn one_way_keeps_its_order() {
        let (a, b) = (addr("10.0.0.2"), addr("10.0.0.1"));
        let one_way = community_id(0, 1, &a, &b, Some((3, 1)), true);
        let reordered = community_id(0, 1, &a, &b, Some((3, 1)), false);
        assert_ne!(one_way, reordered);
        assert_eq!(one_way.as_str().len(), 30);
    }
}
