//! How flow fields are written as text columns.
use std::net::{Ipv4Addr, Ipv6Addr};

use pcapidx_flow::KeyKind;

/// An address as text: dotted IPv4, RFC 5952 IPv6.
pub fn ip_text(kind: KeyKind, a: &[u8; 16]) -> Option<String> {
    match kind {
        KeyKind::Ip4 => Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()),
        KeyKind::Ip6 => Some(Ipv6Addr::from(*a).to_string()),
        KeyKind::L2 => None,
    }
}

pub fn mac_text(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// TCP flags as letters in the order FSRPAUEC (FIN SYN RST PSH ACK URG ECE CWR).
pub fn tcp_flag_letters(flags: u8) -> String {
    b"FSRPAUEC"
        .iter()
        .enumerate()
        .filter(|(i, _)| flags & (1 << i) != 0)
        .map(|(_, c)| char::from(*c))
        .collect()
}

/// The inverse of [`ip_text`].
pub fn parse_ip(text: &str) -> Option<(KeyKind, [u8; 16])> {
    match text.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&a.octets());
            Some((KeyKind::Ip4, v))
        }
        std::net::IpAddr::V6(a) => Some((KeyKind::Ip6, a.octets())),
    }
}

/// The inverse of [`mac_text`].
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// The inverse of [`tcp_flag_letters`].
pub fn tcp_flags_from_letters(text: &str) -> u8 {
    text.chars()
        .filter_map(|c| b"FSRPAUEC".iter().position(|l| char::from(*l) == c))
        .fold(0, |acc, i| acc | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(tcp_flag_letters(0x12), "SA");
        assert_eq!(tcp_flag_letters(0x1b), "FSPA");
        assert_eq!(tcp_flag_letters(0xff), "FSRPAUEC");
        assert_eq!(tcp_flag_letters(0), "");
        assert_eq!(
            mac_text(&[0, 0x1b, 0x21, 0xaa, 0xbb, 0xff]),
            "00:1b:21:aa:bb:ff"
        );
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        assert_eq!(ip_text(KeyKind::Ip6, &v6).unwrap(), "2001:db8::1");
        assert_eq!(
            ip_text(
                KeyKind::Ip4,
                &[192, 168, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            )
            .unwrap(),
            "192.168.0.1"
        );
    }
}
