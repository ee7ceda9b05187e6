//! A flow's reassembled payload as `pcapidx follow` prints it: text and hex
//! as tshark's Follow Stream shows them, raw bytes, JSON, JSON lines, or one
//! raw file per direction (tcpflow's names). The command line and the server
//! print through it.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use base64::Engine;
use pcapidx_store::ts_iso;
use pcapidx_stream::{Dir, Event, Flow, FollowError, Followed};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFormat {
    Ascii,
    Hex,
    Raw,
    Json,
    Jsonl,
}

/// Which side's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Client,
    Server,
    Both,
}

/// What raw output does with bytes never captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gaps {
    Zero,
    Skip,
    Error,
}

const RULE: &str = "===================================================================";

/// One file per direction of a flow (`--output-dir`).
pub struct DirFiles {
    files: [Option<BufWriter<File>>; 2],
}

impl DirFiles {
    pub fn create(dir: &Path, flow: &Flow, which: Direction) -> io::Result<DirFiles> {
        let mut files = [None, None];
        for d in [Dir::Client, Dir::Server] {
            if !wanted(which, d) {
                continue;
            }
            let (from, to) = match d {
                Dir::Client => (Dir::Client, Dir::Server),
                Dir::Server => (Dir::Server, Dir::Client),
            };
            let name = format!(
                "{}-{}-{}.{}",
                flow.id,
                tcpflow_name(flow, from),
                tcpflow_name(flow, to),
                d.name()
            );
            let path = dir.join(name);
            let f = File::create(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("creating {}: {e}", path.display()))
            })?;
            files[d.index()] = Some(BufWriter::with_capacity(1 << 16, f));
        }
        Ok(DirFiles { files })
    }

    pub fn finish(self) -> io::Result<()> {
        for f in self.files.into_iter().flatten() {
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        Ok(())
    }
}

/// tcpflow's name for one end: IPv4 with every number zero-padded, then
/// the port, so names sort by address.
fn tcpflow_name(flow: &Flow, d: Dir) -> String {
    let (ip, port) = flow.end(d);
    let ip = ip.unwrap_or("unknown");
    let ip = match ip.parse::<std::net::Ipv4Addr>() {
        Ok(v4) => v4
            .octets()
            .iter()
            .map(|o| format!("{o:03}"))
            .collect::<Vec<_>>()
            .join("."),
        Err(_) => ip.to_string(),
    };
    format!("{ip}.{:05}", port.unwrap_or(0))
}

fn wanted(which: Direction, d: Dir) -> bool {
    match which {
        Direction::Both => true,
        Direction::Client => d == Dir::Client,
        Direction::Server => d == Dir::Server,
    }
}

/// Prints flows' events in a format, or into per-direction files.
pub struct Printer<W: Write> {
    pub format: FollowFormat,
    pub direction: Direction,
    pub gaps: Gaps,
    pub out: W,
    pub files: Option<DirFiles>,
    first_flow: bool,
    /// JSON: an event of this flow was written (the next needs a comma).
    wrote_event: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(format: FollowFormat, direction: Direction, gaps: Gaps, out: W) -> Self {
        Printer {
            format,
            direction,
            gaps,
            out,
            files: None,
            first_flow: true,
            wrote_event: false,
        }
    }

    /// Before the first flow (JSON opens its array).
    pub fn start(&mut self) -> io::Result<()> {
        if self.format == FollowFormat::Json {
            self.out.write_all(b"[")?;
        }
        Ok(())
    }

    /// After the last flow.
    pub fn close(&mut self) -> io::Result<()> {
        if self.format == FollowFormat::Json {
            self.out.write_all(b"]\n")?;
        }
        self.out.flush()
    }

