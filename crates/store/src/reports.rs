//! The SQL behind the listing commands (`flows`, `files`, `macs`,
//! `summary`). They read the views of `migrations/`, so what a command shows
//! is what an analyst gets from the same view in any SQLite client.
use ipnet::IpNet;
use rusqlite::types::Value;

use crate::functions::range_key;

/// The columns `pcapidx flows` writes as CSV and JSON, in order.
pub const FLOW_COLUMNS: &str = "flow_id, proto, src_ip, src_port, dst_ip, dst_port, ethertype,
    vlan, vlan_inner, first_ts_ns, last_ts_ns, packets_fwd, packets_rev, bytes_fwd, bytes_rev,
    tcp_flags_fwd, tcp_flags_rev, src_mac, dst_mac, files, service, community_id, payload_fwd,
    payload_rev, missed_fwd, missed_rev, turned";

/// `pcapidx flows` as a table: the `conversations` view (`c`), started to
/// the millisecond, with the VLAN from [`FLOW_FILTER`] (`f`).
const FLOW_TABLE_COLUMNS: &str = "c.flow_id AS Id, c.protocol AS Proto, c.src AS Src,
    c.dst AS Dst, f.vlan AS VLAN, c.flags AS Flags, c.fcount AS FCount, c.rcount AS RCount,
    c.bytes AS Bytes, replace(substr(c.start_time, 1, 23), 'T', ' ') AS \"Start (UTC)\",
    printf('%.3f', c.duration_s) AS Duration, c.service AS Service";

/// The text `--grep` matches, over `conversations` columns:
/// `PROTOCOL SRC DST SERVICE`, e.g. `tcp 10.1.0.10:40001 198.51.100.7:22 ssh`.
const GREP_TEXT: &str = "(protocol || ' ' || coalesce(src, '') || ' ' || coalesce(dst, '')
    || ' ' || coalesce(service, ''))";

/// What `--where`, `--sort` and the time window see: every `flows` column
/// and the `flow_summary` ones it lacks (`protocol`, `start_time`,
/// `end_time`, `duration_s`, `packets`, `bytes`), from the view itself.
/// SQLite flattens it into the query, computing only the columns a query
/// uses (the join is on the rowid).
pub const FLOW_FILTER: &str = "(SELECT f.*, s.protocol, s.start_time, s.end_time,
    s.duration_s, s.packets, s.bytes FROM flows f JOIN flow_summary s USING (flow_id))";

/// The columns [`FLOW_FILTER`] adds to `flows`.
const SUMMARY_COLUMNS: [&str; 6] = [
    "protocol",
    "start_time",
    "end_time",
    "duration_s",
    "packets",
    "bytes",
];

/// The columns `--sort` takes: those of [`FLOW_FILTER`].
pub fn sort_columns() -> impl Iterator<Item = &'static str> {
    FLOW_COLUMNS
        .split(',')
        .map(str::trim)
        .chain(SUMMARY_COLUMNS)
}

/// The columns `pcapidx files` shows, in order.
const FILES_COLUMNS: &str = "file_id, path, size, format, link_types, packets, flow_packets,
    filtered_packets, undecodable_packets, first_ts_ns, last_ts_ns, status, error, filters,
    (SELECT count(*) FROM file_flows ff WHERE ff.file_id = files.file_id) AS flows";

/// What `pcapidx flows` (and `carve`) asks for.
#[derive(Debug, Clone, Default)]
pub struct FlowQuery<'a> {
    /// An SQL expression over the [`FLOW_FILTER`] columns.
    pub where_: Option<&'a str>,
    /// Regular expressions over a flow's [`GREP_TEXT`]; every one must match.
    pub grep: &'a [String],
    /// `--grep` ignores case.
    pub ignore_case: bool,
    /// Flows with an end in any of these ranges (found through the address indexes).
    pub hosts: &'a [IpNet],
    /// Flows with a packet at or after this time (ns since the epoch)...
    pub since_ns: Option<i64>,
    /// ... and at or before this one.
    pub until_ns: Option<i64>,
    /// Flows with a packet in any of these files (ids), through `file_flows`.
    pub in_files: Vec<i64>,
    /// Order by this column of [`sort_columns`] (then flow id), not flow id alone.
    pub sort: Option<&'a str>,
    pub desc: bool,
    pub limit: Option<u64>,
    /// The people's columns (`conversations`) rather than every `flows` column.
    pub table: bool,
    /// Only `flow_id` (what `carve` takes); overrides `table`.
    pub ids_only: bool,
    /// Keyset paging: only flows after this (sort column value, flow id) in
    /// the query's order (the last row of the page before).
    pub after: Option<(Value, u64)>,
}

