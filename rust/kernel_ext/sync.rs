// SPDX-License-Identifier: GPL-2.0

//! Locking: a raw spinlock held with interrupts off, as a [`Backend`] of
//! the kernel crate's [`Lock`], lock class keys for the C objects that want
//! one, and a wait queue.
//!
//! The capture lock is taken in the page free path, in any context that
//! frees pages, so it is a `raw_spinlock_t` (a `spinlock_t` sleeps on
//! PREEMPT_RT) taken with interrupts off (a free from an interrupt handler
//! on the same CPU must not find it held). Lock order: see the module
//! documentation of [`crate::kernel_ext`].

use super::cpu::IrqOff;
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_long},
    init::PinInit,
    prelude::*,
    sync::{
        lock::{Backend, Guard, Lock},
        LockClassKey,
    },
    types::Opaque,
};

/// The backend of [`IrqsOffLock`]: `raw_spin_lock()` alone. Interrupts are
/// off around every use: [`IrqsOffLock::lock`] takes the token that proves
/// it.
pub(crate) struct RawSpinLockBackend;

// SAFETY: a raw spinlock gives one CPU at a time the lock between `lock`
// and `unlock`; `relock` (the default) uses `lock`, the same method.
unsafe impl Backend for RawSpinLockBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    unsafe fn init(ptr: *mut Self::State, name: *const c_char, key: *mut bindings::lock_class_key) {
        // SAFETY: the caller (`Lock::new`) passes a slot valid for writes
        // and a static name and key, as lockdep requires.
        unsafe { bindings::raw_spin_lock_init_key(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller guarantees `init` was called.
        unsafe { bindings::raw_spin_lock(ptr) };
    }

    unsafe fn unlock(ptr: *mut Self::State, (): &Self::GuardState) {
        // SAFETY: the caller owns the lock.
        unsafe { bindings::raw_spin_unlock(ptr) };
    }
}

/// A spinlock protecting a `T` that may be taken in any context, the page
/// free path included: a raw spinlock, only ever held with interrupts off
/// (a free from an interrupt handler on the same CPU must not find it
/// held). [`IrqsOffLock::lock`] borrows an [`IrqOff`] token for as long as
/// the guard lives, so a caller that has interrupts off already (the free
/// hook) does not save and restore them a second time.
#[pin_data]
pub(crate) struct IrqsOffLock<T> {
    #[pin]
    inner: Lock<T, RawSpinLockBackend>,
}

impl<T> IrqsOffLock<T> {
    /// An initialiser for a lock holding `data`; see [`new_irqs_off_lock`].
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
    ) -> impl PinInit<Self> {
        pin_init!(IrqsOffLock {
            inner <- Lock::new(data, name, key),
        })
    }

    /// Takes the lock; interrupts stay off (`irq`) until the guard is gone.
    pub(crate) fn lock<'a>(&'a self, _irq: &'a IrqOff) -> Guard<'a, T, RawSpinLockBackend> {
        self.inner.lock()
    }
}

/// An initialiser for an [`IrqsOffLock`] holding `inner`, with a lock class
/// of its own for each place this macro is written.
macro_rules! new_irqs_off_lock {
    ($inner:expr, $name:literal) => {
        $crate::kernel_ext::sync::IrqsOffLock::new(
            $inner,
            ::kernel::c_str!($name),
            ::kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irqs_off_lock;

/// A lockdep class key for the C objects that take one (work items, wait
/// queues). Only meaningful in a `static`, as lockdep requires; see
/// [`static_key`].
pub(crate) struct LockKey(Opaque<bindings::lock_class_key>);

// SAFETY: lockdep only uses the key's address and synchronises internally.
unsafe impl Sync for LockKey {}

impl LockKey {
    /// A key, for a `static`.
    pub(crate) const fn new() -> Self {
        LockKey(Opaque::uninit())
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::lock_class_key {
        self.0.get()
    }
}

/// A `&'static LockKey` of its own for each place this macro is written.
macro_rules! static_key {
    () => {{
        static KEY: $crate::kernel_ext::sync::LockKey = $crate::kernel_ext::sync::LockKey::new();
        &KEY
    }};
}
pub(crate) use static_key;

/// A wait queue: a task sleeps until a condition holds; another context (an
/// interrupt handler included) wakes it.
///
/// # Invariants
///
/// `head` was initialised by the constructor and never moves (pinned).
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: the head has its own lock; every operation goes through it.
unsafe impl Sync for WaitQueue {}
// SAFETY: as above; a wait queue has no owner thread.
unsafe impl Send for WaitQueue {}

impl WaitQueue {
    /// An initialiser for an empty wait queue.
    pub(crate) fn new(name: &'static CStr, key: &'static LockKey) -> impl PinInit<Self> {
        pin_init!(WaitQueue {
            // SAFETY: `slot` is valid for writes and nobody uses it before
            // the initialiser returns; `name` and `key` are static.
            head <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    /// Wakes every waiter. Any context.
    pub(crate) fn wake_all(&self) {
        // SAFETY: initialised (type invariant); `__wake_up` takes the head's
        // lock with interrupts off.
        unsafe {
            bindings::__wake_up(
                self.head.get(),
                bindings::TASK_NORMAL,
                0,
                core::ptr::null_mut(),
            )
        };
    }

    /// Sleeps until `cond` returns true or `timeout_ms` passed; returns the
    /// last value of `cond`. `cond` is checked after the task is queued, so
    /// a wake-up between the check and the sleep is not lost. Process
    /// context.
    pub(crate) fn wait_until(&self, timeout_ms: u32, mut cond: impl FnMut() -> bool) -> bool {
        let entry = Opaque::<bindings::wait_queue_entry>::uninit();
        // SAFETY: `entry` is a local that does not move until `finish_wait`
        // took it off the queue below.
        unsafe { bindings::init_wait_entry(entry.get(), 0) };
        // SAFETY: no precondition.
        let mut left = unsafe { bindings::__msecs_to_jiffies(timeout_ms) } as c_long;
        let ok = loop {
            // SAFETY: head initialised (type invariant), entry initialised
            // above; process context (the caller's contract).
            unsafe {
                bindings::prepare_to_wait_event(
                    self.head.get(),
                    entry.get(),
                    bindings::TASK_UNINTERRUPTIBLE as c_int,
                )
            };
            if cond() {
                break true;
            }
            if left <= 0 {
                break false;
            }
            // SAFETY: process context; the task state was set above.
            left = unsafe { bindings::schedule_timeout(left) };
        };
        // SAFETY: as for `prepare_to_wait_event`.
        unsafe { bindings::finish_wait(self.head.get(), entry.get()) };
        ok
    }
}
