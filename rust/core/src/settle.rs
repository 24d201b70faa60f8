// SPDX-License-Identifier: GPL-2.0

//! Small freed blocks that must stay free a while before they are reported.
//!
//! A workload that frees memory and takes it again within a second or two
//! (a page-fault loop, a build, a cache that turns over) frees the same
//! small blocks over and over. Reporting each of them as soon as it is
//! freed makes the worker isolate and report memory that the guest then
//! takes again, and the host fault it in again: the guest pays for the
//! work and the host gains nothing. Linux's free page reporting avoids it
//! by looking at the free lists only every two seconds and at pageblocks
//! only.
//!
//! [`Settle`] keeps the pfn ranges of blocks smaller than a pageblock that
//! were freed in two *generations*: `young`, freed since the last tick, and
//! `old`, freed in the interval before. At each tick (every `settle_ms`)
//! the worker scans `old` minus `young`: blocks freed at least one interval
//! and at most two ago that were **not freed again since**. A block that
//! was freed again in between was allocated in between: it is churning, and
//! its newer free is in `young`, which waits for the next tick. Whatever
//! the scan finds still free has stayed free for at least an interval.
//!
//! Both generations have a fixed capacity. A full `young` is first sorted
//! and merged; if that leaves it more than half full, the closest ranges
//! are joined, which covers the pages between them too. That is safe both
//! ways: pages wrongly counted as freed again in `young` are only looked at
//! one tick later, and pages wrongly counted as freed in `old` are scanned
//! for nothing, since a scan takes only free pages.

use crate::ranges::PfnRange;

/// The two generations of freed ranges; see the [module docs](self).
///
/// The generations trade places at each tick (O(1)): `gens[young]` is the
/// young one, the other the old one.
///
/// INVARIANT: `young <= 1`, `young_len <= N` and `old_len <= N`; the old
/// generation's first `old_len` ranges are sorted, non-empty, and no two of
/// them overlap or touch.
#[derive(Clone, Debug)]
pub struct Settle<const N: usize> {
    gens: [[PfnRange; N]; 2],
    young: usize,
    young_len: usize,
    old_len: usize,
}

impl<const N: usize> Default for Settle<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Sorts `v` by start and merges overlapping or touching ranges in place;
/// returns the new length. Empty ranges are dropped.
fn normalize(v: &mut [PfnRange]) -> usize {
    v.sort_unstable_by_key(|r| r.start);
    let mut n: usize = 0;
    for i in 0..v.len() {
        let r = v[i];
        if r.is_empty() {
            continue;
        }
        match n.checked_sub(1) {
            Some(last) if r.start <= v[last].end => {
                v[last].end = v[last].end.max(r.end);
            }
            _ => {
                v[n] = r;
                n += 1;
            }
        }
    }
    n
}

/// Joins neighbours of the sorted, disjoint ranges `v` whose gap is at most
/// a threshold that doubles until at most `target` ranges are left (or one);
/// returns the new length.
fn coarsen(v: &mut [PfnRange], target: usize) -> usize {
    let mut n = v.len();
    let mut gap: u64 = 1;
    while n > target.max(1) {
        let mut m: usize = 0;
        for i in 0..n {
            let r = v[i];
            match m.checked_sub(1) {
                Some(last) if r.start.saturating_sub(v[last].end) <= gap => {
                    v[last].end = v[last].end.max(r.end);
                }
                _ => {
                    v[m] = r;
                    m += 1;
                }
            }
        }
        n = m;
        gap = gap.saturating_mul(2);
    }
    n
}

impl<const N: usize> Settle<N> {
    /// Nothing waiting.
    pub const fn new() -> Self {
        Settle {
            gens: [[PfnRange { start: 0, end: 0 }; N]; 2],
            young: 0,
            young_len: 0,
            old_len: 0,
        }
    }

    /// The young generation (all `N` slots) and the old one's ranges.
    fn split(&mut self) -> (&mut [PfnRange; N], &[PfnRange]) {
        let [a, b] = &mut self.gens;
        let (young, old) = if self.young == 0 { (a, b) } else { (b, a) };
        (young, &old[..self.old_len.min(N)])
    }

    /// Whether no range waits in either generation.
    pub const fn is_empty(&self) -> bool {
        self.young_len == 0 && self.old_len == 0
    }

    /// Pages waiting in either generation (a page in both counts twice).
    pub fn pages(&self) -> u64 {
        let young = &self.gens[self.young & 1][..self.young_len.min(N)];
        young.iter().map(|r| r.pages()).sum::<u64>() + self.old_pages()
    }

    /// Pages in the old generation: what the next tick looks at, less
    /// what was freed again since.
    pub fn old_pages(&self) -> u64 {
        let old = &self.gens[(self.young & 1) ^ 1][..self.old_len.min(N)];
        old.iter().map(|r| r.pages()).sum()
    }

    /// Notes that the pages of `r` were freed now. Never fails: a full
    /// generation is merged and, if need be, coarsened.
    pub fn add(&mut self, r: PfnRange) {
        if r.is_empty() {
            return;
        }
        let mut len = self.young_len;
        let (young, _) = self.split();
        if len == N {
            len = normalize(&mut young[..]);
            if len > N / 2 {
                len = coarsen(&mut young[..len], N / 2);
            }
        }
        if let Some(slot) = young.get_mut(len) {
            *slot = r;
            len += 1;
        } else if let Some(last) = young.last_mut() {
            // N == 1 and the one range could not be coarsened away: grow it.
            *last = last.hull(r);
        }
        // INVARIANT: `len` is at most N: a slot below N was found, or it
        // is N.
        self.young_len = len;
    }

