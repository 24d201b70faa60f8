// SPDX-License-Identifier: GPL-2.0

//! Property tests of the page-hinting core against trivial models.
//!
//! The model of a batch of entries is the `BTreeSet` of the pfns they cover.
//! These are host-only integration tests, so the kernel module never sees
//! proptest.

use std::collections::BTreeSet;

use page_hinting_core::batch::{Batcher, Limits};
use page_hinting_core::capture::{
    count_free, CaptureBuf, Counted, Entry, Push, COUNT_LEFT_MAX, MAX_PAGE_ORDER, PFN_LIMIT,
};
use page_hinting_core::hv;
use page_hinting_core::knobs::{self, KnobError};
use page_hinting_core::ranges::{cut, granules, merge, merge_out, radix_sort, sort, PfnRange};
use page_hinting_core::retry::{Retry, Wait, DELAYS_MS, DRAINS_TO_GIVE_UP};
use page_hinting_core::settle::Settle;
use proptest::prelude::*;

/// Orders as the free path sees them: mostly 0, some 9, anything up to 10.
fn order() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => Just(0u32),
        2 => 0..=3u32,
        1 => Just(9u32),
        1 => 0..=MAX_PAGE_ORDER,
    ]
}

/// Entries packed into a small window so they overlap, touch and repeat;
/// sometimes the window sits at the very top of the pfn space.
fn dense_entries(max_len: usize) -> impl Strategy<Value = Vec<Entry>> {
    let window = prop_oneof![
        4 => Just(0u64),
        1 => Just(PFN_LIMIT - 8192),
        1 => 0..PFN_LIMIT - 8192,
    ];
    (
        window,
        prop::collection::vec((0..8192u64, order()), 0..max_len),
    )
        .prop_map(|(base, v)| {
            v.into_iter()
                .filter_map(|(off, o)| Entry::new(base + off, o))
                .collect()
        })
}

/// Entries with pfns anywhere, for sorting.
fn wide_entries(max_len: usize) -> impl Strategy<Value = Vec<Entry>> {
    let pfn = prop_oneof![
        2 => 0..1u64 << 24,
        1 => 0..PFN_LIMIT,
        1 => 0..64u64,
    ];
    prop::collection::vec((pfn, order()), 0..max_len).prop_map(|v| {
        v.into_iter()
            .filter_map(|(p, o)| Entry::new(p, o).or_else(|| Entry::new(p, 0)))
            .collect()
    })
}

fn model(entries: &[Entry]) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for e in entries {
        set.extend(e.pfn()..e.end());
    }
    set
}

fn pages_of(ranges: &[PfnRange]) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for r in ranges {
        set.extend(r.start..r.end);
    }
    set
}

/// The model of `cut`: every aligned `1 << k`-page block inside `set`.
/// The model of the capture buffer's coalescing: each entry pushed in turn,
/// merged with the last one kept while the two are buddies (same order,
/// aligned, the two halves of one block of the next order).
fn coalesce(pushed: &[Entry]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for &e in pushed {
        let (mut pfn, mut order) = (e.pfn(), e.order());
        while let Some(&last) = out.last() {
            let size = 1u64 << order;
            let buddies = last.order() == order
                && order < MAX_PAGE_ORDER
                && last.pfn() % size == 0
                && pfn % size == 0
                && last.pfn().abs_diff(pfn) == size
                && last.pfn().min(pfn) % (2 * size) == 0;
            if !buddies {
                break;
            }
            out.pop();
            pfn = pfn.min(last.pfn());
            order += 1;
        }
        out.push(Entry::new(pfn, order).unwrap());
    }
    out
}

fn stored_len(pushed: &[Entry]) -> usize {
    coalesce(pushed).len()
}

fn aligned_blocks(set: &BTreeSet<u64>, k: u32) -> BTreeSet<u64> {
    let size = 1u64 << k;
    let starts: BTreeSet<u64> = set.iter().map(|p| p & !(size - 1)).collect();
    let mut out = BTreeSet::new();
    for b in starts {
        if set.range(b..b + size).count() as u64 == size {
            out.extend(b..b + size);
        }
    }
    out
}

