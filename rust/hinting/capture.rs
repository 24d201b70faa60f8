// SPDX-License-Identifier: GPL-2.0

//! Capture: the per-CPU double buffer the page free path fills, and the
//! hook itself.
//!
//! Each CPU has two capture buffers behind its own [`IrqsOffLock`]: the
//! *active* one, which the free path appends to, and a *spare*. Handing a
//! full buffer to the worker swaps the two boxes under the lock (O(1): two
//! pointers), after which the worker owns the full one, without the lock,
//! until it gives it back as the new spare. While the worker holds it
//! there is no spare: if the free path fills the active buffer meanwhile,
//! further frees are turned away and counted (their span is kept, see
//! [`crate::capture`]): the free path never waits.
//!
//! Most frees never reach the module. Each CPU publishes, next to its lock,
//! a direct-mapped table of the aligned blocks of the reporting order that
//! the entries of its active buffer lie in (its *hints*, a [`HintCpu`]):
//! each entry the free path stores puts its block in the block's slot. The
//! page allocator looks a free up in the table inline and, if its block is
//! there, only counts it, in an atomic beside the table, without calling
//! the hook: the worker rounds entries out to that order
//! ([`CaptureBuf::push_in`]), so a stored entry stands for it. The free
//! that takes the counted pages to the threshold calls
//! [`FreeHook::count_full`], which hands the buffer over. The hints are
//! taken down, with a full barrier, when the worker swaps the buffer away,
//! before it scans what the buffer holds; a free's page has its last
//! reference dropped (a fully ordered atomic) before the free path reads
//! the table. So either the free sees its slot empty and the hook stores
//! an entry, or the worker's scan sees the page without a reference: on a
//! free list, or on its way there, which the scan counts as on a per-CPU
//! list and retries.

use super::{Engine, Mechanism, CAPTURE_ENTRIES, WORK_BATCHES, WORK_FLUSH};
use crate::capture::{CaptureBuf, Counted, Entry, Push};
use crate::kernel_ext::{
    cpu::{CpuDead, IrqOff, PerCpu},
    free_page_hint::{FreeHook, Hinted},
    mm,
    slot::InArc,
    sync::{new_irqs_off_lock, IrqsOffLock},
};
use core::sync::atomic::Ordering::Relaxed;
use kernel::{init::PinInit, prelude::*, sync::ArcBorrow};

/// One capture buffer.
pub(super) type Buf = CaptureBuf<CAPTURE_ENTRIES>;

/// One CPU's capture state, behind its lock.
pub(super) struct CpuState {
    /// The buffer the free path appends to.
    active: KBox<Buf>,
    /// The other buffer; `None` while the worker holds it.
    spare: Option<KBox<Buf>>,
    /// The other buffer while it waits out `delay_ms`, taken off the free
    /// path: the worker looks at it again when it is old enough.
    waiting: Option<KBox<Buf>>,
    /// When the newest entry of `waiting` was captured.
    waiting_ns: u64,
    /// The worker was asked to look at this CPU since its last swap.
    queued: bool,
    /// When the newest entry of the active buffer was captured (ns of
    /// [`mm::mono_fast_ns`]), kept only while `delay_ms` is set.
    newest_ns: u64,
    captured_pages: u64,
    captured_blocks: u64,
    overflow_blocks: u64,
    overflow_pages: u64,
}

impl CpuState {
    /// Adds frees counted against the CPU's hints.
    fn add_counted(&mut self, c: Counted) {
        if c.frees == 0 {
            return;
        }
        self.active.add_pages(c.pages);
        self.captured_pages = self.captured_pages.wrapping_add(c.pages);
        self.captured_blocks = self.captured_blocks.wrapping_add(c.frees);
    }
}

/// The smallest order of the blocks entries stand for (16 pages, 64 KiB),
/// below which a hint would seldom be hit: the worker rounds the entries
/// of a batch out to blocks of this order at `min_order` 0 to 3, and
/// reports the free blocks of `min_order` or more in them. Small enough
/// that the ranges settle (`settle_ms`) as the frees did: a pageblock is
/// 32 such blocks.
const HINT_ORDER_MIN: u32 = 4;

/// The aligned block of `1 << order` pages that `e` lies in wholly, if it
/// does, as the pfn of one of its pages and the order.
#[inline(always)]
fn hint_of(e: Entry, order: u32) -> Option<(u64, u32)> {
    let order = order.min(crate::capture::MAX_PAGE_ORDER);
    e.block_at(order).map(|_| (e.pfn(), order))
}

