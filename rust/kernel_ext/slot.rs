// SPDX-License-Identifier: GPL-2.0

//! [`ArcSlot`]: where a C callback that is handed no context finds the
//! object of the registration that installed it (the free page hint hook,
//! the CPU hotplug state, sysfs attributes, a virtio driver).

use core::{
    ffi::c_void,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// The address of the data of one `Arc`, or nothing. A registration claims
/// it with the `Arc` it keeps, and clears it once no callback can run any
/// more; the callbacks look it up.
///
/// # Invariants
///
/// Non-null, the pointer is the data of an `Arc<T>` that the claimer owns,
/// for the `T` it claimed with, until it clears the slot.
pub(crate) struct ArcSlot(AtomicPtr<c_void>);

impl ArcSlot {
    /// An empty slot, for a `static`.
    pub(crate) const fn new() -> Self {
        ArcSlot(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Puts the data address of `arc` in the slot; `EBUSY` if it is taken.
    /// The caller keeps `arc` until it calls [`ArcSlot::clear`].
    pub(crate) fn claim<T>(&self, arc: &Arc<T>) -> Result {
        // The data's address, which is what `Arc::into_raw` would return.
        let p = (&**arc as *const T).cast_mut().cast::<c_void>();
        // INVARIANT: the claimer keeps `arc` until it clears the slot.
        self.0
            .compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(|_| EBUSY)
    }

    /// Empties the slot.
    pub(crate) fn clear(&self) {
        self.0.store(core::ptr::null_mut(), Ordering::Release);
    }

    /// The object, if the slot is claimed.
    ///
    /// # Safety
    ///
    /// The slot was claimed with an `Arc<T>` of this `T`, and the claimer
    /// does not clear it (nor drop its `Arc`) while the returned borrow
    /// lives: call it from a callback that the claimer's unregistration
    /// waits for before it clears the slot.
    pub(crate) unsafe fn get<T>(&self) -> Option<ArcBorrow<'_, T>> {
        let p = self.0.load(Ordering::Acquire).cast::<T>();
        // SAFETY: non-null is the data of the claimer's `Arc<T>` (type
        // invariant), which outlives the borrow (the caller's contract).
        (!p.is_null()).then(|| unsafe { ArcBorrow::from_raw(p) })
    }

    /// The object, if the slot is claimed, as a plain reference: cheaper
    /// than [`ArcSlot::get`] (`ArcBorrow::from_raw` is an out-of-line call
    /// that computes the `Arc`'s layout), for the page free path.
    ///
    /// # Safety
    ///
    /// As for [`ArcSlot::get`].
    #[inline(always)]
    pub(crate) unsafe fn get_ref<T>(&self) -> Option<InArc<'_, T>> {
        let p = self.0.load(Ordering::Acquire).cast::<T>();
        // SAFETY: non-null is the data of the claimer's `Arc<T>` (type
        // invariant), which outlives the borrow (the caller's contract).
        // INVARIANT: so it is the data of an `Arc<T>` for the lifetime.
        (!p.is_null()).then(|| InArc(unsafe { &*p }))
    }
}

/// A reference to the data of an `Arc<T>`, which it can be turned back
/// into ([`InArc::arc`]) when a callback needs to keep or queue it.
///
/// # Invariants
///
/// The reference is the data of an `Arc<T>` that lives at least `'a`.
#[derive(Clone, Copy)]
pub(crate) struct InArc<'a, T>(&'a T);

impl<'a, T> InArc<'a, T> {
    /// The `Arc` the data belongs to, borrowed.
    pub(crate) fn arc(self) -> ArcBorrow<'a, T> {
        // SAFETY: the data of an `Arc<T>` that outlives 'a (type
        // invariant).
        unsafe { ArcBorrow::from_raw(self.0) }
    }
}

impl<T> core::ops::Deref for InArc<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        self.0
    }
}
