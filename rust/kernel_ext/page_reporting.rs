// SPDX-License-Identifier: GPL-2.0

//! The series' page reporting engine API: the module claims free page
//! reporting (`page_reporting_claim()`), mm's own engine stops, and the
//! module reports through the `report()` callback of the device a driver
//! registered (`struct page_reporting_dev_info`: virtio_balloon,
//! hv_balloon), which keeps everything else the device does.
//!
//! A [`Claim`] holds the claim; its [`Port`] holds the device the kernel
//! attached, if any, under a mutex that every report holds while it runs:
//! the kernel's detach takes it, so no report runs through a device after
//! its detach returned, whatever the [`EngineOps`] do.

use crate::kernel_ext::free_page_hint::Report;
use crate::kernel_ext::slot::ArcSlot;
use crate::kernel_ext::virtio::SgTable;
use core::ptr::NonNull;
use kernel::{
    bindings,
    error::to_result,
    init::PinInit,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// Most entries a device takes in one `report()` call.
pub(crate) const CAPACITY: usize = bindings::PAGE_REPORTING_CAPACITY as usize;

/// The smallest order the kernel reports for the registered device
/// (`page_reporting.page_reporting_order`: what the device registered, or
/// pageblock order; writable at run time).
pub(crate) fn device_order() -> u32 {
    // SAFETY: a plain `unsigned int` the kernel exports; a racing write of
    // the parameter gives the old or the new value (an aligned word).
    let o = unsafe { core::ptr::read_volatile(&raw const bindings::page_reporting_order) };
    // Never set (no device ever registered): the kernel's default.
    if o > bindings::MAX_PAGE_ORDER {
        crate::kernel_ext::mm::pageblock_order()
    } else {
        o
    }
}

/// What the claimer is told.
pub(crate) trait EngineOps: Sized + Send + Sync + 'static {
    /// A device is attached: [`Port::report`] reaches it from now on.
    fn attached(port: ArcBorrow<'_, Port<Self>>);
    /// The device goes (it unregisters, or the claim is released): stop
    /// reporting. Reports still running end before the device goes.
    fn detaching(port: ArcBorrow<'_, Port<Self>>);
}

/// The registered device, while attached.
///
/// # Invariants
///
/// Points to the registered `page_reporting_dev_info` between the engine's
/// `attach` for it and its `detach`, with a `report` callback.
struct DevPtr(NonNull<bindings::page_reporting_dev_info>);

// SAFETY: the device is the kernel's, valid from any thread while attached;
// its callback is called with the port's mutex held (serialised).
unsafe impl Send for DevPtr {}

/// The attached device and the scatterlist reports are built in.
struct Attached {
    dev: Option<DevPtr>,
    sg: KBox<SgTable>,
}

/// The port between the claimer and the device: its context `ctx`, and
/// the attached device, if any.
#[pin_data]
pub(crate) struct Port<T> {
    #[pin]
    dev: Mutex<Attached>,
    #[pin]
    ctx: T,
}

impl<T: EngineOps> Port<T> {
    /// The claimer's context.
    pub(crate) fn ctx(&self) -> &T {
        &self.ctx
    }

    /// Sends `report` through the attached device's `report()` and waits
    /// for it. `ENODEV`: no device is attached; otherwise the callback's
    /// error. Process context; may sleep as long as the host takes.
    pub(crate) fn report(&self, report: &Report<'_>) -> Result {
        let mut a = self.dev.lock();
        let Some(dev) = a.dev.as_ref().map(|d| d.0) else {
            return Err(ENODEV);
        };
        let n = a.sg.fill(report)?;
        let n = n.min(CAPACITY as u32);
        // SAFETY: `dev` is attached (type invariant of `DevPtr`), and stays
        // so while the lock is held: its detach takes the lock first. Its
        // `report` was set before it registered. `sg` holds `n` set
        // entries, at most the capacity, of isolated pages that stay so
        // while `report` lives, which is until this returns.
        let r = unsafe {
            let prdev = dev.as_ptr();
            match (*prdev).report {
                Some(f) => f(prdev, a.sg.as_mut_ptr(), n),
                None => -(bindings::ENODEV as i32),
            }
        };
        to_result(r)
    }
}

/// The data of the [`Claim`], or null.
static ENGINE_DATA: ArcSlot = ArcSlot::new();

/// # Safety
///
/// Only the kernel calls it, through the engine of the live [`Claim<T>`],
/// with the registered device.
unsafe extern "C" fn attach_tramp<T: EngineOps>(prdev: *mut bindings::page_reporting_dev_info) {
    // SAFETY: `ENGINE_DATA` holds the `Arc<Port<T>>` of the claim whose
    // engine calls this; it is cleared after the release returned, and the
    // kernel calls no engine callback after that.
    let Some(port) = (unsafe { ENGINE_DATA.get::<Port<T>>() }) else {
        return;
    };
    let Some(p) = NonNull::new(prdev) else {
        return;
    };
    // INVARIANT: the kernel attaches the registered device, which has a
    // callback (drivers set it before they register).
    port.dev.lock().dev = Some(DevPtr(p));
    T::attached(port);
}

/// # Safety
///
/// As [`attach_tramp`].
unsafe extern "C" fn detach_tramp<T: EngineOps>(_prdev: *mut bindings::page_reporting_dev_info) {
    // SAFETY: as in `attach_tramp`.
    let Some(port) = (unsafe { ENGINE_DATA.get::<Port<T>>() }) else {
        return;
    };
    T::detaching(port);
    // Waits for a report still running through the device.
    port.dev.lock().dev = None;
}

/// The claim on free page reporting, held while this value lives; one
/// module at a time (`EBUSY`).
///
/// # Invariants
///
/// `ops` is the engine the kernel has claimed reporting for, calling the
/// trampolines for `T`; `ENGINE_DATA` is claimed with `port`.
pub(crate) struct Claim<T: EngineOps> {
    ops: KBox<bindings::page_reporting_engine>,
    port: Arc<Port<T>>,
}

impl<T: EngineOps> Claim<T> {
    /// Claims reporting for `ctx`; a registered device is attached before
    /// this returns.
    pub(crate) fn new(ctx: impl PinInit<T, Error>) -> Result<Self> {
        let sg = SgTable::new()?;
        let port = Arc::pin_init(
            try_pin_init!(Port::<T> {
                dev <- new_mutex!(Attached { dev: None, sg }),
                ctx <- ctx,
            }? Error),
            GFP_KERNEL,
        )?;
        let ops = KBox::new(
            bindings::page_reporting_engine {
                attach: Some(attach_tramp::<T>),
                detach: Some(detach_tramp::<T>),
            },
            GFP_KERNEL,
        )?;
        ENGINE_DATA.claim(&port)?;
        // SAFETY: `ops` is heap memory that stays in place until the claim
        // is released on drop; `ENGINE_DATA` is set for the callbacks.
        if let Err(e) = to_result(unsafe { bindings::page_reporting_claim(&*ops) }) {
            ENGINE_DATA.clear();
            return Err(e);
        }
        // INVARIANT: claimed, and `ENGINE_DATA` holds `port`.
        Ok(Claim { ops, port })
    }
}

impl<T: EngineOps> Drop for Claim<T> {
    fn drop(&mut self) {
        // SAFETY: we claimed with `ops` (type invariant); the release
        // detaches the device, and no callback runs after it returns.
        unsafe { bindings::page_reporting_release(&*self.ops) };
        ENGINE_DATA.clear();
        // `ops` and the reference to `port` go after this.
        let _ = &self.port;
    }
}

#[cfg(ph_tests)]
/// A device registered with the kernel's free page reporting, for tests:
/// its `report()` is `T::report`.
pub(crate) trait TestDevice: Sized + Send + Sync + 'static {
    /// One call of the device's `report()`: the entries as (pfn, pages).
    fn report(&self, entries: &[(u64, u64)]) -> Result;
}

#[cfg(ph_tests)]
/// A [`TestDevice`] registered while this lives.
///
/// # Invariants
///
/// `info` is the first field, registered with the kernel while this lives.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Registered<T: TestDevice> {
    #[pin]
    info: kernel::types::Opaque<bindings::page_reporting_dev_info>,
    dev: T,
    #[pin]
    _pin: core::marker::PhantomPinned,
}

