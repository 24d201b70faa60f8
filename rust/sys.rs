// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers around the C pieces the module needs and 6.12's
//! `kernel` crate does not have: per-CPU memory, an interrupt-safe spinlock,
//! raw work items and a workqueue, the free page hint hook, buddy-block
//! isolation, CPU hotplug states and page helpers.
//!
//! This is the only file of the module with `unsafe` blocks (with
//! `kunit.rs`, the KUnit glue, and `selftest.rs`/`tests.rs` which exercise
//! C directly). Each one says why it is sound.

use core::{cell::UnsafeCell, ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings, c_str,
    error::to_result,
    ffi::{c_char, c_int, c_uint, c_ulong},
    prelude::*,
    types::Opaque,
};

/// A type for which the all-zero bit pattern is a valid value.
///
/// # Safety
///
/// Implementers must be valid when every byte is zero.
pub(crate) unsafe trait Zeroed {}

// SAFETY: zero is a valid integer, boolean, atomic, `UnsafeCell` of those.
unsafe impl Zeroed for core::sync::atomic::AtomicU64 {}
// SAFETY: as above.
unsafe impl Zeroed for core::sync::atomic::AtomicBool {}
// SAFETY: as above.
unsafe impl Zeroed for core::sync::atomic::AtomicU32 {}
// SAFETY: as above.
unsafe impl<T: Zeroed> Zeroed for UnsafeCell<T> {}
// SAFETY: an array of zero-valid elements is zero-valid.
unsafe impl<T: Zeroed, const N: usize> Zeroed for [T; N] {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroed for usize {}
// SAFETY: zero is `false`.
unsafe impl Zeroed for bool {}
// SAFETY: `Opaque` makes no validity claim about its contents.
unsafe impl<T> Zeroed for Opaque<T> {}
// SAFETY: `CaptureBuf` is an array of `u64`-backed entries, a length, a
// page count and a spill range; all-zero is the empty buffer.
unsafe impl<const N: usize> Zeroed for crate::capture::CaptureBuf<N> {}
// SAFETY: an entry is a `u64`; zero is pfn 0, order 0.
unsafe impl Zeroed for crate::capture::Entry {}
// SAFETY: two `u64`s; zero is the empty range.
unsafe impl Zeroed for crate::ranges::PfnRange {}
// SAFETY: arrays of ranges and counts and a length; all-zero is the empty
// list, which keeps its invariant.
unsafe impl<const N: usize> Zeroed for crate::retry::Retry<N> {}
// SAFETY: a C struct of an integer pfn and order.
unsafe impl Zeroed for bindings::free_page_hint_block {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroed for u64 {}

/// A zero-initialised `T` on the heap, built in place (for structures too
/// big to build on the kernel stack and move).
pub(crate) fn zeroed_box<T: Zeroed>() -> Result<KBox<T>> {
    let b = KBox::<T>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
    // SAFETY: `__GFP_ZERO` zeroed the allocation, and all-zero is a valid
    // `T` (`Zeroed`).
    Ok(unsafe { b.assume_init() })
}

/// One `T` per possible CPU, zero-initialised, from `alloc_percpu`.
///
/// # Invariants
///
/// `ptr` is a live per-CPU allocation of `size_of::<T>()` bytes aligned for
/// `T`, owned by this value, with a valid `T` for every possible CPU.
pub(crate) struct PerCpu<T: Zeroed + Sync> {
    ptr: NonNull<c_void>,
    _p: PhantomData<T>,
}

// SAFETY: the per-CPU values are `Sync`, and the owner only frees them on drop.
unsafe impl<T: Zeroed + Sync> Send for PerCpu<T> {}
// SAFETY: shared access only hands out `&T`, and `T: Sync`.
unsafe impl<T: Zeroed + Sync> Sync for PerCpu<T> {}

impl<T: Zeroed + Sync> PerCpu<T> {
    /// Allocates a zeroed `T` for every possible CPU.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation; the percpu allocator zeroes the memory.
        let p = unsafe {
            bindings::pcpu_alloc_noprof(
                core::mem::size_of::<T>(),
                core::mem::align_of::<T>(),
                false,
                bindings::GFP_KERNEL,
            )
        };
        // INVARIANT: a non-null result is a zeroed allocation of the right
        // size and alignment for each CPU, and all-zero is a valid `T`.
        Ok(PerCpu {
            ptr: NonNull::new(p).ok_or(ENOMEM)?,
            _p: PhantomData,
        })
    }

    /// The value of `cpu`, which must be below `nr_cpu_ids`.
    pub(crate) fn get(&self, cpu: u32) -> &T {
        assert!(cpu < nr_cpu_ids());
        // SAFETY: `cpu` is a possible CPU id, and the pointer is a per-CPU
        // allocation (type invariant), so the result points at its valid `T`,
        // which lives as long as `self`.
        unsafe { &*(bindings::per_cpu_ptr(self.ptr.as_ptr(), cpu) as *const T) }
    }

