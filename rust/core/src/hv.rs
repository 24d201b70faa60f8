// SPDX-License-Identifier: GPL-2.0

//! The range encoding of Hyper-V's `HvExtCallMemoryHeatHint` hypercall.
//!
//! The hypercall's input page holds a `struct hv_memory_hint` header
//! (`type` = [`HINT_COLD_DISCARD`] in its low two bits) and up to
//! [`MAX_RANGES`] `union hv_gpa_page_range` entries, one `u64` each
//! (Hyper-V TLFS; `include/asm-generic/hyperv-tlfs.h`):
//!
//! ```text
//! small:  bits 0..=10 additional_pages, bit 11 largepage = 0, bits 12..=63 basepfn
//! large:  bits 0..=10 additional_pages, bit 11 largepage = 1,
//!         bit 12 page_size = 0 (2 MiB units), bits 21..=63 base_large_pfn
//! ```
//!
//! A small entry covers 1 to 2048 4 KiB pages from any pfn; a large entry
//! covers 1 to 2048 2 MiB pages from a 2 MiB-aligned pfn. [`encode`] covers a
//! range with large entries where it is aligned and small ones at its
//! unaligned ends, as Linux's `hv_balloon` does per block. Pfns are in
//! 4 KiB units, which is the guest's page size on x86.

use crate::ranges::PfnRange;

/// `HV_EXT_MEMORY_HEAT_HINT_TYPE_COLD_DISCARD`: the host may discard the
/// pages' contents.
pub const HINT_COLD_DISCARD: u64 = 2;
/// Entries in one hypercall: `(4096 - 8) / 8`.
pub const MAX_RANGES: usize = 511;
/// Pages (of either size) one entry covers at most: `additional_pages` has
/// 11 bits.
pub const MAX_ENTRY_PAGES: u64 = 2048;
/// Order of a large page (2 MiB of 4 KiB pages).
pub const LARGE_ORDER: u32 = 9;
/// Bytes one entry covers at most: 2048 large pages (4 GiB).
pub const MAX_ENTRY_BYTES: u64 = MAX_ENTRY_PAGES << (LARGE_ORDER + 12);
/// Most entries [`encode`] makes of a range of at most
/// [`MAX_ENTRY_BYTES`]: an unaligned head, the aligned middle, an unaligned
/// tail.
pub const MAX_ENTRIES_PER_RANGE: usize = 3;

const LARGE_PAGES: u64 = 1 << LARGE_ORDER;
const LARGEPAGE_BIT: u64 = 1 << 11;
/// Largest pfn a small entry holds (52 bits).
const SMALL_PFN_LIMIT: u64 = 1 << 52;

/// A small entry: `pages` (1..=2048) 4 KiB pages from `pfn` (< 2^52).
pub const fn small(pfn: u64, pages: u64) -> u64 {
    debug_assert!(pages >= 1 && pages <= MAX_ENTRY_PAGES && pfn < SMALL_PFN_LIMIT);
    (pages - 1) | (pfn << 12)
}

/// A large entry: `n` (1..=2048) 2 MiB pages from the 2 MiB-aligned `pfn`.
pub const fn large(pfn: u64, n: u64) -> u64 {
    debug_assert!(n >= 1 && n <= MAX_ENTRY_PAGES && pfn % LARGE_PAGES == 0);
    (n - 1) | LARGEPAGE_BIT | ((pfn >> LARGE_ORDER) << 21)
}

/// The pages an entry covers (the inverse of [`small`] and [`large`]).
pub const fn decode(entry: u64) -> PfnRange {
    let n = (entry & (MAX_ENTRY_PAGES - 1)) + 1;
    if entry & LARGEPAGE_BIT == 0 {
        let pfn = entry >> 12;
        PfnRange::new(pfn, pfn + n)
    } else {
        let pfn = (entry >> 21) << LARGE_ORDER;
        PfnRange::new(pfn, pfn + (n << LARGE_ORDER))
    }
}

/// The entries covering a range, in order; see [`encode`].
#[derive(Clone, Debug)]
pub struct Encode {
    rest: PfnRange,
}

/// The entries that cover exactly the pages of `r`: large entries for its
/// 2 MiB-aligned part, small ones for the rest. Pfns at or above 2^52
/// (beyond any machine) end the encoding.
pub const fn encode(r: PfnRange) -> Encode {
    Encode { rest: r }
}

