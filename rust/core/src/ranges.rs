// SPDX-License-Identifier: GPL-2.0

//! Sorting captured entries and turning them into page ranges.
//!
//! The reporting pipeline over one captured batch is
//! `sort(entries)` → [`merge`] → [`cut`] → [`crate::batch::Batcher`], all in
//! place or lazy, with no allocation:
//!
//! - [`sort`] orders the entries by pfn (then order) in place.
//! - [`merge`] folds sorted entries into maximal ranges: overlapping,
//!   duplicate and adjacent blocks of any order become one range, so the
//!   output is sorted, disjoint and non-adjacent. [`merge_out`] first
//!   rounds each entry out to the aligned block of a given order holding it.
//! - [`cut`] keeps, of each range, its largest sub-range that starts and
//!   ends on a `1 << min_order`-page boundary.

use crate::capture::{Entry, PFN_BITS};

/// A half-open range of page frames `[start, end)`.
///
/// The fields are public; a range with `start >= end` is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PfnRange {
    /// First page frame of the range.
    pub start: u64,
    /// One past the last page frame of the range.
    pub end: u64,
}

impl PfnRange {
    /// The range `[start, end)`.
    #[inline]
    pub const fn new(start: u64, end: u64) -> Self {
        PfnRange { start, end }
    }

    /// The pages of an entry, `[pfn, pfn + (1 << order))`.
    #[inline]
    pub const fn from_entry(e: Entry) -> Self {
        PfnRange {
            start: e.pfn(),
            end: e.end(),
        }
    }

