// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers around the C virtio API, for the one virtio driver
//! this module has (the balloon device's free page reporting queue), and a
//! wait queue to sleep on until the host answers. 6.12's `kernel` crate has
//! no virtio support.
//!
//! Like `sys.rs`, this file holds `unsafe` blocks only as thin wrappers, each
//! with the argument for why it is sound.

use crate::sys::{LockKey, Zeroed};
use core::{cell::UnsafeCell, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_long, c_uint, c_void},
    prelude::*,
    types::Opaque,
};

/// A wait queue: a task sleeps until a condition holds, an interrupt handler
/// wakes it.
///
/// # Invariants
///
/// The head was initialised by [`WaitQueue::init`] before any other use.
pub(crate) struct WaitQueue(Opaque<bindings::wait_queue_head>);

// SAFETY: the wait queue head has its own lock; every operation goes through
// it.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// An uninitialised wait queue; only meaningful in a `static`.
    pub(crate) const fn new() -> Self {
        WaitQueue(Opaque::uninit())
    }

    /// Initialises the head; call once, before any waiter or waker can
    /// reach it.
    pub(crate) fn init(&self, name: &'static CStr, key: &'static LockKey) {
        // SAFETY: the head is not in use yet (caller), `name` and `key` are
        // static.
        unsafe { bindings::__init_waitqueue_head(self.0.get(), name.as_char_ptr(), key.as_ptr()) };
    }

    /// Wakes every waiter. Any context.
    pub(crate) fn wake_all(&self) {
        // SAFETY: initialised (type invariant); `__wake_up` takes the head's
        // lock with interrupts off.
        unsafe {
            bindings::__wake_up(
                self.0.get(),
                bindings::TASK_NORMAL,
                0,
                core::ptr::null_mut(),
            )
        };
    }

    /// Sleeps until `cond` returns true or `timeout_ms` passed; returns the
    /// last value of `cond`. `cond` is checked after the task is queued, so
    /// a wake-up between the check and the sleep is not lost.
    pub(crate) fn wait_until(&self, timeout_ms: u32, mut cond: impl FnMut() -> bool) -> bool {
        let entry = Opaque::<bindings::wait_queue_entry>::uninit();
        // SAFETY: `entry` is a local that does not move until `finish_wait`
        // took it off the queue below.
        unsafe { bindings::init_wait_entry(entry.get(), 0) };
        // SAFETY: no precondition.
        let mut left = unsafe { bindings::__msecs_to_jiffies(timeout_ms) } as c_long;
        let ok = loop {
            // SAFETY: head initialised (type invariant), entry initialised
            // above; process context (callers are the worker and probe).
            unsafe {
                bindings::prepare_to_wait_event(
                    self.0.get(),
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
        unsafe { bindings::finish_wait(self.0.get(), entry.get()) };
        ok
    }
}

/// A virtio device, valid from the driver's `probe` to the end of its
/// `remove` (the device core guarantees both run in order, once).
///
/// # Invariants
///
/// `0` points to a live `virtio_device` bound to this module's driver.
#[derive(Clone, Copy)]
pub(crate) struct Device(NonNull<bindings::virtio_device>);

// SAFETY: the virtio core serialises probe/remove; the operations used from
// other threads (config writes, feature tests, virtqueue calls) are safe to
// call from any process context.
unsafe impl Send for Device {}
// SAFETY: as above.
unsafe impl Sync for Device {}

impl Device {
    /// Whether feature bit `bit` was negotiated (or, in `validate`, offered).
    pub(crate) fn has_feature(&self, bit: u32) -> bool {
        // SAFETY: live device (type invariant).
        unsafe { bindings::virtio_has_feature(self.0.as_ptr(), bit) }
    }

    /// Declines an offered feature; only meaningful in `validate`.
    pub(crate) fn clear_feature(&self, bit: u32) {
        // SAFETY: live device; in `validate` the features are not final yet
        // and only this driver looks at them.
        unsafe { bindings::__virtio_clear_bit(self.0.as_ptr(), bit) };
    }

    /// Writes a 32-bit field of the device's config space.
    pub(crate) fn write_config_u32(&self, offset: usize, val: u32) {
        // SAFETY: live device; the virtio core checks the access against the
        // config space size.
        unsafe { bindings::virtio_cwrite32(self.0.as_ptr(), offset as c_uint, val) };
    }

    /// Finds the virtqueues, in the device's order: `names[i]` is `None` for
    /// a queue whose feature was not negotiated (it then takes no index).
    /// Queues get `callback` as their interrupt handler.
    pub(crate) fn find_vqs<const N: usize>(
        &self,
        names: [Option<&'static CStr>; N],
        callback: VqCallback,
    ) -> Result<[Option<Virtqueue>; N]> {
        let mut info: [bindings::virtqueue_info; N] =
            // SAFETY: all-zero is a valid `virtqueue_info` (null name,
            // no callback).
            unsafe { core::mem::zeroed() };
        for (i, n) in info.iter_mut().zip(names) {
            if let Some(n) = n {
                i.name = n.as_char_ptr();
                i.callback = Some(callback);
            }
        }
        let mut vqs = [core::ptr::null_mut::<bindings::virtqueue>(); N];
        // SAFETY: live device in probe (the caller's context); both arrays
        // hold `N` entries.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.0.as_ptr(),
                N as c_uint,
                vqs.as_mut_ptr(),
                info.as_mut_ptr(),
                core::ptr::null_mut(),
            )
        })?;
        // INVARIANT: non-null pointers are queues of this device, valid
        // until `del_vqs`.
        Ok(vqs.map(|q| NonNull::new(q).map(Virtqueue)))
    }

    /// Lets the device run (DRIVER_OK); after `find_vqs`.
    pub(crate) fn ready(&self) {
        // SAFETY: live device in probe.
        unsafe { bindings::virtio_device_ready(self.0.as_ptr()) };
    }

    /// Resets the device. The device has stopped reading and writing the
    /// buffers it was given only once its status reads 0 again: see
    /// [`Device::reset_confirmed`].
    pub(crate) fn reset(&self) {
        // SAFETY: live device; process context (probe error path, remove).
        unsafe { bindings::virtio_reset_device(self.0.as_ptr()) };
    }

    /// Resets the device and waits, at most `timeout_ms`, until its status
    /// reads 0, which is how a device says the reset is complete (virtio
    /// 1.2, 2.1.2: the driver must wait for that before it reinitialises
    /// the device). virtio-pci's reset already waits; virtio-mmio's only
    /// writes the register. Returns whether the device confirmed.
    pub(crate) fn reset_confirmed(&self, timeout_ms: u32) -> bool {
        self.reset();
        for _ in 0..=timeout_ms {
            // SAFETY: live device; `config` is set by the transport for
            // every device it registers, and `get_status` is mandatory.
            let status = unsafe {
                let dev = self.0.as_ptr();
                match (*(*dev).config).get_status {
                    Some(get) => get(dev),
                    None => return false,
                }
            };
            if status == 0 {
                return true;
            }
            crate::sys::msleep(1);
        }
        false
    }

    /// Deletes the virtqueues.
    ///
    /// # Safety
    ///
    /// The device was reset and no [`Virtqueue`] of it is used any more.
    pub(crate) unsafe fn del_vqs(&self) {
        // SAFETY: guaranteed by the caller.
        unsafe { bindings::virtio_del_vqs(self.0.as_ptr()) };
    }
}

