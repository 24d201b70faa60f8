// SPDX-License-Identifier: GPL-2.0

//! virtio: a driver registration whose callbacks reach the context it was
//! registered with, the per-device state it binds, virtqueues, and sending a
//! [`Report`] on a queue. 6.12's `kernel` crate has no virtio support.
//!
//! The abstraction owns the parts that decide what the device may still
//! touch: a device's queues are deleted only after its reset, by this file
//! ([`Bound::reset`] and the end of `remove`/`freeze`), and a report waits
//! until the device gave its buffer back or confirmed a reset, so the pages
//! of a [`Report`] are never back with the allocator while the device may
//! write them.

use crate::kernel_ext::free_page_hint::{Report, REPORT_MAX};
use crate::kernel_ext::slot::ArcSlot;
use crate::kernel_ext::sync::{static_key, WaitQueue};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_uint},
    init::{self, PinInit},
    new_spinlock,
    prelude::*,
    sync::{Arc, ArcBorrow, SpinLock},
    types::Opaque,
};

/// Virtio feature bits and IDs the balloon driver names.
pub(crate) mod consts {
    use kernel::bindings;
    /// `VIRTIO_ID_BALLOON`.
    pub(crate) const ID_BALLOON: u32 = bindings::VIRTIO_ID_BALLOON;
    /// `VIRTIO_BALLOON_F_STATS_VQ`.
    pub(crate) const F_STATS_VQ: u32 = bindings::VIRTIO_BALLOON_F_STATS_VQ;
    /// `VIRTIO_BALLOON_F_FREE_PAGE_HINT`.
    pub(crate) const F_FREE_PAGE_HINT: u32 = bindings::VIRTIO_BALLOON_F_FREE_PAGE_HINT;
    /// `VIRTIO_BALLOON_F_PAGE_POISON`.
    pub(crate) const F_PAGE_POISON: u32 = bindings::VIRTIO_BALLOON_F_PAGE_POISON;
    /// `VIRTIO_BALLOON_F_REPORTING`.
    pub(crate) const F_REPORTING: u32 = bindings::VIRTIO_BALLOON_F_REPORTING;
    /// `VIRTIO_F_ACCESS_PLATFORM`.
    pub(crate) const F_ACCESS_PLATFORM: u32 = bindings::VIRTIO_F_ACCESS_PLATFORM;
    /// `VIRTIO_RING_F_INDIRECT_DESC` (uapi linux/virtio_ring.h, not in the
    /// bindings).
    pub(crate) const RING_F_INDIRECT_DESC: u32 = 28;
    /// The config field the host sets to the balloon size it asks for.
    pub(crate) const NUM_PAGES_OFFSET: usize =
        core::mem::offset_of!(bindings::virtio_balloon_config, num_pages);
    /// Offset of `poison_val` in `struct virtio_balloon_config`.
    pub(crate) const POISON_VAL_OFFSET: usize =
        core::mem::offset_of!(bindings::virtio_balloon_config, poison_val);
}

/// The queues a device has at most.
pub(crate) const MAX_VQS: usize = 8;

/// A virtio device, valid from the driver's `probe` to the end of its
/// `remove` (the device core guarantees both run in order, once, and
/// serialises them with `freeze` and `restore`).
///
/// # Invariants
///
/// `0` points to a live `virtio_device` bound to this module's driver.
#[derive(Clone, Copy)]
pub(crate) struct Device(NonNull<bindings::virtio_device>);

