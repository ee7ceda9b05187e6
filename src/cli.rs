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
  pcapidx sql \"SELECT src_ip, sum(bytes_fwd) FROM flows GROUP BY 1 ORDER BY 2 DESC LIMIT 10\"

The tables and views are documented in docs/schema.md.";

/// Index packet captures once, then query flows with SQL and carve sessions in milliseconds.
#[derive(Debug, Parser)]
#[command(name = "pcapidx", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The index database.
    #[arg(long, global = true, env = "PCAPIDX_DB", default_value = "pcapidx.db")]
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
    Files(FormatArg),
    /// Write the packets of flows as a new capture, reading only their records.
    Carve(CarveArgs),
    /// Run a read-only SQL query against the index.
    Sql(SqlArgs),
    /// Write synthetic captures with known content (for trying pcapidx and benchmarks).
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Files are recognised by their magic number, whatever their name: pcap (either byte
order, µs or ns) and pcapng. Folders are walked recursively. Records of all files are
read in timestamp order, so sessions continue across rotated files.

On a terminal, stderr shows a progress bar (bytes, speed, ETA, files) and, once every
byte is read, what is left to do (saving open flows, building indexes); when stderr is
not a terminal only the summary is printed, and --quiet drops that too.

Exit status: 0 when every capture file was indexed completely (unchanged files and
files that are not captures do not count against it); 1 when some capture file failed,
was read only in part, or was skipped by --max-file-size, the rest being indexed;
2 for usage errors and fatal errors.")]
pub struct IndexArgs {
    /// Capture files and folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

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

    /// Cores to use [default: all]: 1 runs everything on one thread; 2 or
    /// more run a reader, the flow tracker, a writer and a checkpointer side
    /// by side, decoder threads beyond two, and N-1 sorting threads for the
    /// index build at the end.
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Skip files larger than this (e.g. 500M, 2G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,

    /// Commit every N packets: less work is lost if indexing is interrupted.
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub checkpoint_packets: u64,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "\
--where takes an SQL expression over the flows columns: flow_id, proto, src_ip, src_port,
dst_ip, dst_port, ethertype, vlan, vlan_inner, first_ts_ns, last_ts_ns, packets_fwd,
packets_rev, bytes_fwd, bytes_rev, tcp_flags_fwd, tcp_flags_rev, src_mac, dst_mac, files,
service, community_id, src_key, dst_key; and the functions ip_in_cidr(ip, cidr),
cidr_first(cidr), cidr_last(cidr), ip_key(ip), ts_iso(ns), mac_vendor(mac).
--host 10.20.0.0/16 selects flows with either end in a range through the address
indexes; comparing src_ip/dst_ip (computed text) reads every flow. In --where, a range
scan on one end uses the index too:
  --where \"dst_key BETWEEN cidr_first('10.20.0.0/16') AND cidr_last('10.20.0.0/16')\"

The table shows Id, Proto, Src, Dst, Flags (forward/reverse), FCount and RCount
(packets each way), Bytes, Start, Duration (s), Service, cut to the terminal's width.
csv, json and jsonl write every flows column instead.
Exit status 1 when no flow matches.")]
pub struct FlowsArgs {
    /// SQL expression selecting flows, e.g. "proto = 6 AND dst_port = 443".
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,

    /// Regular expression over a flow's text: protocol, source and destination
    /// (address:port) and service, e.g. "10\.1\.2\.3:" or "(?i)dns|ntp".
    #[arg(long, value_name = "REGEX", value_parser = parse_grep)]
    pub grep: Option<String>,

    /// Only flows with an end (source or destination) at this address or in
    /// this range; repeat for any of several. Uses the address indexes, so it
    /// stays fast on any number of flows.
    #[arg(long, value_name = "IP[/LEN]", value_parser = parse_host)]
    pub host: Vec<IpNet>,

    /// Show at most N flows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each address seen as the source or destination MAC of a flow (the MACs of its first
packet that carries any), with the flows it is in, packets and bytes sent (forward
packets of flows it started, reverse ones of flows it answered) and received, first
and last time, and its vendor from the IEEE registry shipped with pcapidx. Broadcast,
multicast and locally administered addresses are labelled as such.")]
pub struct MacsArgs {
    /// Show at most N addresses (the busiest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// How many entries the top lists hold.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: u32,

    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Packets come out in timestamp order, each record as it was captured (timestamp,
original length, captured bytes). The capture is pcap when every packet has the same
link type (nanosecond timestamps if any source has them), pcapng with one interface per
link type otherwise. Source files are checked to be the ones indexed before anything
is written; a file that changed is an error naming it.

Exit status 1, and nothing written, when no flow matches or a --flow-id is not in the
index.

Examples:
  pcapidx carve --flow-id 42 -o session.pcap
  pcapidx carve --where \"dst_port = 53\" -o - | tshark -r -
  pcapidx carve --host 10.1.2.3 -o host.pcap")]
#[command(group(
    clap::ArgGroup::new("flows").required(true).multiple(true)
        .args(["flow_id", "where_", "host", "grep"])
))]
pub struct CarveArgs {
    /// A flow to carve (repeatable; several are merged in time order).
    #[arg(
        long = "flow-id",
        value_name = "ID",
        conflicts_with_all = ["where_", "host", "grep"]
    )]
    pub flow_id: Vec<u64>,

    /// Carve every flow matching this SQL expression over the flows columns.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,

    /// Carve every flow with an end at this address or in this range
    /// (repeatable: any of them; with --where, both must hold), found through
    /// the address indexes.
    #[arg(long, value_name = "IP[/LEN]", value_parser = parse_host)]
    pub host: Vec<IpNet>,

    /// Carve every flow whose text (protocol, source and destination, service)
    /// matches this regular expression, as `pcapidx flows --grep` lists them.
    #[arg(long, value_name = "REGEX", value_parser = parse_grep)]
    pub grep: Option<String>,

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
#[command(after_help = "\
Tables and views: flows, flow_summary, conversations, macs, files, interfaces,
services, ip_protocols, ethertypes, link_type_names, and packets (one row per
packet; filter on flow_id). Functions: ip_in_cidr(ip, cidr), ip_key(ip), cidr_first(cidr),
cidr_last(cidr), ip_text(key), ts_iso(ns), mac_vendor(mac), and X REGEXP 'pattern'.
See docs/schema.md for every column and a cookbook of queries.

Example:
  pcapidx sql \"SELECT protocol, count(*) FROM flow_summary GROUP BY 1 ORDER BY 2 DESC\"")]
pub struct SqlArgs {
    /// The query (read-only: statements that write are refused).
    pub query: String,

    #[command(flatten)]
    pub format: FormatArg,
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
