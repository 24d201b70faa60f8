// SPDX-License-Identifier: GPL-2.0

//! CPUs: per-CPU memory, an interrupts-off token, the possible CPUs and the
//! CPU hotplug "dead" callback.

use crate::kernel_ext::slot::ArcSlot;
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_uint, c_ulong},
    init::PinInit,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// The number of possible CPU ids (every CPU id is below it).
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: a variable set at boot, before modules load, and never again.
    unsafe { bindings::nr_cpu_ids }
}

/// Whether `cpu` is a possible CPU (it may be, or come, online).
pub(crate) fn possible(cpu: u32) -> bool {
    const BITS: u32 = c_ulong::BITS;
    if cpu >= nr_cpu_ids() {
        return false;
    }
    // SAFETY: the possible mask is set during boot, before modules load,
    // and never changes afterwards, so a plain read does not race; `cpu` is
    // below `nr_cpu_ids`, which is at most the mask's size.
    let word = unsafe {
        (*core::ptr::addr_of!(bindings::__cpu_possible_mask)).bits[(cpu / BITS) as usize]
    };
    word & (1 << (cpu % BITS)) != 0
}

/// The possible CPUs, in ascending order.
pub(crate) fn possible_cpus() -> impl Iterator<Item = u32> {
    (0..nr_cpu_ids()).filter(|&cpu| possible(cpu))
}

/// Interrupts are disabled on this CPU while this token lives; dropping it
/// restores the previous state. It is not `Send`: it must be dropped on the
/// CPU that made it.
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

/// One `T` for every possible CPU, in per-CPU memory (`alloc_percpu`),
/// each built in place by an initialiser.
///
/// # Invariants
///
/// `ptr` is a live per-CPU allocation of `size_of::<T>()` bytes aligned for
/// `T`, owned by this value, holding an initialised `T` for every possible
/// CPU. Per-CPU memory never moves: the values are pinned.
pub(crate) struct PerCpu<T: Sync> {
    ptr: NonNull<c_void>,
    _p: PhantomData<T>,
}

// SAFETY: the values are only shared (`&T`, and `T: Sync`), and dropped by
// the owner, from any thread, which needs `T: Send`.
unsafe impl<T: Sync + Send> Send for PerCpu<T> {}
// SAFETY: shared access only hands out `&T`, and `T: Sync`.
unsafe impl<T: Sync> Sync for PerCpu<T> {}

impl<T: Sync> PerCpu<T> {
    /// Allocates a `T` for every possible CPU and builds CPU `cpu`'s with
    /// the initialiser `init(cpu)` returns. If one fails, the ones built
    /// are dropped and the error is returned.
    pub(crate) fn new<I, E, F>(mut init: F) -> Result<Self>
    where
        F: FnMut(u32) -> Result<I>,
        I: PinInit<T, E>,
        Error: From<E>,
    {
        // SAFETY: plain allocation, process context (GFP_KERNEL).
        let p = unsafe {
            bindings::pcpu_alloc_noprof(
                core::mem::size_of::<T>().max(1),
                core::mem::align_of::<T>(),
                false,
                bindings::GFP_KERNEL,
            )
        };
        let ptr = NonNull::new(p).ok_or(ENOMEM)?;
        for (built, cpu) in possible_cpus().enumerate() {
            // SAFETY: `cpu` is a possible CPU, so its slot is part of the
            // allocation, valid for writes, aligned, and never moves.
            let slot = unsafe { bindings::per_cpu_ptr(ptr.as_ptr(), cpu) }.cast::<T>();
            let r = init(cpu).and_then(|i| {
                // SAFETY: the slot is uninitialised memory for a `T` that
                // stays in place until `drop_built` or `Drop` drops it.
                unsafe { i.__pinned_init(slot) }.map_err(Error::from)
            });
            if let Err(e) = r {
                // SAFETY: the first `built` possible CPUs hold initialised
                // values and the allocation is ours.
                unsafe { Self::drop_built(ptr, built) };
                return Err(e);
            }
        }
        // INVARIANT: every possible CPU's value was built.
        Ok(PerCpu {
            ptr,
            _p: PhantomData,
        })
    }

    /// Drops the values of the first `built` possible CPUs and frees the
    /// allocation.
    ///
    /// # Safety
    ///
    /// `ptr` is a per-CPU allocation owned by the caller whose first
    /// `built` possible CPUs hold initialised values nobody else uses.
    unsafe fn drop_built(ptr: NonNull<c_void>, built: usize) {
        for cpu in possible_cpus().take(built) {
            // SAFETY: initialised and unused (the caller's contract).
            unsafe {
                core::ptr::drop_in_place(bindings::per_cpu_ptr(ptr.as_ptr(), cpu).cast::<T>())
            };
        }
        // SAFETY: the allocation is the caller's, and no value in it is
        // live any more.
        unsafe { bindings::free_percpu(ptr.as_ptr()) };
    }

