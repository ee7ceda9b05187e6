//! Records whose timestamp is far out of line with their file's neighbours
//! (a zero, a far future, a clock decades off for one record) are placed
//! beside those neighbours: a lone bad time must not split or stretch a
//! flow, move a file's time span, or send the tracker's clock decades ahead
//! (which would end every open flow at once).
//!
//! The rule (docs/schema.md): a record is *out of line* when it is more than
//! [`OUT_OF_LINE_NS`] away from the file's previous record in line and, of
//! the next [`LOOK_AHEAD`] records, the first that is near (within that
//! distance of) either is near that previous one: the clock came back after
//! this one record. When a record near it comes first, or none is near
//! either, the clock moved (a capture resumed after a pause, a clock set by
//! NTP, captures of other times concatenated) and the record is in line, as
//! is what follows. The last record of a file is out of line when it
//! is far from the previous one and that one's time was confirmed by a record
//! near it. A file's first record is judged by the two after it: out of line
//! when it is far from the next one and those two are near each other.
//!
//! An out-of-line record is placed at the time of the file's previous
//! record in line (or, first in its file, of the next one); its position
//! keeps its own time, so `packets` shows and carving writes the record as
//! it is. Times within the distance of each other (jitter, the modest
//! disorder of multi-interface captures) are left exactly as they are.

/// How far from its neighbours a record's time must be to be out of line.
pub(crate) const OUT_OF_LINE_NS: i64 = 3600 * 1_000_000_000;

/// How many later records may be looked at to judge a suspect.
pub(crate) const LOOK_AHEAD: usize = 16;

fn near(a: i64, b: i64) -> bool {
    a.abs_diff(b) <= OUT_OF_LINE_NS as u64
}

/// Judging a record needs the records after the ones given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NeedMore;

/// One file's clock: the time of its last record in line, and whether a
/// record near it confirmed it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    last: Option<i64>,
    confirmed: bool,
}

impl Clock {
    /// A clock continuing a file whose last record in line was at `last`.
    pub fn resumed(last: Option<i64>) -> Self {
        Clock {
            last,
            confirmed: last.is_some(),
        }
    }

