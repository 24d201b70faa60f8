// SPDX-License-Identifier: GPL-2.0

//! Fuzzes `settle::Settle` against a model of its windows: any sequence of
//! frees (ranges) and ticks, on a small and a large capacity.
//!
//! Input layout: byte 0 puts the run's pfn window of 4096 pages at 0 or
//! at the top of the pfn space (bit 0); then 3 bytes per step: a first
//! byte of 0xff is a tick, else the 3 bytes give a range's start in the
//! window and its length (1 to 64 pages).
//!
//! Checked at each tick: the scanned pieces are sorted and disjoint and
//! add up to what `tick` returns; nothing is scanned that was not freed in
//! one of the two windows before the tick (a joined generation may add the
//! pages between ranges freed in the same window, so a scanned page must
//! lie between two freed pages of one of those windows); with no joining,
//! exactly the old window minus the young one is scanned; and after two
//! windows with no free, every freed page has been scanned.

#![no_main]

use libfuzzer_sys::fuzz_target;
use page_hinting_core::capture::PFN_LIMIT;
use page_hinting_core::ranges::PfnRange;
use page_hinting_core::settle::Settle;
use std::collections::BTreeSet;

enum Op {
    Add(u64, u64),
    Tick,
}

fn ops(data: &[u8]) -> Vec<Op> {
    let Some((&first, data)) = data.split_first() else {
        return Vec::new();
    };
    let base = if first & 1 != 0 {
        PFN_LIMIT - 4096 - 64
    } else {
        0
    };
    let mut out: Vec<Op> = data
        .chunks_exact(3)
        .map(|c| {
            if c[0] == 0xff {
                return Op::Tick;
            }
            let start = base + ((u64::from(c[0] & 0x0f) << 8) | u64::from(c[1]));
            Op::Add(start, 1 + u64::from(c[2] & 63))
        })
        .collect();
    out.extend([Op::Tick, Op::Tick, Op::Tick]);
    out
}

/// Whether `p` lies within the hull of the freed pages of `w`.
fn in_hull(w: &BTreeSet<u64>, p: u64) -> bool {
    matches!((w.first(), w.last()), (Some(&a), Some(&b)) if a <= p && p <= b)
}

fn check<const N: usize>(ops: &[Op]) {
    let mut s = Settle::<N>::new();
    let (mut old, mut young) = (BTreeSet::new(), BTreeSet::new());
    let (mut old_joined, mut adds) = (false, 0usize);
    let mut owed: BTreeSet<u64> = BTreeSet::new();
    for op in ops {
        match *op {
            Op::Add(start, len) => {
                s.add(PfnRange::new(start, start + len));
                young.extend(start..start + len);
                owed.extend(start..start + len);
                adds += 1;
            }
            Op::Tick => {
                let mut got: Vec<PfnRange> = Vec::new();
                let pages = s.tick(|r| got.push(r));
                assert!(got.iter().all(|r| !r.is_empty()));
                assert!(
                    got.windows(2).all(|w| w[0].end < w[1].start),
                    "unsorted {got:?}"
                );
                assert_eq!(pages, got.iter().map(|r| r.pages()).sum::<u64>());
                let scanned: BTreeSet<u64> = got.iter().flat_map(|r| r.start..r.end).collect();
                let joined = adds > N;
                if !old_joined && !joined {
                    let want: BTreeSet<u64> = old.difference(&young).copied().collect();
                    assert_eq!(scanned, want);
                } else {
                    for &p in &scanned {
                        assert!(in_hull(&old, p), "page {p} scanned, never freed");
                    }
                }
                for p in &scanned {
                    owed.remove(p);
                }
                if old.is_empty() && young.is_empty() {
                    assert!(owed.is_empty(), "never scanned: {owed:?}");
                }
                old = std::mem::take(&mut young);
                old_joined = joined;
                adds = 0;
            }
        }
    }
    assert!(s.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let ops = ops(data);
    check::<2>(&ops);
    check::<64>(&ops);
});