impl FlowQuery<'_> {
    /// Whether anything narrows the flows (a filter, not a limit or order).
    pub fn filters(&self) -> bool {
        self.where_.is_some()
            || !self.grep.is_empty()
            || !self.hosts.is_empty()
            || self.since_ns.is_some()
            || self.until_ns.is_some()
            || !self.in_files.is_empty()
    }
}

/// The condition for keyset paging past (`v`, `id`) in the order
/// `sort` (then flow id), ascending or not; SQLite sorts NULL first.
fn after_sql(
    sort: Option<&str>,
    desc: bool,
    v: &Value,
    id: u64,
    params: &mut Vec<Value>,
) -> String {
    params.push(Value::Integer(id as i64));
    let id_at = params.len();
    let (cmp, id_cmp) = if desc { ("<", "<") } else { (">", ">") };
    let Some(col) = sort else {
        return format!(" AND flow_id {id_cmp} ?{id_at}");
    };
    if *v == Value::Null {
        return if desc {
            format!(" AND {col} IS NULL AND flow_id < ?{id_at}")
        } else {
            format!(" AND ({col} IS NOT NULL OR flow_id > ?{id_at})")
        };
    }
    params.push(v.clone());
    let v_at = params.len();
    let nulls = if desc {
        format!(" OR {col} IS NULL")
    } else {
        String::new()
    };
    format!(" AND ({col} {cmp} ?{v_at} OR ({col} = ?{v_at} AND flow_id {id_cmp} ?{id_at}){nulls})")
}

/// The query behind `pcapidx flows`, and its parameters. The sort column
/// must be one of [`sort_columns`] (checked by the caller; anything else
/// sorts by flow id).
pub fn flows_sql(q: &FlowQuery) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    // Conditions over FLOW_FILTER's columns.
    let mut conds = String::new();
    if let Some(w) = q.where_ {
        // The line break ends a trailing `-- comment` in the expression.
        conds.push_str(&format!(" AND ({w}\n)"));
    }
    if let Some(t) = q.since_ns {
        params.push(Value::Integer(t));
        conds.push_str(&format!(" AND last_ts_ns >= ?{}", params.len()));
    }
    if let Some(t) = q.until_ns {
        params.push(Value::Integer(t));
        conds.push_str(&format!(" AND first_ts_ns <= ?{}", params.len()));
    }
    let mut greps = String::new();
    for g in q.grep {
        let g = if q.ignore_case {
            format!("(?i){g}")
        } else {
            g.clone()
        };
        params.push(Value::Text(g));
        greps.push_str(&format!(" AND {GREP_TEXT} REGEXP ?{}", params.len()));
    }
    let sort = q.sort.filter(|c| sort_columns().any(|s| s == *c));
    if let Some((v, id)) = &q.after {
        conds.push_str(&after_sql(sort, q.desc, v, *id, &mut params));
    }
    if !q.in_files.is_empty() {
        let ids: Vec<String> = q.in_files.iter().map(i64::to_string).collect();
        conds.push_str(&format!(
            " AND flow_id IN (SELECT flow_id FROM file_flows WHERE file_id IN ({}))",
            ids.join(", ")
        ));
    }
    let hosts = hosts_sql(q.hosts, &mut params);
    let dir = if q.desc { " DESC" } else { "" };
    let mut sql = if q.table && !q.ids_only {
        let mut sql = format!(
            "SELECT {FLOW_TABLE_COLUMNS} FROM conversations c JOIN {FLOW_FILTER} f USING (flow_id) WHERE 1"
        );
        // In subqueries: the expressions name columns that both sides of
        // the join have (`bytes`, `protocol`, `service`...).
        if !conds.is_empty() {
            sql.push_str(&format!(
                " AND flow_id IN (SELECT flow_id FROM {FLOW_FILTER} WHERE 1{conds})"
            ));
        }
        sql.push_str(&greps_sql(&greps));
        sql.push_str(&hosts);
        match sort {
            Some(col) => sql.push_str(&format!(" ORDER BY f.{col}{dir}, c.flow_id{dir}")),
            None => sql.push_str(&format!(" ORDER BY c.flow_id{dir}")),
        }
        sql
    } else {
        let columns = if q.ids_only { "flow_id" } else { FLOW_COLUMNS };
        let mut sql = format!("SELECT {columns} FROM {FLOW_FILTER} WHERE 1{conds}");
        sql.push_str(&greps_sql(&greps));
        sql.push_str(&hosts);
        match sort {
            Some(col) => sql.push_str(&format!(" ORDER BY {col}{dir}, flow_id{dir}")),
            None => sql.push_str(&format!(" ORDER BY flow_id{dir}")),
        }
        sql
    };
    if let Some(n) = q.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    (sql, params)
}

