//! The active flows' hash table: key hash → slot.
//!
//! A plain open-addressing table (linear probing, backward-shift deletion)
//! instead of a general one, because the tracker must be able to prefetch
//! in two steps, which a general table does not expose: first the table's
//! cache line for a packet some way ahead, then, once that line is in cache,
//! the flow state its slot points to (see `Tracker::prefetch_*`). On a busy
//! link the active flows do not fit the CPU cache, and these two trips to
//! memory were most of the tracker's time.
//!
//! An entry packs the low 32 bits of the hash (its tag, from which its home
//! position follows) with the slot + 1; 0 is an empty entry.

pub(crate) struct SlotTable {
    entries: Vec<u64>,
    len: usize,
}

const MIN_BITS: u32 = 4;

impl SlotTable {
    pub fn new() -> Self {
        SlotTable {
            entries: vec![0; 1 << MIN_BITS],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Where entries of a hash start probing: its low bits (rustc-hash 2
    /// rotates its best bits there, for tables like this one).
    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask()
    }

    fn tag(hash: u64) -> u32 {
        hash as u32
    }

    fn pack(tag: u32, slot: u32) -> u64 {
        debug_assert!(slot < u32::MAX);
        u64::from(tag) << 32 | (u64::from(slot) + 1)
    }

    fn slot_of(e: u64) -> u32 {
        (e as u32).wrapping_sub(1)
    }

    /// The slots stored under `hash` (whatever their keys), in probe order.
    pub fn candidates(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let tag = Self::tag(hash);
        let mask = self.mask();
        let mut i = self.home(tag);
        std::iter::from_fn(move || {
            loop {
                let e = self.entries[i];
                if e == 0 {
                    return None;
                }
                i = (i + 1) & mask;
                if (e >> 32) as u32 == tag {
                    return Some(Self::slot_of(e));
                }
            }
        })
    }

    /// The first slot stored under `hash` that `eq` accepts.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Option<u32> {
        self.candidates(hash).find(|&s| eq(s))
    }

    /// The table's cache line for `hash`, for a prefetch.
    pub fn home_entry(&self, hash: u64) -> &u64 {
        &self.entries[self.home(Self::tag(hash))]
    }

    /// Adds `slot` under `hash` (the caller knows it is not there yet).
    pub fn insert(&mut self, hash: u64, slot: u32) {
        // At most 1/2 full, so probes stay short.
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow();
        }
        self.place(Self::pack(Self::tag(hash), slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = self.home((e >> 32) as u32);
        while self.entries[i] != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let bigger = vec![0; 2 * self.entries.len()];
        let old = std::mem::replace(&mut self.entries, bigger);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Removes `slot`, stored under `hash`; false if it was not there.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let e = Self::pack(Self::tag(hash), slot);
        let mask = self.mask();
        let mut hole = self.home(Self::tag(hash));
        loop {
            match self.entries[hole] {
                0 => return false,
                x if x == e => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Backward shift: later entries of the run move into the hole unless
        // that would put them before their home.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = self.home((e >> 32) as u32);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
        self.len -= 1;
        true
    }
}

/// Starts loading the cache lines of `*v` (a hint: never faults, never waits).
#[inline]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = (v as *const T).cast::<i8>();
        for line in (0..size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch is a hint: it never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small deterministic generator (xorshift), so failures replay.
    fn rng(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn agrees_with_a_hash_map_through_inserts_and_removes() {
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        let mut t = SlotTable::new();
        let mut model: HashMap<u32, u64> = HashMap::new();
        let mut slot = 0u32;
        for step in 0..200_000 {
            // Few distinct hashes (and so long runs and equal tags) now and
            // then, and growth then shrinkage of the live set.
            let hash = if step % 7 == 0 { next() % 64 } else { next() };
            let grow = (step / 50_000) % 2 == 0;
            if model.is_empty() || next() % 10 < if grow { 7 } else { 3 } {
                t.insert(hash, slot);
                model.insert(slot, hash);
                slot += 1;
            } else {
                let &victim = model
                    .keys()
                    .nth((next() % model.len() as u64) as usize)
                    .unwrap();
                let h = model.remove(&victim).unwrap();
                assert!(t.remove(h, victim));
                assert!(!t.remove(h, victim), "removed twice");
            }
            assert_eq!(t.len(), model.len());
            if step % 1000 == 0 {
                for (&s, &h) in &model {
                    assert_eq!(
                        t.find(h, |c| c == s),
                        Some(s),
                        "slot {s} lost at step {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn candidates_are_the_slots_with_that_hash() {
        let mut t = SlotTable::new();
        // Hashes that share a home but not a tag.
        let (a, b, c) = (1 << 20, 2 << 20, 3 << 20);
        for s in 0..10 {
            t.insert(a, s);
        }
        t.insert(b, 99);
        let mut found: Vec<u32> = t.candidates(a).collect();
        found.sort_unstable();
        assert_eq!(found, (0..10).collect::<Vec<_>>());
        assert_eq!(t.find(b, |_| true), Some(99));
        assert_eq!(t.find(c, |_| true), None);
    }
}