/// One CPU's hints, which the free path reads without the lock, and its
/// capture lock and state. The lock is the innermost: taken with
/// interrupts off, under the worker mutex or none, never around another
/// lock (order: knob lock, worker mutex, capture lock).
///
/// The frees counted against the hints are folded into the CPU's state
/// under the lock, at its next push and when the worker swaps the buffer
/// away; the free that takes the pages left to count to 0 calls
/// [`FreeHook::count_full`], which folds too.
///
/// The hints ([`Hinted::hint`]) hold [`hint_of`] entries this CPU's active
/// buffer stored (each in its slot, until another block takes it), with
/// the pages the page allocator may count before the threshold is reached.
/// They are filled under the lock by the free that stored the entry, and
/// taken down (with a full barrier) under the lock by the worker when it
/// swaps the buffer away: a hinted block always has its entry in the
/// active buffer.
pub(super) type CpuCapture = Hinted<CpuLock>;

/// One CPU's capture lock and state.
#[pin_data]
pub(crate) struct CpuLock {
    #[pin]
    lock: IrqsOffLock<CpuState>,
}

impl CpuCapture {
    /// Takes the lock; interrupts stay off (`irq`) until the guard is gone.
    fn lock<'a>(
        &'a self,
        irq: &'a IrqOff,
    ) -> kernel::sync::lock::Guard<'a, CpuState, crate::kernel_ext::sync::RawSpinLockBackend> {
        self.get().lock.lock(irq)
    }

    /// Folds the counted frees into `state` (the lock is held).
    fn fold(&self, state: &mut CpuState) {
        state.add_counted(self.hint().take_counted());
    }

    /// Takes the hints down before the active buffer is swapped away (the
    /// lock is held): the full barrier orders it before the worker's scan
    /// of what the buffer holds (module documentation).
    fn unhint(&self) {
        self.hint().unhint();
    }
}

/// An initialiser for one CPU's capture state, with its two buffers.
pub(super) fn new_cpu() -> Result<impl PinInit<CpuCapture>> {
    let state = CpuState {
        active: mm::zeroed_box()?,
        spare: Some(mm::zeroed_box()?),
        waiting: None,
        waiting_ns: 0,
        queued: false,
        newest_ns: 0,
        captured_pages: 0,
        captured_blocks: 0,
        overflow_blocks: 0,
        overflow_pages: 0,
    };
    Ok(Hinted::new(pin_init!(CpuLock {
        lock <- new_irqs_off_lock!(state, "page_hinting_cpu"),
    })))
}

/// What [`with_batch`] found on a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Batch {
    /// No buffer to take (empty, or the worker holds the other one).
    Nothing,
    /// A batch was processed.
    Processed,
    /// A batch whose newest entry is younger than the delay waits, taken
    /// off the free path, for this many more ns.
    Waiting(u64),
}

/// Takes `cpu`'s waiting batch, or else its active buffer if it holds
/// entries (and the spare is there to replace it). A batch whose newest
/// entry is younger than `delay_ns` is kept as the CPU's waiting batch
/// (the free path goes on filling the other buffer); an older one is
/// handed to `f`, then emptied and given back as the spare.
pub(super) fn with_batch(cpu: &CpuCapture, delay_ns: u64, f: impl FnOnce(&mut Buf)) -> Batch {
    let now = if delay_ns != 0 { mm::mono_fast_ns() } else { 0 };
    let mut full = {
        let irq = IrqOff::new();
        let mut state = cpu.lock(&irq);
        state.queued = false;
        let (full, newest_ns) = match state.waiting.take() {
            Some(w) => (w, state.waiting_ns),
            None => match state.spare.take() {
                Some(spare) if !state.active.is_empty() => {
                    cpu.fold(&mut state);
                    let full = core::mem::replace(&mut state.active, spare);
                    cpu.unhint();
                    (full, core::mem::take(&mut state.newest_ns))
                }
                spare => {
                    state.spare = spare;
                    return Batch::Nothing;
                }
            },
        };
        let age = now.saturating_sub(newest_ns);
        if delay_ns > age {
            state.waiting = Some(full);
            state.waiting_ns = newest_ns;
            return Batch::Waiting(delay_ns - age);
        }
        full
    };
    f(&mut full);
    full.clear();
    cpu.lock(&IrqOff::new()).spare = Some(full);
    Batch::Processed
}

