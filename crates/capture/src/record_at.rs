//! Reading one record back at an offset the index recorded, with one
//! positioned read, and reporting what its header says so the caller can
//! check it is still the record that was indexed.
use crate::pcap::record_fields;
use crate::pcapng::{packet_block_fields, ticks_to_ns};
use crate::source::{ByteSource, read_full};
use crate::{FileFormat, Interface, MAX_BLOCK};

/// What a record's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// `None` for a Simple Packet Block, which carries no timestamp.
    pub ts_ns: Option<i64>,
    pub caplen: u32,
    pub orig_len: u32,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

/// Enough of a pcapng packet block to know its fields (EPB and PB fixed part).
const NG_HEADER: usize = 28;

/// The bytes to read at a record's offset to parse it with
/// [`parse_record`]: its header, and with `data` its captured bytes (a
/// pcapng block's options and padding are not needed).
pub fn record_span(format: FileFormat, caplen: u32, data: bool) -> u64 {
    let hdr = match format {
        FileFormat::Pcap { modified, .. } => {
            if modified {
                24
            } else {
                16
            }
        }
        FileFormat::PcapNg => NG_HEADER as u64,
    };
    hdr + if data { u64::from(caplen) } else { 0 }
}

/// Reads the record at `offset` whose captured length the index says is
/// `caplen`. With `data`, its captured bytes replace `data`'s contents;
/// without, only its header is read.
pub fn read_record_at<S: ByteSource + ?Sized>(
    src: &S,
    format: FileFormat,
    iface: &Interface,
    offset: u64,
    caplen: u32,
    data: Option<&mut Vec<u8>>,
) -> Result<RecordHeader, String> {
    let want = record_span(format, caplen, data.is_some()) as usize;
    let mut buf = vec![0u8; want];
    let n = read_full(src, offset, &mut buf)
        .map_err(|e| format!("cannot read the record at byte {offset}: {e}"))?;
    buf.truncate(n);
    parse_record(&buf, format, iface, offset, caplen, data)
}

/// Parses the record whose bytes at `offset` start `buf` (as many as
/// [`record_span`] asks for, fewer only at the end of the file).
pub fn parse_record(
    buf: &[u8],
    format: FileFormat,
    iface: &Interface,
    offset: u64,
    caplen: u32,
    data: Option<&mut Vec<u8>>,
) -> Result<RecordHeader, String> {
    match format {
        FileFormat::Pcap {
            big_endian,
            nanos,
            modified,
        } => {
            let hdr = if modified { 24 } else { 16 };
            let want = record_span(format, caplen, data.is_some()) as usize;
            if buf.len() < want {
                return Err(format!(
                    "cannot read the record at byte {offset}: the file ends inside it"
                ));
            }
            let (ts, cap, orig) = record_fields(buf, big_endian, nanos);
            if let Some(d) = data {
                d.clear();
                d.extend_from_slice(&buf[hdr..want]);
            }
            Ok(RecordHeader {
                ts_ns: Some(ts),
                caplen: cap,
                orig_len: orig,
                bytes_read: want as u64,
            })
        }
        FileFormat::PcapNg => {
            let n = buf.len();
            if n < 12 {
                return Err(format!("no packet block at byte {offset}"));
            }
            let b = [buf[4], buf[5], buf[6], buf[7]];
            let len = if iface.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            if !(12..=MAX_BLOCK).contains(&len) || u64::from(len) < u64::from(caplen) + 12 {
                return Err(format!(
                    "no packet block of {caplen} captured bytes at byte {offset}"
                ));
            }
            let buf = &buf[..n.min(len as usize)];
            let (ty, _, raw, cap, orig, start) = packet_block_fields(buf, len, iface.big_endian)
                .map_err(|e| format!("at byte {offset}: {e}"))?;
            let spb = ty == 3;
            // An SPB's captured length depends on the snaplen; trust the index's if it fits.
            let cap = if spb && caplen <= cap { caplen } else { cap };
            if let Some(d) = data {
                let bytes = buf.get(start..start + cap as usize).ok_or_else(|| {
                    format!("packet block at byte {offset} is shorter than its captured length")
                })?;
                d.clear();
                d.extend_from_slice(bytes);
            }
            let ts_ns = (!spb).then(|| {
                ticks_to_ns(iface.ts_resol, raw)
                    .saturating_add(iface.ts_offset_s.saturating_mul(1_000_000_000))
            });
            Ok(RecordHeader {
                ts_ns,
                caplen: cap,
                orig_len: orig,
                bytes_read: n as u64,
            })
        }
    }
}
