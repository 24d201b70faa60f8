// SPDX-License-Identifier: GPL-2.0

//! The mechanism: capture in the free path, hand-off, the reporting worker.
//! It knows transports only as [`Transport`]s registered with it, the way
//! `mm/page_reporting.c` knows a `page_reporting_dev_info`.
//!
//! # Capture ([`capture`])
//!
//! The free page hint hook calls [`FreeHook::freed`] for every freed block.
//! It pushes `(pfn, order)` into this CPU's active capture buffer under this
//! CPU's own lock with interrupts off (the only critical section in the
//! free path: no allocation, no global lock), and queues the batch work
//! when the buffer is full or holds `threshold` pages. The first entry of
//! an empty buffer arms the idle flush, which hands every CPU's entries to
//! the worker after `flush_ms`.
//!
//! # Hand-off (double buffering)
//!
//! Each CPU has two buffers. The worker swaps them under the lock (O(1))
//! and processes the full one without the lock while the free path fills
//! the other. If the free path fills its buffer while the other is still
//! being processed, further frees are turned away and counted, and the
//! span they cover is scanned later: the free path never waits, and
//! nothing freed is lost.
//!
//! # Worker ([`worker`])
//!
//! Work items run on an ordered workqueue, one at a time. A batch is sorted,
//! merged into ranges, cut to whole aligned `min_order` blocks (core), and
//! each range is scanned by the kernel's `free_page_hint_isolate()`, which
//! takes the blocks that are still free, not reported and of `min_order` or
//! more off the free lists under the zone lock, into an [`Isolated`]. Its
//! blocks go to the transport as [`Report`]s; afterwards they go back to
//! the free lists, marked reported if the host has them. At most
//! `max_isolated` pages are held at once.
//!
//! # Retry
//!
//! A freed block reaches the buddy free lists only after a stay on the page
//! allocator's per-CPU lists. A scan that finds free pages still there puts
//! the range on the worker's retry list (core [`crate::retry`]); a delayed
//! round drains the per-CPU lists (`free_page_hint_drain()`, zone by zone,
//! never skipped) and scans the list again: 200 ms after the free, then
//! 1 s and 5 s later for what is still not on the free lists. Free pages
//! in a pageblock isolated by memory offlining or a contiguous allocation
//! are counted and let go: the kernel tells the free path about the
//! pageblock again when the isolation is undone (see `ScanCounts::wait`).
//!
//! # Locks
//!
//! Outermost first: `knob_lock` (sysfs writers), the `worker` mutex, a
//! CPU's capture lock (interrupts off; never held while sleeping, never
//! around another lock). The zone locks of the C isolation code nest inside
//! the worker mutex.
//!
//! [`Isolated`]: crate::kernel_ext::free_page_hint::Isolated

#![forbid(unsafe_code)]

#[cfg(ph_audit)]
pub(crate) mod audit;
mod capture;
mod worker;

pub(crate) use capture::CpuTotals;
#[cfg(ph_tests)]
pub(crate) use worker::{process_entries, retry_round, settle_tick};

use crate::kernel_ext::{
    cpu::{CpuDeadHook, PerCpu},
    free_page_hint::{BlockStore, HookRegistration, Report, MAX_PAGE_ORDER},
    mm,
    workqueue::{WorkHandler, Worked, Workqueue},
};
use crate::ranges::PfnRange;
use crate::retry::{Freeing, Retry};
use crate::settle::Settle;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str,
    error::code,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

// The core's largest order must be the kernel's: a block of a larger order
// would have no entry (and could not be reported), and a `min_order` knob
// above the kernel's largest order would make scans that never advance.
const _: () = assert!(crate::capture::MAX_PAGE_ORDER == MAX_PAGE_ORDER);

/// Entries in each capture buffer (two per CPU, 8 KiB each).
pub(crate) const CAPTURE_ENTRIES: usize = 1024;
/// Ranges on the retry list (16 bytes each, plus a byte).
pub(crate) const RETRY_RANGES: usize = 256;
/// Ranges in each generation of small freed blocks waiting to settle (16
/// bytes each).
pub(crate) const SETTLE_RANGES: usize = 1024;
/// Ranges this close (pages) share a retry entry: scattered frees become
/// one entry, and a rescan of the pages between costs little.
pub(crate) const RETRY_GAP: u64 = 512;