/// Marks `cpu` for the worker if its active buffer holds entries; returns
/// whether it does.
pub(super) fn mark_if_pending(cpu: &CpuCapture) -> bool {
    let irq = IrqOff::new();
    let mut state = cpu.lock(&irq);
    let pending = !state.active.is_empty();
    state.queued |= pending;
    pending
}

/// Takes every CPU's hints down: from now on their frees store entries,
/// until each stores one per block (a knob that the counted frees would
/// not see changed).
pub(super) fn unhint_all(cpus: &PerCpu<CpuCapture>) {
    for (_, cpu) in cpus.iter() {
        let irq = IrqOff::new();
        let _state = cpu.lock(&irq);
        cpu.unhint();
    }
}

/// Marks `cpu` for the worker.
pub(super) fn mark(cpu: &CpuCapture) {
    cpu.lock(&IrqOff::new()).queued = true;
}

/// Whether the worker was asked to look at `cpu`, or holds a batch of it
/// that waits out `delay_ms`.
pub(super) fn wants_worker(cpu: &CpuCapture) -> bool {
    let irq = IrqOff::new();
    let state = cpu.lock(&irq);
    state.queued || state.waiting.is_some()
}

/// Per-CPU counters summed over all CPUs.
#[derive(Default, Clone, Copy)]
pub(crate) struct CpuTotals {
    pub(crate) captured_pages: u64,
    pub(crate) captured_blocks: u64,
    pub(crate) overflow_blocks: u64,
    pub(crate) overflow_pages: u64,
    pub(crate) pending_pages: u64,
}

impl Engine {
    /// Per-CPU counters, summed.
    pub(crate) fn cpu_totals(&self) -> CpuTotals {
        let mut t = CpuTotals::default();
        for (_, cpu) in self.cpus.iter() {
            let irq = IrqOff::new();
            let state = cpu.lock(&irq);
            let c = cpu.hint().counted();
            t.captured_pages += state.captured_pages + c.pages;
            t.captured_blocks += state.captured_blocks + c.frees;
            t.overflow_blocks += state.overflow_blocks;
            t.overflow_pages += state.overflow_pages;
            t.pending_pages += state.active.pending_pages() + c.pages;
        }
        t
    }

    /// Runs `f` on this CPU's active buffer (tests look at what the free
    /// path stored).
    #[cfg(ph_tests)]
    pub(crate) fn with_this_cpu_buf<R>(&self, f: impl FnOnce(&Buf) -> R) -> R {
        let irq = IrqOff::new();
        let state = self.cpus.this_cpu(&irq).lock(&irq);
        f(&state.active)
    }

    /// Which CPU this runs on, as the address of its capture (tests: the
    /// caller keeps interrupts off for as long as the answer must hold).
    #[cfg(ph_tests)]
    pub(crate) fn this_cpu_key(&self) -> usize {
        let irq = IrqOff::new();
        core::ptr::from_ref(self.cpus.this_cpu(&irq)) as usize
    }
}

impl FreeHook for Mechanism {
    type Cpu = CpuLock;

    /// The free page hint callback: runs in every context that frees pages,
    /// for every block the page allocator did not count against the CPU's
    /// hints (module documentation). Stores an entry ([`store`]).
    fn freed(this: InArc<'_, Self>, pfn: u64, order: u32) {
        let cfg = &this.cfg;
        if !cfg.enabled.load(Relaxed) {
            return;
        }
        let Some(e) = Entry::new(pfn, order) else {
            return;
        };
        let threshold = cfg.threshold_pages.load(Relaxed);
        // The order of the blocks entries stand for: the reporting order,
        // or order HINT_ORDER_MIN if that is larger (module documentation).
        let order = this.min_order().max(HINT_ORDER_MIN);
        let irq = IrqOff::new();
        let cpu = this.cpus.this_cpu(&irq);
        let tail = store(&this, cpu, &irq, Some(e), order, threshold);
        drop(irq);
        finish(this, tail);
    }

    /// The frees counted against this CPU's hints took its pending pages to
    /// the threshold: hands the buffer over ([`store`] with no entry).
    fn count_full(this: InArc<'_, Self>) {
        let cfg = &this.cfg;
        if !cfg.enabled.load(Relaxed) {
            return;
        }
        let threshold = cfg.threshold_pages.load(Relaxed);
        let order = this.min_order().max(HINT_ORDER_MIN);
        let irq = IrqOff::new();
        let cpu = this.cpus.this_cpu(&irq);
        let tail = store(&this, cpu, &irq, None, order, threshold);
        drop(irq);
        finish(this, tail);
    }

    fn cpus(&self) -> &PerCpu<CpuCapture> {
        &self.cpus
    }
}