fn sorted_disjoint_nonadjacent(ranges: &[PfnRange]) -> bool {
    ranges.iter().all(|r| r.start < r.end) && ranges.windows(2).all(|w| w[0].end < w[1].start)
}

proptest! {
    // 256 cases by default; set PROPTEST_CASES for more.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn sort_is_sorted_permutation(mut v in prop_oneof![wide_entries(3000), dense_entries(600)]) {
        let mut expect = v.clone();
        expect.sort();
        let mut w = v.clone();
        sort(&mut v);
        prop_assert_eq!(&v, &expect);
        radix_sort(&mut w);
        prop_assert_eq!(w, expect);
    }


    #[test]
    fn sort_mostly_sorted(mut v in wide_entries(2000), swaps in prop::collection::vec((any::<usize>(), any::<usize>()), 0..40)) {
        v.sort();
        let n = v.len();
        if n > 0 {
            for (a, b) in swaps {
                v.swap(a % n, b % n);
            }
        }
        let mut expect = v.clone();
        expect.sort();
        let mut w = v.clone();
        sort(&mut v);
        prop_assert_eq!(v, &expect[..]);
        radix_sort(&mut w);
        prop_assert_eq!(w, expect);
    }

    #[test]
    fn merge_loses_and_invents_nothing(mut v in dense_entries(200)) {
        let want = model(&v);
        sort(&mut v);
        let ranges: Vec<PfnRange> = merge(&v).collect();
        prop_assert!(sorted_disjoint_nonadjacent(&ranges), "{:?}", ranges);
        prop_assert_eq!(pages_of(&ranges), want);
        prop_assert!(ranges.len() <= v.len());
    }

    #[test]
    fn merge_out_is_the_touched_aligned_blocks(mut v in dense_entries(200), k in 0..=12u32) {
        // Every aligned block of 1 << k pages that an entry touches.
        let size = 1u64 << k;
        let mut want = BTreeSet::new();
        for p in model(&v) {
            let b = p & !(size - 1);
            want.extend(b..b + size);
        }
        sort(&mut v);
        let ranges: Vec<PfnRange> = merge_out(&v, k).collect();
        prop_assert!(sorted_disjoint_nonadjacent(&ranges), "{:?}", ranges);
        prop_assert!(ranges.iter().all(|r| r.start % size == 0 && r.end % size == 0));
        prop_assert_eq!(pages_of(&ranges), want);
        let plain: Vec<PfnRange> = merge(&v).collect();
        prop_assert_eq!(merge_out(&v, 0).collect::<Vec<_>>(), plain);
    }

    #[test]
    fn push_in_covers_every_page(
        ops in prop::collection::vec(prop_oneof![
            // Runs of neighbouring 4 KiB frees, so blocks repeat.
            8 => (0..4096u64, 1..64u64, Just(0u32)),
            2 => (0..4096u64, Just(1u64), order()),
        ], 0..60),
        orders in prop::collection::vec(prop_oneof![3 => Just(9u32), 1 => 0..=12u32], 1..3),
        threshold in prop_oneof![Just(u64::MAX), 0..4096u64],
    ) {
        const N: usize = 16;
        let mut buf = CaptureBuf::<N>::new();
        let mut pushed: Vec<Entry> = Vec::new();
        let mut pending = 0u64;
        let mut i = 0usize;
        for (start, len, o) in ops {
            for pfn in start..start + len {
                let e = Entry::new(pfn, o).unwrap();
                // The order changes now and then (a knob written).
                let order = orders[i % orders.len()];
                i += 1;
                let was_full = buf.is_full();
                match buf.push_in(e, order, threshold) {
                    Push::Full => {
                        prop_assert!(was_full);
                        continue;
                    }
                    got => {
                        pushed.push(e);
                        pending += e.pages();
                        let ready = buf.is_full() || pending >= threshold;
                        prop_assert_eq!(got, if ready { Push::Ready } else { Push::Stored });
                    }
                }
                prop_assert_eq!(buf.pending_pages(), pending);
                prop_assert!(buf.len() <= pushed.len());
            }
        }
        // Rounded out to the cover order, the stored entries hold every
        // page pushed (and not turned away), and nothing outside the
        // blocks of that order those pages touch.
        let k = buf.cover_order();
        let mut stored = buf.as_slice().to_vec();
        sort(&mut stored);
        let covered = pages_of(&merge_out(&stored, k).collect::<Vec<_>>());
        let want = model(&pushed);
        prop_assert!(want.is_subset(&covered));
        let size = 1u64 << k;
        prop_assert!(covered.iter().all(|p| want.range(p & !(size - 1)..(p & !(size - 1)) + size).next().is_some()));
    }

    #[test]
    fn merge_unsorted_covers_exactly(v in dense_entries(100)) {
        let ranges: Vec<PfnRange> = merge(&v).collect();
        prop_assert!(ranges.iter().all(|r| r.start < r.end));
        prop_assert_eq!(pages_of(&ranges), model(&v));
    }

    #[test]
    fn cut_keeps_exactly_aligned_whole_pieces(mut v in dense_entries(200), k in 0..=MAX_PAGE_ORDER) {
        let want = aligned_blocks(&model(&v), k);
        sort(&mut v);
        let merged: Vec<PfnRange> = merge(&v).collect();
        let cuts: Vec<PfnRange> = cut(merged.iter().copied(), k).collect();
        let mask = (1u64 << k) - 1;
        prop_assert!(sorted_disjoint_nonadjacent(&cuts), "{:?}", cuts);
        prop_assert!(cuts.iter().all(|r| r.start < r.end && r.start & mask == 0 && r.end & mask == 0));
        prop_assert!(cuts.len() <= merged.len());
        // Each piece is the maximal aligned sub-range of one merged range.
        for c in &cuts {
            let src = merged.iter().find(|m| m.start <= c.start && c.end <= m.end);
            prop_assert!(src.is_some(), "{:?} not inside any range", c);
            let m = src.unwrap();
            prop_assert_eq!(c.start, (m.start + mask) & !mask);
            prop_assert_eq!(c.end, m.end & !mask);
        }
        prop_assert_eq!(pages_of(&cuts), want);
    }

    #[test]
    fn granules_are_exactly_the_touched_host_pages(mut v in dense_entries(200), k in 0..=20u32) {
        // Model: the set of granule indices any captured page falls in.
        let want: BTreeSet<u64> = model(&v).iter().map(|p| p >> k).collect();
        sort(&mut v);
        let got: Vec<PfnRange> = granules(merge(&v), k).collect();
        prop_assert!(got.windows(2).all(|w| w[0].end <= w[1].start), "{:?}", got);
        prop_assert!(got.iter().all(|g| g.start.trailing_zeros() >= k && g.pages() == 1 << k));
        let idx: Vec<u64> = got.iter().map(|g| g.start >> k).collect();
        prop_assert_eq!(idx, want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn batch_preserves_pages_and_limits(
        mut v in dense_entries(200),
        k in 0..=MAX_PAGE_ORDER,
        cut_first in any::<bool>(),
        max_pages in 1..5000u64,
        sizes in prop::collection::vec(1..40usize, 1..8),
    ) {
        let Ok(limits) = Limits::new(max_pages, k) else {
            prop_assert!(max_pages < 1 << k);
            return Ok(());
        };
        sort(&mut v);
        let input: Vec<PfnRange> = if cut_first {
            cut(merge(&v), k).collect()
        } else {
            merge(&v).collect()
        };
        let mask = (1u64 << k) - 1;
        let mut b = Batcher::new(input.iter().copied(), limits);
        let mut pieces = Vec::new();
        let mut report = [PfnRange::default(); 40];
        for round in 0.. {
            let n = sizes[round % sizes.len()];
            let got = b.fill(&mut report[..n]);
            prop_assert!(got <= n);
            pieces.extend_from_slice(&report[..got]);
            if got < n {
                break;
            }
        }
        prop_assert_eq!(b.next(), None);
        for p in &pieces {
            prop_assert!(p.start < p.end);
            prop_assert!(p.pages() <= max_pages);
            if cut_first {
                prop_assert!(p.start & mask == 0 && p.end & mask == 0, "{:?} unaligned", p);
            }
        }
        // Rebuild the input: pieces of one range are contiguous, in order,
        // and split only at aligned pfns.
        let mut rebuilt: Vec<PfnRange> = Vec::new();
        for p in &pieces {
            match rebuilt.last_mut() {
                Some(last) if last.end == p.start && input.iter().any(|r| r.start < p.start && p.start < r.end) => {
                    prop_assert!(p.start & mask == 0, "split at unaligned {}", p.start);
                    last.end = p.end;
                }
                _ => rebuilt.push(*p),
            }
        }
        prop_assert_eq!(rebuilt, input);
    }

    #[test]
    fn capture_accounting(
        ops in prop::collection::vec(prop_oneof![
            20 => (0..PFN_LIMIT - 1024, order()).prop_map(|(p, o)| Some(Entry::new(p, o).unwrap())),
            1 => Just(None),
        ], 0..80),
        threshold in prop_oneof![0..64u64, 0..20000u64, Just(u64::MAX)],
    ) {
        const N: usize = 16;
        let mut buf = CaptureBuf::<N>::new();
        let mut shadow: Vec<Entry> = Vec::new();
        let mut spilled: Vec<Entry> = Vec::new();
        for op in ops {
            match op {
                None => {
                    buf.clear();
                    shadow.clear();
                    spilled.clear();
                }
                Some(e) => {
                    // Full: N entries stored and `e` is no buddy of the last.
                    let was_full = stored_len(&shadow) == N
                        && coalesce(&[&shadow[..], &[e]].concat()).len() > N;
                    let got = buf.push(e, threshold);
                    if was_full {
                        prop_assert_eq!(got, Push::Full);
                        spilled.push(e);
                    } else {
                        shadow.push(e);
                        let pending: u64 = shadow.iter().map(|e| e.pages()).sum();
                        let stored = stored_len(&shadow);
                        let ready = stored == N || pending >= threshold;
                        prop_assert_eq!(got, if ready { Push::Ready } else { Push::Stored });
                    }
                }
            }
            let pending: u64 = shadow.iter().map(|e| e.pages()).sum();
            let stored = coalesce(&shadow);
            prop_assert_eq!(buf.pending_pages(), pending);
            prop_assert_eq!(buf.as_slice(), &stored[..]);
            // Coalescing covers exactly the pages pushed.
            prop_assert_eq!(model(buf.as_slice()), model(&shadow));
            prop_assert_eq!(buf.len(), stored.len());
            prop_assert_eq!(buf.is_full(), stored.len() == N);
            prop_assert_eq!(buf.is_ready(threshold), stored.len() == N || pending >= threshold);
            // The spill is exactly the hull of what was turned away.
            let want = match (spilled.iter().map(|e| e.pfn()).min(), spilled.iter().map(|e| e.end()).max()) {
                (Some(lo), Some(hi)) => PfnRange::new(lo, hi),
                _ => PfnRange::default(),
            };
            prop_assert_eq!(buf.spilled(), want);
        }
    }

    /// The hint count against a model of plain sums: the pages and frees
    /// decoded at every step, from any start the module sets, through the
    /// wrap below 0 and past it; exactly one free, the one whose pages
    /// reach the start, is the full one; a take (the count set back to its
    /// start) starts the sums again.
    #[test]
    fn hint_count_matches_model(
        limit in prop_oneof![0..3000u64, Just(COUNT_LEFT_MAX), 0..=COUNT_LEFT_MAX],
        frees in prop::collection::vec((order(), any::<bool>()), 0..400),
    ) {
        let mut count = limit;
        let (mut pages, mut n) = (0u64, 0u64);
        for (o, take) in frees {
            let nr = 1u64 << o;
            let (c, full) = count_free(count, nr);
            count = c;
            let reached = pages < limit && pages + nr >= limit;
            pages += nr;
            n += 1;
            prop_assert_eq!(full, reached, "pages {} of limit {}", pages, limit);
            prop_assert_eq!(Counted::from_count(count, limit), Counted { pages, frees: n });
            if take {
                count = limit;
                (pages, n) = (0, 0);
                prop_assert_eq!(Counted::from_count(count, limit), Counted::default());
            }
        }
    }

    #[test]
    fn block_at_matches_model(pfn in 0..1u64 << 20, order in 0..=MAX_PAGE_ORDER, at in 0..16u32) {
        let Some(e) = Entry::new(pfn, order) else { return Ok(()) };
        let o = at.min(MAX_PAGE_ORDER);
        // The model: every page of the entry in the block of its first.
        let inside = (e.pfn()..e.end()).all(|p| p >> o == e.pfn() >> o);
        prop_assert_eq!(e.block_at(at), inside.then_some(e.pfn() >> o));
    }

    #[test]
    fn entry_new_matches_model(pfn in prop_oneof![any::<u64>(), PFN_LIMIT - 2048..PFN_LIMIT + 16, 0..16u64], order in 0..70u32) {
        let fits = order <= MAX_PAGE_ORDER
            && pfn.checked_add(1 << order.min(63)).is_some_and(|end| end <= PFN_LIMIT);
        match Entry::new(pfn, order) {
            Some(e) => {
                prop_assert!(fits);
                prop_assert_eq!((e.pfn(), e.order(), e.pages()), (pfn, order, 1u64 << order));
                prop_assert_eq!(e.end(), pfn + (1 << order));
                prop_assert_eq!(Entry::from_raw(e.to_raw()), Some(e));
            }
            None => prop_assert!(!fits),
        }
    }

    #[test]
    fn parse_u64_matches_model(input in knob_bytes()) {
        prop_assert_eq!(knobs::parse_u64(&input), model_parse(&input));
    }

    #[test]
    fn knobs_match_model(input in knob_bytes()) {
        let m = model_parse(&input);
        let ranged = |min: u64, max: u64| match m {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            Ok(_) => Err(KnobError::OutOfRange { min, max }),
            Err(e) => Err(e),
        };
        prop_assert_eq!(knobs::parse_threshold_kb(&input), ranged(4, 1 << 30));
        prop_assert_eq!(knobs::parse_min_order(&input), ranged(0, 10).map(|v| v as u32));
        prop_assert_eq!(knobs::parse_enabled(&input), ranged(0, 1).map(|v| v == 1));
        prop_assert_eq!(knobs::parse_flush_ms(&input), ranged(0, 60_000).map(|v| v as u32));
        let host = match ranged(4, 1 << 20) {
            Ok(v) if !v.is_power_of_two() => Err(KnobError::NotPowerOfTwo),
            r => r,
        };
        prop_assert_eq!(knobs::parse_host_page_kb(&input), host);
    }

    #[test]
    fn threshold_pages_model(kb in prop_oneof![0..2000u64, any::<u64>()], shift in 9..17u32) {
        let ps = 1u64 << shift;
        let exact = ((kb as u128 * 1024).div_ceil(ps as u128)).max(1);
        let got = knobs::threshold_pages(kb, ps);
        if kb <= u64::MAX / 1024 {
            prop_assert_eq!(got as u128, exact);
        } else {
            prop_assert_eq!(got, u64::MAX.div_ceil(ps));
        }
    }
}

proptest! {
    // Large slices are slow to generate: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn radix_sort_large(mut v in wide_entries(20000)) {
        let mut expect = v.clone();
        expect.sort();
        radix_sort(&mut v);
        prop_assert_eq!(v, expect);
    }
}

