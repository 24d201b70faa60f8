// SPDX-License-Identifier: GPL-2.0

//! The engine transport (the default): page_hinting claims the kernel's
//! free page reporting and reports through the `report()` callback of the
//! device a driver registered with it: virtio_balloon (its reporting
//! queue) or hv_balloon (Hyper-V's cold memory discard hypercall). The
//! driver keeps the device and all it does besides: inflate and deflate,
//! statistics, deflate on OOM, free page hinting, suspend and resume. mm's
//! own engine is idle while the claim is held and resumes when it goes.
//!
//! Either side may load first: the kernel attaches a device registered
//! before the claim at once, and one registered later when it registers.
//! A device that unregisters (its driver unloads, or the device is
//! removed) is detached first, which waits for the report in flight.

#![forbid(unsafe_code)]

use crate::hinting::{self, Mechanism, Registration, ReportError, Transport};
use crate::kernel_ext::{
    free_page_hint::{Report, REPORT_MAX},
    page_reporting::{self, Claim, EngineOps, Port, CAPACITY},
};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// The device's order while one is attached, `u32::MAX` while none is
/// (for sysfs, which takes no lock).
static ATTACHED_ORDER: AtomicU32 = AtomicU32::new(u32::MAX);

/// The order of the attached device, if one is attached.
pub(crate) fn attached_order() -> Option<u32> {
    match ATTACHED_ORDER.load(Relaxed) {
        u32::MAX => None,
        o => Some(o),
    }
}

/// The claimer's context: the mechanism, and its registration while a
/// device is attached.
#[pin_data]
pub(crate) struct Ctx {
    mech: Arc<Mechanism>,
    #[pin]
    reg: Mutex<Option<Registration>>,
}

/// The claim, held while the module is loaded with `transport=engine`.
pub(crate) struct Engine {
    _claim: Claim<Ctx>,
}

/// Claims reporting for `mech`; a device registered already is attached
/// before this returns, one registered later when it registers. `EBUSY`:
/// another module has claimed reporting.
pub(crate) fn claim(mech: Arc<Mechanism>) -> Result<Engine> {
    let init = try_pin_init!(Ctx {
        mech,
        reg <- new_mutex!(None),
    }? Error);
    Ok(Engine {
        _claim: Claim::new(init)?,
    })
}

impl EngineOps for Ctx {
    fn attached(port: ArcBorrow<'_, Port<Self>>) {
        let order = page_reporting::device_order();
        let t = match Arc::new(
            DeviceTransport {
                port: port.into(),
                order,
            },
            GFP_KERNEL,
        ) {
            Ok(t) => t,
            Err(_) => {
                pr_err!("engine: out of memory: the free page reporting device is not used\n");
                return;
            }
        };
        let ctx = port.ctx();
        match hinting::register(&ctx.mech, t) {
            Ok(r) => {
                *ctx.reg.lock() = Some(r);
                ATTACHED_ORDER.store(order, Relaxed);
                pr_info!(
                    "engine: reporting through the registered free page reporting device, blocks of order {} or more, {} entries per report\n",
                    order,
                    CAPACITY.min(REPORT_MAX)
                );
            }
            Err(e) => pr_err!("engine: transport not registered ({:?})\n", e),
        }
    }

    fn detaching(port: ArcBorrow<'_, Port<Self>>) {
        // Waits for the report in flight (the worker mutex), and breaks the
        // cycle port -> registration -> mechanism -> transport -> port.
        let r = port.ctx().reg.lock().take();
        if r.is_some() {
            drop(r);
            ATTACHED_ORDER.store(u32::MAX, Relaxed);
            pr_info!("engine: the free page reporting device went away; reports stop\n");
        }
    }
}

/// Reports through the attached device.
struct DeviceTransport {
    port: Arc<Port<Ctx>>,
    /// The device's order when it was attached.
    order: u32,
}

impl Transport for DeviceTransport {
    fn max_entries(&self) -> usize {
        CAPACITY.min(REPORT_MAX)
    }

    fn max_entry_bytes(&self) -> u64 {
        // Scatterlist lengths are u32.
        u32::MAX.into()
    }

    fn min_order(&self) -> u32 {
        self.order
    }

    fn report(&self, report: &Report<'_>) -> core::result::Result<(), ReportError> {
        self.port.report(report).map_err(ReportError::Failed)
    }
}

/// What `/sys/kernel/mm/page_hinting/transport` shows in engine mode.
pub(crate) fn status(out: &mut impl core::fmt::Write) -> core::fmt::Result {
    match attached_order() {
        Some(o) => write!(
            out,
            "engine active: the registered free page reporting device (virtio_balloon or hv_balloon), order >= {}",
            o
        ),
        None => out.write_str(
            "engine waiting: no free page reporting device is registered (virtio_balloon or hv_balloon reports through page_hinting once it probes a device)",
        ),
    }
}