// SAFETY: the operations used from other threads (feature tests) are safe
// from any process context.
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

    /// Reads a little-endian 32-bit field of the device's config space
    /// (0 if the transport cannot read it). Any context: the transports'
    /// config reads do not sleep.
    pub(crate) fn read_config_le32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        // SAFETY: live device; `config` is set by the transport for every
        // device it registers, and `get` copies `len` bytes of config
        // space into `b`, which has room for them.
        unsafe {
            let dev = self.0.as_ptr();
            if let Some(get) = (*(*dev).config).get {
                get(dev, offset as c_uint, b.as_mut_ptr().cast(), 4);
            }
        }
        u32::from_le_bytes(b)
    }

    /// Lets the device run (DRIVER_OK); after `find_vqs`.
    pub(crate) fn ready(&self) {
        // SAFETY: live device, in probe or restore (the callers).
        unsafe { bindings::virtio_device_ready(self.0.as_ptr()) };
    }

    fn reset_raw(&self) {
        // SAFETY: live device; process context.
        unsafe { bindings::virtio_reset_device(self.0.as_ptr()) };
    }

    /// The device's status register.
    fn status(&self) -> Option<u8> {
        // SAFETY: live device; `config` is set by the transport for every
        // device it registers.
        unsafe {
            let dev = self.0.as_ptr();
            (*(*dev).config).get_status.map(|get| get(dev))
        }
    }
}

/// What a report waits for: the queue interrupt and the end of the device.
/// Made and changed only by this file, so `gone` means the device has
/// stopped using its buffers (or `lost` says it may not have).
#[pin_data]
struct Events {
    #[pin]
    ack: WaitQueue,
    /// The device was reset: a report in flight gives up.
    gone: AtomicBool,
    /// With `gone`: the reset was not confirmed; the device may still
    /// access the buffers of a report in flight.
    lost: AtomicBool,
}

/// The queues of a bound device.
///
/// # Invariants
///
/// Each `Some` is a queue of the device, found by `find_vqs` and not
/// deleted yet.
struct Vqs([Option<NonNull<bindings::virtqueue>>; MAX_VQS]);

// SAFETY: the queues are used under the lock around `Vqs` only.
unsafe impl Send for Vqs {}

/// What the abstraction keeps for a bound device (in `vdev->priv`).
#[pin_data]
pub(crate) struct DevState<D> {
    dev: Device,
    #[pin]
    events: Events,
    /// A spinlock: a report's wait condition takes it with the task state
    /// set, where it must not sleep; no queue operation under it sleeps.
    #[pin]
    vqs: SpinLock<Vqs>,
    /// The driver's data for the device.
    #[pin]
    pub(crate) data: D,
}

