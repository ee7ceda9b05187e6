//! Reading one record back at an offset the index recorded, with one
//! positioned read, and reporting what its header says so the caller can
//! check it is still the record that was indexed.
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::pcap::record_fields;
use crate::pcapng::{packet_block_fields, ticks_to_ns};
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

/// Reads the record at `offset` whose captured length the index says is
/// `caplen`. With `data`, its captured bytes replace `data`'s contents;
/// without, only its header is read.
pub fn read_record_at(
    file: &File,
    format: FileFormat,
    iface: &Interface,
    offset: u64,
    caplen: u32,
    data: Option<&mut Vec<u8>>,
) -> Result<RecordHeader, String> {
    let io = |e: std::io::Error| format!("cannot read the record at byte {offset}: {e}");
    match format {
        FileFormat::Pcap {
            big_endian,
            nanos,
            modified,
        } => {
            let hdr = if modified { 24 } else { 16 };
            let want = hdr + if data.is_some() { caplen as usize } else { 0 };
            let mut buf = vec![0u8; want];
            file.read_exact_at(&mut buf, offset).map_err(io)?;
            let (ts, cap, orig) = record_fields(&buf, big_endian, nanos);
            if let Some(d) = data {
                d.clear();
                d.extend_from_slice(&buf[hdr..]);
            }
            Ok(RecordHeader {
                ts_ns: Some(ts),
                caplen: cap,
                orig_len: orig,
                bytes_read: want as u64,
            })
        }
        FileFormat::PcapNg => {
            // The fixed part and the captured bytes; options and padding are not needed.
            let want = NG_HEADER + if data.is_some() { caplen as usize } else { 0 };
            let mut buf = vec![0u8; want];
            let n = read_up_to(file, &mut buf, offset).map_err(io)?;
            buf.truncate(n);
            if buf.len() < 12 {
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
            buf.truncate(len as usize);
            let (ty, _, raw, cap, orig, start) = packet_block_fields(&buf, len, iface.big_endian)
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

/// Reads as much of `buf` as the file holds at `offset`.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