/// A virtqueue interrupt handler.
pub(crate) type VqCallback = unsafe extern "C" fn(*mut bindings::virtqueue);

/// A virtqueue of a [`Device`].
///
/// # Invariants
///
/// `0` is a queue returned by `virtio_find_vqs`, valid until the device's
/// `del_vqs` (whose caller guarantees no `Virtqueue` is used afterwards).
pub(crate) struct Virtqueue(NonNull<bindings::virtqueue>);

// SAFETY: virtqueue calls need external serialisation only, which `&mut`
// gives; the queue can be used from any process context.
unsafe impl Send for Virtqueue {}

impl Virtqueue {
    /// Ring entries.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: valid queue (type invariant).
        unsafe { bindings::virtqueue_get_vring_size(self.0.as_ptr()) }
    }

    /// Makes the first `n` entries of `sg` available for the device to
    /// write (an "in" buffer), then notifies it.
    ///
    /// # Safety
    ///
    /// The memory `sg` describes must stay valid, and not be used by the
    /// kernel, until the device gave the buffer back ([`Virtqueue::get_buf`])
    /// or was reset.
    pub(crate) unsafe fn add_inbuf_kick<const N: usize>(
        &mut self,
        sg: &mut SgTable<N>,
        n: usize,
    ) -> Result {
        let n = n.min(N);
        // SAFETY: valid queue, serialised by `&mut self`; `sg` holds `n`
        // initialised entries (`SgTable::set` invariant); no allocation
        // (GFP_NOWAIT, and indirect descriptors are not negotiated).
        to_result(unsafe {
            bindings::virtqueue_add_inbuf(
                self.0.as_ptr(),
                sg.as_mut_ptr(),
                n as c_uint,
                self.0.as_ptr().cast(),
                bindings::GFP_NOWAIT | bindings::__GFP_NOWARN,
            )
        })?;
        // SAFETY: as above.
        unsafe { bindings::virtqueue_kick(self.0.as_ptr()) };
        Ok(())
    }

    /// Makes a device-readable buffer (an "out" buffer) available and
    /// notifies the device.
    ///
    /// # Safety
    ///
    /// `buf` must stay valid until the device gave it back or was reset, and
    /// be directly mapped memory (kmalloc), not the stack or vmalloc.
    pub(crate) unsafe fn add_outbuf_kick(&mut self, buf: *const c_void, len: u32) -> Result {
        let mut sg = SgTable::<1>::new();
        // SAFETY: `buf` is directly mapped (caller), `sg` is a local table
        // the queue copies into its ring.
        unsafe { bindings::sg_init_one(sg.as_mut_ptr(), buf, len) };
        // SAFETY: as for `add_inbuf_kick`; the caller keeps `buf` alive.
        to_result(unsafe {
            bindings::virtqueue_add_outbuf(
                self.0.as_ptr(),
                sg.as_mut_ptr(),
                1,
                self.0.as_ptr().cast(),
                bindings::GFP_KERNEL,
            )
        })?;
        // SAFETY: valid queue.
        unsafe { bindings::virtqueue_kick(self.0.as_ptr()) };
        Ok(())
    }

    /// Takes one buffer the device gave back, if any.
    pub(crate) fn get_buf(&mut self) -> bool {
        let mut len: c_uint = 0;
        // SAFETY: valid queue, serialised by `&mut self`.
        !unsafe { bindings::virtqueue_get_buf(self.0.as_ptr(), &mut len) }.is_null()
    }
}

