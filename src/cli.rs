//! Command-line interface definitions.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pcapidx_store::IpNet;

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 something was not found or not done completely
(a capture file failed or was read only in part, no flow matched); 2 usage
or fatal error (unusable index, bad arguments).

Examples:
  pcapidx index /captures/                 index a folder (again: only what is new)
  pcapidx summary                          what is in the index
  pcapidx flows --where \"dst_port = 443\" --format csv
  pcapidx flows --grep '10\\.1\\.2\\.3:|dns'
  pcapidx carve --flow-id 42 -o - | tshark -r -
  pcapidx follow --flow-id 42
  pcapidx sql \"SELECT src_ip, sum(bytes_fwd) FROM flows GROUP BY 1 ORDER BY 2 DESC LIMIT 10\"

The tables and views are documented in docs/schema.md.";

/// Index packet captures once, then query flows with SQL and carve sessions in milliseconds.
#[derive(Debug, Parser)]
#[command(name = "pcapidx", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The index database (also accepted after the command).
    #[arg(long, env = "PCAPIDX_DB", default_value = "pcapidx.db")]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index capture files and folders (re-running indexes only what is new).
    Index(IndexArgs),
    /// List flows (sessions).
    Flows(FlowsArgs),
    /// List the MAC addresses seen, with their vendors and traffic.
    Macs(MacsArgs),
    /// Show an overview of the index: files, time span, protocols, top talkers.
    Summary(SummaryArgs),
    /// List the files the index knows, with their status.
    Files(FilesArgs),
    /// Write the packets of flows as a new capture, reading only their records.
    Carve(CarveArgs),
    /// Print the reassembled payload of flows (TCP streams, datagrams), with gaps.
    Follow(FollowArgs),
    /// Run a read-only SQL query against the index.
    Sql(SqlArgs),
    /// Remove files from the index: their packets, and flows left with none.
    Forget(ForgetArgs),
    /// Share the index in a web page and a JSON API, live as it is indexed.
    Serve(ServeArgs),
    /// Write the flows and files as hive-partitioned Parquet (incrementally).
    Export(ExportArgs),
    /// Write synthetic captures with known content (for trying pcapidx and benchmarks).
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Files are recognised by their magic number, whatever their name: pcap (either byte
order, µs or ns) and pcapng. Folders are walked recursively. Records of all files are
read in timestamp order, so sessions continue across rotated files.

Re-runs bring the index up to date with the files: grown files are continued, moved
files keep their rows (found by content at the new path), copies of indexed files are
recorded as duplicates and not indexed again, files gone from a folder named are
marked missing (their flows stay), and a path rewritten with other content (a ring
buffer) is indexed as a new file, its earlier content marked overwritten.

With --watch, indexing goes on after what is there: new files, records appended to
the file being written (a record only partly written waits for the next look),
rotated, overwritten, moved and deleted files. Changes are read and committed at least
every --commit-interval, so `pcapidx flows`, `pcapidx sql` and any SQLite client see
a packet's flow, with its current counts, about a second after it is written; file
notifications say where to look, and every input is walked again each
--rescan-interval. Ctrl-C or SIGTERM stops it: what was read is committed, one line
says what was indexed, and the exit status is 0. A tcpdump ring buffer, followed:
  tcpdump -i eth0 -C 100 -W 20 -w /spool/ring.pcap &
  pcapidx --db spool.db index --watch /spool/

On a terminal, stderr shows a progress bar (bytes, speed, ETA, files) and, once every
byte is read, what is left to do (saving open flows, building indexes); with --watch,
a status line (files, packets, rate, flows, lag behind the writer). When stderr is not
a terminal only the summary is printed (with --watch, at most a line a minute), and
--quiet drops that too.