/// The work item that processes the CPUs' batches.
pub(crate) const WORK_BATCHES: usize = 0;
/// The idle flush.
pub(crate) const WORK_FLUSH: usize = 1;
/// The retry round.
pub(crate) const WORK_RETRY: usize = 2;
/// The settle tick (core [`crate::settle`]).
pub(crate) const WORK_SETTLE: usize = 3;
/// Work items of the mechanism.
pub(crate) const WORKS: usize = 4;

/// The running mechanism: the [`Engine`] and its work items, in an [`Arc`]
/// shared by the hook, the work items, sysfs and the transports'
/// registrations.
pub(crate) type Mechanism = Worked<Engine, WORKS>;

/// How a report failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportError {
    /// The host did not take it; its pages go back unmarked.
    Failed(Error),
    /// The device went away without confirming it stopped using the pages:
    /// they must never be reused, and stay isolated for good.
    Lost,
}

/// What a transport does: tells the host about the pages of a [`Report`],
/// which stay isolated while it runs.
pub(crate) trait Transport: Send + Sync {
    /// Most entries in one report (at most
    /// [`crate::kernel_ext::free_page_hint::REPORT_MAX`]).
    fn max_entries(&self) -> usize;
    /// Most bytes in one entry. The worker rounds it down to whole
    /// `2^min_order`-page pieces and splits longer ranges there, so no
    /// entry ends inside a block of the reporting order.
    fn max_entry_bytes(&self) -> u64;
    /// Sends one report and waits for the host. `Ok`: the host has the
    /// pages (they go back marked reported).
    /// Calls are serialised (the worker mutex).
    fn report(&self, report: &Report<'_>) -> core::result::Result<(), ReportError>;
    /// The smallest order the host takes (a device's reporting order);
    /// it raises `min_order` while the transport is registered.
    fn min_order(&self) -> u32 {
        0
    }
}

/// The knobs. Each is one atomic, so a reader never sees a torn value.
pub(crate) struct Config {
    /// The threshold as set, in KiB.
    pub(crate) threshold_kb: AtomicU64,
    /// Pending pages on a CPU that wake the worker (`threshold_kb` in
    /// pages, rounded up).
    pub(crate) threshold_pages: AtomicU64,
    /// Smallest block order reported.
    pub(crate) min_order: AtomicU32,
    /// Capture and reporting on (true) or paused (false).
    pub(crate) enabled: AtomicBool,
    /// Idle flush delay in ms; 0 disables it.
    pub(crate) flush_ms: AtomicU32,
    /// Milliseconds a batch waits before the worker looks at it.
    pub(crate) delay_ms: AtomicU32,
    /// Blocks smaller than a pageblock are reported once they stayed free
    /// between one and two of these intervals (ms); 0: at once.
    pub(crate) settle_ms: AtomicU32,
    /// Most pages held isolated at once (with host pages above the largest
    /// buddy block: at least one host page, see [`Engine::budget`]).
    pub(crate) max_isolated: AtomicU64,
    /// The host page size as set, in KiB.
    pub(crate) host_page_kb: AtomicU64,
    /// The order of a host page in guest pages (`host_page_kb`), 0 for
    /// host pages no larger than a guest page.
    pub(crate) host_order: AtomicU32,
    /// The smallest order the registered transport takes
    /// ([`Transport::min_order`]), 0 with none.
    pub(crate) transport_order: AtomicU32,
}

/// Counters bumped by the worker (process context), each named as its file
/// in `/sys/kernel/mm/page_hinting/stats/`; the free path's counters are
/// per CPU ([`CpuTotals`]).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) reports: AtomicU64,
    pub(crate) reported_ranges: AtomicU64,
    pub(crate) reported_pages: AtomicU64,
    pub(crate) skipped_busy_pages: AtomicU64,
    pub(crate) unlisted_pages: AtomicU64,
    pub(crate) skipped_isolated_pages: AtomicU64,
    pub(crate) retry_rounds: AtomicU64,
    /// Settle ticks, and the pages they scanned and left for later
    /// because they were freed again.
    pub(crate) settle_ticks: AtomicU64,
    pub(crate) settle_scanned_pages: AtomicU64,
    pub(crate) settle_refreed_pages: AtomicU64,
    pub(crate) retry_dropped_pages: AtomicU64,
    pub(crate) retry_given_up_pages: AtomicU64,
    pub(crate) pcp_drains: AtomicU64,
    pub(crate) overflow_spans: AtomicU64,
    pub(crate) no_transport_pages: AtomicU64,
    pub(crate) skipped_reported_pages: AtomicU64,
    pub(crate) skipped_small_pages: AtomicU64,
    pub(crate) skipped_low_pages: AtomicU64,
    pub(crate) disabled_dropped_pages: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    pub(crate) isolated_pages: AtomicU64,
    pub(crate) isolated_peak_pages: AtomicU64,
    pub(crate) isolated_total_pages: AtomicU64,
    /// Shown in µs (`last_report_latency_us`).
    pub(crate) last_report_latency_ns: AtomicU64,
    /// Shown in µs (`worker_busy_us`).
    pub(crate) worker_busy_ns: AtomicU64,
    /// Shown in µs (`worker_cpu_us`).
    pub(crate) worker_cpu_ns: AtomicU64,
    pub(crate) hotplug_handoffs: AtomicU64,
    /// The longest call into isolation or put-back, each of which holds a
    /// zone's lock with interrupts off for nearly all its time.
    pub(crate) zone_lock_max_ns: AtomicU64,
    /// The longest the free hook ran with interrupts off (its capture
    /// lock and the push; it queues the worker afterwards), in
    /// [`mm::Stamp`] ticks; shown in ns (`free_irqoff_max_ns`).
    pub(crate) free_irqoff_max_ticks: AtomicU64,
    /// Host pages above the largest buddy block reported whole.
    pub(crate) host_pages_reported: AtomicU64,
    /// Looks at such a host page that found part of it in use.
    pub(crate) host_pages_busy: AtomicU64,
    /// Such host pages taken whole with their last pages migrated away
    /// (`alloc_contig_range()`) so they could be reported.
    pub(crate) host_pages_consolidated: AtomicU64,
}

