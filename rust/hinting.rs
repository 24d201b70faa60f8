// SPDX-License-Identifier: GPL-2.0

//! The mechanism: capture in the free path, hand-off, the reporting worker.
//!
//! # Capture
//!
//! The free page hint hook calls [`free_hook`] for every freed block. It
//! pushes `(pfn, order)` into this CPU's active capture buffer under this
//! CPU's own lock with interrupts off (the only critical section in the
//! free path: no allocation, no global lock), and queues this CPU's work
//! item when the buffer is full or holds `threshold` pages. The first entry
//! of an empty buffer arms the idle flush, which queues the work of every
//! CPU with entries after `flush_ms`.
//!
//! # Hand-off (double buffering)
//!
//! Each CPU has two buffers. The work item swaps them under the lock (O(1):
//! an index flips) and processes the full one without the lock while the
//! free path fills the other. If the free path fills its buffer while the
//! other is still being processed, further frees are dropped and counted:
//! the free path never waits.
//!
//! # Worker
//!
//! Work items run on an ordered workqueue, one at a time. A batch is sorted,
//! merged into ranges, cut to whole aligned `min_order` blocks (core), and
//! each range is scanned by the kernel's `free_page_hint_isolate()`, which
//! takes the blocks that are still free, not reported and of `min_order` or
//! more off the free lists under the zone lock. Taken blocks go to the
//! transport in reports; afterwards they go back to the free lists, marked
//! reported if the host has them. At most `max_isolated` pages are held at
//! once.
//!
//! # Retry
//!
//! A freed block reaches the buddy free lists only after a stay on the page
//! allocator's per-CPU lists. A scan that finds free pages still there puts
//! the range on the worker's retry list (core [`crate::retry`]); a delayed
//! round drains the per-CPU lists (`drain_all_pages()`) and scans the list
//! again: 200 ms after the free, then 1 s and 5 s later for what is still
//! not on the free lists.

use crate::batch::{Batcher, Limits};
use crate::capture::{CaptureBuf, Entry, Push};
use crate::ranges::{cut, merge, sort, PfnRange};
use crate::retry::Retry;
use crate::sys::{
    self, Block, CpuHotplug, DelayedWork, HintHook, HintOps, IrqOff, PerCpu, RawWork, Scan,
    ScanCounts, Section, Workqueue, Zeroed,
};
use crate::transport::{AnyTransport, NullTransport, REPORT_MAX};
use core::{
    mem::offset_of,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*},
};
use kernel::ffi::{c_int, c_uint, c_ulong};
use kernel::{bindings, c_str, error::code, new_mutex, prelude::*, sync::Mutex};

// The core's largest order must be the kernel's: a block of a larger order
// would have no entry (and could not be reported), and a `min_order` knob
// above the kernel's largest order would make scans that never advance.
const _: () = assert!(crate::capture::MAX_PAGE_ORDER == bindings::MAX_PAGE_ORDER);

/// Test builds only: a pause point in the worker and a scan filter, for the
/// memory hotplug scenario (module parameters `test_pause_scan` and
/// `test_scan_from_pfn`).
#[cfg(CONFIG_KUNIT)]
pub(crate) mod test_hooks {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

    /// Pause before an isolation while blocks are held.
    pub(crate) static PAUSE_SCAN: AtomicBool = AtomicBool::new(false);
    /// Scan only pfns from here on.
    pub(crate) static SCAN_FROM: AtomicU64 = AtomicU64::new(0);

    /// Waits while `PAUSE_SCAN` is set, if the worker holds `pages` pages.
    pub(crate) fn before_isolate(pages: u64) {
        if pages == 0 || !PAUSE_SCAN.load(Relaxed) {
            return;
        }
        pr_info!("test: worker paused holding {} isolated pages\n", pages);
        while PAUSE_SCAN.load(Relaxed) {
            crate::sys::msleep(5);
        }
        pr_info!("test: worker goes on\n");
    }

