// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for the mechanism, run in the debug guest when the test
//! build of the module loads (after its init, so the hook is attached).
//!
//! The tests change knobs and the transport of the running module and put
//! them back. They use blocks of `MAX_PAGE_ORDER`: those bypass the per-CPU
//! page lists and go straight to the buddy allocator when freed, so a test
//! knows they are free buddy blocks right after it freed them.

use crate::capture::{Entry, MAX_PAGE_ORDER};
use crate::hinting::{self, Shared};
use crate::kunit::{kexpect, kexpect_eq, kunit_suite, Test};
use crate::sys::{self, OwnedBlock, Scan};
use crate::transport::{AnyTransport, NullTransport, RecordingTransport};
use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

const TOP: u32 = MAX_PAGE_ORDER;
const TOP_PAGES: u64 = 1 << TOP;
/// Free pages the "allocate everything" loops leave to the rest of the guest.
const RESERVE: u64 = 4096;

fn sh(t: &Test) -> Option<&'static Shared> {
    let s = hinting::shared();
    kexpect!(t, s.is_some(), "the module's mechanism is not running");
    s
}

/// Saves the knobs a test changes and puts them back on drop.
struct Knobs<'a> {
    sh: &'a Shared,
    threshold: u64,
    flush: u32,
    min_order: u32,
    enabled: bool,
}

impl<'a> Knobs<'a> {
    fn save(sh: &'a Shared) -> Self {
        Knobs {
            sh,
            threshold: sh.cfg.threshold_pages.load(Relaxed),
            flush: sh.cfg.flush_ms.load(Relaxed),
            min_order: sh.cfg.min_order.load(Relaxed),
            enabled: sh.cfg.enabled.load(Relaxed),
        }
    }

    /// Stops the automatic hand-off (huge threshold, no idle flush) and
    /// empties every CPU's buffers, so that only the test drives reporting.
    fn quiesce(&self) {
        self.sh.cfg.threshold_pages.store(u64::MAX, Relaxed);
        self.sh.cfg.flush_ms.store(0, Relaxed);
        self.sh.flush_all();
    }
}

impl Drop for Knobs<'_> {
    fn drop(&mut self) {
        let c = &self.sh.cfg;
        c.threshold_pages.store(self.threshold, Relaxed);
        c.flush_ms.store(self.flush, Relaxed);
        c.min_order.store(self.min_order, Relaxed);
        c.enabled.store(self.enabled, Relaxed);
    }
}

/// Installs a recording transport for the life of the guard.
struct Recorder<'a>(&'a Shared);

impl<'a> Recorder<'a> {
    fn install(sh: &'a Shared, max_entries: usize) -> Result<Self> {
        let rec = KBox::new(RecordingTransport::new(max_entries), GFP_KERNEL)?;
        sh.worker.lock().transport = AnyTransport::Recording(rec);
        Ok(Recorder(sh))
    }

    fn with<R>(&self, f: impl FnOnce(&mut RecordingTransport) -> R) -> Option<R> {
        match &mut self.0.worker.lock().transport {
            AnyTransport::Recording(r) => Some(f(r)),
            _ => None,
        }
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.0.worker.lock().transport = AnyTransport::Null(NullTransport);
    }
}

/// Allocates `n` top-order blocks and frees them again; returns their pfns
/// (free buddy blocks now, unless someone allocated them meanwhile).
fn free_top_blocks(t: &Test, pfns: &mut [u64]) -> usize {
    let mut n = 0;
    for slot in pfns.iter_mut() {
        match OwnedBlock::alloc(TOP, false) {
            Some(b) => {
                *slot = b.leak();
                n += 1;
            }
            None => break,
        }
    }
    kexpect!(t, n == pfns.len(), "could only allocate {} top-order blocks", n);
    // Free them all on one CPU, which is then the one that captured them.
    let irq = sys::IrqOff::new();
    for &pfn in &pfns[..n] {
        // SAFETY: each pfn was leaked from an `OwnedBlock` of order TOP above.
        drop(unsafe { OwnedBlock::from_pfn(pfn, TOP) });
    }
    drop(irq);
    n
}

fn entries_of(pfns: &[u64], order: u32, out: &mut [Entry]) -> usize {
    let mut n = 0;
    for (slot, &pfn) in out.iter_mut().zip(pfns) {
        if let Some(e) = Entry::new(pfn, order) {
            *slot = e;
            n += 1;
        }
    }
    n
}

