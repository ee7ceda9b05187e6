//! Building network-layer packets: IPv4/IPv6 (with optional extension
//! headers), TCP, UDP, ICMP, SCTP, other IP protocols, ARP, and IP fragments.
//! Payloads are zero bytes; transport checksums are left at zero (captures
//! with offloaded checksums look the same).

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;
pub const ETH_ARP: u16 = 0x0806;

/// A host: MAC address and IP address (IPv4 in the first 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Host {
    pub mac: [u8; 6],
    pub ip: [u8; 16],
    pub v6: bool,
}

/// Vendor blocks for host MACs (Intel, Google, VMware, Cisco), and a locally
/// administered one, so that vendor look-ups have something to find.
const HOST_OUIS: [[u8; 3]; 5] = [
    [0x00, 0x1b, 0x21],
    [0x3c, 0x5a, 0xb4],
    [0x00, 0x0c, 0x29],
    [0xf4, 0xbd, 0x9e],
    [0x02, 0x00, 0x5e],
];

fn host_mac(family: u8, net: u8, last: u8) -> [u8; 6] {
    let [a, b, c] = HOST_OUIS[usize::from(last) % HOST_OUIS.len()];
    [a, b, c, family, net, last]
}

impl Host {
    pub fn v4(mac_last: u8, ip: [u8; 4]) -> Self {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&ip);
        // A multicast group's frames go to its RFC 1112 MAC: 01:00:5e and the low 23 bits.
        let mac = if (224..240).contains(&ip[0]) {
            [0x01, 0x00, 0x5e, ip[1] & 0x7f, ip[2], ip[3]]
        } else {
            host_mac(0x10, ip[2], mac_last)
        };
        Host {
            mac,
            ip: a,
            v6: false,
        }
    }

    pub fn v6(mac_last: u8, ip: [u8; 16]) -> Self {
        // RFC 2464: 33:33 and the group's last 32 bits.
        let mac = if ip[0] == 0xff {
            [0x33, 0x33, ip[12], ip[13], ip[14], ip[15]]
        } else {
            host_mac(0x20, ip[14], mac_last)
        };
        Host { mac, ip, v6: true }
    }

    pub fn ip_text(&self) -> String {
        if self.v6 {
            std::net::Ipv6Addr::from(self.ip).to_string()
        } else {
            std::net::Ipv4Addr::new(self.ip[0], self.ip[1], self.ip[2], self.ip[3]).to_string()
        }
    }
}

/// What follows the IP header (or, for ARP, the frame's whole payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u16,
    },
    Udp {
        sport: u16,
        dport: u16,
        len: u16,
    },
    /// ICMP for IPv4, ICMPv6 for IPv6.
    Icmp {
        ty: u8,
        code: u8,
        len: u16,
    },
    Sctp {
        sport: u16,
        dport: u16,
        len: u16,
    },
    /// Any other IP protocol, with a raw payload.
    Proto {
        proto: u8,
        len: u16,
    },
    Arp {
        op: u16,
    },
}

impl Body {
    pub fn proto(&self, v6: bool) -> u8 {
        match self {
            Body::Tcp { .. } => 6,
            Body::Udp { .. } => 17,
            Body::Icmp { .. } => {
                if v6 {
                    58
                } else {
                    1
                }
            }
            Body::Sctp { .. } => 132,
            Body::Proto { proto, .. } => *proto,
            Body::Arp { .. } => 0,
        }
    }

    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            Body::Tcp { sport, dport, .. }
            | Body::Udp { sport, dport, .. }
            | Body::Sctp { sport, dport, .. } => Some((sport, dport)),
            _ => None,
        }
    }

    pub fn tcp_flags(&self) -> u8 {
        match self {
            Body::Tcp { flags, .. } => *flags,
            _ => 0,
        }
    }
}

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// One packet to send.
#[derive(Debug, Clone, Copy)]
pub struct Pkt {
    pub src: Host,
    pub dst: Host,
    pub body: Body,
    pub ip_id: u32,
    /// IPv6 only: hop-by-hop and destination-options headers before the transport header.
    pub v6_ext: bool,
    /// VLAN ids, outermost first.
    pub vlans: [u16; 3],
    pub vlan_count: u8,
    /// Payload bytes: zeros when 0, else [`payload_byte`] with this fill.
    pub fill: u8,
}

/// Byte `at` of a payload made with `fill` (0: zeros). TCP payloads are
/// filled by sequence number, so a retransmission carries the same bytes
/// and a copy with another fill conflicts with it; UDP by offset in the
/// datagram.
pub fn payload_byte(fill: u8, at: u32) -> u8 {
    if fill == 0 {
        return 0;
    }
    let x = at.wrapping_add(u32::from(fill)).wrapping_mul(0x9e37_79b1);
    (x >> 24) as u8 ^ fill
}

fn payload(out: &mut Vec<u8>, fill: u8, first: u32, len: u16) {
    out.extend((0..u32::from(len)).map(|i| payload_byte(fill, first.wrapping_add(i))));
}

