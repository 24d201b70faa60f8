// SPDX-License-Identifier: GPL-2.0

//! Capturing freed page blocks.
//!
//! The free path records each freed block as an [`Entry`], a `(pfn, order)`
//! pair packed into one `u64`, and appends it to a [`CaptureBuf`]. Appending
//! is O(1), never allocates, never panics and tells the caller when the
//! buffer should be handed off for reporting.
//!
//! # Double buffering
//!
//! [`CaptureBuf`] is designed to be used in pairs: the free path appends to
//! the active buffer (under the caller's lock) while a worker sorts, merges
//! and reports the other one. When [`CaptureBuf::push`] answers
//! [`Push::Ready`], the caller schedules the worker, which swaps the two
//! buffers under the caller's lock (in the kernel module: two boxed
//! buffers whose pointers trade places) and processes the full one, while
//! the free path goes on appending to the other, empty buffer. The worker works on [`CaptureBuf::as_mut_slice`] in place
//! (see [`crate::ranges::sort`]) and ends with [`CaptureBuf::clear`], which
//! is O(1), so the buffer is ready to become the active one again. A buffer
//! answers [`Push::Full`] rather than overwrite entries, so a worker that
//! falls behind never costs memory safety; the buffer remembers the pfn span
//! of what it turned away ([`CaptureBuf::spilled`]), so that the worker can
//! scan that span later instead of losing those hints.
//!
//! A `CaptureBuf<N>` is `8 * N + 48` bytes: keep large ones out of the
//! kernel stack (allocated and initialised in place).

/// The largest page order a freed block can have (`MAX_PAGE_ORDER` of
/// Linux 6.12 on x86_64): blocks are at most `1 << 10` pages (4 MiB).
pub const MAX_PAGE_ORDER: u32 = 10;

/// Number of low bits of an [`Entry`] that hold the order.
pub const ORDER_BITS: u32 = 8;

/// Number of high bits of an [`Entry`] that hold the pfn.
pub const PFN_BITS: u32 = u64::BITS - ORDER_BITS;

/// One past the last page frame number an [`Entry`] can cover: every
/// entry's [`Entry::end`] is at most this, so page arithmetic on entries and
/// on the ranges made of them never overflows a `u64`.
pub const PFN_LIMIT: u64 = 1 << PFN_BITS;

const ORDER_MASK: u64 = (1 << ORDER_BITS) - 1;

/// A freed block of `1 << order` pages starting at page frame `pfn`.
///
/// Packed into one `u64`: the pfn in the high [`PFN_BITS`] bits and the order
/// in the low [`ORDER_BITS`] bits. The derived ordering is therefore by pfn,
/// then by order, and sorting entries is sorting `u64`s.
///
/// The pfn need not be aligned to the order: an entry always stands for the
/// pages `[pfn, pfn + (1 << order))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Entry(u64);

impl Entry {
    /// The smallest entry: pfn 0, order 0.
    pub const MIN: Entry = Entry(0);

    /// The largest entry: the last pfn below [`PFN_LIMIT`], order 0.
    pub const MAX: Entry = Entry((PFN_LIMIT - 1) << ORDER_BITS);

    /// Makes an entry, or `None` if `order > MAX_PAGE_ORDER` or the block
    /// would reach past [`PFN_LIMIT`] (`pfn + (1 << order) > PFN_LIMIT`, which
    /// also rejects every pfn that does not fit in [`PFN_BITS`]).
    #[inline]
    pub const fn new(pfn: u64, order: u32) -> Option<Entry> {
        if order > MAX_PAGE_ORDER {
            return None;
        }
        // order <= 10, so the shift is fine; pfn < PFN_LIMIT - pages keeps
        // the end inside the limit without an addition that could overflow.
        let pages = 1u64 << order;
        if pfn > PFN_LIMIT - pages {
            return None;
        }
        Some(Entry((pfn << ORDER_BITS) | order as u64))
    }