/// What the worker needs exclusively: room for the blocks it isolates, the
/// retry list and the transport.
pub(crate) struct Worker {
    store: KBox<BlockStore>,
    retry: KBox<Retry<RETRY_RANGES>>,
    /// Small freed blocks waiting to settle (`settle_ms`).
    settle: KBox<Settle<SETTLE_RANGES>>,
    /// When the armed retry round runs (ktime ns), 0 if none is armed.
    retry_due_ns: u64,
    /// When a retry round last drained the per-CPU lists (ktime ms).
    last_drain_ms: Option<u64>,
    /// The current stretch of batches (ktime ms): while it is sustained,
    /// drains are spaced further (see [`crate::retry::drain_due`]).
    freeing: Freeing,
    /// The hull of the spans of frees the capture buffers turned away since
    /// the last retry round, which scans it once.
    overflow_span: PfnRange,
    /// Where reports go; with none, the worker neither isolates nor drains.
    registered: Option<Arc<dyn Transport>>,
    /// Host pages (above the largest buddy block) looked at lately.
    recent: worker::Recent,
    /// The test build's stand-in for `registered` while a test records.
    #[cfg(ph_tests)]
    test: Option<Arc<dyn Transport>>,
}

impl Worker {
    /// The transport reports go to, if any.
    fn transport(&self) -> Option<Arc<dyn Transport>> {
        #[cfg(ph_tests)]
        if let Some(t) = &self.test {
            return Some(t.clone());
        }
        self.registered.clone()
    }
}

/// Everything the mechanism owns besides its work items.
#[pin_data]
pub(crate) struct Engine {
    pub(crate) cfg: Config,
    pub(crate) stats: Stats,
    cpus: PerCpu<capture::CpuCapture>,
    /// The worker's state; taken after `knob_lock`, before a CPU's
    /// capture lock.
    #[pin]
    worker: Mutex<Worker>,
    /// Serialises knob writers, so that a knob made of two values
    /// (`threshold_kb`) is never left torn. Taken before `worker`.
    #[pin]
    pub(crate) knob_lock: Mutex<()>,
}

/// Initial knob values.
pub(crate) struct Params {
    pub(crate) threshold_kb: u64,
    pub(crate) min_order: u32,
    pub(crate) enabled: bool,
    pub(crate) flush_ms: u32,
    pub(crate) delay_ms: u32,
    pub(crate) settle_ms: u32,
    pub(crate) host_page_kb: u64,
}

/// A transport registered with the mechanism: the worker reports through it
/// until this is dropped, which waits for a report in flight (under the
/// worker mutex) and drops the transport.
pub(crate) struct Registration {
    mech: Arc<Mechanism>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut w = self.mech.worker.lock();
        let t = w.registered.take();
        self.mech.cfg.transport_order.store(0, Relaxed);
        drop(w);
        drop(t);
    }
}

