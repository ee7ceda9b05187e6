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

/// An ISO 8601 / RFC 3339 time as nanoseconds since the epoch:
/// `2024-03-01`, `2024-03-01T01:00`, `2024-03-01 01:00:00.123456789`, with
/// `Z` or an offset (`+02:00`, `-0500`); a time without a zone is UTC, as
/// every time pcapidx prints is. None when it is not such a time.
pub fn parse_iso(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (date, rest) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, day] = parts[..] else { return None };
    if (y.len(), m.len(), day.len()) != (4, 2, 2) {
        return None;
    }
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(y, m as u32, day as u32);
    // February 30th and the like name no day.
    if civil_from_days(days) != (y, m as u32, day as u32) {
        return None;
    }
    // The zone: Z, or a sign (after the time part, so not the date's dashes).
    let (clock, offset_s) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, z) = (&rest[..i], &rest[i..]);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z[1..].replace(':', "");
        // Digits only before slicing: a multi-byte character would split.
        if z.len() != 4 || !z.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (c, sign * (num(&z[..2])? * 3600 + num(&z[2..])? * 60))
    } else {
        (rest, 0)
    };
    let (mut hh, mut mm, mut ss, mut frac_ns) = (0, 0, 0, 0);
    if !clock.is_empty() {
        let (hms, frac) = match clock.split_once(['.', ',']) {
            Some((a, f)) => (a, Some(f)),
            None => (clock, None),
        };
        let mut parts = hms.split(':');
        hh = num(parts.next()?)?;
        mm = num(parts.next()?)?;
        ss = parts.next().map_or(Some(0), num)?;
        if parts.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            frac_ns = num(&format!("{f:0<9}"))?;
        }
    }
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// A (year, month, day) date to days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn iso_times_parse_to_what_ts_iso_prints() {
        for ns in [
            0,
            1_709_254_800_123_456_789,
            -1_500_000_000,
            4_102_444_800_000_000_000,
        ] {
            assert_eq!(parse_iso(&ts_iso(ns)), Some(ns), "{}", ts_iso(ns));
        }
        let base = parse_iso("2024-03-01T01:00:00Z").unwrap();
        assert_eq!(base, 1_709_254_800_000_000_000);
        for (text, delta_s) in [
            ("2024-03-01", -3600),
            ("2024-03-01T01:00", 0),
            ("2024-03-01 01:00:00", 0),
            ("2024-03-01T03:00:00+02:00", 0),
            ("2024-02-29T20:00:00-0500", 0),
            ("2024-03-01T01:00:01.5Z", 1),
        ] {
            let got = parse_iso(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                got.div_euclid(1_000_000_000) - base / 1_000_000_000,
                delta_s,
                "{text}"
            );
        }
        assert_eq!(
            parse_iso("2024-03-01T01:00:01.5Z"),
            Some(base + 1_500_000_000)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-3-1",
            "2024-03-01T25:00",
            "2024-03-01T01:00+2",
            "2024-03-01T01:00:00.1234567890",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
        // Any text, multi-byte characters included, is an answer, never a panic.
        let odd = "2024-03-01T01:00:00.5+1é1 ß-Zt9";
        for (i, _) in odd.char_indices() {
            for (j, _) in odd.char_indices().skip(1) {
                if i < j {
                    let _ = parse_iso(&odd[i..j]);
                }
            }
        }
        assert_eq!(parse_iso("2024-03-01T01:00+1é1"), None);
    }
}
