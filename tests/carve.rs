//! `pcapidx carve`: records byte for byte, in time order, from many files,
//! checked against the generator's ground truth and against tshark.
use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pcapidx_capture::CaptureReader;

use crate::common::*;

/// A record as a capture holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    ts_ns: i64,
    orig_len: u32,
    data: Vec<u8>,
    link_type: u16,
}

/// Every record of a capture, in file order, with its offset.
fn records(path: &Path) -> Vec<(u64, Rec)> {
    let mut r = CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().unwrap() {
        for m in &c.records {
            let rec = Rec {
                ts_ns: m.ts_ns,
                orig_len: m.orig_len,
                data: c.data(m).to_vec(),
                link_type: m.link_type,
            };
            out.push((m.offset, rec));
        }
    }
    out
}

fn carve(db: &Path, args: &[&str], out: &Path) -> String {
    let mut a = vec!["carve", "-o", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = pcapidx(db, &a);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// pcapidx's flow id for the flow holding the packet at (path, offset).
fn flow_at(db: &Path, path: &Path, offset: u64) -> u64 {
    let path = std::fs::canonicalize(path).unwrap();
    let q = format!(
        "SELECT p.flow_id FROM packets p JOIN files f USING (file_id) WHERE f.path = '{}' AND p.offset = {offset}",
        path.display()
    );
    sql(db, &q)[0]["flow_id"].as_u64().unwrap()
}

#[test]
fn every_flow_of_generated_runs_carves_to_its_records() {
    let dir = tmpdir("carve-gen");
    let sets = pcapidx_gen::sample::write_all(&dir).unwrap();
    let wanted = [
        "rotated-mixed",
        "overlap",
        "fragments",
        "multi-interface",
        "format-pcapng-mixed",
        "snaplen",
    ];
    let mut carved_flows = 0;
    for set in sets.iter().filter(|s| wanted.contains(&s.name.as_str())) {
        let db = dir.join(format!("{}.db", set.name));
        let set_dir = set.files[0].parent().unwrap();
        pcapidx_ok(&db, &["index", set_dir.to_str().unwrap(), "-q"], 0);
        let sources: Vec<BTreeMap<u64, Rec>> = set
            .files
            .iter()
            .map(|f| records(f).into_iter().collect())
            .collect();
        for (i, flow) in set.truth.flows.iter().enumerate() {
            let Some(first) = flow.packets.first() else {
                continue;
            };
            let id = flow_at(&db, &set.files[first.file], first.offset);
            let out = dir.join(format!("{}-{i}.cap", set.name));
            carve(&db, &["--flow-id", &id.to_string(), "-q"], &out);
            // The truth's packets, in time order, with the bytes the source files hold.
            let mut want: Vec<(i64, usize, u64)> = flow
                .packets
                .iter()
                .map(|p| (p.ts_ns, p.file, p.offset))
                .collect();
            want.sort();
            let want: Vec<Rec> = want
                .iter()
                .map(|&(_, f, off)| sources[f][&off].clone())
                .collect();
            let got: Vec<Rec> = records(&out).into_iter().map(|r| r.1).collect();
            assert_eq!(got.len(), want.len(), "{} flow {i}", set.name);
            for (n, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{} flow {i}, packet {n}", set.name);
            }
            carved_flows += 1;
        }
    }
    assert!(carved_flows > 100, "{carved_flows}");
}

#[test]
fn several_flows_merge_in_time_order_each_record_once() {
    let db = tmpdir("carve-merge").join("i.db");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rotated");
    pcapidx_ok(&db, &["index", testdata.to_str().unwrap(), "-q"], 0);
    let flows = sql(
        &db,
        "SELECT flow_id, packets_fwd + packets_rev AS n FROM flows WHERE proto = 17 OR files > 3",
    );
    let ids: Vec<String> = flows.iter().map(|f| f["flow_id"].to_string()).collect();
    let total: u64 = flows.iter().map(|f| f["n"].as_u64().unwrap()).sum();
    let out = db.with_file_name("merged.pcap");
    let mut args: Vec<&str> = Vec::new();
    for id in &ids {
        args.extend(["--flow-id", id]);
    }
    // Naming a flow twice does not duplicate its packets.
    args.extend(["--flow-id", &ids[0]]);
    carve(&db, &args, &out);
    let recs = records(&out);
    assert_eq!(recs.len() as u64, total);
    assert!(
        recs.windows(2).all(|w| w[0].1.ts_ns <= w[1].1.ts_ns),
        "not in time order"
    );
    let mut seen: Vec<&Rec> = recs.iter().map(|r| &r.1).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), recs.len(), "a record came out twice");
    // --where selects the same flows.
    let out2 = db.with_file_name("where.pcap");
    carve(&db, &["--where", "proto = 17 OR files > 3"], &out2);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn host_and_grep_carve_what_flows_lists() {
    let db = tmpdir("carve-host").join("i.db");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rotated");
    pcapidx_ok(&db, &["index", testdata.to_str().unwrap(), "-q"], 0);
    let first = sql(&db, "SELECT dst_ip FROM flows ORDER BY flow_id LIMIT 1");
    let ip = first[0]["dst_ip"].as_str().unwrap().to_string();
    let by_host = db.with_file_name("host.pcap");
    carve(&db, &["--host", &ip], &by_host);
    let by_where = db.with_file_name("host-where.pcap");
    let cond = format!("ip_in_cidr(src_ip, '{ip}') OR ip_in_cidr(dst_ip, '{ip}')");
    carve(&db, &["--where", &cond], &by_where);
    assert!(!records(&by_host).is_empty());
    assert_eq!(
        std::fs::read(&by_host).unwrap(),
        std::fs::read(&by_where).unwrap()
    );
    // With --where too, both must hold; --flow-id excludes both.
    let none = pcapidx(
        &db,
        &["carve", "--host", &ip, "--where", "1 = 0", "-o", "-"],
    );
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(none.stdout.is_empty(), "{none:?}");
    // A flow id the index does not have is not found either, and -o is
    // not created.
    let missing = db.with_file_name("missing.pcap");
    let unknown = pcapidx(
        &db,
        &[
            "carve",
            "--flow-id",
            "1",
            "--flow-id",
            "999999",
            "-o",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no flow 999999"),
        "{unknown:?}"
    );
    assert!(!missing.exists());
    let both = pcapidx(&db, &["carve", "--host", &ip, "--flow-id", "1", "-o", "-"]);
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    // --grep chooses what `flows --grep` lists.
    let by_grep = db.with_file_name("grep.pcap");
    carve(&db, &["--grep", "^udp "], &by_grep);
    let udp = db.with_file_name("udp.pcap");
    carve(&db, &["--where", "proto = 17"], &udp);
    assert!(!records(&udp).is_empty());
    assert_eq!(
        std::fs::read(&by_grep).unwrap(),
        std::fs::read(&udp).unwrap()
    );
}

#[test]
fn mixed_link_types_give_pcapng_that_tshark_reads() {
    if !have("tshark") {
        return;
    }
    let db = tmpdir("carve-links").join("i.db");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/multi-interface");
    pcapidx_ok(&db, &["index", testdata.to_str().unwrap(), "-q"], 0);
    let out = db.with_file_name("all.pcapng");
    let msg = carve(&db, &["--where", "1 = 1"], &out);
    assert!(msg.contains("as pcapng"), "{msg}");
    let o = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&out)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_id",
            "-e",
            "frame.protocols",
            "-e",
            "frame.time_epoch",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("appears to be damaged"),
        "{o:?}"
    );
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 18);
    let mut encaps = std::collections::BTreeSet::new();
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        // Each packet keeps its own encapsulation: Ethernet or raw IP.
        let encap = f[1].split(':').next().unwrap();
        assert!(matches!((f[0], encap), ("0", "eth") | ("1", "raw")), "{l}");
        encaps.insert(encap.to_string());
    }
    assert_eq!(encaps.len(), 2);
    // Forcing pcap on mixed link types is refused, and writes nothing.
    let forced = db.with_file_name("forced.pcap");
    let o = pcapidx(
        &db,
        &[
            "carve",
            "--where",
            "1 = 1",
            "--format",
            "pcap",
            "-o",
            forced.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--format pcapng"));
    assert!(!forced.exists());
}

/// The sessions of a rotated corpus set, carved from the set, hold exactly
/// the records tshark extracts for that stream from `original`. `in_order`:
/// also in the same order (false where the input goes back in time: carve
/// writes in timestamp order, tshark in input order).
fn rotated_set_matches_tshark(set: &str, original: &Path, index_args: &[&str], in_order: bool) {
    let dir = tmpdir("carve-corpus");
    let db = dir.join("i.db");
    let mut args = vec!["index", set, "-q"];
    args.extend_from_slice(index_args);
    pcapidx_ok(&db, &args, 0);
    // tshark's unambiguous streams of the original (see `corpus::tshark_streams`).
    let orig = records(original);
    let (tshark, set_aside) = crate::corpus::tshark_streams(original);
    let streams: BTreeMap<String, Vec<usize>> = tshark
        .into_iter()
        .map(|((proto, id), s)| {
            (
                format!("{}.stream eq {id}", if proto == 6 { "tcp" } else { "udp" }),
                s.frames,
            )
        })
        .collect();
    let mut checked = 0;
    let largest: Vec<String> = {
        let mut v: Vec<(&String, usize)> = streams.iter().map(|(k, v)| (k, v.len())).collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        v.iter().take(3).map(|x| x.0.clone()).collect()
    };
    let normal = |mut v: Vec<Rec>| {
        if !in_order {
            v.sort();
        }
        v
    };
    for (filter, frames) in &streams {
        let want: Vec<Rec> = normal(frames.iter().map(|&i| orig[i].1.clone()).collect());
        // Find our flow by the set's copy of the stream's first record.
        let first = &want[0];
        let rows = sql(
            &db,
            &format!(
                "SELECT DISTINCT flow_id FROM packets WHERE ts_ns = {} AND orig_len = {}",
                first.ts_ns, first.orig_len
            ),
        );
        let ids: Vec<u64> = rows
            .iter()
            .map(|r| r["flow_id"].as_u64().unwrap())
            .collect();
        let out = dir.join("s.pcap");
        let got = ids.iter().find_map(|id| {
            carve(&db, &["--flow-id", &id.to_string(), "-q"], &out);
            let got: Vec<Rec> = normal(records(&out).into_iter().map(|r| r.1).collect());
            (got == want).then_some(got)
        });
        assert!(
            got.is_some(),
            "{set}: {filter}: no flow carves to tshark's {} records",
            want.len()
        );
        // For the largest streams, check against tshark's own extraction too.
        if largest.contains(filter) {
            let t = dir.join("t.pcap");
            let st = Command::new("tshark")
                .args(["-n", "-r"])
                .arg(original)
                .args(["-Y", filter, "-w"])
                .arg(&t)
                .status()
                .unwrap();
            assert!(st.success());
            let theirs: Vec<Rec> = normal(records(&t).into_iter().map(|r| r.1).collect());
            assert_eq!(got.unwrap(), theirs, "{set}: {filter}");
        }
        checked += 1;
    }
    eprintln!("{set}: {checked} streams carved identically, {set_aside} ambiguous set aside");
    assert!(checked >= 15);
}

#[test]
fn corpus_rotated_sets_carve_like_tshark_streams() {
    let Some(corpus) = corpus() else { return };
    if !have("tshark") {
        return;
    }
    // Files that do not overlap: the unsplit original is the run.
    let ssh = corpus.join("multi/ssh-half-duplex");
    rotated_set_matches_tshark(
        ssh.to_str().unwrap(),
        &corpus.join("zeek/ssh-client-side-half-duplex.pcap"),
        &[],
        true,
    );
    // Files that overlap in time are read as their timestamp merge, so the
    // merge is the run (see multi/README.md). tshark's streams never time
    // out, and this merge goes back in time by years: timeouts are lifted.
    if !have("mergecap") {
        return;
    }
    let ark = corpus.join("multi/arkime-synthetic");
    let merged = tmpdir("carve-merge-orig").join("merged.pcap");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ark)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        Command::new("mergecap")
            .arg("-F")
            .arg("pcap")
            .arg("-w")
            .arg(&merged)
            .args(&files)
            .status()
            .unwrap()
            .success()
    );
    let lifted = [
        "--tcp-timeout",
        "1e9",
        "--tcp-closed-timeout",
        "1e9",
        "--udp-timeout",
        "1e9",
        "--other-timeout",
        "1e9",
    ];
    rotated_set_matches_tshark(ark.to_str().unwrap(), &merged, &lifted, false);
}

