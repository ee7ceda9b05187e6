//! pcapng framing: blocks of (type, length, body, length). Section header and
//! interface description blocks are decoded with `pcap-file`; packet blocks
//! (EPB, SPB and the obsolete PB) are framed here so that no option parsing
//! or allocation happens per packet. Byte order is fixed per section.
use pcap_file::pcapng::PcapNgParser;
use pcap_file::pcapng::blocks::Block;

use crate::pcap::{Endian, Step};
use crate::{Interface, MAX_BLOCK, RecordMeta};

pub(crate) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Timestamp conversion for one interface of the current section.
#[derive(Debug, Clone, Copy)]
struct IfTs {
    global: u32,
    link_type: u16,
    snaplen: u32,
    resol: u8,
    offset_ns: i64,
}

impl IfTs {
    fn new(global: u32, i: &Interface) -> Self {
        IfTs {
            global,
            link_type: i.link_type,
            snaplen: i.snaplen,
            resol: i.ts_resol,
            offset_ns: i.ts_offset_s.saturating_mul(1_000_000_000),
        }
    }

    #[inline]
    fn ns(&self, raw: u64) -> i64 {
        ticks_to_ns(self.resol, raw).saturating_add(self.offset_ns)
    }
}

/// Converts a timestamp in `if_tsresol` units to ns (saturating, never panics).
pub fn ticks_to_ns(resol: u8, raw: u64) -> i64 {
    let exp = u32::from(resol & 0x7f);
    let ns: u128 = if resol & 0x80 != 0 {
        if exp >= 64 {
            0
        } else {
            (u128::from(raw) * 1_000_000_000) >> exp
        }
    } else if exp <= 9 {
        u128::from(raw) * 10u128.pow(9 - exp)
    } else {
        u128::from(raw) / 10u128.pow(exp.min(38) - 9)
    };
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Converts ns to `if_tsresol` units (for writing; truncates).
pub fn ns_to_ticks(resol: u8, ns: i64) -> u64 {
    let ns = u128::from(ns.max(0) as u64);
    let exp = u32::from(resol & 0x7f);
    let t = if resol & 0x80 != 0 {
        (ns << exp.min(64)) / 1_000_000_000
    } else if exp <= 9 {
        ns / 10u128.pow(9 - exp)
    } else {
        ns * 10u128.pow(exp.min(38) - 9)
    };
    u64::try_from(t).unwrap_or(u64::MAX)
}

pub(crate) struct NgFramer {
    endian: Endian,
    section_offset: u64,
    parser: PcapNgParser,
    section_ifaces: Vec<IfTs>,
    total_ifaces: u32,
    /// Interfaces met since the reader last collected them.
    pub new_ifaces: Vec<Interface>,
    /// A Simple Packet Block has no timestamp: it takes the previous packet's.
    last_ts: i64,
}

/// Why a section header cannot start a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SectionError {
    /// A section pcapidx does not read (another major version).
    Unsupported(String),
    Corrupt(String),
}

impl std::fmt::Display for SectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SectionError::Unsupported(w) => write!(f, "unsupported: {w}"),
            SectionError::Corrupt(w) => f.write_str(w),
        }
    }
}

/// Reads a section header block: its byte order and a parser for its IDBs.
fn open_section(block: &[u8]) -> Result<(Endian, PcapNgParser), SectionError> {
    let corrupt = |w: &str| SectionError::Corrupt(w.to_string());
    let big = match block.get(8..12) {
        Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
        Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
        _ => return Err(corrupt("section header without byte-order magic")),
    };
    let endian = Endian { big };
    if block.len() < 16 {
        return Err(corrupt("section header block too short"));
    }
    let (major, minor) = (endian.u16(block, 12), endian.u16(block, 14));
    if major != 1 {
        return Err(SectionError::Unsupported(format!(
            "pcapng version {major}.{minor} is not 1.x"
        )));
    }
    let (_, parser) = PcapNgParser::new(block)
        .map_err(|e| SectionError::Corrupt(format!("bad section header: {e}")))?;
    Ok((endian, parser))
}

