//! CIDR ignore filters: a packet with either endpoint in an ignored range
//! is not indexed.
use ipnet::IpNet;
use pcapidx_decode::Ip;
pub use pcapidx_store::parse_cidr;

#[derive(Debug, Clone, Default)]
pub struct IgnoreFilter {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    text: Vec<String>,
}

impl IgnoreFilter {
    pub fn new(nets: &[IpNet]) -> Self {
        let mut f = IgnoreFilter::default();
        for n in nets {
            let n = n.trunc();
            f.text.push(n.to_string());
            match n {
                IpNet::V4(n) => f.v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => {
                    f.v6.push((u128::from(n.network()), u128::from(n.netmask())))
                }
            }
        }
        f
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The filters as stored with each file: CIDRs joined by commas.
    pub fn describe(&self) -> Option<String> {
        (!self.text.is_empty()).then(|| self.text.join(","))
    }

    #[inline]
    pub fn drops(&self, ip: &Ip) -> bool {
        if ip.version == 4 {
            let a = u32::from_be_bytes([ip.src[0], ip.src[1], ip.src[2], ip.src[3]]);
            let b = u32::from_be_bytes([ip.dst[0], ip.dst[1], ip.dst[2], ip.dst[3]]);
            self.v4
                .iter()
                .any(|&(net, mask)| a & mask == net || b & mask == net)
        } else {
            let a = u128::from_be_bytes(ip.src);
            let b = u128::from_be_bytes(ip.dst);
            self.v6
                .iter()
                .any(|&(net, mask)| a & mask == net || b & mask == net)
        }
    }
}

/// Parses an ignore file: one CIDR (or bare address) per line, `#` comments.
pub fn parse_ignore_file(text: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push(parse_cidr(line).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip4(s: [u8; 4], d: [u8; 4]) -> Ip {
        let mut ip = Ip {
            version: 4,
            ..Default::default()
        };
        ip.src[..4].copy_from_slice(&s);
        ip.dst[..4].copy_from_slice(&d);
        ip
    }

    #[test]
    fn filters() {
        let nets =
            parse_ignore_file("# scanners\n10.1.0.0/16\n\n192.0.2.7 # one host\n2001:db8::/32\n")
                .unwrap();
        let f = IgnoreFilter::new(&nets);
        assert_eq!(
            f.describe().unwrap(),
            "10.1.0.0/16,192.0.2.7/32,2001:db8::/32"
        );
        assert!(f.drops(&ip4([10, 1, 2, 3], [8, 8, 8, 8])));
        assert!(f.drops(&ip4([8, 8, 8, 8], [10, 1, 255, 255])));
        assert!(!f.drops(&ip4([10, 2, 0, 1], [8, 8, 8, 8])));
        assert!(f.drops(&ip4([1, 1, 1, 1], [192, 0, 2, 7])));
        assert!(!f.drops(&ip4([1, 1, 1, 1], [192, 0, 2, 8])));
        let mut v6 = Ip {
            version: 6,
            ..Default::default()
        };
        v6.src = "2001:db8::5"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        assert!(f.drops(&v6));
        v6.src = "2001:db9::5"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        assert!(!f.drops(&v6));
        // Host bits set are truncated, not rejected.
        assert_eq!(
            IgnoreFilter::new(&[parse_cidr("10.1.2.3/8").unwrap()])
                .describe()
                .unwrap(),
            "10.0.0.0/8"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("banana").is_err());
        assert!(
            parse_ignore_file("10.0.0.0/8\nnope\n")
                .unwrap_err()
                .starts_with("line 2")
        );
    }
}