/// What a virtio driver does. The callbacks run in process context, one at
/// a time for a device.
pub(crate) trait Driver: Sized + 'static {
    /// What the driver was registered with.
    type Ctx: Send + Sync + 'static;
    /// The driver's data for one device, from probe to remove.
    type Data: Send + Sync + 'static;
    /// Adjusts the offered features before they are negotiated.
    fn validate(ctx: ArcBorrow<'_, Self::Ctx>, dev: Device);
    /// An initialiser for the data of a device that is about to be probed.
    fn data(ctx: ArcBorrow<'_, Self::Ctx>, dev: Device) -> impl PinInit<Self::Data, Error>;
    /// Binds to the device: find its queues, make it ready.
    fn probe(ctx: ArcBorrow<'_, Self::Ctx>, dev: Bound<'_, Self>) -> Result;
    /// Unbinds; stop using the queues. They are deleted, after a reset,
    /// when this returns.
    fn remove(dev: Bound<'_, Self>);
    /// Suspend or hibernation: stop using the queues, which are deleted,
    /// after a reset, when this returns. (Called only with
    /// `CONFIG_PM_SLEEP`.)
    #[cfg_attr(not(CONFIG_PM_SLEEP), allow(dead_code))]
    fn freeze(dev: Bound<'_, Self>) -> Result;
    /// Resume: the device was reset and its features negotiated again; set
    /// its queues up again, as at probe. (Called only with
    /// `CONFIG_PM_SLEEP`.)
    #[cfg_attr(not(CONFIG_PM_SLEEP), allow(dead_code))]
    fn restore(ctx: ArcBorrow<'_, Self::Ctx>, dev: Bound<'_, Self>) -> Result;
    /// The device's config space changed. Atomic context (the virtio core
    /// holds a spinlock): must not sleep.
    fn config_changed(_dev: Device) {}
}

/// A device bound to driver `T`, in one of its callbacks.
pub(crate) struct Bound<'a, T: Driver> {
    state: ArcBorrow<'a, DevState<T::Data>>,
}

impl<T: Driver> Bound<'_, T> {
    /// The device.
    pub(crate) fn device(&self) -> Device {
        self.state.dev
    }

    /// The driver's data for it.
    pub(crate) fn data(&self) -> &T::Data {
        &self.state.data
    }

    /// A handle on the device state, for a transport that outlives the
    /// callback (until its queue is deleted).
    fn state(&self) -> Arc<DevState<T::Data>> {
        self.state.into()
    }

    /// Finds the virtqueues, in the device's order: `names[i]` is `None`
    /// for a queue whose feature was not negotiated (it then takes no
    /// index). A queue's interrupt wakes the reports waiting on it.
    pub(crate) fn find_vqs<const N: usize>(
        &self,
        names: [Option<&'static CStr>; N],
    ) -> Result<[Option<Virtqueue<T>>; N]> {
        if N > MAX_VQS {
            return Err(EINVAL);
        }
        // Callbacks of one device are serialised, so the queues cannot
        // appear between this look and the store below.
        if self.state.vqs.lock().0.iter().any(Option::is_some) {
            return Err(EBUSY);
        }
        let mut info: [bindings::virtqueue_info; N] =
            // SAFETY: all-zero is a valid `virtqueue_info` (null name,
            // no callback).
            unsafe { core::mem::zeroed() };
        for (i, n) in info.iter_mut().zip(names) {
            if let Some(n) = n {
                i.name = n.as_char_ptr();
                i.callback = Some(vq_tramp::<T>);
            }
        }
        let mut raw = [core::ptr::null_mut::<bindings::virtqueue>(); N];
        // SAFETY: live device in probe or restore; both arrays hold `N`
        // entries.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.device().0.as_ptr(),
                N as c_uint,
                raw.as_mut_ptr(),
                info.as_mut_ptr(),
                core::ptr::null_mut(),
            )
        })?;
        let mut out = [const { None }; N];
        let mut vqs = self.state.vqs.lock();
        for (i, q) in raw.iter().enumerate() {
            if let Some(q) = NonNull::new(*q) {
                // INVARIANT: a queue of this device, found just now.
                vqs.0[i] = Some(q);
                out[i] = Some(Virtqueue {
                    state: self.state(),
                    idx: i,
                });
            }
        }
        Ok(out)
    }

    /// Resets the device and waits, at most `timeout_ms`, until its status
    /// reads 0, which is how a device says the reset is complete (virtio
    /// 1.2, 2.1.2). virtio-pci's reset already waits; virtio-mmio's only
    /// writes the register. A report in flight then gives up: its pages go
    /// back if the reset was confirmed, and stay isolated for good if not
    /// (the returned `false`).
    pub(crate) fn reset(&self, timeout_ms: u32) -> bool {
        let dev = self.device();
        dev.reset_raw();
        let mut confirmed = false;
        for _ in 0..=timeout_ms {
            match dev.status() {
                Some(0) => {
                    confirmed = true;
                    break;
                }
                Some(_) => crate::kernel_ext::mm::msleep(1),
                None => break,
            }
        }
        let ev = &self.state.events;
        ev.lost.store(!confirmed, Ordering::SeqCst);
        ev.gone.store(true, Ordering::SeqCst);
        ev.ack.wake_all();
        confirmed
    }

    /// Deletes the queues (after `remove` or `freeze`, or a failed probe).
    fn delete_vqs(&self) {
        if self.state.vqs.lock().0.iter().all(Option::is_none) {
            return;
        }
        if !self.state.events.gone.load(Ordering::SeqCst) {
            self.reset(1000);
        }
        // INVARIANT: no queue is left to use; the `Virtqueue` handles see
        // `None` from now on.
        self.state.vqs.lock().0 = [None; MAX_VQS];
        // SAFETY: the device was reset (it touches no buffer any more) and
        // no queue handle can reach the queues (cleared above, under the
        // lock every queue operation takes); process context.
        unsafe { bindings::virtio_del_vqs(self.device().0.as_ptr()) };
        // A device bound again starts with a clean slate.
        self.state.events.gone.store(false, Ordering::SeqCst);
        self.state.events.lost.store(false, Ordering::SeqCst);
    }
}

