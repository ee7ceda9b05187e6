//! Classic pcap framing: a 24-byte file header, then records of a 16-byte
//! header (24 in the "modified" variant) followed by the captured bytes.
//! Byte order is fixed once per file by the magic number.
use crate::{Interface, MAX_BLOCK, MAX_PCAP_RECORD, RecordMeta};

pub(crate) const FILE_HEADER_LEN: usize = 24;

/// One step of framing: what the bytes at the current position are.
#[derive(Debug)]
pub(crate) enum Step {
    /// A packet record `len` bytes long; `meta.data_start` is relative to the step's slice.
    Record {
        meta: RecordMeta,
        len: usize,
    },
    /// A block that carries no packet (pcapng), `len` bytes long.
    Skip(usize),
    /// At least this many bytes from the current position are needed.
    Need(usize),
    Corrupt(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Endian {
    pub big: bool,
}

impl Endian {
    #[inline]
    pub fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }
    #[inline]
    pub fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }
}

/// Parsed pcap file header.
#[derive(Debug, Clone)]
pub(crate) struct PcapFramer {
    endian: Endian,
    nanos: bool,
    record_header: usize,
    max_caplen: u32,
    pub link_type: u16,
    pub snaplen: u32,
}

impl PcapFramer {
    /// Parses the 24-byte file header (`head` must hold at least that).
    pub fn from_header(
        head: &[u8],
        big_endian: bool,
        nanos: bool,
        modified: bool,
    ) -> Result<Self, String> {
        let endian = Endian { big: big_endian };
        let major = endian.u16(head, 4);
        let minor = endian.u16(head, 6);
        if major != 2 {
            return Err(format!("pcap version {major}.{minor} is not 2.x"));
        }
        let snaplen = endian.u32(head, 16);
        // Upper bits of the link-type field carry FCS information, not the type.
        let link_type = (endian.u32(head, 20) & 0xffff) as u16;
        // A larger snaplen raises the limit, up to MAX_BLOCK. Written as a
        // clamp: rustc 1.95 at opt-level >= 1 miscompiles the equivalent
        // `if s > A { s.min(B) } else { A }` into `s.min(B)` (see the test).
        let max_caplen = snaplen.clamp(MAX_PCAP_RECORD, MAX_BLOCK);
        Ok(PcapFramer {
            endian,
            nanos,
            record_header: if modified { 24 } else { 16 },
            max_caplen,
            link_type,
            snaplen,
        })
    }

    pub fn interface(&self) -> Interface {
        Interface {
            link_type: self.link_type,
            snaplen: self.snaplen,
            ts_resol: if self.nanos { 9 } else { 6 },
            ts_offset_s: 0,
            section_offset: 0,
            block_offset: 0,
            big_endian: self.endian.big,
        }
    }

    #[inline]
    pub fn step(&self, b: &[u8], offset: u64) -> Step {
        let hdr = self.record_header;
        if b.len() < hdr {
            return Step::Need(hdr);
        }
        let e = self.endian;
        let caplen = e.u32(b, 8);
        if caplen > self.max_caplen {
            return Step::Corrupt(format!(
                "record claims {caplen} captured bytes (limit {})",
                self.max_caplen
            ));
        }
        let len = hdr + caplen as usize;
        if b.len() < len {
            return Step::Need(len);
        }
        let sec = e.u32(b, 0) as i64;
        let frac = e.u32(b, 4) as i64;
        // An out-of-range fraction (usec >= 10^6) is kept as written, the way
        // Wireshark shows it: it simply carries into the next second.
        let ts_ns = sec * 1_000_000_000 + if self.nanos { frac } else { frac * 1000 };
        Step::Record {
            meta: RecordMeta {
                offset,
                ts_ns,
                data_start: hdr as u32,
                caplen,
                orig_len: e.u32(b, 12),
                len: len as u32,
                iface: 0,
                link_type: self.link_type,
            },
            len,
        }
    }
}

/// Decodes one pcap record header found at a known offset (for carving).
pub(crate) fn record_fields(b: &[u8], big_endian: bool, nanos: bool) -> (i64, u32, u32) {
    let e = Endian { big: big_endian };
    let sec = e.u32(b, 0) as i64;
    let frac = e.u32(b, 4) as i64;
    let ts = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
    (ts, e.u32(b, 8), e.u32(b, 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small snaplen does not lower the record limit (some files' records
    /// exceed their snaplen); a large one raises it. This caught a compiler
    /// miscompilation of the if/else form of the same bound.
    #[test]
    fn record_limit_follows_large_snaplens_only() {
        for (snaplen, limit) in [
            (31u32, MAX_PCAP_RECORD),
            (65535, MAX_PCAP_RECORD),
            (1 << 20, 1 << 20),
            (u32::MAX, MAX_BLOCK),
        ] {
            let mut head = [
                0xd4u8, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                0,
            ];
            head[16..20].copy_from_slice(&snaplen.to_le_bytes());
            let f =
                PcapFramer::from_header(std::hint::black_box(&head), false, false, false).unwrap();
            assert_eq!(f.max_caplen, limit, "snaplen {snaplen}");
        }
    }
}