Exit status: 0 when every capture file was indexed completely (unchanged files and
files that are not captures do not count against it); 1 when some capture file failed,
was read only in part, or was skipped by --max-file-size, the rest being indexed;
2 for usage errors and fatal errors; 130 when interrupted (Ctrl-C): what was read is
committed, and running the same command again continues from there.")]
pub struct IndexArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// Capture files and folders, and objects in S3-compatible storage:
    /// `s3://BUCKET/KEY` (one object) or `s3://BUCKET/PREFIX/` (every
    /// capture under it). Objects are read in place (streamed once, never
    /// copied to disk) and re-runs skip those whose ETag and size are
    /// unchanged. Credentials and region come from the AWS environment
    /// variables or profile files; AWS_ENDPOINT_URL names an S3-compatible
    /// store (path-style; plain http only when it says `http://`). A
    /// capture on a web server that answers range requests is named by its
    /// `http(s)://HOST/PATH` URL.
    #[arg(required_unless_present = "s3_event")]
    pub paths: Vec<PathBuf>,

    /// Index the objects an S3 event notification says were created (the
    /// JSON AWS sends to Lambda, SQS, SNS or a webhook; `-` reads standard
    /// input). Test events and other records are skipped with a note, a
    /// repeated event changes nothing, and a malformed one is an error
    /// (exit 2) with nothing written. The event's size is checked against
    /// --max-file-size and its ETag against the index before any request.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["watch", "reindex"])]
    pub s3_event: Option<PathBuf>,

    /// Do not index packets with either endpoint in this range (repeatable).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub ignore: Vec<pcapidx_index::IpNet>,

    /// Read more ignored ranges from a file: one CIDR per line, `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,

    /// Idle seconds after which a TCP flow ends.
    #[arg(long, value_name = "S", default_value_t = 480.0, value_parser = parse_seconds)]
    pub tcp_timeout: f64,

    /// Idle seconds after which a TCP flow that has closed (FIN both ways, or
    /// RST) ends; later packets of its ports start a new flow.
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = parse_seconds)]
    pub tcp_closed_timeout: f64,

    /// Idle seconds after which a UDP flow ends.
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = parse_seconds)]
    pub udp_timeout: f64,

    /// Idle seconds after which any other flow ends.
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = parse_seconds)]
    pub other_timeout: f64,

    /// How a flow's src (its client) is chosen: `evidence` (a TCP SYN's
    /// sender, a SYN-ACK's receiver, else the end not on a server port when
    /// the other is: a session first seen mid-stream is turned, and its
    /// `turned` column says why), or `first-packet` (the sender of the first
    /// packet, a SYN-ACK's receiver: tshark's conversations). Applies to the
    /// flows that start in this run; files indexed under the other rule are
    /// named on stderr (`--reindex` reads them again).
    #[arg(long, value_enum, default_value = "evidence")]
    pub orient: OrientArg,

    /// Cores to use [default: all]: 1 runs everything on one thread; 2 or
    /// more run a reader, the flow tracker, a writer and a checkpointer side
    /// by side, decoder threads beyond two, and N-1 sorting threads for the
    /// index build at the end.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    /// Skip files larger than this (e.g. 500M, 2G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,

    /// Commit every N packets: less work is lost if indexing is interrupted.
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub checkpoint_packets: u64,

    /// The sensor id this index's exports carry (`pcapidx export`), set by
    /// the run that makes the index [default: the host name and a random
    /// suffix, made once].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Read the files named again under this run's options (e.g. other
    /// --ignore ranges or timeouts), replacing what the index holds of them;
    /// every file that shares a flow with them is read again too, so that
    /// the flows are what indexing them from scratch gives.
    #[arg(long, conflicts_with = "watch")]
    pub reindex: bool,

    /// Keep running: follow the files as they are written, rotated,
    /// overwritten, moved and deleted, until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub watch: bool,

    /// With --watch: the longest a written packet waits to be committed
    /// (e.g. 1s, 500ms).
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration, requires = "watch")]
    pub commit_interval: std::time::Duration,

    /// With --watch: walk every input again this often, whatever file
    /// notifications said (they can be lost, or missing on network file
    /// systems); s3:// inputs, which send none, are listed again this often.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration, requires = "watch")]
    pub rescan_interval: std::time::Duration,

    /// Forget files whose last packet is older than AGE before the newest
    /// packet indexed (e.g. 30d, 12h), after the run and, with --watch,
    /// after each rescan: bounds the index of a sensor that runs for months.
    /// Flows keep their rows while they have packets in files kept.
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    pub retain: Option<std::time::Duration>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--db` after the command (`pcapidx flows --db x.db`), for the commands
/// that use an index; `generate` writes none, so it neither takes nor lists it.
#[derive(Debug, Args, Clone)]
pub struct DbArg {
    /// The index database [default: the one before the command, $PCAPIDX_DB, or pcapidx.db].
    #[arg(long = "db", value_name = "DB")]
    db: Option<PathBuf>,
}

impl DbArg {
    /// This command's index: its own `--db`, else the one given before it.
    pub fn or<'a>(&'a self, before: &'a std::path::Path) -> &'a std::path::Path {
        self.db.as_deref().unwrap_or(before)
    }
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// Only files with this status (repeatable): ok, partial, error,
    /// not-a-capture, skipped, indexing, missing, overwritten, duplicate,
    /// forgotten.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Vec<String>,

    #[command(flatten)]
    pub format: FormatArg,
}

fn parse_status(s: &str) -> Result<String, String> {
    pcapidx_store::FileStatus::parse(s)
        .map(|st| st.as_str().to_string())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a status: ok, partial, error, not-a-capture, skipped, indexing, \
                 missing, overwritten, duplicate, forgotten"
            )
        })
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OrientArg {
    Evidence,
    FirstPacket,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
}

impl From<Format> for pcapidx_output::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => pcapidx_output::Format::Table,
            Format::Csv => pcapidx_output::Format::Csv,
            Format::Json => pcapidx_output::Format::Json,
            Format::Jsonl => pcapidx_output::Format::Jsonl,
        }
    }
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// How flows are chosen, the same for `flows`, `carve` (and what builds on them).
#[derive(Debug, Args, Clone)]
pub struct FlowFilter {
    /// SQL expression selecting flows, e.g. "proto = 6 AND dst_port = 443"
    /// or "duration_s > 3600" (columns below).
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,

    /// Regular expression over a flow's text, `PROTOCOL SRC DST SERVICE`
    /// (e.g. "tcp 10.1.0.10:40001 198.51.100.7:22 ssh"); repeat it and every
    /// one must match.
    #[arg(long, value_name = "REGEX", value_parser = parse_grep)]
    pub grep: Vec<String>,

    /// --grep ignores case.
    #[arg(long, short = 'i', requires = "grep")]
    pub ignore_case: bool,

    /// Only flows with an end (source or destination) at this address or in
    /// this range; repeat for any of several. Uses the address indexes, so it
    /// stays fast on any number of flows.
    #[arg(long, value_name = "IP[/LEN]", value_parser = parse_host)]
    pub host: Vec<IpNet>,

    /// Only flows with a packet at or after this time: ISO 8601 (UTC unless
    /// it has a zone: 2024-03-01T10:00, 2024-03-01 10:00:00+02:00), or
    /// relative: -1h, -30m, -2d, -45s before the index's last packet, or
    /// now-1h before the clock.
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub since: Option<TimeArg>,

    /// Only flows with a packet at or before this time (as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<TimeArg>,

    /// Only flows with a packet in this file: its path as `pcapidx files`
    /// lists it, the end of one (cap-003.pcap), or its file id; repeat for
    /// any of several. An index lookup, however many flows.
    #[arg(long = "in-file", value_name = "FILE")]
    pub in_file: Vec<String>,
}

/// The flows `carve` and `follow` act on: by id, or chosen by the filters.
#[derive(Debug, Args, Clone)]
pub struct FlowChoice {
    /// Flows by id (repeatable, or a comma list: 3,7,9).
    #[arg(
        long = "flow-id",
        value_name = "ID",
        value_delimiter = ',',
        conflicts_with_all = ["where_", "host", "grep", "in_file"]
    )]
    pub flow_id: Vec<u64>,

    #[command(flatten)]
    pub filter: FlowFilter,
}

/// A time given on the command line, resolved against the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Nanoseconds since the epoch.
    At(i64),
    /// So many nanoseconds before the index's last packet.
    BeforeLast(i64),
    /// So many nanoseconds before the clock.
    BeforeNow(i64),
}

/// Text every flow command shares about choosing flows (a macro, so that
/// `concat!` can join it to each command's own text).
macro_rules! filter_help {
    () => {
        "\
--where takes an SQL expression over the flows columns: flow_id, proto, src_ip, src_port,
dst_ip, dst_port, ethertype, vlan, vlan_inner, first_ts_ns, last_ts_ns, packets_fwd,
packets_rev, bytes_fwd, bytes_rev, tcp_flags_fwd, tcp_flags_rev, src_mac, dst_mac, files,
service, community_id, src_key, dst_key, payload_fwd, payload_rev, missed_fwd, missed_rev
(payload bytes each way, and those the capture lacks); the flow_summary columns protocol, start_time,
end_time, duration_s, packets, bytes; and the functions ip_in_cidr(ip, cidr),
cidr_first(cidr), cidr_last(cidr), ip_key(ip), ts_iso(ns), ts_ns('2024-03-01T10:00Z'),
mac_vendor(mac).
--host 10.20.0.0/16 selects flows with either end in a range through the address
indexes; comparing src_ip/dst_ip (computed text) reads every flow. In --where, a range
scan on one end uses the index too:
  --where \"dst_key BETWEEN cidr_first('10.20.0.0/16') AND cidr_last('10.20.0.0/16')\"
--grep matches `PROTOCOL SRC DST SERVICE` (sockets as ADDR:PORT, [IPv6]:PORT, or the MAC
of a layer-2 flow), so ':22 ' or ':22\\b' is port 22 at the end of either socket.
--since and --until keep the flows with a packet in the window."
    };
}

#[derive(Debug, Args)]
#[command(after_help = concat!("\
The table shows Id, Proto, Src, Dst, VLAN, Flags (forward/reverse), FCount and RCount
(packets each way), Bytes, Start (UTC), Duration (s), Service, fitted to the terminal's
width (cells cut, then the rightmost columns left out). csv, json and jsonl write every
flows column instead, and all formats stream as rows come.
Exit status 1 when no flow matches.

Examples:
  pcapidx flows --sort bytes --desc --limit 10
  pcapidx flows --host 10.1.0.0/16 --since -1h
  pcapidx flows -i --grep dns --where \"duration_s > 1\"

", filter_help!()))]
pub struct FlowsArgs {
    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub filter: FlowFilter,

    /// Order by this column (any --where column, e.g. bytes, packets,
    /// duration_s, start_time), then flow id.
    #[arg(long, value_name = "COLUMN", value_parser = parse_sort)]
    pub sort: Option<String>,

    /// Largest first (with --sort; alone, the newest flow ids first).
    #[arg(long)]
    pub desc: bool,

    /// Show at most N flows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each address seen as the source or destination MAC of a flow (the MACs of its first
packet that carries any), with the IP addresses seen behind it (the table shows three
and a count of the rest; csv and json give ip_count and up to 16 in ips), the flows it
is in, packets and bytes sent (forward
packets of flows it started, reverse ones of flows it answered) and received, first
and last time, and its vendor from the IEEE registry shipped with pcapidx. Broadcast,
multicast and locally administered addresses are labelled as such.")]
pub struct MacsArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// Show at most N addresses (the busiest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// How many entries the top lists hold.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: u32,

    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormat,

    /// Count only the flows with a packet at or after this time in the flow
    /// sections (flows, protocols, talkers, services, vendors); file counts
    /// stay the whole index's. ISO 8601 or relative, as for `flows`.
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub since: Option<TimeArg>,

    /// Count only the flows with a packet at or before this time (as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<TimeArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = concat!("\
Packets come out in timestamp order, each record as it was captured (timestamp,
original length, captured bytes). The capture is pcap when every packet has the same
link type (nanosecond timestamps if any source has them), pcapng with one interface per
link type otherwise. Source files are checked to be the ones indexed before anything
is written; a file that changed is an error naming it. With --since/--until only the
packets inside the window are written.

-o FILE is written beside and renamed at the end (through a symlink, beside its
target); a FIFO, a device, /dev/stdout or /dev/fd/N is written in place.

Exit status 1, and nothing written, when no flow matches or a --flow-id is not in the
index. A source file that is gone, overwritten or changed is named and its packets are
left out: the rest is written, exit status 1 (nothing is written if nothing is left).

Examples:
  pcapidx carve --flow-id 42 -o session.pcap
  pcapidx carve --flow-id 3,7,9 -o three.pcap
  pcapidx carve --where \"dst_port = 53\" -o - | tshark -r -
  pcapidx carve --host 10.1.2.3 --since 2024-03-01T10:00 --until 2024-03-01T10:05 -o host.pcap

", filter_help!()))]
#[command(group(
    clap::ArgGroup::new("flows").required(true).multiple(true)
        .args(["flow_id", "where_", "host", "grep", "since", "until", "in_file", "from"])
))]
pub struct CarveArgs {
    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub flows: FlowChoice,

    /// The flows a query elsewhere selected (DuckDB, Spark, Trino over
    /// `pcapidx export`): a Parquet, CSV, JSON or JSON-lines file (or `-`)
    /// with a `flow_id` column and, optionally, `sensor`; rows of another
    /// sensor are refused.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["flow_id", "where_", "host", "grep", "in_file"])]
    pub from: Option<std::path::PathBuf>,

    /// Where to write the capture; `-` for standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: std::path::PathBuf,

    /// Container: pcap, pcapng, or auto (pcap unless the link types differ).
    #[arg(long, value_enum, default_value = "auto")]
    pub format: CarveFormat,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CarveFormat {
    Auto,
    Pcap,
    Pcapng,
}

#[derive(Debug, Args)]
#[command(after_help = concat!("\
Reads only the flows' records (at the index's offsets) and reassembles each direction:
TCP by sequence number (retransmissions dropped, out-of-order segments placed, the first
copy of a byte wins, sequence wrap and mid-stream starts handled), UDP and other IP flows
as one chunk per datagram with IP fragments joined. The client is the flow's src side.

Bytes that were never captured (a lost segment, a packet cut by the snaplen) are gaps:
never marker text inside the bytes. --gaps decides what raw output does with them: zero
(the default) writes that many zero bytes, so stream offsets stay true; skip leaves them
out; error stops at the first one with exit status 1. hex and ascii mark them on a line of
their own; json and jsonl give them as events. A summary line on stderr counts them.

Formats: ascii (default; tshark's -z follow,tcp,ascii layout: each chunk after its
length, the server's indented by a tab), hex (hexdump lines, server indented), raw (the
bytes; refused on a terminal), json (one array of flows, each with its events) and jsonl
(one event per line: type flow, data, gap, end; data as base64). --output-dir writes one
raw file per direction per flow, named by flow id, sender, receiver and direction
(tcpflow style: 42-010.000.000.001.40001-192.168.001.002.00080.client).

Exit status 1 when no flow matches, or --gaps error met a gap.

Examples:
  pcapidx follow --flow-id 42
  pcapidx follow --flow-id 42 --format raw --direction server > response.bin
  pcapidx follow --where \"dst_port = 80\" --output-dir streams/
  pcapidx follow --flow-id 42 --format jsonl | jq -r 'select(.type == \"gap\")'

", filter_help!()))]
#[command(group(
    clap::ArgGroup::new("flows").required(true).multiple(true)
        .args(["flow_id", "where_", "host", "grep", "since", "until", "in_file"])
))]
pub struct FollowArgs {
    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub flows: FlowChoice,

    /// Output format.
    #[arg(long, value_enum, default_value = "ascii")]
    pub format: FollowFormat,

    /// Which side's bytes: client (the flow's src), server, or both
    /// interleaved in capture order, as Wireshark shows them.
    #[arg(long, value_enum, default_value = "both")]
    pub direction: DirectionArg,

    /// What raw output does with bytes never captured.
    #[arg(long, value_enum, default_value = "zero")]
    pub gaps: GapsArg,

    /// Write one raw file per direction per flow into this folder (created
    /// if needed) instead of standard output.
    #[arg(long, value_name = "DIR", conflicts_with = "format")]
    pub output_dir: Option<PathBuf>,

    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FollowFormat {
    Ascii,
    Hex,
    Raw,
    Json,
    Jsonl,
}

impl From<FollowFormat> for pcapidx_output::follow::FollowFormat {
    fn from(f: FollowFormat) -> Self {
        use pcapidx_output::follow::FollowFormat as F;
        match f {
            FollowFormat::Ascii => F::Ascii,
            FollowFormat::Hex => F::Hex,
            FollowFormat::Raw => F::Raw,
            FollowFormat::Json => F::Json,
            FollowFormat::Jsonl => F::Jsonl,
        }
    }
}

impl From<DirectionArg> for pcapidx_output::follow::Direction {
    fn from(d: DirectionArg) -> Self {
        use pcapidx_output::follow::Direction as D;
        match d {
            DirectionArg::Client => D::Client,
            DirectionArg::Server => D::Server,
            DirectionArg::Both => D::Both,
        }
    }
}

impl From<GapsArg> for pcapidx_output::follow::Gaps {
    fn from(g: GapsArg) -> Self {
        use pcapidx_output::follow::Gaps as G;
        match g {
            GapsArg::Zero => G::Zero,
            GapsArg::Skip => G::Skip,
            GapsArg::Error => G::Error,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DirectionArg {
    Client,
    Server,
    Both,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GapsArg {
    Zero,
    Skip,
    Error,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Tables and views: flows, flow_summary, conversations, macs, files, interfaces,
services, ip_protocols, ethertypes, link_type_names, and packets (one row per
packet; filter on flow_id). Functions: ip_in_cidr(ip, cidr), ip_key(ip), cidr_first(cidr),
cidr_last(cidr), ip_text(key), ts_iso(ns), mac_vendor(mac), and X REGEXP 'pattern'.
See docs/schema.md for every column and a cookbook of queries.

Example:
  pcapidx sql \"SELECT protocol, count(*) FROM flow_summary GROUP BY 1 ORDER BY 2 DESC\"")]
pub struct SqlArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// The query (read-only: statements that write are refused).
    pub query: String,

    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Writes DEST/flows/sensor=ID/date=YYYY-MM-DD/hour=HH/vNNNNNN-K.parquet (the flows view's
columns and names, times as TIMESTAMP(NANOS, UTC), rows by first time, each hour of
first packets in its folder) and DEST/files/sensor=ID/vNNNNNN-K.parquet (the files).
Each export writes the flows new since the last one and those that were still open then
(again, with a higher export_version): earlier files are never rewritten, and the latest
export_version of each (sensor, flow_id) is the flow (docs/schema.md has the view).
Several sensors export into one DEST side by side. `pcapidx carve --from RESULT` carves
what a query over them selected, on the sensor that holds the packets.

Example (DuckDB):
  pcapidx --db sensor1.db export /data/flows-lake
  duckdb -c \"SELECT sensor, count(*) FROM read_parquet('/data/flows-lake/flows/*/*/*/*.parquet', hive_partitioning = true) GROUP BY 1\"")]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// The folder to write into (created if needed), or an object-store
    /// prefix (`s3://BUCKET/PREFIX/`, configured as for `index`): the files
    /// are staged in the temporary folder and uploaded as new objects (an
    /// object is never replaced).
    pub dest: std::path::PathBuf,

    /// Also the packets of the flows written (file, offset, time, lengths,
    /// direction: one row each) under DEST/packets/sensor=ID/date=/hour=, by
    /// the hour of each packet, for engines that answer per-packet questions.
    #[arg(long)]
    pub packets: bool,

    /// Then merge the files of each of this sensor's partitions into one
    /// (rows kept as they are; the merged file is whole before the others
    /// go), and keep only the latest files table.
    #[arg(long)]
    pub compact: bool,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Open the printed link in a browser: the overview (traffic over time, protocols, top
talkers, services), the flows (filtered as `pcapidx flows` filters them, sorted by any
column, paged through millions), a flow's detail and packets, and downloads of one flow
or of a whole filtered result as pcap. The page updates by itself while `pcapidx index`
(one-shot or --watch) commits into the index. The URL holds the view: send it to a
colleague and they see the same. The API under /api/ answers scripts with what the
command line prints (docs/api.md).

