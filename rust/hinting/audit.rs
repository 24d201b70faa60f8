// SPDX-License-Identifier: GPL-2.0

//! The lost-report audit, in the audit builds only (`--cfg ph_audit`: the
//! test build, and the build the real-guest scenarios load): nothing the
//! free path told the worker about may be left free and unreported once the
//! worker is idle.
//!
//! The free path marks what it hands the worker in a bitmap of pages
//! (*told*): the aligned block an entry stands for (its hint block: frees
//! inside it are only counted, and the scan of the entry covers it), or the
//! entry's own pages when the buffer turned it away (the spill span, which
//! the worker scans, is made of those). A report the host took clears its
//! pages.
//! What the mechanism drops by design (reporting paused, no transport, a
//! zone short of memory) clears what it dropped, or all of it.
//!
//! [`run`] waits until the worker is idle (every CPU's entries processed,
//! the retry and settle lists and the overflow span empty), drains the
//! per-CPU page lists (a block forgotten there is as lost), then walks the
//! told chunks with the worker's own isolation scan at the reporting order
//! (whole host pages when those are larger than a buddy block): every block
//! it can take is free, not reported, and as large as the module reports.
//! It puts each back as it was, unreported. It waits for the worker to be
//! idle again and walks once more: a block found both times has been free
//! and unreported through two idle points, and is lost. The blocks are
//! named in the log and the write that asked for the audit fails.
//!
//! Pages above the bitmap (16 GiB) are not audited; neither is memory that
//! was free before the module loaded and never freed since.

#![forbid(unsafe_code)]

use super::{Engine, Mechanism};
use crate::capture::Entry;
use crate::kernel_ext::{
    free_page_hint::{Isolated, Mark, Scan, ScanCounts, Section, Unheld, MAX_PAGE_ORDER},
    mm,
};
use crate::ranges::PfnRange;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use kernel::{prelude::*, sync::ArcBorrow};

/// Words of the bitmap: 65536 * 64 pages, 16 GiB of 4 KiB pages (512 KiB of
/// the module's memory, in the audit builds only).
const WORDS: usize = 65536;
const PAGES: u64 = WORDS as u64 * 64;

/// The told pages.
static TOLD: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// Sets (or clears) the pages of `r`.
fn mark(r: PfnRange, set: bool) {
    let (mut p, end) = (r.start.min(PAGES), r.end.min(PAGES));
    while p < end {
        let bit = p % 64;
        let n = (64 - bit).min(end - p);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << bit
        };
        let w = &TOLD[(p / 64) as usize];
        if set {
            // Read first: a block freed into again and again stays shared.
            if w.load(Relaxed) & mask != mask {
                w.fetch_or(mask, Relaxed);
            }
        } else {
            w.fetch_and(!mask, Relaxed);
        }
        p += n;
    }
}

/// The free path stored `e` to stand for its aligned block of `order`
/// pages (0: its own pages): the worker will look at that block.
#[inline]
pub(crate) fn told(e: Entry, order: u32) {
    let order = order.max(e.order());
    let start = e.pfn() & !((1u64 << order) - 1);
    mark(PfnRange::new(start, start + (1u64 << order)), true);
}

/// The host took a report of these ranges.
pub(crate) fn reported(ranges: &[PfnRange]) {
    for &r in ranges {
        mark(r, false);
    }
}

/// The worker dropped `r` by design (a zone short of memory).
pub(crate) fn dropped(r: PfnRange) {
    mark(r, false);
}

/// Reports the audit builds refused because they covered a page
/// page_hinting did not hold ([`unheld`]).
pub(crate) static UNHELD: AtomicU64 = AtomicU64::new(0);

/// A report was about to cover `pfn`, which page_hinting does not hold
/// (`Isolated::unheld_pfn`): says so as loudly as a kernel warning (the
/// test runners fail on the line), and counts it. The report is not sent.
pub(crate) fn unheld(pfn: u64, why: Unheld) {
    UNHELD.fetch_add(1, Relaxed);
    pr_err!(
        "BUG: page_hinting: a report covers pfn {:#x}, which it does not hold ({:?}): not sent\n",
        pfn,
        why
    );
}

/// The mechanism dropped what it was told by design (reporting paused, no
/// transport): nothing told so far is expected to be reported.
pub(crate) fn forget() {
    for w in &TOLD {
        w.store(0, Relaxed);
    }
}

/// What the worker did with a range, for the trace that names, beside a
/// lost block, the last things that happened to its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Ev {
    /// A scan of a batch's range (counts: what it skipped).
    Batch = 1,
    /// A scan of a settle tick.
    Settle = 2,
    /// A scan of a retry round.
    Retry = 3,
    /// A scan of an overflow span.
    Span = 4,
    /// The range waits on the settle list.
    SettleAdd = 5,
    /// The range waits on the retry list.
    RetryAdd = 6,
    /// The host took the range.
    Reported = 7,
    /// The worker gave a held block back marked reported.
    BackReported = 8,
    /// The worker gave a held block back unmarked.
    BackUnreported = 9,
}