    /// The block `self` and `other` make together if they are buddies: of
    /// the same order, each aligned to it, side by side within one block
    /// of the next order, which is no larger than [`MAX_PAGE_ORDER`].
    #[inline]
    pub const fn buddy_merge(self, other: Entry) -> Option<Entry> {
        let o = self.order();
        if o != other.order() || o >= MAX_PAGE_ORDER {
            return None;
        }
        let pages = 1u64 << o;
        let (a, b) = (self.pfn(), other.pfn());
        if a & (pages - 1) != 0 || a ^ b != pages {
            return None;
        }
        // Both inside the limit, so the lower one and the pair are too.
        Entry::new(if a < b { a } else { b }, o + 1)
    }

    /// The raw `u64` encoding, e.g. to keep entries in atomics.
    #[inline]
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Decodes a value made by [`Entry::to_raw`]; `None` if it is not a
    /// valid entry (same rules as [`Entry::new`]).
    #[inline]
    pub const fn from_raw(raw: u64) -> Option<Entry> {
        // The cast keeps the low ORDER_BITS bits only, which is all of them.
        Entry::new(raw >> ORDER_BITS, (raw & ORDER_MASK) as u32)
    }

    /// The entry whose [`Entry::to_raw`] is `raw`, unchecked: for the sort,
    /// which only ever moves valid entries' encodings around.
    #[inline(always)]
    pub(crate) const fn from_raw_trusted(raw: u64) -> Entry {
        Entry(raw)
    }

    /// First page frame of the block.
    #[inline]
    pub const fn pfn(self) -> u64 {
        self.0 >> ORDER_BITS
    }

    /// Order of the block: it spans `1 << order` pages.
    #[inline]
    pub const fn order(self) -> u32 {
        // Masked to ORDER_BITS bits, so the cast cannot truncate.
        (self.0 & ORDER_MASK) as u32
    }

    /// Number of pages in the block, `1 << order`.
    #[inline]
    pub const fn pages(self) -> u64 {
        // Entries are only built by `new`, so order <= MAX_PAGE_ORDER; the
        // mask keeps the shift below 64 for the compiler's sake anyway.
        1u64 << (self.order() & 63)
    }

    /// One past the last page frame of the block, `pfn + pages`; at most
    /// [`PFN_LIMIT`], so it never overflows.
    #[inline]
    pub const fn end(self) -> u64 {
        // pfn + pages <= PFN_LIMIT by construction; wrapping_add cannot wrap
        // and generates no overflow check.
        self.pfn().wrapping_add(self.pages())
    }

    /// The aligned block of `1 << order` pages that holds the whole entry,
    /// as its number (its first pfn shifted right by `order`), if one
    /// does. An `order` above [`MAX_PAGE_ORDER`] is taken as
    /// [`MAX_PAGE_ORDER`].
    #[inline]
    pub const fn block_at(self, order: u32) -> Option<u64> {
        let order = if order > MAX_PAGE_ORDER {
            MAX_PAGE_ORDER
        } else {
            order
        };
        // order <= 10 < 64; end() >= 1: no wrap.
        let block = self.pfn() >> order;
        if (self.end() - 1) >> order == block {
            Some(block)
        } else {
            None
        }
    }
}

/// What [`CaptureBuf::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// The entry was stored; the buffer is neither full nor at the threshold.
    Stored,
    /// The entry was stored and the buffer is now full or holds at least the
    /// threshold of pages: the caller should hand it off for reporting.
    Ready,
    /// The entry was not stored: the buffer was already full.
    Full,
}

/// A fixed-capacity buffer of up to `N` entries with a running count of the
/// pages they hold.
///
/// See the [module documentation](self) for how a pair of them is used for
/// double buffering.
///
/// All-zero bytes are a valid, empty buffer (entries are plain `u64`s and
/// an all-zero entry is pfn 0, order 0), so it may be allocated zeroed
/// instead of built with [`CaptureBuf::new`].
#[derive(Clone, Debug)]
pub struct CaptureBuf<const N: usize> {
    entries: [Entry; N],
    // Invariant: len <= N.
    len: usize,
    pending_pages: u64,
    // Covers every entry turned away since the last clear; empty if none.
    spill: crate::ranges::PfnRange,
    // The aligned block of 1 << last_order pages, numbered by its first
    // pfn >> last_order, that holds the entry [`CaptureBuf::push_in`]
    // stored last; meaningful while len > 0.
    last_block: u64,
    last_order: u32,
    // The largest order [`CaptureBuf::push_in`] stored an entry at.
    cover_order: u32,
}