Security: the default listen address is loopback. Listening on any other address needs
a token: one is made and printed in the share link unless --token gives one (--no-auth
turns this off, explicitly). With a token set, every request must carry it, on loopback
too. Everything served is read-only: queries may only read tables (no ATTACH, PRAGMA or
writes), each is stopped after 5 s, and results are capped at 10,000 rows.

Example:
  pcapidx --db spool.db serve --listen 0.0.0.0:8080")]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// Address and port to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// The token every request must carry (by default, one is made when
    /// listening beyond loopback).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PCAPIDX_TOKEN",
        conflicts_with = "no_auth"
    )]
    pub token: Option<String>,

    /// Serve without a token even beyond loopback: anyone who can reach the
    /// port can read the index and the packets it names.
    #[arg(long)]
    pub no_auth: bool,

    /// Also take S3 event notifications POSTed to /api/s3-events (an
    /// S3-compatible store's webhook) and index the objects they name, as
    /// `pcapidx index --s3-event` does: open pages show the new flows. The
    /// one request that writes, so it needs a token, on loopback too (one is
    /// made unless --token gives one).
    #[arg(long, conflicts_with = "no_auth")]
    pub s3_events: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each file's packets leave every flow. A flow with no packet left is deleted; a flow
that also has packets in files kept keeps them, and its packet and byte counts,
first and last time and file count are recomputed from them (its TCP flags, payload
and missed bytes stay as measured over the whole session). The files' rows stay, with
status `forgotten`, so that a later `pcapidx index` of their folder leaves them alone
while they are unchanged (a file whose content changes is indexed again as new
content). A folder forgets every file under it, still there or not.

