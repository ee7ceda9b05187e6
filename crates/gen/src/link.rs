//! Wrapping network-layer packets in a link layer, for every link type the
//! indexer supports.
use crate::packet::{ETH_ARP, ETH_IPV4, ETH_IPV6};

/// Extra encapsulation on Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthOpts {
    /// The outermost tag is 802.1ad (0x88a8) rather than 802.1Q.
    pub qinq: bool,
    /// Number of MPLS labels (0 = none).
    pub mpls: u8,
    pub pppoe: bool,
    /// 802.3 length field with LLC/SNAP instead of an EtherType.
    pub snap: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet(EthOpts),
    /// LINKTYPE_RAW (101): IPv4 or IPv6 by version.
    Raw,
    /// LINKTYPE_IPV4 (228); IPv6 packets cannot be written.
    Ipv4,
    /// LINKTYPE_IPV6 (229); IPv4 packets cannot be written.
    Ipv6,
    Sll,
    Sll2,
    /// BSD loopback, host byte order (little-endian writer), macOS AF_INET6 = 30.
    Null,
    /// OpenBSD loopback, network byte order, AF_INET6 = 24.
    Loop,
    Ppp,
    Chdlc,
    Wifi,
    Radiotap,
    Nflog,
}

impl Link {
    pub const ALL: [Link; 13] = [
        Link::Ethernet(EthOpts {
            qinq: false,
            mpls: 0,
            pppoe: false,
            snap: false,
        }),
        Link::Raw,
        Link::Ipv4,
        Link::Ipv6,
        Link::Sll,
        Link::Sll2,
        Link::Null,
        Link::Loop,
        Link::Ppp,
        Link::Chdlc,
        Link::Wifi,
        Link::Radiotap,
        Link::Nflog,
    ];

    pub fn link_type(&self) -> u16 {
        match self {
            Link::Ethernet(_) => 1,
            Link::Raw => 101,
            Link::Ipv4 => 228,
            Link::Ipv6 => 229,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Null => 0,
            Link::Loop => 108,
            Link::Ppp => 9,
            Link::Chdlc => 104,
            Link::Wifi => 105,
            Link::Radiotap => 127,
            Link::Nflog => 239,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Link::Ethernet(_) => "ethernet",
            Link::Raw => "raw",
            Link::Ipv4 => "ipv4",
            Link::Ipv6 => "ipv6",
            Link::Sll => "sll",
            Link::Sll2 => "sll2",
            Link::Null => "null",
            Link::Loop => "loop",
            Link::Ppp => "ppp",
            Link::Chdlc => "chdlc",
            Link::Wifi => "wifi",
            Link::Radiotap => "radiotap",
            Link::Nflog => "nflog",
        }
    }