/// Registers `t`: the worker reports through it from now on. `EBUSY` if a
/// transport is registered already.
pub(crate) fn register(mech: &Arc<Mechanism>, t: Arc<dyn Transport>) -> Result<Registration> {
    let mut w = mech.worker.lock();
    if w.registered.is_some() {
        return Err(EBUSY);
    }
    mech.cfg.transport_order.store(t.min_order(), Relaxed);
    w.registered = Some(t);
    drop(w);
    Ok(Registration { mech: mech.clone() })
}

/// The running mechanism, owned by the module; dropping it stops everything
/// and gives back every page it holds.
pub(crate) struct Hinting {
    mech: Arc<Mechanism>,
    hook: Option<HookRegistration<Mechanism>>,
    hotplug: Option<CpuDeadHook<Mechanism>>,
}

impl Hinting {
    /// Sets up the per-CPU state and the worker, then attaches the hook.
    pub(crate) fn new(p: &Params) -> Result<Self> {
        let ram = mm::totalram_pages();
        // Hold at most 1/64 of RAM, between 4 MiB and 64 MiB: enough for
        // large reports, never enough to push the guest towards OOM.
        let max_isolated = (ram / 64).clamp(1 << 10, 1 << 14);
        let worker = Worker {
            store: BlockStore::new()?,
            retry: mm::zeroed_box()?,
            settle: mm::zeroed_box()?,
            retry_due_ns: 0,
            last_drain_ms: None,
            freeing: Freeing::new(),
            overflow_span: PfnRange::default(),
            registered: None,
            recent: worker::Recent::default(),
            #[cfg(ph_tests)]
            test: None,
        };
        let cpus = PerCpu::new(|_| capture::new_cpu())?;
        let wq = Workqueue::new_ordered_freezable(c_str!("page_hinting"))?;
        let engine = try_pin_init!(Engine {
            cfg: Config {
                threshold_kb: AtomicU64::new(p.threshold_kb),
                threshold_pages: AtomicU64::new(crate::knobs::threshold_pages(
                    p.threshold_kb,
                    kernel::page::PAGE_SIZE as u64,
                )),
                min_order: AtomicU32::new(p.min_order),
                enabled: AtomicBool::new(p.enabled),
                flush_ms: AtomicU32::new(p.flush_ms),
                delay_ms: AtomicU32::new(p.delay_ms),
                settle_ms: AtomicU32::new(p.settle_ms),
                max_isolated: AtomicU64::new(max_isolated),
                host_page_kb: AtomicU64::new(p.host_page_kb),
                host_order: AtomicU32::new(host_order(p.host_page_kb)),
                transport_order: AtomicU32::new(0),
            },
            stats: Stats::default(),
            cpus,
            worker <- new_mutex!(worker),
            knob_lock <- new_mutex!(()),
        }? Error);
        let mech = Arc::pin_init(Worked::new(wq, engine), GFP_KERNEL)?;
        let mut h = Hinting {
            mech,
            hook: None,
            hotplug: None,
        };
        h.hotplug = Some(CpuDeadHook::new(
            c_str!("mm/page_hinting:dead"),
            h.mech.clone(),
        )?);
        h.hook = Some(HookRegistration::new(h.mech.clone()).inspect_err(|e| {
            // One line that says why (the hook's errors,
            // mm/free_page_hint.c; an architecture with its own
            // arch_free_page() has no CONFIG_FREE_PAGE_HINT to build on).
            if *e == code::EBUSY {
                pr_err!("another free page hinting module is registered; not loading\n");
            } else {
                pr_err!(
                    "free page hint hook not registered ({:?}); not loading\n",
                    e
                );
            }
        })?);
        Ok(h)
    }

    /// The mechanism, for sysfs and the transports.
    pub(crate) fn mechanism(&self) -> &Arc<Mechanism> {
        &self.mech
    }
}