`pcapidx index --retain AGE` (with or without --watch) forgets what is older as it goes.

Exit status: 0 when every path named files in the index; 1 when some named none.")]
pub struct ForgetArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// Files and folders, as they were indexed (they need not exist any more).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Profiles: `sample` writes a few small captures in every supported format and link
type (what testdata/ holds); `bench` writes a rotated run of realistic traffic
(many short DNS/ICMP flows, TCP sessions, long sessions spanning every file).")]
pub struct GenerateArgs {
    /// Folder to write into (created if needed).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,

    #[arg(long, value_enum, default_value = "sample")]
    pub profile: Profile,

    /// bench: total size of the run (e.g. 1G).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub size: u64,

    /// bench: size of each rotated file (e.g. 100M).
    #[arg(long, value_name = "SIZE", default_value = "100M", value_parser = parse_size)]
    pub file_size: u64,

    /// bench: mean frame size in bytes (the small-packet mix is about 340).
    #[arg(long, value_name = "BYTES")]
    pub mean_frame: Option<u32>,

    /// Seed for the random traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Profile {
    Sample,
    Bench,
}

fn parse_cidr(s: &str) -> Result<pcapidx_index::IpNet, String> {
    pcapidx_index::parse_cidr(s)
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// A span of time: a number with a unit (ms, s, m, h, d); seconds without one.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => f64::NAN,
    };
    match num.parse::<f64>() {
        Ok(v) if scale.is_finite() && (v * scale).is_finite() && v * scale > 0.0 => {
            Ok(std::time::Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{s:?} is not a time: give a number with a unit, e.g. 500ms, 1s, 5m, 2h, 30d"
        )),
    }
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?}: give 1 or more cores (1 runs on one thread)"
        )),
    }
}

