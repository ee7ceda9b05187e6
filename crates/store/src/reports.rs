//! The SQL behind the listing commands (`flows`, `files`, `macs`,
//! `summary`). They read the views of `migrations/`, so what a command shows
//! is what an analyst gets from the same view in any SQLite client.
use ipnet::IpNet;
use rusqlite::types::Value;

use crate::functions::range_key;

/// The columns `pcapidx flows` writes as CSV and JSON, in order.
pub const FLOW_COLUMNS: &str = "flow_id, proto, src_ip, src_port, dst_ip, dst_port, ethertype,
    vlan, vlan_inner, first_ts_ns, last_ts_ns, packets_fwd, packets_rev, bytes_fwd, bytes_rev,
    tcp_flags_fwd, tcp_flags_rev, src_mac, dst_mac, files, service, community_id";

/// `pcapidx flows` as a table: the `conversations` view, started to the millisecond.
const FLOW_TABLE_COLUMNS: &str = "flow_id AS Id, protocol AS Proto, src AS Src, dst AS Dst,
    flags AS Flags, fcount AS FCount, rcount AS RCount, bytes AS Bytes,
    replace(substr(start_time, 1, 23), 'T', ' ') AS Start, printf('%.3f', duration_s) AS Duration,
    service AS Service";

/// The text `--grep` matches, over `conversations` columns.
const GREP_TEXT: &str = "(protocol || ' ' || coalesce(src, '') || ' ' || coalesce(dst, '')
    || ' ' || coalesce(service, ''))";

/// The columns `pcapidx files` shows, in order.
const FILES_COLUMNS: &str = "file_id, path, size, format, link_types, packets, flow_packets,
    filtered_packets, undecodable_packets, first_ts_ns, last_ts_ns, status, error, filters";

/// What `pcapidx flows` asks for.
#[derive(Debug, Clone, Default)]
pub struct FlowQuery<'a> {
    /// An SQL expression over the `flows` columns.
    pub where_: Option<&'a str>,
    /// A regular expression over a flow's protocol, endpoints and service.
    pub grep: Option<&'a str>,
    /// Flows with an end in any of these ranges (found through the address indexes).
    pub hosts: &'a [IpNet],
    pub limit: Option<u64>,
    /// The people's columns (`conversations`) rather than every `flows` column.
    pub table: bool,
    /// Only `flow_id` (what `carve` takes); overrides `table`.
    pub ids_only: bool,
}

/// The query behind `pcapidx flows`, and its parameters.
pub fn flows_sql(q: &FlowQuery) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let hosts = hosts_sql(q.hosts, &mut params);
    let mut sql = if q.table && !q.ids_only {
        let mut sql = format!("SELECT {FLOW_TABLE_COLUMNS} FROM conversations WHERE 1");
        if let Some(w) = q.where_ {
            sql.push_str(&format!(
                " AND flow_id IN (SELECT flow_id FROM flows WHERE ({w}\n))"
            ));
        }
        if let Some(g) = q.grep {
            params.push(Value::Text(g.to_string()));
            sql.push_str(&format!(" AND {GREP_TEXT} REGEXP ?{}", params.len()));
        }
        sql
    } else {
        let columns = if q.ids_only { "flow_id" } else { FLOW_COLUMNS };
        let mut sql = format!("SELECT {columns} FROM flows WHERE 1");
        if let Some(w) = q.where_ {
            // The line break ends a trailing `-- comment` in the expression.
            sql.push_str(&format!(" AND ({w}\n)"));
        }
        if let Some(g) = q.grep {
            params.push(Value::Text(g.to_string()));
            sql.push_str(&format!(
                " AND flow_id IN (SELECT flow_id FROM conversations WHERE {GREP_TEXT} REGEXP ?{})",
                params.len()
            ));
        }
        sql
    };
    sql.push_str(&hosts);
    sql.push_str(" ORDER BY flow_id");
    if let Some(n) = q.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    (sql, params)
}

/// `AND flow_id IN (…)` for flows with an end in any of `hosts`, as range
/// scans of the address indexes (the text columns `src_ip`/`dst_ip` are
/// computed, so comparing them reads every flow).
fn hosts_sql(hosts: &[IpNet], params: &mut Vec<Value>) -> String {
    if hosts.is_empty() {
        return String::new();
    }
    let mut scans = Vec::new();
    for net in hosts {
        params.push(range_key(net, false));
        params.push(range_key(net, true));
        let (lo, hi) = (params.len() - 1, params.len());
        for col in ["src_key", "dst_key"] {
            scans.push(format!(
                "SELECT flow_id FROM flow_data WHERE {col} BETWEEN ?{lo} AND ?{hi}"
            ));
        }
    }
    format!(" AND flow_id IN ({})", scans.join(" UNION ALL "))
}

pub fn files_sql() -> String {
    format!("SELECT {FILES_COLUMNS} FROM files ORDER BY file_id")
}

