// SPDX-License-Identifier: GPL-2.0

//! The virtio-balloon free page reporting transport (virtio 1.x,
//! `VIRTIO_BALLOON_F_REPORTING`): a virtio driver for the balloon device
//! that uses only its reporting queue. Each report is one buffer of up to
//! [`REPORT_MAX`] scatterlist entries, one per merged pfn range, which the
//! host discards (QEMU: `madvise(MADV_DONTNEED)` per entry) before it hands
//! the buffer back. The pages stay isolated until then.
//!
//! It negotiates only what it serves: free page reporting and the poison
//! value. It does not inflate or deflate (a balloon size the host asks for
//! is logged once, pointing to `transport=engine`, where virtio_balloon
//! keeps the device), sends no statistics and does no free page hinting, so
//! it negotiates neither `VIRTIO_BALLOON_F_STATS_VQ` nor
//! `VIRTIO_BALLOON_F_FREE_PAGE_HINT`, nor `DEFLATE_ON_OOM`.
//!
//! Queue indices follow the negotiated queue features in Linux's virtio
//! core (a queue that is not set up takes no index), while VMMs such as
//! QEMU lay the queues out by the features they *offer* (QEMU always has a
//! stats queue at index 2). So the queues of offered features that are not
//! negotiated are still set up, unused and empty, to keep the reporting
//! queue where the device has it.

#![forbid(unsafe_code)]

use crate::hinting::{self, Mechanism, Registration, ReportError, Transport};
use crate::kernel_ext::{
    free_page_hint::{Report, REPORT_MAX},
    mm,
    virtio::{
        self, consts, Bound, Device, DeviceId, DriverReg, Registered, SendError, SgTable, Virtqueue,
    },
};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use kernel::{
    c_str,
    ffi::c_uint,
    init::PinInit,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// The features the driver looks at in `validate`: the two it negotiates,
/// and the two queue features it declines but must know were offered.
static FEATURES: [c_uint; 4] = [
    consts::F_STATS_VQ,
    consts::F_FREE_PAGE_HINT,
    consts::F_PAGE_POISON,
    consts::F_REPORTING,
];
static IDS: [DeviceId; 2] = [virtio::device_id(consts::ID_BALLOON), virtio::ID_END];
static DRIVER: DriverReg<Balloon> = DriverReg::new();

/// How long a reset may take to be confirmed before the pages of a report
/// in flight are given up for lost.
const RESET_WAIT_MS: u32 = 1000;

/// A device is bound (the driver takes one).
static BOUND: AtomicBool = AtomicBool::new(false);
/// The bound device offered the stats queue, which is declined (its queue
/// keeps its place).
static OFFERED_STATS: AtomicBool = AtomicBool::new(false);
/// The same for the free page hinting queue.
static OFFERED_HINT: AtomicBool = AtomicBool::new(false);
/// The host asked for a balloon size, which was logged.
static SIZE_LOGGED: AtomicBool = AtomicBool::new(false);
/// Why no device reports, for the log and sysfs.
static STATE: AtomicU32 = AtomicU32::new(State::NoDevice as u32);

/// The transport's state, as sysfs shows it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum State {
    /// No balloon device is bound to this driver.
    NoDevice = 0,
    /// Reporting through the bound device.
    Active = 1,
    /// The device offers no free page reporting.
    NoReporting = 2,
    /// The guest relies on the contents of free pages (page poisoning or
    /// init_on_free) and the host does not offer
    /// `VIRTIO_BALLOON_F_PAGE_POISON`: reporting could change them, so it
    /// is off.
    PoisonRefused = 3,
    /// The system is suspended or hibernating: the device's queues are
    /// gone until it resumes.
    Suspended = 4,
}

impl State {
    /// The state's sysfs/log word.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::NoDevice => "no-device",
            State::Active => "active",
            State::NoReporting => "no-reporting",
            State::PoisonRefused => "poison-refused",
            State::Suspended => "suspended",
        }
    }

    /// Why the device does not report, if it does not.
    pub(crate) fn reason(self) -> Option<&'static str> {
        match self {
            State::NoDevice => Some("no virtio-balloon device is bound to page_hinting"),
            State::Active => None,
            State::NoReporting => Some("the device does not offer free page reporting"),
            State::PoisonRefused => Some(
                "the guest poisons or zeroes free pages and the host does not offer VIRTIO_BALLOON_F_PAGE_POISON with the guest's value",
            ),
            State::Suspended => Some("the system is suspended; reporting resumes with it"),
        }
    }

    /// The current state.
    pub(crate) fn get() -> State {
        match STATE.load(Relaxed) {
            1 => State::Active,
            2 => State::NoReporting,
            3 => State::PoisonRefused,
            4 => State::Suspended,
            _ => State::NoDevice,
        }
    }

    fn set(self) {
        STATE.store(self as u32, Relaxed);
    }
}

