//! Files that move, repeat, vanish, come back or are rewritten: the index
//! follows them (docs/schema.md, "Files that change") and stays equal to a
//! one-shot index of the files as they now are.
use std::path::{Path, PathBuf};

use crate::common::*;

/// The bundled rotated set and, where present, two real third-party
/// captures (Arkime's rotated synthetic set), copied into `dir`.
fn captures(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut from = captures_in(&testdata("rotated"));
    if let Some(corpus) = corpus() {
        from.extend(
            captures_in(&corpus.join("multi/arkime-synthetic"))
                .into_iter()
                .take(2),
        );
    }
    from.iter()
        .map(|p| {
            let to = dir.join(p.file_name().unwrap());
            std::fs::copy(p, &to).unwrap();
            to
        })
        .collect()
}

fn index(db: &Path, paths: &[&Path]) -> String {
    let mut args = vec!["index"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    pcapidx_ok(db, &args, 0)
}

/// (file name, status) rows, sorted.
fn sorted_statuses(db: &Path) -> Vec<(String, String)> {
    let mut v = statuses(db);
    v.sort();
    v
}

/// Carving every flow out of `db` gives the bytes a one-shot index gives.
fn carves_equal(db: &Path, fresh: &Path, dir: &Path) {
    let ids = sql(db, "SELECT flow_id FROM flows ORDER BY flow_id");
    assert!(ids.len() > 10);
    let carve = |db: &Path, name: &str| {
        let out = dir.join(name);
        pcapidx_ok(
            db,
            &["carve", "--where", "1", "-o", out.to_str().unwrap(), "-q"],
            0,
        );
        std::fs::read(out).unwrap()
    };
    assert_eq!(carve(db, "moved.pcapng"), carve(fresh, "fresh.pcapng"));
}

#[test]
fn a_moved_folder_is_the_same_files() {
    let dir = tmpdir("lifecycle-moved");
    captures(&dir.join("a"));
    let db = dir.join("i.db");
    index(&db, &[&dir.join("a")]);
    let before = flow_summaries(&db);
    std::fs::rename(dir.join("a"), dir.join("b")).unwrap();
    let out = index(&db, &[&dir.join("b")]);
    let n = captures_in(&dir.join("b")).len();
    assert!(out.contains(&format!("{n} moved")), "{out}");
    assert!(out.contains("packets: 0 in 0 new flows"), "{out}");
    assert_eq!(flow_summaries(&db), before, "nothing indexed twice");
    let paths = sql(&db, "SELECT path, status FROM files");
    assert_eq!(paths.len(), n);
    for r in &paths {
        assert!(
            cell(&r["path"]).contains("/b/") && r["status"] == "ok",
            "{r:?}"
        );
    }
    let fresh = dir.join("fresh.db");
    index(&fresh, &[&dir.join("b")]);
    assert_eq!(flow_summaries(&fresh), before);
    carves_equal(&db, &fresh, &dir);
}

#[test]
fn copies_are_indexed_once() {
    let dir = tmpdir("lifecycle-copies");
    let files = captures(&dir.join("a"));
    let copies = dir.join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    // An identical copy, and a copy of the first part of another (cut at
    // an arbitrary byte, as a copy taken while it was written would be).
    std::fs::copy(&files[1], copies.join("same.pcap")).unwrap();
    let big = files
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let bytes = std::fs::read(big).unwrap();
    std::fs::write(copies.join("part.pcap"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    let fresh = dir.join("fresh.db");
    index(&fresh, &[&dir.join("a")]);
    // In one run with the originals, and in a later run.
    for (name, runs) in [("one.db", 1), ("two.db", 2)] {
        let db = dir.join(name);
        let out = if runs == 1 {
            index(&db, &[&dir.join("a"), &copies])
        } else {
            index(&db, &[&dir.join("a")]);
            index(&db, &[&copies, &dir.join("a")])
        };
        assert_eq!(flow_summaries(&db), flow_summaries(&fresh), "{name}: {out}");
        let dups = sql(
            &db,
            "SELECT d.path AS copy, o.path AS of FROM files d JOIN files o ON o.file_id = d.duplicate_of
             WHERE d.status = 'duplicate' ORDER BY d.path",
        );
        let named: Vec<(String, String)> = dups
            .iter()
            .map(|r| (file_name(&r["copy"]), file_name(&r["of"])))
            .collect();
        let big_name = big.file_name().unwrap().to_string_lossy().into_owned();
        let one_name = files[1].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            named,
            [
                ("part.pcap".into(), big_name),
                ("same.pcap".into(), one_name)
            ],
            "{name}: {out}"
        );
        assert!(out.contains("2 duplicates"), "{out}");
    }
    // A copy taken once the original grew, before the index read its end:
    // in the same run as the original's continuation, it is a duplicate of
    // it, and every packet is indexed once.
    let grown = dir.join("grown");
    std::fs::create_dir_all(&grown).unwrap();
    let original = grown.join("live.pcap");
    std::fs::write(&original, &bytes[..bytes.len() / 2]).unwrap();
    let db = dir.join("grown.db");
    // Cut inside a record: partial until the rest comes.
    pcapidx_ok(&db, &["index", "-q", grown.to_str().unwrap()], 1);
    std::fs::write(&original, &bytes).unwrap();
    std::fs::write(grown.join("copy.pcap"), &bytes).unwrap();
    let out = index(&db, &[&grown]);
    assert!(out.contains("1 duplicates"), "{out}");
    let rows = sql(
        &db,
        "SELECT d.status AS s, o.path AS of FROM files d LEFT JOIN files o ON o.file_id = d.duplicate_of
         WHERE d.path LIKE '%copy.pcap'",
    );
    assert_eq!(cell(&rows[0]["s"]), "duplicate", "{out}");
    assert_eq!(file_name(&rows[0]["of"]), "live.pcap");
    let once = dir.join("grown-once.db");
    std::fs::create_dir_all(dir.join("only")).unwrap();
    std::fs::copy(&original, dir.join("only/live.pcap")).unwrap();
    index(&once, &[&dir.join("only")]);
    assert_eq!(flow_summaries(&db), flow_summaries(&once));
}

#[test]
fn deleted_files_are_missing_and_come_back() {
    let dir = tmpdir("lifecycle-missing");
    let files = captures(&dir.join("a"));
    let db = dir.join("i.db");
    index(&db, &[&dir.join("a")]);
    let before = flow_summaries(&db);
    let kept = std::fs::read(&files[2]).unwrap();
    std::fs::remove_file(&files[2]).unwrap();
    let out = index(&db, &[&dir.join("a")]);
    assert!(out.contains("1 missing"), "{out}");
    let name = file_name(&serde_json::Value::String(
        files[2].to_string_lossy().into_owned(),
    ));
    assert!(sorted_statuses(&db).contains(&(name.clone(), "missing".into())));
    // Its flows stay.
    assert_eq!(flow_summaries(&db), before);
    // Back unchanged: `ok` again, nothing indexed twice.
    std::fs::write(&files[2], &kept).unwrap();
    index(&db, &[&dir.join("a")]);
    assert!(sorted_statuses(&db).iter().all(|s| s.1 == "ok"));
    assert_eq!(flow_summaries(&db), before);
    // Cut short, then restored: `error` while cut, `ok` with the error
    // cleared once restored.
    std::fs::write(&files[3], &std::fs::read(&files[3]).unwrap()[..1000]).unwrap();
    let o = pcapidx(&db, &["index", dir.join("a").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let rows = sql(&db, "SELECT status, error FROM files WHERE status <> 'ok'");
    assert_eq!(rows.len(), 1);
    assert!(cell(&rows[0]["error"]).contains("truncated"), "{rows:?}");
    std::fs::copy(
        captures_in(&testdata("rotated"))
            .into_iter()
            .chain(
                corpus()
                    .map(|c| captures_in(&c.join("multi/arkime-synthetic")))
                    .unwrap_or_default(),
            )
            .find(|p| p.file_name() == files[3].file_name())
            .unwrap(),
        &files[3],
    )
    .unwrap();
    index(&db, &[&dir.join("a")]);
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) AS n FROM files WHERE status <> 'ok' OR error IS NOT NULL"
        )[0]["n"],
        0
    );
    assert_eq!(flow_summaries(&db), before);
}

/// A ring buffer (`tcpdump -C -W`) rewrites its oldest file: the new
/// content is a new file, indexed; the old content's flows stay and say
/// where their packets went when carved.
#[test]
fn a_rewritten_ring_file_is_new_content() {
    let dir = tmpdir("lifecycle-ring");
    let files = captures(&dir.join("ring"));
    let db = dir.join("i.db");
    index(&db, &[&dir.join("ring")]);
    let ring_file = &files[0];
    let old_flow = sql(
        &db,
        &format!(
            "SELECT DISTINCT flow_id FROM packets JOIN files USING (file_id) WHERE path = '{}'",
            ring_file.display()
        ),
    )[0]["flow_id"]
        .to_string();
    // New traffic into the oldest file's name.
    let new = captures_in(&testdata("overlap"))[0].clone();
    std::fs::copy(&new, ring_file).unwrap();
    let out = index(&db, &[&dir.join("ring")]);
    assert!(out.contains("1 overwritten"), "{out}");
    let rows = sql(
        &db,
        &format!(
            "SELECT file_id, status, packets FROM files WHERE path = '{}' ORDER BY file_id",
            ring_file.display()
        ),
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["status"], "overwritten");
    assert_eq!(rows[1]["status"], "ok");
    // The new content is indexed as a fresh index of it would.
    let alone = dir.join("alone.db");
    index(&alone, &[&new]);
    assert_eq!(
        rows[1]["packets"],
        sql(&alone, "SELECT packets FROM files")[0]["packets"]
    );
    let o = pcapidx(
        &db,
        &[
            "carve",
            "--flow-id",
            &old_flow,
            "-o",
            dir.join("o.pcap").to_str().unwrap(),
        ],
    );
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("overwritten") && err.contains(&ring_file.display().to_string()),
        "{err}"
    );
}

