//! Decoding one captured packet down to what a flow needs: MAC addresses,
//! VLAN ids, the EtherType, IP addresses, protocol, ports, TCP flags and
//! sequence numbers, and IP fragment identity.
//!
//! Link layers are decoded here (etherparse has no MPLS, PPPoE, SLL2,
//! 802.11 or NFLOG); IPv6 and IPv4 with an authentication header are sliced
//! with etherparse's lax slicing API, which tolerates snaplen-cut packets,
//! and plain IPv4 by hand with the same rules (a test holds them equal).
//!
//! Invariant: decoding never panics and never fails as a whole. It reports
//! the deepest layer it reached ([`Layer`]) and, if it stopped early, why.
//! Checksums are not validated (offloaded, wrong checksums are common).
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod fuzzing;
mod ip;
mod link;

pub use link::decode;

/// How far decoding got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer {
    /// Nothing usable: unknown link type, or cut before the network layer.
    #[default]
    None,
    /// A link-layer frame whose payload is not IP (ARP, LLDP, STP...), or
    /// whose IP header could not be decoded.
    L2,
    /// An IPv4 or IPv6 packet.
    Ip,
}

/// Where an IP packet stands with respect to fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frag {
    #[default]
    Whole,
    /// First fragment (offset 0, more fragments follow): carries the ports.
    First { id: u32 },
    /// A later fragment: no transport header; belongs to its datagram's flow.
    Later { id: u32 },
}

/// TCP header fields flows need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tcp {
    /// The flags byte: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80.
    pub flags: u8,
    /// The header's length in bytes (its data offset).
    pub header_len: u8,
    pub seq: u32,
    pub ack: u32,
}

/// The stream offset of TCP sequence number `seq` in a stream whose offset 0
/// is sequence number `first`: of the offsets congruent to it modulo 2^32,
/// the one nearest `near` (where the stream stands), so streams longer
/// than 4 GiB and sequence wrap both work. Negative: before the start.
pub fn tcp_offset(first: u32, seq: u32, near: u64) -> i64 {
    let d = seq.wrapping_sub(first).wrapping_sub(near as u32) as i32;
    near as i64 + i64::from(d)
}

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// IP-layer facts of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ip {
    /// 4 or 6.
    pub version: u8,
    /// IPv4 addresses use the first 4 bytes, the rest is zero.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The transport protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Ports, for protocols that have them and when the header was present.
    pub ports: Option<(u16, u16)>,
    pub tcp: Option<Tcp>,
    /// ICMP or ICMPv6 type and code (they identify the flow for Community ID).
    pub icmp: Option<(u8, u8)>,
    pub frag: Frag,
    /// Fragments: this one's offset in its datagram, in bytes, and whether
    /// more follow.
    pub frag_offset: u32,
    pub more_fragments: bool,
    /// Where the IP payload (transport header first; a later fragment's
    /// bytes) lies in the frame, as captured and bounded by the IP header's
    /// own length, so link-layer padding is not part of it.
    pub payload: Span,
    /// The IP payload's length as its header declares it: more than
    /// `payload.len` when the snaplen cut the packet.
    pub payload_wire_len: u32,
}

/// A range of bytes in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub at: u32,
    pub len: u32,
}

impl Span {
    /// The bytes of `frame` it covers (empty if they are not all there).
    pub fn of<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let at = self.at as usize;
        frame.get(at..at + self.len as usize).unwrap_or_default()
    }
}

/// What decoding one packet found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    pub layer: Layer,
    /// MAC addresses, when the link layer has them (Linux SLL has only the source).
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// VLAN ids, outermost first (up to three).
    pub vlans: [u16; 3],
    pub vlan_count: u8,
    /// EtherType of the network layer: 0x0800/0x86DD for IP, the frame's own
    /// for layer-2 flows, 0 for 802.3/LLC and 802.11 frames without one.
    pub ethertype: u16,
    /// Valid when `layer == Layer::Ip`.
    pub ip: Ip,
    /// Why decoding stopped before the transport layer, if it did.
    pub problem: Option<&'static str>,
}

impl Decoded {
    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count.min(3))]
    }
}