    /// The part of `r` at or above `SCAN_FROM`.
    pub(crate) fn filter(r: crate::ranges::PfnRange) -> crate::ranges::PfnRange {
        let from = SCAN_FROM.load(Relaxed);
        crate::ranges::PfnRange::new(r.start.max(from), r.end.max(from))
    }
    use kernel::prelude::*;
}

/// Entries in each capture buffer (two per CPU, 8 KiB each).
pub(crate) const CAPTURE_ENTRIES: usize = 1024;
/// Blocks the worker isolates before it reports them.
pub(crate) const BLOCKS: usize = 256;
/// Ranges on the retry list (16 bytes each, plus a byte).
pub(crate) const RETRY_RANGES: usize = 256;
/// Ranges this close (pages) share a retry entry: scattered frees become
/// one entry, and a rescan of the pages between costs little.
pub(crate) const RETRY_GAP: u64 = 512;

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
    /// Most pages held isolated at once.
    pub(crate) max_isolated: AtomicU64,
}

/// Counters bumped by the worker (process context); the free path's
/// counters are per CPU, in [`Cpu`].
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) reports: AtomicU64,
    pub(crate) ranges_reported: AtomicU64,
    pub(crate) pages_reported: AtomicU64,
    pub(crate) skipped_busy: AtomicU64,
    pub(crate) unlisted: AtomicU64,
    pub(crate) retry_rounds: AtomicU64,
    pub(crate) retry_dropped: AtomicU64,
    pub(crate) retry_given_up: AtomicU64,
    pub(crate) drains: AtomicU64,
    pub(crate) spill_ranges: AtomicU64,
    pub(crate) no_transport: AtomicU64,
    pub(crate) skipped_reported: AtomicU64,
    pub(crate) skipped_small: AtomicU64,
    pub(crate) skipped_low: AtomicU64,
    pub(crate) dropped_disabled: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    pub(crate) isolated_now: AtomicU64,
    pub(crate) isolated_peak: AtomicU64,
    pub(crate) pages_isolated: AtomicU64,
    pub(crate) last_latency_ns: AtomicU64,
    pub(crate) hotplug_handoffs: AtomicU64,
    pub(crate) worker_busy_ns: AtomicU64,
}

/// Adds the time from its creation to its drop to a counter: the worker's
/// busy time, while it holds the worker lock.
struct BusyTimer<'a> {
    counter: &'a AtomicU64,
    start: u64,
}

impl<'a> BusyTimer<'a> {
    fn start(counter: &'a AtomicU64) -> Self {
        BusyTimer {
            counter,
            start: sys::ktime_ns(),
        }
    }
}

impl Drop for BusyTimer<'_> {
    fn drop(&mut self) {
        let ns = sys::ktime_ns().saturating_sub(self.start);
        self.counter.fetch_add(ns, Relaxed);
    }
}

/// The part of a CPU's capture state that its lock protects (with the
/// active buffer).
#[derive(Default)]
struct Locked {
    /// The work item was queued since the last swap.
    kicked: bool,
    /// When the newest entry of the active buffer was captured (ns of
    /// [`sys::mono_fast_ns`]), kept only while `delay_ms` is set.
    newest_ns: u64,
    captured_pages: u64,
    captured_blocks: u64,
    overflow_entries: u64,
    overflow_pages: u64,
}

// SAFETY: all-zero is a false flag and zero counters.
unsafe impl Zeroed for Locked {}

/// One CPU's capture state: two buffers, the lock, the work item.
pub(crate) struct Cpu {
    db: sys::DoubleBuf<Locked, CAPTURE_ENTRIES>,
    work: RawWork,
    cpu: AtomicU32,
}

// SAFETY: every field is zero-valid (see their `Zeroed` impls); the lock
// and work item are initialised before use in `Shared::new`.
unsafe impl Zeroed for Cpu {}

/// Per-CPU counters summed over all CPUs.
#[derive(Default, Clone, Copy)]
pub(crate) struct CpuTotals {
    pub(crate) captured_pages: u64,
    pub(crate) captured_blocks: u64,
    pub(crate) overflow_entries: u64,
    pub(crate) overflow_pages: u64,
    pub(crate) pending_pages: u64,
}

