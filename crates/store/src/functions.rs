//! SQL functions on pcapidx's own connections (`pcapidx sql`, `flows
//! --where`, `carve --where`). The views do not use them, so any SQLite
//! client can still read the index; these make it pleasanter.
//!
//! - `ip_in_cidr(ip, cidr)`: 1 if the address (text or key) is in the range.
//! - `ip_key(ip)`, `cidr_first(cidr)`, `cidr_last(cidr)`: the sortable key
//!   of an address and of a range's ends, for range scans that use the
//!   `src_key`/`dst_key` indexes.
//! - `ip_text(key)`: an address key back to text.
//! - `ts_iso(ns)`: RFC 3339 UTC with nanoseconds.
//! - `mac_vendor(mac)`: the registrant of a MAC's IEEE block, or its kind.
//! - `regexp(pattern, text)`, which SQLite's `text REGEXP pattern` calls.
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use regex::Regex;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Error};

use crate::format::{IpKey, mac_from_key, parse_iso, ts_iso};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn user_error(msg: String) -> Error {
    Error::UserFunctionError(msg.into())
}

/// An address given as text or as a stored key; `None` if it is neither.
fn ip_arg(v: ValueRef<'_>) -> Option<IpKey> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()?
            .trim()
            .parse::<IpAddr>()
            .ok()
            .map(IpKey::from_addr),
        other => IpKey::from_sql(other),
    }
}

pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("invalid CIDR {t:?} (expected e.g. 10.0.0.0/8 or 2001:db8::/32)"))
}
fn cidr_arg(ctx: &Context<'_>, i: usize, fname: &str) -> rusqlite::Result<Arc<IpNet>> {
    ctx.get_or_create_aux(i as i32, |v| -> Result<IpNet, BoxError> {
        let text = v.as_str()?;
        parse_cidr(text).map_err(|e| format!("{fname}: {e}").into())
    })
}

/// Whether a key lies in a range (families must match).
pub fn key_in(key: IpKey, net: &IpNet) -> bool {
    net.contains(&key.addr())
}

pub(crate) fn range_key(net: &IpNet, last: bool) -> Value {
    let a = if last { net.broadcast() } else { net.network() };
    match IpKey::from_addr(a) {
        IpKey::V4(v) => Value::Integer(i64::from(v)),
        IpKey::V6(b) => Value::Blob(b.to_vec()),
    }
}

/// Checks a regular expression the way `REGEXP` compiles it.
pub fn check_regexp(pattern: &str) -> Result<(), String> {
    Regex::new(pattern).map(drop).map_err(|e| e.to_string())
}

fn mac_arg(v: ValueRef<'_>) -> Option<[u8; 6]> {
    match v {
        ValueRef::Integer(k) => Some(mac_from_key(k)),
        ValueRef::Text(t) => pcapidx_oui::parse_mac(std::str::from_utf8(t).ok()?.trim()),
        _ => None,
    }
}

pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("ip_in_cidr", 2, det, |ctx| {
        let net = cidr_arg(ctx, 1, "ip_in_cidr")?;
        Ok(ip_arg(ctx.get_raw(0)).map(|k| key_in(k, &net)))
    })?;
    conn.create_scalar_function("ip_key", 1, det, |ctx| {
        Ok(match ip_arg(ctx.get_raw(0)) {
            Some(IpKey::V4(v)) => Value::Integer(i64::from(v)),
            Some(IpKey::V6(b)) => Value::Blob(b.to_vec()),
            None => Value::Null,
        })
    })?;
    conn.create_scalar_function("cidr_first", 1, det, |ctx| {
        Ok(range_key(&*cidr_arg(ctx, 0, "cidr_first")?, false))
    })?;
    conn.create_scalar_function("cidr_last", 1, det, |ctx| {
        Ok(range_key(&*cidr_arg(ctx, 0, "cidr_last")?, true))
    })?;
    conn.create_scalar_function("ip_text", 1, det, |ctx| {
        Ok(ip_arg(ctx.get_raw(0)).map(|k| k.addr().to_string()))
    })?;
    conn.create_scalar_function("ts_iso", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Integer(ns) => Some(ts_iso(ns)),
            ValueRef::Real(ns) if ns.is_finite() => Some(ts_iso(ns as i64)),
            _ => None,
        })
    })?;
    conn.create_scalar_function("ts_ns", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(parse_iso),
            ValueRef::Integer(ns) => Some(ns),
            _ => None,
        })
    })?;
    conn.create_scalar_function("mac_vendor", 1, det, |ctx| {
        Ok(mac_arg(ctx.get_raw(0)).map(pcapidx_oui::label))
    })?;
    conn.create_scalar_function("regexp", 2, det, |ctx| {
        let re: Arc<Regex> = ctx.get_or_create_aux(0, |v| -> Result<Regex, BoxError> {
            let pattern = v.as_str()?;
            Regex::new(pattern).map_err(|e| format!("regexp {pattern:?}: {e}").into())
        })?;
        Ok(match ctx.get_raw(1) {
            ValueRef::Null => None,
            ValueRef::Text(t) => {
                let t = std::str::from_utf8(t).map_err(|e| user_error(e.to_string()))?;
                Some(re.is_match(t))
            }
            ValueRef::Integer(i) => Some(re.is_match(&i.to_string())),
            ValueRef::Real(f) => Some(re.is_match(&f.to_string())),
            ValueRef::Blob(_) => Some(false),
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        c
    }

    fn one<T: rusqlite::types::FromSql>(c: &Connection, sql: &str) -> T {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn functions_answer() {
        let c = conn();
        assert!(one::<bool>(
            &c,
            "SELECT ip_in_cidr('10.20.3.4', '10.20.0.0/16')"
        ));
        assert!(!one::<bool>(
            &c,
            "SELECT ip_in_cidr('10.21.0.0', '10.20.0.0/16')"
        ));
        assert!(!one::<bool>(
            &c,
            "SELECT ip_in_cidr('2001:db8::1', '0.0.0.0/0')"
        ));
        assert!(one::<bool>(
            &c,
            "SELECT ip_in_cidr(ip_key('2001:db8::1'), '2001:db8::/32')"
        ));
        assert_eq!(
            one::<Option<bool>>(&c, "SELECT ip_in_cidr(NULL, '10.0.0.0/8')"),
            None
        );
        assert_eq!(
            one::<i64>(&c, "SELECT cidr_first('10.20.9.9/16')"),
            0x0a14_0000
        );
        assert_eq!(
            one::<i64>(&c, "SELECT cidr_last('10.20.0.0/16')"),
            0x0a14_ffff
        );
        assert_eq!(
            one::<String>(&c, "SELECT ip_text(ip_key('2001:DB8:0::1'))"),
            "2001:db8::1"
        );
        assert_eq!(
            one::<String>(&c, "SELECT ts_iso(1714564800123456789)"),
            "2024-05-01T12:00:00.123456789Z"
        );
        assert_eq!(
            one::<String>(&c, "SELECT mac_vendor('00:1b:21:00:00:01')"),
            "Intel Corporate"
        );
        assert!(one::<bool>(&c, "SELECT 'tcp 10.0.0.1:443' REGEXP ':443$'"));
        let err = c
            .query_row("SELECT ip_in_cidr('10.0.0.1', '10.0.0.0/33')", [], |r| {
                r.get::<_, bool>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("invalid CIDR"), "{err}");
    }
}