impl Pkt {
    pub fn new(src: Host, dst: Host, body: Body) -> Self {
        Pkt {
            src,
            dst,
            body,
            ip_id: 0,
            v6_ext: false,
            vlans: [0; 3],
            vlan_count: 0,
            fill: 0,
        }
    }

    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count)]
    }

    pub fn ethertype(&self) -> u16 {
        match self.body {
            Body::Arp { .. } => ETH_ARP,
            _ if self.src.v6 => ETH_IPV6,
            _ => ETH_IPV4,
        }
    }
}

fn be16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn be32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn transport(body: &Body, fill: u8, out: &mut Vec<u8>) {
    match *body {
        Body::Tcp {
            sport,
            dport,
            flags,
            seq,
            ack,
            len,
        } => {
            be16(out, sport);
            be16(out, dport);
            be32(out, seq);
            be32(out, ack);
            out.push(5 << 4);
            out.push(flags);
            be16(out, 65535);
            be32(out, 0); // checksum, urgent pointer
            // A SYN's data starts one past its sequence number.
            payload(
                out,
                fill,
                seq.wrapping_add(u32::from(flags & flags::SYN != 0)),
                len,
            );
        }
        Body::Udp { sport, dport, len } => {
            be16(out, sport);
            be16(out, dport);
            be16(out, 8 + len);
            be16(out, 0);
            payload(out, fill, 0, len);
        }
        Body::Icmp { ty, code, len } => {
            out.extend_from_slice(&[ty, code, 0, 0, 0, 1, 0, 1]);
            out.resize(out.len() + usize::from(len), 0);
        }
        Body::Sctp { sport, dport, len } => {
            be16(out, sport);
            be16(out, dport);
            be32(out, 0x1234_5678);
            be32(out, 0);
            out.resize(out.len() + usize::from(len), 0);
        }
        Body::Proto { len, .. } => out.resize(out.len() + usize::from(len), 0),
        Body::Arp { .. } => {}
    }
}

/// Writes the packet's network layer into `out` (cleared first).
pub fn l3(p: &Pkt, out: &mut Vec<u8>) {
    out.clear();
    if let Body::Arp { op } = p.body {
        out.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        be16(out, op);
        out.extend_from_slice(&p.src.mac);
        out.extend_from_slice(&p.src.ip[..4]);
        out.extend_from_slice(&if op == 1 { [0; 6] } else { p.dst.mac });
        out.extend_from_slice(&p.dst.ip[..4]);
        return;
    }
    let proto = p.body.proto(p.src.v6);
    if p.src.v6 {
        out.extend_from_slice(&[0x60, 0, 0, 0, 0, 0]);
        out.push(if p.v6_ext { 0 } else { proto });
        out.push(64);
        out.extend_from_slice(&p.src.ip);
        out.extend_from_slice(&p.dst.ip);
        if p.v6_ext {
            // Hop-by-hop options, then destination options; each 8 bytes with PadN.
            out.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
            out.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
        }
        transport(&p.body, p.fill, out);
        let payload = (out.len() - 40) as u16;
        out[4..6].copy_from_slice(&payload.to_be_bytes());
    } else {
        out.extend_from_slice(&[0x45, 0, 0, 0]);
        be16(out, p.ip_id as u16);
        out.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
        out.extend_from_slice(&p.src.ip[..4]);
        out.extend_from_slice(&p.dst.ip[..4]);
        transport(&p.body, p.fill, out);
        let total = out.len() as u16;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        let c = ipv4_checksum(&out[..20]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// Splits an IP packet built by [`l3`] (without IPv6 extension headers)
/// into fragments carrying at most `max` payload bytes each (rounded down
/// to a multiple of 8). IPv6 fragments get a fragment header with `id`.
pub fn fragment(ip: &[u8], max: usize, id: u32, out: &mut Vec<Vec<u8>>) {
    out.clear();
    let max = (max / 8).max(1) * 8;
    let v6 = ip[0] >> 4 == 6;
    let hlen = if v6 { 40 } else { 20 };
    let payload = &ip[hlen..];
    let mut off = 0;
    while off < payload.len() {
        let end = (off + max).min(payload.len());
        let more = end < payload.len();
        let mut f = Vec::with_capacity(hlen + 8 + end - off);
        f.extend_from_slice(&ip[..hlen]);
        if v6 {
            let next = ip[6];
            f[6] = 44;
            f.extend_from_slice(&[next, 0]);
            be16(&mut f, (off as u16) | u16::from(more));
            be32(&mut f, id);
            f.extend_from_slice(&payload[off..end]);
            let plen = (f.len() - 40) as u16;
            f[4..6].copy_from_slice(&plen.to_be_bytes());
        } else {
            f.extend_from_slice(&payload[off..end]);
            let total = f.len() as u16;
            f[2..4].copy_from_slice(&total.to_be_bytes());
            let frag = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
            f[6..8].copy_from_slice(&frag.to_be_bytes());
            f[10] = 0;
            f[11] = 0;
            let c = ipv4_checksum(&f[..20]);
            f[10..12].copy_from_slice(&c.to_be_bytes());
        }
        out.push(f);
        off = end;
    }
}