    /// Number of pages, `end - start` (0 if `start >= end`).
    #[inline]
    pub const fn pages(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no page.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// The smallest range covering both `self` and `other`; an empty range
    /// counts as nothing, so the hull with an empty range is the other one.
    #[inline]
    pub const fn hull(self, other: PfnRange) -> PfnRange {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        PfnRange {
            start: if self.start < other.start {
                self.start
            } else {
                other.start
            },
            end: if self.end > other.end {
                self.end
            } else {
                other.end
            },
        }
    }

    /// Length in bytes for pages of `1 << page_shift` bytes, or `None` if it
    /// does not fit in a `u64`.
    #[inline]
    pub const fn byte_len(&self, page_shift: u32) -> Option<u64> {
        let pages = self.pages();
        if page_shift >= u64::BITS {
            return if pages == 0 { Some(0) } else { None };
        }
        if pages > (u64::MAX >> page_shift) {
            return None;
        }
        Some(pages << page_shift)
    }
}

impl From<Entry> for PfnRange {
    fn from(e: Entry) -> Self {
        PfnRange::from_entry(e)
    }
}

/// Buckets up to this length are insertion sorted.
const INSERTION_MAX: usize = 20;

/// Slices up to this length are left to `sort_unstable`, which the
/// benchmark finds as fast or faster there.
const SMALL_MAX: usize = 512;

/// Bits per radix digit; 256 buckets.
const RADIX_BITS: u32 = 8;
const BUCKETS: usize = 1 << RADIX_BITS;

/// Largest slice [`sort`] gives to [`radix_sort`]; longer ones go to
/// `sort_unstable`, which the benchmark finds faster there.
pub const RADIX_MAX: usize = 8192;

/// Sorts `entries` by pfn, then order, in place: the sort of the pipeline.
///
/// Slices of 513 to [`RADIX_MAX`] entries are sorted by [`radix_sort`],
/// others by core's `sort_unstable` (pattern-defeating quicksort with a
/// branchless small-slice sort). That split is what
/// `tools/core-bench.sh` measured fastest for batches of freed pages:
/// `Documentation/mm/page_hinting_core.rst` has the figures.
///
/// It allocates nothing and cannot panic (`Entry` has a total order).
/// Stack use is that of [`radix_sort`], or a few hundred bytes for
/// `sort_unstable`.
pub fn sort(entries: &mut [Entry]) {
    if entries.len() > RADIX_MAX {
        entries.sort_unstable();
    } else {
        radix_sort_inner(entries);
    }
}

/// Sorts `entries` by pfn, then order, in place, with an in-place
/// most-significant-digit radix sort (American flag sort).
///
/// Each pass partitions on up to 8 of the bits in which the entries of the
/// slice actually differ, as many as give buckets of about 4 entries
/// (batches of freed pages have small keys: a 64 GiB guest has 24-bit pfns,
/// so 32-bit entries). Buckets of up to 16 entries are then sorted with
/// branchless sorting networks, up to 20 by insertion, larger ones
/// recursively; slices of up to 512 entries go to core's `sort_unstable`,
/// and so do slices longer than `u32::MAX`. Already sorted slices are
/// detected in one pass and left alone.
///
/// It allocates nothing and never panics. Stack use is bounded: a
/// partitioning pass takes two 256-entry `u32` tables (about 2.2 KiB in
/// all, released before recursing) and each of the at most 10 recursion
/// levels (each consumes at least 7 key bits) under 100 bytes.
pub fn radix_sort(entries: &mut [Entry]) {
    if entries.len() > u32::MAX as usize {
        entries.sort_unstable();
    } else {
        radix_sort_inner(entries);
    }
}

/// Insertion sort, for short slices.
#[inline]
fn insertion_sort(v: &mut [Entry]) {
    for i in 1..v.len() {
        // `i < v.len()` and `j <= i`, so every index below is in bounds.
        let Some(&x) = v.get(i) else { return };
        let mut j = i;
        while j > 0 {
            let Some(&prev) = v.get(j - 1) else { break };
            if prev <= x {
                break;
            }
            if let Some(slot) = v.get_mut(j) {
                *slot = prev;
            }
            j -= 1;
        }
        if let Some(slot) = v.get_mut(j) {
            *slot = x;
        }
    }
}

/// Not smaller than any entry: pads network inputs.
const TOP: Entry = Entry::MAX;

/// Defines `fn $name(v, start, k) -> bool`, which sorts the `k <= $w`
/// entries `v[start..start + k]` with the given `$w`-input sorting network
/// (Batcher's odd-even merge sort), unrolled, with no data-dependent
/// branch: insertion sort of small random buckets mispredicts about once
/// per entry. It needs `$w` entries from `start` to exist and returns false,
/// doing nothing, if they do not.
macro_rules! network_sort {
    ($name:ident, $w:literal, $($a:literal $b:literal),* $(,)?) => {
        #[inline(always)]
        fn $name(v: &mut [Entry], start: usize, k: usize) -> bool {
            let Some(win) = start
                .checked_add($w)
                .and_then(|stop| v.get_mut(start..stop))
            else {
                return false;
            };
            let Ok(win): Result<&mut [Entry; $w], _> = win.try_into() else {
                return false;
            };
            let mut t = [0u64; $w];
            for j in 0..$w {
                // All ones if `j < k`: select without a branch.
                let keep = u64::from(j < k).wrapping_neg();
                t[j] = (win[j].to_raw() & keep) | (TOP.to_raw() & !keep);
            }
            $(
                let (x, y) = (t[$a], t[$b]);
                t[$a] = x.min(y);
                t[$b] = x.max(y);
            )*
            // Entries past `k` belong to the next buckets: write them back
            // as they were, again without a branch. TOP never reaches the
            // first `k` slots, so every value is an entry's own encoding.
            for j in 0..$w {
                let keep = u64::from(j < k).wrapping_neg();
                win[j] = Entry::from_raw_trusted((t[j] & keep) | (win[j].to_raw() & !keep));
            }
            true
        }
    };
}

network_sort!(network_sort4, 4, 0 1, 2 3, 0 2, 1 3, 1 2);
network_sort!(network_sort8, 8, 0 1, 2 3, 4 5, 6 7, 0 2, 1 3, 4 6, 5 7, 1 2, 5 6, 0 4, 1 5, 2 6, 3 7, 2 4, 3 5, 1 2, 3 4, 5 6);
network_sort!(network_sort16, 16, 0 1, 2 3, 4 5, 6 7, 8 9, 10 11, 12 13, 14 15, 0 2, 1 3, 4 6, 5 7, 8 10, 9 11, 12 14, 13 15, 1 2, 5 6, 9 10, 13 14, 0 4, 1 5, 2 6, 3 7, 8 12, 9 13, 10 14, 11 15, 2 4, 3 5, 10 12, 11 13, 1 2, 3 4, 5 6, 9 10, 11 12, 13 14, 0 8, 1 9, 2 10, 3 11, 4 12, 5 13, 6 14, 7 15, 4 8, 5 9, 6 10, 7 11, 2 4, 3 5, 6 8, 7 9, 10 12, 11 13, 1 2, 3 4, 5 6, 7 8, 9 10, 11 12, 13 14);

/// Sorts a bucket of `k` entries at `v[start..]`: with a sorting network if
/// it is small and has room, else by insertion.
#[inline(always)]
fn sort_bucket(v: &mut [Entry], start: usize, k: usize) {
    if k <= 1 {
        return;
    }
    let done = if k <= 4 {
        network_sort4(v, start, k)
    } else if k <= 8 {
        network_sort8(v, start, k)
    } else if k <= 16 {
        network_sort16(v, start, k)
    } else {
        false
    };
    if !done {
        if let Some(bucket) = start.checked_add(k).and_then(|stop| v.get_mut(start..stop)) {
            insertion_sort(bucket);
        }
    }
}

/// The radix digit of `e`: its bits `shift..shift + 8` masked by `mask`.
#[inline(always)]
fn digit(e: Entry, shift: u32, mask: u8) -> usize {
    // `shift < 64` (it is at most 63); the `& 63` keeps the compiler from
    // emitting a shift-overflow check. Truncating to u8 keeps the 8 digit
    // bits, so the result always indexes a 256-entry table.
    usize::from((e.to_raw() >> (shift & 63)) as u8 & mask)
}

fn radix_sort_inner(v: &mut [Entry]) {
    if v.len() <= SMALL_MAX {
        v.sort_unstable();
        return;
    }
    // Find the bits in which the keys differ, and bail out early if the
    // slice is already sorted (common for mostly idle or sequential frees).
    let mut or = 0u64;
    let mut and = u64::MAX;
    let mut sorted = true;
    let mut prev = 0u64;
    for e in v.iter() {
        let k = e.to_raw();
        or |= k;
        and &= k;
        sorted &= prev <= k;
        prev = k;
    }
    if sorted {
        return;
    }
    let diff = or ^ and;
    // `sorted` is false, so two keys differ and `diff != 0`: `top <= 64`.
    let top = u64::BITS - diff.leading_zeros();
    // Aim for buckets of about 4 entries, which the sorting networks
    // finish cheaply: 2^bits buckets, at most 256 (the tables' size).
    let bits = (v.len().ilog2().saturating_sub(2)).clamp(1, RADIX_BITS);
    let bits = bits.min(top);
    let shift = top - bits;
    // bits is 1..=8: the mask is its low `bits` bits set (the `& 7` and
    // wrapping_sub only keep the compiler from adding overflow checks).
    let mask = u8::MAX >> (RADIX_BITS.wrapping_sub(bits) & 7);
    if !partition(v, shift, mask) {
        return;
    }
    // Some buckets are too large for insertion sort: find them (the slice
    // is ordered by digit now) and recurse.
    let mut rest = v;
    while let Some(&first) = rest.first() {
        let d = digit(first, shift, mask);
        let n = rest
            .iter()
            .position(|e| digit(*e, shift, mask) != d)
            .unwrap_or(rest.len());
        // n <= rest.len() by construction; the check keeps the split
        // panic-free (split_at_mut_checked needs Rust 1.80, the kernel's
        // minimum is 1.78).
        if n > rest.len() {
            return;
        }
        let (run, tail) = core::mem::take(&mut rest).split_at_mut(n);
        if run.len() > INSERTION_MAX {
            radix_sort_inner(run);
        }
        rest = tail;
    }
}

/// One American-flag pass: permutes `v` so it is ordered by the digit at
/// `shift` (masked by `mask`, `2^k - 1`), then, unless `shift` is 0 (the digit is the whole remaining
/// key), insertion-sorts the buckets of up to `INSERTION_MAX` entries.
/// Returns whether larger buckets are left for the caller. Kept out of line
/// so its tables are not on the stack while `radix_sort` recurses.
#[inline(never)]
fn partition(v: &mut [Entry], shift: u32, mask: u8) -> bool {
    let buckets = usize::from(mask) + 1;
    // Bucket b ends up in v[end[b - 1]..end[b]]; next[b] is its first slot
    // not yet known to hold a digit-b entry.
    let mut end = [0u32; BUCKETS];
    for e in v.iter() {
        let c = &mut end[digit(*e, shift, mask)];
        // At most v.len() <= u32::MAX entries: cannot wrap.
        *c = c.wrapping_add(1);
    }
    let mut next = [0u32; BUCKETS];
    let mut sum = 0u32;
    for (n, e) in next.iter_mut().zip(end.iter_mut()).take(buckets) {
        *n = sum;
        sum = sum.wrapping_add(*e);
        *e = sum;
    }
    // Counting `b` up to BUCKETS (not `buckets`) lets the compiler see that
    // every `next[b]` and `end[b]` is in bounds.
    for b in 0..BUCKETS {
        if b >= buckets {
            break;
        }
        while next[b] < end[b] {
            let i = next[b] as usize;
            // `next[b] < end[b] <= v.len()`, so `i` is in bounds; the slot
            // at `i` is the hole the cycle below closes.
            let Some(&start) = v.get(i) else { break };
            let mut x = start;
            loop {
                let d = digit(x, shift, mask);
                if d == b {
                    break;
                }
                let j = next[d];
                next[d] = j.wrapping_add(1);
                match v.get_mut(j as usize) {
                    Some(slot) => x = core::mem::replace(slot, x),
                    // Unreachable: bucket d still has room. Writing `x` back
                    // to the hole below keeps `v` a permutation regardless.
                    None => break,
                }
            }
            if let Some(slot) = v.get_mut(i) {
                *slot = x;
            }
            next[b] = next[b].wrapping_add(1);
        }
    }
    if shift == 0 {
        return false;
    }
    let mut big = false;
    let mut start = 0usize;
    for &e in end.iter().take(buckets) {
        let e = e as usize;
        let k = e.saturating_sub(start);
        if k > INSERTION_MAX {
            big = true;
        } else {
            sort_bucket(v, start, k);
        }
        start = e;
    }
    big
}

/// Folds sorted entries into maximal page ranges; see [`merge`].
#[derive(Clone, Debug)]
pub struct Merge<'a> {
    rest: core::slice::Iter<'a, Entry>,
    cur: Option<PfnRange>,
    // `1 << order` - 1 of the blocks each entry is rounded out to.
    mask: u64,
}