/// The registered driver; dropping it unbinds the device (resetting it,
/// which makes any report in flight give its pages back).
pub(crate) struct Driver {
    _reg: Registered<Balloon>,
}

/// Registers the driver, whose devices report to `mech`; a balloon device
/// that is present and not bound to another driver is probed before this
/// returns.
pub(crate) fn register(module: &'static ThisModule, mech: Arc<Mechanism>) -> Result<Driver> {
    Ok(Driver {
        _reg: DRIVER.register(module, c_str!("page_hinting"), &IDS, &FEATURES, mech)?,
    })
}

/// The virtio driver.
pub(crate) struct Balloon;

/// What the driver keeps for its device: the transport's registration
/// while it reports.
#[pin_data]
pub(crate) struct BalloonDev {
    #[pin]
    reg: Mutex<Option<Registration>>,
}

impl virtio::Driver for Balloon {
    type Ctx = Mechanism;
    type Data = BalloonDev;

    fn validate(_ctx: ArcBorrow<'_, Mechanism>, dev: Device) {
        // No allocation while reporting, and guest physical addresses in
        // the descriptors (as Linux's virtio_balloon).
        dev.clear_feature(consts::RING_F_INDIRECT_DESC);
        dev.clear_feature(consts::F_ACCESS_PLATFORM);
        // Queue features the driver does not serve.
        OFFERED_STATS.store(dev.has_feature(consts::F_STATS_VQ), SeqCst);
        OFFERED_HINT.store(dev.has_feature(consts::F_FREE_PAGE_HINT), SeqCst);
        dev.clear_feature(consts::F_STATS_VQ);
        dev.clear_feature(consts::F_FREE_PAGE_HINT);
        if !mm::guest_keeps_free_contents() {
            dev.clear_feature(consts::F_PAGE_POISON);
        } else if !dev.has_feature(consts::F_PAGE_POISON) {
            dev.clear_feature(consts::F_REPORTING);
            State::PoisonRefused.set();
        }
    }

    fn data(_ctx: ArcBorrow<'_, Mechanism>, _dev: Device) -> impl PinInit<BalloonDev, Error> {
        try_pin_init!(BalloonDev {
            reg <- new_mutex!(None),
        }? Error)
    }

    fn probe(ctx: ArcBorrow<'_, Mechanism>, dev: Bound<'_, Self>) -> Result {
        if !dev.device().has_feature(consts::F_REPORTING) {
            if State::get() == State::PoisonRefused {
                pr_warn!("virtio-balloon: not reporting: the guest poisons or initialises free pages and the host does not offer VIRTIO_BALLOON_F_PAGE_POISON\n");
            } else {
                State::NoReporting.set();
                pr_warn!("virtio-balloon: the device offers no free page reporting\n");
            }
            return Err(ENODEV);
        }
        if BOUND.swap(true, SeqCst) {
            return Err(EBUSY);
        }
        let r = start(ctx, &dev);
        if r.is_err() {
            BOUND.store(false, SeqCst);
        }
        r
    }

    fn remove(dev: Bound<'_, Self>) {
        stop(&dev);
        State::NoDevice.set();
        BOUND.store(false, SeqCst);
    }

    fn freeze(dev: Bound<'_, Self>) -> Result {
        // The workqueue is freezable: it ran dry before devices were
        // suspended, so no report is in flight here (one that still were
        // would give up below).
        stop(&dev);
        State::Suspended.set();
        Ok(())
    }

    fn restore(ctx: ArcBorrow<'_, Mechanism>, dev: Bound<'_, Self>) -> Result {
        // The device was reset and its features negotiated again; the
        // queues come back as at probe.
        start(ctx, &dev)
    }

    fn config_changed(dev: Device) {
        let pages = dev.read_config_le32(consts::NUM_PAGES_OFFSET);
        if pages != 0 && !SIZE_LOGGED.swap(true, SeqCst) {
            pr_warn!(
                "virtio-balloon: the host asks for a balloon of {} MiB, which page_hinting's own driver does not serve; load virtio_balloon and page_hinting with transport=engine (the default) to keep ballooning\n",
                (u64::from(pages) << 12) >> 20
            );
        }
    }
}