/// Link types (LINKTYPE_*) the decoder understands.
pub const SUPPORTED_LINK_TYPES: &[(u16, &str)] = &[
    (0, "NULL (BSD loopback)"),
    (1, "Ethernet"),
    (9, "PPP"),
    (12, "raw IP"),
    (14, "raw IP"),
    (101, "raw IP"),
    (104, "Cisco HDLC"),
    (105, "IEEE 802.11"),
    (108, "OpenBSD loopback"),
    (113, "Linux cooked (SLL)"),
    (127, "IEEE 802.11 + radiotap"),
    (228, "raw IPv4"),
    (229, "raw IPv6"),
    (239, "NFLOG"),
    (276, "Linux cooked v2 (SLL2)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use std::fmt::Write;

    /// The link types are stated once: what the decoder dispatches on is
    /// `SUPPORTED_LINK_TYPES`, and the fuzzer picks among those (and one
    /// that is not).
    #[test]
    fn supported_link_types_are_the_ones_decoded() {
        let unsupported = |lt: u16| {
            let mut d = Decoded::default();
            decode(lt, &[0u8; 64], &mut d);
            d.problem == Some("unsupported link type")
        };
        for &(lt, name) in SUPPORTED_LINK_TYPES {
            assert!(!unsupported(lt), "{lt} ({name}) is listed but not decoded");
        }
        for lt in 0..=300u16 {
            if !SUPPORTED_LINK_TYPES.iter().any(|s| s.0 == lt) {
                assert!(unsupported(lt), "{lt} is decoded but not listed");
            }
        }
        let mut fuzzed: Vec<u16> = crate::fuzzing::LINK_TYPES.to_vec();
        let extra = fuzzed.pop().unwrap();
        fuzzed.sort_unstable();
        let listed: Vec<u16> = SUPPORTED_LINK_TYPES.iter().map(|s| s.0).collect();
        assert_eq!(fuzzed, listed);
        assert!(unsupported(extra));
    }

    /// One line describing what was decoded, for data-driven tests.
    fn summary(d: &Decoded) -> String {
        let mut s = String::new();
        match d.layer {
            Layer::None => s.push_str("none"),
            Layer::L2 => write!(s, "l2 et={:04x}", d.ethertype).unwrap(),
            Layer::Ip => {
                let ip = &d.ip;
                let addr = |a: &[u8; 16]| -> String {
                    if ip.version == 4 {
                        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
                    } else {
                        std::net::Ipv6Addr::from(*a).to_string()
                    }
                };
                write!(
                    s,
                    "ip{} p={} {}>{}",
                    ip.version,
                    ip.proto,
                    addr(&ip.src),
                    addr(&ip.dst)
                )
                .unwrap();
                if let Some((a, b)) = ip.ports {
                    write!(s, " {a}>{b}").unwrap();
                }
                if let Some(t) = ip.tcp {
                    write!(s, " f={:02x}", t.flags).unwrap();
                }
                match ip.frag {
                    Frag::Whole => {}
                    Frag::First { id } => write!(s, " first#{id}").unwrap(),
                    Frag::Later { id } => write!(s, " later#{id}").unwrap(),
                }
            }
        }
        if let Some(src) = d.src_mac {
            write!(s, " mac={:02x}", src[5]).unwrap();
        }
        if d.vlan_count > 0 {
            write!(s, " vlan={:?}", d.vlans()).unwrap();
        }
        s
    }

    fn check(link_type: u16, bytes: &[u8], expected: &str) {
        let mut d = Decoded::default();
        decode(link_type, bytes, &mut d);
        assert_eq!(
            summary(&d),
            expected,
            "link type {link_type}, {} bytes",
            bytes.len()
        );
    }

    fn tcp4(flags_syn: bool) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(1234, 80, 7, 1024);
        let b = if flags_syn { b.syn() } else { b.ack(1) };
        let mut v = Vec::new();
        b.write(&mut v, &[1, 2, 3]).unwrap();
        v
    }

    fn udp6() -> Vec<u8> {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        let mut v = Vec::new();
        PacketBuilder::ipv6(a, b, 64)
            .udp(53, 5353)
            .write(&mut v, &[0; 8])
            .unwrap();
        v
    }

    fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1];
        v.extend_from_slice(&et.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_and_tags() {
        let t = tcp4(true);
        check(
            1,
            &eth(0x0800, &t),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01",
        );
        let mut vlan = vec![0x20, 0x0a, 0x08, 0x00];
        vlan.extend_from_slice(&t);
        check(
            1,
            &eth(0x8100, &vlan),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01 vlan=[10]",
        );
        let mut qinq = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00];
        qinq.extend_from_slice(&t);
        check(
            1,
            &eth(0x88a8, &qinq),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01 vlan=[100, 10]",
        );
        // MPLS: two labels, bottom-of-stack on the second.
        let mut mpls = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40];
        mpls.extend_from_slice(&udp6());
        check(
            1,
            &eth(0x8847, &mpls),
            "ip6 p=17 2001::1>2001::2 53>5353 mac=01",
        );
        // PPPoE session carrying IPv4.
        let mut pppoe = vec![0x11, 0x00, 0x00, 0x01, 0x00, 0x40, 0x00, 0x21];
        pppoe.extend_from_slice(&t);
        check(
            1,
            &eth(0x8864, &pppoe),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01",
        );
        // 802.3 + LLC/SNAP carrying IPv4.
        let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        snap.extend_from_slice(&t);
        check(
            1,
            &eth(snap.len() as u16, &snap),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01",
        );
        // Cisco MetaData, and NSH carrying IPv4.
        let mut cmd = vec![1, 1, 0, 1, 0, 5, 0x08, 0x00];
        cmd.extend_from_slice(&t);
        check(
            1,
            &eth(0x8909, &cmd),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01",
        );
        let mut nsh = vec![0x0f, 0xc2, 0x01, 0x01, 0, 0, 0x01, 0xff];
        nsh.extend_from_slice(&t);
        check(
            1,
            &eth(0x894f, &nsh),
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=01",
        );
        // Spanning tree (LLC without SNAP) and ARP are layer-2 flows.
        check(1, &eth(38, &[0x42, 0x42, 0x03, 0, 0]), "l2 et=0000 mac=01");
        check(1, &eth(0x0806, &[0; 28]), "l2 et=0806 mac=01");
        // A broken IP header inside Ethernet still forms a layer-2 flow.
        check(1, &eth(0x0800, &[0x45, 0]), "l2 et=0800 mac=01");
        check(1, &[0; 10], "none");
    }

    #[test]
    fn other_link_types() {
        let t = tcp4(false);
        check(101, &t, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        check(228, &t, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        check(229, &udp6(), "ip6 p=17 2001::1>2001::2 53>5353");
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&t);
        check(0, &null, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        let mut null6 = vec![0, 0, 0, 30]; // AF_INET6 (macOS) written big-endian
        null6.extend_from_slice(&udp6());
        check(0, &null6, "ip6 p=17 2001::1>2001::2 53>5353");
        let mut loop_ = vec![0, 0, 0, 2];
        loop_.extend_from_slice(&t);
        check(108, &loop_, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 9, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&t);
        check(113, &sll, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10 mac=09");
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 7, 0, 0,
        ];
        sll2.extend_from_slice(&udp6());
        check(276, &sll2, "ip6 p=17 2001::1>2001::2 53>5353 mac=07");
        let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&t);
        check(9, &ppp, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        let mut hdlc = vec![0x0f, 0x00, 0x08, 0x00];
        hdlc.extend_from_slice(&t);
        check(104, &hdlc, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=10");
        check(147, &t, "none");
    }

    #[test]
    fn wifi_and_nflog() {
        let t = tcp4(true);
        // 802.11 data frame, to-DS: SA = addr2, DA = addr3.
        let mut w = vec![0x08, 0x01, 0, 0];
        w.extend_from_slice(&[0xa, 0, 0, 0, 0, 1]); // addr1 BSSID
        w.extend_from_slice(&[0xb, 0, 0, 0, 0, 2]); // addr2 SA
        w.extend_from_slice(&[0xc, 0, 0, 0, 0, 3]); // addr3 DA
        w.extend_from_slice(&[0, 0]);
        w.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        w.extend_from_slice(&t);
        check(105, &w, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=02");
        let mut rt = vec![0, 0, 8, 0, 0, 0, 0, 0];
        rt.extend_from_slice(&w);
        check(127, &rt, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 mac=02");
        // A beacon (management frame) is a layer-2 flow.
        let mut beacon = vec![0x80, 0, 0, 0];
        beacon.extend_from_slice(&[0xff; 6]);
        beacon.extend_from_slice(&[0xb, 0, 0, 0, 0, 4]);
        beacon.extend_from_slice(&[0; 14]);
        check(105, &beacon, "l2 et=0000 mac=04");
        let mut nf = vec![2, 0, 0, 0, 8, 0, 1, 0, 0, 8, 0, 0];
        nf.extend_from_slice(&((t.len() + 4) as u16).to_le_bytes());
        nf.extend_from_slice(&9u16.to_le_bytes());
        nf.extend_from_slice(&t);
        check(239, &nf, "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02");
    }

    #[test]
    fn fragments_and_truncation() {
        let mut first = tcp4(true);
        first[6] = 0x20; // MF
        check(
            101,
            &first,
            "ip4 p=6 10.0.0.1>10.0.0.2 1234>80 f=02 first#0",
        );
        let mut later = tcp4(true);
        later[6] = 0x00;
        later[7] = 0x10; // offset 16*8
        check(101, &later, "ip4 p=6 10.0.0.1>10.0.0.2 later#0");
        // Cut inside the TCP header: ports survive, flags do not.
        check(101, &tcp4(true)[..26], "ip4 p=6 10.0.0.1>10.0.0.2 1234>80");
        // Cut inside the IP header: nothing to key an IP flow on.
        check(101, &tcp4(true)[..12], "none");
    }

    /// The payload span is the IP payload wherever the IP header sits in
    /// the frame, without link-layer padding or what follows an NFLOG TLV.
    #[test]
    fn payload_span_is_the_ip_payload() {
        let t = tcp4(false);
        let tcp = &t[20..];
        let span = |lt: u16, frame: &[u8]| {
            let mut d = Decoded::default();
            decode(lt, frame, &mut d);
            d.ip.payload.of(frame).to_vec()
        };
        let mut padded = eth(0x0800, &t);
        padded.extend_from_slice(&[0xee; 10]);
        assert_eq!(span(1, &padded), tcp);
        let mut tagged = eth(0x8100, &[0, 5, 0x08, 0x00]);
        tagged.extend_from_slice(&t);
        assert_eq!(span(1, &tagged), tcp);
        assert_eq!(span(101, &t), tcp);
        let mut nf = vec![2, 0, 0, 0];
        nf.extend_from_slice(&((t.len() + 4) as u16).to_le_bytes());
        nf.extend_from_slice(&9u16.to_le_bytes());
        nf.extend_from_slice(&t);
        nf.extend_from_slice(&[8, 0, 1, 0, 0xee, 0xee, 0xee, 0xee]);
        assert_eq!(span(239, &nf), tcp);
        let u = udp6();
        assert_eq!(span(1, &eth(0x86dd, &u)), &u[40..]);
        // Cut by the snaplen: what was captured of it, and its real length.
        assert_eq!(span(101, &t[..30]), &t[20..30]);
        let mut d = Decoded::default();
        decode(101, &t[..30], &mut d);
        assert_eq!(d.ip.payload_wire_len as usize, tcp.len());
        let mut v6 = u.clone();
        v6.truncate(50);
        decode(101, &v6, &mut d);
        assert_eq!((d.ip.payload.len, d.ip.payload_wire_len), (10, 16));
        // Not IP: no span.
        assert!(span(1, &eth(0x0806, &[0; 28])).is_empty());
        // A later fragment: its bytes, its offset and the MF flag.
        let mut later = t.clone();
        later[6] = 0x20;
        later[7] = 0x02;
        let mut d = Decoded::default();
        decode(101, &later, &mut d);
        assert_eq!((d.ip.frag_offset, d.ip.more_fragments), (16, true));
        assert_eq!(d.ip.payload.of(&later), tcp);
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_flip() {
        let mut samples = vec![eth(0x0800, &tcp4(true)), eth(0x86dd, &udp6())];
        let mut w = vec![0x88, 0x03, 0, 0];
        w.extend_from_slice(&[1; 30]);
        samples.push(w);
        for s in &samples {
            for lt in [0, 1, 9, 101, 104, 105, 108, 113, 127, 239, 276] {
                for n in 0..=s.len() {
                    decode(lt, &s[..n], &mut Decoded::default());
                }
                for i in 0..s.len() {
                    let mut f = s.clone();
                    f[i] ^= 0xff;
                    decode(lt, &f, &mut Decoded::default());
                }
            }
        }
    }
}