    pub fn begin(&mut self, flow: &Flow) -> io::Result<()> {
        let proto = proto_name(flow);
        match self.format {
            FollowFormat::Ascii | FollowFormat::Hex => {
                let f = if self.format == FollowFormat::Ascii {
                    "ascii"
                } else {
                    "hex"
                };
                writeln!(self.out, "\n{RULE}")?;
                writeln!(self.out, "Follow: {proto},{f} (flow {})", flow.id)?;
                writeln!(self.out, "Node 0: {} (client)", flow.endpoint(Dir::Client))?;
                writeln!(self.out, "Node 1: {} (server)", flow.endpoint(Dir::Server))?;
            }
            FollowFormat::Raw => {}
            FollowFormat::Json => {
                if !self.first_flow {
                    self.out.write_all(b",")?;
                }
                let head = flow_json(flow);
                let text = head.to_string();
                // The object stays open: its events follow, then its summary.
                write!(self.out, "\n{},\"events\":[", &text[..text.len() - 1])?;
                self.wrote_event = false;
            }
            FollowFormat::Jsonl => {
                let mut head = flow_json(flow);
                head["type"] = json!("flow");
                writeln!(self.out, "{head}")?;
            }
        }
        self.first_flow = false;
        Ok(())
    }

    pub fn event(&mut self, flow: &Flow, e: &Event<'_>) -> Result<(), FollowError> {
        let dir = match *e {
            Event::Data { dir, .. } | Event::Gap { dir, .. } => dir,
        };
        if !wanted(self.direction, dir) {
            return Ok(());
        }
        if let (
            Gaps::Error,
            Event::Gap {
                offset, len, kind, ..
            },
        ) = (self.gaps, e)
        {
            return Err(FollowError::Stopped(format!(
                "{len} bytes missing at offset {offset} of the {} stream ({}); stopped there",
                dir.name(),
                kind.as_str()
            )));
        }
        if let Some(files) = &mut self.files {
            if let Some(f) = &mut files.files[dir.index()] {
                write_raw(f, e, self.gaps)?;
            }
            return Ok(());
        }
        let indent = if dir == Dir::Server { "\t" } else { "" };
        match (self.format, *e) {
            (FollowFormat::Raw, _) => write_raw(&mut self.out, e, self.gaps)?,
            (FollowFormat::Ascii, Event::Data { bytes, .. }) => {
                writeln!(self.out, "{indent}{}", bytes.len())?;
                self.out.write_all(&printable(bytes))?;
                self.out.write_all(b"\n")?;
            }
            (FollowFormat::Hex, Event::Data { offset, bytes, .. }) => {
                hexdump(&mut self.out, indent, offset, bytes)?;
            }
            (FollowFormat::Ascii | FollowFormat::Hex, Event::Gap { len, kind, .. }) => {
                writeln!(self.out, "{indent}[{len} bytes missing: {}]", kind.as_str())?;
            }
            (FollowFormat::Json | FollowFormat::Jsonl, _) => {
                let mut v = event_json(e);
                if self.format == FollowFormat::Jsonl {
                    v["flow_id"] = json!(flow.id);
                    writeln!(self.out, "{v}")?;
                } else {
                    if std::mem::replace(&mut self.wrote_event, true) {
                        self.out.write_all(b",")?;
                    }
                    write!(self.out, "\n{v}")?;
                }
            }
        }
        Ok(())
    }

    pub fn end(&mut self, flow: &Flow, done: &Followed) -> io::Result<()> {
        match self.format {
            FollowFormat::Ascii | FollowFormat::Hex => writeln!(self.out, "{RULE}")?,
            FollowFormat::Raw => {}
            FollowFormat::Json => write!(self.out, "\n],\"summary\":{}}}", summary_json(done))?,
            FollowFormat::Jsonl => {
                let mut v = summary_json(done);
                v["type"] = json!("end");
                v["flow_id"] = json!(flow.id);
                writeln!(self.out, "{v}")?;
            }
        }
        Ok(())
    }
}

fn write_raw(w: &mut impl Write, e: &Event<'_>, gaps: Gaps) -> io::Result<()> {
    match *e {
        Event::Data { bytes, .. } => w.write_all(bytes),
        Event::Gap { len, .. } if gaps == Gaps::Zero => {
            let zeros = [0u8; 4096];
            let mut left = len;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                w.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            Ok(())
        }
        Event::Gap { .. } => Ok(()),
    }
}

