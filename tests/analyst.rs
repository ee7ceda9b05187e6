//! The analyst's interface: golden outputs of `flows`, `macs` and `summary`
//! on generated captures, every format parsing, `--grep`, the views from a
//! plain SQLite client, and Community IDs and MAC vendors against tshark,
//! Arkime and Suricata on the real corpus.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// Compares `actual` with `tests/golden/NAME`; `PCAPIDX_BLESS=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("PCAPIDX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PCAPIDX_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(e, a)| e != a)
            .take(5)
            .map(|(e, a)| format!("- {e}\n+ {a}"))
            .collect();
        panic!(
            "{} differs ({} vs {} lines); first differences:\n{}\n(PCAPIDX_BLESS=1 rewrites it if the change is intended)",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn golden_outputs_of_the_listing_commands() {
    let db = indexed("golden", "rotated");
    golden("rotated-flows.txt", &pcapidx_ok(&db, &["flows"], 0));
    golden(
        "rotated-flows.csv",
        &pcapidx_ok(&db, &["flows", "--format", "csv", "--limit", "12"], 0),
    );
    golden("rotated-macs.txt", &pcapidx_ok(&db, &["macs"], 0));
    let summary = pcapidx_ok(&db, &["summary"], 0);
    let summary = summary.replace(db.to_str().unwrap(), "INDEX");
    golden("rotated-summary.txt", &summary);
}

#[test]
fn every_command_speaks_json_and_csv() {
    let db = indexed("formats", "rotated-mixed");
    let commands: [&[&str]; 4] = [
        &["flows"],
        &["files"],
        &["macs"],
        &["sql", "SELECT * FROM conversations"],
    ];
    for cmd in commands {
        let with = |format: &str| {
            let mut args = cmd.to_vec();
            args.extend(["--format", format]);
            pcapidx_ok(&db, &args, 0)
        };
        let json: Value = serde_json::from_str(&with("json")).unwrap();
        let rows = json
            .as_array()
            .unwrap_or_else(|| panic!("{cmd:?}: not an array"));
        assert!(!rows.is_empty(), "{cmd:?}");
        let jsonl = with("jsonl");
        assert_eq!(jsonl.lines().count(), rows.len(), "{cmd:?}");
        for (line, row) in jsonl.lines().zip(rows) {
            assert_eq!(
                &serde_json::from_str::<Value>(line).unwrap(),
                row,
                "{cmd:?}"
            );
        }
        let csv = with("csv");
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let keys: Vec<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            header, keys,
            "{cmd:?}: the CSV header names the JSON keys, in order"
        );
        assert_eq!(csv.lines().count(), rows.len() + 1, "{cmd:?}");
    }
    let summary: Value =
        serde_json::from_str(&pcapidx_ok(&db, &["summary", "--format", "json"], 0)).unwrap();
    for key in [
        "overview",
        "protocols",
        "top_talkers",
        "top_services",
        "top_mac_vendors",
        "files_with_errors",
    ] {
        assert!(summary.get(key).is_some(), "summary has no {key}");
    }
    let flows = sql(
        &db,
        "SELECT count(*) AS n, sum(packets_fwd + packets_rev) AS p FROM flows",
    );
    assert_eq!(summary["overview"]["flows"], flows[0]["n"]);
    let by_proto: u64 = summary["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(by_proto), flows[0]["p"].as_u64());
}

/// Ids of the flows `pcapidx flows` lists with these arguments (CSV output).
fn listed(db: &Path, args: &[&str]) -> BTreeSet<u64> {
    let mut a = vec!["flows", "--format", "csv"];
    a.extend_from_slice(args);
    let out = pcapidx(db, &a);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn grep_matches_the_flow_text() {
    let db = indexed("grep", "rotated");
    let udp = listed(&db, &["--grep", "^udp "]);
    assert!(!udp.is_empty());
    assert_eq!(udp, listed(&db, &["--where", "proto = 17"]));
    let port22 = listed(&db, &["--grep", r":22( |$)"]);
    assert!(!port22.is_empty());
    assert_eq!(
        port22,
        listed(&db, &["--where", "src_port = 22 OR dst_port = 22"])
    );
    let dns = listed(&db, &["--grep", "(?i) DNS$"]);
    assert_eq!(dns, listed(&db, &["--where", "service = 'dns'"]));
    // --grep and --where together: both must hold.
    let both = listed(&db, &["--grep", "^udp ", "--where", "dst_port = 53"]);
    assert!(!both.is_empty() && both.is_subset(&udp));
    // The table form filters the same flows.
    let table = pcapidx_ok(&db, &["flows", "--grep", r":22( |$)"], 0);
    assert_eq!(table.lines().count(), port22.len() + 1);
    let out = pcapidx(&db, &["flows", "--grep", "(unclosed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--grep"));
}

/// A `--where` mistake names the expression, not the query pcapidx builds
/// around it; a trailing SQL comment in it is allowed.
#[test]
fn where_errors_name_the_expression() {
    let db = indexed("where-errors", "rotated-mixed");
    for (cmd, expr, why) in [
        (&["flows"][..], "dst_port = ", "syntax error"),
        (&["flows"], "bogus = 1", "no such column: bogus"),
        (&["carve", "-o", "-"], "dst_port = 'x", "unrecognized token"),
    ] {
        let out = pcapidx(&db, &[cmd, &["--where", expr]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?} {expr}: {out:?}");
        assert!(
            err.contains(&format!("--where {expr:?}")) && err.contains(why),
            "{err}"
        );
        assert!(!err.contains("SELECT"), "{err}");
    }
    let dns = listed(&db, &["--where", "dst_port = 53"]);
    assert!(!dns.is_empty());
    assert_eq!(dns, listed(&db, &["--where", "dst_port = 53 -- DNS"]));
}

#[test]
fn host_selects_flows_with_an_end_in_a_range() {
    let db = indexed("host", "rotated-mixed");
    let first = |cond: &str| {
        let q = format!("SELECT src_ip FROM flows WHERE {cond} ORDER BY flow_id LIMIT 1");
        let out = pcapidx_ok(&db, &["sql", "--format", "csv", &q], 0);
        out.lines().nth(1).expect("an address").to_string()
    };
    let (v4, v6) = (first("src_ip NOT LIKE '%:%'"), first("src_ip LIKE '%:%'"));
    let v4_16 = format!(
        "{}.0.0/16",
        v4.split('.').take(2).collect::<Vec<_>>().join(".")
    );
    let mut all = BTreeSet::new();
    for range in [&v4, &v4_16, &v6, &format!("{v6}/64"), "0.0.0.0/0", "::/0"] {
        let by_host = listed(&db, &["--host", range]);
        let cond = format!("ip_in_cidr(src_ip, '{range}') OR ip_in_cidr(dst_ip, '{range}')");
        assert!(!by_host.is_empty(), "{range}");
        assert_eq!(by_host, listed(&db, &["--where", &cond]), "{range}");
        all.extend(by_host);
    }
    // Repeated: any of them; with --where and --grep: all must hold.
    let either = listed(&db, &["--host", "0.0.0.0/0", "--host", "::/0"]);
    assert_eq!(either, all);
    let v6_udp = listed(&db, &["--host", "::/0", "--grep", "^udp "]);
    assert_eq!(
        v6_udp,
        listed(&db, &["--where", "proto = 17 AND src_ip LIKE '%:%'"])
    );
    let table = pcapidx_ok(&db, &["flows", "--host", &v4], 0);
    assert_eq!(
        table.lines().count(),
        listed(&db, &["--host", &v4]).len() + 1
    );
    let out = pcapidx(&db, &["flows", "--host", "10.0.0.0/33"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--host"));
}

/// The views compute everything in plain SQL: a client without pcapidx's
/// functions reads them, and gets what pcapidx's functions compute.
#[test]
fn views_read_in_a_plain_sqlite_client() {
    let db = indexed("views", "rotated-mixed");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    for view in ["flows", "flow_summary", "conversations", "macs"] {
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM (SELECT * FROM {view})"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n > 0, "{view}");
    }
    let plain: Vec<(i64, String, String)> = conn
        .prepare(
            "SELECT flow_id, start_time, coalesce(src_ip, '') FROM flow_summary ORDER BY flow_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let ours = sql(
        &db,
        "SELECT flow_id, ts_iso(first_ts_ns) AS t, coalesce(ip_text(src_key), '') AS ip
         FROM flow_data ORDER BY flow_id",
    );
    assert_eq!(plain.len(), ours.len());
    for ((id, t, ip), o) in plain.iter().zip(&ours) {
        assert_eq!(Some(*id), o["flow_id"].as_i64());
        assert_eq!(t, &cell(&o["t"]), "flow {id}");
        assert_eq!(ip, &cell(&o["ip"]), "flow {id}");
    }
    if have("sqlite3") {
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT count(*) FROM conversations")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            plain.len().to_string()
        );
    }
}

/// tshark's Community ID of the first packet of every flow equals the one
/// the index stores, except where they hash different things on purpose.
#[test]
fn community_ids_match_tshark() {
    let Some(corpus) = corpus() else { return };
    if !have("tshark") {
        return;
    }
    let mut files: Vec<PathBuf> = ["arkime", "formats", "zeek", "suricata"]
        .iter()
        .flat_map(|d| walk(&corpus.join(d)))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    // [compared, tunnels, fragments, unhashed] and errors, per file.
    let per_file = |file: &Path| -> ([usize; 4], Vec<String>) {
        let (mut compared, mut tunnels, mut fragments, mut unhashed) = (0, 0, 0, 0);
        let mut errors = Vec::new();
        // The index and tshark run every comparison shares (timeouts
        // lifted: a flow's Community ID is its 5-tuple's, whatever splits it).
        let fx = crate::corpus::fixture(file);
        let (db, theirs) = (&fx.db, &fx.community_ids);
        let flows = sql(
            db,
            "SELECT f.flow_id, f.proto, f.src_port, f.dst_port, f.community_id, min(p.offset) AS first
             FROM flows f JOIN packets p USING (flow_id)
             WHERE f.community_id IS NOT NULL GROUP BY f.flow_id",
        );
        for f in &flows {
            let offset = f["first"].as_u64().unwrap();
            let (cid, fragment) = &theirs[&offset];
            let ports: Vec<u64> = [&f["src_port"], &f["dst_port"]]
                .iter()
                .filter_map(|p| p.as_u64())
                .collect();
            // VXLAN, VXLAN-GPE, GTP-U, Teredo, Geneve; IP-in-IP, IPv6-in-IP, GRE.
            let tunnel = ports
                .iter()
                .any(|p| [4789, 4790, 2152, 3544, 6081].contains(p))
                || matches!(f["proto"].as_u64(), Some(4 | 41 | 47));
            if cid.is_empty() {
                // tshark hashes TCP, UDP, SCTP, ICMP only.
                unhashed += 1;
            } else if tunnel {
                // tshark hashes the innermost flow; pcapidx indexes the outer one.
                tunnels += 1;
            } else if *fragment {
                // tshark hashes a fragment without ports; pcapidx hashes its datagram's flow.
                fragments += 1;
            } else if cid.split(',').any(|c| c == cell(&f["community_id"])) {
                compared += 1;
            } else {
                errors.push(format!(
                    "{} flow {}: pcapidx {}, tshark {} (record at {offset})",
                    file.display(),
                    f["flow_id"],
                    f["community_id"],
                    cid
                ));
            }
        }
        ([compared, tunnels, fragments, unhashed], errors)
    };
    let results: Vec<([usize; 4], Vec<String>)> = on_four_threads(&files, per_file);
    let mut n = [0usize; 4];
    let mut errors = Vec::new();
    for (counts, errs) in results {
        for i in 0..4 {
            n[i] += counts[i];
        }
        errors.extend(errs);
    }
    let [compared, tunnels, fragments, unhashed] = n;
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    eprintln!(
        "Community IDs: {compared} equal to tshark's; set aside: {tunnels} tunnel carriers, \
         {fragments} starting with a fragment, {unhashed} tshark does not hash"
    );
    assert!(compared >= 1500, "only {compared} compared");
}

/// Arkime's sessions carry a Community ID and the vendors of their MACs;
/// Suricata's test expectations carry Community IDs too.
#[test]
fn community_ids_and_vendors_match_arkime_and_suricata() {
    let Some(corpus) = corpus() else { return };
    let (mut ids, mut vendors, mut set_aside) = (0, 0, 0);
    let mut errors = Vec::new();
    for test in walk(&corpus.join("arkime")) {
        if test.extension().is_none_or(|e| e != "test") {
            continue;
        }
        let db = tmpdir("arkime-cid").join("i.db");
        let pcap = test.with_extension("pcap");
        let out = pcapidx(&db, &["index", pcap.to_str().unwrap(), "-q"]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        let flow_of: HashMap<u64, i64> = sql(&db, "SELECT flow_id, offset FROM packets")
            .iter()
            .map(|p| {
                (
                    p["offset"].as_u64().unwrap(),
                    p["flow_id"].as_i64().unwrap(),
                )
            })
            .collect();
        let flows: HashMap<i64, serde_json::Map<String, Value>> = sql(
            &db,
            "SELECT flow_id, proto, src_port, dst_port, community_id,
                mac_vendor(src_mac) AS src_vendor, mac_vendor(dst_mac) AS dst_vendor,
                src_mac, dst_mac FROM flows",
        )
        .into_iter()
        .map(|f| (f["flow_id"].as_i64().unwrap(), f))
        .collect();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&test).unwrap()).unwrap();
        for s in json["sessions3"].as_array().unwrap() {
            let b = &s["body"];
            let Some(first) = b["packetPos"]
                .as_array()
                .and_then(|p| p.iter().find_map(Value::as_u64))
            else {
                continue;
            };
            let Some(f) = flow_of.get(&first).and_then(|id| flows.get(id)) else {
                continue;
            };
            // Tunnels, and encapsulations pcapidx keeps as layer-2 flows (ERSPAN):
            // Arkime hashes the inner flow, pcapidx indexes the outer one.
            let tunnel = [&f["src_port"], &f["dst_port"]].iter().any(|p| {
                p.as_u64()
                    .is_some_and(|p| [4789, 4790, 2152, 6081].contains(&p))
            }) || matches!(f["proto"].as_u64(), None | Some(4 | 41 | 47));
            if let Some(theirs) = b["network"]["community_id"].as_str()
                && !tunnel
            {
                // Arkime keys ICMP sessions by type; pcapidx's ICMP flow holds every type.
                // For other port-less protocols (ESP…) Arkime hashes two zero ports,
                // where the spec (and pcapidx, tshark, Zeek) hash none.
                if !matches!(f["proto"].as_u64(), Some(6 | 17 | 132)) {
                    set_aside += 1;
                    continue;
                }
                if cell(&f["community_id"]) == theirs {
                    ids += 1;
                } else {
                    errors.push(format!(
                        "{}: session {} -> {}: Arkime {theirs}, pcapidx {}",
                        test.display(),
                        b["source"],
                        b["destination"],
                        f["community_id"]
                    ));
                }
            }
            // One MAC and one vendor on a side: it must be the vendor pcapidx names.
            for (side, oui, ours, mac) in [
                ("source", "srcOui", "src_vendor", "src_mac"),
                ("destination", "dstOui", "dst_vendor", "dst_mac"),
            ] {
                let macs = b[side]["mac"].as_array();
                let theirs = b[oui].as_array();
                if let (Some([m]), Some([v])) = (macs.map(Vec::as_slice), theirs.map(Vec::as_slice))
                    && m.as_str() == Some(cell(&f[mac]).as_str())
                {
                    let v = v.as_str().unwrap();
                    if cell(&f[ours]).eq_ignore_ascii_case(v) {
                        vendors += 1;
                    } else {
                        errors.push(format!(
                            "{}: {m}: Arkime says {v:?}, pcapidx {}",
                            test.display(),
                            f[ours]
                        ));
                    }
                }
            }
        }
    }
    // Suricata's expected events for an IPv6 TLS capture.
    let dir = corpus.join("suricata/community-id-ipv6");
    let expected: BTreeSet<String> = std::fs::read_to_string(dir.join("test.yaml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("community_id: "))
        .map(str::to_string)
        .collect();
    let db = tmpdir("suricata-cid").join("i.db");
    pcapidx_ok(
        &db,
        &["index", dir.join("input.pcap").to_str().unwrap(), "-q"],
        0,
    );
    // That test runs Suricata with `community-id-seed: 7`; pcapidx stores seed 0,
    // so hash each indexed flow with seed 7 too, and check the stored one as well.
    let mut ours = BTreeSet::new();
    for f in sql(&db, "SELECT * FROM flows") {
        let ip = |k: &str| -> Vec<u8> {
            match cell(&f[k]).parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            }
        };
        let port = |k: &str| f[k].as_u64().unwrap() as u16;
        let proto = f["proto"].as_u64().unwrap() as u8;
        let (src, dst) = (ip("src_ip"), ip("dst_ip"));
        let ports = Some((port("src_port"), port("dst_port")));
        let cid = |seed| pcapidx_flow::community_id(seed, proto, &src, &dst, ports, false);
        assert_eq!(cell(&f["community_id"]), cid(0).as_str());
        ours.insert(cid(7).as_str().to_string());
    }
    assert!(expected.len() >= 2);
    assert_eq!(expected, ours, "Suricata's Community IDs (seed 7)");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    eprintln!(
        "Arkime: {ids} Community IDs and {vendors} MAC vendors agree; \
         {set_aside} port-less sessions set aside"
    );
    assert!(ids >= 200, "{ids}");
    // The Arkime corpus has 70 sides with one MAC and one vendor.
    assert!(vendors >= 60, "{vendors}");
}

/// Flows by protocol in `summary` add up to the flows table, per protocol.
#[test]
fn summary_counts_add_up() {
    let db = indexed("summary", "rotated-mixed");
    let s: Value = serde_json::from_str(&pcapidx_ok(
        &db,
        &["summary", "--format", "json", "--top", "100"],
        0,
    ))
    .unwrap();
    let ours: BTreeMap<String, u64> = s["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (cell(&p["protocol"]), p["flows"].as_u64().unwrap()))
        .collect();
    let by_number: BTreeMap<String, u64> = sql(
        &db,
        "SELECT coalesce(proto, printf('0x%04x', ethertype)) AS k, count(*) AS n FROM flows GROUP BY 1",
    )
    .iter()
    .map(|r| (cell(&r["k"]), r["n"].as_u64().unwrap()))
    .collect();
    assert_eq!(ours.values().sum::<u64>(), by_number.values().sum::<u64>());
    assert_eq!(ours.get("tcp"), by_number.get("6"));
    assert_eq!(ours.get("udp"), by_number.get("17"));
    let files = sql(&db, "SELECT count(*) AS n FROM files");
    assert_eq!(s["overview"]["files"], files[0]["n"]);
    let talkers = s["top_talkers"].as_array().unwrap();
    assert!(
        talkers
            .windows(2)
            .all(|w| w[0]["bytes"].as_u64() >= w[1]["bytes"].as_u64())
    );
}

/// Every SQL statement in docs/schema.md runs against a real index, so the
/// cookbook cannot drift from the schema.
#[test]
fn schema_doc_queries_run() {
    let db = indexed("schema-doc", "rotated");
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md"))
        .unwrap();
    let mut statements = Vec::new();
    for block in doc.split("```sql").skip(1) {
        let block = block.split("```").next().unwrap();
        let code: String = block
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        statements.extend(
            code.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    assert!(statements.len() >= 12, "{statements:?}");
    for s in &statements {
        let out = pcapidx(&db, &["sql", s, "--format", "json"]);
        assert!(out.status.success(), "{s}\n{out:?}");
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(rows.is_array(), "{s}");
    }
    // The range-scan forms and ip_in_cidr agree.
    let n = |q: &str| sql(&db, q)[0]["n"].as_u64().unwrap();
    let scan = n("SELECT count(*) AS n FROM flows WHERE dst_key BETWEEN 3221225984 AND 3221226239");
    assert!(scan > 0);
    assert_eq!(
        scan,
        n("SELECT count(*) AS n FROM flows WHERE ip_in_cidr(dst_ip, '192.0.2.0/24')")
    );
}

/// `--in-file` finds the flows with a packet in a file (by id, path or the
/// end of one), `files` counts them, and an index of an earlier schema gets
/// the table filled from its positions when it is upgraded.
#[test]
fn in_file_lists_the_flows_with_a_packet_in_the_file() {
    let db = indexed("in-file", "rotated");
    assert_kept_tables_agree(&db);
    let mut truth: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for r in sql(&db, "SELECT DISTINCT file_id, flow_id FROM packets") {
        truth
            .entry(r["file_id"].as_u64().unwrap())
            .or_default()
            .insert(r["flow_id"].as_u64().unwrap());
    }
    let files: Value =
        serde_json::from_str(&pcapidx_ok(&db, &["files", "--format", "json"], 0)).unwrap();
    let files = files.as_array().unwrap();
    let mut spanning = 0;
    for f in files {
        let id = f["file_id"].as_u64().unwrap();
        let want = truth.get(&id).cloned().unwrap_or_default();
        assert_eq!(f["flows"].as_u64(), Some(want.len() as u64), "{f}");
        if want.is_empty() {
            continue;
        }
        let path = f["path"].as_str().unwrap();
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        for by in [id.to_string(), path.to_string(), name.to_string()] {
            assert_eq!(listed(&db, &["--in-file", &by]), want, "--in-file {by}");
        }
        // A flow of the file that has packets in others as well.
        spanning += want
            .iter()
            .filter(|id| truth.values().filter(|s| s.contains(id)).count() > 1)
            .count();
    }
    assert!(spanning > 0, "the rotated set has sessions across files");
    // Two files: the flows of either; with another filter: both hold.
    let (a, b) = (truth.keys().next().unwrap(), truth.keys().nth(1).unwrap());
    let either: BTreeSet<u64> = truth[a].union(&truth[b]).copied().collect();
    let (a, b) = (a.to_string(), b.to_string());
    assert_eq!(listed(&db, &["--in-file", &a, "--in-file", &b]), either);
    let udp = listed(&db, &["--in-file", &a, "--where", "proto = 17"]);
    assert_eq!(
        udp,
        listed(&db, &["--where", "proto = 17"])
            .intersection(&truth[&a.parse().unwrap()])
            .copied()
            .collect()
    );
    // carve takes it too: the flows' packets in every file.
    let carved = pcapidx(&db, &["carve", "--in-file", &a, "-o", "-"]);
    assert!(carved.status.success(), "{carved:?}");
    // A name that matches nothing is a usage error, as a bad --where is.
    let o = pcapidx(&db, &["flows", "--in-file", "no-such.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no file of the index is named"),
        "{o:?}"
    );

    // The same name in two folders is ambiguous: the message names both.
    let dir = tmpdir("in-file-twice");
    let src = captures_in(&testdata("rotated"));
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(&src[0], dir.join(sub).join("x.pcap")).unwrap();
    }
    let twice = dir.join("i.db");
    pcapidx_ok(&twice, &["index", "-q", dir.to_str().unwrap()], 0);
    let o = pcapidx(&twice, &["flows", "--in-file", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 files of the index end with"), "{err}");
    assert!(
        err.contains("a/x.pcap") && err.contains("b/x.pcap"),
        "{err}"
    );
    assert_eq!(
        listed(
            &twice,
            &["--in-file", dir.join("a/x.pcap").to_str().unwrap()]
        ),
        listed(&twice, &[])
    );

    // An index of schema 6 is upgraded by its next run, its kept tables
    // filled from its flows and positions.
    let old = dir.join("old.db");
    std::fs::copy(&db, &old).unwrap();
    undo_schema_7(&old);
    let dirs: Vec<String> = files
        .iter()
        .filter_map(|f| f["path"].as_str())
        .map(|p| {
            Path::new(p)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut args = vec!["index", "-q"];
    args.extend(dirs.iter().map(String::as_str));
    pcapidx_ok(&old, &args, 0);
    assert_kept_tables_agree(&old);
}
