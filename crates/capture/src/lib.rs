//! Capture files: sniffing the format, streaming records with the absolute
//! byte offset of each, resuming in the middle of a file, writing pcap and
//! pcapng, and fingerprinting a file so later runs can tell whether it changed.
//!
//! Invariants:
//! - No byte string makes the reader panic or allocate more than
//!   [`MAX_BLOCK`] bytes for one record: an impossible length is corruption,
//!   reported with its offset, and every complete record before it is kept.
//! - A record's `offset` is where its record header (pcap) or block (pcapng)
//!   starts; reading `record_len` bytes there gives the record back.
//!
//! Deliberately absent: decoding packet contents (see `pcapidx-decode`).
#![forbid(unsafe_code)]

mod error;
mod fingerprint;
#[doc(hidden)]
pub mod fuzzing;
mod pcap;
mod pcapng;
mod reader;
mod record_at;
mod source;
mod writer;

pub use error::{OpenError, ReadError, ReadErrorKind};
pub use fingerprint::{FINGERPRINT_SPAN, Fingerprint, LEAD_SPAN, fingerprint, lead_hash};
pub use pcapng::{ns_to_ticks, ticks_to_ns};
pub use reader::{CaptureReader, Chunk, Resume};
pub use record_at::{RecordHeader, parse_record, read_record_at, record_span};
pub use source::{ByteSource, read_full, read_vec};
pub use writer::{CaptureWriter, OutputFormat, WriteRecord};

/// Largest record a pcap file may claim (Wireshark's limit for most link types).
pub const MAX_PCAP_RECORD: u32 = 262_144;
/// Largest pcapng block accepted; anything larger is corruption, not an allocation request.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// The container format of a capture file, as told by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap. `modified` is Alexey Kuznetzov's variant with 24-byte record headers.
    Pcap {
        big_endian: bool,
        nanos: bool,
        modified: bool,
    },
    PcapNg,
}

impl FileFormat {
    /// Short name stored in the index: `pcap`, `pcap-ns`, `pcap-modified` or `pcapng`.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Pcap { modified: true, .. } => "pcap-modified",
            FileFormat::Pcap { nanos: true, .. } => "pcap-ns",
            FileFormat::Pcap { .. } => "pcap",
            FileFormat::PcapNg => "pcapng",
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Capture(FileFormat),
    /// A gzip stream: possibly a compressed capture, which cannot be indexed by offset.
    Gzip,
    Empty,
    /// Not a format pcapidx reads.
    Other,
}

/// Classifies a file by its first bytes (at least 4 are needed to say anything but `Other`).
pub fn sniff(head: &[u8]) -> Sniff {
    if head.is_empty() {
        return Sniff::Empty;
    }
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        return Sniff::Gzip;
    }
    let Some(magic) = head.get(..4) else {
        return Sniff::Other;
    };
    let pcap = |big_endian, nanos, modified| {
        Sniff::Capture(FileFormat::Pcap {
            big_endian,
            nanos,
            modified,
        })
    };
    match magic {
        [0xa1, 0xb2, 0xc3, 0xd4] => pcap(true, false, false),
        [0xd4, 0xc3, 0xb2, 0xa1] => pcap(false, false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => pcap(true, true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => pcap(false, true, false),
        [0xa1, 0xb2, 0xcd, 0x34] => pcap(true, false, true),
        [0x34, 0xcd, 0xb2, 0xa1] => pcap(false, false, true),
        [0x0a, 0x0d, 0x0d, 0x0a] => Sniff::Capture(FileFormat::PcapNg),
        _ => Sniff::Other,
    }
}

/// One capture interface: the whole file for pcap, one IDB for pcapng.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// LINKTYPE_* value (lower 16 bits of the field; FCS bits dropped).
    pub link_type: u16,
    pub snaplen: u32,
    /// Timestamp resolution in pcapng's `if_tsresol` encoding: 6 = µs, 9 = ns,
    /// 0x80|n = 2^-n s. Classic pcap uses 6 or 9.
    pub ts_resol: u8,
    /// `if_tsoffset`: seconds added to every timestamp of this interface.
    pub ts_offset_s: i64,
    /// Offset of the section header this interface belongs to (0 for pcap).
    pub section_offset: u64,
    /// Offset of the interface description block (0 for pcap).
    pub block_offset: u64,
    /// Byte order of the file (pcap) or of the interface's section (pcapng).
    pub big_endian: bool,
}

impl Interface {
    /// True when timestamps are finer than a microsecond.
    pub fn sub_microsecond(&self) -> bool {
        if self.ts_resol & 0x80 != 0 {
            self.ts_resol & 0x7f > 19 // 2^-20 s is just under a microsecond
        } else {
            self.ts_resol > 6
        }
    }
}

/// Where one record sits in its file and what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Absolute offset of the record header (pcap) or block (pcapng).
    pub offset: u64,
    /// Timestamp in ns since the epoch.
    pub ts_ns: i64,
    /// Where the captured bytes start inside the chunk buffer.
    pub data_start: u32,
    pub caplen: u32,
    pub orig_len: u32,
    /// Length of the whole record (header, data, padding, options) in the file.
    pub len: u32,
    /// Index into the reader's interfaces (file-wide, across pcapng sections).
    pub iface: u32,
    pub link_type: u16,
}

impl RecordMeta {
    /// Offset just past this record.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}
