// SPDX-License-Identifier: GPL-2.0

//! Splitting page ranges into transport-sized reports.
//!
//! A transport takes reports of at most N entries (e.g. 32), each entry a
//! page range of at most M pages (e.g. what fits a `u32` byte length).
//! [`Batcher`] takes any iterator of ranges (typically
//! `cut(merge(sorted), min_order)` from [`crate::ranges`]), splits ranges
//! longer than M, and fills a caller-provided report slice at a time. It is
//! resumable: it keeps the iterator and the unreported rest of a split
//! range, so no page is lost or reported twice across reports.
//!
//! To turn a sorted list of isolated blocks back into ranges, use
//! [`crate::ranges::merge`].

use crate::ranges::PfnRange;

/// Why [`Limits`] could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// The alignment order is 64 or more.
    OrderTooLarge,
    /// The page shift is 64 or more.
    PageShiftTooLarge,
    /// The maximum entry size is smaller than one aligned piece of
    /// `1 << min_order` pages, so nothing could be reported.
    EntryTooSmall,
}

impl core::fmt::Display for LimitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LimitError::OrderTooLarge => "alignment order too large",
            LimitError::PageShiftTooLarge => "page shift too large",
            LimitError::EntryTooSmall => "maximum entry size below one aligned piece",
        })
    }
}

/// Size limit and alignment of report entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    // A non-zero multiple of 1 << min_order.
    max_entry_pages: u64,
    min_order: u32,
}

impl Limits {
    /// Entries of at most `max_entry_pages` pages, split at multiples of
    /// `1 << min_order` pages.
    ///
    /// The effective maximum is `max_entry_pages` rounded down to a multiple
    /// of `1 << min_order`, so split pieces keep the alignment; it is an
    /// error if that is 0.
    pub const fn new(max_entry_pages: u64, min_order: u32) -> Result<Limits, LimitError> {
        if min_order >= u64::BITS {
            return Err(LimitError::OrderTooLarge);
        }
        let mask = (1u64 << min_order) - 1;
        let max = max_entry_pages & !mask;
        if max == 0 {
            return Err(LimitError::EntryTooSmall);
        }
        Ok(Limits {
            max_entry_pages: max,
            min_order,
        })
    }

    /// Like [`Limits::new`], with the maximum entry size in bytes (e.g. a
    /// transport's `u32::MAX` byte length) for pages of `1 << page_shift`
    /// bytes; partial pages are dropped.
    pub const fn from_max_bytes(
        max_entry_bytes: u64,
        page_shift: u32,
        min_order: u32,
    ) -> Result<Limits, LimitError> {
        if page_shift >= u64::BITS {
            return Err(LimitError::PageShiftTooLarge);
        }
        Limits::new(max_entry_bytes >> page_shift, min_order)
    }

    /// The effective maximum entry size in pages: a non-zero multiple of
    /// `1 << min_order`.
    pub const fn max_entry_pages(&self) -> u64 {
        self.max_entry_pages
    }

    /// The alignment order: ranges are only ever split at multiples of
    /// `1 << min_order` pages.
    pub const fn min_order(&self) -> u32 {
        self.min_order
    }

    /// Splits a non-empty range: the first piece, and the rest if any.
    #[inline]
    fn split(&self, r: PfnRange) -> (PfnRange, Option<PfnRange>) {
        if r.pages() <= self.max_entry_pages {
            return (r, None);
        }
        // r.start + max < r.end, so the addition cannot overflow; rounding
        // down loses less than 1 << min_order <= max, so start < at < end.
        let mask = (1u64 << (self.min_order & 63)) - 1;
        let at = r.start.saturating_add(self.max_entry_pages) & !mask;
        (
            PfnRange {
                start: r.start,
                end: at,
            },
            Some(PfnRange {
                start: at,
                end: r.end,
            }),
        )
    }
}

/// Splits ranges into report entries; see the [module documentation](self).
///
/// As an [`Iterator`] it yields the entries one at a time; [`Batcher::fill`]
/// fills a whole report. Every page of every non-empty input range is
/// yielded exactly once, in input order; empty input ranges are skipped.
/// Each entry has at most [`Limits::max_entry_pages`] pages, and a range is
/// only split at multiples of `1 << min_order` pages, so if the input ranges
/// are aligned (as [`crate::ranges::cut`] leaves them) so is every entry.
#[derive(Clone, Debug)]
pub struct Batcher<I> {
    ranges: I,
    leftover: Option<PfnRange>,
    limits: Limits,
}

impl<I: Iterator<Item = PfnRange>> Batcher<I> {
    /// A batcher over `ranges` with the given limits.
    pub fn new<J: IntoIterator<IntoIter = I>>(ranges: J, limits: Limits) -> Self {
        Batcher {
            ranges: ranges.into_iter(),
            leftover: None,
            limits,
        }
    }

    /// The limits given to [`Batcher::new`].
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The unreported rest of a range split by the last entry, if any.
    pub fn leftover(&self) -> Option<PfnRange> {
        self.leftover
    }