    /// The value of `cpu`, if it is a possible CPU.
    pub(crate) fn get(&self, cpu: u32) -> Option<&T> {
        if !possible(cpu) {
            return None;
        }
        // SAFETY: `cpu` is possible, so its value is initialised (type
        // invariant) and lives as long as `self`.
        Some(unsafe { &*bindings::per_cpu_ptr(self.ptr.as_ptr(), cpu).cast::<T>() })
    }

    /// Every possible CPU's id and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        possible_cpus().filter_map(move |cpu| self.get(cpu).map(|v| (cpu, v)))
    }

    /// The per-CPU pointer of the values, for a C API that takes one (what
    /// `alloc_percpu()` returns); valid as long as `self`.
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.ptr.as_ptr()
    }

    /// The value of the CPU this runs on. Interrupts are off (the token)
    /// so the task cannot migrate while it uses the reference.
    pub(crate) fn this_cpu<'a>(&'a self, _irq: &'a IrqOff) -> &'a T {
        // SAFETY: interrupts are off, so the CPU does not change while the
        // reference lives; the running CPU is possible, so its value is
        // initialised (type invariant).
        unsafe { &*bindings::this_cpu_ptr(self.ptr.as_ptr()).cast::<T>() }
    }
}

impl<T: Sync> Drop for PerCpu<T> {
    fn drop(&mut self) {
        // SAFETY: every possible CPU holds a value (type invariant), and
        // `&mut self` means no reference into them is left.
        unsafe { Self::drop_built(self.ptr, usize::MAX) };
    }
}

/// What a CPU hotplug registration calls.
pub(crate) trait CpuDead: Send + Sync + 'static {
    /// CPU `cpu` went offline (called on a control CPU, process context).
    fn dead(this: ArcBorrow<'_, Self>, cpu: u32);
}

/// The data of the one [`CpuDeadHook`] registered, or null.
static DEAD_DATA: ArcSlot = ArcSlot::new();

/// A dynamic CPU hotplug state whose teardown calls `T::dead`; removed on
/// drop. One can be registered at a time (`EBUSY` otherwise).
///
/// # Invariants
///
/// `state` is a registered dynamic state whose teardown is
/// `dead_tramp::<T>`, and `DEAD_DATA` is claimed with `data` until drop.
pub(crate) struct CpuDeadHook<T: CpuDead> {
    state: c_int,
    data: Arc<T>,
}

/// # Safety
///
/// Only the CPU hotplug core calls it, while the state of the
/// [`CpuDeadHook<T>`] that set `DEAD_DATA` is registered.
unsafe extern "C" fn dead_tramp<T: CpuDead>(cpu: c_uint) -> c_int {
    // SAFETY: `DEAD_DATA` was claimed with the `Arc<T>` of the
    // registration whose state calls this function for this `T` (type
    // invariant); it is cleared only after the state was removed, which
    // waits for this callback.
    if let Some(data) = unsafe { DEAD_DATA.get::<T>() } {
        T::dead(data, cpu);
    }
    0
}

impl<T: CpuDead> CpuDeadHook<T> {
    /// Registers `data`'s `dead`, without calling it for CPUs that are
    /// already down.
    pub(crate) fn new(name: &'static CStr, data: Arc<T>) -> Result<Self> {
        DEAD_DATA.claim(&data)?;
        // SAFETY: `name` is static; the callback is a function of this
        // module, which stays loaded until the state is removed on drop.
        let ret = unsafe {
            bindings::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_BP_PREPARE_DYN,
                name.as_char_ptr() as *const c_char,
                false,
                None,
                Some(dead_tramp::<T>),
                false,
            )
        };
        if ret < 0 {
            DEAD_DATA.clear();
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered, and `DEAD_DATA` points at `data`.
        Ok(CpuDeadHook { state: ret, data })
    }
}

impl<T: CpuDead> Drop for CpuDeadHook<T> {
    fn drop(&mut self) {
        // SAFETY: removes the state we set up (type invariant); when it
        // returns no callback runs any more.
        unsafe { bindings::__cpuhp_remove_state(self.state as bindings::cpuhp_state, false) };
        DEAD_DATA.clear();
        let _ = &self.data;
    }
}
