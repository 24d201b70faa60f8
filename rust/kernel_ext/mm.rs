// SPDX-License-Identifier: GPL-2.0

//! The few page allocator, scheduler and time facts the mechanism needs.

use kernel::{
    bindings,
    init::{self, Zeroable},
    prelude::*,
};

/// Total RAM pages the kernel manages.
pub(crate) fn totalram_pages() -> u64 {
    let mut si = core::mem::MaybeUninit::<bindings::sysinfo>::zeroed();
    // SAFETY: `si_meminfo` fills the struct we pass; zeroed is a valid start.
    unsafe { bindings::si_meminfo(si.as_mut_ptr()) };
    // SAFETY: fully initialised by zeroing and `si_meminfo`.
    let si = unsafe { si.assume_init() };
    si.totalram as u64 * si.mem_unit.max(1) as u64 / kernel::page::PAGE_SIZE as u64
}

/// The pageblock order (the host's transparent huge page order on x86).
pub(crate) fn pageblock_order() -> u32 {
    bindings::PAGEBLOCK_ORDER
}

/// Spills every CPU's per-CPU free lists into the buddy allocator, so that
/// pages freed a while ago can be isolated: when it returns, every page
/// that was on a per-CPU list when it was called is on the free lists (it
/// waits for a drain in progress, where `drain_all_pages(NULL)` skips).
/// Process context; may sleep.
pub(crate) fn drain_pcp_lists() {
    // SAFETY: `free_page_hint_drain()` has no precondition beyond process
    // context (it takes a mutex per zone), which the callers (the worker,
    // the audit, the tests) are.
    unsafe { bindings::free_page_hint_drain() };
}

/// Whether `init_on_free` (rather than page poisoning) decides what free
/// pages contain.
pub(crate) fn init_on_free() -> bool {
    // SAFETY: reads a static key set at boot.
    unsafe { bindings::want_init_on_free() }
}

/// Whether the guest relies on what free pages contain (page poisoning or
/// `init_on_free`): a host that discards them hands back other contents.
pub(crate) fn guest_keeps_free_contents() -> bool {
    // SAFETY: reads a static key set at boot.
    init_on_free() || unsafe { bindings::page_poisoning_enabled_static() }
}

/// `PAGE_POISON` from include/linux/poison.h: the byte page poisoning fills
/// free pages with.
pub(crate) const PAGE_POISON: u8 = 0xaa;

/// Lets other tasks run if this one has used its slice (worker loops).
#[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
pub(crate) fn cond_resched() {
    // SAFETY: the callers (worker loops) run in a sleepable context.
    unsafe { bindings::__cond_resched() };
}

/// On a fully preemptible kernel without dynamic preemption (PREEMPT_RT,
/// PREEMPT) the scheduler preempts the worker itself, and C's
/// `cond_resched()` is a no-op there, `__cond_resched()` not even declared.
#[cfg(not(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC)))]
pub(crate) fn cond_resched() {}

/// Sleeps for at least `ms` milliseconds. Process context only.
pub(crate) fn msleep(ms: u32) {
    // SAFETY: no memory is involved; the callers run in process context,
    // where sleeping is allowed.
    unsafe { bindings::msleep(ms) }
}

/// Monotonic time in nanoseconds, safe in any context (the free path).
pub(crate) fn mono_fast_ns() -> u64 {
    // SAFETY: no requirements; NMI-safe, and usable while timekeeping is
    // suspended.
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

/// A point in time for measuring short intervals in any context, at the
/// cost of one instruction on x86: the CPU's time stamp counter (ticks).
/// Where there is no usable TSC (and off x86) it is the fast monotonic
/// clock, one tick a nanosecond. An interval means something only when
/// both ends were read on one CPU with interrupts off (the free path);
/// [`ticks_to_ns`] converts it.
#[derive(Clone, Copy)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// Now.
    #[inline(always)]
    pub(crate) fn now() -> Self {
        Stamp(ticks())
    }

    /// Ticks since `self` (0 if the counter went back).
    #[inline(always)]
    pub(crate) fn ticks_since(self) -> u64 {
        ticks().saturating_sub(self.0)
    }
}

/// The TSC's rate in kHz, 0 if there is no TSC to use.
#[cfg(CONFIG_X86_TSC)]
fn tsc_khz() -> u64 {
    // SAFETY: a plain read of a `u32` that boot code sets once (and
    // recalibration may rewrite; any value read is a valid rate).
    u64::from(unsafe { core::ptr::addr_of!(bindings::tsc_khz).read_volatile() })
}