/// Byte strings near the knob grammar: digits, newlines and the usual
/// mistakes, plus well-formed numbers around the u64 limit.
/// One step on a retry list: push a range with a gap allowance, or run a
/// round in which the ranges whose start has bit `mask` set still hold
/// unlisted pages.
#[derive(Clone, Debug)]
enum RetryOp {
    Push(u64, u64, u64),
    Round(u64),
    Drain,
}

fn retry_ops() -> impl Strategy<Value = Vec<RetryOp>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..256u64, 0..40u64, 0..4u64).prop_map(|(s, l, g)| RetryOp::Push(s, s + l, g)),
            1 => (0..8u64).prop_map(RetryOp::Round),
            1 => Just(RetryOp::Drain),
        ],
        0..60,
    )
}

proptest! {
    /// The retry list against a model of (start, end, rounds, drained)
    /// entries: every page pushed is covered until a round drops its entry
    /// (nothing pushed is ever refused), an entry is given up only by its
    /// `DELAYS_MS.len()`-th round or later and only after a drain that came
    /// after everything it holds was pushed (never while a round finds it
    /// in an isolated pageblock), a range inside an entry that
    /// has not been through a round changes nothing but that entry's wait
    /// for a drain, a full list grows its last entry, and the next delay
    /// follows the freshest entry.
    #[test]
    fn retry_matches_model(ops in retry_ops()) {
        const N: usize = 6;
        let last = DELAYS_MS.len() - 1;
        let mut l = Retry::<N>::new();
        let mut model: Vec<(u64, u64, usize, u8)> = Vec::new();
        for op in ops {
            match op {
                RetryOp::Push(s, e, gap) => {
                    l.push(PfnRange::new(s, e), gap);
                    if s >= e {
                        continue;
                    }
                    // Inside an entry still waiting for its first round:
                    // it waits for a drain again, nothing else changes.
                    if let Some(m) = model
                        .iter_mut()
                        .find(|(ls, le, t, _)| *t == 0 && *ls <= s && e <= *le)
                    {
                        m.3 = 0;
                        continue;
                    }
                    let full = model.len() == N;
                    match model.last_mut() {
                        Some((ls, le, t, d))
                            if (*t == 0 && s <= *le + gap && *ls <= e + gap) || full =>
                        {
                            *ls = (*ls).min(s);
                            *le = (*le).max(e);
                            *d = 0;
                        }
                        _ => model.push((s, e, 0, 0)),
                    }
                }
                RetryOp::Drain => {
                    l.drained();
                    for m in &mut model {
                        m.3 = (m.3 + 1).min(DRAINS_TO_GIVE_UP);
                    }
                }
                RetryOp::Round(bit) => {
                    // Off the free lists by one bit of the start.
                    let wait = |r: PfnRange| Wait::from((r.start >> bit) & 1 != 0);
                    let mut seen = Vec::new();
                    let k = l.round(|r| {
                        seen.push(r);
                        wait(r)
                    });
                    prop_assert_eq!(k.scanned, model.len());
                    let mut given_up = 0;
                    let mut next = Vec::new();
                    for ((s, e, tries, drained), r) in model.drain(..).zip(&seen) {
                        prop_assert_eq!((s, e), (r.start, r.end));
                        if wait(*r) == Wait::Nothing {
                            continue;
                        }
                        if tries >= last && drained >= DRAINS_TO_GIVE_UP {
                            given_up += r.pages();
                        } else {
                            next.push((s, e, (tries + 1).min(last), drained));
                        }
                    }
                    model = next;
                    prop_assert_eq!(k.kept, model.len());
                    prop_assert_eq!(k.given_up_pages, given_up);
                }
            }
            prop_assert_eq!(l.len(), model.len());
            prop_assert!(l.len() <= N);
            let pages: u64 = model.iter().map(|(s, e, _, _)| e - s).sum();
            prop_assert_eq!(l.pages(), pages);
            let want = model.iter().map(|(_, _, t, _)| *t).min().map(|t| DELAYS_MS[t]);
            prop_assert_eq!(l.next_delay_ms(), want);
        }
    }

    /// Whatever is pushed, rounds and drains come in: a page a round still
    /// finds off the free lists is never given up unless
    /// `DRAINS_TO_GIVE_UP` drains came after the last push that covered it (the property issue 38's lost reports
    /// broke), and every pushed page stays covered until a round lets it go.
    #[test]
    fn retry_gives_up_only_after_a_drain(ops in retry_ops()) {
        let mut l = Retry::<4>::new();
        // Per page (0..300): Some(drains since its last push) while on the list.
        let mut pages: Vec<Option<u8>> = vec![None; 300];
        for op in ops {
            match op {
                RetryOp::Push(s, e, gap) => {
                    l.push(PfnRange::new(s, e), gap);
                    for p in s..e.min(300) {
                        pages[p as usize] = Some(0);
                    }
                }
                RetryOp::Drain => {
                    l.drained();
                    for p in pages.iter_mut().flatten() {
                        *p = p.saturating_add(1);
                    }
                }
                RetryOp::Round(_) => {
                    let mut kept_pages = vec![false; 300];
                    l.round(|_| true);
                    // What is still on the list after a round that found
                    // every range off the free lists.
                    let mut after = l.clone();
                    after.round(|r| {
                        for p in r.start..r.end.min(300) {
                            kept_pages[p as usize] = true;
                        }
                        false
                    });
                    for (p, st) in pages.iter_mut().enumerate() {
                        if let Some(drained) = *st {
                            if !kept_pages[p] {
                                prop_assert!(
                                    drained >= DRAINS_TO_GIVE_UP,
                                    "page {} given up after {} drains since its push",
                                    p,
                                    drained
                                );
                                *st = None;
                            }
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    /// Hyper-V encoding: the entries cover the range exactly, in order,
    /// each within its field widths; a range of at most `MAX_ENTRY_BYTES`
    /// takes at most `MAX_ENTRIES_PER_RANGE` entries, and a range of
    /// aligned huge pages takes only large entries.
    #[test]
    fn hv_encoding_covers_exactly(
        start in prop_oneof![0..1u64 << 40, (0..1u64 << 31).prop_map(|x| x << 9)],
        len in prop_oneof![1..4096u64, 1..1u64 << 22, (1..4096u64).prop_map(|x| x << 9)],
    ) {
        let r = PfnRange::new(start, start + len);
        let mut next = start;
        let mut n = 0;
        let mut all_large = true;
        for e in hv::encode(r) {
            let d = hv::decode(e);
            prop_assert_eq!(d.start, next);
            prop_assert!(d.end > d.start);
            let large = e & (1 << 11) != 0;
            all_large &= large;
            if large {
                prop_assert_eq!(d.start % 512, 0);
                prop_assert!(d.pages() <= hv::MAX_ENTRY_PAGES * 512);
                prop_assert_eq!(e & (1 << 12), 0, "page_size must say 2 MiB");
            } else {
                prop_assert!(d.pages() <= hv::MAX_ENTRY_PAGES);
            }
            next = d.end;
            n += 1;
        }
        prop_assert_eq!(next, r.end);
        if len <= hv::MAX_ENTRY_BYTES >> 12 {
            prop_assert!(n <= hv::MAX_ENTRIES_PER_RANGE, "{} entries", n);
        }
        if start % 512 == 0 && len % 512 == 0 {
            prop_assert!(all_large);
        }
    }
}

fn knob_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => b'0'..=b'9',
        1 => Just(b'\n'),
        1 => prop::sample::select(&b"-+ x e.\0\t\r\xff"[..]),
        1 => any::<u8>(),
    ];
    prop_oneof![
        3 => prop::collection::vec(byte, 0..24),
        1 => (any::<u64>(), any::<bool>(), 0..3usize).prop_map(|(v, nl, zeros)| {
            let mut s = "0".repeat(zeros) + &v.to_string();
            if nl {
                s.push('\n');
            }
            s.into_bytes()
        }),
        1 => (any::<u64>(), 1..20u64).prop_map(|(v, extra)| {
            format!("{}{}", v, extra).into_bytes()
        }),
    ]
}

/// The reference grammar, written independently of the parser.
fn model_parse(input: &[u8]) -> Result<u64, KnobError> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if body.is_empty() {
        return Err(KnobError::Empty);
    }
    if !body.iter().all(u8::is_ascii_digit) {
        return Err(KnobError::Invalid);
    }
    let s = std::str::from_utf8(body).unwrap();
    let trimmed = s.trim_start_matches('0');
    let max = u64::MAX.to_string();
    if trimmed.len() > max.len() || (trimmed.len() == max.len() && trimmed > max.as_str()) {
        return Err(KnobError::Overflow);
    }
    Ok(if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().unwrap()
    })
}

/// One step of a settle run: add `[start, start + len)` (a free), or tick.
#[derive(Clone, Debug)]
enum SettleOp {
    Add(u64, u64),
    Tick,
}

fn settle_ops() -> impl Strategy<Value = Vec<SettleOp>> {
    prop::collection::vec(
        prop_oneof![
            6 => (0..512u64, 1..24u64).prop_map(|(s, l)| SettleOp::Add(s, l)),
            1 => Just(SettleOp::Tick),
        ],
        0..300,
    )
}

/// Runs `ops` on a `Settle<N>` and checks it against the model of the
/// windows between ticks: each tick scans ranges that are sorted and
/// disjoint; nothing freed is lost (a page freed in a window and not in
/// the next is scanned at the end of the next, unless that window's
/// ranges were joined to fit, which may defer it a tick, never longer
/// than the first tick whose window had no free); and while no window
/// overflows, a tick scans exactly the pages freed in the window before
/// the last and not in the last.
fn settle_check<const N: usize>(ops: &[SettleOp]) -> Result<(), TestCaseError> {
    let mut s = Settle::<N>::new();
    let (mut old, mut young) = (BTreeSet::new(), BTreeSet::new());
    // Whether the windows of `old` and `young` were joined (ran over N).
    let (mut old_joined, mut young_adds) = (false, 0usize);
    // Pages freed and not yet scanned since.
    let mut owed: BTreeSet<u64> = BTreeSet::new();
    let mut ops = ops.to_vec();
    // Two empty windows at the end: everything owed must be scanned then.
    ops.extend([SettleOp::Tick, SettleOp::Tick, SettleOp::Tick]);
    for op in ops {
        match op {
            SettleOp::Add(start, len) => {
                s.add(PfnRange::new(start, start + len));
                young.extend(start..start + len);
                owed.extend(start..start + len);
                young_adds += 1;
            }
            SettleOp::Tick => {
                let mut got: Vec<PfnRange> = Vec::new();
                let pages = s.tick(|r| got.push(r));
                prop_assert!(sorted_disjoint_nonadjacent(&got));
                prop_assert_eq!(pages, got.iter().map(|r| r.pages()).sum::<u64>());
                let scanned = pages_of(&got);
                let young_joined = young_adds > N;
                let want: BTreeSet<u64> = old.difference(&young).copied().collect();
                if !old_joined && !young_joined {
                    prop_assert_eq!(&scanned, &want);
                } else if !young_joined {
                    // Joining only adds pages to a generation: what the
                    // old one owes is scanned unless the young one covers it.
                    prop_assert!(want.is_subset(&scanned));
                }
                for p in &scanned {
                    owed.remove(p);
                }
                if young.is_empty() && old.is_empty() {
                    // Two windows with no free: nothing is owed any more.
                    prop_assert!(owed.is_empty(), "never scanned: {:?}", owed);
                }
                old = core::mem::take(&mut young);
                old_joined = young_joined;
                young_adds = 0;
            }
        }
    }
    prop_assert!(s.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Large generations: exact.
    #[test]
    fn settle_matches_model(ops in settle_ops()) {
        settle_check::<512>(&ops)?;
    }

    /// Small generations that overflow and join ranges: nothing lost.
    #[test]
    fn settle_joined_loses_nothing(ops in settle_ops()) {
        settle_check::<4>(&ops)?;
        settle_check::<1>(&ops)?;
    }
}