impl<const N: usize> CaptureBuf<N> {
    /// Number of entries the buffer can hold.
    pub const CAPACITY: usize = N;

    /// An empty buffer; usable to initialise a `static`.
    pub const fn new() -> Self {
        CaptureBuf {
            entries: [Entry(0); N],
            len: 0,
            pending_pages: 0,
            spill: crate::ranges::PfnRange { start: 0, end: 0 },
            last_block: 0,
            last_order: 0,
            cover_order: 0,
        }
    }

    /// Appends `e` as [`push`](Self::push) does, unless the buffer holds
    /// already the aligned block of `1 << order` pages that `e` lies in:
    /// then only its pages are counted. A worker that rounds every entry
    /// out to its aligned block of [`cover_order`](Self::cover_order)
    /// pages ([`crate::ranges::merge_out`]) covers every pushed page
    /// either way.
    ///
    /// This is what keeps a run of 4 KiB frees cheap when only whole
    /// blocks of `1 << order` pages are reported: one entry per block
    /// touched, the others a comparison. Only the block of the entry
    /// stored last is remembered (O(1)). An `order` above
    /// [`MAX_PAGE_ORDER`] is taken as [`MAX_PAGE_ORDER`].
    #[inline]
    pub fn push_in(&mut self, e: Entry, order: u32, threshold_pages: u64) -> Push {
        let order = if order > MAX_PAGE_ORDER {
            MAX_PAGE_ORDER
        } else {
            order
        };
        // order <= 10 < 64: the shift is fine.
        let block = e.pfn() >> order;
        if self.len != 0 && order == self.last_order && e.block_at(order) == Some(self.last_block) {
            self.pending_pages = self.pending_pages.saturating_add(e.pages());
            return if self.len == N || self.pending_pages >= threshold_pages {
                Push::Ready
            } else {
                Push::Stored
            };
        }
        let push = self.push(e, threshold_pages);
        if push != Push::Full {
            self.last_block = block;
            self.last_order = order;
            if order > self.cover_order {
                self.cover_order = order;
            }
        }
        push
    }

    /// Counts `pages` more pending, freed inside blocks the entries stand
    /// for already (a caller that dedups as [`push_in`](Self::push_in)
    /// does, outside the buffer).
    #[inline]
    pub fn add_pages(&mut self, pages: u64) {
        self.pending_pages = self.pending_pages.saturating_add(pages);
    }

    /// The order every entry must be rounded out to for the buffer to
    /// cover every page [`push_in`](Self::push_in) took (0 if it was not
    /// used).
    #[inline]
    pub const fn cover_order(&self) -> u32 {
        self.cover_order
    }

    /// Appends `e`, first coalescing it with the entries before it while
    /// the last one is its buddy (see [`Entry::buddy_merge`]): a run of
    /// frees of neighbouring pages, in either direction, takes a few
    /// entries instead of one per block, and the pages the buffer covers
    /// are the same.
    ///
    /// Returns [`Push::Full`] (and stores nothing but the entry's span, in
    /// [`spilled`](Self::spilled)) if `e` merges with nothing and the
    /// buffer already holds `N` entries. Otherwise stores it, adds its
    /// pages to [`pending_pages`](Self::pending_pages) and returns
    /// [`Push::Ready`] if the buffer is now full or holds at least
    /// `threshold_pages` pages, [`Push::Stored`] if not. O(1): at most
    /// [`MAX_PAGE_ORDER`] merges.
    #[inline]
    pub fn push(&mut self, e: Entry, threshold_pages: u64) -> Push {
        let mut merged = e;
        let mut len = self.len;
        while let Some(last) = len.checked_sub(1).and_then(|i| self.entries.get(i)) {
            match last.buddy_merge(merged) {
                Some(m) => {
                    merged = m;
                    len -= 1;
                }
                None => break,
            }
        }
        let Some(slot) = self.entries.get_mut(len) else {
            self.spill = self.spill.hull(crate::ranges::PfnRange::from_entry(e));
            return Push::Full;
        };
        *slot = merged;
        // len < N <= usize::MAX here, so this cannot wrap.
        self.len = len.wrapping_add(1);
        self.pending_pages = self.pending_pages.saturating_add(e.pages());
        if self.len == N || self.pending_pages >= threshold_pages {
            Push::Ready
        } else {
            Push::Stored
        }
    }