/// The blocks the worker holds isolated, and scratch space to report them.
struct Held {
    blocks: [Block; BLOCKS],
    entries: [Entry; BLOCKS],
    /// INVARIANT: `blocks[..nblocks]` are isolated, owned by the worker,
    /// and hold `pages` pages; `entries[..nblocks]` mirror them.
    nblocks: usize,
    pages: u64,
    report: [PfnRange; REPORT_MAX],
}

// SAFETY: arrays of zero-valid blocks, entries and ranges, and zero counts
// (no block held, which keeps the invariant).
unsafe impl Zeroed for Held {}

/// What the worker needs exclusively: the blocks it holds, the retry list
/// and the transport.
pub(crate) struct Worker {
    held: KBox<Held>,
    retry: KBox<Retry<RETRY_RANGES>>,
    /// When the armed retry round runs (ktime ns), 0 if none is armed.
    retry_due_ns: u64,
    /// The hull of the spans of frees the capture buffers turned away since
    /// the last retry round, which scans it once.
    spill: PfnRange,
    pub(crate) transport: AnyTransport,
}

/// Everything the module's mechanism owns.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) stats: Stats,
    cpus: PerCpu<Cpu>,
    wq: Workqueue,
    #[pin]
    pub(crate) worker: Mutex<KBox<Worker>>,
    /// Serialises knob writers, so that a knob made of two values
    /// (`threshold_kb`) is never left torn.
    #[pin]
    pub(crate) knob_lock: Mutex<()>,
}

/// The running mechanism, for the hook and the work items. Published in
/// `Hinting::new` and cleared in `Hinting::drop` after the hook was detached
/// (no CPU in the callback) and every work item and the flush were cancelled.
static SHARED: sys::Published<Shared> = sys::Published::new();
static FLUSH: DelayedWork = DelayedWork::new();
static RETRY: DelayedWork = DelayedWork::new();
static HOOK_OPS: HintOps = HintOps::new(free_hook);

/// The running mechanism, if the module is set up.
pub(crate) fn shared() -> Option<&'static Shared> {
    SHARED.get()
}

/// Initial knob values.
pub(crate) struct Params {
    pub(crate) threshold_kb: u64,
    pub(crate) min_order: u32,
    pub(crate) enabled: bool,
    pub(crate) flush_ms: u32,
    pub(crate) delay_ms: u32,
}

/// The running mechanism; dropping it stops everything and gives back every
/// page it holds.
pub(crate) struct Hinting {
    shared: Pin<KBox<Shared>>,
    hook: Option<HintHook>,
    hotplug: Option<CpuHotplug>,
}