/// A run under other filters, timeouts or orientation than the files were
/// indexed with says so, naming a file and what differs.
#[test]
fn other_options_than_the_files_were_indexed_with_are_named() {
    let dir = tmpdir("lifecycle-options");
    captures(&dir.join("a"));
    let db = dir.join("i.db");
    let a = dir.join("a");
    let a = a.to_str().unwrap();
    pcapidx_ok(&db, &["index", a, "-q"], 0);
    let quiet = pcapidx(&db, &["index", a, "-q"]);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    for (args, says) in [
        (
            vec!["--ignore", "192.0.2.0/24"],
            "--ignore none then, 192.0.2.0/24 now",
        ),
        (
            vec!["--udp-timeout", "30"],
            "udp=60 other=60 then, tcp=480 tcp-closed=5 udp=30",
        ),
        (
            vec!["--orient", "first-packet"],
            "other=60 then, tcp=480 tcp-closed=5 udp=60 other=60 orient=first-packet now",
        ),
    ] {
        let mut all = vec!["index", a, "-q"];
        all.extend(args);
        let o = pcapidx(&db, &all);
        assert_eq!(o.status.code(), Some(0));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("indexed earlier under other options") && err.contains(says),
            "{err}"
        );
    }
}

/// Each flow by what does not depend on where it begins: protocol, both
/// ends (either way round), packets, bytes and time span.
fn flow_extents(db: &Path) -> Vec<String> {
    let rows = sql(
        db,
        "SELECT proto, src_ip, src_port, dst_ip, dst_port, packets_fwd + packets_rev AS packets,
                bytes_fwd + bytes_rev AS bytes, first_ts_ns, last_ts_ns
         FROM flows",
    );
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut ends = [
                format!("{}:{}", cell(&r["src_ip"]), cell(&r["src_port"])),
                format!("{}:{}", cell(&r["dst_ip"]), cell(&r["dst_port"])),
            ];
            ends.sort();
            format!(
                "{} {} {} {} {} {} {}",
                cell(&r["proto"]),
                ends[0],
                ends[1],
                cell(&r["packets"]),
                cell(&r["bytes"]),
                cell(&r["first_ts_ns"]),
                cell(&r["last_ts_ns"])
            )
        })
        .collect();
    v.sort();
    v
}