impl Ev {
    fn name(v: u64) -> &'static str {
        match v {
            1 => "batch scan",
            2 => "settle scan",
            3 => "retry scan",
            4 => "span scan",
            5 => "settle add",
            6 => "retry add",
            7 => "reported",
            8 => "back marked",
            9 => "back unmarked",
            _ => "?",
        }
    }
}

/// Trace entries (a ring): start, end, ms << 8 | kind, packed counts.
/// 4 MiB of the module's memory, in the audit builds only.
const TRACE: usize = 1 << 17;
static TRACE_BUF: [[AtomicU64; 4]; TRACE] = [const { [const { AtomicU64::new(0) }; 4] }; TRACE];
static TRACE_NEXT: AtomicUsize = AtomicUsize::new(0);
/// The kind of the scans that follow ([`Ev::Batch`] to [`Ev::Span`]).
static PATH: AtomicU32 = AtomicU32::new(0);

/// The scans that follow are of this kind (the worker mutex is held).
pub(crate) fn path(ev: Ev) {
    PATH.store(ev as u32, Relaxed);
}

/// Packs what a scan skipped, 12 bits a count (saturated).
fn pack(c: &ScanCounts) -> u64 {
    let f = |v: u64| v.min(0xfff);
    f(c.busy) | f(c.unlisted) << 12 | f(c.isolated) << 24 | f(c.reported) << 36 | f(c.small) << 48
}

fn put(kind: u64, r: PfnRange, counts: u64) {
    let i = TRACE_NEXT.fetch_add(1, Relaxed) % TRACE;
    let e = &TRACE_BUF[i];
    e[0].store(r.start, Relaxed);
    e[1].store(r.end, Relaxed);
    e[2].store((mm::ktime_ns() / 1_000_000) << 8 | kind, Relaxed);
    e[3].store(counts, Relaxed);
}

/// Traces a scan of `r` (of the current [`path`]) that skipped `c`.
pub(crate) fn scanned(r: PfnRange, c: &ScanCounts) {
    put(u64::from(PATH.load(Relaxed)), r, pack(c));
}

/// Traces `ev` for `r`.
pub(crate) fn trace(ev: Ev, r: PfnRange) {
    if !r.is_empty() {
        put(ev as u64, r, 0);
    }
}

/// Prints the last trace entries that touch `[pfn, pfn + 2^order)`.
fn explain(pfn: u64, order: u32) {
    let end = pfn + (1u64 << order);
    let next = TRACE_NEXT.load(Relaxed);
    let now = mm::ktime_ns() / 1_000_000;
    let mut shown = 0;
    let mut oldest = now;
    for k in 1..=next.min(TRACE) {
        let e = &TRACE_BUF[(next - k) % TRACE];
        let (s, t, m) = (e[0].load(Relaxed), e[1].load(Relaxed), e[2].load(Relaxed));
        oldest = m >> 8;
        if s < end && pfn < t && shown < 12 {
            let c = e[3].load(Relaxed);
            let f = |sh: u32| (c >> sh) & 0xfff;
            pr_err!(
                "audit:   {} ms ago: {} {:#x}..{:#x}: busy {} unlisted {} isolated {} reported {} small {}\n",
                now.saturating_sub(m >> 8),
                Ev::name(m & 0xff),
                s,
                t,
                f(0),
                f(12),
                f(24),
                f(36),
                f(48)
            );
            shown += 1;
        }
    }
    pr_err!(
        "audit:   ({} trace entries touch it; the trace goes back {} ms)\n",
        shown,
        now.saturating_sub(oldest)
    );
}

