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
//!   output is sorted, disjoint and non-adjacent.
//! - [`cut`] keeps, of each range, its largest sub-range that starts and
//!   ends on a `1 << min_order`-page boundary.

use crate::capture::Entry;

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

/// Slices up to this length are insertion sorted.
const INSERTION_MAX: usize = 20;

/// Bits per radix digit; 256 buckets.
const RADIX_BITS: u32 = 8;
const BUCKETS: usize = 1 << RADIX_BITS;

/// Sorts `entries` by pfn, then order, in place.
///
/// This is an in-place most-significant-digit radix sort (American flag
/// sort) on the bits in which the entries actually differ, with insertion
/// sort for slices of up to 20 entries. Batches of freed pages have small
/// keys (a 64 GiB guest has 24-bit pfns, so 32-bit entries) and are mostly
/// random, so one or two partitioning passes typically leave buckets small
/// enough for insertion sort; `Documentation/mm/page_hinting_core.rst` has
/// the benchmark against `sort_unstable` and an LSD radix sort.
///
/// It allocates nothing and never panics. Stack use is bounded: one
/// partitioning pass takes two 256-entry `u32` tables (2 KiB, released
/// before recursing) and each of the at most 8 recursion levels a few
/// words. Slices longer than `u32::MAX` fall back to `sort_unstable`.
pub fn sort(entries: &mut [Entry]) {
    if entries.len() > u32::MAX as usize {
        entries.sort_unstable();
        return;
    }
    radix_sort(entries);
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

#[inline(always)]
fn digit(e: Entry, shift: u32) -> usize {
    // `shift < 64` (it is at most 63 - RADIX_BITS + 1); the mask keeps the
    // compiler from emitting a shift-overflow check. Truncating to u8 keeps
    // exactly the RADIX_BITS digit bits.
    ((e.to_raw() >> (shift & 63)) as u8) as usize
}

fn radix_sort(v: &mut [Entry]) {
    if v.len() <= INSERTION_MAX {
        insertion_sort(v);
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
    // `sorted` is false, so two keys differ and `diff != 0`: `top < 64`.
    let top = u64::BITS - diff.leading_zeros();
    let shift = top.saturating_sub(RADIX_BITS);
    partition(v, shift);
    if shift == 0 {
        return;
    }
    // The slice is now ordered by digit; recurse into each run of equal
    // digits, finding the run ends by binary search.
    let mut rest = v;
    while let Some(&first) = rest.first() {
        let d = digit(first, shift);
        let n = rest.partition_point(|e| digit(*e, shift) <= d);
        // `n >= 1` because `first` itself satisfies the predicate.
        let (run, tail) = rest.split_at_mut(n.max(1).min(rest.len()));
        radix_sort(run);
        rest = tail;
    }
}

/// One American-flag pass: permutes `v` so it is ordered by the digit at
/// `shift`. Kept out of line so its tables are not on the stack while
/// `radix_sort` recurses.
#[inline(never)]
fn partition(v: &mut [Entry], shift: u32) {
    // Bucket b ends up in v[start(b)..end[b]]; next[b] is its first slot
    // not yet known to hold a digit-b entry.
    let mut end = [0u32; BUCKETS];
    for e in v.iter() {
        let c = &mut end[digit(*e, shift)];
        // At most v.len() <= u32::MAX entries: cannot wrap.
        *c = c.wrapping_add(1);
    }
    let mut next = [0u32; BUCKETS];
    let mut sum = 0u32;
    for b in 0..BUCKETS {
        next[b] = sum;
        sum = sum.wrapping_add(end[b]);
        end[b] = sum;
    }
    for b in 0..BUCKETS {
        while next[b] < end[b] {
            let i = next[b] as usize;
            // `next[b] < end[b] <= v.len()`, so `i` is in bounds; the slot
            // at `i` is the hole the cycle below closes.
            let Some(&start) = v.get(i) else { break };
            let mut x = start;
            loop {
                let d = digit(x, shift);
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
}

/// Folds sorted entries into maximal page ranges; see [`merge`].
#[derive(Clone, Debug)]
pub struct Merge<'a> {
    rest: core::slice::Iter<'a, Entry>,
    cur: Option<PfnRange>,
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
    Merge {
        rest: sorted.iter(),
        cur: None,
    }
}

impl Iterator for Merge<'_> {
    type Item = PfnRange;

    #[inline]
    fn next(&mut self) -> Option<PfnRange> {
        let mut cur = match self.cur.take() {
            Some(r) => r,
            None => PfnRange::from_entry(*self.rest.next()?),
        };
        for e in self.rest.by_ref() {
            let (s, t) = (e.pfn(), e.end());
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
    fn sort_empty_and_one() {
        let mut v: [Entry; 0] = [];
        sort(&mut v);
        let mut v = [e(5, 0)];
        sort(&mut v);
        assert_eq!(v, [e(5, 0)]);
    }

    #[test]
    fn sort_small_and_large() {
        for n in [2usize, 3, 19, 20, 21, 64, 300, 5000] {
            let mut v = [Entry::default(); 5000];
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
            sort(v);
            assert!(is_sorted(v), "n = {n}");
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