impl Hinting {
    /// Sets up the per-CPU state and the worker, then attaches the hook.
    pub(crate) fn new(p: &Params) -> Result<Self> {
        let ram = sys::totalram_pages();
        // Hold at most 1/64 of RAM, between 4 MiB and 64 MiB: enough for
        // large reports, never enough to push the guest towards OOM.
        let max_isolated = (ram / 64).clamp(1 << 10, 1 << 14);
        // The scratch arrays are built in place: the kernel stack has no
        // room for them.
        let worker = KBox::new(
            Worker {
                held: sys::zeroed_box()?,
                retry: sys::zeroed_box()?,
                retry_due_ns: 0,
                spill: PfnRange::default(),
                transport: AnyTransport::Null(NullTransport),
            },
            GFP_KERNEL,
        )?;
        let cpus = PerCpu::new()?;
        let wq = Workqueue::new_ordered(c_str!("page_hinting"))?;
        let shared = KBox::pin_init(
            pin_init!(Shared {
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
                    max_isolated: AtomicU64::new(max_isolated),
                },
                stats: Stats::default(),
                cpus,
                wq,
                worker <- new_mutex!(worker),
                knob_lock <- new_mutex!(()),
            }),
            GFP_KERNEL,
        )?;
        static LOCK_KEY: sys::LockKey = sys::LockKey::new();
        static WORK_KEY: sys::LockKey = sys::LockKey::new();
        let (lock_key, work_key) = (&LOCK_KEY, &WORK_KEY);
        for cpu in 0..sys::nr_cpu_ids() {
            let c = shared.cpus.get(cpu);
            c.db.init(c_str!("page_hinting_cpu"), lock_key);
            c.work.init(cpu_work, c_str!("page_hinting_work"), work_key);
            c.cpu.store(cpu, Relaxed);
        }
        FLUSH.init(flush_work);
        RETRY.init(retry_work);
        let mut h = Hinting {
            shared,
            hook: None,
            hotplug: None,
        };
        // SAFETY: `h.shared` is pinned in a box that lives until `drop`,
        // which clears the pointer only after the hook, the flush and every
        // work item (the only users) have stopped.
        unsafe { SHARED.publish(&h.shared) };
        h.hotplug = Some(CpuHotplug::new_dead(
            c_str!("mm/page_hinting:dead"),
            cpu_dead,
        )?);
        h.hook = Some(HintHook::register(&HOOK_OPS).inspect_err(|e| {
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
}

impl Hinting {
    /// Installs the transport the worker reports through.
    pub(crate) fn set_transport(&self, t: AnyTransport) {
        self.shared.worker.lock().transport = t;
    }
}

impl Drop for Hinting {
    fn drop(&mut self) {
        // 1. No new captures: when this returns no CPU is in the hook.
        self.hook = None;
        // 2. No more hotplug callbacks, which queue work: removing the
        //    state waits for a running one.
        self.hotplug = None;
        // 3. No more flushes or work: the flush may queue work, so it goes
        //    first; each work item finishes its batch, which gives back
        //    every page it isolated before it returns. Work items arm the
        //    retry round, so it goes last.
        FLUSH.cancel_sync();
        for cpu in 0..sys::nr_cpu_ids() {
            self.shared.cpus.get(cpu).work.cancel_sync();
        }
        RETRY.cancel_sync();
        SHARED.clear();
        // 4. Whatever is still captured was never isolated: drop it.
        let t = self.shared.cpu_totals();
        let st = &self.shared.stats;
        pr_info!(
            "unloading: {} batches, {} pages isolated, {} reported, {} transport errors, {} captured pages dropped; {} retry rounds, {} drains; skipped pages: {} on per-cpu lists, {} busy, {} reported, {} small, {} low\n",
            st.batches.load(Relaxed),
            st.pages_isolated.load(Relaxed),
            st.pages_reported.load(Relaxed),
            st.transport_errors.load(Relaxed),
            t.pending_pages,
            st.retry_rounds.load(Relaxed),
            st.drains.load(Relaxed),
            st.unlisted.load(Relaxed),
            st.skipped_busy.load(Relaxed),
            st.skipped_reported.load(Relaxed),
            st.skipped_small.load(Relaxed),
            st.skipped_low.load(Relaxed)
        );
        let held = self.shared.stats.isolated_now.load(Relaxed);
        if held != 0 {
            pr_err!("{} pages still isolated at unload\n", held);
        }
    }
}

/// The free page hint callback: runs in every context that frees pages.
extern "C" fn free_hook(pfn: c_ulong, order: c_uint) {
    let Some(sh) = shared() else { return };
    // Deliberately broken build (tools/check-teeth.sh): nothing is captured.
    if !sh.cfg.enabled.load(Relaxed) || cfg!(ph_break_capture) {
        return;
    }
    let Some(e) = Entry::new(pfn as u64, order) else {
        return;
    };
    let threshold = sh.cfg.threshold_pages.load(Relaxed);
    let stamp = if sh.cfg.delay_ms.load(Relaxed) != 0 {
        sys::mono_fast_ns()
    } else {
        0
    };
    let irq = IrqOff::new();
    let c = sh.cpus.this_cpu(&irq);
    let (push, was_empty, kick) = c.db.with_active(|l, buf| {
        let was_empty = buf.is_empty();
        let push = buf.push(e, threshold);
        match push {
            Push::Full => {
                l.overflow_entries += 1;
                l.overflow_pages += e.pages();
            }
            _ => {
                l.captured_pages += e.pages();
                l.captured_blocks += 1;
                l.newest_ns = stamp;
            }
        }
        // (A deliberately broken build never hands a batch off.)
        let kick = push != Push::Stored && !l.kicked && !cfg!(ph_break_kick);
        if kick {
            l.kicked = true;
        }
        (push, was_empty, kick)
    });
    if kick {
        c.work.queue(&sh.wq);
    }
    drop(irq);
    if was_empty && push != Push::Full {
        let ms = sh.cfg.flush_ms.load(Relaxed);
        if ms != 0 {
            FLUSH.queue(&sh.wq, ms);
        }
    }
}

/// The idle flush: queue the work of every CPU that holds entries.
extern "C" fn flush_work(_w: *mut bindings::work_struct) {
    let Some(sh) = shared() else { return };
    for cpu in 0..sys::nr_cpu_ids() {
        let c = sh.cpus.get(cpu);
        if c.db.with_active(|_, buf| !buf.is_empty()) {
            c.work.queue(&sh.wq);
        }
    }
}

/// The retry round (see the module documentation).
extern "C" fn retry_work(_w: *mut bindings::work_struct) {
    if let Some(sh) = shared() {
        sh.retry_round();
    }
}

/// CPU hotplug: a CPU went offline; process what it captured.
extern "C" fn cpu_dead(cpu: c_uint) -> c_int {
    if let Some(sh) = shared() {
        if cpu < sys::nr_cpu_ids() {
            let c = sh.cpus.get(cpu);
            // (A deliberately broken build leaves the buffer behind.)
            if c.db.with_active(|_, buf| !buf.is_empty()) && !cfg!(ph_break_hotplug) {
                sh.stats.hotplug_handoffs.fetch_add(1, Relaxed);
                c.work.queue(&sh.wq);
            }
        }
    }
    0
}

/// A CPU's work item: take its full buffer and process it, until the CPU
/// has nothing more.
///
/// # Safety
///
/// Only the workqueue calls it, with the `work` field of a live [`Cpu`].
unsafe extern "C" fn cpu_work(w: *mut bindings::work_struct) {
    // SAFETY: every work item queued with `cpu_work` is the `work` field of
    // a `Cpu` in the live per-CPU allocation (it is cancelled before that
    // is freed).
    let c: &Cpu = unsafe { RawWork::container(w, offset_of!(Cpu, work)) };
    let Some(sh) = shared() else { return };
    let mut newest = 0;
    while let Some(mut batch) = c.db.take(|l| {
        l.kicked = false;
        newest = core::mem::take(&mut l.newest_ns);
    }) {
        // Memory that the guest takes again within `delay_ms` of its free
        // is busy by the time the scan comes: only what stayed free is
        // reported, and the host is not made to fault in again what the
        // guest reuses at once. The worker waits until the batch's newest
        // entry is that old; new frees go to the other buffer meanwhile.
        let ms = u64::from(sh.cfg.delay_ms.load(Relaxed));
        let age_ms = sys::mono_fast_ns().saturating_sub(newest) / 1_000_000;
        if ms > age_ms {
            // At most `DELAY_MS_MAX`: fits.
            sys::msleep((ms - age_ms) as u32);
        }
        sh.process(batch.buf());
    }
}

impl Shared {
    /// Per-CPU counters, summed.
    pub(crate) fn cpu_totals(&self) -> CpuTotals {
        let mut t = CpuTotals::default();
        for cpu in 0..sys::nr_cpu_ids() {
            self.cpus.get(cpu).db.with_active(|l, buf| {
                t.captured_pages += l.captured_pages;
                t.captured_blocks += l.captured_blocks;
                t.overflow_entries += l.overflow_entries;
                t.overflow_pages += l.overflow_pages;
                t.pending_pages += buf.pending_pages();
            });
        }
        t
    }

    /// Arms the idle flush for `flush_ms` from now (after the knob
    /// changed), so that what the CPUs hold now is flushed too, and a flush
    /// armed with the old, longer interval comes sooner.
    pub(crate) fn arm_flush(&self) {
        let ms = self.cfg.flush_ms.load(Relaxed);
        if ms != 0 {
            FLUSH.modify(&self.wq, ms);
        }
    }

    /// Pauses or resumes hinting. Pausing drops what the CPUs captured and
    /// the retry list (counted in `dropped_disabled`) and returns when the
    /// worker holds no page. Process context.
    pub(crate) fn set_enabled(&self, on: bool) {
        let was = self.cfg.enabled.swap(on, Relaxed);
        if was && !on {
            // Every work item now drops its batch; wait for them, then
            // drop the retry list.
            for cpu in 0..sys::nr_cpu_ids() {
                self.cpus.get(cpu).work.queue(&self.wq);
            }
            self.wq.flush();
            self.retry_round();
        }
    }

    /// Wakes the work of every CPU holding entries and waits for all of it.
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn flush_all(&self) {
        // An idle flush armed before the caller changed the knobs would
        // otherwise hand batches to the worker behind its back.
        FLUSH.cancel_sync();
        for cpu in 0..sys::nr_cpu_ids() {
            self.cpus.get(cpu).work.queue(&self.wq);
        }
        for cpu in 0..sys::nr_cpu_ids() {
            self.cpus.get(cpu).work.flush();
        }
    }

    /// Waits for the work already queued (by the free path) to finish.
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn wait_queued(&self) {
        self.wq.flush();
    }

    /// Runs `f` on this CPU's active capture buffer (tests look at what the
    /// free path stored).
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn with_this_cpu_buf<R>(
        &self,
        f: impl FnOnce(&CaptureBuf<CAPTURE_ENTRIES>) -> R,
    ) -> R {
        let irq = IrqOff::new();
        self.cpus.this_cpu(&irq).db.with_active(|_, b| f(b))
    }

    /// Processes one batch (worker context). The span of the frees the
    /// buffer had to turn away goes on the retry list: nothing freed is
    /// lost because the worker fell behind.
    fn process(&self, buf: &mut CaptureBuf<CAPTURE_ENTRIES>) {
        let pending = buf.pending_pages();
        self.process_entries(buf.as_mut_slice(), pending);
        let spill = buf.spilled();
        // (A deliberately broken build forgets what was turned away.)
        if !spill.is_empty() && self.cfg.enabled.load(Relaxed) && !cfg!(ph_break_spill) {
            let mut guard = self.worker.lock();
            let w = &mut **guard;
            if !w.transport.sends() {
                return;
            }
            w.spill = w.spill.hull(spill);
            self.stats.spill_ranges.fetch_add(1, Relaxed);
            self.arm_retry(w);
        }
    }

    /// The `min_order` knob, clamped: a scan with a bad order would not
    /// advance.
    fn min_order(&self) -> u32 {
        self.cfg
            .min_order
            .load(Relaxed)
            .min(crate::capture::MAX_PAGE_ORDER)
    }

    /// Processes a batch of captured entries holding `pending` pages:
    /// sort, merge, cut, isolate, report, give back; ranges with pages
    /// still on per-CPU lists go on the retry list. Process context; the
    /// worker lock serialises callers.
    pub(crate) fn process_entries(&self, entries: &mut [Entry], pending: u64) {
        self.stats.batches.fetch_add(1, Relaxed);
        if !self.cfg.enabled.load(Relaxed) {
            self.stats.dropped_disabled.fetch_add(pending, Relaxed);
            return;
        }
        let min_order = self.min_order();
        let mut guard = self.worker.lock();
        let _busy = BusyTimer::start(&self.stats.worker_busy_ns);
        let w = &mut **guard;
        if !w.transport.sends() {
            self.stats.no_transport.fetch_add(pending, Relaxed);
            return;
        }
        sort(entries);
        // Every block isolated below goes back (`report`) before the section
        // ends.
        let section = Section::begin();
        for r in cut(merge(entries), min_order) {
            let k = self.scan_range(&section, &mut w.held, &mut w.transport, r, min_order);
            // (A deliberately broken build never looks again.)
            if k.unlisted != 0 && !cfg!(ph_break_retry) && !w.retry.push(r, RETRY_GAP) {
                self.stats.retry_dropped.fetch_add(r.pages(), Relaxed);
            }
        }
        self.report(&section, &mut w.held, &mut w.transport, min_order);
        drop(section);
        self.arm_retry(w);
    }

    /// Isolates the free blocks of `r`, reporting whenever the held blocks
    /// fill up or reach the isolation cap. Returns what the scan skipped.
    fn scan_range(
        &self,
        section: &Section,
        held: &mut Held,
        transport: &mut AnyTransport,
        r: PfnRange,
        min_order: u32,
    ) -> ScanCounts {
        // (A deliberately broken build ignores the isolation cap.)
        let budget = if cfg!(ph_break_cap) {
            u64::MAX
        } else {
            self.cfg.max_isolated.load(Relaxed)
        };
        #[cfg(CONFIG_KUNIT)]
        let r = test_hooks::filter(r);
        let mut scan = Scan::new(r.start, r.end, min_order, budget.saturating_sub(held.pages));
        loop {
            #[cfg(CONFIG_KUNIT)]
            test_hooks::before_isolate(held.pages);
            let nb = held.nblocks;
            let n = scan.isolate(section, &mut held.blocks[nb..]);
            let mut pages = 0;
            let mut kept = nb;
            for i in nb..nb + n {
                let b = held.blocks[i];
                // A block the core cannot describe (the build-time check
                // on the largest order makes this unreachable) goes
                // straight back: it must never be reported.
                let Some(e) = Entry::new(b.pfn as u64, b.order) else {
                    sys::putback(section, &[b], false);
                    self.stats.transport_errors.fetch_add(1, Relaxed);
                    continue;
                };
                pages += e.pages();
                held.blocks[kept] = b;
                held.entries[kept] = e;
                kept += 1;
            }
            // INVARIANT: `blocks[nb..kept]` are isolated and ours, each
            // mirrored in `entries`.
            held.nblocks = kept;
            held.pages += pages;
            self.stats.pages_isolated.fetch_add(pages, Relaxed);
            let now = self.stats.isolated_now.fetch_add(pages, Relaxed) + pages;
            self.stats.isolated_peak.fetch_max(now, Relaxed);
            if held.nblocks == BLOCKS || scan.over_budget() {
                self.report(section, held, transport, min_order);
                scan.set_budget(budget);
            }
            if scan.done() {
                break;
            }
            sys::cond_resched();
        }
        let k = scan.counts();
        let st = &self.stats;
        st.skipped_busy.fetch_add(k.busy, Relaxed);
        st.unlisted.fetch_add(k.unlisted, Relaxed);
        st.skipped_reported.fetch_add(k.reported, Relaxed);
        st.skipped_small.fetch_add(k.small, Relaxed);
        st.skipped_low.fetch_add(k.low, Relaxed);
        k
    }

    /// Arms the retry round for the range on the list that is due first,
    /// unless a round is already armed no later than that.
    fn arm_retry(&self, w: &mut Worker) {
        // A pending spill is due at the first (shortest) delay.
        let ms = match w.retry.next_delay_ms() {
            _ if !w.spill.is_empty() => crate::retry::DELAYS_MS[0],
            Some(ms) => ms,
            None => return,
        };
        let due = sys::ktime_ns().saturating_add(u64::from(ms) * 1_000_000);
        if w.retry_due_ns == 0 || due < w.retry_due_ns {
            w.retry_due_ns = due;
            RETRY.modify(&self.wq, ms);
        }
    }

    /// A retry round: drains the per-CPU lists, then scans every range on
    /// the retry list again, reporting what is free now. Process context.
    pub(crate) fn retry_round(&self) {
        let mut guard = self.worker.lock();
        let _busy = BusyTimer::start(&self.stats.worker_busy_ns);
        let w = &mut **guard;
        w.retry_due_ns = 0;
        let spill = core::mem::take(&mut w.spill);
        if w.retry.is_empty() && spill.is_empty() {
            return;
        }
        if !self.cfg.enabled.load(Relaxed) || !w.transport.sends() {
            let pages = w.retry.clear();
            self.stats.dropped_disabled.fetch_add(pages, Relaxed);
            return;
        }
        let min_order = self.min_order();
        self.stats.retry_rounds.fetch_add(1, Relaxed);
        // (A deliberately broken build never drains.)
        if !cfg!(ph_break_drain) {
            sys::drain_pcp();
            self.stats.drains.fetch_add(1, Relaxed);
        }
        let Worker {
            held,
            retry,
            transport,
            ..
        } = &mut *w;
        // Every block isolated below goes back (`report`) before the section
        // ends.
        let section = Section::begin();
        let k = retry.round(|r| {
            self.scan_range(&section, held, transport, r, min_order)
                .unlisted
                != 0
        });
        self.stats
            .retry_given_up
            .fetch_add(k.given_up_pages, Relaxed);
        // The spill is scanned once; what is still on per-CPU lists in it
        // joins the retry list.
        if !spill.is_empty()
            && self
                .scan_range(&section, held, transport, spill, min_order)
                .unlisted
                != 0
            && !retry.push(spill, RETRY_GAP)
        {
            self.stats.retry_dropped.fetch_add(spill.pages(), Relaxed);
        }
        self.report(&section, held, transport, min_order);
        drop(section);
        self.arm_retry(w);
    }

    /// Sends the isolated blocks (of order `min_order` or more) to the
    /// transport and gives them back.
    fn report(
        &self,
        section: &Section,
        held: &mut Held,
        transport: &mut AnyTransport,
        min_order: u32,
    ) {
        let n = held.nblocks;
        if n == 0 {
            return;
        }
        let start = sys::ktime_ns();
        let max_entries = transport.max_entries();
        let limits = Limits::from_max_bytes(
            transport.max_entry_bytes(),
            kernel::page::PAGE_SHIFT as u32,
            min_order,
        );
        // Blocks come out of the scans in ascending pfn order and disjoint,
        // so they merge without a sort.
        let Held {
            entries, report, ..
        } = held;
        let mut marked = false;
        let mut lost = false;
        let mut failed = limits.is_err();
        let mut batcher = limits.ok().map(|l| Batcher::new(merge(&entries[..n]), l));
        while let Some(batcher) = batcher.as_mut() {
            let k = batcher.fill(&mut report[..max_entries]);
            if k == 0 {
                break;
            }
            match transport.report(&report[..k]) {
                Ok(m) => {
                    marked |= m;
                    if m {
                        self.stats.reports.fetch_add(1, Relaxed);
                        self.stats.ranges_reported.fetch_add(k as u64, Relaxed);
                        let pages: u64 = report[..k].iter().map(|r| r.pages()).sum();
                        self.stats.pages_reported.fetch_add(pages, Relaxed);
                    }
                }
                Err(_) => {
                    self.stats.transport_errors.fetch_add(1, Relaxed);
                    failed = true;
                    lost = transport.lost();
                    break;
                }
            }
            // (A deliberately broken build sends one report a batch, as if
            // the queue took the whole batch.)
            if cfg!(ph_break_queue) {
                break;
            }
        }
        if lost {
            // The device may still be reading them: they stay isolated
            // (`isolated_pages` keeps counting them) and are never reused.
            pr_err!(
                "{} pages stay isolated for good: the device did not confirm its reset\n",
                held.pages
            );
            // INVARIANT: the blocks are given up, not held.
            held.nblocks = 0;
            held.pages = 0;
            return;
        }
        // Deliberately broken builds (tools/check-teeth.sh): "error" marks
        // blocks whose report failed, "leak" never returns one block.
        let mark = (marked && !failed) || cfg!(ph_break_error);
        let back = if cfg!(ph_break_leak) { n - 1 } else { n };
        sys::putback(section, &held.blocks[..back], mark);
        self.stats.isolated_now.fetch_sub(held.pages, Relaxed);
        // INVARIANT: every held block went back.
        held.nblocks = 0;
        held.pages = 0;
        self.stats
            .last_latency_ns
            .store(sys::ktime_ns().saturating_sub(start), Relaxed);
    }
}