impl Drop for Hinting {
    fn drop(&mut self) {
        // 1. No new captures: when this returns no CPU is in the hook.
        self.hook = None;
        // 2. No more hotplug callbacks, which queue work: removing the
        //    state waits for a running one.
        self.hotplug = None;
        // 3. No more work: a running item finishes its batch, which gives
        //    back every page it isolated, and no item can be queued again.
        Mechanism::disable(self.mech.as_arc_borrow());
        let t = self.mech.cpu_totals();
        let st = &self.mech.stats;
        pr_info!(
            "unloading: {} batches, {} pages isolated, {} reported, {} transport errors, {} captured pages dropped; {} retry rounds, {} drains; skipped pages: {} on per-cpu lists, {} busy, {} reported, {} small, {} low\n",
            st.batches.load(Relaxed),
            st.isolated_total_pages.load(Relaxed),
            st.reported_pages.load(Relaxed),
            st.transport_errors.load(Relaxed),
            t.pending_pages,
            st.retry_rounds.load(Relaxed),
            st.pcp_drains.load(Relaxed),
            st.unlisted_pages.load(Relaxed),
            st.skipped_busy_pages.load(Relaxed),
            st.skipped_reported_pages.load(Relaxed),
            st.skipped_small_pages.load(Relaxed),
            st.skipped_low_pages.load(Relaxed)
        );
        let held = st.isolated_pages.load(Relaxed);
        if held != 0 {
            pr_err!("{} pages still isolated at unload\n", held);
        }
        // 4. Whatever is still captured was never isolated: it goes with
        //    the per-CPU memory when the last reference to the mechanism
        //    (a transport's registration, sysfs, or this one) goes.
    }
}

impl WorkHandler<WORKS> for Engine {
    fn run(this: ArcBorrow<'_, Mechanism>, id: usize) {
        match id {
            WORK_BATCHES => worker::run_batches(this),
            WORK_FLUSH => worker::flush_idle(this),
            WORK_RETRY => worker::retry_round(this),
            WORK_SETTLE => worker::settle_tick(this),
            _ => {}
        }
    }
}

impl Engine {
    /// The order blocks are reported at: the `min_order` knob, raised to a
    /// host page (`host_page_kb`) and to the transport's order, clamped to
    /// the largest buddy block (a scan with a bad order would not advance).
    fn min_order(&self) -> u32 {
        let o = self.cfg.min_order.load(Relaxed);
        o.max(self.cfg.host_order.load(Relaxed))
            .max(self.cfg.transport_order.load(Relaxed))
            .min(MAX_PAGE_ORDER)
    }

    /// `settle_ms` while small blocks settle: set, and the reporting order
    /// below the pageblock order (with host pages above the largest buddy
    /// block, the worker looks at whole host pages instead).
    fn settling_ms(&self) -> Option<u32> {
        let ms = self.cfg.settle_ms.load(Relaxed);
        (ms != 0 && self.min_order() < mm::pageblock_order() && self.granule_order().is_none())
            .then_some(ms)
    }

    /// The order of a host page when it is larger than the largest buddy
    /// block (the worker then reports whole host pages only), else `None`.
    fn granule_order(&self) -> Option<u32> {
        let o = self.cfg.host_order.load(Relaxed);
        (o > MAX_PAGE_ORDER).then_some(o)
    }
}

/// The order of a host page of `kb` KiB in guest pages.
pub(crate) fn host_order(kb: u64) -> u32 {
    crate::knobs::host_page_order(kb, kernel::page::PAGE_SIZE as u64)
}

/// Why a host page size was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostPageError {
    /// The kernel cannot take a range larger than a buddy block
    /// (no CONFIG_CONTIG_ALLOC).
    NoContigAlloc,
    /// The guest has less than 1.5 host pages of RAM: holding one while it
    /// is reported would leave too little.
    TooLarge {
        /// Guest RAM, in KiB.
        ram_kb: u64,
    },
}

impl core::fmt::Display for HostPageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostPageError::NoContigAlloc => f.write_str(
                "a host page larger than the largest buddy block needs a kernel with CONFIG_CONTIG_ALLOC (CONFIG_CMA or memory hotplug)",
            ),
            HostPageError::TooLarge { ram_kb } => write!(
                f,
                "the guest's {} KiB of RAM is less than 1.5 host pages",
                ram_kb
            ),
        }
    }
}

/// Checks that the worker can report host pages of `kb` KiB in this guest.
pub(crate) fn check_host_page_kb(kb: u64) -> core::result::Result<(), HostPageError> {
    if host_order(kb) <= MAX_PAGE_ORDER {
        return Ok(());
    }
    if !cfg!(CONFIG_CONTIG_ALLOC) {
        return Err(HostPageError::NoContigAlloc);
    }
    let ram_kb = mm::totalram_pages().saturating_mul(kernel::page::PAGE_SIZE as u64 / 1024);
    if ram_kb.saturating_mul(2) < kb.saturating_mul(3) {
        return Err(HostPageError::TooLarge { ram_kb });
    }
    Ok(())
}

