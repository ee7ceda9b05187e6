//! Reading one record back at an offset the index recorded, with one
//! positioned read, and reporting what its header says so the caller can
//! check it is still the record that was indexed.
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::pcap::record_fields;
use crate::pcapng::{packet_block_fields, ticks_to_ns};
use crate::{FileFormat, Interface};

/// What a record's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// `None` for a Simple Packet Block, which carries no timestamp.
    pub ts_ns: Option<i64>,
    pub caplen: u32,
    pub orig_len: u32,
}

/// Reads the record at `offset` whose captured length the index says is
/// `caplen`; its captured bytes replace `data`'s contents.
pub fn read_record_at(
    file: &File,
    format: FileFormat,
    iface: &Interface,
    offset: u64,
    caplen: u32,
    data: &mut Vec<u8>,
) -> Result<RecordHeader, String> {
    let io = |e: std::io::Error| format!("cannot read the record at byte {offset}: {e}");
    match format {
        FileFormat::Pcap {
            big_endian,
            nanos,
            modified,
        } => {
            let hdr = if modified { 24 } else { 16 };
            let mut buf = vec![0u8; hdr + caplen as usize];
            file.read_exact_at(&mut buf, offset).map_err(io)?;
            let (ts, cap, orig) = record_fields(&buf, big_endian, nanos);
            data.clear();
            data.extend_from_slice(&buf[hdr..]);
            Ok(RecordHeader {
                ts_ns: Some(ts),
                caplen: cap,
                orig_len: orig,
            })
        }
        FileFormat::PcapNg => {
            let mut head = [0u8; 8];
            file.read_exact_at(&mut head, offset).map_err(io)?;
            let b = [head[4], head[5], head[6], head[7]];
            let len = if iface.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            // The block holds the captured bytes plus at most 32 bytes of fixed fields and options.
            if !(12..=crate::MAX_BLOCK).contains(&len) || u64::from(len) < u64::from(caplen) + 12 {
                return Err(format!(
                    "no packet block of {caplen} captured bytes at byte {offset}"
                ));
            }
            let mut block = vec![0u8; len as usize];
            file.read_exact_at(&mut block, offset).map_err(io)?;
            let (ty, _, raw, cap, orig, start) = packet_block_fields(&block, iface.big_endian)
                .map_err(|e| format!("at byte {offset}: {e}"))?;
            let spb = ty == 3;
            // An SPB's captured length depends on the snaplen; trust the index's if it fits.
            let cap = if spb && caplen <= cap { caplen } else { cap };
            let end = start + cap as usize;
            let bytes = block.get(start..end).ok_or_else(|| {
                format!("packet block at byte {offset} is shorter than its captured length")
            })?;
            data.clear();
            data.extend_from_slice(bytes);
            let ts_ns = (!spb).then(|| {
                ticks_to_ns(iface.ts_resol, raw)
                    .saturating_add(iface.ts_offset_s.saturating_mul(1_000_000_000))
            });
            Ok(RecordHeader {
                ts_ns,
                caplen: cap,
                orig_len: orig,
            })
        }
    }
}
