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