/// Merges `sorted` (ordered by pfn, as [`sort`] leaves it) into ranges.
///
/// Yields sorted, disjoint, non-adjacent ranges whose union is exactly the
/// union of the entries' pages: overlapping entries, duplicates, blocks of
/// different orders and adjacent blocks all merge, and an entry whose pfn is
/// not aligned to its order is simply the range `[pfn, pfn + (1 << order))`.
///
/// If `sorted` is not sorted the output still covers exactly the entries'
/// pages, but the ranges may be out of order, overlap or touch.
#[inline]
pub fn merge(sorted: &[Entry]) -> Merge<'_> {
    merge_out(sorted, 0)
}

/// Merges `sorted` as [`merge`] does, after rounding each entry out to the
/// aligned block of `1 << order` pages (at most [`PFN_BITS`]) that holds
/// it, or the aligned blocks it spans.
///
/// Yields sorted, disjoint, non-adjacent ranges, aligned to `1 << order`
/// pages at both ends, whose union is exactly the union of those blocks.
/// At `order == 0` it is [`merge`]. Rounding out keeps sorted input sorted
/// (it moves starts down monotonically), and no end passes
/// [`PFN_LIMIT`](crate::capture::PFN_LIMIT),
/// which is aligned to every such order.
#[inline]
pub fn merge_out(sorted: &[Entry], order: u32) -> Merge<'_> {
    Merge {
        rest: sorted.iter(),
        cur: None,
        mask: (1u64 << order.min(PFN_BITS)) - 1,
    }
}