/// Every packet position, by file name.
fn positions_by_name(db: &Path) -> Vec<String> {
    let rows = sql(
        db,
        "SELECT path, offset, ts_ns, caplen FROM packets JOIN files USING (file_id)",
    );
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                file_name(&r["path"]),
                cell(&r["offset"]),
                cell(&r["ts_ns"]),
                cell(&r["caplen"])
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn forgotten_files_leave_the_index_as_if_never_indexed() {
    let dir = tmpdir("lifecycle-forget");
    let files = captures(&dir.join("a"));
    let db = dir.join("i.db");
    index(&db, &[&dir.join("a")]);
    let gone = [&files[0], &files[1]];
    let out = pcapidx_ok(
        &db,
        &[
            "forget",
            gone[0].to_str().unwrap(),
            gone[1].to_str().unwrap(),
        ],
        0,
    );
    assert!(out.contains("forgot 2 files (80 packets)"), "{out}");
    assert!(out.contains("kept with packets in other files"), "{out}");
    // The same packets, in flows of the same extent, as an index of the
    // files kept: sessions that began in a forgotten file keep the rest.
    let kept = dir.join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    for f in &files[2..] {
        std::fs::copy(f, kept.join(f.file_name().unwrap())).unwrap();
    }
    let fresh = dir.join("fresh.db");
    index(&fresh, &[&kept]);
    assert_eq!(positions_by_name(&db), positions_by_name(&fresh));
    assert_kept_tables_agree(&db);
    assert_eq!(flow_extents(&db), flow_extents(&fresh));
    let statuses = sorted_statuses(&db);
    for f in gone {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            statuses.contains(&(name, "forgotten".into())),
            "{statuses:?}"
        );
    }
    // Every flow left carves; the folder indexed again leaves the
    // forgotten files alone.
    carves_equal(&db, &fresh, &dir);
    let again = index(&db, &[&dir.join("a")]);
    assert!(again.contains("packets: 0 in 0 new flows"), "{again}");
    assert_eq!(positions_by_name(&db), positions_by_name(&fresh));
    assert_kept_tables_agree(&db);
    // New content at a forgotten path is indexed.
    std::fs::copy(&files[2], gone[0]).unwrap();
    let again = index(&db, &[&dir.join("a")]);
    assert!(again.contains("1 duplicates"), "{again}");
    // A path that names nothing in the index says so.
    let o = pcapidx(&db, &["forget", dir.join("nothing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no file under this path"));
}

/// `--retain AGE` forgets files whose last packet is older than AGE before
/// the newest one, and nothing of them stays in any flow.
#[test]
fn retain_forgets_what_is_older_than_the_age() {
    let dir = tmpdir("lifecycle-retain");
    let rotated = testdata("rotated");
    let db = dir.join("i.db");
    let out = pcapidx(
        &db,
        &["index", "--retain", "30s", rotated.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--retain: forgot 7 files"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let newest = sql(&db, "SELECT max(last_ts_ns) AS t FROM files")[0]["t"]
        .as_i64()
        .unwrap();
    for r in sql(
        &db,
        "SELECT status, last_ts_ns FROM files WHERE packets > 0",
    ) {
        let old = r["last_ts_ns"].as_i64().unwrap() < newest - 30_000_000_000;
        assert_eq!(cell(&r["status"]) == "forgotten", old, "{r:?}");
    }
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) AS n FROM packets JOIN files USING (file_id)
             WHERE status = 'forgotten'"
        )[0]["n"],
        0
    );
    let left = sql(&db, "SELECT min(first_ts_ns) AS t FROM flows")[0]["t"]
        .as_i64()
        .unwrap();
    assert!(
        left >= newest - 60_000_000_000,
        "no flow is all old packets"
    );
}

