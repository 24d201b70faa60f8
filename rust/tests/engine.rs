// SPDX-License-Identifier: GPL-2.0

//! KUnit suite for the engine transport: a recording device registered
//! with the kernel's free page reporting (`page_reporting_register()`, as
//! virtio_balloon and hv_balloon do) gets the module's reports through the
//! claim, as many entries per call as a device takes, no block below the
//! device's order, and a failed call leaves the pages unmarked. Runs in
//! the KUnit guest, where the module is loaded with `transport=engine` and
//! no driver has registered a device (hv_balloon cannot run here; this
//! stands in for it).

use super::kunit::{kexpect, kexpect_eq, kunit_suite, Test};
use super::suites::entries_of;
use super::sys::{self, Alloc, OwnedBlock};
use crate::capture::{Entry, MAX_PAGE_ORDER};
use crate::hinting::{self, WORK_FLUSH};
use crate::kernel_ext::page_reporting::{self, Registered, TestDevice, CAPACITY};
use crate::transport::engine;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

const TOP: u32 = MAX_PAGE_ORDER;
const TOP_PAGES: u64 = 1 << TOP;
/// Blocks freed with a gap between them: more ranges than one call takes.
const BLOCKS: usize = CAPACITY + 8;

/// What the recording device saw, in atomics (its `report()` gets `&self`).
struct RecDev {
    calls: AtomicU64,
    max_entries: AtomicU64,
    pages: AtomicU64,
    /// Entries that are not whole, aligned blocks of the device's order.
    misfit: AtomicU64,
    /// The order the device checks entries against.
    order: AtomicU64,
    /// The first pfn of each block the test watches, and pages of them seen.
    watch: [AtomicU64; BLOCKS],
    watched_pages: AtomicU64,
    /// An errno (negative) every call returns, or 0.
    fail: AtomicI32,
}

impl RecDev {
    fn new() -> Self {
        RecDev {
            calls: AtomicU64::new(0),
            max_entries: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            misfit: AtomicU64::new(0),
            order: AtomicU64::new(0),
            watch: [const { AtomicU64::new(u64::MAX) }; BLOCKS],
            watched_pages: AtomicU64::new(0),
            fail: AtomicI32::new(0),
        }
    }
}

impl TestDevice for RecDev {
    fn report(&self, entries: &[(u64, u64)]) -> Result {
        self.calls.fetch_add(1, Relaxed);
        self.max_entries.fetch_max(entries.len() as u64, Relaxed);
        let block = 1u64 << self.order.load(Relaxed);
        for &(pfn, pages) in entries {
            self.pages.fetch_add(pages, Relaxed);
            if pfn % block != 0 || pages % block != 0 || pages == 0 {
                self.misfit.fetch_add(1, Relaxed);
            }
            for w in &self.watch {
                let s = w.load(Relaxed);
                if s == u64::MAX {
                    continue;
                }
                let (lo, hi) = (s.max(pfn), (s + TOP_PAGES).min(pfn + pages));
                self.watched_pages.fetch_add(hi.saturating_sub(lo), Relaxed);
            }
        }
        match self.fail.load(Relaxed) {
            0 => Ok(()),
            e => Err(Error::from_errno(e)),
        }
    }
}

/// Allocates `2 * pfns.len()` top-order blocks and frees every other one
/// in pfn order, so that no two freed blocks touch (each is a range of its
/// own); the others stay allocated in `kept`. Returns the freed pfns.
fn free_gapped(pfns: &mut [u64], kept: &mut KVec<Option<OwnedBlock>>) -> usize {
    while kept.len() < 2 * pfns.len() {
        let Some(b) = OwnedBlock::alloc(TOP, Alloc::Normal) else {
            break;
        };
        if kept.push(Some(b), GFP_KERNEL).is_err() {
            break;
        }
    }
    kept.sort_unstable_by_key(|b| b.as_ref().map(|b| b.pfn()));
    let mut n = 0;
    for slot in kept.iter_mut().step_by(2) {
        if n == pfns.len() {
            break;
        }
        if let Some(b) = slot.take() {
            pfns[n] = b.pfn();
            drop(b);
            n += 1;
        }
    }
    n
}