impl Iterator for Merge<'_> {
    type Item = PfnRange;

    #[inline]
    fn next(&mut self) -> Option<PfnRange> {
        let mask = self.mask;
        // An entry's end is at most PFN_LIMIT, a multiple of mask + 1, so
        // rounding it up does not pass PFN_LIMIT (nor overflow).
        let out = |e: &Entry| (e.pfn() & !mask, (e.end() + mask) & !mask);
        let mut cur = match self.cur.take() {
            Some(r) => r,
            None => {
                let (s, t) = out(self.rest.next()?);
                PfnRange { start: s, end: t }
            }
        };
        for e in self.rest.by_ref() {
            let (s, t) = out(e);
            // Overlapping or adjacent on either side: grow the range. The
            // second test only matters for unsorted input.
            if s <= cur.end && t >= cur.start {
                cur.start = cur.start.min(s);
                cur.end = cur.end.max(t);
            } else {
                self.cur = Some(PfnRange { start: s, end: t });
                return Some(cur);
            }
        }
        Some(cur)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.cur.is_some());
        let left = self.rest.len();
        (
            usize::from(pending + left.min(1) > 0),
            left.checked_add(pending),
        )
    }
}

impl core::iter::FusedIterator for Merge<'_> {}

/// The aligned granules ranges touch; see [`granules`].
#[derive(Clone, Debug)]
pub struct Granules<I> {
    ranges: I,
    // `1 << order`, or None if order >= 64.
    size: Option<u64>,
    // The current granule and the end of the range it came from.
    cur: Option<(u64, u64)>,
    // Granules below this were yielded already.
    next: u64,
}

