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

use super::{Engine, Mechanism, CAPTURE_ENTRIES, WORK_BATCHES, WORK_FLUSH};
use crate::capture::{CaptureBuf, Entry, Push};
use crate::kernel_ext::{
    cpu::{CpuDead, IrqOff},
    free_page_hint::FreeHook,
    mm,
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

/// One CPU's capture lock and state. The innermost lock: taken with
/// interrupts off, under the worker mutex or none, never around another
/// lock (order: knob lock, worker mutex, capture lock).
pub(super) type CpuCapture = IrqsOffLock<CpuState>;

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
    Ok(new_irqs_off_lock!(state, "page_hinting_cpu"))
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
                    let full = core::mem::replace(&mut state.active, spare);
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
            t.captured_pages += state.captured_pages;
            t.captured_blocks += state.captured_blocks;
            t.overflow_blocks += state.overflow_blocks;
            t.overflow_pages += state.overflow_pages;
            t.pending_pages += state.active.pending_pages();
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
}

impl FreeHook for Mechanism {
    /// The free page hint callback: runs in every context that frees pages.
    fn freed(this: ArcBorrow<'_, Self>, pfn: u64, order: u32) {
        let cfg = &this.cfg;
        if !cfg.enabled.load(Relaxed) {
            return;
        }
        let Some(e) = Entry::new(pfn, order) else {
            return;
        };
        let threshold = cfg.threshold_pages.load(Relaxed);
        let stamp = if cfg.delay_ms.load(Relaxed) != 0 {
            mm::mono_fast_ns()
        } else {
            0
        };
        let irq = IrqOff::new();
        let t0 = mm::Stamp::now();
        let (push, was_empty, kick) = {
            let mut state = this.cpus.this_cpu(&irq).lock(&irq);
            let was_empty = state.active.is_empty();
            let push = state.active.push(e, threshold);
            match push {
                Push::Full => {
                    state.overflow_blocks += 1;
                    state.overflow_pages += e.pages();
                }
                _ => {
                    state.captured_pages += e.pages();
                    state.captured_blocks += 1;
                    state.newest_ns = stamp;
                }
            }
            let kick = push != Push::Stored && !state.queued;
            if kick {
                state.queued = true;
            }
            (push, was_empty, kick)
        };
        let ticks = t0.ticks_since();
        drop(irq);
        // Queued with interrupts on: waking the worker is most of the
        // section's length otherwise (2.5 us of 1 vCPU under icount). A
        // free that interrupts us here sees `queued` and leaves the kick
        // to us.
        if kick {
            Mechanism::queue(this, WORK_BATCHES, 0);
        }
        // Read first: the line stays shared between the CPUs, written only
        // on a new maximum (in ticks: sysfs converts it to ns).
        let max = &this.stats.free_irqoff_max_ticks;
        if ticks > max.load(Relaxed) {
            max.fetch_max(ticks, Relaxed);
        }
        if was_empty && push != Push::Full {
            let ms = cfg.flush_ms.load(Relaxed);
            if ms != 0 {
                Mechanism::queue(this, WORK_FLUSH, ms);
            }
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