/// A --sort column: one that --where sees.
fn parse_sort(s: &str) -> Result<String, String> {
    let c = s.trim().to_ascii_lowercase();
    if pcapidx_store::sort_columns().any(|col| col == c) {
        Ok(c)
    } else {
        let all: Vec<&str> = pcapidx_store::sort_columns().collect();
        Err(format!(
            "{s:?} is not a flows column; one of: {}",
            all.join(", ")
        ))
    }
}

/// `2024-03-01T10:00Z`, `-1h` (before the index's last packet), `now-30m`.
pub fn parse_time(s: &str) -> Result<TimeArg, String> {
    let t = s.trim();
    let relative = |r: &str| -> Result<i64, String> {
        let unit_at = r.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(r.len());
        let (num, unit) = r.split_at(unit_at);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{s:?}: expected a number before the unit, as in -1h"))?;
        let unit_s = match unit {
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 7.0 * 86_400.0,
            _ => return Err(format!("{s:?}: units are s, m, h, d, w (as in -30m)")),
        };
        let ns = n * unit_s * 1e9;
        if !(ns.is_finite() && ns >= 0.0) {
            return Err(format!("{s:?} is not a span of time"));
        }
        Ok(ns.min(i64::MAX as f64) as i64)
    };
    if let Some(r) = t.strip_prefix("now") {
        return match r.strip_prefix('-') {
            Some(r) => relative(r).map(TimeArg::BeforeNow),
            None if r.is_empty() => Ok(TimeArg::BeforeNow(0)),
            None => Err(format!("{s:?}: write now or now-1h")),
        };
    }
    if let Some(r) = t.strip_prefix('-') {
        return relative(r).map(TimeArg::BeforeLast);
    }
    pcapidx_store::parse_iso(t).map(TimeArg::At).ok_or_else(|| {
        format!("{s:?} is not a time: use 2024-03-01T10:00:00 (UTC unless a zone follows), -1h or now-1h")
    })
}

/// An address or CIDR range, e.g. 10.1.2.3, 10.0.0.0/8, 2001:db8::/32.
fn parse_host(s: &str) -> Result<IpNet, String> {
    pcapidx_store::parse_cidr(s)
}

/// A regular expression, checked the way SQL's REGEXP will compile it.
fn parse_grep(s: &str) -> Result<String, String> {
    pcapidx_store::check_regexp(s).map(|()| s.to_string())
}

/// Sizes like 1500, 64K, 500M, 2G (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => return Err(format!("{s:?}: unknown size unit (use K, M, G or T)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s:?} is not a size"));
    }
    Ok((v * mult as f64) as u64)
}