/// Frees of real pages show up in this CPU's capture buffer with their
/// orders.
fn capture_records_frees(t: &Test) {
    let Some(sh) = sh(t) else { return };
    let knobs = Knobs::save(sh);
    knobs.quiesce();
    let (Some(a), Some(b)) = (OwnedBlock::alloc(0, false), OwnedBlock::alloc(3, false)) else {
        kexpect!(t, false, "allocation failed");
        return;
    };
    let (pa, pb) = (a.pfn(), b.pfn());
    let before = sh.cpu_totals();
    // Free both and look at this CPU's buffer with interrupts off, so that
    // the entries cannot move to another CPU's view or be taken meanwhile.
    let irq = sys::IrqOff::new();
    drop(a);
    drop(b);
    let (found_a, found_b) = sh.with_this_cpu_buf(|buf| {
        let s = buf.as_slice();
        (
            s.iter().any(|e| e.pfn() == pa && e.order() == 0),
            s.iter().any(|e| e.pfn() == pb && e.order() == 3),
        )
    });
    drop(irq);
    kexpect!(t, found_a, "order-0 free of pfn {:#x} not in this CPU's buffer", pa);
    kexpect!(t, found_b, "order-3 free of pfn {:#x} not in this CPU's buffer", pb);
    let after = sh.cpu_totals();
    kexpect!(t, after.captured_pages >= before.captured_pages + 9);
    kexpect!(t, after.captured_blocks >= before.captured_blocks + 2);
}

/// Isolated blocks stay out of the allocator until they are given back.
fn isolation_keeps_pages_out(t: &Test) {
    let Some(sh) = sh(t) else { return };
    let knobs = Knobs::save(sh);
    knobs.quiesce();
    let mut pfns = [0u64; 8];
    let n = free_top_blocks(t, &mut pfns);
    let mut held = [sys::Block { pfn: 0, order: 0 }; 8];
    let mut nheld = 0;
    for &pfn in &pfns[..n] {
        let mut scan = Scan::new(pfn, pfn + TOP_PAGES, TOP, TOP_PAGES);
        nheld += scan.isolate(&mut held[nheld..nheld + 1]);
    }
    kexpect_eq!(t, nheld, n);
    let free_before = sys::nr_free_pages();

    // Take everything the allocator will give, one page at a time, chained
    // through the pages themselves, and check none is a held page.
    let mut chain: Option<OwnedBlock> = None;
    let mut got = 0u64;
    let mut leaked = 0u64;
    // Stop 16 MiB short of empty: other allocations in the guest must not
    // be pushed into the OOM killer while the test holds everything else.
    while sys::nr_free_pages() > RESERVE {
        let Some(p) = OwnedBlock::alloc(0, true) else { break };
        let pfn = p.pfn();
        if held[..nheld]
            .iter()
            .any(|b| (b.pfn as u64) <= pfn && pfn < b.pfn as u64 + TOP_PAGES)
        {
            leaked += 1;
        }
        p.write_u64(chain.map_or(u64::MAX, |c| c.leak()));
        chain = Some(p);
        got += 1;
    }
    kexpect!(t, got > 1000, "only {} pages could be allocated", got);
    kexpect!(
        t,
        sys::nr_free_pages() < free_before / 8,
        "the loop left {} of {} free pages",
        sys::nr_free_pages(),
        free_before
    );
    kexpect_eq!(t, leaked, 0);
    while let Some(p) = chain.take() {
        let next = p.read_u64();
        drop(p);
        if next != u64::MAX {
            // SAFETY: `next` was leaked from an order-0 `OwnedBlock` above.
            chain = Some(unsafe { OwnedBlock::from_pfn(next, 0) });
        }
    }

    sys::putback(&held[..nheld], false);
    for b in &held[..nheld] {
        let st = sys::page_state(b.pfn as u64);
        kexpect!(t, st.buddy, "pfn {:#x} is not free after putback", b.pfn);
        kexpect!(t, !st.reported, "pfn {:#x} marked reported without a report", b.pfn);
    }
}