#[cfg(ph_tests)]
/// # Safety
///
/// Only the kernel calls it, for the `info` of a live [`Registered<T>`],
/// with `nents` entries of at most `CAPACITY`.
unsafe extern "C" fn test_report_tramp<T: TestDevice>(
    prdev: *mut bindings::page_reporting_dev_info,
    sg: *mut bindings::scatterlist,
    nents: core::ffi::c_uint,
) -> core::ffi::c_int {
    // SAFETY: `info` is the first field of a `Registered<T>` (repr(C)),
    // which lives while registered.
    let this = unsafe { &*prdev.cast::<Registered<T>>() };
    let mut entries = [(0u64, 0u64); CAPACITY];
    let mut n = 0;
    let mut cur = sg;
    while n < nents as usize && n < CAPACITY && !cur.is_null() {
        // SAFETY: `cur` is one of the `nents` entries the caller passed.
        unsafe {
            let page = bindings::sg_page(cur);
            let pfn = bindings::page_to_pfn(page) as u64;
            let pages = u64::from((*cur).length) >> kernel::page::PAGE_SHIFT;
            entries[n] = (pfn, pages);
            cur = bindings::sg_next(cur);
        }
        n += 1;
    }
    if n < nents as usize {
        // More entries than a device takes: the test fails on it.
        return -(bindings::E2BIG as i32);
    }
    match this.dev.report(&entries[..n]) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

#[cfg(ph_tests)]
impl<T: TestDevice> Registered<T> {
    /// Registers a device whose reports go to `dev`, of order `order`.
    /// `EBUSY`: a device is registered already.
    pub(crate) fn new(dev: T, order: u32) -> Result<Pin<KBox<Self>>> {
        let this = KBox::pin_init(
            pin_init!(Registered {
                info <- kernel::types::Opaque::ffi_init(|p: *mut bindings::page_reporting_dev_info| {
                    // SAFETY: `p` is valid for writes; all-zero is a valid
                    // `page_reporting_dev_info` (the kernel initialises
                    // its work and state at registration).
                    unsafe {
                        core::ptr::write_bytes(p, 0, 1);
                        (*p).report = Some(test_report_tramp::<T>);
                        (*p).order = order;
                    }
                }),
                dev,
                _pin: core::marker::PhantomPinned,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `info` is pinned and lives until it is unregistered on
        // drop; its callback reads only `dev`, which lives as long.
        to_result(unsafe { bindings::page_reporting_register(this.info.get()) })?;
        // INVARIANT: registered.
        Ok(this)
    }

    /// The device.
    pub(crate) fn dev(&self) -> &T {
        &self.dev
    }
}

#[cfg(ph_tests)]
#[pinned_drop]
impl<T: TestDevice> PinnedDrop for Registered<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered (type invariant), or never registered if the
        // registration failed, which the kernel ignores (it unregisters
        // only the registered device); when this returns neither the
        // kernel nor an engine calls its callback any more.
        unsafe { bindings::page_reporting_unregister(self.info.get()) };
    }
}
