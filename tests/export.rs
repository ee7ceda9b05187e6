//! `pcapidx export` read by a real engine (DuckDB, from PyPI): two sensors'
//! exports queried together, aggregates equal to `pcapidx sql` on each
//! index, incremental exports that add exactly what changed, and a carve
//! driven by a DuckDB result equal to `pcapidx carve --flow-id`.
use std::path::Path;
use std::process::Command;

use crate::common::*;

pub(crate) fn duckdb_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Rows of a DuckDB query as JSON objects (values as text, for comparing).
pub(crate) fn duck(query: &str) -> Vec<serde_json::Value> {
    let script = format!(
        "import duckdb, json\nc = duckdb.connect()\nr = c.sql({query:?})\ncols = [d[0] for d in r.description]\nprint(json.dumps([dict(zip(cols, [str(v) for v in row])) for row in r.fetchall()]))"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A DuckDB value as text, NULL as the empty text `cell` gives it.
fn dv(v: &serde_json::Value) -> String {
    match v.as_str() {
        Some("None") | None => String::new(),
        Some(s) => s.to_string(),
    }
}

fn flows_glob(lake: &Path) -> String {
    format!(
        "read_parquet('{}/flows/*/*/*/*.parquet', hive_partitioning = true)",
        lake.display()
    )
}

/// The latest export of each flow: what every total is computed on.
fn latest(lake: &Path) -> String {
    format!(
        "(SELECT * FROM {} QUALIFY row_number() OVER (PARTITION BY sensor, flow_id ORDER BY export_version DESC) = 1)",
        flows_glob(lake)
    )
}

/// Per protocol: flows, packets, bytes, as text.
pub(crate) fn by_proto_sql(db: &Path) -> Vec<(String, String, String, String)> {
    sql(
        db,
        "SELECT proto, count(*) AS n, sum(packets_fwd + packets_rev) AS p, sum(bytes_fwd + bytes_rev) AS b
         FROM flows GROUP BY proto ORDER BY proto",
    )
    .iter()
    .map(|r| (cell(&r["proto"]), cell(&r["n"]), cell(&r["p"]), cell(&r["b"])))
    .collect()
}

pub(crate) fn by_proto_duck(lake: &Path, sensor: &str) -> Vec<(String, String, String, String)> {
    duck(&format!(
        "SELECT proto, count(*) AS n, sum(packets_fwd + packets_rev) AS p, sum(bytes_fwd + bytes_rev) AS b
         FROM {} WHERE sensor = '{sensor}' GROUP BY proto ORDER BY proto NULLS FIRST",
        latest(lake)
    ))
    .iter()
    .map(|r| {
        let t = |k: &str| match r[k].as_str() {
            Some("None") => String::new(),
            Some(s) => s.to_string(),
            None => String::new(),
        };
        (t("proto"), t("n"), t("p"), t("b"))
    })
    .collect()
}

#[test]
fn exports_are_read_by_duckdb_as_one_table_and_carved_back() {
    if !duckdb_ready() {
        skip("python3 with duckdb is missing: the Parquet export cannot be checked");
        return;
    }
    let dir = tmpdir("export");
    let lake = dir.join("lake");
    // Sensor alpha: the rotated set, in two runs with an export after each.
    let alpha = dir.join("alpha.db");
    let rotated = captures_in(&testdata("rotated"));
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut first = vec![
        "index".to_string(),
        "-q".into(),
        "--sensor".into(),
        "alpha".into(),
    ];
    first.extend(rotated[..5].iter().map(|p| path(p)));
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    pcapidx_ok(&alpha, &refs, 0);
    let out = pcapidx_ok(&alpha, &["export", lake.to_str().unwrap()], 0);
    assert!(out.contains("export 1 of sensor alpha"), "{out}");
    let after_one = duck(&format!("SELECT count(*) AS n FROM {}", flows_glob(&lake)));
    let open_then: usize = after_one[0]["n"].as_str().unwrap().parse().unwrap();
    let mut rest = vec!["index".to_string(), "-q".into()];
    rest.extend(rotated[5..].iter().map(|p| path(p)));
    let refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    pcapidx_ok(&alpha, &refs, 0);
    let out = pcapidx_ok(&alpha, &["export", "--packets", lake.to_str().unwrap()], 0);
    assert!(out.contains("packets"), "{out}");
    // Sensor beta: another set (real third-party captures where present).
    let beta = dir.join("beta.db");
    let beta_input = corpus()
        .map(|c| c.join("multi/arkime-synthetic"))
        .unwrap_or_else(|| testdata("rotated-mixed"));
    pcapidx_ok(
        &beta,
        &[
            "index",
            "-q",
            "--sensor",
            "beta",
            beta_input.to_str().unwrap(),
        ],
        0,
    );
    pcapidx_ok(&beta, &["export", lake.to_str().unwrap()], 0);

    // Each sensor's totals, through the latest version of each flow, are
    // its index's; both sensors are in the one table.
    assert_eq!(by_proto_duck(&lake, "alpha"), by_proto_sql(&alpha));
    assert_eq!(by_proto_duck(&lake, "beta"), by_proto_sql(&beta));
    let sensors = duck(&format!(
        "SELECT sensor, count(*) AS n FROM {} GROUP BY sensor ORDER BY sensor",
        latest(&lake)
    ));
    assert_eq!(sensors.len(), 2);
    // Per hour of first packet, and the top talkers, as pcapidx counts them.
    let hours = duck(&format!(
        "SELECT date || ' ' || hour AS h, count(*) AS n FROM {} WHERE sensor = 'alpha' GROUP BY 1 ORDER BY 1",
        latest(&lake)
    ));
    let want_hours = sql(
        &alpha,
        "SELECT strftime('%Y-%m-%d %H', first_ts_ns / 1e9, 'unixepoch') AS h, count(*) AS n
         FROM flows GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(hours.len(), want_hours.len());
    for (a, b) in hours.iter().zip(&want_hours) {
        assert_eq!(a["h"].as_str().unwrap(), cell(&b["h"]));
        assert_eq!(a["n"].as_str().unwrap(), cell(&b["n"]));
    }
    let talkers = duck(&format!(
        "SELECT src_ip, sum(bytes_fwd + bytes_rev) AS b FROM {} WHERE sensor = 'alpha'
         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        latest(&lake)
    ));
    let want = sql(
        &alpha,
        "SELECT src_ip, sum(bytes_fwd + bytes_rev) AS b FROM flows GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
    );
    for (a, b) in talkers.iter().zip(&want) {
        assert_eq!(dv(&a["src_ip"]), cell(&b["src_ip"]));
        assert_eq!(dv(&a["b"]), cell(&b["b"]));
    }
    // Each row names its files (what a carve needs to find the packets), as
    // the positions do.
    let named = duck(&format!(
        "SELECT flow_id, array_to_string(file_paths, '|') AS p FROM {} WHERE sensor = 'alpha' ORDER BY flow_id",
        latest(&lake)
    ));
    let want = sql(
        &alpha,
        "SELECT flow_id, group_concat(path, '|') AS p FROM (SELECT DISTINCT flow_id, file_id, path
         FROM packets JOIN files USING (file_id) ORDER BY flow_id, file_id) GROUP BY flow_id ORDER BY flow_id",
    );
    assert_eq!(named.len(), want.len());
    for (a, b) in named.iter().zip(&want) {
        assert_eq!(
            (dv(&a["flow_id"]), dv(&a["p"])),
            (cell(&b["flow_id"]), cell(&b["p"]))
        );
    }
    assert!(
        named.iter().any(|r| dv(&r["p"]).contains('|')),
        "a flow in several files"
    );
    // The packets of the second export's flows: for each flow, the rows of
    // its latest export are its positions.
    let packets = duck(&format!(
        "SELECT flow_id, count(*) AS n, min(\"offset\") AS lo, max(\"offset\") AS hi
         FROM read_parquet('{}/packets/*/*/*/*.parquet', hive_partitioning = true)
         WHERE sensor = 'alpha' GROUP BY flow_id ORDER BY flow_id",
        lake.display()
    ));
    let exported: std::collections::BTreeSet<String> = duck(&format!(
        "SELECT flow_id FROM {} WHERE sensor = 'alpha' AND export_version = 2",
        flows_glob(&lake)
    ))
    .iter()
    .map(|r| dv(&r["flow_id"]))
    .collect();
    let want: Vec<_> = sql(
        &alpha,
        "SELECT flow_id, count(*) AS n, min(offset) AS lo, max(offset) AS hi FROM packets
         GROUP BY flow_id ORDER BY flow_id",
    )
    .into_iter()
    .filter(|r| exported.contains(&cell(&r["flow_id"])))
    .collect();
    assert!(!want.is_empty());
    assert_eq!(packets.len(), want.len());
    for (a, b) in packets.iter().zip(&want) {
        for k in ["flow_id", "n", "lo", "hi"] {
            assert_eq!(dv(&a[k]), cell(&b[k]), "{k}: {a} {b:?}");
        }
    }
    // Address keys sort and range-scan across families: 16 bytes, IPv4 as
    // ::ffff:a.b.c.d, so a CIDR is a BETWEEN.
    let in_range = duck(&format!(
        "SELECT count(*) AS n FROM {} WHERE sensor = 'alpha' AND src_key BETWEEN
         from_hex('00000000000000000000ffff0a010000') AND from_hex('00000000000000000000ffff0a01ffff')",
        latest(&lake)
    ));
    let want = sql(
        &alpha,
        "SELECT count(*) AS n FROM flows WHERE src_key BETWEEN cidr_first('10.1.0.0/16') AND cidr_last('10.1.0.0/16')",
    );
    assert_eq!(dv(&in_range[0]["n"]), cell(&want[0]["n"]));
    assert_ne!(cell(&want[0]["n"]), "0");
    let v6_last = duck(&format!(
        "SELECT src_ip FROM {} WHERE sensor = 'alpha' ORDER BY src_key DESC NULLS LAST LIMIT 1",
        latest(&lake)
    ));
    assert!(
        dv(&v6_last[0]["src_ip"]).contains(':'),
        "IPv6 sorts after IPv4: {v6_last:?}"
    );
    // The second export of alpha added its new flows and the flows open at
    // the first, no more: and no file of the first was rewritten.
    let second = duck(&format!(
        "SELECT count(*) AS n FROM {} WHERE sensor = 'alpha' AND export_version = 2",
        flows_glob(&lake)
    ));
    let total: usize = sql(&alpha, "SELECT count(*) AS n FROM flows")[0]["n"]
        .as_u64()
        .unwrap() as usize;
    let second: usize = second[0]["n"].as_str().unwrap().parse().unwrap();
    assert!(second < total + open_then && second > 0);
    let v1 = duck(&format!(
        "SELECT count(*) AS n FROM {} WHERE sensor = 'alpha' AND export_version = 1",
        flows_glob(&lake)
    ));
    assert_eq!(
        v1[0]["n"].as_str().unwrap().parse::<usize>().unwrap(),
        open_then
    );

    // Compacting: one file per partition of alpha's, the same answers.
    let out = pcapidx_ok(
        &alpha,
        &["export", "--packets", "--compact", lake.to_str().unwrap()],
        0,
    );
    assert!(out.contains("compacted:"), "{out}");
    for table in ["flows", "packets"] {
        let root = lake.join(table).join("sensor=alpha");
        let mut leaves = 0;
        for date in std::fs::read_dir(&root).unwrap() {
            for hour in std::fs::read_dir(date.unwrap().path()).unwrap() {
                let files = std::fs::read_dir(hour.unwrap().path())
                    .unwrap()
                    .filter(|f| {
                        f.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|x| x == "parquet")
                    })
                    .count();
                assert_eq!(files, 1, "{table}: one file per partition");
                leaves += 1;
            }
        }
        assert!(leaves > 0);
    }
    assert_eq!(by_proto_duck(&lake, "alpha"), by_proto_sql(&alpha));
    assert_eq!(by_proto_duck(&lake, "beta"), by_proto_sql(&beta));

    // A carve driven by a DuckDB result: the bytes of `carve --flow-id`.
    let chosen = dir.join("chosen.parquet");
    duck(&format!(
        "COPY (SELECT sensor, flow_id FROM {} WHERE service = 'dns' ORDER BY sensor, flow_id) TO '{}'",
        latest(&lake),
        chosen.display()
    ));
    let ids: Vec<String> = sql(
        &alpha,
        "SELECT flow_id FROM flows WHERE service = 'dns' ORDER BY flow_id",
    )
    .iter()
    .map(|r| cell(&r["flow_id"]))
    .collect();
    assert!(!ids.is_empty());
    let by_ids = dir.join("by-ids.pcap");
    let by_from = dir.join("by-from.pcap");
    pcapidx_ok(
        &alpha,
        &[
            "carve",
            "--flow-id",
            &ids.join(","),
            "-o",
            by_ids.to_str().unwrap(),
            "-q",
        ],
        0,
    );
    // beta's rows are refused by name (exit 1), alpha's carved.
    let o = pcapidx(
        &alpha,
        &[
            "carve",
            "--from",
            chosen.to_str().unwrap(),
            "-o",
            by_from.to_str().unwrap(),
            "-q",
        ],
    );
    let beta_dns = sql(
        &beta,
        "SELECT count(*) AS n FROM flows WHERE service = 'dns'",
    )[0]["n"]
        .as_u64()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if beta_dns > 0 {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("another sensor (beta)"), "{err}");
    }
    assert_eq!(
        std::fs::read(&by_from).unwrap(),
        std::fs::read(&by_ids).unwrap()
    );
    // A sensor id is set once.
    let o = pcapidx(
        &alpha,
        &[
            "index",
            "--sensor",
            "gamma",
            testdata("rotated").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("belongs to sensor \"alpha\""));
}