/// `index --reindex` reads files again under this run's options; every
/// file sharing a flow with them is read too, so the index equals one made
/// from scratch under those options.
#[test]
fn reindex_reads_files_again_under_the_current_options() {
    let dir = tmpdir("lifecycle-reindex");
    let files = captures(&dir.join("a"));
    let a = dir.join("a");
    let fresh = dir.join("fresh.db");
    index(&fresh, &[&a]);
    // Indexed under other options, then all of it read again without them.
    let db = dir.join("i.db");
    pcapidx_ok(
        &db,
        &[
            "index",
            "-q",
            "--ignore",
            "192.0.2.0/24",
            a.to_str().unwrap(),
        ],
        0,
    );
    assert_ne!(flow_summaries(&db), flow_summaries(&fresh));
    let warned = pcapidx(&db, &["index", a.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&warned.stderr).contains("--reindex"),
        "the warning says how to apply the options"
    );
    let out = pcapidx_ok(&db, &["index", "--reindex", a.to_str().unwrap()], 0);
    assert!(
        out.contains(&format!("{} files named", files.len())),
        "{out}"
    );
    assert_eq!(flow_summaries(&db), flow_summaries(&fresh));
    assert_eq!(positions_by_name(&db), positions_by_name(&fresh));
    assert_kept_tables_agree(&db);
    // One file named: the files sharing its sessions are read with it, the
    // others are left as they were.
    let rotated = files
        .iter()
        .find(|f| f.to_string_lossy().contains("rotated_00003"))
        .unwrap();
    let before = sql(&db, "SELECT path, indexed_at_ns FROM files ORDER BY path");
    let out = pcapidx_ok(&db, &["index", "--reindex", rotated.to_str().unwrap()], 0);
    assert!(out.contains("1 file named"), "{out}");
    assert_eq!(flow_summaries(&db), flow_summaries(&fresh));
    assert_eq!(positions_by_name(&db), positions_by_name(&fresh));
    assert_kept_tables_agree(&db);
    let after = sql(&db, "SELECT path, indexed_at_ns FROM files ORDER BY path");
    let read_again = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b["indexed_at_ns"] != a["indexed_at_ns"])
        .count();
    let in_all: usize = out
        .lines()
        .find(|l| l.starts_with("reindex:"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|w| w.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(read_again, in_all, "{out}");
    assert!(in_all > 1 && in_all <= files.len(), "{out}");
}

/// Older files indexed after newer ones: the run says sessions crossing
/// the boundary may be split, and `--reindex` of the folder makes them
/// what one run over all files makes.
#[test]
fn backfilled_files_are_named_and_reindex_joins_their_sessions() {
    let dir = tmpdir("lifecycle-backfill");
    let a = dir.join("a");
    std::fs::create_dir_all(&a).unwrap();
    let rotated = captures_in(&testdata("rotated"));
    for f in &rotated {
        std::fs::copy(f, a.join(f.file_name().unwrap())).unwrap();
    }
    let db = dir.join("i.db");
    let newer: Vec<String> = rotated[4..]
        .iter()
        .map(|f| {
            a.join(f.file_name().unwrap())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["index", "-q"];
    args.extend(newer.iter().map(String::as_str));
    pcapidx_ok(&db, &args, 0);
    let out = pcapidx(&db, &["index", a.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("4 files hold older packets") && err.contains("may be split"),
        "{err}"
    );
    let fresh = dir.join("fresh.db");
    index(&fresh, &[&a]);
    assert_ne!(
        flow_summaries(&db),
        flow_summaries(&fresh),
        "split sessions"
    );
    pcapidx_ok(&db, &["index", "-q", "--reindex", a.to_str().unwrap()], 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&fresh));
    assert_eq!(positions_by_name(&db), positions_by_name(&fresh));
    assert_kept_tables_agree(&db);
}