/// `AND flow_id IN (…)` for flows whose text matches every `--grep`.
fn greps_sql(greps: &str) -> String {
    if greps.is_empty() {
        return String::new();
    }
    format!(" AND flow_id IN (SELECT flow_id FROM conversations WHERE 1{greps})")
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

/// `pcapidx files` for people: times in UTC to the millisecond, sizes in
/// bytes, the filters and per-kind packet counts left to the other formats.
const FILES_TABLE_COLUMNS: &str = "file_id AS Id, path AS Path, status AS Status,
    format AS Format, size AS Bytes, packets AS Packets,
    (SELECT count(*) FROM file_flows ff WHERE ff.file_id = files.file_id) AS Flows,
    replace(substr(ts_iso(first_ts_ns), 1, 23), 'T', ' ') AS \"First (UTC)\",
    replace(substr(ts_iso(last_ts_ns), 1, 23), 'T', ' ') AS \"Last (UTC)\", error AS Error";

/// The query behind `pcapidx files`: every column, or the people's
/// (`table`); only the files with one of `statuses`, when any is given
/// (bound as parameters, returned beside the query).
pub fn files_sql(table: bool, statuses: &[String]) -> (String, Vec<Value>) {
    let columns = if table {
        FILES_TABLE_COLUMNS
    } else {
        FILES_COLUMNS
    };
    let mut sql = format!("SELECT {columns} FROM files");
    let params: Vec<Value> = statuses.iter().map(|s| Value::Text(s.clone())).collect();
    if !params.is_empty() {
        let marks: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" WHERE status IN ({})", marks.join(", ")));
    }
    sql.push_str(" ORDER BY file_id");
    (sql, params)
}