/// The engine reports through a registered device: calls of at most the
/// device's capacity, no block below its order, the host's pages marked
/// reported; a failing call leaves them unmarked; the device's
/// unregistration detaches it.
fn engine_reports_through_device(t: &Test) {
    let Some(m) = super::mechanism() else {
        kexpect!(t, false, "the module's mechanism is not running");
        return;
    };
    kexpect!(
        t,
        engine::attached_order().is_none(),
        "a device is attached before the test registers one"
    );
    let saved = (
        m.cfg.threshold_pages.load(Relaxed),
        m.cfg.flush_ms.load(Relaxed),
    );
    m.cfg.threshold_pages.store(u64::MAX, Relaxed);
    m.cfg.flush_ms.store(0, Relaxed);
    hinting::Mechanism::cancel(m.as_arc_borrow(), WORK_FLUSH);
    hinting::flush_all(m.as_arc_borrow());

    // The order the kernel gives the first device that registers; a device
    // of the largest order makes it visible (pageblock order is below).
    let dev = match Registered::new(RecDev::new(), TOP) {
        Ok(d) => d,
        Err(e) => {
            kexpect!(t, false, "page_reporting_register: {:?}", e);
            return;
        }
    };
    let order = page_reporting::device_order();
    dev.dev().order.store(order.into(), Relaxed);
    // The first registration sets page_reporting_order: nothing in this
    // guest registered a device before, so it is the test device's.
    kexpect_eq!(t, order, TOP);
    kexpect_eq!(t, engine::attached_order(), Some(order));

    let mut kept = KVec::new();
    let mut pfns = [0u64; BLOCKS];
    let n = free_gapped(&mut pfns, &mut kept);
    kexpect_eq!(t, n, BLOCKS);
    for (w, &p) in dev.dev().watch.iter().zip(&pfns[..n]) {
        w.store(p, Relaxed);
    }
    let zero = Entry::new(0, 0).unwrap_or_else(|| unreachable!());
    let mut e = [zero; BLOCKS];
    let ne = entries_of(&pfns[..n], TOP, &mut e);
    hinting::process_entries(m.as_arc_borrow(), &mut e[..ne], n as u64 * TOP_PAGES, 0);
    let d = dev.dev();
    kexpect!(
        t,
        d.max_entries.load(Relaxed) <= CAPACITY as u64,
        "a call had {} entries, capacity {}",
        d.max_entries.load(Relaxed),
        CAPACITY
    );
    kexpect!(
        t,
        d.calls.load(Relaxed) >= 2,
        "{} ranges in {} calls",
        n,
        d.calls.load(Relaxed)
    );
    kexpect_eq!(t, d.misfit.load(Relaxed), 0);
    kexpect_eq!(t, d.watched_pages.load(Relaxed), n as u64 * TOP_PAGES);
    for &pfn in &pfns[..n] {
        let st = sys::page_state(pfn);
        kexpect!(
            t,
            st.buddy && st.reported,
            "pfn {:#x} after a report: buddy {} reported {}",
            pfn,
            st.buddy,
            st.reported
        );
    }

    // A block below the device's order is not reported: half a top-order
    // block whose other half stays allocated (it cannot merge).
    let calls = d.calls.load(Relaxed);
    if let Some(b) = OwnedBlock::alloc(TOP, Alloc::Normal) {
        let pfn = b.leak();
        let half = TOP_PAGES / 2;
        // SAFETY: `pfn` is the top-order block leaked above, split once;
        // the upper half is freed here, the lower half below, each page
        // once.
        unsafe {
            sys::split_block(pfn, TOP);
            sys::free_split_pages(pfn + half, pfn + 2 * half);
        }
        // The freed pages merge into one buddy block of order TOP - 1.
        crate::kernel_ext::mm::drain_pcp_lists();
        let mut small = [Entry::new(pfn + half, TOP - 1).unwrap_or(zero)];
        hinting::process_entries(m.as_arc_borrow(), &mut small, half, 0);
        let st = sys::page_state(pfn + half);
        kexpect!(
            t,
            st.buddy && !st.reported,
            "an order-{} block reported to a device of order {}: buddy {} reported {}",
            TOP - 1,
            order,
            st.buddy,
            st.reported
        );
        kexpect_eq!(t, d.calls.load(Relaxed), calls);
        // SAFETY: the lower half of the split block, still ours.
        unsafe { sys::free_split_pages(pfn, pfn + half) };
    } else {
        kexpect!(t, false, "no top-order block for the order check");
    }
    kexpect_eq!(t, d.misfit.load(Relaxed), 0);

    // A failing call: the next blocks go back unmarked.
    d.fail.store(-(kernel::bindings::EIO as i32), Relaxed);
    let errs = m.stats.transport_errors.load(Relaxed);
    let mut pfns2 = [0u64; 2];
    let mut kept2 = KVec::new();
    let n2 = free_gapped(&mut pfns2, &mut kept2);
    let ne = entries_of(&pfns2[..n2], TOP, &mut e);
    hinting::process_entries(m.as_arc_borrow(), &mut e[..ne], n2 as u64 * TOP_PAGES, 0);
    kexpect!(t, m.stats.transport_errors.load(Relaxed) > errs);
    kexpect_eq!(t, m.stats.isolated_pages.load(Relaxed), 0);
    for &pfn in &pfns2[..n2] {
        let st = sys::page_state(pfn);
        kexpect!(
            t,
            st.buddy && !st.reported,
            "pfn {:#x} after a failed call: buddy {} reported {}",
            pfn,
            st.buddy,
            st.reported
        );
    }
    d.fail.store(0, Relaxed);

    // Unregistering detaches: nothing is attached, and the device's order
    // no longer raises the mechanism's.
    drop(dev);
    kexpect!(t, engine::attached_order().is_none(), "still attached");
    kexpect_eq!(t, m.cfg.transport_order.load(Relaxed), 0);
    drop(kept);
    drop(kept2);
    m.cfg.threshold_pages.store(saved.0, Relaxed);
    m.cfg.flush_ms.store(saved.1, Relaxed);
}

kunit_suite!(
    page_hinting_engine,
    "page_hinting_engine",
    [engine_reports_through_device]
);