/// # Safety
///
/// Only the virtio core calls it, as the callback of a queue of a device
/// bound to `T` (whose `priv` holds its state while queues exist).
unsafe extern "C" fn vq_tramp<T: Driver>(vq: *mut bindings::virtqueue) {
    // SAFETY: a live queue of a device bound to `T`; `priv` holds the
    // device's state from before `find_vqs` until after `del_vqs`, which
    // waits for running callbacks.
    let p = unsafe { (*(*vq).vdev).priv_ }.cast::<DevState<T::Data>>();
    if !p.is_null() {
        // SAFETY: as above; only shared access.
        unsafe { (*p).events.ack.wake_all() };
    }
}

/// A virtqueue of a bound device. Its operations fail with `ENODEV` once
/// the queues were deleted.
pub(crate) struct Virtqueue<T: Driver> {
    state: Arc<DevState<T::Data>>,
    idx: usize,
}

/// Why a report did not reach the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The queue refused it, or the report does not fit a descriptor.
    Refused(Error),
    /// The device was reset: the host did not take the report; its pages
    /// may go back.
    Gone,
    /// The device went away without confirming its reset: it may still
    /// access the report's pages, which must never be reused.
    Lost,
}

impl<T: Driver> Virtqueue<T> {
    /// Runs `f` on the queue, if it still exists, under a spinlock: `f`
    /// must not sleep.
    fn with<R>(&self, f: impl FnOnce(NonNull<bindings::virtqueue>) -> R) -> Result<R> {
        let vqs = self.state.vqs.lock();
        let q = vqs.0[self.idx].ok_or(ENODEV)?;
        Ok(f(q))
    }

    /// Ring entries.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: a live queue (`with`), serialised by the lock.
        self.with(|q| unsafe { bindings::virtqueue_get_vring_size(q.as_ptr()) })
            .unwrap_or(0)
    }

    /// Sends `report` as one device-writable buffer of one descriptor per
    /// range and waits until the device gives it back, or is reset. `stop`
    /// is asked at every wake-up whether to ignore the device's answer (a
    /// test switch: a host that never answers); `slow` is called every
    /// `SLOW_MS` without an answer, with the seconds waited. Process
    /// context; may sleep as long as the host takes.
    pub(crate) fn send_report(
        &self,
        sg: &mut SgTable,
        report: &Report<'_>,
        ignore_answer: impl Fn() -> bool,
        mut slow: impl FnMut(u32),
    ) -> core::result::Result<(), SendError> {
        const SLOW_MS: u32 = 10_000;
        let ev = &self.state.events;
        if ev.gone.load(Ordering::SeqCst) {
            return Err(SendError::Gone);
        }
        let n = sg.fill(report).map_err(SendError::Refused)?;
        let added = self.with(|q| {
            // SAFETY: a live queue (`with`), serialised by the lock; `sg`
            // holds `n` set entries; no allocation (GFP_NOWAIT, and indirect
            // descriptors are not negotiated). The pages stay isolated while
            // `report` lives, which is until this returns, and this returns
            // only once the device gave the buffer back or was reset.
            unsafe {
                to_result(bindings::virtqueue_add_inbuf(
                    q.as_ptr(),
                    sg.as_mut_ptr(),
                    n,
                    q.as_ptr().cast(),
                    bindings::GFP_NOWAIT | bindings::__GFP_NOWARN,
                ))?;
                bindings::virtqueue_kick(q.as_ptr());
            }
            Ok(())
        });
        match added {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SendError::Refused(e)),
            Err(_) => return Err(SendError::Gone),
        }
        let mut waited = 0u32;
        let answered = || {
            let got = || {
                let mut len: c_uint = 0;
                self.with(|q| {
                    // SAFETY: a live queue (`with`), serialised by the lock.
                    let buf = unsafe { bindings::virtqueue_get_buf(q.as_ptr(), &mut len) };
                    !buf.is_null()
                })
                .unwrap_or(false)
            };
            ev.gone.load(Ordering::SeqCst) || (!ignore_answer() && got())
        };
        while !ev.ack.wait_until(SLOW_MS, answered) {
            waited += SLOW_MS / 1000;
            slow(waited);
        }
        if ev.gone.load(Ordering::SeqCst) {
            if ev.lost.load(Ordering::SeqCst) {
                return Err(SendError::Lost);
            }
            return Err(SendError::Gone);
        }
        Ok(())
    }
}