/// A scatterlist of up to `N` entries describing guest physical ranges.
///
/// # Invariants
///
/// The first `n` entries passed to a queue were set by [`SgTable::set`].
pub(crate) struct SgTable<const N: usize>(UnsafeCell<[bindings::scatterlist; N]>);

// SAFETY: all-zero is an empty scatterlist entry.
unsafe impl<const N: usize> Zeroed for SgTable<N> {}

impl<const N: usize> SgTable<N> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        // SAFETY: all-zero is valid (see the `Zeroed` impl).
        unsafe { core::mem::zeroed() }
    }

    fn as_mut_ptr(&mut self) -> *mut bindings::scatterlist {
        self.0.get_mut().as_mut_ptr()
    }

    /// Fills the first `ranges.len()` entries with `(pfn, pages)` ranges of
    /// RAM and ends the list there; returns how many entries were set.
    ///
    /// # Safety
    ///
    /// Every range must be RAM with a memmap (pages of isolated buddy
    /// blocks), and its size in bytes must fit in a `u32`.
    pub(crate) unsafe fn set(
        &mut self,
        ranges: impl ExactSizeIterator<Item = (u64, u64)>,
    ) -> usize {
        let n = ranges.len().min(N);
        if n == 0 {
            return 0;
        }
        // SAFETY: the table has at least `n` entries.
        unsafe { bindings::sg_init_table(self.as_mut_ptr(), n as c_uint) };
        for (i, (pfn, pages)) in ranges.take(n).enumerate() {
            // SAFETY: `i < n <= N`; the pfn has a memmap (caller), so
            // `pfn_to_page` is valid; the length fits (caller).
            unsafe {
                let sg = self.as_mut_ptr().add(i);
                let page = bindings::pfn_to_page(pfn as kernel::ffi::c_ulong);
                let len = (pages << kernel::page::PAGE_SHIFT) as c_uint;
                bindings::sg_set_page(sg, page, len, 0);
            }
        }
        n
    }
}

/// What a virtio driver does; the callbacks run in process context, with the
/// device core's locking.
pub(crate) trait DriverOps {
    /// Adjusts the offered features before they are negotiated.
    fn validate(dev: Device);
    /// Binds to a device.
    fn probe(dev: Device) -> Result;
    /// Unbinds; the device must be reset and its queues deleted on return.
    fn remove(dev: Device);
    /// Suspend or hibernation: the device is about to be reset; stop using
    /// it and delete its queues. (Called only with `CONFIG_PM_SLEEP`.)
    #[cfg_attr(any(not(CONFIG_PM_SLEEP), ph_break_freeze), allow(dead_code))]
    fn freeze(dev: Device) -> Result;
    /// Resume: the device was reset and its features negotiated again; set
    /// its queues up again. (Called only with `CONFIG_PM_SLEEP`.)
    #[cfg_attr(any(not(CONFIG_PM_SLEEP), ph_break_freeze), allow(dead_code))]
    fn restore(dev: Device) -> Result;
}

/// Storage for a virtio driver registration; lives in a `static`.
///
/// # Invariants
///
/// `drv` is registered with the virtio core between a successful
/// [`DriverReg::register`] and the drop of the [`Registered`] it returned.
pub(crate) struct DriverReg<T: DriverOps> {
    drv: Opaque<bindings::virtio_driver>,
    _t: PhantomData<T>,
}

