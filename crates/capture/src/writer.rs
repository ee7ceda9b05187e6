//! Writing pcap and pcapng. Records are written as given — timestamp,
//! original length and captured bytes — never re-encoded beyond the container.
//! Used by `carve` and by the test-data generator (which also needs the rarer
//! pcapng blocks to exercise the reader).
use std::io::{self, Write};

use crate::pcapng::{SHB, ns_to_ticks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Pcap { big_endian: bool, nanos: bool },
    PcapNg { big_endian: bool },
}

/// One packet to write.
#[derive(Debug, Clone, Copy)]
pub struct WriteRecord<'a> {
    pub ts_ns: i64,
    pub orig_len: u32,
    pub data: &'a [u8],
    /// pcapng interface id within the current section (ignored for pcap).
    pub iface: u32,
}

pub struct CaptureWriter<W: Write> {
    out: W,
    format: OutputFormat,
    big: bool,
    /// pcapng: `if_tsresol` and `if_tsoffset` of each interface of the current section.
    ifaces: Vec<(u8, i64)>,
    offset: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a pcap file (version 2.4).
    pub fn pcap(
        out: W,
        link_type: u16,
        snaplen: u32,
        nanos: bool,
        big_endian: bool,
    ) -> io::Result<Self> {
        let mut w = CaptureWriter {
            out,
            format: OutputFormat::Pcap { big_endian, nanos },
            big: big_endian,
            ifaces: Vec::new(),
            offset: 0,
        };
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        w.u32(magic)?;
        w.u16(2)?;
        w.u16(4)?;
        w.u32(0)?; // thiszone
        w.u32(0)?; // sigfigs
        w.u32(snaplen)?;
        w.u32(u32::from(link_type))?;
        Ok(w)
    }

    /// Starts a pcapng file with one section header and no interfaces yet.
    pub fn pcapng(out: W, big_endian: bool) -> io::Result<Self> {
        let mut w = CaptureWriter {
            out,
            format: OutputFormat::PcapNg { big_endian },
            big: big_endian,
            ifaces: Vec::new(),
            offset: 0,
        };
        w.section_header()?;
        Ok(w)
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Bytes written so far (the offset the next record will have).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.offset += b.len() as u64;
        Ok(())
    }
    fn u16(&mut self, v: u16) -> io::Result<()> {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes(&b)
    }
    fn u32(&mut self, v: u32) -> io::Result<()> {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes(&b)
    }
    fn pad(&mut self, len: usize) -> io::Result<()> {
        let pad = (4 - len % 4) % 4;
        self.bytes(&[0u8; 3][..pad])
    }

    fn section_header(&mut self) -> io::Result<()> {
        self.bytes(&SHB.to_be_bytes())?;
        self.u32(28)?;
        self.u32(0x1a2b_3c4d)?;
        self.u16(1)?;
        self.u16(0)?;
        self.u32(0xffff_ffff)?; // section length unknown (-1)
        self.u32(0xffff_ffff)?;
        self.u32(28)
    }

    /// pcapng: begins a new section (its interfaces start again at 0).
    pub fn new_section(&mut self, big_endian: bool) -> io::Result<()> {
        self.big = big_endian;
        self.ifaces.clear();
        self.section_header()
    }