/// Room for the scatterlist of one report.
pub(crate) struct SgTable([bindings::scatterlist; REPORT_MAX]);

// SAFETY: all-zero is an empty scatterlist entry.
unsafe impl init::Zeroable for SgTable {}
// SAFETY: plain memory, only used through `&mut`.
unsafe impl Send for SgTable {}

impl SgTable {
    /// An empty table on the heap.
    pub(crate) fn new() -> Result<KBox<Self>> {
        KBox::init(init::zeroed(), GFP_KERNEL)
    }

    /// Sets the table to one entry per range of `report`, ended after the
    /// last; returns how many. `EINVAL` for an empty report or a range
    /// longer than an entry can be (`u32` bytes).
    pub(crate) fn fill(&mut self, report: &Report<'_>) -> Result<c_uint> {
        let ranges = report.ranges();
        let max_pages = u64::from(u32::MAX) >> kernel::page::PAGE_SHIFT;
        if ranges.is_empty() || ranges.iter().any(|r| r.pages() > max_pages) {
            return Err(EINVAL);
        }
        let n = ranges.len().min(REPORT_MAX);
        // SAFETY: the table has `REPORT_MAX` entries, `n` of them are set.
        unsafe { bindings::sg_init_table(self.0.as_mut_ptr(), n as c_uint) };
        for (i, r) in ranges.iter().take(n).enumerate() {
            // SAFETY: `i < n`; a report's ranges are pages of isolated
            // buddy blocks (RAM with a memmap), so `pfn_to_page` is valid,
            // and each is at most `max_pages` pages (checked above), so its
            // length fits.
            unsafe {
                let page = bindings::pfn_to_page(r.start as kernel::ffi::c_ulong);
                let len = (r.pages() << kernel::page::PAGE_SHIFT) as c_uint;
                bindings::sg_set_page(self.0.as_mut_ptr().add(i), page, len, 0);
            }
        }
        Ok(n as c_uint)
    }

    /// The first entry, for C.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut bindings::scatterlist {
        self.0.as_mut_ptr()
    }
}

/// The registration of driver `T`, in a `static`.
///
/// # Invariants
///
/// `drv` is registered with the virtio core between a successful
/// [`DriverReg::register`] and the drop of the [`Registered`] it returned;
/// meanwhile `ctx` is claimed with the context that owns.
#[repr(C)]
pub(crate) struct DriverReg<T: Driver> {
    /// First: the device core's `dev->driver` points here.
    drv: Opaque<bindings::virtio_driver>,
    ctx: ArcSlot,
    _t: core::marker::PhantomData<T>,
}

// SAFETY: the driver struct is written once, before registration, and only
// read by the virtio core afterwards; `ctx` is atomic.
unsafe impl<T: Driver> Sync for DriverReg<T> {}

/// A registered driver; dropping it unregisters, which removes every bound
/// device first.
pub(crate) struct Registered<T: Driver> {
    reg: &'static DriverReg<T>,
    ctx: Arc<T::Ctx>,
}

impl<T: Driver> DriverReg<T> {
    /// Unregistered storage.
    pub(crate) const fn new() -> Self {
        DriverReg {
            drv: Opaque::uninit(),
            ctx: ArcSlot::new(),
            _t: core::marker::PhantomData,
        }
    }