// SAFETY: the driver struct is written once, before registration, and only
// read by the virtio core afterwards.
unsafe impl<T: DriverOps> Sync for DriverReg<T> {}

/// The device ID table entry for "any vendor".
const ANY_VENDOR: u32 = bindings::VIRTIO_DEV_ANY_ID;

/// A registered driver; dropping it unregisters (which removes every bound
/// device first).
pub(crate) struct Registered<T: DriverOps + 'static>(&'static DriverReg<T>);

impl<T: DriverOps> DriverReg<T> {
    /// Unregistered storage.
    pub(crate) const fn new() -> Self {
        DriverReg {
            drv: Opaque::uninit(),
            _t: PhantomData,
        }
    }

    /// Registers the driver for virtio device `device_id`, offering the
    /// feature bits of `features`. Probing of present devices happens before
    /// this returns.
    pub(crate) fn register(
        &'static self,
        module: &'static ThisModule,
        name: &'static CStr,
        ids: &'static [bindings::virtio_device_id],
        features: &'static [c_uint],
    ) -> Result<Registered<T>> {
        // The ID table must end with a zero entry.
        if ids.last().map_or(true, |id| id.device != 0) {
            return Err(EINVAL);
        }
        // SAFETY: all-zero is a valid, empty `virtio_driver`.
        let mut d: bindings::virtio_driver = unsafe { core::mem::zeroed() };
        d.driver.name = name.as_char_ptr();
        d.id_table = ids.as_ptr();
        d.feature_table = features.as_ptr();
        d.feature_table_size = features.len() as c_uint;
        d.validate = Some(Self::validate_c);
        d.probe = Some(Self::probe_c);
        d.remove = Some(Self::remove_c);
        // (A deliberately broken build has no freeze and restore.)
        #[cfg(all(CONFIG_PM_SLEEP, not(ph_break_freeze)))]
        {
            d.freeze = Some(Self::freeze_c);
            d.restore = Some(Self::restore_c);
        }
        // SAFETY: not registered yet (a second `register` while registered
        // would be a caller bug the core rejects: the name is taken), so
        // nothing else reads `drv`.
        unsafe { self.drv.get().write(d) };
        // SAFETY: `drv` is fully initialised, static, and its ID and feature
        // tables are static.
        to_result(unsafe { bindings::__register_virtio_driver(self.drv.get(), module.as_ptr()) })?;
        // INVARIANT: registered.
        Ok(Registered(self))
    }

    fn dev(vdev: *mut bindings::virtio_device) -> Option<Device> {
        // INVARIANT: the core passes a live device bound (or being bound) to
        // this driver.
        NonNull::new(vdev).map(Device)
    }

    extern "C" fn validate_c(vdev: *mut bindings::virtio_device) -> c_int {
        if let Some(d) = Self::dev(vdev) {
            T::validate(d);
        }
        0
    }

    /// Runs `op` on the device and turns its result into the C return.
    fn call(vdev: *mut bindings::virtio_device, op: fn(Device) -> Result) -> c_int {
        match Self::dev(vdev).map(op) {
            Some(Ok(())) => 0,
            Some(Err(e)) => e.to_errno(),
            None => EINVAL.to_errno(),
        }
    }

    extern "C" fn probe_c(vdev: *mut bindings::virtio_device) -> c_int {
        Self::call(vdev, T::probe)
    }

    extern "C" fn remove_c(vdev: *mut bindings::virtio_device) {
        if let Some(d) = Self::dev(vdev) {
            T::remove(d);
        }
    }

    #[cfg(all(CONFIG_PM_SLEEP, not(ph_break_freeze)))]
    extern "C" fn freeze_c(vdev: *mut bindings::virtio_device) -> c_int {
        Self::call(vdev, T::freeze)
    }

    #[cfg(all(CONFIG_PM_SLEEP, not(ph_break_freeze)))]
    extern "C" fn restore_c(vdev: *mut bindings::virtio_device) -> c_int {
        Self::call(vdev, T::restore)
    }
}

impl<T: DriverOps> Drop for Registered<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant of `DriverReg`); this removes
        // every bound device and returns when no callback runs.
        unsafe { bindings::unregister_virtio_driver(self.0.drv.get()) };
    }
}

/// Encodes the ID table entry for virtio device `device`.
pub(crate) const fn device_id(device: u32) -> bindings::virtio_device_id {
    bindings::virtio_device_id {
        device,
        vendor: ANY_VENDOR,
    }
}

/// The zero entry that ends an ID table.
pub(crate) const ID_END: bindings::virtio_device_id = bindings::virtio_device_id {
    device: 0,
    vendor: 0,
};