    /// pcapng: adds an interface; returns its id within the section.
    /// `ts_resol` uses the `if_tsresol` encoding (6 = µs is the default and
    /// is not written out); `ts_offset_s` is written when non-zero.
    pub fn add_interface(
        &mut self,
        link_type: u16,
        snaplen: u32,
        ts_resol: u8,
        ts_offset_s: i64,
    ) -> io::Result<u32> {
        let mut opts_len = 0;
        if ts_resol != 6 {
            opts_len += 8;
        }
        if ts_offset_s != 0 {
            opts_len += 12;
        }
        if opts_len > 0 {
            opts_len += 4; // opt_endofopt
        }
        let len = 20 + opts_len;
        self.u32(1)?;
        self.u32(len)?;
        self.u16(link_type)?;
        self.u16(0)?;
        self.u32(snaplen)?;
        if ts_resol != 6 {
            self.u16(9)?; // if_tsresol
            self.u16(1)?;
            self.bytes(&[ts_resol, 0, 0, 0])?;
        }
        if ts_offset_s != 0 {
            self.u16(14)?; // if_tsoffset
            self.u16(8)?;
            let b = if self.big {
                ts_offset_s.to_be_bytes()
            } else {
                ts_offset_s.to_le_bytes()
            };
            self.bytes(&b)?;
        }
        if opts_len > 0 {
            self.u32(0)?;
        }
        self.u32(len)?;
        self.ifaces.push((ts_resol, ts_offset_s));
        Ok(self.ifaces.len() as u32 - 1)
    }

    /// Writes one packet: a pcap record, or an Enhanced Packet Block.
    /// Returns the offset at which it starts.
    pub fn write(&mut self, r: &WriteRecord) -> io::Result<u64> {
        let at = self.offset;
        let caplen = u32::try_from(r.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        match self.format {
            OutputFormat::Pcap { nanos, .. } => {
                let ts = r.ts_ns.max(0);
                let sec = (ts / 1_000_000_000) as u32;
                let sub = (ts % 1_000_000_000) as u32;
                self.u32(sec)?;
                self.u32(if nanos { sub } else { sub / 1000 })?;
                self.u32(caplen)?;
                self.u32(r.orig_len)?;
                self.bytes(r.data)?;
            }
            OutputFormat::PcapNg { .. } => {
                self.packet_block(6, r, caplen)?;
            }
        }
        Ok(at)
    }

    fn packet_block(&mut self, ty: u32, r: &WriteRecord, caplen: u32) -> io::Result<()> {
        let (resol, offset_s) = *self
            .ifaces
            .get(r.iface as usize)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such interface"))?;
        let ticks = ns_to_ticks(
            resol,
            r.ts_ns
                .saturating_sub(offset_s.saturating_mul(1_000_000_000)),
        );
        let padded = (r.data.len() + 3) & !3;
        let len = 32 + padded as u32;
        self.u32(ty)?;
        self.u32(len)?;
        if ty == 2 {
            self.u16(r.iface as u16)?;
            self.u16(0)?; // drops
        } else {
            self.u32(r.iface)?;
        }
        self.u32((ticks >> 32) as u32)?;
        self.u32(ticks as u32)?;
        self.u32(caplen)?;
        self.u32(r.orig_len)?;
        self.bytes(r.data)?;
        self.pad(r.data.len())?;
        self.u32(len)
    }

    /// pcapng: an obsolete Packet Block (type 2). Returns its offset.
    pub fn write_packet_block(&mut self, r: &WriteRecord) -> io::Result<u64> {
        let at = self.offset;
        self.packet_block(2, r, r.data.len() as u32)?;
        Ok(at)
    }

    /// pcapng: a Simple Packet Block (interface 0, no timestamp). Returns its offset.
    pub fn write_simple(&mut self, orig_len: u32, data: &[u8]) -> io::Result<u64> {
        let at = self.offset;
        let padded = (data.len() + 3) & !3;
        let len = 16 + padded as u32;
        self.u32(3)?;
        self.u32(len)?;
        self.u32(orig_len)?;
        self.bytes(data)?;
        self.pad(data.len())?;
        self.u32(len)?;
        Ok(at)
    }

    /// pcapng: any other block (name resolution, statistics...), body padded to 4.
    pub fn write_other_block(&mut self, ty: u32, body: &[u8]) -> io::Result<()> {
        let padded = (body.len() + 3) & !3;
        let len = 12 + padded as u32;
        self.u32(ty)?;
        self.u32(len)?;
        self.bytes(body)?;
        self.pad(body.len())?;
        self.u32(len)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