    /// Registers the driver for the devices of `ids` (ending with
    /// [`ID_END`]), offering `features`, with `ctx` for its callbacks.
    /// Present devices are probed before this returns.
    pub(crate) fn register(
        &'static self,
        module: &'static ThisModule,
        name: &'static CStr,
        ids: &'static [bindings::virtio_device_id],
        features: &'static [c_uint],
        ctx: Arc<T::Ctx>,
    ) -> Result<Registered<T>> {
        if ids.last().map_or(true, |id| id.device != 0) {
            return Err(EINVAL);
        }
        self.ctx.claim(&ctx)?;
        // SAFETY: all-zero is a valid, empty `virtio_driver`.
        let mut d: bindings::virtio_driver = unsafe { core::mem::zeroed() };
        d.driver.name = name.as_char_ptr();
        d.id_table = ids.as_ptr();
        d.feature_table = features.as_ptr();
        d.feature_table_size = features.len() as c_uint;
        d.validate = Some(validate_c::<T>);
        d.probe = Some(probe_c::<T>);
        d.remove = Some(remove_c::<T>);
        d.config_changed = Some(config_changed_c::<T>);
        #[cfg(CONFIG_PM_SLEEP)]
        {
            d.freeze = Some(freeze_c::<T>);
            d.restore = Some(restore_c::<T>);
        }
        // SAFETY: not registered (the `ctx` exchange above succeeded only
        // for one registration at a time), so nothing else reads `drv`.
        unsafe { self.drv.get().write(d) };
        // SAFETY: `drv` is fully initialised and static, and so are its ID
        // and feature tables.
        let r = to_result(unsafe {
            bindings::__register_virtio_driver(self.drv.get(), module.as_ptr())
        });
        if let Err(e) = r {
            self.ctx.clear();
            return Err(e);
        }
        // INVARIANT: registered, `ctx` set.
        Ok(Registered { reg: self, ctx })
    }
}

impl<T: Driver> Drop for Registered<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); this removes every bound
        // device and returns when no callback runs.
        unsafe { bindings::unregister_virtio_driver(self.reg.drv.get()) };
        self.reg.ctx.clear();
        let _ = &self.ctx;
    }
}

/// The context of the driver `vdev` is bound to.
///
/// # Safety
///
/// `vdev` is a live device in a callback of driver `T`.
unsafe fn ctx_of<'a, T: Driver>(
    vdev: *mut bindings::virtio_device,
) -> Option<ArcBorrow<'a, T::Ctx>> {
    // SAFETY: in a driver callback `dev.driver` is this driver's
    // `device_driver`, the first field of the `virtio_driver` that is the
    // first field of the `repr(C)` `DriverReg<T>`.
    let reg = unsafe { &*(*vdev).dev.driver.cast::<DriverReg<T>>() };
    // SAFETY: `ctx` is claimed with the `Arc<T::Ctx>` the `Registered`
    // owns (type invariant), which clears it only after unregistering,
    // which waits for every callback.
    unsafe { reg.ctx.get::<T::Ctx>() }
}

/// The state of the device `vdev`, which `probe` put in `priv`.
///
/// # Safety
///
/// `vdev` is a live device bound to driver `T` (after its probe).
unsafe fn state_of<'a, T: Driver>(
    vdev: *mut bindings::virtio_device,
) -> Option<ArcBorrow<'a, DevState<T::Data>>> {
    // SAFETY: live device (the caller).
    let p = unsafe { (*vdev).priv_ }.cast::<DevState<T::Data>>();
    // SAFETY: `probe` stored `Arc::into_raw` of the state, which `remove`
    // takes back only after the driver's callbacks for it ended.
    (!p.is_null()).then(|| unsafe { ArcBorrow::from_raw(p) })
}

fn errno(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

extern "C" fn validate_c<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: the core calls it with a live device, for this driver.
    let Some(ctx) = (unsafe { ctx_of::<T>(vdev) }) else {
        return ENODEV.to_errno();
    };
    // INVARIANT: a live device bound (being bound) to this driver.
    if let Some(d) = NonNull::new(vdev) {
        T::validate(ctx, Device(d));
    }
    0
}