/// What `pcapidx macs` shows: the `macs` view with vendors, busiest first.
/// `Store::macs` computes the same rows in one scan (see summary.rs).
pub fn macs_sql(table: bool, limit: Option<u64>) -> String {
    // The addresses behind each MAC, in key order (IPv4 before IPv6).
    let ips = "(SELECT src_key AS k FROM flow_data WHERE src_mac_key = m.mac_key
                  AND src_key IS NOT NULL
                UNION SELECT dst_key FROM flow_data WHERE dst_mac_key = m.mac_key
                  AND dst_key IS NOT NULL)";
    let shown = |n: usize, sep: &str| {
        format!(
            "(SELECT group_concat(ip_text(k), '{sep}') FROM (SELECT k FROM {ips} ORDER BY k LIMIT {n}))"
        )
    };
    let count = format!("(SELECT count(*) FROM {ips})");
    let columns = if table {
        format!("mac AS MAC, mac_vendor(mac_key) AS Vendor,
         coalesce({} || CASE WHEN {count} > 3 THEN ' (+' || ({count} - 3) || ')' ELSE '' END, '') AS IPs,
         flows AS Flows, packets_sent AS Sent,
         packets_received AS Received, bytes_sent + bytes_received AS Bytes,
         replace(substr(ts_iso(first_ts_ns), 1, 19), 'T', ' ') AS First,
         replace(substr(ts_iso(last_ts_ns), 1, 19), 'T', ' ') AS Last", shown(3, ", "))
    } else {
        format!(
            "mac, mac_vendor(mac_key) AS vendor, {count} AS ip_count, {} AS ips, flows,
         packets_sent, packets_received, bytes_sent, bytes_received, first_ts_ns, last_ts_ns",
            shown(crate::summary::MAC_IPS_SHOWN, " ")
        )
    };
    let mut sql = format!(
        "SELECT {columns} FROM macs m ORDER BY packets_sent + packets_received DESC, mac_key"
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
/// A time window over flows: those with a packet in it (a flow that
/// started before `since_ns` and ended after it counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
}

impl TimeWindow {
    pub fn is_all(&self) -> bool {
        self.since_ns.is_none() && self.until_ns.is_none()
    }

    /// The condition on `flow_data` columns (times are integers: written
    /// into the SQL as numbers, so the section's query is the whole story).
    pub(crate) fn condition(&self) -> String {
        format!(
            "last_ts_ns >= {} AND first_ts_ns <= {}",
            self.since_ns.unwrap_or(i64::MIN),
            self.until_ns.unwrap_or(i64::MAX)
        )
    }

    /// `flow_data`, or the flows of the window.
    fn flow_data(&self) -> String {
        if self.is_all() {
            "flow_data".into()
        } else {
            format!("(SELECT * FROM flow_data WHERE {})", self.condition())
        }
    }

    fn flow_summary(&self) -> String {
        if self.is_all() {
            "flow_summary".into()
        } else {
            format!(
                "(SELECT * FROM flow_summary WHERE flow_id IN (SELECT flow_id FROM {}))",
                self.flow_data()
            )
        }
    }
}

pub fn summary_sections(top: u32, window: TimeWindow) -> Vec<Section> {
    let (fd, fs) = (window.flow_data(), window.flow_summary());
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
            sql: format!(
                "SELECT
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
                (SELECT coalesce(sum(out_of_line_ts), 0) FROM files) AS times_out_of_line,
                {flows} AS flows,
                {flow_bytes} AS flow_bytes,
                {since} AS window_since,
                {until} AS window_until",
                // The whole index's from the kept tallies, a window's by a scan.
                flows = if window.is_all() {
                    "(SELECT coalesce(sum(flows), 0) FROM tallies WHERE kind = 1)".to_string()
                } else {
                    format!("(SELECT count(*) FROM {fd})")
                },
                flow_bytes = if window.is_all() {
                    "(SELECT coalesce(sum(bytes), 0) FROM tallies WHERE kind = 1)".to_string()
                } else {
                    format!("(SELECT coalesce(sum(bytes_fwd + bytes_rev), 0) FROM {fd})")
                },
                since = window.since_ns.map_or("NULL".into(), |t| format!("ts_iso({t})")),
                until = window.until_ns.map_or("NULL".into(), |t| format!("ts_iso({t})")),
            ),
            single: true,
        },
        list(
            "protocols",
            "Flows by protocol",
            &format!(
                "SELECT protocol, count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes
                 FROM {fs} GROUP BY protocol ORDER BY flows DESC, protocol"
            ),
        ),
        list(
            "top_talkers",
            "Top talkers (bytes sent and received)",
            &format!(
                "SELECT ip_text(k) AS address, count(*) AS flows, sum(p) AS packets, sum(b) AS bytes
                 FROM (SELECT src_key AS k, packets_fwd + packets_rev AS p, bytes_fwd + bytes_rev AS b
                       FROM {fd} WHERE src_key IS NOT NULL
                       UNION ALL
                       SELECT dst_key, packets_fwd + packets_rev, bytes_fwd + bytes_rev
                       FROM {fd} WHERE dst_key IS NOT NULL)
                 GROUP BY k ORDER BY bytes DESC, k"
            ),
        ),
        list(
            "top_services",
            "Top services",
            &format!(
                "SELECT service, count(*) AS flows, sum(packets_fwd + packets_rev) AS packets,
                    sum(bytes_fwd + bytes_rev) AS bytes
                 FROM {fd} WHERE service IS NOT NULL
                 GROUP BY service ORDER BY flows DESC, service"
            ),
        ),
        list(
            "top_mac_vendors",
            "Top MAC vendors",
            // The `macs` view's sums, over the window's flows.
            &format!(
                "SELECT vendor, count(*) AS macs, sum(packets) AS packets
                 FROM (SELECT mac_vendor(mac_key) AS vendor, sum(p) AS packets
                       FROM (SELECT src_mac_key AS mac_key, packets_fwd + packets_rev AS p
                             FROM {fd} WHERE src_mac_key IS NOT NULL
                             UNION ALL
                             SELECT dst_mac_key, packets_fwd + packets_rev
                             FROM {fd} WHERE dst_mac_key IS NOT NULL
                                 AND dst_mac_key IS NOT src_mac_key)
                       GROUP BY mac_key)
                 GROUP BY vendor ORDER BY packets DESC, vendor"
            ),
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