    /// The MAC addresses a frame of this link carries: (source, destination).
    pub fn macs(&self, src: [u8; 6], dst: [u8; 6]) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
        match self {
            Link::Ethernet(_) | Link::Wifi | Link::Radiotap => (Some(src), Some(dst)),
            Link::Sll | Link::Sll2 => (Some(src), None),
            _ => (None, None),
        }
    }

    /// Whether the link keeps VLAN tags (only Ethernet does here).
    pub fn carries_vlans(&self) -> bool {
        matches!(self, Link::Ethernet(_))
    }

    /// Wraps `l3` (of EtherType `et`) into `out` (cleared first). Returns
    /// false when this link cannot carry it (ARP on an IP-only link...).
    pub fn wrap(
        &self,
        et: u16,
        src: [u8; 6],
        dst: [u8; 6],
        vlans: &[u16],
        l3: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let arp = et == ETH_ARP;
        let v6 = et == ETH_IPV6;
        match *self {
            Link::Ethernet(o) => {
                out.extend_from_slice(&dst);
                out.extend_from_slice(&src);
                for (i, v) in vlans.iter().enumerate() {
                    let tpid: u16 = if i == 0 && o.qinq && vlans.len() > 1 {
                        0x88a8
                    } else {
                        0x8100
                    };
                    out.extend_from_slice(&tpid.to_be_bytes());
                    out.extend_from_slice(&(v & 0x0fff).to_be_bytes());
                }
                if o.mpls > 0 && !arp {
                    out.extend_from_slice(&0x8847u16.to_be_bytes());
                    for i in 0..o.mpls {
                        let bottom = i + 1 == o.mpls;
                        let label: u32 = 1000 + u32::from(i);
                        let word = label << 12 | u32::from(bottom) << 8 | 64;
                        out.extend_from_slice(&word.to_be_bytes());
                    }
                } else if o.pppoe && !arp {
                    out.extend_from_slice(&0x8864u16.to_be_bytes());
                    out.extend_from_slice(&[0x11, 0, 0, 0x2a]);
                    out.extend_from_slice(&((l3.len() + 2) as u16).to_be_bytes());
                    out.extend_from_slice(&(if v6 { 0x0057u16 } else { 0x0021 }).to_be_bytes());
                } else if o.snap {
                    // An 802.3 length field cannot exceed 1500.
                    if l3.len() + 8 > 1500 {
                        return false;
                    }
                    out.extend_from_slice(&((l3.len() + 8) as u16).to_be_bytes());
                    out.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
                    out.extend_from_slice(&et.to_be_bytes());
                } else {
                    out.extend_from_slice(&et.to_be_bytes());
                }
                out.extend_from_slice(l3);
                // Short frames are padded to Ethernet's 60-byte minimum, as NICs do.
                if out.len() < 60 {
                    out.resize(60, 0);
                }
            }
            Link::Raw if !arp => out.extend_from_slice(l3),
            Link::Ipv4 if et == ETH_IPV4 => out.extend_from_slice(l3),
            Link::Ipv6 if v6 => out.extend_from_slice(l3),
            Link::Sll => {
                out.extend_from_slice(&[0, 0, 0, 1, 0, 6]);
                out.extend_from_slice(&src);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(l3);
            }
            Link::Sll2 => {
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
                out.extend_from_slice(&src);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(l3);
            }
            Link::Null if !arp => {
                out.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes());
                out.extend_from_slice(l3);
            }
            Link::Loop if !arp => {
                out.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes());
                out.extend_from_slice(l3);
            }
            Link::Ppp if !arp => {
                out.extend_from_slice(&[0xff, 0x03]);
                out.extend_from_slice(&(if v6 { 0x0057u16 } else { 0x0021 }).to_be_bytes());
                out.extend_from_slice(l3);
            }
            Link::Chdlc if !arp => {
                out.extend_from_slice(&[0x0f, 0x00]);
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(l3);
            }
            Link::Wifi | Link::Radiotap => {
                if *self == Link::Radiotap {
                    out.extend_from_slice(&[0, 0, 8, 0, 0, 0, 0, 0]);
                }
                // Data frame from a station to the AP: addr1 BSSID, addr2 SA, addr3 DA.
                out.extend_from_slice(&[0x08, 0x01, 0, 0]);
                out.extend_from_slice(&[0x02, 0, 0, 0, 0xa9, 0x01]);
                out.extend_from_slice(&src);
                out.extend_from_slice(&dst);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(l3);
            }
            Link::Nflog if !arp => {
                out.extend_from_slice(&[if v6 { 10 } else { 2 }, 0, 0, 0]);
                // A prefix TLV, then the packet TLV (type 9); lengths little-endian, padded to 4.
                out.extend_from_slice(&[8, 0, 10, 0, b'i', b'd', b'x', 0]);
                out.extend_from_slice(&((l3.len() + 4) as u16).to_le_bytes());
                out.extend_from_slice(&9u16.to_le_bytes());
                out.extend_from_slice(l3);
                while !out.len().is_multiple_of(4) {
                    out.push(0);
                }
            }
            _ => return false,
        }
        true
    }
}