/// Resets the device, which ends a report in flight, and unregisters the
/// transport (remove and freeze); the queues are deleted after this.
///
/// A report in flight gives its pages back, unmarked, once the device has
/// confirmed the reset: from then on it touches no buffer. A device that
/// does not confirm within [`RESET_WAIT_MS`] may still be reading or
/// discarding them (a VMM whose device runs in its own thread and does not
/// wait for the reset), so its pages stay isolated: a leak, logged, rather
/// than pages the guest reuses while the host discards them.
fn stop(dev: &Bound<'_, Balloon>) {
    if !dev.reset(RESET_WAIT_MS) {
        pr_err!("virtio-balloon: the device did not confirm its reset within {} ms: the pages of a report in flight stay isolated\n", RESET_WAIT_MS);
    }
    // Waits for the report in flight, which the reset ended.
    let reg = dev.data().reg.lock().take();
    drop(reg);
}

/// Sets the queues up and registers the transport (probe and restore).
fn start(ctx: ArcBorrow<'_, Mechanism>, dev: &Bound<'_, Balloon>) -> Result {
    let d = dev.device();
    if d.has_feature(consts::F_PAGE_POISON) {
        // The value free pages hold, so that the host keeps it (0: the
        // guest zeroes them on free).
        let v = if !mm::init_on_free() {
            u32::from_ne_bytes([mm::PAGE_POISON; 4])
        } else {
            0
        };
        d.write_config_u32(consts::POISON_VAL_OFFSET, v);
    }
    let names = [
        Some(c_str!("inflate")),
        Some(c_str!("deflate")),
        // Declined, unused: set up only to keep the indices the device has.
        OFFERED_STATS.load(SeqCst).then_some(c_str!("stats-unused")),
        OFFERED_HINT
            .load(SeqCst)
            .then_some(c_str!("free_page_vq-unused")),
        Some(c_str!("reporting_vq")),
    ];
    let [_, _, _, _, rq] = dev.find_vqs(names)?;
    let rq = rq.ok_or(ENODEV)?;
    let max_entries = (rq.size() as usize).min(REPORT_MAX);
    let sg = SgTable::new()?;
    let t = Arc::pin_init(
        pin_init!(VirtioTransport {
            vq: rq,
            sg <- new_mutex!(sg),
            max_entries,
        }),
        GFP_KERNEL,
    )?;
    d.ready();
    let reg = hinting::register(&Arc::from(ctx), t)?;
    *dev.data().reg.lock() = Some(reg);
    State::Active.set();
    pr_info!(
        "virtio-balloon: free page reporting on, {} entries per report{}\n",
        max_entries,
        if d.has_feature(consts::F_PAGE_POISON) {
            ", poison value sent to the host"
        } else {
            ""
        }
    );
    Ok(())
}

/// Reports through the balloon device's reporting queue.
#[pin_data]
struct VirtioTransport {
    vq: Virtqueue<Balloon>,
    /// Room for a report's scatterlist (calls are serialised anyway).
    #[pin]
    sg: Mutex<KBox<SgTable>>,
    max_entries: usize,
}

/// Whether the host is to be treated as never answering (the test build's
/// `test_stall_host=1`).
fn host_stalled() -> bool {
    #[cfg(ph_tests)]
    return crate::tests::hooks::STALL_HOST.load(Relaxed);
    #[cfg(not(ph_tests))]
    false
}

impl Transport for VirtioTransport {
    fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn max_entry_bytes(&self) -> u64 {
        // Scatterlist lengths are u32.
        u32::MAX.into()
    }

    fn report(&self, report: &Report<'_>) -> core::result::Result<(), ReportError> {
        let pages = report.pages();
        let mut sg = self.sg.lock();
        let r = self.vq.send_report(&mut sg, report, host_stalled, |secs| {
            pr_warn!(
                "virtio-balloon: the host has not answered a report for {} s; its {} pages stay isolated\n",
                secs,
                pages
            );
        });
        match r {
            Ok(()) => Ok(()),
            Err(SendError::Lost) => Err(ReportError::Lost),
            Err(SendError::Gone) => Err(ReportError::Failed(ENODEV)),
            Err(SendError::Refused(e)) => Err(ReportError::Failed(e)),
        }
    }
}