    /// The value of the CPU this runs on. The caller holds interrupts off
    /// (the `IrqOff` token), so the task cannot migrate while it uses it.
    pub(crate) fn this_cpu<'a>(&'a self, _irq: &'a IrqOff) -> &'a T {
        // SAFETY: interrupts are off so `this_cpu_ptr` is stable, and the
        // pointer is a live per-CPU allocation (type invariant).
        unsafe { &*(bindings::this_cpu_ptr(self.ptr.as_ptr()) as *const T) }
    }
}

impl<T: Zeroed + Sync> Drop for PerCpu<T> {
    fn drop(&mut self) {
        // SAFETY: we own the allocation (type invariant); no reference into
        // it outlives `self`.
        unsafe { bindings::free_percpu(self.ptr.as_ptr()) };
    }
}

/// The number of possible CPU ids.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: a read of a variable set at boot.
    unsafe { bindings::nr_cpu_ids }
}

/// Interrupts are disabled on this CPU while this token lives; dropping it
/// restores the previous state.
pub(crate) struct IrqOff {
    flags: c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl IrqOff {
    /// Disables interrupts on this CPU.
    pub(crate) fn new() -> Self {
        // SAFETY: always allowed; `Drop` restores the saved state on this
        // CPU (the token is not `Send`).
        let flags = unsafe { bindings::local_irq_save() };
        IrqOff {
            flags,
            _not_send: PhantomData,
        }
    }
}

impl Drop for IrqOff {
    fn drop(&mut self) {
        // SAFETY: restores the state saved by `new` on the same CPU.
        unsafe { bindings::local_irq_restore(self.flags) };
    }
}

/// A lockdep class key with static storage, as lockdep requires.
pub(crate) struct LockKey(Opaque<bindings::lock_class_key>);

// SAFETY: lockdep only uses the key's address and synchronises internally.
unsafe impl Sync for LockKey {}

impl LockKey {
    /// A key; only meaningful in a `static`.
    pub(crate) const fn new() -> Self {
        LockKey(Opaque::uninit())
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::lock_class_key {
        self.0.get()
    }
}

/// A spinlock protecting a `T`, always taken with interrupts off, so that
/// it can be used from any context that frees pages. It is a raw spinlock:
/// on PREEMPT_RT a `spinlock_t` sleeps, which the free path, with
/// interrupts off, must not.
///
/// # Invariants
///
/// `lock` has been initialised by [`IrqSpinLock::init`] before any
/// [`IrqSpinLock::lock`]; `data` is only accessed while `lock` is held.
#[repr(C)]
pub(crate) struct IrqSpinLock<T> {
    lock: Opaque<bindings::raw_spinlock_t>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`.
unsafe impl<T: Send> Sync for IrqSpinLock<T> {}
// SAFETY: zero-valid if `T` is; the lock is initialised before use.
unsafe impl<T: Zeroed> Zeroed for IrqSpinLock<T> {}

impl<T> IrqSpinLock<T> {
    /// Initialises the lock in place (it lives in per-CPU memory, which never
    /// moves). Must be called once before the first `lock`.
    pub(crate) fn init(&self, name: &'static CStr, key: &'static LockKey) {
        // SAFETY: `self.lock` is valid memory for a spinlock that nobody uses
        // yet (the caller initialises before sharing); `name` and `key` are
        // static, as lockdep requires.
        unsafe {
            bindings::raw_spin_lock_init_key(self.lock.get(), name.as_char_ptr(), key.as_ptr())
        };
    }

    /// Takes the lock with interrupts off and runs `f` on the data.
    pub(crate) fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let _irq = IrqOff::new();
        // SAFETY: the lock was initialised (type invariant); interrupts are
        // off so the holder cannot be interrupted by a free on this CPU.
        unsafe { bindings::raw_spin_lock(self.lock.get()) };
        // SAFETY: we hold the lock, so we have exclusive access to `data`
        // (type invariant), for the duration of `f` only.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: we took the lock above.
        unsafe { bindings::raw_spin_unlock(self.lock.get()) };
        r
    }
}

/// Two capture buffers and a small state `S` behind one interrupt-safe lock:
/// the free path fills the *active* buffer under the lock; the worker swaps
/// the buffers (O(1)) and then owns the other one, without the lock, until
/// it gives it back.
///
/// # Invariants
///
/// `bufs[inner.active]` is only accessed with the lock held. The other
/// buffer is empty and untouched while `inner.busy` is false; while it is
/// true, it belongs to the one [`Batch`] that set it.
pub(crate) struct DoubleBuf<S, const N: usize> {
    lock: IrqSpinLock<Inner<S>>,
    bufs: [UnsafeCell<crate::capture::CaptureBuf<N>>; 2],
}

/// The lock-protected part of a [`DoubleBuf`].
pub(crate) struct Inner<S> {
    active: usize,
    busy: bool,
    user: S,
}

// SAFETY: index 0, not busy, and a zero-valid `S`.
unsafe impl<S: Zeroed> Zeroed for Inner<S> {}
// SAFETY: a zero lock (initialised before use) and two empty buffers.
unsafe impl<S: Zeroed, const N: usize> Zeroed for DoubleBuf<S, N> {}
// SAFETY: the lock serialises the active buffer and the state; the other
// buffer has exactly one owner at a time (type invariant).
unsafe impl<S: Send, const N: usize> Sync for DoubleBuf<S, N> {}

impl<S, const N: usize> DoubleBuf<S, N> {
    /// Initialises the lock (in place; per-CPU memory never moves).
    pub(crate) fn init(&self, name: &'static CStr, key: &'static LockKey) {
        self.lock.init(name, key);
    }

    /// Runs `f` on the state and the active buffer, under the lock with
    /// interrupts off. `f` must be short: it runs in the page free path.
    #[inline]
    pub(crate) fn with_active<R>(
        &self,
        f: impl FnOnce(&mut S, &mut crate::capture::CaptureBuf<N>) -> R,
    ) -> R {
        self.lock.lock(|i| {
            let idx = i.active & 1;
            // SAFETY: we hold the lock, and the active buffer is only
            // accessed under it (type invariant); the reference ends with `f`.
            let buf = unsafe { &mut *self.bufs[idx].get() };
            f(&mut i.user, buf)
        })
    }

    /// Swaps the buffers if the active one holds entries and the other is
    /// free, runs `f` on the state under the lock, and returns the full
    /// buffer as a [`Batch`]. `None` if there is nothing to take.
    pub(crate) fn take(&self, f: impl FnOnce(&mut S)) -> Option<Batch<'_, S, N>> {
        self.lock.lock(|i| {
            let idx = i.active & 1;
            // SAFETY: under the lock, the active buffer may be read.
            let empty = unsafe { (*self.bufs[idx].get()).is_empty() };
            if i.busy || empty {
                return None;
            }
            // INVARIANT: the full buffer leaves the lock's protection and
            // becomes the batch's (busy); the empty one becomes active.
            i.active = idx ^ 1;
            i.busy = true;
            f(&mut i.user);
            Some(Batch { db: self, idx })
        })
    }
}

/// A full capture buffer taken from a [`DoubleBuf`]; dropping it empties
/// the buffer and makes it available for the next swap.
pub(crate) struct Batch<'a, S, const N: usize> {
    db: &'a DoubleBuf<S, N>,
    idx: usize,
}

impl<S, const N: usize> Batch<'_, S, N> {
    /// The batch's entries, for the worker to sort and process.
    pub(crate) fn buf(&mut self) -> &mut crate::capture::CaptureBuf<N> {
        // SAFETY: while `busy` is set, this batch is the buffer's only owner
        // (type invariant of `DoubleBuf`), and `&mut self` makes the borrow
        // exclusive.
        unsafe { &mut *self.db.bufs[self.idx].get() }
    }
}

impl<S, const N: usize> Drop for Batch<'_, S, N> {
    fn drop(&mut self) {
        self.buf().clear();
        // INVARIANT: the buffer is empty again before it stops being ours.
        self.db.lock.lock(|i| i.busy = false);
    }
}

/// A pointer to a long-lived object, published to contexts (the free page
/// hook, work items) that cannot be handed a reference.
pub(crate) struct Published<T>(core::sync::atomic::AtomicPtr<T>);

impl<T: Sync> Published<T> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        Published(core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Publishes `obj`.
    ///
    /// # Safety
    ///
    /// `obj` must stay alive and in place until [`Published::clear`] was
    /// called *and* every context that may have called [`Published::get`]
    /// has finished using the reference.
    pub(crate) unsafe fn publish(&self, obj: &T) {
        self.0.store(
            (obj as *const T).cast_mut(),
            core::sync::atomic::Ordering::Release,
        );
    }

    /// Unpublishes.
    pub(crate) fn clear(&self) {
        self.0
            .store(core::ptr::null_mut(), core::sync::atomic::Ordering::Release);
    }

    /// The published object, if any.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.0.load(core::sync::atomic::Ordering::Acquire);
        // SAFETY: non-null means published and, by `publish`'s contract,
        // alive for as long as a caller of `get` can use it.
        unsafe { p.as_ref() }
    }
}

#[cfg(CONFIG_KUNIT)]
/// Pages in `r` that are heads of free buddy blocks right now (a racy look
/// without the zone lock, for tests: isolated pages must show none).
pub(crate) fn count_buddy_heads(r: crate::ranges::PfnRange) -> u64 {
    let mut n = 0;
    for pfn in r.start..r.end {
        // SAFETY: `r` comes from isolated blocks, whose pfns have memmap
        // entries; PageBuddy only reads the page's type field.
        if unsafe { bindings::PageBuddy(bindings::pfn_to_page(pfn as c_ulong)) } {
            n += 1;
        }
    }
    n
}

/// A raw work item embedded in a larger structure; its function finds the
/// structure with [`RawWork::container`].
///
/// # Invariants
///
/// After [`RawWork::init`] the `work_struct` is initialised with a function
/// and stays at this address until the owner cancels it and goes away.
#[repr(transparent)]
pub(crate) struct RawWork(Opaque<bindings::work_struct>);

// SAFETY: `work_struct`s are designed to be queued from any CPU.
unsafe impl Sync for RawWork {}
// SAFETY: `Opaque` carries no validity requirement; `init` runs before use.
unsafe impl Zeroed for RawWork {}

/// The type of a work function.
pub(crate) type WorkFn = unsafe extern "C" fn(*mut bindings::work_struct);

impl RawWork {
    /// Initialises the work item with `func` (in place; it must not move).
    pub(crate) fn init(&self, func: WorkFn, name: &'static CStr, key: &'static LockKey) {
        // SAFETY: the memory is a valid, unused work_struct slot; `name` and
        // `key` are static.
        unsafe {
            bindings::init_work_with_key(
                self.0.get(),
                Some(func),
                false,
                name.as_char_ptr(),
                key.as_ptr(),
            )
        };
    }

    /// Queues the work on `wq`; returns false if it was already pending.
    /// Callable from any context, interrupts off included.
    pub(crate) fn queue(&self, wq: &Workqueue) -> bool {
        // SAFETY: the work item is initialised and outlives its queueing (the
        // owner cancels it before it goes away); `wq` is live.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                wq.0.as_ptr(),
                self.0.get(),
            )
        }
    }

    /// Cancels the work and waits for a running instance to finish.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: the work item is initialised; process context.
        unsafe { bindings::cancel_work_sync(self.0.get()) };
    }

    /// Waits for the work to finish if it is queued or running.
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn flush(&self) {
        // SAFETY: the work item is initialised; process context.
        unsafe { bindings::flush_work(self.0.get()) };
    }

    /// Recovers the structure of type `T` that embeds the work item at byte
    /// offset `offset`, from the pointer a work function receives.
    ///
    /// # Safety
    ///
    /// `work` must point at the `RawWork` field at `offset` inside a live `T`.
    pub(crate) unsafe fn container<'a, T>(
        work: *mut bindings::work_struct,
        offset: usize,
    ) -> &'a T {
        // SAFETY: guaranteed by the caller.
        unsafe { &*((work as *mut u8).sub(offset) as *const T) }
    }
}

/// A delayed work item with a static home.
///
/// # Invariants
///
/// As for [`RawWork`]: initialised by `init` before use, never moved.
#[repr(transparent)]
pub(crate) struct DelayedWork(Opaque<bindings::delayed_work>);

// SAFETY: as for `RawWork`.
unsafe impl Sync for DelayedWork {}

impl DelayedWork {
    /// An uninitialised delayed work; call `init` before use.
    pub(crate) const fn new() -> Self {
        DelayedWork(Opaque::uninit())
    }

    /// Initialises the delayed work with `func`.
    pub(crate) fn init(&self, func: WorkFn) {
        // SAFETY: a valid, unused delayed_work slot.
        unsafe { bindings::init_delayed_work(self.0.get(), Some(func)) };
    }

    /// Queues the work to run after `delay_ms`, unless already pending.
    /// Callable from any context; cheap when already pending.
    pub(crate) fn queue(&self, wq: &Workqueue, delay_ms: u32) -> bool {
        // SAFETY: initialised (type invariant), `wq` live.
        unsafe {
            let j = bindings::__msecs_to_jiffies(delay_ms);
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                wq.0.as_ptr(),
                self.0.get(),
                j,
            )
        }
    }

    /// Queues the work to run after `delay_ms`, or moves its timer there if
    /// it is already pending. Callable from any context.
    pub(crate) fn modify(&self, wq: &Workqueue, delay_ms: u32) {
        // SAFETY: initialised (type invariant), `wq` live.
        unsafe {
            let j = bindings::__msecs_to_jiffies(delay_ms);
            bindings::mod_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                wq.0.as_ptr(),
                self.0.get(),
                j,
            );
        }
    }

    /// Cancels the work and waits for a running instance.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: initialised; process context.
        unsafe { bindings::cancel_delayed_work_sync(self.0.get()) };
    }
}

/// An ordered workqueue owned by the module: its items run one at a time.
///
/// # Invariants
///
/// `self.0` is a live workqueue, destroyed on drop.
pub(crate) struct Workqueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues are designed for use from any CPU.
unsafe impl Send for Workqueue {}
// SAFETY: as above.
unsafe impl Sync for Workqueue {}

impl Workqueue {
    /// Creates an ordered workqueue called `name`. It is freezable: during
    /// suspend and hibernation no item runs (the queue is drained before
    /// devices suspend, and items queued meanwhile wait for the thaw), so
    /// no report is in flight while a device is frozen.
    pub(crate) fn new_ordered(name: &'static CStr) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND
            | bindings::wq_flags___WQ_ORDERED
            | bindings::wq_flags_WQ_MEM_RECLAIM
            | bindings::wq_flags_WQ_FREEZABLE;
        // SAFETY: "%s" with a NUL-terminated string; max_active 1 for ordered.
        let wq = unsafe {
            bindings::alloc_workqueue(c_str!("%s").as_char_ptr(), flags, 1, name.as_char_ptr())
        };
        // INVARIANT: non-null means a live workqueue.
        Ok(Workqueue(NonNull::new(wq).ok_or(ENOMEM)?))
    }
}

impl Workqueue {
    /// Waits until every item queued so far has run.
    pub(crate) fn flush(&self) {
        // SAFETY: live workqueue (type invariant); process context.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: live (type invariant); the owner cancelled every item first.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// The callback the free page hint hook calls.
pub(crate) type HintFn = unsafe extern "C" fn(pfn: c_ulong, order: c_uint);

/// The callback table registered with the kernel's free page hint hook.
pub(crate) struct HintOps(bindings::free_page_hint_ops);

// SAFETY: a table of one function pointer, never written after construction.
unsafe impl Sync for HintOps {}

impl HintOps {
    /// A table with `free` as the callback.
    pub(crate) const fn new(free: HintFn) -> Self {
        HintOps(bindings::free_page_hint_ops { free: Some(free) })
    }
}

/// The free page hint hook, attached while this value lives.
pub(crate) struct HintHook(&'static HintOps);

impl HintHook {
    /// Attaches `ops`: from now on the page allocator calls it for every
    /// freed block, in any context.
    pub(crate) fn register(ops: &'static HintOps) -> Result<Self> {
        // SAFETY: `ops` is static, so it outlives the registration.
        to_result(unsafe { bindings::free_page_hint_register(&ops.0) })?;
        Ok(HintHook(ops))
    }
}

impl Drop for HintHook {
    fn drop(&mut self) {
        // SAFETY: we registered `self.0`; when this returns no CPU runs the
        // callback any more.
        unsafe { bindings::free_page_hint_unregister(&self.0 .0) };
    }
}

/// A block of pages taken off the free lists.
pub(crate) type Block = bindings::free_page_hint_block;

/// An isolation section (`free_page_hint_begin()` to `free_page_hint_end()`):
/// blocks are isolated and put back only inside one, which holds off memory
/// hotplug, so that offlining never starts while the worker holds blocks
/// (it would wait for them, and the worker for it). Every block isolated in
/// a section goes back before the section ends: [`Scan::isolate`] and
/// [`putback`] take it by reference, and the worker puts back what it holds
/// before it drops the section. Sections do not nest (the kernel's memory
/// hotplug lock is a per-CPU rwsem, which a pending writer would deadlock).
pub(crate) struct Section {
    _not_send: PhantomData<*mut ()>,
}

impl Section {
    /// Begins a section; may sleep (while memory is being on- or offlined).
    pub(crate) fn begin() -> Self {
        // SAFETY: process context (the worker and tests); ended by `Drop`.
        unsafe { bindings::free_page_hint_begin() };
        Section {
            _not_send: PhantomData,
        }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: ends the section `begin` started, in the same task (not
        // `Send`).
        unsafe { bindings::free_page_hint_end() };
    }
}

/// Statistics of an isolation scan.
#[derive(Default, Clone, Copy)]
pub(crate) struct ScanCounts {
    /// Pages that were not free (allocated again).
    pub(crate) busy: u64,
    /// Pages that were free but not on the buddy free lists (on a per-CPU
    /// list): the range is worth another look after a drain.
    pub(crate) unlisted: u64,
    pub(crate) reported: u64,
    pub(crate) small: u64,
    pub(crate) low: u64,
}

/// A scan of a pfn range for free buddy blocks (the C
/// `struct free_page_hint_scan`).
pub(crate) struct Scan(bindings::free_page_hint_scan);

impl Scan {
    /// A scan of `[start, end)` for blocks of order `min_order` or more,
    /// isolating at most `max_pages` pages in all.
    pub(crate) fn new(start: u64, end: u64, min_order: u32, max_pages: u64) -> Self {
        Scan(bindings::free_page_hint_scan {
            pfn: start as c_ulong,
            end_pfn: end as c_ulong,
            min_order,
            max_pages: max_pages as c_ulong,
            nr_busy: 0,
            nr_unlisted: 0,
            nr_reported: 0,
            nr_small: 0,
            nr_low: 0,
            over_budget: false,
        })
    }

    /// Isolates free blocks into `out`; returns how many. Keeps the kernel's
    /// promise that `out` is written only within its length.
    ///
    /// The caller owns the returned blocks: they are off the free lists until
    /// given to [`putback`], in the same section.
    pub(crate) fn isolate(&mut self, _section: &Section, out: &mut [Block]) -> usize {
        let cap = out.len().min(c_uint::MAX as usize) as c_uint;
        // SAFETY: `self.0` is a valid scan, `out` is valid for `cap` writes;
        // process context (the worker), inside a section (`_section`).
        let n = unsafe { bindings::free_page_hint_isolate(&mut self.0, out.as_mut_ptr(), cap) };
        let n = (n as usize).min(out.len());
        #[cfg(ph_break_isolation)]
        // SAFETY: deliberately broken build (tools/check-teeth.sh): the
        // blocks go straight back to the allocator while the caller believes
        // it holds them; `putback` is a no-op in this build.
        unsafe {
            bindings::free_page_hint_putback(out.as_ptr(), n as c_uint, false)
        };
        n
    }

    /// Whether the whole range was scanned.
    pub(crate) fn done(&self) -> bool {
        self.0.pfn >= self.0.end_pfn
    }

    /// Whether the scan stopped at a block bigger than its remaining budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.0.over_budget
    }

    /// Gives the scan a fresh budget (after the held blocks went back).
    pub(crate) fn set_budget(&mut self, max_pages: u64) {
        self.0.max_pages = max_pages as c_ulong;
        self.0.over_budget = false;
    }

    /// What the scan skipped so far.
    pub(crate) fn counts(&self) -> ScanCounts {
        // The C scan counts unlisted pages within `nr_busy`.
        let unlisted = self.0.nr_unlisted as u64;
        ScanCounts {
            busy: (self.0.nr_busy as u64).saturating_sub(unlisted),
            unlisted,
            reported: self.0.nr_reported as u64,
            small: self.0.nr_small as u64,
            low: self.0.nr_low as u64,
        }
    }
}

/// Returns isolated blocks to the free lists, marking them reported if
/// `reported` (the host has them).
///
/// Every block must have come from [`Scan::isolate`] and be given back once:
/// the caller's ownership of the blocks ends here.
pub(crate) fn putback(_section: &Section, blocks: &[Block], reported: bool) {
    if cfg!(ph_break_isolation) {
        return;
    }
    // Deliberately broken build: the report is never recorded in the flags.
    let reported = reported && !cfg!(ph_break_mark);
    let n = blocks.len().min(c_uint::MAX as usize) as c_uint;
    // SAFETY: `blocks` holds isolated blocks that this caller owns (the
    // contract above), isolated in this section; process context.
    unsafe { bindings::free_page_hint_putback(blocks.as_ptr(), n, reported) };
}

/// Spills every CPU's per-CPU free lists into the buddy allocator, so that
/// pages freed a while ago can be isolated. Skipped if a drain is already
/// running. Process context; may sleep.
pub(crate) fn drain_pcp() {
    // SAFETY: `drain_all_pages(NULL)` has no preconditions beyond process
    // context (it takes a mutex), which the worker is.
    unsafe { bindings::drain_all_pages(core::ptr::null_mut()) };
}

/// Whether the host offers Hyper-V's cold-discard memory heat hint
/// (`HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT`). False when not running
/// on Hyper-V, or in a kernel without Hyper-V support.
pub(crate) fn hv_cold_discard_offered() -> bool {
    const HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT: u64 = 1 << 8;
    // SAFETY: `hv_query_ext_cap` checks that extended hypercalls exist
    // before it makes one, and returns false outside Hyper-V; process
    // context.
    unsafe { bindings::hv_query_ext_cap(HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT) }
}

/// Issues `HvExtCallMemoryHeatHint` with the entries `fill` writes into
/// this CPU's hypercall input page (after the `hv_memory_hint` header),
/// with interrupts off as the input page requires. `fill` gets the entry
/// slots and returns how many it filled. `Err` carries the hypercall
/// status (`u16::MAX`: no input page).
pub(crate) fn hv_heat_hint(
    fill: impl FnOnce(&mut [u64; crate::hv::MAX_RANGES]) -> usize,
) -> core::result::Result<(), u16> {
    const HV_EXT_CALL_MEMORY_HEAT_HINT: u16 = 0x8003;
    const HV_HYPERCALL_RESULT_MASK: u64 = 0xffff;
    let irq = IrqOff::new();
    // SAFETY: interrupts are off, so this CPU's input page is ours until
    // `irq` drops; the helper returns null if there is none.
    let page = unsafe { bindings::hv_input_page() }.cast::<u64>();
    if page.is_null() {
        return Err(u16::MAX);
    }
    // SAFETY: the input page is HV_HYP_PAGE_SIZE (4096) bytes, 8-byte
    // aligned, and ours (above): the header and `MAX_RANGES` entries,
    // 8 + 511 * 8 bytes, fit.
    let slots = unsafe {
        page.write(crate::hv::HINT_COLD_DISCARD);
        &mut *page.add(1).cast::<[u64; crate::hv::MAX_RANGES]>()
    };
    let n = fill(slots).min(crate::hv::MAX_RANGES);
    if n == 0 {
        return Ok(());
    }
    // SAFETY: the input page holds a valid heat hint of `n` entries; the
    // call has no output; interrupts are off (above).
    let status = unsafe {
        bindings::hv_do_rep_hypercall(
            HV_EXT_CALL_MEMORY_HEAT_HINT,
            n as u16,
            0,
            page.cast(),
            core::ptr::null_mut(),
        )
    };
    drop(irq);
    match status & HV_HYPERCALL_RESULT_MASK {
        0 => Ok(()),
        s => Err(s as u16),
    }
}

/// Total RAM pages the kernel manages.
pub(crate) fn totalram_pages() -> u64 {
    let mut si = core::mem::MaybeUninit::<bindings::sysinfo>::zeroed();
    // SAFETY: `si_meminfo` fills the struct we pass; zeroed is a valid start.
    unsafe { bindings::si_meminfo(si.as_mut_ptr()) };
    // SAFETY: fully initialised by zeroing and `si_meminfo`.
    let si = unsafe { si.assume_init() };
    si.totalram as u64 * si.mem_unit.max(1) as u64 / kernel::page::PAGE_SIZE as u64
}

/// Free pages in the system (`NR_FREE_PAGES`).
#[cfg(CONFIG_KUNIT)]
pub(crate) fn nr_free_pages() -> u64 {
    // SAFETY: reads a vmstat counter.
    unsafe { bindings::global_zone_page_state(bindings::zone_stat_item_NR_FREE_PAGES) as u64 }
}

/// The current pageblock order (host huge page order on x86).
pub(crate) fn pageblock_order() -> u32 {
    bindings::PAGEBLOCK_ORDER
}

/// The migratetype of the pageblock holding `pfn` (tests).
#[cfg(CONFIG_KUNIT)]
pub(crate) fn pageblock_migratetype(pfn: u64) -> i32 {
    // SAFETY: callers pass pfns of blocks they allocated, which have a
    // memmap; the pageblock flags are read without a lock (a racy look).
    unsafe { bindings::get_pageblock_migratetype(bindings::pfn_to_page(pfn as c_ulong)) }
}

/// `MIGRATE_MOVABLE`.
#[cfg(CONFIG_KUNIT)]
pub(crate) const MIGRATE_MOVABLE: i32 = bindings::migratetype_MIGRATE_MOVABLE as i32;

/// Splits an allocated block of `order` at `pfn` into single pages (tests):
/// from now on each of its pages is freed on its own, with
/// [`free_split_pages`].
///
/// # Safety
///
/// `pfn` is the first pfn of a block of `order` the caller allocated and
/// owns, not split before.
#[cfg(CONFIG_KUNIT)]
pub(crate) unsafe fn split_block(pfn: u64, order: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::split_page(bindings::pfn_to_page(pfn as c_ulong), order) };
}

/// Frees the single pages `[start, end)` of a block [`split_block`] split
/// (tests).
///
/// # Safety
///
/// Each pfn is a page of a split block the caller owns, freed once, here.
#[cfg(CONFIG_KUNIT)]
pub(crate) unsafe fn free_split_pages(start: u64, end: u64) {
    for pfn in start..end {
        // SAFETY: guaranteed by the caller.
        unsafe { bindings::__free_pages(bindings::pfn_to_page(pfn as c_ulong), 0) };
    }
}

/// Lets other tasks run if this one has used its slice (worker loops).
#[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
pub(crate) fn cond_resched() {
    // SAFETY: called from the worker, a sleepable context.
    unsafe { bindings::__cond_resched() };
}

/// On a fully preemptible kernel without dynamic preemption (PREEMPT_RT,
/// PREEMPT) the scheduler preempts the worker itself, and C's
/// `cond_resched()` is a no-op there, `__cond_resched()` not even declared.
#[cfg(not(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC)))]
pub(crate) fn cond_resched() {}

/// Sleeps for at least `ms` milliseconds. Process context only.
pub(crate) fn msleep(ms: u32) {
    // SAFETY: no memory is involved; the callers (the worker, tests and
    // the test transport) run in process context, where sleeping is
    // allowed.
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

/// A registered dynamic CPU hotplug state; removed on drop.
pub(crate) struct CpuHotplug(c_int);

/// A CPU hotplug callback.
pub(crate) type CpuFn = unsafe extern "C" fn(cpu: c_uint) -> c_int;

impl CpuHotplug {
    /// Registers `dead`, called on a control CPU after a CPU went offline,
    /// without calling it for CPUs that are already down.
    pub(crate) fn new_dead(name: &'static CStr, dead: CpuFn) -> Result<Self> {
        // SAFETY: `name` is static; the callback is a static function that
        // stays valid until the state is removed on drop.
        let ret = unsafe {
            bindings::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_BP_PREPARE_DYN,
                name.as_char_ptr() as *const c_char,
                false,
                None,
                Some(dead),
                false,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(CpuHotplug(ret))
    }
}

impl Drop for CpuHotplug {
    fn drop(&mut self) {
        // SAFETY: removes the state we set up; no callback runs afterwards.
        unsafe { bindings::__cpuhp_remove_state(self.0 as bindings::cpuhp_state, false) };
    }
}

/// A block of pages allocated from the buddy allocator, freed on drop
/// (test helper).
///
/// # Invariants
///
/// `page` is an allocated block of order `order` that this value owns.
#[cfg(CONFIG_KUNIT)]
pub(crate) struct OwnedBlock {
    page: NonNull<bindings::page>,
    order: u32,
}

/// How a test allocates.
#[cfg(CONFIG_KUNIT)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alloc {
    /// `GFP_KERNEL`: may reclaim.
    Normal,
    /// Fails fast and quietly instead of reclaiming hard ("allocate
    /// everything" loops).
    NoRetry,
    /// As `NoRetry`, and ignores the watermarks (`__GFP_MEMALLOC`), so a
    /// loop can empty a free list down to its last block. Only for tests
    /// that give everything back at once.
    Reserves,
}

#[cfg(CONFIG_KUNIT)]
impl OwnedBlock {
    /// Allocates a block of `order` the way `how` says.
    pub(crate) fn alloc(order: u32, how: Alloc) -> Option<Self> {
        let mut gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;
        match how {
            Alloc::Normal => {}
            Alloc::NoRetry => gfp |= 1 << bindings::___GFP_NORETRY_BIT,
            Alloc::Reserves => {
                gfp |= (1 << bindings::___GFP_NORETRY_BIT) | (1 << bindings::___GFP_MEMALLOC_BIT)
            }
        }
        // SAFETY: process context (KUnit tests), valid flags.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: non-null is a block of `order` we now own.
        Some(OwnedBlock {
            page: NonNull::new(page)?,
            order,
        })
    }

    /// The block's order.
    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    /// The block's first pfn.
    pub(crate) fn pfn(&self) -> u64 {
        // SAFETY: a valid page (type invariant).
        unsafe { bindings::page_to_pfn(self.page.as_ptr()) as u64 }
    }

    /// Writes `v` into the first 8 bytes of the block.
    pub(crate) fn write_u64(&self, v: u64) {
        // SAFETY: we own the page; the mapping is used and dropped here.
        unsafe {
            let p = bindings::kmap_local_page(self.page.as_ptr()) as *mut u64;
            p.write(v);
            bindings::kunmap_local(p as *const c_void);
        }
    }

    /// Reads the first 8 bytes of the block.
    pub(crate) fn read_u64(&self) -> u64 {
        // SAFETY: as for `write_u64`.
        unsafe {
            let p = bindings::kmap_local_page(self.page.as_ptr()) as *const u64;
            let v = p.read();
            bindings::kunmap_local(p as *const c_void);
            v
        }
    }

    /// Takes back ownership of a block from its pfn and order.
    ///
    /// # Safety
    ///
    /// `pfn` must be the first pfn of an allocated block of `order` whose
    /// owner gave it up (e.g. with [`OwnedBlock::leak`]).
    pub(crate) unsafe fn from_pfn(pfn: u64, order: u32) -> Self {
        // SAFETY: an allocated block has a memmap entry.
        let page = unsafe { bindings::pfn_to_page(pfn as c_ulong) };
        // INVARIANT: guaranteed by the caller.
        OwnedBlock {
            // SAFETY: `pfn_to_page` of a valid pfn is not null.
            page: unsafe { NonNull::new_unchecked(page) },
            order,
        }
    }

    /// Gives up ownership without freeing; returns the pfn.
    pub(crate) fn leak(self) -> u64 {
        let pfn = self.pfn();
        core::mem::forget(self);
        pfn
    }
}

#[cfg(CONFIG_KUNIT)]
impl Drop for OwnedBlock {
    fn drop(&mut self) {
        // SAFETY: we own the block (type invariant) and free it once.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// Page state of `pfn` as the tests look at it (racy reads without the zone
/// lock, so only meaningful for pages nobody else touches).
#[cfg(CONFIG_KUNIT)]
pub(crate) struct PageState {
    pub(crate) buddy: bool,
    pub(crate) reported: bool,
    pub(crate) uptodate: bool,
}

/// Reads the state of the page at `pfn`, which must be a RAM pfn.
#[cfg(CONFIG_KUNIT)]
pub(crate) fn page_state(pfn: u64) -> PageState {
    // SAFETY: the tests only pass pfns of blocks they allocated, so the pfn
    // has a memmap entry; the helpers only read flags.
    unsafe {
        let p = bindings::pfn_to_page(pfn as c_ulong);
        PageState {
            buddy: bindings::PageBuddy(p),
            reported: bindings::PageReported(p),
            uptodate: bindings::PageUptodate(p),
        }
    }
}

/// Runs `f` on `cpu` in interrupt context (an IPI) and waits for it.
#[cfg(CONFIG_KUNIT)]
pub(crate) fn run_on_cpu<F: FnMut()>(cpu: u32, f: &mut F) -> Result {
    /// # Safety
    ///
    /// `info` points to an `F` that is valid and not otherwise used for the
    /// duration of the call.
    unsafe extern "C" fn tramp<F: FnMut()>(info: *mut c_void) {
        // SAFETY: guaranteed by the caller (`run_on_cpu` passes `f`).
        let f = unsafe { &mut *info.cast::<F>() };
        f();
    }
    let cpu = c_int::try_from(cpu).map_err(|_| EINVAL)?;
    // SAFETY: `wait` is 1, so the call returns only after `tramp` has run
    // and `f` (borrowed for the whole call) is used by nothing else meanwhile.
    let r = unsafe {
        bindings::smp_call_function_single(cpu, Some(tramp::<F>), (f as *mut F).cast(), 1)
    };
    to_result(r)
}

/// Takes `cpu` offline (as `echo 0 > .../cpuN/online` does).
#[cfg(CONFIG_KUNIT)]
pub(crate) fn cpu_down(cpu: u32) -> Result {
    // SAFETY: process context; the hotplug core checks `cpu`.
    to_result(unsafe { bindings::remove_cpu(cpu) })
}

/// Brings `cpu` back online.
#[cfg(CONFIG_KUNIT)]
pub(crate) fn cpu_up(cpu: u32) -> Result {
    // SAFETY: process context; the hotplug core checks `cpu`.
    to_result(unsafe { bindings::add_cpu(cpu) })
}

/// Whether `cpu` is online.
#[cfg(CONFIG_KUNIT)]
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: reads the online mask; `cpu` is checked against nr_cpu_ids.
    cpu < nr_cpu_ids() && unsafe { bindings::cpu_online(cpu) }
}
