//! How flow fields are stored: addresses as sortable keys (IPv4 an INTEGER,
//! IPv6 a 16-byte BLOB), MACs as 48-bit integers, times as RFC 3339 text.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pcapidx_flow::KeyKind;
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

/// An address in the form that sorts and range-scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpKey {
    V4(u32),
    V6([u8; 16]),
}

impl ToSql for IpKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            IpKey::V4(a) => ToSqlOutput::from(i64::from(*a)),
            IpKey::V6(a) => ToSqlOutput::Borrowed(ValueRef::Blob(a)),
        })
    }
}

impl IpKey {
    /// The key of a flow endpoint (`None` for layer-2 flows).
    pub fn of(kind: KeyKind, a: &[u8; 16]) -> Option<IpKey> {
        match kind {
            KeyKind::Ip4 => Some(IpKey::V4(u32::from_be_bytes([a[0], a[1], a[2], a[3]]))),
            KeyKind::Ip6 => Some(IpKey::V6(*a)),
            KeyKind::L2 => None,
        }
    }

    /// Reads a stored key back; `None` for anything else.
    pub fn from_sql(v: ValueRef<'_>) -> Option<IpKey> {
        match v {
            ValueRef::Integer(i) => u32::try_from(i).ok().map(IpKey::V4),
            ValueRef::Blob(b) => <[u8; 16]>::try_from(b).ok().map(IpKey::V6),
            _ => None,
        }
    }

    pub fn addr(self) -> IpAddr {
        match self {
            IpKey::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            IpKey::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }

    pub fn from_addr(a: IpAddr) -> IpKey {
        match a {
            IpAddr::V4(a) => IpKey::V4(u32::from(a)),
            IpAddr::V6(a) => IpKey::V6(a.octets()),
        }
    }

    /// In the tracker's terms: the family and the address bytes.
    pub fn to_flow(self) -> (KeyKind, [u8; 16]) {
        let mut v = [0u8; 16];
        match self {
            IpKey::V4(a) => {
                v[..4].copy_from_slice(&a.to_be_bytes());
                (KeyKind::Ip4, v)
            }
            IpKey::V6(a) => (KeyKind::Ip6, a),
        }
    }
}

/// RFC 5952 text of an IPv6 endpoint (IPv4 text is computed by the view).
pub fn ip6_text(kind: KeyKind, a: &[u8; 16]) -> Option<String> {
    (kind == KeyKind::Ip6).then(|| Ipv6Addr::from(*a).to_string())
}

pub fn mac_key(m: &[u8; 6]) -> i64 {
    m.iter().fold(0i64, |acc, b| acc << 8 | i64::from(*b))
}

pub fn mac_from_key(k: i64) -> [u8; 6] {
    let b = k.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Nanoseconds since the epoch as RFC 3339 UTC with nine decimals, the
/// form the views compute in SQL: `2024-05-01T12:00:00.000000000Z`.
pub fn ts_iso(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_roundtrip() {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[192, 168, 0, 1]);
        let k = IpKey::of(KeyKind::Ip4, &v4).unwrap();
        assert_eq!(k, IpKey::V4(0xc0a8_0001));
        assert_eq!(k.to_flow(), (KeyKind::Ip4, v4));
        assert_eq!(k.addr().to_string(), "192.168.0.1");
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let k6 = IpKey::of(KeyKind::Ip6, &v6.octets()).unwrap();
        assert_eq!(k6.addr().to_string(), "2001:db8::1");
        assert_eq!(IpKey::of(KeyKind::L2, &v4), None);
        let m = [0x8c, 0x1b, 0x21, 0xaa, 0xbb, 0xff];
        assert_eq!(mac_from_key(mac_key(&m)), m);
    }

    #[test]
    fn times() {
        assert_eq!(ts_iso(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            ts_iso(1_714_564_800_123_456_789),
            "2024-05-01T12:00:00.123456789Z"
        );
        assert_eq!(ts_iso(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            ts_iso(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