    /// The tick: calls `scan` on every piece of `old` that is not in
    /// `young` (in pfn order), then makes `young` the new `old`. Returns
    /// the pages passed to `scan`.
    pub fn tick(&mut self, mut scan: impl FnMut(PfnRange)) -> u64 {
        let len = self.young_len.min(N);
        let (young, old) = self.split();
        let len = normalize(&mut young[..len]);
        let young = &young[..len];
        let mut pages = 0;
        let mut j = 0;
        for &o in old {
            let mut start = o.start;
            // Young ranges that end at or before `start` cannot cut `o`
            // or any later old range (both lists are sorted and disjoint).
            while j < young.len() && young[j].end <= start {
                j += 1;
            }
            let mut k = j;
            while start < o.end {
                match young.get(k) {
                    Some(y) if y.start < o.end => {
                        if y.start > start {
                            let piece = PfnRange::new(start, y.start);
                            pages += piece.pages();
                            scan(piece);
                        }
                        start = start.max(y.end);
                        k += 1;
                    }
                    _ => {
                        let piece = PfnRange::new(start, o.end);
                        pages += piece.pages();
                        scan(piece);
                        start = o.end;
                    }
                }
            }
        }
        // INVARIANT: the young generation's first `len` ranges were just
        // normalized (sorted, non-empty, neither overlapping nor touching)
        // and it becomes the old one; the new young one is empty.
        self.young ^= 1;
        self.old_len = len;
        self.young_len = 0;
        pages
    }

    /// Forgets both generations; returns the pages they held.
    pub fn clear(&mut self) -> u64 {
        let pages = self.pages();
        self.young_len = 0;
        self.old_len = 0;
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> PfnRange {
        PfnRange::new(start, end)
    }

    fn ticked<const N: usize>(s: &mut Settle<N>) -> ([PfnRange; 8], usize) {
        let mut out = [PfnRange::default(); 8];
        let mut n = 0;
        s.tick(|p| {
            out[n] = p;
            n += 1;
        });
        (out, n)
    }

    #[test]
    fn a_range_is_scanned_at_its_second_tick() {
        let mut s = Settle::<8>::new();
        assert!(s.is_empty());
        s.add(r(10, 20));
        assert_eq!(ticked(&mut s).1, 0, "too young at the first tick");
        let (out, n) = ticked(&mut s);
        assert_eq!(&out[..n], &[r(10, 20)]);
        assert!(s.is_empty());
        assert_eq!(ticked(&mut s).1, 0);
    }

    #[test]
    fn freed_again_is_not_scanned_yet() {
        let mut s = Settle::<8>::new();
        s.add(r(0, 100));
        ticked(&mut s);
        // Pages 10..20 and 50..60 freed again (so taken in between).
        s.add(r(10, 20));
        s.add(r(55, 60));
        s.add(r(50, 55));
        let (out, n) = ticked(&mut s);
        assert_eq!(&out[..n], &[r(0, 10), r(20, 50), r(60, 100)]);
        // Their turn comes one tick later.
        let (out, n) = ticked(&mut s);
        assert_eq!(&out[..n], &[r(10, 20), r(50, 60)]);
    }

    #[test]
    fn young_ranges_outside_old_ones_cut_nothing() {
        let mut s = Settle::<8>::new();
        s.add(r(100, 200));
        s.add(r(300, 400));
        ticked(&mut s);
        s.add(r(0, 50));
        s.add(r(150, 350));
        s.add(r(500, 600));
        let (out, n) = ticked(&mut s);
        assert_eq!(&out[..n], &[r(100, 150), r(350, 400)]);
    }

    #[test]
    fn full_generation_is_merged_then_coarsened() {
        let mut s = Settle::<4>::new();
        // Four touching ranges merge into one.
        for i in 0..4 {
            s.add(r(i * 10, i * 10 + 10));
        }
        s.add(r(100, 101));
        assert_eq!(s.young_len, 2);
        // Scattered pages: joined once they do not fit.
        for p in [200, 300, 400, 500, 600] {
            s.add(r(p, p + 1));
        }
        assert!(s.young_len <= 4);
        assert_eq!(ticked(&mut s).1, 0);
        let mut covered = [false; 700];
        s.tick(|p| {
            for i in p.start..p.end {
                covered[i as usize] = true;
            }
        });
        for p in [0, 39, 100, 200, 300, 400, 500, 600] {
            assert!(covered[p], "page {p} freed but not scanned");
        }
    }

    #[test]
    fn pages_and_clear() {
        let mut s = Settle::<4>::new();
        s.add(r(0, 10));
        s.add(r(5, 5));
        ticked(&mut s);
        s.add(r(20, 25));
        assert_eq!(s.pages(), 15);
        assert_eq!(s.clear(), 15);
        assert!(s.is_empty());
    }

    #[test]
    fn one_slot_grows() {
        let mut s = Settle::<1>::new();
        s.add(r(0, 1));
        s.add(r(10, 11));
        s.add(r(5, 6));
        ticked(&mut s);
        let (out, n) = ticked(&mut s);
        assert_eq!(&out[..n], &[r(0, 11)]);
    }
}