/// The first run of told pages at or after `from`, and the pfn after it.
fn next_run(from: u64) -> Option<(PfnRange, u64)> {
    let mut p = from;
    while p < PAGES {
        let w = TOLD[(p / 64) as usize].load(Relaxed) >> (p % 64);
        if w == 0 {
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += u64::from(w.trailing_zeros());
        let start = p;
        while p < PAGES && TOLD[(p / 64) as usize].load(Relaxed) & (1 << (p % 64)) != 0 {
            p += 1;
        }
        return Some((PfnRange::new(start, p), p));
    }
    None
}

/// Blocks a walk found free and unreported: the first `LISTED` of them,
/// and how many in all.
struct Found {
    blocks: [(u64, u32); Found::LISTED],
    listed: usize,
    total: u64,
}

impl Found {
    const LISTED: usize = 64;

    fn new() -> Self {
        Found {
            blocks: [(0, 0); Found::LISTED],
            listed: 0,
            total: 0,
        }
    }

    fn add(&mut self, pfn: u64, order: u32) {
        self.total += 1;
        if let Some(b) = self.blocks.get_mut(self.listed) {
            *b = (pfn, order);
            self.listed += 1;
        }
    }

    fn has(&self, pfn: u64, order: u32) -> bool {
        self.blocks[..self.listed].contains(&(pfn, order))
    }
}

/// What an audit found.
pub(crate) struct Outcome {
    /// Blocks free and unreported at both walks (the first `LISTED`).
    pub(crate) lost: [(u64, u32); Found::LISTED],
    pub(crate) nlost: usize,
    /// Free unreported blocks at the first walk, and at the second.
    pub(crate) first: u64,
    pub(crate) second: u64,
    /// The worker was idle before each walk (else it gave up waiting).
    pub(crate) idle: bool,
    /// The order audited (the host page's, in whole host pages).
    pub(crate) order: u32,
    /// Not audited: reporting is paused or has no transport.
    pub(crate) skipped: bool,
}

/// How long [`run`] waits for the worker to be idle, in 100 ms polls: a
/// bound on a failing run only.
const IDLE_POLLS: u32 = 300;

/// Whether the worker has nothing left to do: every CPU's entries were
/// processed (after a flush), and no range waits on the retry or settle
/// list.
fn idle(mech: ArcBorrow<'_, Mechanism>) -> bool {
    super::flush_all(mech);
    let w = mech.worker.lock();
    w.retry.is_empty() && w.settle.is_empty() && w.overflow_span.is_empty()
}

fn wait_idle(mech: ArcBorrow<'_, Mechanism>) -> bool {
    for _ in 0..IDLE_POLLS {
        if idle(mech) {
            return true;
        }
        mm::msleep(100);
    }
    false
}

/// One walk over the told chunks (see the module documentation), with the
/// worker mutex held.
fn walk(engine: &Engine, order: u32, granule: Option<u32>) -> Found {
    let mut found = Found::new();
    let mut guard = engine.worker.lock();
    let state = &mut *guard;
    let section = Section::begin();
    let mut held = Isolated::new(&section, &mut state.store);
    let mut from = 0;
    while let Some((run, next)) = next_run(from) {
        from = next;
        match granule {
            None => {
                let mut scan = Scan::new(&section, run, order, u64::MAX);
                loop {
                    let _ = held.take(&mut scan);
                    for e in held.blocks() {
                        found.add(e.pfn(), e.order());
                    }
                    held.put_back(Mark::Unreported);
                    if scan.done() {
                        break;
                    }
                    mm::cond_resched();
                }
            }
            Some(g) => {
                let size = 1u64 << g;
                let mut start = run.start & !(size - 1);
                while start < run.end {
                    let hp = PfnRange::new(start, start + size);
                    let mut scan = Scan::new(&section, hp, MAX_PAGE_ORDER, u64::MAX);
                    let mut free = 0;
                    loop {
                        free += held.take(&mut scan);
                        held.put_back(Mark::Unreported);
                        if scan.done() {
                            break;
                        }
                        mm::cond_resched();
                    }
                    if free == size {
                        found.add(start, g);
                    }
                    start += size;
                    // A run ends inside the host page it just looked at.
                    from = from.max(start.min(PAGES));
                }
            }
        }
    }
    drop(held);
    drop(section);
    found
}

/// Audits the running mechanism (see the module documentation). Process
/// context; takes the worker mutex.
pub(crate) fn run(mech: ArcBorrow<'_, Mechanism>) -> Outcome {
    let engine: &Engine = &mech;
    let mut out = Outcome {
        lost: [(0, 0); Found::LISTED],
        nlost: 0,
        first: 0,
        second: 0,
        idle: true,
        order: 0,
        skipped: false,
    };
    if !engine.cfg.enabled.load(Relaxed) || engine.worker.lock().transport().is_none() {
        out.skipped = true;
        return out;
    }
    out.idle = wait_idle(mech);
    // Free pages on per-CPU lists are free memory too: the drain moves them
    // to the free lists (without a free, as the kernel's own drains do),
    // where the walks see them.
    mm::drain_pcp_lists();
    let granule = engine.granule_order();
    let order = engine.min_order();
    out.order = granule.unwrap_or(order);
    let first = walk(engine, order, granule);
    out.idle &= wait_idle(mech);
    // The knobs may have changed meanwhile: the second walk uses the first
    // one's orders, so that the blocks compare.
    let second = walk(engine, order, granule);
    out.first = first.total;
    out.second = second.total;
    // Without an idle worker, a block may wait on a list of its: no
    // verdict (the count says so).
    let verdict = if out.idle { second.listed } else { 0 };
    for &(pfn, o) in &second.blocks[..verdict] {
        if first.has(pfn, o) {
            if let Some(l) = out.lost.get_mut(out.nlost) {
                *l = (pfn, o);
                out.nlost += 1;
            }
        }
    }
    for &(pfn, o) in &out.lost[..out.nlost] {
        pr_err!(
            "audit: LOST: free block at pfn {:#x}, order {}: freed, told, and not reported while the worker was idle\n",
            pfn,
            o
        );
        explain(pfn, o);
    }
    pr_info!(
        "audit: order {}: {} lost; free unreported blocks {} then {}; worker idle: {}\n",
        out.order,
        out.nlost,
        out.first,
        out.second,
        out.idle
    );
    out
}