/// Arms the idle flush for `flush_ms` from now (after the knob changed), so
/// that what the CPUs hold now is flushed too, and a flush armed with the
/// old, longer interval comes sooner.
pub(crate) fn arm_flush(mech: ArcBorrow<'_, Mechanism>) {
    let ms = mech.cfg.flush_ms.load(Relaxed);
    if ms != 0 {
        Mechanism::queue_within(mech, WORK_FLUSH, ms);
    }
}

/// Queues the settle tick within `settle_ms` from now (after the knob
/// changed): a tick armed with a longer interval comes sooner.
pub(crate) fn arm_settle(mech: ArcBorrow<'_, Mechanism>) {
    Mechanism::queue_within(mech, WORK_SETTLE, mech.cfg.settle_ms.load(Relaxed));
}

/// Pauses or resumes hinting. Pausing drops what the CPUs captured and the
/// retry list (counted in `disabled_dropped_pages`) and returns when the
/// worker holds no page. Process context.
pub(crate) fn set_enabled(mech: ArcBorrow<'_, Mechanism>, on: bool) {
    let was = mech.cfg.enabled.swap(on, Relaxed);
    if was && !on {
        // Every batch is now dropped; wait for them, then drop the retry
        // list.
        flush_all(mech);
        worker::retry_round(mech);
        worker::settle_tick(mech);
        #[cfg(ph_audit)]
        audit::forget();
    }
}

/// The test build's hooks into the mechanism.
#[cfg(ph_tests)]
impl Engine {
    /// Reports go to `t` instead of the registered transport (`None`: back
    /// to the registered one).
    pub(crate) fn set_test_transport(&self, t: Option<Arc<dyn Transport>>) {
        let old = core::mem::replace(&mut self.worker.lock().test, t);
        drop(old);
    }

    /// Holds the worker mutex: no batch or retry round runs meanwhile.
    pub(crate) fn hold_worker(&self) -> impl Drop + '_ {
        self.worker.lock()
    }

    /// Forgets when the per-CPU lists were last drained: the next retry
    /// round drains them.
    pub(crate) fn forget_drain(&self) {
        self.worker.lock().last_drain_ms = None;
    }

    /// Makes it look as if the per-CPU lists were last drained `ago_ms`
    /// ago, and as if batches had come for `freeing_ms` until `quiet_ms`
    /// ago (`None`: no batch yet).
    pub(crate) fn fake_drain_clock(&self, ago_ms: u64, freeing: Option<(u64, u64)>) {
        let now = mm::ktime_ns() / 1_000_000;
        let mut w = self.worker.lock();
        w.last_drain_ms = Some(now.saturating_sub(ago_ms));
        w.freeing = Freeing::new();
        if let Some((freeing_ms, quiet_ms)) = freeing {
            let last = now.saturating_sub(quiet_ms);
            let mut t = last.saturating_sub(freeing_ms);
            w.freeing.batch(t);
            // Batches half a quiet time apart: one stretch.
            while t < last {
                t = (t + u64::from(crate::retry::QUIET_MS) / 2).min(last);
                w.freeing.batch(t);
            }
        }
    }

    /// Puts `r` on the retry list, as a batch that found pages of it on
    /// per-CPU lists does.
    pub(crate) fn push_retry(&self, r: PfnRange) {
        let mut w = self.worker.lock();
        self.retry_later(&mut w.retry, r);
    }

    /// Empties the retry list without a look (what giving its ranges up
    /// before a drain did, issue 38), for the audit's test, and for a test
    /// that must start with no range of an earlier test on the list.
    pub(crate) fn drop_retry_list(&self) -> u64 {
        self.worker.lock().retry.clear()
    }
}

/// Takes every CPU's hints down (`delay_ms` was set: frees must store
/// their time).
pub(crate) fn unhint_all(mech: ArcBorrow<'_, Mechanism>) {
    capture::unhint_all(&mech.cpus);
}

/// Hands every CPU's entries to the worker and waits until it processed
/// them.
pub(crate) fn flush_all(mech: ArcBorrow<'_, Mechanism>) {
    for (_, cpu) in mech.cpus.iter() {
        capture::mark(cpu);
    }
    // Now, also when the item waits for a delayed batch to come due.
    Mechanism::queue_within(mech, WORK_BATCHES, 0);
    mech.flush_queue();
}
