//! Writing a stream of packets as a run of capture files: rotation, the
//! container format of each file, the link layer, snaplen cuts and IP
//! fragmentation — recording the ground truth as it goes.
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use pcapidx_capture::{CaptureWriter, WriteRecord, ns_to_ticks, ticks_to_ns};

use crate::link::Link;
use crate::packet::{self, Body, Pkt};
use crate::truth::{Truth, TruthFlow, TruthPacket};

/// The container of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Pcap {
        big_endian: bool,
        nanos: bool,
    },
    /// One section and one interface with this `if_tsresol` and `if_tsoffset`.
    PcapNg {
        big_endian: bool,
        ts_resol: u8,
        ts_offset_s: i64,
    },
    /// Several sections of alternating byte order (a new one every
    /// `section_packets` packets), packets written in turn as EPB, obsolete
    /// PB and SPB, with name-resolution and statistics blocks between them.
    PcapNgMixed {
        section_packets: usize,
    },
}

impl Container {
    pub fn name(&self) -> String {
        match *self {
            Container::Pcap { big_endian, nanos } => {
                format!(
                    "pcap-{}-{}",
                    if big_endian { "be" } else { "le" },
                    if nanos { "ns" } else { "us" }
                )
            }
            Container::PcapNg {
                big_endian,
                ts_resol,
                ts_offset_s,
            } => {
                let mut s = format!(
                    "pcapng-{}-r{ts_resol}",
                    if big_endian { "be" } else { "le" }
                );
                if ts_offset_s != 0 {
                    s.push_str("-off");
                }
                s
            }
            Container::PcapNgMixed { .. } => "pcapng-mixed".into(),
        }
    }

    fn ext(&self) -> &'static str {
        match self {
            Container::Pcap { .. } => "pcap",
            _ => "pcapng",
        }
    }
}

/// How a run of files is laid out.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub prefix: String,
    /// The container of each file, used in turn.
    pub containers: Vec<Container>,
    pub link: Link,
    /// Cut every frame to this many bytes.
    pub snaplen: Option<u32>,
    /// Start a new file after this many packets...
    pub rotate_packets: Option<usize>,
    /// ...or this many bytes.
    pub rotate_bytes: Option<u64>,
}

/// Fragment a packet into pieces of at most `max` payload bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frag {
    pub max: usize,
    /// Write the fragments last first (as some stacks send them).
    pub reversed: bool,
}

pub struct RunWriter {
    dir: PathBuf,
    spec: RunSpec,
    out: Option<CaptureWriter<BufWriter<File>>>,
    files: Vec<PathBuf>,
    in_file: usize,
    /// pcapng-mixed: packets in the current section, and the section count.
    in_section: usize,
    sections: usize,
    /// Timestamp of the last packet written in the current pcapng section.
    last_ts: i64,
    pub truth: Truth,
    l3: Vec<u8>,
    frame: Vec<u8>,
    frags: Vec<Vec<u8>>,
    pub packets: u64,
    pub bytes: u64,
    /// Keep each packet's position in the truth (off for large runs).
    pub record_packets: bool,
}