    /// The times to place the records of times `ts` at (the next records of
    /// the file), in order. `ahead`: the times of records read after them;
    /// `ends`: whether the file ends after those. `NeedMore` when judging one
    /// of `ts` needs records not given (the clock is left as it was).
    pub fn place(&mut self, ts: &[i64], ahead: &[i64], ends: bool) -> Result<Vec<i64>, NeedMore> {
        let n = ts.len();
        // Some(t): the record k records on; None: the file ends before it.
        let at = |k: usize| -> Result<Option<i64>, NeedMore> {
            match ts.get(k).or_else(|| ahead.get(k - n)) {
                Some(&t) => Ok(Some(t)),
                None if ends => Ok(None),
                None => Err(NeedMore),
            }
        };
        let mut out = Vec::with_capacity(n);
        let (mut last, mut confirmed) = (self.last, self.confirmed);
        for (i, &t) in ts.iter().enumerate() {
            let placed = match last {
                Some(r) if near(t, r) => {
                    confirmed = true;
                    t
                }
                Some(r) => {
                    // Out of line if the clock comes back before a record near
                    // this one (a lone time), or if the file ends right after
                    // it (and the clock it left was confirmed); otherwise it
                    // stands: the clock moved.
                    let mut back = None;
                    for k in i + 1..=i + LOOK_AHEAD {
                        let Some(v) = at(k)? else {
                            back.get_or_insert(k == i + 1 && confirmed);
                            break;
                        };
                        if near(v, r) {
                            back = Some(true);
                            break;
                        }
                        if near(v, t) {
                            back = Some(false);
                            break;
                        }
                    }
                    if back == Some(true) { r } else { t }
                }
                None => match (at(i + 1)?, at(i + 2)?) {
                    (Some(v1), Some(v2)) if !near(t, v1) && near(v1, v2) => v1,
                    _ => t,
                },
            };
            // Only a record in line moves the clock; one placed at the next
            // record's time (first in its file) leaves it unset.
            if placed == t {
                if last.is_some_and(|r| !near(t, r)) {
                    confirmed = false;
                }
                last = Some(t);
            }
            out.push(placed);
        }
        (self.last, self.confirmed) = (last, confirmed);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1_000_000_000;
    const S: i64 = 1_000_000_000;
    /// 2012-06-29, a time of the corpus' DHCP trace.
    const T0: i64 = 1_340_954_905 * S;

    fn place_all(ts: &[i64]) -> Vec<i64> {
        Clock::default().place(ts, &[], true).unwrap()
    }

    /// The same placement, the records given in pieces (as the merge reads
    /// chunks), each piece with the next one when it asks for what follows
    /// (and all the rest when even that is not enough).
    fn place_in_pieces(ts: &[i64], piece: usize) -> Vec<i64> {
        let mut c = Clock::default();
        let mut out = Vec::new();
        for (i, p) in ts.chunks(piece).enumerate() {
            let rest = &ts[((i + 1) * piece).min(ts.len())..];
            let next = &rest[..rest.len().min(piece)];
            let placed = c
                .place(p, &[], rest.is_empty())
                .or_else(|NeedMore| c.place(p, next, next.len() == rest.len()))
                .or_else(|NeedMore| c.place(p, rest, true))
                .unwrap();
            out.extend(placed);
        }
        out
    }

    #[test]
    fn jitter_and_disorder_stay_exact() {
        let ts = [
            T0,
            T0 + 5 * S,
            T0 + 2 * S,
            T0 + 30 * 60 * S,
            T0 + 29 * 60 * S,
        ];
        assert_eq!(place_all(&ts), ts);
    }

    #[test]
    fn a_lone_bad_time_is_placed_beside_its_neighbours() {
        // Zero, far future, decades back, in the middle.
        for bad in [0, T0 + 30 * 365 * 24 * H, T0 - 28 * 365 * 24 * H] {
            let ts = [T0, T0 + S, bad, T0 + 2 * S, T0 + 3 * S];
            assert_eq!(place_all(&ts), [T0, T0 + S, T0 + S, T0 + 2 * S, T0 + 3 * S]);
        }
        // Two bad ones in a row, each its own.
        let ts = [T0, T0 + S, 0, 30 * 365 * 24 * H, T0 + 2 * S];
        assert_eq!(place_all(&ts), [T0, T0 + S, T0 + S, T0 + S, T0 + 2 * S]);
        // Two near each other: a stretch of another time, left as it is.
        let ts = [T0, T0 + S, 0, 7 * S, T0 + 2 * S, T0 + 3 * S];
        assert_eq!(place_all(&ts), ts);
        // Last in its file: nothing after it says the clock moved.
        assert_eq!(place_all(&[T0, T0 + S, 0]), [T0, T0 + S, T0 + S]);
    }

    #[test]
    fn a_bad_first_record_takes_the_next_ones_time() {
        assert_eq!(place_all(&[0, T0, T0 + S]), [T0, T0, T0 + S]);
        // Two records far apart, nothing else: no evidence either way.
        assert_eq!(place_all(&[0, T0]), [0, T0]);
        assert_eq!(place_all(&[0]), [0]);
    }

    #[test]
    fn a_clock_that_moves_moves_everything_after_it() {
        // A capture paused for a day, a clock set forward by NTP after boot.
        for (before, after) in [(T0, T0 + 24 * H), (S, T0)] {
            let ts = [before, before + S, after, after + S, after + 2 * S];
            assert_eq!(place_all(&ts), ts);
        }
        // A lone record in a long quiet period, its neighbours hours apart.
        let ts = [T0, T0 + 3 * H, T0 + 6 * H, T0 + 6 * H + S];
        assert_eq!(place_all(&ts), ts);
    }

    #[test]
    fn pieces_place_as_the_whole_does() {
        let ts = [
            0,
            T0,
            T0 + S,
            0,
            T0 + 2 * S,
            T0 + 30 * 365 * 24 * H,
            T0 + 3 * S,
            T0 + 24 * H,
            T0 + 24 * H + S,
            5,
        ];
        let whole = place_all(&ts);
        for piece in 1..=ts.len() {
            assert_eq!(place_in_pieces(&ts, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_resumed_file_is_judged_against_what_it_had() {
        let mut c = Clock::resumed(Some(T0));
        assert_eq!(c.place(&[0, T0 + S], &[], true).unwrap(), [T0, T0 + S]);
        // Unknown what follows: asks for it, and changes nothing meanwhile.
        let mut c = Clock::resumed(Some(T0));
        assert_eq!(c.place(&[T0 + S, 0], &[], false), Err(NeedMore));
        assert_eq!(c.place(&[T0 + S], &[], false).unwrap(), [T0 + S]);
        assert_eq!(c.place(&[0], &[T0 + 2 * S], false).unwrap(), [T0 + S]);
    }
}