/// The end of the hook, with interrupts on: notes the length of the
/// section with the lock, and wakes the worker or arms the flush.
#[inline(always)]
fn finish(this: InArc<'_, Mechanism>, tail: Tail) {
    // Read first: the line stays shared between the CPUs, written only
    // on a new maximum (in ticks: sysfs converts it to ns).
    let max = &this.stats.free_irqoff_max_ticks;
    if tail.ticks > max.load(Relaxed) {
        max.fetch_max(tail.ticks, Relaxed);
    }
    if tail.kick || tail.first {
        kick_worker(this, tail.kick, tail.first);
    }
}

/// What [`store`] leaves to do with interrupts on.
struct Tail {
    /// Length of the section with the lock, in ticks.
    ticks: u64,
    /// Wake the worker for a full buffer.
    kick: bool,
    /// The buffer got its first entry: arm the idle flush.
    first: bool,
}

/// The free path with the CPU's lock (`cpu` is this CPU's, interrupts are
/// off): stores `e` (none: it was counted, and the pending pages reached
/// the threshold) to stand for its block of `order`, and says whether to
/// wake the worker or arm the flush.
#[inline(always)]
fn store(
    this: &Mechanism,
    cpu: &CpuCapture,
    irq: &IrqOff,
    e: Option<Entry>,
    order: u32,
    threshold: u64,
) -> Tail {
    let stamp = if this.cfg.delay_ms.load(Relaxed) != 0 {
        mm::mono_fast_ns()
    } else {
        0
    };
    let t0 = mm::Stamp::now();
    let mut state = cpu.lock(irq);
    let was_empty = state.active.is_empty();
    cpu.fold(&mut state);
    // The block to hint, if an entry was stored and may be.
    let mut hint = None;
    let push = match e {
        Some(e) => {
            let push = state.active.push_in(e, order, threshold);
            // What the worker will scan for this free: the entry's block of
            // `order` (its hint block), or only its pages if the buffer
            // turned it away (the spill).
            #[cfg(ph_audit)]
            super::audit::told(e, if push == Push::Full { 0 } else { order });
            if push == Push::Full {
                state.overflow_blocks += 1;
                state.overflow_pages += e.pages();
            } else {
                state.captured_pages = state.captured_pages.wrapping_add(e.pages());
                state.captured_blocks = state.captured_blocks.wrapping_add(1);
                state.newest_ns = stamp;
                // With `delay_ms` the batch keeps its newest free's time:
                // no free is only counted.
                if stamp == 0 {
                    hint = hint_of(e, order);
                }
            }
            push
        }
        None if state.active.is_ready(threshold) => Push::Ready,
        None => Push::Stored,
    };
    let limit = threshold.saturating_sub(state.active.pending_pages());
    // On this CPU with interrupts off, as `fill` and `set_limit` need;
    // nothing was counted since the fold.
    let counted = cpu.hint().set_limit(limit);
    state.add_counted(counted);
    if let Some((pfn, order)) = hint {
        cpu.hint().fill(pfn, order);
    }
    let kick = push != Push::Stored && !state.queued;
    if kick {
        state.queued = true;
    }
    drop(state);
    Tail {
        ticks: t0.ticks_since(),
        kick,
        first: was_empty && push != Push::Full,
    }
}

/// The free path's rare part: wakes the worker for a full buffer, and arms
/// the idle flush for a buffer that got its first entry. Queued with
/// interrupts on: waking the worker is most of the section's length
/// otherwise (2.5 us of 1 vCPU under icount). A free that interrupts the
/// caller after its section sees `queued` and leaves the kick to it.
#[cold]
#[inline(never)]
fn kick_worker(this: InArc<'_, Mechanism>, kick: bool, first: bool) {
    let this = this.arc();
    if kick {
        Mechanism::queue(this, WORK_BATCHES, 0);
    }
    if first {
        let ms = this.cfg.flush_ms.load(Relaxed);
        if ms != 0 {
            Mechanism::queue(this, WORK_FLUSH, ms);
        }
    }
}

impl CpuDead for Mechanism {
    /// A CPU went offline: the worker processes what it captured.
    fn dead(this: ArcBorrow<'_, Self>, cpu: u32) {
        if let Some(capture) = this.cpus.get(cpu) {
            if mark_if_pending(capture) {
                this.stats.hotplug_handoffs.fetch_add(1, Relaxed);
                Mechanism::queue(this, WORK_BATCHES, 0);
            }
        }
    }
}
