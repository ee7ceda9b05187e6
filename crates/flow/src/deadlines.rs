//! A queue of flow deadlines, earliest first, built for how the tracker
//! fills it: a deadline is mostly "this packet's time plus a fixed delay"
//! (a timeout, the idle flush), so per delay they arrive already in order.
//! Those go to the back of a FIFO run, which costs nothing to pop; only
//! deadlines that arrive out of order (renewals, restored flows, packets
//! stamped in the past) go to a heap. A binary heap of every deadline cost
//! the tracker a cache miss per level on each pop.
//!
//! Entries come out in exactly the order a single heap would give them
//! (by the whole tuple), so the index does not depend on which side held them.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// (when, flow id, slot): an entry is stale once its slot holds another flow.
pub(crate) type Deadline = (i64, u64, u32);

/// Beyond this many distinct delays, deadlines go to the heap.
const MAX_RUNS: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// Per delay: deadlines pushed in nondecreasing order.
    runs: Vec<(i64, VecDeque<Deadline>)>,
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl Deadlines {
    /// Adds `d`, computed as some time plus `delay` (the run it may join).
    pub fn push(&mut self, d: Deadline, delay: i64) {
        let run = match self.runs.iter().position(|(k, _)| *k == delay) {
            Some(i) => Some(i),
            None if self.runs.len() < MAX_RUNS => {
                self.runs.push((delay, VecDeque::new()));
                Some(self.runs.len() - 1)
            }
            None => None,
        };
        if let Some((_, q)) = run.and_then(|i| self.runs.get_mut(i))
            && q.back().is_none_or(|b| *b <= d)
        {
            q.push_back(d);
            return;
        }
        self.heap.push(Reverse(d));
    }

    /// The earliest deadline, and which run holds it (`None`: the heap).
    fn first(&self) -> Option<(Deadline, Option<usize>)> {
        let mut best = self.heap.peek().map(|Reverse(d)| (*d, None));
        for (i, (_, q)) in self.runs.iter().enumerate() {
            if let Some(&d) = q.front()
                && best.is_none_or(|(b, _)| d < b)
            {
                best = Some((d, Some(i)));
            }
        }
        best
    }

    pub fn peek(&self) -> Option<Deadline> {
        self.first().map(|(d, _)| d)
    }

    pub fn pop(&mut self) -> Option<Deadline> {
        let (d, from) = self.first()?;
        match from {
            Some(i) => self.runs.get_mut(i).and_then(|(_, q)| q.pop_front()),
            None => self.heap.pop().map(|Reverse(d)| d),
        };
        Some(d)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len() + self.runs.iter().map(|(_, q)| q.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops in the order a plain heap of the same pushes would, for a mix
    /// of in-order runs, out-of-order pushes and pops in between.
    #[test]
    fn same_order_as_a_heap() {
        let mut q = Deadlines::default();
        let mut heap = BinaryHeap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let delays = [5, 60, 480, 2, 7, 11, 13, 17, 19, 23];
        let mut now = 0i64;
        for id in 0..20_000u64 {
            now += (rand() % 3) as i64;
            let delay = delays[(rand() % delays.len() as u64) as usize];
            // Now and then a packet stamped in the past, or a renewal.
            let at = if rand() % 10 == 0 {
                now - (rand() % 50) as i64
            } else {
                now
            };
            let d = (at + delay, id, (rand() % 100) as u32);
            q.push(d, delay);
            heap.push(Reverse(d));
            if rand() % 3 == 0 {
                let limit = now - 100 + (rand() % 200) as i64;
                while let Some(d) = q.peek() {
                    if d.0 >= limit {
                        break;
                    }
                    assert_eq!(heap.pop().map(|Reverse(d)| d), q.pop());
                }
            }
            assert_eq!(heap.len(), q.len());
            assert_eq!(heap.peek().map(|Reverse(d)| *d), q.peek());
        }
        while let Some(Reverse(d)) = heap.pop() {
            assert_eq!(Some(d), q.pop());
        }
        assert_eq!(q.pop(), None);
        assert!(q.runs.len() <= MAX_RUNS);
    }
}