fn copy_dir(from: &Path, to: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(to).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            let dst = to.join(p.file_name().unwrap());
            std::fs::copy(&p, &dst).unwrap();
            out.push(dst);
        }
    }
    out.sort();
    out
}

/// Packets of flow `id` in the file named `name`, by the index.
fn packets_in(db: &Path, id: &str, name: &str) -> u64 {
    sql(
        db,
        &format!(
            "SELECT count(*) AS n FROM packets JOIN files USING (file_id)
             WHERE flow_id = {id} AND path LIKE '%/{name}'"
        ),
    )[0]["n"]
        .as_u64()
        .unwrap()
}

/// Packets in a capture, as a fresh index of it counts them.
fn packets_of(capture: &Path) -> u64 {
    let db = capture.with_extension("db");
    pcapidx_ok(&db, &["index", capture.to_str().unwrap(), "-q"], 0);
    sql(&db, "SELECT sum(packets) AS n FROM files")[0]["n"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_changed_source_file_is_left_out_naming_it() {
    let dir = tmpdir("carve-changed");
    let files = copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rotated"),
        &dir.join("caps"),
    );
    let db = dir.join("i.db");
    pcapidx_ok(&db, &["index", dir.join("caps").to_str().unwrap(), "-q"], 0);
    let id =
        sql(&db, "SELECT flow_id FROM flows ORDER BY files DESC LIMIT 1")[0]["flow_id"].to_string();
    let total = sql(
        &db,
        &format!("SELECT packets_fwd + packets_rev AS n FROM flows WHERE flow_id = {id}"),
    )[0]["n"]
        .as_u64()
        .unwrap();
    let out = dir.join("out.pcap");
    // A file that only grew (capture still running) is fine.
    let mut grown = std::fs::read(&files[2]).unwrap();
    grown.extend_from_slice(&[0u8; 100]);
    std::fs::write(&files[2], &grown).unwrap();
    carve(&db, &["--flow-id", &id, "-q"], &out);
    assert_eq!(packets_of(&out), total);
    std::fs::remove_file(&out).unwrap();
    // Each way a file stops being the one indexed: the flow's packets in
    // the other files are carved, the file is named, and the exit status is 1.
    let partial = |why: &str, name: &str, out: &Path| {
        let o = pcapidx(
            &db,
            &["carve", "--flow-id", &id, "-o", out.to_str().unwrap()],
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{why}: {err}");
        assert!(
            err.contains(name) && err.contains("left out"),
            "{why}: {err}"
        );
        err
    };
    let in3 = packets_in(&db, &id, "rotated_00003.pcap");
    let in4 = packets_in(&db, &id, "rotated_00004.pcap");
    assert!(in3 > 0 && in4 > 0);
    // Modified in the middle of the indexed part.
    let mut bytes = std::fs::read(&files[3]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&files[3], &bytes).unwrap();
    let out3 = dir.join("out3.pcap");
    let err = partial("modified", "rotated_00003.pcap", &out3);
    assert!(err.contains("modified or replaced"), "{err}");
    assert_eq!(packets_of(&out3), total - in3);
    bytes[at] ^= 0x55;
    std::fs::write(&files[3], &bytes).unwrap();
    // Truncated.
    std::fs::write(&files[4], &std::fs::read(&files[4]).unwrap()[..100]).unwrap();
    let out4 = dir.join("out4.pcap");
    let err = partial("truncated", "rotated_00004.pcap", &out4);
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(packets_of(&out4), total - in4);
    // Missing.
    std::fs::remove_file(&files[4]).unwrap();
    partial("missing", "rotated_00004.pcap", &dir.join("out5.pcap"));
    // A flow whose every packet is in a file that is gone: nothing is
    // written, to a file or to standard output.
    let lone = sql(
        &db,
        "SELECT flow_id FROM flows WHERE files = 1 AND flow_id IN
           (SELECT flow_id FROM packets JOIN files USING (file_id)
            WHERE path LIKE '%/rotated_00004.pcap') LIMIT 1",
    )[0]["flow_id"]
        .to_string();
    let o = pcapidx(
        &db,
        &["carve", "--flow-id", &lone, "-o", out.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(!out.exists(), "something was written");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rotated_00004.pcap"));
    let o2 = pcapidx(&db, &["carve", "--flow-id", &lone, "-o", "-"]);
    assert!(o2.stdout.is_empty() && o2.status.code() != Some(0));
}

#[test]
fn stdout_carve_pipes_into_tshark() {
    if !have("tshark") {
        return;
    }
    let db = tmpdir("carve-pipe").join("i.db");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rotated");
    pcapidx_ok(&db, &["index", testdata.to_str().unwrap(), "-q"], 0);
    let mut carve = bin()
        .arg("--db")
        .arg(&db)
        .args(["carve", "--where", "dst_port = 22", "-o", "-", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = carve.stdout.take().unwrap();
    let o = Command::new("tshark")
        .args(["-n", "-r", "-", "-q", "-z", "conv,tcp"])
        .stdin(pipe)
        .output()
        .unwrap();
    assert!(carve.wait().unwrap().success());
    let text = String::from_utf8_lossy(&o.stdout);
    let want = sql(
        &db,
        "SELECT packets_fwd + packets_rev AS n FROM flows WHERE dst_port = 22",
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(":22 ") && l.contains(&format!(" {want} "))),
        "{text}"
    );
}

/// The time to carve the flow starting at `first_ts` from `db` (best of 3), and its bytes.
fn timed_carve(db: &Path, first_ts: i64) -> (f64, Vec<u8>) {
    let id = sql(
        db,
        &format!("SELECT flow_id FROM flows WHERE first_ts_ns = {first_ts} AND proto = 6"),
    )[0]["flow_id"]
        .to_string();
    let out = db.with_extension("cap");
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        carve(db, &["--flow-id", &id, "-q"], &out);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, std::fs::read(&out).unwrap())
}

#[test]
fn carving_does_not_scan_files() {
    let dir = tmpdir("carve-scale");
    let run = |name: &str, total: u64| {
        let d = dir.join(name);
        let cfg = pcapidx_gen::bench::Config {
            total_bytes: total,
            file_bytes: 1 << 20,
            mean_frame: None,
            seed: 7,
        };
        pcapidx_gen::bench::write(&d, &cfg).unwrap();
        let db = dir.join(format!("{name}.db"));
        pcapidx_ok(&db, &["index", d.to_str().unwrap(), "-q"], 0);
        db
    };
    let small = run("small", 4 << 20);
    let big = run("big", 40 << 20);
    // A TCP session of the small run that spans files and closed: the same
    // session, with the same packets, is in the big run.
    let pick = sql(
        &small,
        "SELECT first_ts_ns FROM flows WHERE proto = 6 AND files >= 2 AND tcp_flags_fwd LIKE '%F%' AND tcp_flags_rev LIKE '%F%'
         ORDER BY packets_fwd + packets_rev DESC LIMIT 1",
    );
    let first_ts = pick[0]["first_ts_ns"].as_i64().unwrap();
    let (t_small, bytes_small) = timed_carve(&small, first_ts);
    let (t_big, bytes_big) = timed_carve(&big, first_ts);
    assert_eq!(
        bytes_small, bytes_big,
        "the same session carves to the same bytes"
    );
    eprintln!(
        "carve: {:.1} ms from a 4 MB run, {:.1} ms from a 40 MB run",
        t_small * 1e3,
        t_big * 1e3
    );
    assert!(
        t_big <= 2.0 * t_small + 0.02,
        "{t_big} vs {t_small}: carving reads more than the session"
    );
}

/// `-o` writes into what it names: a FIFO, a character device, a
/// descriptor (`/dev/stdout`, a shell's `>(...)`) in place; through a
/// symlink, its target (the link stays a link). Never the real /dev/null:
/// the device test makes its own node in a temporary folder.
#[test]
fn carve_output_writes_into_devices_fifos_links_and_descriptors() {
    let dir = tmpdir("carve-out-kinds");
    let db = dir.join("i.db");
    pcapidx_ok(
        &db,
        &["index", testdata("rotated").to_str().unwrap(), "-q"],
        0,
    );
    let args = ["--flow-id", "1", "-q"];
    let want_path = dir.join("want.pcap");
    carve(&db, &args, &want_path);
    let want = std::fs::read(&want_path).unwrap();
    assert!(want.len() > 24);

    // A symlink: the target gets the capture, the link stays.
    std::fs::write(dir.join("target.pcap"), b"old").unwrap();
    std::os::unix::fs::symlink("target.pcap", dir.join("link.pcap")).unwrap();
    carve(&db, &args, &dir.join("link.pcap"));
    assert!(
        std::fs::symlink_metadata(dir.join("link.pcap"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(dir.join("target.pcap")).unwrap(), want);

    // A FIFO with a reader waiting on it: the reader gets the capture.
    let fifo = dir.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    carve(&db, &args, &fifo);
    assert_eq!(reader.join().unwrap(), want);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // /dev/stdout when standard output is a pipe.
    let o = bin()
        .arg("--db")
        .arg(&db)
        .args(["carve", "-o", "/dev/stdout"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, want);

    // A shell's process substitution: /dev/fd/N, a pipe to `cat`.
    let sub = dir.join("from-substitution.pcap");
    let script = format!(
        "{bin:?} --db {db:?} carve --flow-id 1 -q -o >(cat > {sub:?}); wait",
        bin = env!("CARGO_BIN_EXE_pcapidx"),
    );
    let st = Command::new("bash").args(["-c", &script]).status().unwrap();
    assert!(st.success());
    // The substituted `cat` may finish just after bash's wait returns.
    for _ in 0..100 {
        if std::fs::read(&sub).is_ok_and(|b| b.len() == want.len()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read(&sub).unwrap(), want);

    // A character device of our own (root only: mknod needs it).
    let null = dir.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        carve(&db, &args, &null);
        let ft = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(ft.is_char_device(), "the device node was replaced");
        assert_eq!(std::fs::read(&null).unwrap(), b"");
    } else {
        skip("the character-device case: mknod needs root");
    }

    // A folder is refused, naming it, and left alone.
    let o = pcapidx(
        &db,
        &["carve", "--flow-id", "1", "-o", dir.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("folder"));
}