/// A report marks the blocks reported; they are not reported again, and
/// allocating them clears the flag (the PG_uptodate alias).
fn reported_flag_lifecycle(t: &Test) {
    let Some(sh) = sh(t) else { return };
    let knobs = Knobs::save(sh);
    knobs.quiesce();
    let Ok(rec) = Recorder::install(sh, 32) else {
        kexpect!(t, false, "no memory for the recorder");
        return;
    };
    let mut pfns = [0u64; 4];
    let n = free_top_blocks(t, &mut pfns);
    let zero = Entry::new(0, 0).unwrap_or_else(|| unreachable!());
    let mut e = [zero; 4];
    let ne = entries_of(&pfns[..n], TOP, &mut e);
    let skipped_before = sh.stats.skipped_reported.load(Relaxed);
    sh.process_entries(&mut e[..ne], n as u64 * TOP_PAGES);

    let (pages, seen_free, covered) = rec
        .with(|r| {
            let covered = pfns[..n].iter().all(|&p| r.contains(p) && r.contains(p + TOP_PAGES - 1));
            (r.pages, r.seen_free, covered)
        })
        .unwrap_or((0, 1, false));
    kexpect!(t, covered, "not every freed block was reported");
    kexpect_eq!(t, pages, n as u64 * TOP_PAGES);
    kexpect_eq!(t, seen_free, 0);
    for &pfn in &pfns[..n] {
        let st = sys::page_state(pfn);
        kexpect!(t, st.buddy && st.reported, "pfn {:#x}: buddy {} reported {}", pfn, st.buddy, st.reported);
    }

    // The same blocks again: nothing new goes out.
    let ne = entries_of(&pfns[..n], TOP, &mut e);
    sh.process_entries(&mut e[..ne], n as u64 * TOP_PAGES);
    let pages2 = rec.with(|r| r.pages).unwrap_or(0);
    kexpect_eq!(t, pages2, pages);
    kexpect!(t, sh.stats.skipped_reported.load(Relaxed) >= skipped_before + n as u64 * TOP_PAGES);

    // Allocate every top-order block: ours come back with the flag clear.
    let mut chain: Option<OwnedBlock> = None;
    let mut seen = 0;
    // Reported blocks sit at the tail of the free lists: keep taking
    // top-order blocks (which leaves smaller free blocks to everyone else)
    // until ours came out.
    while seen < n {
        let Some(b) = OwnedBlock::alloc(TOP, true) else { break };
        let pfn = b.pfn();
        if pfns[..n].contains(&pfn) {
            seen += 1;
            let st = sys::page_state(pfn);
            kexpect!(t, !st.reported && !st.uptodate, "allocated pfn {:#x} kept PG_reported/PG_uptodate", pfn);
        }
        b.write_u64(chain.map_or(u64::MAX, |c| c.leak()));
        chain = Some(b);
    }
    kexpect_eq!(t, seen, n);
    while let Some(b) = chain.take() {
        let next = b.read_u64();
        drop(b);
        if next != u64::MAX {
            // SAFETY: leaked from a top-order `OwnedBlock` above.
            chain = Some(unsafe { OwnedBlock::from_pfn(next, TOP) });
        }
    }
}

/// A failed report gives the pages back unmarked and counts the error.
fn transport_error_leaves_unmarked(t: &Test) {
    let Some(sh) = sh(t) else { return };
    let knobs = Knobs::save(sh);
    knobs.quiesce();
    let Ok(rec) = Recorder::install(sh, 32) else { return };
    rec.with(|r| r.fail = Some(EIO));
    let mut pfns = [0u64; 2];
    let n = free_top_blocks(t, &mut pfns);
    let zero = Entry::new(0, 0).unwrap_or_else(|| unreachable!());
    let mut e = [zero; 2];
    let ne = entries_of(&pfns[..n], TOP, &mut e);
    let errs = sh.stats.transport_errors.load(Relaxed);
    sh.process_entries(&mut e[..ne], n as u64 * TOP_PAGES);
    kexpect!(t, sh.stats.transport_errors.load(Relaxed) > errs);
    kexpect_eq!(t, sh.stats.isolated_now.load(Relaxed), 0);
    for &pfn in &pfns[..n] {
        let st = sys::page_state(pfn);
        kexpect!(t, st.buddy && !st.reported, "pfn {:#x} after a failed report: buddy {} reported {}", pfn, st.buddy, st.reported);
    }
}

/// The hand-off: crossing the threshold reports freed memory without any
/// explicit flush, through the real free path, hook and worker.
fn threshold_triggers_report(t: &Test) {
    let Some(sh) = sh(t) else { return };
    let knobs = Knobs::save(sh);
    knobs.quiesce();
    let Ok(rec) = Recorder::install(sh, 32) else { return };
    sh.cfg.threshold_pages.store(4 * TOP_PAGES, Relaxed);
    let mut pfns = [0u64; 8];
    let n = free_top_blocks(t, &mut pfns);
    // No flush: only the free path's own hand-off can have queued work.
    sh.wait_queued();
    let pages = rec.with(|r| r.pages).unwrap_or(0);
    kexpect!(t, pages >= 4 * TOP_PAGES, "only {} pages reported after {} freed", pages, n as u64 * TOP_PAGES);
    kexpect_eq!(t, sh.stats.isolated_now.load(Relaxed), 0);
}

kunit_suite!(
    page_hinting_mechanism,
    "page_hinting_mechanism",
    [
        capture_records_frees,
        isolation_keeps_pages_out,
        reported_flag_lifecycle,
        transport_error_leaves_unmarked,
        threshold_triggers_report
    ]
);
