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
/// pages freed a while ago can be isolated. Process context; may sleep.
pub(crate) fn drain_all_pages() {
    // SAFETY: `drain_all_pages(NULL)` has no precondition beyond process
    // context (it takes a mutex), which the callers (the worker) are.
    unsafe { bindings::drain_all_pages(core::ptr::null_mut()) };
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