/// Length of the block at the start of `b` (needs 12 bytes), in its section's byte order.
fn block_len(b: &[u8], endian: Endian) -> Result<(u32, u32, Endian), String> {
    let ty = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (ty, endian) = if ty == SHB {
        let big = match &b[8..12] {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => return Err("section header without byte-order magic".into()),
        };
        (SHB, Endian { big })
    } else {
        (endian.u32(b, 0), endian)
    };
    let len = endian.u32(b, 4);
    if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
        return Err(format!(
            "block of type 0x{ty:08x} claims impossible length {len}"
        ));
    }
    Ok((ty, len, endian))
}

impl NgFramer {
    /// Starts at the first section header block (the whole block in `block`).
    pub(crate) fn start(block: &[u8], offset: u64) -> Result<Self, SectionError> {
        let (endian, parser) = open_section(block)?;
        Ok(NgFramer {
            endian,
            section_offset: offset,
            parser,
            section_ifaces: Vec::new(),
            total_ifaces: 0,
            new_ifaces: Vec::new(),
            last_ts: 0,
        })
    }

    /// Resumes inside the section whose header is `block` (read at
    /// `section_offset`), knowing every interface of the file met so far.
    pub fn resume(
        block: &[u8],
        section_offset: u64,
        interfaces: &[Interface],
        last_ts: i64,
    ) -> Result<Self, SectionError> {
        let mut f = NgFramer::start(block, section_offset)?;
        f.total_ifaces = interfaces.len() as u32;
        f.section_ifaces = interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.section_offset == section_offset)
            .map(|(n, i)| IfTs::new(n as u32, i))
            .collect();
        f.last_ts = last_ts;
        Ok(f)
    }

    pub fn section_offset(&self) -> u64 {
        self.section_offset
    }

    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    pub fn step(&mut self, b: &[u8], offset: u64) -> Step {
        if b.len() < 12 {
            return Step::Need(12);
        }
        let (ty, len, endian) = match block_len(b, self.endian) {
            Ok(v) => v,
            Err(e) => return Step::Corrupt(e),
        };
        let len_us = len as usize;
        if b.len() < len_us {
            return Step::Need(len_us);
        }
        let trailer = endian.u32(b, len_us - 4);
        if trailer != len {
            return Step::Corrupt(format!(
                "block of type 0x{ty:08x}: length {len} at start but {trailer} at end"
            ));
        }
        let block = &b[..len_us];
        let body_len = len_us - 12;
        let e = self.endian;
        match ty {
            SHB => match open_section(block) {
                Ok((endian, parser)) => {
                    self.endian = endian;
                    self.parser = parser;
                    self.section_offset = offset;
                    self.section_ifaces.clear();
                    self.last_ts = 0;
                    Step::Skip(len_us)
                }
                Err(e) => Step::Corrupt(e.to_string()),
            },
            IDB => match self.parser.next_block(block) {
                Ok((_, Block::InterfaceDescription(idb))) => {
                    let iface = Interface {
                        link_type: (u32::from(idb.linktype) & 0xffff) as u16,
                        snaplen: idb.snaplen,
                        ts_resol: idb.ts_resolution().to_u8(),
                        ts_offset_s: idb.ts_offset(),
                        section_offset: self.section_offset,
                        block_offset: offset,
                        big_endian: e.big,
                    };
                    self.section_ifaces
                        .push(IfTs::new(self.total_ifaces, &iface));
                    self.total_ifaces += 1;
                    self.new_ifaces.push(iface);
                    Step::Skip(len_us)
                }
                Ok(_) => Step::Corrupt("interface description block did not decode as one".into()),
                Err(err) => Step::Corrupt(format!("bad interface description block: {err}")),
            },
            EPB | PB => {
                if body_len < 20 {
                    return Step::Corrupt(format!("packet block of {len} bytes is too short"));
                }
                let iface = if ty == EPB {
                    e.u32(b, 8)
                } else {
                    u32::from(e.u16(b, 8))
                };
                let caplen = e.u32(b, 20);
                if caplen as usize > body_len - 20 {
                    return Step::Corrupt(format!(
                        "packet block claims {caplen} captured bytes in a {len}-byte block"
                    ));
                }
                let Some(ifts) = self.section_ifaces.get(iface as usize) else {
                    return Step::Corrupt(format!(
                        "packet block refers to interface {iface}, but its section has {}",
                        self.section_ifaces.len()
                    ));
                };
                let raw = (u64::from(e.u32(b, 12)) << 32) | u64::from(e.u32(b, 16));
                let ts_ns = ifts.ns(raw);
                self.last_ts = ts_ns;
                Step::Record {
                    meta: RecordMeta {
                        offset,
                        ts_ns,
                        data_start: 28,
                        caplen,
                        orig_len: e.u32(b, 24),
                        len,
                        iface: ifts.global,
                        link_type: ifts.link_type,
                    },
                    len: len_us,
                }
            }
            SPB => {
                if body_len < 4 {
                    return Step::Corrupt("simple packet block too short".into());
                }
                let Some(ifts) = self.section_ifaces.first() else {
                    return Step::Corrupt(
                        "simple packet block in a section without interfaces".into(),
                    );
                };
                let orig_len = e.u32(b, 8);
                let mut caplen = orig_len.min((body_len - 4) as u32);
                if ifts.snaplen > 0 {
                    caplen = caplen.min(ifts.snaplen);
                }
                Step::Record {
                    meta: RecordMeta {
                        offset,
                        ts_ns: self.last_ts,
                        data_start: 12,
                        caplen,
                        orig_len,
                        len,
                        iface: ifts.global,
                        link_type: ifts.link_type,
                    },
                    len: len_us,
                }
            }
            _ => Step::Skip(len_us),
        }
    }
}