/// Every aligned block of `1 << order` pages (a granule: one host page) that
/// shares at least one page with one of `ranges`, as a range, each once and
/// in ascending order when `ranges` are sorted and disjoint (as [`merge`]
/// leaves them).
///
/// The worker uses it when a host page is larger than the largest buddy
/// block: a free anywhere in a host page makes the whole host page worth a
/// look. Granules that would reach past `u64::MAX` and orders of 64 or more
/// yield nothing.
#[inline]
pub fn granules<I: IntoIterator<Item = PfnRange>>(ranges: I, order: u32) -> Granules<I::IntoIter> {
    Granules {
        ranges: ranges.into_iter(),
        size: 1u64.checked_shl(order),
        cur: None,
        next: 0,
    }
}

impl<I: Iterator<Item = PfnRange>> Iterator for Granules<I> {
    type Item = PfnRange;

    fn next(&mut self) -> Option<PfnRange> {
        let size = self.size?;
        loop {
            if let Some((g, end)) = self.cur {
                match g.checked_add(size) {
                    Some(g_end) if g < end => {
                        self.cur = Some((g_end, end));
                        self.next = g_end;
                        return Some(PfnRange {
                            start: g,
                            end: g_end,
                        });
                    }
                    _ => self.cur = None,
                }
            }
            let r = self.ranges.next()?;
            if r.is_empty() {
                continue;
            }
            let first = (r.start & !(size - 1)).max(self.next);
            self.cur = Some((first, r.end));
        }
    }
}

impl<I: Iterator<Item = PfnRange>> core::iter::FusedIterator for Granules<I> {}

/// Trims ranges to whole aligned pieces; see [`cut`].
#[derive(Clone, Debug)]
pub struct Cut<I> {
    ranges: I,
    // `1 << min_order` - 1, or None if min_order >= 64.
    mask: Option<u64>,
}

/// Cuts each range at `1 << min_order`-page boundaries and keeps only the
/// whole aligned pieces.
///
/// For each input range, yields its largest sub-range whose start and end are
/// multiples of `1 << min_order` (start rounded up, end rounded down), or
/// nothing if that is empty. At `min_order == 9` only full 512-page-aligned
/// pieces survive; at `min_order == 0` every non-empty range passes
/// unchanged. For a `min_order` of 64 or more nothing survives. Applied to
/// the output of [`merge`], the result is exactly the set of aligned
/// `1 << min_order`-page blocks that lie wholly inside the entries' pages.
#[inline]
pub fn cut<I: IntoIterator<Item = PfnRange>>(ranges: I, min_order: u32) -> Cut<I::IntoIter> {
    Cut {
        ranges: ranges.into_iter(),
        mask: 1u64.checked_shl(min_order).map(|a| a - 1),
    }
}