impl Iterator for Encode {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let PfnRange { start, end } = self.rest;
        if start >= end || start >= SMALL_PFN_LIMIT {
            return None;
        }
        let end = end.min(SMALL_PFN_LIMIT);
        let pages = end - start;
        if start % LARGE_PAGES == 0 && pages >= LARGE_PAGES {
            let n = (pages >> LARGE_ORDER).min(MAX_ENTRY_PAGES);
            self.rest.start = start + (n << LARGE_ORDER);
            return Some(large(start, n));
        }
        // Up to the next 2 MiB boundary, so the middle can go large.
        let boundary = (start | (LARGE_PAGES - 1)) + 1;
        let n = (boundary.min(end) - start).min(MAX_ENTRY_PAGES);
        self.rest.start = start + n;
        Some(small(start, n))
    }
}

impl core::iter::FusedIterator for Encode {}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: PfnRange) -> ([u64; 8], usize) {
        let mut out = [0; 8];
        let mut n = 0;
        for e in encode(r) {
            out[n] = e;
            n += 1;
        }
        (out, n)
    }

    #[test]
    fn layout_matches_the_tlfs() {
        // One 4 KiB page at pfn 0x12345: basepfn in bits 12.., 0 additional.
        assert_eq!(small(0x12345, 1), 0x12345 << 12);
        assert_eq!(small(7, 2048), (7 << 12) | 2047);
        // One 2 MiB page at 2 MiB * 3: largepage bit, page_size 0,
        // base_large_pfn 3 in bits 21...
        assert_eq!(large(3 << 9, 1), (1 << 11) | (3 << 21));
        assert_eq!(large(0, 2048), (1 << 11) | 2047);
    }

    #[test]
    fn aligned_huge_blocks_are_one_large_entry() {
        let (e, n) = all(PfnRange::new(512, 512 + 4 * 512));
        assert_eq!(n, 1);
        assert_eq!(e[0], large(512, 4));
    }

    #[test]
    fn unaligned_ends_are_small() {
        let (e, n) = all(PfnRange::new(500, 2048 + 3));
        assert_eq!(n, 3);
        assert_eq!(e[0], small(500, 12));
        assert_eq!(e[1], large(512, 3));
        assert_eq!(e[2], small(2048, 3));
    }

    #[test]
    fn small_ranges_stay_small() {
        let (e, n) = all(PfnRange::new(1, 2));
        assert_eq!((n, e[0]), (1, small(1, 1)));
        let (e, n) = all(PfnRange::new(0, 511));
        assert_eq!((n, e[0]), (1, small(0, 511)));
        assert_eq!(all(PfnRange::new(5, 5)).1, 0);
    }

    #[test]
    fn long_ranges_split_at_2048_large_pages() {
        let r = PfnRange::new(0, 2 * MAX_ENTRY_PAGES * 512 + 512);
        let (e, n) = all(r);
        assert_eq!(n, 3);
        assert_eq!(e[0], large(0, 2048));
        assert_eq!(e[1], large(2048 * 512, 2048));
        assert_eq!(e[2], large(4096 * 512, 1));
    }

    #[test]
    fn a_max_entry_range_needs_at_most_three_entries() {
        let pages = MAX_ENTRY_BYTES >> 12;
        for start in [0u64, 1, 511, 512, 513, 1000] {
            let (_, n) = all(PfnRange::new(start, start + pages));
            assert!(n <= MAX_ENTRIES_PER_RANGE, "start {start}: {n} entries");
        }
    }

    #[test]
    fn decode_inverts() {
        for &(s, e) in &[
            (0u64, 1u64),
            (500, 2051),
            (512, 2048 * 512 + 512),
            (3, 2051),
        ] {
            let mut next = s;
            for x in encode(PfnRange::new(s, e)) {
                let d = decode(x);
                assert_eq!(d.start, next);
                next = d.end;
            }
            assert_eq!(next, e);
        }
    }

    #[test]
    fn pfns_beyond_52_bits_end_the_encoding() {
        let top = SMALL_PFN_LIMIT;
        assert_eq!(all(PfnRange::new(top, top + 1)).1, 0);
        let (e, n) = all(PfnRange::new(top - 1, top + 10));
        assert_eq!((n, e[0]), (1, small(top - 1, 1)));
    }
}