#[cfg(CONFIG_X86_TSC)]
#[inline(always)]
fn ticks() -> u64 {
    if tsc_khz() == 0 {
        return mono_fast_ns();
    }
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` reads the time stamp counter into edx:eax and
    // touches no memory; the kernel runs with the counter enabled
    // (CR4.TSD clear) wherever `tsc_khz` is set.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

#[cfg(not(CONFIG_X86_TSC))]
#[inline(always)]
fn ticks() -> u64 {
    mono_fast_ns()
}

/// `ticks` of [`Stamp`] in nanoseconds.
pub(crate) fn ticks_to_ns(ticks: u64) -> u64 {
    #[cfg(CONFIG_X86_TSC)]
    {
        // Whole milliseconds' worth of ticks, then the rest: no overflow
        // (`rest * 10^6` < 2^32 * 10^6), and no 128-bit division, which
        // the kernel does not link.
        let khz = tsc_khz();
        if let (Some(ms), Some(rest)) = (ticks.checked_div(khz), ticks.checked_rem(khz)) {
            return ms.saturating_mul(1_000_000) + rest * 1_000_000 / khz;
        }
    }
    ticks
}

/// Whether [`task_runtime_ns`] reads the time up to now (else the
/// scheduler's figure as of its last update). The tests skip what they
/// cannot check without it.
#[cfg(ph_tests)]
pub(crate) const TASK_RUNTIME_EXACT: bool = cfg!(not(any(
    CONFIG_IRQ_TIME_ACCOUNTING,
    CONFIG_PARAVIRT_TIME_ACCOUNTING
)));

// `<linux/sched/clock.h>` is not among the headers 6.12's bindings are
// generated from; its `local_clock()` is exported (GPL) and is what the
// scheduler's clock reads on this CPU.
extern "C" {
    /// `u64 local_clock(void)`: `sched_clock_cpu()` of the calling CPU.
    fn local_clock() -> u64;
}

/// CPU time the running task has had, in ns, up to now. The difference of
/// two readings in one task is the time it ran on a CPU between them: not
/// time it waited (for the host, a lock, or preempted), and not time it ran
/// before the first reading.
///
/// The scheduler adds a running task's time to `se.sum_exec_runtime` only
/// at a tick or a context switch: that counter alone lags by what the task
/// ran since, which a later update then adds in, so a window read with it
/// is charged for time the task ran before the window. Where the
/// scheduler's task clock is `sched_clock` itself (no interrupt or steal
/// time taken out of it), the time since the last update is
/// `local_clock() - se.exec_start`, and this adds it.
pub(crate) fn task_runtime_ns() -> u64 {
    #[cfg(not(any(CONFIG_IRQ_TIME_ACCOUNTING, CONFIG_PARAVIRT_TIME_ACCOUNTING)))]
    {
        // The pair is read with interrupts off: no tick on this CPU can
        // update it in between. A remote CPU holding this CPU's runqueue
        // lock can (a wakeup's `update_curr()`); it writes `exec_start`
        // before `sum_exec_runtime`, so a reading whose `exec_start` did
        // not change saw no update or all of it.
        let _irq = super::cpu::IrqOff::new();
        // SAFETY: `get_current()` is the running task, which outlives this
        // call.
        let se = unsafe { core::ptr::addr_of!((*bindings::get_current()).se) };
        loop {
            // SAFETY: `se` points into the running task (above); both
            // fields are 64-bit, read whole on a 64-bit CPU, and written
            // only by the scheduler.
            let (start, sum, again) = unsafe {
                let start = core::ptr::addr_of!((*se).exec_start).read_volatile();
                let sum = core::ptr::addr_of!((*se).sum_exec_runtime).read_volatile();
                let again = core::ptr::addr_of!((*se).exec_start).read_volatile();
                (start, sum, again)
            };
            if start == again {
                // SAFETY: no requirements.
                let now = unsafe { local_clock() };
                return sum + now.saturating_sub(start);
            }
        }
    }
    #[cfg(any(CONFIG_IRQ_TIME_ACCOUNTING, CONFIG_PARAVIRT_TIME_ACCOUNTING))]
    {
        // The task clock runs behind `sched_clock` by the interrupt and
        // steal time taken out of it, which the module cannot read: the
        // last update's figure, lagging by up to a tick (see above).
        // SAFETY: `get_current()` is the running task, which outlives this
        // call; `se.sum_exec_runtime` is a 64-bit counter, read whole on a
        // 64-bit CPU, that only the scheduler writes.
        unsafe {
            core::ptr::addr_of!((*bindings::get_current()).se.sum_exec_runtime).read_volatile()
        }
    }
}

/// Monotonic time in nanoseconds.
pub(crate) fn ktime_ns() -> u64 {
    // SAFETY: no requirements.
    unsafe { bindings::ktime_get() as u64 }
}

/// A `T` on the heap, all zero, built in place (for the core's structures,
/// which are too big for the kernel stack).
pub(crate) fn zeroed_box<T: Zeroable>() -> Result<KBox<T>> {
    KBox::init(init::zeroed(), GFP_KERNEL)
}

// SAFETY: entries (`u64`s: zero is pfn 0, order 0), a length, a page count
// and a spill range: all-zero is the empty buffer. (`Zeroable` is the
// kernel crate's trait, which the core cannot name.)
unsafe impl<const N: usize> Zeroable for crate::capture::CaptureBuf<N> {}
// SAFETY: arrays of ranges and counts, and a length: all-zero is the empty
// list, which keeps its invariant.
unsafe impl<const N: usize> Zeroable for crate::retry::Retry<N> {}
// SAFETY: two arrays of ranges and two lengths: all-zero is two empty
// generations, which keeps the type's invariant.
unsafe impl<const N: usize> Zeroable for crate::settle::Settle<N> {}