/// The largest sub-range of `r` aligned to `mask + 1` pages at both ends.
#[inline]
pub(crate) fn align_in(r: PfnRange, mask: u64) -> Option<PfnRange> {
    let start = r.start.checked_add(mask)? & !mask;
    let end = r.end & !mask;
    if start < end {
        Some(PfnRange { start, end })
    } else {
        None
    }
}

impl<I: Iterator<Item = PfnRange>> Iterator for Cut<I> {
    type Item = PfnRange;

    #[inline]
    fn next(&mut self) -> Option<PfnRange> {
        let Some(mask) = self.mask else {
            // No piece of 2^64 pages fits; drain nothing, yield nothing.
            return None;
        };
        loop {
            let r = self.ranges.next()?;
            if let Some(piece) = align_in(r, mask) {
                return Some(piece);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.mask.is_none() {
            return (0, Some(0));
        }
        (0, self.ranges.size_hint().1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that the granules of order `o` that `v` touches are `want`.
    fn check_granules(v: &[(u64, u64)], o: u32, want: &[(u64, u64)]) {
        let ranges = v.iter().map(|&(s, e)| PfnRange::new(s, e));
        let mut got = granules(ranges, o);
        for &(s, e) in want {
            assert_eq!(got.next(), Some(PfnRange::new(s, e)));
        }
        assert_eq!(got.next(), None);
        assert_eq!(got.next(), None);
    }

    #[test]
    fn granules_touched() {
        check_granules(&[], 4, &[]);
        check_granules(&[(3, 4)], 4, &[(0, 16)]);
        // Two ranges in one granule: it comes once.
        check_granules(&[(1, 2), (5, 9)], 4, &[(0, 16)]);
        // A range across a boundary touches both.
        check_granules(&[(15, 17)], 4, &[(0, 16), (16, 32)]);
        check_granules(
            &[(15, 17), (20, 21), (40, 80)],
            4,
            &[(0, 16), (16, 32), (32, 48), (48, 64), (64, 80)],
        );
        check_granules(&[(16, 32)], 4, &[(16, 32)]);
        // Empty ranges touch nothing.
        check_granules(&[(7, 7), (33, 34)], 4, &[(32, 48)]);
        check_granules(&[(0, 1)], 64, &[]);
        // The last granule of the pfn space does not fit: nothing wraps.
        check_granules(&[(u64::MAX - 1, u64::MAX)], 4, &[]);
        check_granules(&[(5, 6)], 0, &[(5, 6)]);
    }

    #[test]
    fn hull_covers_both_and_ignores_empty() {
        let (a, b) = (PfnRange::new(10, 20), PfnRange::new(30, 40));
        assert_eq!(a.hull(b), PfnRange::new(10, 40));
        assert_eq!(b.hull(a), PfnRange::new(10, 40));
        assert_eq!(a.hull(PfnRange::new(15, 16)), a);
        assert_eq!(a.hull(PfnRange::new(50, 50)), a);
        assert_eq!(PfnRange::new(7, 3).hull(b), b);
        assert!(PfnRange::default().hull(PfnRange::default()).is_empty());
    }

    fn e(pfn: u64, order: u32) -> Entry {
        Entry::new(pfn, order).unwrap()
    }

    fn r(start: u64, end: u64) -> PfnRange {
        PfnRange::new(start, end)
    }

    fn merged<const M: usize>(v: &[Entry]) -> ([PfnRange; M], usize) {
        let mut out = [PfnRange::default(); M];
        let mut n = 0;
        for x in merge(v) {
            out[n] = x;
            n += 1;
        }
        (out, n)
    }

    fn is_sorted(v: &[Entry]) -> bool {
        v.windows(2).all(|w| w[0] <= w[1])
    }

    #[test]
    fn range_basics() {
        assert_eq!(r(3, 7).pages(), 4);
        assert_eq!(r(7, 3).pages(), 0);
        assert!(r(5, 5).is_empty());
        assert_eq!(PfnRange::from(e(8, 3)), r(8, 16));
        assert_eq!(r(0, 3).byte_len(12), Some(3 * 4096));
        assert_eq!(r(0, u64::MAX).byte_len(12), None);
        assert_eq!(r(0, 1).byte_len(64), None);
        assert_eq!(r(1, 1).byte_len(64), Some(0));
        assert_eq!(r(0, 1 << 52).byte_len(12), None);
        assert_eq!(r(0, 1 << 51).byte_len(12), Some(1 << 63));
    }

    #[test]
    fn networks_sort_every_bucket_size() {
        // 0-1 principle: a network sorts everything if it sorts all 0/1
        // inputs. Also check entries past `k` are left alone.
        let mut x = 0x1234_5678_9abc_def1u64;
        for k in 0..=16usize {
            for bits in 0..(1u32 << k) {
                let mut v = [Entry::default(); 40];
                for (i, slot) in v.iter_mut().enumerate() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *slot = if (3..3 + k).contains(&i) {
                        e(u64::from((bits >> (i - 3)) & 1), 0)
                    } else {
                        e(x % 1000, 0)
                    };
                }
                let before = v;
                sort_bucket(&mut v, 3, k);
                assert!(is_sorted(&v[3..3 + k]), "k = {k}");
                assert_eq!(v[..3], before[..3]);
                assert_eq!(v[3 + k..], before[3 + k..]);
                let ones = |s: &[Entry]| s.iter().filter(|x| x.pfn() == 1).count();
                assert_eq!(ones(&v[3..3 + k]), ones(&before[3..3 + k]));
            }
        }
    }

    #[test]
    fn bucket_at_the_end_falls_back_to_insertion() {
        // Too close to the end of the slice for the network window.
        let mut v = [e(9, 0), e(7, 0), e(8, 0), e(1, 0), e(0, 0)];
        sort_bucket(&mut v, 1, 4);
        assert_eq!(v, [e(9, 0), e(0, 0), e(1, 0), e(7, 0), e(8, 0)]);
    }

    #[test]
    fn sort_empty_and_one() {
        let mut v: [Entry; 0] = [];
        sort(&mut v);
        let mut v = [e(5, 0)];
        sort(&mut v);
        assert_eq!(v, [e(5, 0)]);
    }

    #[test]
    fn sort_small_and_large() {
        for n in [
            2usize, 3, 19, 20, 21, 64, 300, 513, 1000, 4096, 5000, 8192, 9000,
        ] {
            let mut v = [Entry::default(); 9000];
            let v = &mut v[..n];
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for (i, slot) in v.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let order = if i % 7 == 0 { 9 } else { (x >> 60) as u32 % 3 };
                *slot = e(x % (1 << 30), order);
            }
            let mut sum = 0u64;
            for x in v.iter() {
                sum = sum.wrapping_add(x.to_raw().wrapping_mul(0x1234_5678_9abc_def1));
            }
            let mut w = [Entry::default(); 9000];
            let w = &mut w[..n];
            w.copy_from_slice(v);
            radix_sort(w);
            sort(v);
            assert!(is_sorted(v), "n = {n}");
            assert_eq!(v, w);
            let mut after = 0u64;
            for x in v.iter() {
                after = after.wrapping_add(x.to_raw().wrapping_mul(0x1234_5678_9abc_def1));
            }
            assert_eq!(sum, after);
        }
    }

    #[test]
    fn sort_extremes_and_duplicates() {
        let mut v = [e(0, 0); 64];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = match i % 4 {
                0 => e(crate::capture::PFN_LIMIT - 1, 0),
                1 => e(0, (i % 11) as u32),
                2 => e(7, 3),
                _ => e(crate::capture::PFN_LIMIT - 1024, 10),
            };
        }
        sort(&mut v);
        assert!(is_sorted(&v));
        assert_eq!(v[0], e(0, 0));
        assert_eq!(v[63], e(crate::capture::PFN_LIMIT - 1, 0));
        // All equal.
        let mut v = [e(9, 1); 100];
        sort(&mut v);
        assert!(v.iter().all(|x| *x == e(9, 1)));
    }

    #[test]
    fn sort_reversed_and_sorted() {
        let mut v = [Entry::default(); 1000];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = e(1000 - i as u64, 0);
        }
        sort(&mut v);
        assert!(is_sorted(&v));
        sort(&mut v);
        assert!(is_sorted(&v));
        assert_eq!(v[0].pfn(), 1);
    }

