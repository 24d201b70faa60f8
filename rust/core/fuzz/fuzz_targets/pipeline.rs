// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the whole reporting pipeline on arbitrary batches:
//! sort → merge → cut → batch → Hyper-V encoding, asserting every invariant
//! against a simple interval model built with std, and the capture
//! buffer's spill.
//!
//! Input layout: byte 0 picks `min_order`, bytes 1-2 the maximum entry
//! size in pages, byte 3 the report length (and, in its top bit, whether to
//! repeat the batch 16 times at other pfns), byte 4 the pfn window; the rest
//! is read 4 bytes per entry (3 bytes of pfn offset, 1 byte of order).

#![no_main]

use libfuzzer_sys::fuzz_target;
use page_hinting_core::batch::{Batcher, Limits};
use page_hinting_core::capture::{CaptureBuf, Entry, Push, MAX_PAGE_ORDER, PFN_LIMIT};
use page_hinting_core::hv;
use page_hinting_core::ranges::{cut, merge, merge_out, radix_sort, sort, PfnRange};

/// Union of the entries' pages as sorted, disjoint, non-adjacent
/// intervals: the one canonical form `merge` must produce.
fn model_union(entries: &[Entry]) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = entries.iter().map(|e| (e.pfn(), e.end())).collect();
    iv.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in iv {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Canonical union of arbitrary ranges.
fn union_of(ranges: &[PfnRange]) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = ranges.iter().map(|r| (r.start, r.end)).collect();
    iv.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in iv {
        assert!(s < e, "empty range {s}..{e}");
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let min_order = u32::from(data[0]) % (MAX_PAGE_ORDER + 2);
    let max_pages = u64::from(u16::from_le_bytes([data[1], data[2]]));
    let report_len = usize::from(data[3] % 40) + 1;
    let expand = data[3] & 0x80 != 0;
    let base = match data[4] % 4 {
        0 => 0,
        1 => PFN_LIMIT - (1 << 24) - 2048,
        2 => 1 << 18,
        _ => u64::from(data[4]) << 30,
    };
    let mut entries: Vec<Entry> = data[5..]
        .chunks_exact(4)
        .filter_map(|c| {
            let off = u64::from(u32::from_le_bytes([c[0], c[1], c[2], 0]));
            // Sparse offsets sometimes, dense (overlapping) ones mostly.
            let off = if c[3] & 0x80 != 0 { off } else { off & 0xfff };
            Entry::new(base + off, u32::from(c[3] & 0x0f))
        })
        .collect();
    if expand {
        // Repeat the batch 16 times at shifted pfns, so that short inputs
        // make batches big enough for radix_sort's partitioning passes
        // (it leaves slices of up to 512 entries to sort_unstable).
        let n = entries.len();
        for rep in 1..16u64 {
            for i in 0..n {
                let e = entries[i];
                let shifted = Entry::new(e.pfn() ^ (rep << 13), e.order());
                entries.extend(shifted);
            }
        }
    }

    // Capture: push everything through a small buffer, checking accounting.
    // Buddies coalesce, so the buffer turns an entry away only when it is
    // full and the entry is no buddy of its last one.
    let mut buf = CaptureBuf::<64>::new();
    let threshold = max_pages.max(1);
    let mut pushed = 0u64;
    let mut kept: Vec<Entry> = Vec::new();
    let mut turned: Vec<Entry> = Vec::new();
    for e in &entries {
        let before = buf.len();
        let last = buf.as_slice().last().copied();
        let r = buf.push(*e, threshold);
        if r == Push::Full {
            assert_eq!(before, 64);
            assert_eq!(buf.len(), 64);
            assert!(last.and_then(|l| l.buddy_merge(*e)).is_none());
            turned.push(*e);
            continue;
        }
        assert!(buf.len() <= before + 1);
        kept.push(*e);
        pushed += e.pages();
        let ready = buf.len() == 64 || pushed >= threshold;
        assert_eq!(r, if ready { Push::Ready } else { Push::Stored });
        assert_eq!(buf.pending_pages(), pushed);
    }
    // The spill is the hull of the entries turned away.
    let hull = match (
        turned.iter().map(|e| e.pfn()).min(),
        turned.iter().map(|e| e.end()).max(),
    ) {
        (Some(lo), Some(hi)) => PfnRange::new(lo, hi),
        _ => PfnRange::default(),
    };
    assert_eq!(buf.spilled(), hull);
    // What the buffer holds covers exactly the pages it took.
    assert_eq!(model_union(buf.as_slice()), model_union(&kept));

    // Dedup: pushed with push_in at min_order, rounded out to the cover
    // order, the buffer covers every page it took, and only blocks of
    // that order those pages touch.
    let mut dbuf = CaptureBuf::<64>::new();
    let mut dkept: Vec<Entry> = Vec::new();
    let mut dpending = 0u64;
    for e in &entries {
        if dbuf.push_in(*e, min_order, u64::MAX) != Push::Full {
            dkept.push(*e);
            dpending += e.pages();
        }
        assert_eq!(dbuf.pending_pages(), dpending);
    }
    let k = dbuf.cover_order();
    assert!(k <= min_order.min(MAX_PAGE_ORDER));
    let mut stored = dbuf.as_slice().to_vec();
    sort(&mut stored);
    let mask = (1u64 << k) - 1;
    let covered: Vec<PfnRange> = merge_out(&stored, k).collect();
    for e in &dkept {
        // Each kept entry, rounded out, lies inside one covered range.
        let (s, t) = (e.pfn() & !mask, (e.end() + mask) & !mask);
        assert!(
            covered.iter().any(|r| r.start <= s && t <= r.end),
            "{e:?} not covered"
        );
    }
    for r in &covered {
        assert_eq!(r.start & mask, 0);
        assert_eq!(r.end & mask, 0);
    }

    // Merge of unsorted input still covers exactly the pages.
    let want = model_union(&entries);
    let unsorted: Vec<PfnRange> = merge(&entries).collect();
    assert_eq!(union_of(&unsorted), want);

    // Sort: sorted permutation.
    let mut expect = entries.clone();
    expect.sort_unstable();
    let mut radix = entries.clone();
    radix_sort(&mut radix);
    assert_eq!(radix, expect);
    sort(&mut entries);
    assert_eq!(entries, expect);

    // Merge: exactly the canonical union.
    let merged: Vec<PfnRange> = merge(&entries).collect();
    let got: Vec<(u64, u64)> = merged.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(got, want);

    // Cut: per range, the maximal aligned sub-range, if any.
    let align = 1u64 << min_order;
    let cuts: Vec<PfnRange> = cut(merged.iter().copied(), min_order).collect();
    let mut expect_cuts = Vec::new();
    for r in &merged {
        let s = r.start.div_ceil(align) * align;
        let e = r.end / align * align;
        if s < e {
            expect_cuts.push(PfnRange::new(s, e));
        }
    }
    assert_eq!(cuts, expect_cuts);

    // Batch: every page once, in order, within both limits, aligned.
    let Ok(limits) = Limits::new(max_pages, min_order) else {
        assert!(max_pages < align);
        return;
    };
    let mut batcher = Batcher::new(cuts.iter().copied(), limits);
    let mut report = vec![PfnRange::default(); report_len];
    let mut pieces: Vec<PfnRange> = Vec::new();
    loop {
        let n = batcher.fill(&mut report);
        assert!(n <= report_len);
        pieces.extend_from_slice(&report[..n]);
        if n < report_len {
            break;
        }
    }
    for p in &pieces {
        assert!(p.start < p.end);
        assert!(p.pages() <= max_pages);
        assert_eq!(p.start % align, 0);
        assert_eq!(p.end % align, 0);
    }
    assert_eq!(union_of(&pieces), union_of(&cuts));
    let total: u64 = pieces.iter().map(PfnRange::pages).sum();
    assert_eq!(total, cuts.iter().map(PfnRange::pages).sum::<u64>());
    assert!(pieces.windows(2).all(|w| w[0].end <= w[1].start));

    // Hyper-V encoding of each piece: exact cover, in order, fields in
    // range, at most three entries for a piece of at most 4 GiB.
    // (Pfns from 2^52 on, beyond any machine, end the encoding.)
    const HV_PFN_LIMIT: u64 = 1 << 52;
    for p in &pieces {
        let mut next = p.start.min(HV_PFN_LIMIT);
        let mut n = 0;
        for e in hv::encode(*p) {
            let d = hv::decode(e);
            assert_eq!(d.start, next);
            assert!(d.end > d.start);
            if e & (1 << 11) != 0 {
                assert_eq!(d.start % 512, 0);
                assert_eq!(e & (1 << 12), 0);
            } else {
                assert!(d.pages() <= hv::MAX_ENTRY_PAGES);
            }
            next = d.end;
            n += 1;
        }
        assert_eq!(next, p.end.min(HV_PFN_LIMIT).max(p.start.min(HV_PFN_LIMIT)));
        if p.pages() <= hv::MAX_ENTRY_BYTES >> 12 {
            assert!(n <= hv::MAX_ENTRIES_PER_RANGE);
        }
    }
});