    /// The stored entries, in the order they were pushed (until sorted).
    #[inline]
    pub fn as_slice(&self) -> &[Entry] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// The stored entries, mutable, e.g. to sort them in place.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Entry] {
        self.entries.get_mut(..self.len).unwrap_or(&mut [])
    }

    /// Number of stored entries.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is stored.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the buffer holds `N` entries, so the next push is
    /// [`Push::Full`].
    #[inline]
    pub const fn is_full(&self) -> bool {
        self.len >= N
    }

    /// Sum of [`Entry::pages`] over the stored entries (saturating; it
    /// cannot saturate in practice, as `N * 1024` pages fit easily).
    #[inline]
    pub const fn pending_pages(&self) -> u64 {
        self.pending_pages
    }

    /// Whether the buffer should be handed off: it is full or holds at least
    /// `threshold_pages` pages. The same condition as [`Push::Ready`], for a
    /// timed flush to check.
    #[inline]
    pub const fn is_ready(&self, threshold_pages: u64) -> bool {
        self.is_full() || self.pending_pages >= threshold_pages
    }

    /// The smallest pfn range covering every entry turned away with
    /// [`Push::Full`] since the last [`clear`](Self::clear); empty if none.
    #[inline]
    pub const fn spilled(&self) -> crate::ranges::PfnRange {
        self.spill
    }

    /// Forgets every entry and the spill. O(1): the entries are not
    /// overwritten.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.pending_pages = 0;
        self.spill = crate::ranges::PfnRange { start: 0, end: 0 };
        self.cover_order = 0;
    }
}

impl<const N: usize> Default for CaptureBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The low half of a CPU's hint count (`FREE_PAGE_HINT_LEFT_MASK` of the
/// kernel's `struct free_page_hint_cpu`, `patches/0012`): the pages that may
/// still be counted before the module is told. The page allocator counts
/// them down, and they wrap below 0; the high half counts the frees.
pub const COUNT_LEFT_MASK: u64 = 0xffff_ffff;

/// One free in the high half of a hint count (`FREE_PAGE_HINT_ONE_FREE`).
pub const COUNT_ONE_FREE: u64 = COUNT_LEFT_MASK + 1;

/// The most pages left a hint count starts from: far below 2^32, so that
/// what was counted since can be told from a low half that wrapped, as
/// long as fewer than `2^32 - COUNT_LEFT_MAX` pages more are counted than
/// it started from ([`Counted::from_count`]).
pub const COUNT_LEFT_MAX: u64 = 1 << 31;

/// Frees counted against a CPU's hints instead of being stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Pages freed.
    pub pages: u64,
    /// Frees.
    pub frees: u64,
}

impl Counted {
    /// What a hint count of `count` holds that started at `limit` pages
    /// left (at most [`COUNT_LEFT_MAX`]) with no free counted, if fewer
    /// than `2^32 - limit` pages were counted more than `limit`.
    pub const fn from_count(count: u64, limit: u64) -> Counted {
        let left = count & COUNT_LEFT_MASK;
        // The low half is above `limit` only if it wrapped below 0, and the
        // free that wrapped it borrowed one from the high half.
        let wrapped = left > limit;
        Counted {
            pages: limit.wrapping_sub(left) & COUNT_LEFT_MASK,
            frees: (count >> 32) + wrapped as u64,
        }
    }
}