    #[test]
    fn merge_empty() {
        assert_eq!(merge(&[]).next(), None);
    }

    #[test]
    fn merge_one() {
        let (out, n) = merged::<4>(&[e(0, 0)]);
        assert_eq!(&out[..n], &[r(0, 1)]);
        let (out, n) = merged::<4>(&[e(crate::capture::PFN_LIMIT - 1024, 10)]);
        assert_eq!(
            &out[..n],
            &[r(
                crate::capture::PFN_LIMIT - 1024,
                crate::capture::PFN_LIMIT
            )]
        );
    }

    #[test]
    fn merge_adjacent_overlapping_duplicates() {
        let v = [
            e(0, 0),
            e(1, 0), // adjacent
            e(2, 1), // adjacent, order 1
            e(2, 1), // duplicate
            e(3, 0), // inside
            e(10, 0),
            e(12, 2), // gap of one page before: not adjacent
            e(13, 0), // inside
            e(16, 4), // adjacent
            e(20, 0), // inside
        ];
        let (out, n) = merged::<8>(&v);
        assert_eq!(&out[..n], &[r(0, 4), r(10, 11), r(12, 32)]);
    }

    #[test]
    fn merge_unaligned_entries() {
        // pfn 3 order 2 is [3, 7), pfn 5 order 3 is [5, 13).
        let (out, n) = merged::<4>(&[e(3, 2), e(5, 3), e(14, 1)]);
        assert_eq!(&out[..n], &[r(3, 13), r(14, 16)]);
    }