/// Fields of a packet block read back at a known offset (for carving), from
/// its fixed part and as much of its data as `b` holds; `len` is the length
/// the block claims:
/// `(block type, iface within section, raw timestamp, caplen, orig_len, data start)`.
pub(crate) fn packet_block_fields(
    b: &[u8],
    len: u32,
    big: bool,
) -> Result<(u32, u32, u64, u32, u32, usize), String> {
    if b.len() < 12 {
        return Err("block too short".into());
    }
    let e = Endian { big };
    let ty = e.u32(b, 0);
    let body = len as usize - 12;
    match ty {
        EPB | PB if body >= 20 && b.len() >= 28 => {
            let iface = if ty == EPB {
                e.u32(b, 8)
            } else {
                u32::from(e.u16(b, 8))
            };
            let raw = (u64::from(e.u32(b, 12)) << 32) | u64::from(e.u32(b, 16));
            let caplen = e.u32(b, 20);
            if caplen as usize > body - 20 {
                return Err("captured length exceeds block".into());
            }
            Ok((ty, iface, raw, caplen, e.u32(b, 24), 28))
        }
        SPB if body >= 4 => {
            let orig = e.u32(b, 8);
            Ok((ty, 0, 0, orig.min((body - 4) as u32), orig, 12))
        }
        _ => Err(format!("block type 0x{ty:08x} is not a packet block")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_conversions() {
        assert_eq!(ticks_to_ns(6, 1_500_000), 1_500_000_000);
        assert_eq!(ticks_to_ns(9, 7), 7);
        assert_eq!(ticks_to_ns(3, 2), 2_000_000);
        assert_eq!(ticks_to_ns(0x80 | 10, 1024), 1_000_000_000);
        assert_eq!(ticks_to_ns(12, 5_000), 5);
        assert_eq!(ticks_to_ns(0, u64::MAX), i64::MAX);
        assert_eq!(ns_to_ticks(6, 1_500_000_000), 1_500_000);
        assert_eq!(ns_to_ticks(0x80 | 10, 1_000_000_000), 1024);
        assert_eq!(ns_to_ticks(9, 42), 42);
    }
}