/// The page allocator's count of one free of `nr` pages (at most `2^10`)
/// against a CPU's hints, as `free_page_hint_free()` of `patches/0012` does
/// it: the new count, and whether this free takes the pages left from
/// above 0 to 0 or below (then it calls the module's `count_full`). Only
/// the tests run it: it is the model of the kernel's side.
pub const fn count_free(count: u64, nr: u64) -> (u64, bool) {
    let left = (count & COUNT_LEFT_MASK) as u32;
    (
        count.wrapping_add(COUNT_ONE_FREE - nr),
        (left.wrapping_sub(1) as u64) < nr,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_count_decodes_through_the_wrap() {
        // 8 pages left; three frees of 2, 4 and 4 pages: the last one takes
        // the pages left from 2 to -2 (borrowing from the frees).
        let mut c = 8;
        let mut full = [false; 3];
        for (i, nr) in [2, 4, 4].into_iter().enumerate() {
            (c, full[i]) = count_free(c, nr);
        }
        assert_eq!(full, [false, false, true]);
        assert_eq!(c & COUNT_LEFT_MASK, COUNT_LEFT_MASK - 1);
        assert_eq!(c >> 32, 2, "the wrap borrowed one free");
        assert_eq!(
            Counted::from_count(c, 8),
            Counted {
                pages: 10,
                frees: 3
            }
        );
        // Past 0, no free calls the module again.
        let (c, full) = count_free(c, 1);
        assert!(!full);
        assert_eq!(
            Counted::from_count(c, 8),
            Counted {
                pages: 11,
                frees: 4
            }
        );
        // A free that ends exactly at 0 is the full one.
        assert_eq!(count_free(4, 4), (COUNT_ONE_FREE, true));
        // Nothing left to count: never full.
        assert!(!count_free(0, 1).1);
        assert_eq!(
            Counted::from_count(count_free(0, 1).0, 0),
            Counted { pages: 1, frees: 1 }
        );
        // The largest start.
        let (c, full) = count_free(COUNT_LEFT_MAX, 1 << MAX_PAGE_ORDER);
        assert!(!full);
        assert_eq!(
            Counted::from_count(c, COUNT_LEFT_MAX),
            Counted {
                pages: 1024,
                frees: 1
            }
        );
        assert_eq!(Counted::from_count(77, 77), Counted::default());
    }

    #[test]
    fn block_at_is_the_aligned_block_holding_the_entry() {
        let e = |p, o| Entry::new(p, o).unwrap();
        assert_eq!(e(512 + 7, 0).block_at(9), Some(1));
        assert_eq!(e(512, 9).block_at(9), Some(1));
        assert_eq!(e(512, 9).block_at(4), None);
        assert_eq!(e(1008, 4).block_at(9), Some(1));
        assert_eq!(e(1024, 10).block_at(11), Some(1));
        assert_eq!(e(0, 0).block_at(0), Some(0));
    }

    #[test]
    fn push_in_keeps_one_entry_per_block() {
        let e = |p, o| Entry::new(p, o).unwrap();
        let mut b = CaptureBuf::<4>::new();
        // Scattered 4 KiB frees in two 2 MiB blocks: one entry each.
        for pfn in [512 + 7, 512 + 300, 512 + 3, 1024 + 5, 1024 + 511] {
            assert_eq!(b.push_in(e(pfn, 0), 9, u64::MAX), Push::Stored);
        }
        assert_eq!(b.as_slice(), &[e(519, 0), e(1029, 0)]);
        assert_eq!(b.pending_pages(), 5);
        assert_eq!(b.cover_order(), 9);
        // Only the last block is remembered; a block larger than the order
        // is stored; the threshold counts every page.
        assert_eq!(b.push_in(e(512 + 9, 0), 9, u64::MAX), Push::Stored);
        assert_eq!(b.push_in(e(2048, 10), 9, u64::MAX), Push::Ready);
        assert_eq!(b.len(), 4);
        // Full: inside the last block still counts, outside is turned away.
        assert_eq!(b.push_in(e(2048 + 3, 0), 9, u64::MAX), Push::Ready);
        assert_eq!(b.pending_pages(), 1031);
        assert_eq!(b.push_in(e(8192, 0), 9, u64::MAX), Push::Full);
        // Another order: stored again; the cover order is the largest.
        b.clear();
        assert_eq!(b.cover_order(), 0);
        assert_eq!(b.push_in(e(100, 0), 0, u64::MAX), Push::Stored);
        assert_eq!(b.push_in(e(100, 0), 0, u64::MAX), Push::Stored);
        assert_eq!(b.push_in(e(101, 0), 4, u64::MAX), Push::Stored);
        assert_eq!(b.push_in(e(102, 0), 4, u64::MAX), Push::Stored);
        assert_eq!(b.as_slice(), &[e(100, 1)]);
        assert_eq!(b.cover_order(), 4);
        assert_eq!(b.pending_pages(), 4);
    }

    #[test]
    fn runs_of_frees_coalesce() {
        // 512 neighbouring 4 KiB frees, upwards then downwards: one
        // order-9 entry each, the pages all counted (on the way, a run
        // holds one entry per order below its length: at most 10).
        let mut b = CaptureBuf::<10>::new();
        for pfn in 1024..1536 {
            assert_eq!(b.push(Entry::new(pfn, 0).unwrap(), u64::MAX), Push::Stored);
        }
        for pfn in (4096..4608).rev() {
            b.push(Entry::new(pfn, 0).unwrap(), u64::MAX);
        }
        assert_eq!(
            b.as_slice(),
            &[Entry::new(1024, 9).unwrap(), Entry::new(4096, 9).unwrap()]
        );
        assert_eq!(b.pending_pages(), 1024);
        // Not buddies: misaligned, different orders, the same block twice,
        // neighbours in different blocks of the next order, top order.
        let e = |p, o| Entry::new(p, o).unwrap();
        assert_eq!(e(1, 0).buddy_merge(e(2, 0)), None);
        assert_eq!(e(0, 0).buddy_merge(e(2, 1)), None);
        assert_eq!(e(8, 3).buddy_merge(e(8, 3)), None);
        assert_eq!(e(8, 3).buddy_merge(e(16, 3)), None);
        assert_eq!(e(0, 10).buddy_merge(e(1024, 10)), None);
        assert_eq!(e(24, 3).buddy_merge(e(16, 3)), Some(e(16, 4)));
    }

    #[test]
    fn entry_roundtrip() {
        let e = Entry::new(12345, 9).unwrap();
        assert_eq!(e.pfn(), 12345);
        assert_eq!(e.order(), 9);
        assert_eq!(e.pages(), 512);
        assert_eq!(e.end(), 12345 + 512);
        assert_eq!(Entry::from_raw(e.to_raw()), Some(e));
    }

    #[test]
    fn entry_min_max() {
        assert_eq!(Entry::new(0, 0), Some(Entry::MIN));
        assert_eq!(Entry::new(PFN_LIMIT - 1, 0), Some(Entry::MAX));
        assert!(Entry::new(PFN_LIMIT - 1024, 10).unwrap() < Entry::MAX);
        assert_eq!(Entry::from_raw(u64::MAX), None);
    }

    #[test]
    fn entry_pfn_zero() {
        let e = Entry::new(0, 0).unwrap();
        assert_eq!((e.pfn(), e.order(), e.pages(), e.end()), (0, 0, 1, 1));
        assert_eq!(e.to_raw(), 0);
        let e = Entry::new(0, MAX_PAGE_ORDER).unwrap();
        assert_eq!(e.end(), 1024);
    }

    #[test]
    fn entry_highest_pfn() {
        let e = Entry::new(PFN_LIMIT - 1, 0).unwrap();
        assert_eq!(e.pfn(), PFN_LIMIT - 1);
        assert_eq!(e.end(), PFN_LIMIT);
        assert!(Entry::new(PFN_LIMIT, 0).is_none());
        let e = Entry::new(PFN_LIMIT - 1024, 10).unwrap();
        assert_eq!(e.end(), PFN_LIMIT);
        assert!(Entry::new(PFN_LIMIT - 1023, 10).is_none());
        assert!(Entry::new(PFN_LIMIT - 1, 1).is_none());
    }

    #[test]
    fn entry_u64_overflow_rejected() {
        // pfn + (1 << order) would overflow a u64.
        assert!(Entry::new(u64::MAX, 0).is_none());
        assert!(Entry::new(u64::MAX - 1023, 10).is_none());
        assert!(Entry::new(u64::MAX - 1, 1).is_none());
        assert!(Entry::new(1 << 63, 0).is_none());
    }

    #[test]
    fn entry_order_too_large_rejected() {
        assert!(Entry::new(0, MAX_PAGE_ORDER + 1).is_none());
        assert!(Entry::new(0, 63).is_none());
        assert!(Entry::new(0, 64).is_none());
        assert!(Entry::new(0, u32::MAX).is_none());
        assert!(Entry::new(0, MAX_PAGE_ORDER).is_some());
    }

    #[test]
    fn entry_from_raw_rejects_bad_order() {
        assert!(Entry::from_raw(11).is_none());
        assert!(Entry::from_raw(0xff).is_none());
        assert_eq!(Entry::from_raw(10).map(Entry::order), Some(10));
    }

    #[test]
    fn entry_unaligned_is_plain_range() {
        let e = Entry::new(3, 2).unwrap();
        assert_eq!((e.pfn(), e.end()), (3, 7));
    }

    #[test]
    fn entry_orders_by_pfn_then_order() {
        let a = Entry::new(5, 3).unwrap();
        let b = Entry::new(6, 0).unwrap();
        let c = Entry::new(5, 0).unwrap();
        assert!(c < a && a < b);
    }

    #[test]
    fn capture_empty() {
        let b = CaptureBuf::<4>::new();
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
        assert_eq!(b.pending_pages(), 0);
        assert_eq!(b.as_slice(), &[]);
        assert!(!b.is_full());
        assert!(!b.is_ready(1));
        assert!(b.is_ready(0));
    }

    #[test]
    fn capture_push_until_full() {
        let mut b = CaptureBuf::<3>::new();
        let e = Entry::new(1, 0).unwrap();
        assert_eq!(b.push(e, 100), Push::Stored);
        assert_eq!(b.push(e, 100), Push::Stored);
        assert_eq!(b.push(e, 100), Push::Ready);
        assert!(b.is_full());
        assert_eq!(b.push(e, 100), Push::Full);
        assert_eq!(b.len(), 3);
        assert_eq!(b.pending_pages(), 3);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.pending_pages(), 0);
        assert_eq!(b.push(e, 100), Push::Stored);
    }

    #[test]
    fn capture_threshold() {
        let mut b = CaptureBuf::<8>::new();
        assert_eq!(b.push(Entry::new(0, 0).unwrap(), 513), Push::Stored);
        assert_eq!(b.push(Entry::new(512, 9).unwrap(), 513), Push::Ready);
        assert_eq!(b.pending_pages(), 513);
        // Still ready until handed off.
        assert_eq!(b.push(Entry::new(2, 0).unwrap(), 513), Push::Ready);
        assert!(b.is_ready(513));
        assert_eq!(b.as_slice().iter().map(|e| e.pfn()).sum::<u64>(), 512 + 2);
    }

    #[test]
    fn capture_zero_capacity() {
        let mut b = CaptureBuf::<0>::new();
        assert_eq!(b.push(Entry::default(), 1), Push::Full);
        assert!(b.is_full());
        assert!(b.as_mut_slice().is_empty());
    }

    #[test]
    fn capture_one_entry_threshold_one() {
        let mut b = CaptureBuf::<2>::new();
        assert_eq!(b.push(Entry::default(), 1), Push::Ready);
        assert_eq!(b.as_mut_slice().len(), 1);
    }

    #[test]
    fn capture_static_init() {
        static B: CaptureBuf<16> = CaptureBuf::new();
        assert!(B.is_empty());
        assert_eq!(CaptureBuf::<16>::CAPACITY, 16);
    }
}
