// SPDX-License-Identifier: GPL-2.0

//! Work: an owned ordered workqueue, and [`Worked`], an object with `N`
//! delayed work items of its own that run its [`WorkHandler`].
//!
//! 6.12's `kernel::workqueue` has no delayed work and no owned queue. As in
//! upstream's `workqueue.rs`, a queued item owns a reference to its object
//! (an [`Arc`]): the object cannot go away while an item is queued or
//! running, and the item needs no `'static` pointer to find it. The items
//! are embedded in the object, which this module lays out itself, so no
//! user writes an offset.

use kernel::{
    bindings, c_str,
    ffi::c_int,
    init::{self, PinInit},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::Opaque,
};

/// An ordered workqueue owned by the module: its items run one at a time.
///
/// # Invariants
///
/// `0` is a live workqueue, destroyed on drop.
pub(crate) struct Workqueue(core::ptr::NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues are made for use from any CPU and context.
unsafe impl Send for Workqueue {}
// SAFETY: as above.
unsafe impl Sync for Workqueue {}

impl Workqueue {
    /// Creates an ordered workqueue called `name`. It is freezable: during
    /// suspend and hibernation no item runs (the queue is drained before
    /// devices suspend, and items queued meanwhile wait for the thaw).
    pub(crate) fn new_ordered_freezable(name: &'static CStr) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND
            | bindings::wq_flags___WQ_ORDERED
            | bindings::wq_flags_WQ_MEM_RECLAIM
            | bindings::wq_flags_WQ_FREEZABLE;
        // SAFETY: "%s" with a NUL-terminated string; max_active 1 for an
        // ordered queue; process context.
        let wq = unsafe {
            bindings::alloc_workqueue(c_str!("%s").as_char_ptr(), flags, 1, name.as_char_ptr())
        };
        // INVARIANT: non-null means a live workqueue.
        Ok(Workqueue(core::ptr::NonNull::new(wq).ok_or(ENOMEM)?))
    }

    /// Waits until every item queued so far has run. Process context.
    pub(crate) fn flush(&self) {
        // SAFETY: live workqueue (type invariant); process context.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: live (type invariant); `destroy_workqueue` drains it first.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// The work items of a [`Worked`] object call this.
pub(crate) trait WorkHandler<const N: usize>: Send + Sync + Sized + 'static {
    /// Item `id` (below `N`) of `this` runs (process context, on the
    /// object's workqueue).
    fn run(this: ArcBorrow<'_, Worked<Self, N>>, id: usize);
}

/// One delayed work item of a [`Worked`], with its index.
#[repr(C)]
#[pin_data]
struct Slot {
    /// First, so that the `work_struct` a work function gets points here.
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
    id: usize,
}

/// A `T` with `N` delayed work items that run `T::run` on `wq`, always
/// owned by an [`Arc`]: a queued item holds a reference.
///
/// # Invariants
///
/// Every slot was initialised by the constructor with `work_tramp::<T,
/// N>` and holds its own index. While an item is pending it owns one
/// reference of the `Arc` the object lives in (taken by `queue`, given back
/// by the work function, or by whoever cancels it).
#[repr(C)]
#[pin_data]
pub(crate) struct Worked<T: WorkHandler<N>, const N: usize> {
    #[pin]
    slots: [Slot; N],
    wq: Workqueue,
    /// The object.
    #[pin]
    pub(crate) data: T,
}

// SAFETY: the work items are used from any CPU by design; `T: Send + Sync`.
unsafe impl<T: WorkHandler<N>, const N: usize> Send for Worked<T, N> {}
// SAFETY: as above.
unsafe impl<T: WorkHandler<N>, const N: usize> Sync for Worked<T, N> {}

impl<T: WorkHandler<N>, const N: usize> core::ops::Deref for Worked<T, N> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// # Safety
///
/// Only the workqueue calls it, with the `work_struct` of a pending item of
/// a `Worked<T, N>`, which owns a reference (type invariant).
unsafe extern "C" fn work_tramp<T: WorkHandler<N>, const N: usize>(w: *mut bindings::work_struct) {
    let slot = w.cast::<Slot>();
    // SAFETY: `w` is the first field of the `delayed_work` that is the
    // first field of a `Slot` (`repr(C)`), so `slot` points at that slot;
    // its `id` was set by the constructor.
    let id = unsafe { (*slot).id };
    // SAFETY: slot `id` of `slots`, which is the first field of the
    // `repr(C)` `Worked`: subtracting its offset gives the object.
    let this = unsafe {
        slot.cast::<u8>()
            .sub(core::mem::offset_of!(Worked<T, N>, slots) + id * core::mem::size_of::<Slot>())
            .cast::<Worked<T, N>>()
    };
    // SAFETY: the pending item owned a reference (type invariant), which
    // passes to this `Arc` and is dropped when the handler returns.
    let arc = unsafe { Arc::from_raw(this) };
    T::run(arc.as_arc_borrow(), id);
}

impl<T: WorkHandler<N>, const N: usize> Worked<T, N> {
    /// An initialiser for `data` with `N` idle work items that run on `wq`.
    pub(crate) fn new(wq: Workqueue, init: impl PinInit<T, Error>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            slots <- init::pin_init_array_from_fn(|id| {
                pin_init!(Slot {
                    // SAFETY: the slot is valid for writes and unused until
                    // the initialiser returns; the function is this
                    // module's, and the items are cancelled (`disable`)
                    // before the module goes.
                    dwork <- Opaque::ffi_init(|slot: *mut bindings::delayed_work| unsafe {
                        bindings::init_delayed_work(slot, Some(work_tramp::<T, N>))
                    }),
                    id,
                })
            }),
            wq,
            data <- init,
        }? Error)
    }

    fn dwork(&self, id: usize) -> *mut bindings::delayed_work {
        self.slots[id].dwork.get()
    }

    /// Queues item `id` to run after `delay_ms` (0: now) unless it is
    /// already pending. Any context, interrupts off included; cheap when it
    /// is pending. Returns whether it was queued.
    pub(crate) fn queue(this: ArcBorrow<'_, Self>, id: usize, delay_ms: u32) -> bool {
        if id >= N {
            return false;
        }
        // The reference the item owns while pending.
        let r = Arc::into_raw(Arc::from(this));
        // SAFETY: no precondition.
        let jiffies = unsafe { bindings::__msecs_to_jiffies(delay_ms) };
        // SAFETY: the item was initialised (type invariant) and the queue
        // is live; `queue_delayed_work_on` may be called in any context.
        let queued = unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                this.wq.0.as_ptr(),
                this.dwork(id),
                jiffies,
            )
        };
        if !queued {
            // SAFETY: not queued, so the reference taken above is still
            // ours; the caller's `this` keeps it from being the last one.
            drop(unsafe { Arc::from_raw(r) });
        }
        queued
    }

    /// Queues item `id` to run after `delay_ms`, or sooner if it is already
    /// pending for later (it is then moved). Any context.
    pub(crate) fn queue_within(this: ArcBorrow<'_, Self>, id: usize, delay_ms: u32) {
        if id >= N {
            return;
        }
        // SAFETY: initialised item; `cancel_delayed_work` may be called in
        // any context and does not wait for a running instance.
        if unsafe { bindings::cancel_delayed_work(this.dwork(id)) } {
            // SAFETY: a pending item was cancelled: the reference it owned
            // is ours (type invariant); the caller's `this` keeps it from
            // being the last one.
            drop(unsafe { Arc::from_raw(&*this as *const Self) });
        }
        Self::queue(this, id, delay_ms);
    }

    /// Cancels item `id` if it is pending and waits for a running instance.
    /// Process context.
    #[cfg(ph_tests)]
    pub(crate) fn cancel(this: ArcBorrow<'_, Self>, id: usize) {
        if id >= N {
            return;
        }
        // SAFETY: initialised item; process context.
        if unsafe { bindings::cancel_delayed_work_sync(this.dwork(id)) } {
            // SAFETY: a pending item was cancelled: its reference is ours,
            // and `this` keeps it from being the last one.
            drop(unsafe { Arc::from_raw(&*this as *const Self) });
        }
    }

    /// Waits until everything queued on the object's workqueue has run.
    pub(crate) fn flush_queue(&self) {
        self.wq.flush();
    }

    /// Cancels every item and keeps it from being queued again; waits for
    /// running ones. Afterwards no item of the object runs, so nothing of
    /// this module is called from the workqueue. Process context.
    pub(crate) fn disable(this: ArcBorrow<'_, Self>) {
        for id in 0..N {
            // SAFETY: initialised item; process context.
            if unsafe { bindings::disable_delayed_work_sync(this.dwork(id)) } {
                // SAFETY: a pending item was cancelled: its reference is
                // ours, and `this` keeps it from being the last one.
                drop(unsafe { Arc::from_raw(&*this as *const Self) });
            }
        }
    }
}