fn proto_name(flow: &Flow) -> String {
    match flow.ends.proto {
        Some(6) => "tcp".into(),
        Some(17) => "udp".into(),
        Some(1) => "icmp".into(),
        Some(58) => "icmpv6".into(),
        Some(p) => format!("ip proto {p}"),
        None => "l2".into(),
    }
}

fn flow_json(flow: &Flow) -> serde_json::Value {
    json!({
        "flow_id": flow.id,
        "proto": flow.ends.proto,
        "client": flow.endpoint(Dir::Client),
        "server": flow.endpoint(Dir::Server),
    })
}

fn event_json(e: &Event<'_>) -> serde_json::Value {
    match *e {
        Event::Data {
            dir,
            offset,
            ts_ns,
            bytes,
        } => json!({
            "type": "data",
            "dir": dir.name(),
            "offset": offset,
            "ts": ts_iso(ts_ns),
            "ts_ns": ts_ns,
            "len": bytes.len(),
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        }),
        Event::Gap {
            dir,
            offset,
            len,
            ts_ns,
            kind,
        } => json!({
            "type": "gap",
            "dir": dir.name(),
            "offset": offset,
            "ts": ts_iso(ts_ns),
            "ts_ns": ts_ns,
            "len": len,
            "why": kind.as_str(),
        }),
    }
}

fn summary_json(done: &Followed) -> serde_json::Value {
    let side = |i: usize| {
        let s = &done.stats[i];
        json!({
            "packets": done.packets[i],
            "bytes": s.bytes,
            "missing": s.missing,
            "gaps": s.gaps,
            "retransmitted": s.retransmitted,
            "inconsistent": s.inconsistent,
        })
    };
    json!({
        "client": side(0),
        "server": side(1),
        "undecodable_packets": done.undecodable,
        "incomplete_datagrams": done.incomplete_datagrams,
    })
}

/// Text as tshark's ascii view shows it: printable ASCII, tabs and line
/// ends kept, every other byte a dot.
fn printable(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| match b {
            b'\n' | b'\r' | b'\t' | 0x20..=0x7e => b,
            _ => b'.',
        })
        .collect()
}

/// tshark's hex view: offset, 16 bytes in two groups of 8, their text.
fn hexdump(w: &mut impl Write, indent: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
    for (i, line) in bytes.chunks(16).enumerate() {
        let mut hex = String::with_capacity(50);
        let mut text = String::with_capacity(17);
        for (j, b) in line.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
                text.push(' ');
            }
            hex.push_str(&format!("{b:02x} "));
            text.push(if (0x20..0x7f).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        writeln!(
            w,
            "{indent}{:08X}  {hex:<49} {text}",
            offset + 16 * i as u64
        )?;
    }
    Ok(())
}

/// The line `pcapidx follow` prints on stderr after a flow.
pub fn summary_line(flow: &Flow, done: &Followed) -> String {
    let [c, s] = &done.stats;
    let mut line = format!(
        "flow {} ({} {} > {}): client {} bytes, server {} bytes, {} packets",
        flow.id,
        proto_name(flow),
        flow.endpoint(Dir::Client),
        flow.endpoint(Dir::Server),
        c.bytes,
        s.bytes,
        done.packets[0] + done.packets[1],
    );
    let missing = done.missing();
    if missing == 0 {
        line.push_str("; nothing missing");
    } else {
        line.push_str(&format!(
            "; {missing} bytes missing in {} gap{} (client {}, server {})",
            c.gaps + s.gaps,
            if c.gaps + s.gaps == 1 { "" } else { "s" },
            c.missing,
            s.missing
        ));
    }
    let inconsistent = c.inconsistent + s.inconsistent;
    if inconsistent > 0 {
        line.push_str(&format!(
            "; {inconsistent} retransmitted bytes differed from the first copy (kept)"
        ));
    }
    if done.incomplete_datagrams > 0 {
        line.push_str(&format!(
            "; {} fragmented datagrams never complete",
            done.incomplete_datagrams
        ));
    }
    line
}