impl RunWriter {
    pub fn new(dir: &Path, spec: RunSpec) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(RunWriter {
            dir: dir.to_path_buf(),
            spec,
            out: None,
            files: Vec::new(),
            in_file: 0,
            in_section: 0,
            sections: 0,
            last_ts: 0,
            truth: Truth::default(),
            l3: Vec::with_capacity(2048),
            frame: Vec::with_capacity(2048),
            frags: Vec::new(),
            packets: 0,
            bytes: 0,
            record_packets: true,
        })
    }

    /// Bytes written to the current file so far.
    pub fn file_offset(&self) -> u64 {
        self.out.as_ref().map_or(0, |w| w.offset())
    }

    /// Declares a flow; returns its truth id. `src` is the originator.
    pub fn flow(&mut self, first: &Pkt) -> usize {
        let ports = first.body.ports();
        let arp = matches!(first.body, Body::Arp { .. });
        let vlan = if self.spec.link.carries_vlans() {
            first.vlans().first().copied()
        } else {
            None
        };
        self.truth.flows.push(TruthFlow {
            proto: (!arp).then(|| first.body.proto(first.src.v6)),
            src_ip: (!arp).then(|| first.src.ip_text()),
            dst_ip: (!arp).then(|| first.dst.ip_text()),
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
            ethertype: first.ethertype(),
            vlan,
            ..TruthFlow::default()
        });
        self.truth.flows.len() - 1
    }

    fn container(&self) -> Container {
        let c = &self.spec.containers;
        c[self.files.len().saturating_sub(1) % c.len()]
    }

    fn rotate_due(&self) -> bool {
        let Some(w) = &self.out else { return true };
        self.spec.rotate_packets.is_some_and(|n| self.in_file >= n)
            || self.spec.rotate_bytes.is_some_and(|b| w.offset() >= b)
    }

    fn open_next(&mut self) -> io::Result<()> {
        if let Some(w) = self.out.take() {
            w.finish()?;
        }
        let n = self.files.len();
        let c = self.spec.containers[n % self.spec.containers.len()];
        let path = self
            .dir
            .join(format!("{}_{n:05}.{}", self.spec.prefix, c.ext()));
        let f = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let lt = self.spec.link.link_type();
        let snap = self.spec.snaplen.unwrap_or(262_144);
        let w = match c {
            Container::Pcap { big_endian, nanos } => {
                CaptureWriter::pcap(f, lt, snap, nanos, big_endian)?
            }
            Container::PcapNg {
                big_endian,
                ts_resol,
                ts_offset_s,
            } => {
                let mut w = CaptureWriter::pcapng(f, big_endian)?;
                w.add_interface(lt, snap, ts_resol, ts_offset_s)?;
                w
            }
            Container::PcapNgMixed { .. } => {
                let mut w = CaptureWriter::pcapng(f, false)?;
                w.add_interface(lt, snap, 6, 0)?;
                w
            }
        };
        self.out = Some(w);
        self.files.push(path);
        self.in_file = 0;
        self.in_section = 0;
        self.sections = 1;
        self.last_ts = 0;
        Ok(())
    }

    /// Writes a packet of flow `truth_id` (sent by the flow's destination
    /// when `reverse`), fragmented if asked.
    pub fn write(
        &mut self,
        ts_ns: i64,
        truth_id: usize,
        reverse: bool,
        p: &Pkt,
        frag: Option<Frag>,
    ) -> io::Result<()> {
        packet::l3(p, &mut self.l3);
        let et = p.ethertype();
        let vlans: &[u16] = p.vlans();
        if let Some(fr) = frag {
            let mut frags = std::mem::take(&mut self.frags);
            packet::fragment(&self.l3, fr.max, p.ip_id, &mut frags);
            if fr.reversed {
                frags.reverse();
            }
            for (i, f) in frags.iter().enumerate() {
                // Only the first fragment carries the TCP header (and its flags).
                let first = if fr.reversed {
                    i + 1 == frags.len()
                } else {
                    i == 0
                };
                let flags = if first { p.body.tcp_flags() } else { 0 };
                let ok = self
                    .spec
                    .link
                    .wrap(et, p.src.mac, p.dst.mac, vlans, f, &mut self.frame);
                if ok {
                    self.emit(ts_ns, truth_id, reverse, p, flags)?;
                }
            }
            self.frags = frags;
            return Ok(());
        }
        let l3 = std::mem::take(&mut self.l3);
        let ok = self
            .spec
            .link
            .wrap(et, p.src.mac, p.dst.mac, vlans, &l3, &mut self.frame);
        self.l3 = l3;
        if ok {
            self.emit(ts_ns, truth_id, reverse, p, p.body.tcp_flags())?;
        }
        Ok(())
    }

    /// Writes the frame in `self.frame`.
    fn emit(
        &mut self,
        ts_ns: i64,
        truth_id: usize,
        reverse: bool,
        p: &Pkt,
        tcp_flags: u8,
    ) -> io::Result<()> {
        if self.rotate_due() {
            self.open_next()?;
        }
        let orig_len = self.frame.len() as u32;
        let caplen = self.spec.snaplen.map_or(orig_len, |s| s.min(orig_len));
        let container = self.container();
        let Some(w) = self.out.as_mut() else {
            return Err(io::Error::other("no output file"));
        };
        let rec = WriteRecord {
            ts_ns,
            orig_len,
            data: &self.frame[..caplen as usize],
            iface: 0,
        };
        let mut indexed_ts = ts_ns;
        let offset = match container {
            Container::PcapNgMixed { section_packets } => {
                if self.in_section >= section_packets {
                    w.write_other_block(5, &[0u8; 16])?; // interface statistics, no options
                    w.new_section(self.sections % 2 == 1)?;
                    w.add_interface(
                        self.spec.link.link_type(),
                        self.spec.snaplen.unwrap_or(0),
                        6,
                        0,
                    )?;
                    w.write_other_block(4, &[0u8; 4])?; // empty name resolution block
                    self.sections += 1;
                    self.in_section = 0;
                    self.last_ts = 0;
                }
                self.in_section += 1;
                // EPB first in each section, so that SPBs have a timestamp to inherit.
                match (self.in_section - 1) % 3 {
                    0 => w.write(&rec)?,
                    1 => w.write_packet_block(&rec)?,
                    // A Simple Packet Block has no timestamp: the index gives
                    // it the previous packet's (0 at the start of a section).
                    _ => {
                        indexed_ts = self.last_ts;
                        w.write_simple(orig_len, rec.data)?
                    }
                }
            }
            _ => w.write(&rec)?,
        };
        // The reader sees the timestamp at the container's resolution.
        let (resol, off) = match container {
            Container::Pcap { nanos, .. } => (if nanos { 9 } else { 6 }, 0),
            Container::PcapNg {
                ts_resol,
                ts_offset_s,
                ..
            } => (ts_resol, ts_offset_s * 1_000_000_000),
            Container::PcapNgMixed { .. } => (6, 0),
        };
        indexed_ts = ticks_to_ns(resol, ns_to_ticks(resol, indexed_ts - off)) + off;
        self.last_ts = indexed_ts;
        self.in_file += 1;
        self.packets += 1;
        self.bytes += u64::from(caplen) + 16;
        if !self.record_packets {
            return Ok(());
        }
        let file = self.files.len() - 1;
        let Some(flow) = self.truth.flows.get_mut(truth_id) else {
            return Ok(());
        };
        if flow.packets.is_empty() {
            let (s, d) = self.spec.link.macs(p.src.mac, p.dst.mac);
            (flow.src_mac, flow.dst_mac) = if reverse { (d, s) } else { (s, d) };
        }
        flow.packets.push(TruthPacket {
            file,
            offset,
            ts_ns: indexed_ts,
            caplen,
            orig_len,
            reverse,
            tcp_flags,
            iface: 0,
        });
        Ok(())
    }

    /// Closes the last file; returns the files written and the ground truth.
    pub fn finish(mut self) -> io::Result<(Vec<PathBuf>, Truth)> {
        if let Some(w) = self.out.take() {
            w.finish()?;
        }
        Ok((self.files, self.truth))
    }
}