extern "C" fn probe_c<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: the core calls it with a live device, for this driver.
    let Some(ctx) = (unsafe { ctx_of::<T>(vdev) }) else {
        return ENODEV.to_errno();
    };
    let Some(d) = NonNull::new(vdev) else {
        return EINVAL.to_errno();
    };
    // INVARIANT: a live device being bound to this driver.
    let dev = Device(d);
    let r = (|| {
        let data = T::data(ctx, dev);
        let state = Arc::pin_init(
            try_pin_init!(DevState::<T::Data> {
                dev,
                events <- pin_init!(Events {
                    ack <- WaitQueue::new(kernel::c_str!("virtio_report_ack"), static_key!()),
                    gone: AtomicBool::new(false),
                    lost: AtomicBool::new(false),
                }),
                vqs <- new_spinlock!(Vqs([None; MAX_VQS])),
                data <- data,
            }? Error),
            GFP_KERNEL,
        )?;
        let raw = Arc::into_raw(state);
        // SAFETY: the device is ours during probe; `priv` holds the state
        // until `remove` (or the error path below) takes it back.
        unsafe { (*vdev).priv_ = raw.cast_mut().cast() };
        // SAFETY: just stored.
        let state = unsafe { ArcBorrow::from_raw(raw) };
        let bound = Bound::<T> { state };
        let r = T::probe(ctx, Bound::<T> { state });
        if r.is_err() {
            bound.delete_vqs();
            // SAFETY: as above; no callback of the device runs (the queues
            // are gone), so the state is taken back.
            unsafe { (*vdev).priv_ = core::ptr::null_mut() };
            // SAFETY: the reference `into_raw` made above.
            drop(unsafe { Arc::from_raw(raw) });
        }
        r
    })();
    errno(r)
}

extern "C" fn remove_c<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: the core calls it with a live device bound to this driver.
    let Some(state) = (unsafe { state_of::<T>(vdev) }) else {
        return;
    };
    T::remove(Bound::<T> { state });
    Bound::<T> { state }.delete_vqs();
    let raw: *const DevState<T::Data> = &*state;
    // SAFETY: the device is going; nothing uses `priv` after this.
    unsafe { (*vdev).priv_ = core::ptr::null_mut() };
    // SAFETY: the reference `probe` stored; no callback of the device
    // runs any more (the queues are deleted, remove is the last one).
    drop(unsafe { Arc::from_raw(raw) });
}

extern "C" fn config_changed_c<T: Driver>(vdev: *mut bindings::virtio_device) {
    // INVARIANT: the core calls it for a live device bound to this driver
    // (config change callbacks are enabled after probe and disabled before
    // remove).
    if let Some(d) = NonNull::new(vdev) {
        T::config_changed(Device(d));
    }
}

#[cfg(CONFIG_PM_SLEEP)]
extern "C" fn freeze_c<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: the core calls it with a live device bound to this driver.
    let Some(state) = (unsafe { state_of::<T>(vdev) }) else {
        return ENODEV.to_errno();
    };
    let r = T::freeze(Bound::<T> { state });
    Bound::<T> { state }.delete_vqs();
    errno(r)
}

#[cfg(CONFIG_PM_SLEEP)]
extern "C" fn restore_c<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: the core calls it with a live device bound to this driver.
    let (Some(ctx), Some(state)) = (unsafe { (ctx_of::<T>(vdev), state_of::<T>(vdev)) }) else {
        return ENODEV.to_errno();
    };
    let r = T::restore(ctx, Bound::<T> { state });
    if r.is_err() {
        Bound::<T> { state }.delete_vqs();
    }
    errno(r)
}

/// The ID table entry for virtio device `device`, any vendor.
pub(crate) const fn device_id(device: u32) -> bindings::virtio_device_id {
    bindings::virtio_device_id {
        device,
        vendor: bindings::VIRTIO_DEV_ANY_ID,
    }
}

/// The zero entry that ends an ID table.
pub(crate) const ID_END: bindings::virtio_device_id = bindings::virtio_device_id {
    device: 0,
    vendor: 0,
};

/// A virtio device ID table entry.
pub(crate) type DeviceId = bindings::virtio_device_id;