    #[test]
    fn merge_big_block_swallows_later_small_ones() {
        let (out, n) = merged::<4>(&[e(0, 10), e(5, 0), e(1000, 2), e(1024, 0)]);
        assert_eq!(&out[..n], &[r(0, 1025)]);
    }

    #[test]
    fn merge_unsorted_still_covers() {
        // Not sorted: the output covers the same pages, in some order.
        let (out, n) = merged::<4>(&[e(10, 0), e(9, 0), e(0, 0), e(11, 0)]);
        assert_eq!(&out[..n], &[r(9, 11), r(0, 1), r(11, 12)]);
    }

    #[test]
    fn cut_aligned_pieces() {
        let v = [
            r(0, 512),
            r(1, 1024),
            r(511, 1537),
            r(1000, 1500),
            r(2048, 4096),
        ];
        let mut out = [PfnRange::default(); 8];
        let mut n = 0;
        for x in cut(v, 9) {
            out[n] = x;
            n += 1;
        }
        assert_eq!(
            &out[..n],
            &[r(0, 512), r(512, 1024), r(512, 1536), r(2048, 4096)]
        );
    }

    #[test]
    fn cut_order_zero_passes_nonempty() {
        let v = [r(0, 1), r(5, 5), r(7, 3), r(9, 100)];
        let mut c = cut(v, 0);
        assert_eq!(c.next(), Some(r(0, 1)));
        assert_eq!(c.next(), Some(r(9, 100)));
        assert_eq!(c.next(), None);
    }

    #[test]
    fn cut_extremes() {
        // No overflow rounding up near u64::MAX.
        let mut c = cut([r(u64::MAX - 3, u64::MAX)], 4);
        assert_eq!(c.next(), None);
        let mut c = cut([r(0, u64::MAX)], 63);
        assert_eq!(c.next(), Some(r(0, 1 << 63)));
        let mut c = cut([r(0, u64::MAX)], 64);
        assert_eq!(c.next(), None);
        let mut c = cut([r(0, u64::MAX)], u32::MAX);
        assert_eq!(c.next(), None);
        let mut c = cut(core::iter::empty(), 9);
        assert_eq!(c.next(), None);
    }

    #[test]
    fn pipeline_small() {
        let mut v = [e(1024, 9), e(513, 0), e(512, 0), e(1536, 9), e(514, 1)];
        sort(&mut v);
        let mut c = cut(merge(&v), 9);
        assert_eq!(c.next(), Some(r(1024, 2048)));
        assert_eq!(c.next(), None);
    }
}