/// What `pcapidx macs` shows: the `macs` view with vendors, busiest first.
/// `Store::macs` computes the same rows in one scan (see summary.rs).
pub fn macs_sql(table: bool, limit: Option<u64>) -> String {
    let columns = if table {
        "mac AS MAC, mac_vendor(mac_key) AS Vendor, flows AS Flows, packets_sent AS Sent,
         packets_received AS Received, bytes_sent + bytes_received AS Bytes,
         replace(substr(ts_iso(first_ts_ns), 1, 19), 'T', ' ') AS First,
         replace(substr(ts_iso(last_ts_ns), 1, 19), 'T', ' ') AS Last"
    } else {
        "mac, mac_vendor(mac_key) AS vendor, flows, packets_sent, packets_received, bytes_sent,
         bytes_received, first_ts_ns, last_ts_ns"
    };
    let mut sql = format!(
        "SELECT {columns} FROM macs ORDER BY packets_sent + packets_received DESC, mac_key"
    );
    if let Some(n) = limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    sql
}

/// Summary columns whose text is a JSON array (a list, not one value).
pub const LIST_COLUMNS: [&str; 2] = ["formats", "link_types"];

/// One part of `pcapidx summary`.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its name in JSON output.
    pub key: &'static str,
    /// Its heading in text output.
    pub title: &'static str,
    pub sql: String,
    /// One row of named values (printed as `name: value` lines), not a list.
    pub single: bool,
}

/// The parts of `pcapidx summary`, each defined by a query; lists hold at
/// most `top` rows. Columns named in [`LIST_COLUMNS`] hold a JSON array. `Store::summary` computes the ones that group every flow
/// in one scan instead, to the same result (see summary.rs).
pub fn summary_sections(top: u32) -> Vec<Section> {
    let list = |key, title, sql: &str| Section {
        key,
        title,
        sql: format!("{sql} LIMIT {top}"),
        single: false,
    };
    vec![
        Section {
            key: "overview",
            title: "Overview",
            sql: "SELECT
                (SELECT count(*) FROM files) AS files,
                (SELECT count(*) FROM files WHERE status = 'ok') AS files_ok,
                (SELECT count(*) FROM files WHERE status IN ('error', 'partial'))
                    AS files_with_errors,
                (SELECT count(*) FROM files WHERE status = 'indexing') AS files_in_progress,
                (SELECT count(*) FROM files WHERE status = 'not-a-capture') AS not_captures,
                (SELECT count(*) FROM files WHERE status = 'skipped') AS files_skipped,
                (SELECT json_group_array(format || ' ' || n) FROM (SELECT format, count(*) AS n
                    FROM files WHERE format IS NOT NULL GROUP BY format ORDER BY n DESC, format))
                    AS formats,
                (SELECT json_group_array(i.link_type || coalesce(' (' || l.name || ')', ''))
                    FROM (SELECT DISTINCT link_type FROM interfaces ORDER BY link_type) i
                    LEFT JOIN link_type_names l USING (link_type)) AS link_types,
                (SELECT coalesce(sum(size), 0) FROM files WHERE format IS NOT NULL) AS capture_bytes,
                (SELECT ts_iso(min(first_ts_ns)) FROM files) AS first_packet,
                (SELECT ts_iso(max(last_ts_ns)) FROM files) AS last_packet,
                (SELECT round((max(last_ts_ns) - min(first_ts_ns)) / 1e9, 6) FROM files)
                    AS span_seconds,
                (SELECT coalesce(sum(packets), 0) FROM files) AS packets,
                (SELECT coalesce(sum(flow_packets), 0) FROM files) AS packets_in_flows,
                (SELECT coalesce(sum(filtered_packets), 0) FROM files) AS packets_filtered,
                (SELECT coalesce(sum(undecodable_packets), 0) FROM files) AS packets_undecodable,
                (SELECT count(*) FROM flow_data) AS flows,
                (SELECT coalesce(sum(bytes_fwd + bytes_rev), 0) FROM flow_data) AS flow_bytes"
                .into(),
            single: true,
        },
        list(
            "protocols",
            "Flows by protocol",
            "SELECT protocol, count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes
             FROM flow_summary GROUP BY protocol ORDER BY flows DESC, protocol",
        ),
        list(
            "top_talkers",
            "Top talkers (bytes sent and received)",
            "SELECT ip_text(k) AS address, count(*) AS flows, sum(p) AS packets, sum(b) AS bytes
             FROM (SELECT src_key AS k, packets_fwd + packets_rev AS p, bytes_fwd + bytes_rev AS b
                   FROM flow_data WHERE src_key IS NOT NULL
                   UNION ALL
                   SELECT dst_key, packets_fwd + packets_rev, bytes_fwd + bytes_rev
                   FROM flow_data WHERE dst_key IS NOT NULL)
             GROUP BY k ORDER BY bytes DESC, k",
        ),
        list(
            "top_services",
            "Top services",
            "SELECT service, count(*) AS flows, sum(packets_fwd + packets_rev) AS packets,
                sum(bytes_fwd + bytes_rev) AS bytes
             FROM flow_data WHERE service IS NOT NULL
             GROUP BY service ORDER BY flows DESC, service",
        ),
        list(
            "top_mac_vendors",
            "Top MAC vendors",
            "SELECT vendor, count(*) AS macs, sum(packets) AS packets
             FROM (SELECT mac_vendor(mac_key) AS vendor,
                       packets_sent + packets_received AS packets FROM macs)
             GROUP BY vendor ORDER BY packets DESC, vendor",
        ),
        Section {
            key: "files_with_errors",
            title: "Files not indexed completely",
            sql: "SELECT path, status, error FROM files
                  WHERE status IN ('error', 'partial', 'indexing', 'skipped') ORDER BY file_id"
                .into(),
            single: false,
        },
    ]
}