    /// Fills `report` from the front with the next entries and returns how
    /// many it wrote: `report.len()` is the transport's maximum number of
    /// entries per report. Fewer than `report.len()` (0 included) means the
    /// input is exhausted; an empty `report` consumes nothing.
    pub fn fill(&mut self, report: &mut [PfnRange]) -> usize {
        let mut n = 0;
        for slot in report.iter_mut() {
            match self.next() {
                Some(piece) => {
                    *slot = piece;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
}

impl<I: Iterator<Item = PfnRange>> Iterator for Batcher<I> {
    type Item = PfnRange;

    #[inline]
    fn next(&mut self) -> Option<PfnRange> {
        let r = match self.leftover.take() {
            Some(r) => r,
            None => loop {
                let r = self.ranges.next()?;
                if !r.is_empty() {
                    break r;
                }
            },
        };
        let (piece, rest) = self.limits.split(r);
        self.leftover = rest;
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranges::{cut, merge, sort};

    fn r(start: u64, end: u64) -> PfnRange {
        PfnRange::new(start, end)
    }

    #[test]
    fn limits() {
        assert_eq!(Limits::new(0, 0), Err(LimitError::EntryTooSmall));
        assert_eq!(Limits::new(511, 9), Err(LimitError::EntryTooSmall));
        assert_eq!(Limits::new(1000, 9).unwrap().max_entry_pages(), 512);
        assert_eq!(Limits::new(1, 0).unwrap().max_entry_pages(), 1);
        assert_eq!(Limits::new(1, 64), Err(LimitError::OrderTooLarge));
        assert_eq!(
            Limits::new(u64::MAX, 63).unwrap().max_entry_pages(),
            1 << 63
        );
        let l = Limits::from_max_bytes(u32::MAX as u64, 12, 9).unwrap();
        assert_eq!(l.max_entry_pages(), 1_048_064);
        assert_eq!(l.min_order(), 9);
        assert_eq!(
            Limits::from_max_bytes(4095, 12, 0),
            Err(LimitError::EntryTooSmall)
        );
        assert_eq!(
            Limits::from_max_bytes(4096, 64, 0),
            Err(LimitError::PageShiftTooLarge)
        );
    }

    #[test]
    fn empty_input() {
        let mut b = Batcher::new(core::iter::empty(), Limits::new(8, 0).unwrap());
        let mut rep = [PfnRange::default(); 4];
        assert_eq!(b.fill(&mut rep), 0);
        assert_eq!(b.fill(&mut rep), 0);
    }

    #[test]
    fn empty_report_consumes_nothing() {
        let mut b = Batcher::new([r(0, 100)], Limits::new(8, 0).unwrap());
        assert_eq!(b.fill(&mut []), 0);
        assert_eq!(b.next(), Some(r(0, 8)));
    }

    #[test]
    fn skips_empty_ranges() {
        let mut b = Batcher::new([r(5, 5), r(9, 3), r(1, 2)], Limits::new(8, 0).unwrap());
        assert_eq!(b.next(), Some(r(1, 2)));
        assert_eq!(b.next(), None);
    }

    #[test]
    fn splits_and_resumes() {
        let l = Limits::new(1000, 9).unwrap(); // 512-page pieces
        let input = [r(0, 2048), r(4096, 4608), r(8192, 9728)];
        let mut b = Batcher::new(input, l);
        let mut rep = [PfnRange::default(); 3];
        assert_eq!(b.fill(&mut rep), 3);
        assert_eq!(rep, [r(0, 512), r(512, 1024), r(1024, 1536)]);
        assert_eq!(b.leftover(), Some(r(1536, 2048)));
        assert_eq!(b.fill(&mut rep), 3);
        assert_eq!(rep, [r(1536, 2048), r(4096, 4608), r(8192, 8704)]);
        assert_eq!(b.fill(&mut rep), 2);
        assert_eq!(&rep[..2], &[r(8704, 9216), r(9216, 9728)]);
        assert_eq!(b.fill(&mut rep), 0);
    }

    #[test]
    fn unaligned_range_split_on_aligned_boundaries() {
        let l = Limits::new(16, 3).unwrap();
        let v: [PfnRange; 4] = {
            let mut b = Batcher::new([r(5, 40)], l);
            [
                b.next().unwrap(),
                b.next().unwrap(),
                b.next().unwrap(),
                b.next().unwrap_or_default(),
            ]
        };
        assert_eq!(v, [r(5, 16), r(16, 32), r(32, 40), r(0, 0)]);
    }

    #[test]
    fn highest_pfns() {
        let top = u64::MAX;
        let l = Limits::new(4, 1).unwrap();
        let mut b = Batcher::new([r(top - 9, top)], l);
        assert_eq!(b.next(), Some(r(top - 9, top - 5)));
        assert_eq!(b.next(), Some(r(top - 5, top - 1)));
        assert_eq!(b.next(), Some(r(top - 1, top)));
        assert_eq!(b.next(), None);
    }

    #[test]
    fn whole_pipeline() {
        use crate::capture::Entry;
        let mut v = [
            Entry::new(3072, 9).unwrap(),
            Entry::new(0, 9).unwrap(),
            Entry::new(512, 9).unwrap(),
            Entry::new(1024, 0).unwrap(),
            Entry::new(2560, 9).unwrap(),
            Entry::new(1025, 0).unwrap(),
        ];
        sort(&mut v);
        let l = Limits::new(1024, 9).unwrap();
        let mut b = Batcher::new(cut(merge(&v), 9), l);
        let mut rep = [PfnRange::default(); 32];
        let n = b.fill(&mut rep);
        assert_eq!(&rep[..n], &[r(0, 1024), r(2560, 3584)]);
    }
}
