//! IP datagrams rebuilt from their fragments (first copy of a byte wins),
//! so a fragmented segment or datagram reaches reassembly whole.
use std::collections::BTreeMap;

/// Datagrams being rebuilt at once; past it the oldest is given up.
const MAX_OPEN: usize = 256;
/// An IP datagram is at most 64 KiB (IPv6 jumbograms are not fragmented).
const MAX_LEN: u32 = 65_535;

#[derive(Default)]
struct Datagram {
    /// Fragment bytes by offset, non-overlapping.
    pieces: BTreeMap<u32, Vec<u8>>,
    /// Known once the last fragment (no "more fragments") arrived.
    total: Option<u32>,
    first_ts_ns: i64,
    /// Order of arrival, to give up the oldest.
    born: u64,
}

#[derive(Default)]
pub struct Defrag {
    open: BTreeMap<(bool, u32), Datagram>,
    born: u64,
    /// Datagrams given up incomplete (at the end, or to bound memory).
    pub incomplete: u64,
}

/// One fragment as it arrived.
pub struct Fragment<'a> {
    /// Tells the directions apart: their ids are independent.
    pub reverse: bool,
    pub id: u32,
    /// Its offset in the datagram, in bytes.
    pub offset: u32,
    pub more: bool,
    pub bytes: &'a [u8],
    /// The snaplen took some of its bytes, so the datagram can never be whole.
    pub cut: bool,
    pub ts_ns: i64,
}

/// A datagram once whole: its IP payload and its first fragment's time.
pub struct Whole {
    pub payload: Vec<u8>,
    pub ts_ns: i64,
}

impl Defrag {
    /// Adds a fragment; returns its datagram once every byte has arrived.
    pub fn add(&mut self, f: &Fragment<'_>) -> Option<Whole> {
        let Fragment {
            reverse,
            id,
            offset,
            more,
            bytes,
            cut,
            ts_ns,
        } = *f;
        if offset.saturating_add(bytes.len() as u32) > MAX_LEN {
            return None;
        }
        if !self.open.contains_key(&(reverse, id)) && self.open.len() >= MAX_OPEN {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, d)| d.born)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.open.remove(&k);
                self.incomplete += 1;
            }
        }
        self.born += 1;
        let born = self.born;
        let d = self.open.entry((reverse, id)).or_insert_with(|| Datagram {
            first_ts_ns: ts_ns,
            born,
            ..Datagram::default()
        });
        let end = offset + bytes.len() as u32;
        if !more && !cut {
            d.total = Some(end);
        }
        // Keep only what no earlier fragment covers.
        let mut at = offset;
        let mut fresh = Vec::new();
        for (&s, b) in d.pieces.range(..end) {
            let e = s + b.len() as u32;
            if e <= at {
                continue;
            }
            if s > at {
                fresh.push((at, s));
            }
            at = at.max(e);
        }
        if at < end {
            fresh.push((at, end));
        }
        for (s, e) in fresh {
            d.pieces.insert(
                s,
                bytes[(s - offset) as usize..(e - offset) as usize].to_vec(),
            );
        }
        let total = d.total?;
        let mut covered = 0;
        for (&s, b) in &d.pieces {
            if s > covered {
                return None;
            }
            covered = covered.max(s + b.len() as u32);
        }
        if covered < total {
            return None;
        }
        let d = self.open.remove(&(reverse, id))?;
        let mut payload = vec![0; total as usize];
        for (s, b) in d.pieces {
            let s = s as usize;
            let n = b.len().min(payload.len().saturating_sub(s));
            payload[s..s + n].copy_from_slice(&b[..n]);
        }
        Some(Whole {
            payload,
            ts_ns: d.first_ts_ns,
        })
    }

    /// Gives up what is still incomplete.
    pub fn finish(&mut self) {
        self.incomplete += self.open.len() as u64;
        self.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_in_any_order_first_copy_wins() {
        let mut d = Defrag::default();
        assert!(
            d.add(&Fragment {
                reverse: false,
                id: 7,
                offset: 8,
                more: false,
                bytes: b"ijkl",
                cut: false,
                ts_ns: 2
            })
            .is_none()
        );
        assert!(
            d.add(&Fragment {
                reverse: false,
                id: 7,
                offset: 4,
                more: true,
                bytes: b"EFGH",
                cut: false,
                ts_ns: 3
            })
            .is_none()
        );
        assert!(
            d.add(&Fragment {
                reverse: false,
                id: 7,
                offset: 4,
                more: true,
                bytes: b"xxxx",
                cut: false,
                ts_ns: 4
            })
            .is_none()
        );
        // The other direction's id 7 is another datagram.
        assert!(
            d.add(&Fragment {
                reverse: true,
                id: 7,
                offset: 0,
                more: true,
                bytes: b"zz",
                cut: false,
                ts_ns: 4
            })
            .is_none()
        );
        let w = d
            .add(&Fragment {
                reverse: false,
                id: 7,
                offset: 0,
                more: true,
                bytes: b"abcdefgh",
                cut: false,
                ts_ns: 5,
            })
            .unwrap();
        assert_eq!(w.payload, b"abcdEFGHijkl");
        assert_eq!(w.ts_ns, 2);
        d.finish();
        assert_eq!(d.incomplete, 1);
        // A cut last fragment never makes a datagram whole.
        assert!(
            d.add(&Fragment {
                reverse: false,
                id: 8,
                offset: 0,
                more: true,
                bytes: b"ab",
                cut: false,
                ts_ns: 0
            })
            .is_none()
        );
        assert!(
            d.add(&Fragment {
                reverse: false,
                id: 8,
                offset: 2,
                more: false,
                bytes: b"c",
                cut: true,
                ts_ns: 0
            })
            .is_none()
        );
    }
}
