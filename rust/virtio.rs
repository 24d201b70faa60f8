// SPDX-License-Identifier: GPL-2.0

//! The virtio-balloon free page reporting transport (virtio 1.x,
//! `VIRTIO_BALLOON_F_REPORTING`): a virtio driver for the balloon device
//! that uses only its reporting queue. Each report is one buffer of up to
//! [`REPORT_MAX`] scatterlist entries, one per merged pfn range, which the
//! host discards (QEMU: `madvise(MADV_DONTNEED)` per entry) before it hands
//! the buffer back. The pages stay isolated until then.
//!
//! Queue indices follow the *negotiated* queue features, as in Linux's own
//! driver: inflateq, deflateq, then statsq, free_page_vq and reporting_vq
//! only if their feature was negotiated. VMMs such as QEMU lay the queues
//! out by the features they *offer*, so the driver accepts every
//! queue-creating feature the device offers (it never uses inflate, deflate
//! or free page hinting; the stats queue gets the one buffer the spec asks
//! for) and both numberings agree.

use crate::hinting;
use crate::ranges::PfnRange;
use crate::sys::LockKey;
use crate::transport::{
    guest_keeps_free_contents, init_on_free, AnyTransport, NullTransport, Transport, REPORT_MAX,
};
use crate::virtio_sys::{
    self, Device, DriverOps, DriverReg, Registered, SgTable, Virtqueue, WaitQueue,
};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use kernel::{bindings, c_str, ffi::c_uint, prelude::*};

const F_STATS_VQ: u32 = bindings::VIRTIO_BALLOON_F_STATS_VQ;
const F_FREE_PAGE_HINT: u32 = bindings::VIRTIO_BALLOON_F_FREE_PAGE_HINT;
const F_PAGE_POISON: u32 = bindings::VIRTIO_BALLOON_F_PAGE_POISON;
const F_REPORTING: u32 = bindings::VIRTIO_BALLOON_F_REPORTING;

/// `VIRTIO_RING_F_INDIRECT_DESC` (uapi linux/virtio_ring.h, not in the
/// bindings).
const RING_F_INDIRECT_DESC: u32 = 28;

/// `PAGE_POISON` from include/linux/poison.h: the byte page poisoning
/// fills free pages with.
const PAGE_POISON: u8 = 0xaa;

static FEATURES: [c_uint; 4] = [F_STATS_VQ, F_FREE_PAGE_HINT, F_PAGE_POISON, F_REPORTING];
static IDS: [bindings::virtio_device_id; 2] = [
    virtio_sys::device_id(bindings::VIRTIO_ID_BALLOON),
    virtio_sys::ID_END,
];
static DRIVER: DriverReg<Balloon> = DriverReg::new();

/// Woken by the queues' interrupt handler and by device removal.
static ACK: WaitQueue = WaitQueue::new();
static ACK_KEY: LockKey = LockKey::new();
/// Set when the bound device was reset: a report in flight gives up.
static GONE: AtomicBool = AtomicBool::new(false);
/// Set with `GONE` when the device did not confirm its reset: a report in
/// flight gives up, but its pages must stay isolated.
static LOST: AtomicBool = AtomicBool::new(false);
/// How long a reset may take to be confirmed before the pages of a report
/// in flight are given up for lost.
const RESET_WAIT_MS: u32 = 1000;

/// Test builds only: the host never answers a report (`test_stall_host=1`),
/// until the device is reset.
#[cfg(CONFIG_KUNIT)]
pub(crate) static STALL_HOST: AtomicBool = AtomicBool::new(false);

fn host_stalled() -> bool {
    #[cfg(CONFIG_KUNIT)]
    return STALL_HOST.load(Relaxed);
    #[cfg(not(CONFIG_KUNIT))]
    false
}
/// A device is bound (the driver takes one).
static BOUND: AtomicBool = AtomicBool::new(false);
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
    /// init_on_free) and the host does not offer `VIRTIO_BALLOON_F_PAGE_POISON`:
    /// reporting could change them, so it is off.
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
}

/// The registered driver; dropping it unbinds the device (resetting it,
/// which makes any report in flight give its pages back).
pub(crate) struct Driver {
    _reg: Registered<Balloon>,
}

/// Registers the driver; a balloon device that is present and not bound to
/// another driver is probed before this returns.
pub(crate) fn register(module: &'static ThisModule) -> Result<Driver> {
    ACK.init(c_str!("page_hinting_ack"), &ACK_KEY);
    Ok(Driver {
        _reg: DRIVER.register(module, c_str!("page_hinting"), &IDS, &FEATURES)?,
    })
}

/// The virtio driver.
pub(crate) struct Balloon;

extern "C" fn vq_done(_vq: *mut bindings::virtqueue) {
    ACK.wake_all();
}

impl DriverOps for Balloon {
    fn validate(dev: Device) {
        // No allocation while reporting, and guest physical addresses in
        // the descriptors (as Linux's virtio_balloon).
        dev.clear_feature(RING_F_INDIRECT_DESC);
        dev.clear_feature(bindings::VIRTIO_F_ACCESS_PLATFORM);
        if !guest_keeps_free_contents() {
            dev.clear_feature(F_PAGE_POISON);
        } else if !dev.has_feature(F_PAGE_POISON) {
            dev.clear_feature(F_REPORTING);
            STATE.store(State::PoisonRefused as u32, Relaxed);
        }
    }

    fn probe(dev: Device) -> Result {
        if !dev.has_feature(F_REPORTING) {
            if State::get() == State::PoisonRefused {
                pr_warn!("virtio-balloon: not reporting: the guest poisons or initialises free pages and the host does not offer VIRTIO_BALLOON_F_PAGE_POISON\n");
            } else {
                STATE.store(State::NoReporting as u32, Relaxed);
                pr_warn!("virtio-balloon: the device offers no free page reporting\n");
            }
            return Err(ENODEV);
        }
        if BOUND.swap(true, SeqCst) {
            return Err(EBUSY);
        }
        let r = probe_reporting(dev);
        if r.is_err() {
            BOUND.store(false, SeqCst);
        }
        r
    }

    fn remove(dev: Device) {
        stop(dev);
        STATE.store(State::NoDevice as u32, Relaxed);
        BOUND.store(false, SeqCst);
    }

    fn freeze(dev: Device) -> Result {
        // The workqueue is freezable: it ran dry before devices were
        // suspended, so no report is in flight here (one that still were
        // would give up below).
        stop(dev);
        STATE.store(State::Suspended as u32, Relaxed);
        Ok(())
    }

    fn restore(dev: Device) -> Result {
        // The device was reset and its features negotiated again; the
        // queues come back as at probe.
        probe_reporting(dev)
    }
}

/// Resets the device, ends a report in flight and deletes the queues
/// (remove and freeze).
///
/// A report in flight gives its pages back, unmarked, once the device has
/// confirmed the reset: from then on it touches no buffer. A device that
/// does not confirm within [`RESET_WAIT_MS`] may still be reading or
/// discarding them (a VMM whose device runs in its own thread and does not
/// wait for the reset), so its pages stay isolated: a leak, logged, rather
/// than pages the guest reuses while the host discards them.
fn stop(dev: Device) {
    let confirmed = dev.reset_confirmed(RESET_WAIT_MS);
    if !confirmed {
        pr_err!("virtio-balloon: the device did not confirm its reset within {} ms: the pages of a report in flight stay isolated\n", RESET_WAIT_MS);
    }
    LOST.store(!confirmed, SeqCst);
    GONE.store(true, SeqCst);
    ACK.wake_all();
    if let Some(sh) = hinting::shared() {
        let mut w = sh.worker.lock();
        if matches!(w.transport, AnyTransport::Virtio(_)) {
            w.transport = AnyTransport::Null(NullTransport);
        }
    }
    // SAFETY: the device was reset and the transport holding its queues
    // was dropped above (under the worker lock: no report runs).
    unsafe { dev.del_vqs() };
}

fn probe_reporting(dev: Device) -> Result {
    if dev.has_feature(F_PAGE_POISON) {
        // The value free pages hold, so that the host keeps it (0: the
        // guest zeroes them on free).
        let v = if !init_on_free() {
            u32::from_ne_bytes([PAGE_POISON; 4])
        } else {
            0
        };
        dev.write_config_u32(
            core::mem::offset_of!(bindings::virtio_balloon_config, poison_val),
            v,
        );
    }
    let names = [
        Some(c_str!("inflate")),
        Some(c_str!("deflate")),
        dev.has_feature(F_STATS_VQ).then_some(c_str!("stats")),
        dev.has_feature(F_FREE_PAGE_HINT)
            .then_some(c_str!("free_page_vq")),
        Some(c_str!("reporting_vq")),
    ];
    let [_, _, statsq, _, rq] = dev.find_vqs(names, vq_done)?;
    let undo = |e: Error| {
        dev.reset();
        // SAFETY: reset above; the queues found are dropped by the caller
        // of this closure before it runs (they are moved into it or gone).
        unsafe { dev.del_vqs() };
        e
    };
    let Some(rq) = rq else {
        return Err(undo(ENODEV));
    };
    let max_entries = (rq.size() as usize).min(REPORT_MAX);
    let t = KBox::new(
        VirtioTransport {
            vq: rq,
            sg: SgTable::new(),
            max_entries,
            stats_vq: statsq,
            stats: Stat {
                tag: bindings::VIRTIO_BALLOON_S_MEMTOT as u16,
                val: crate::sys::totalram_pages() << kernel::page::PAGE_SHIFT,
            },
        },
        GFP_KERNEL,
    )
    .map_err(|e| undo(e.into()))?;
    LOST.store(false, SeqCst);
    GONE.store(false, SeqCst);
    dev.ready();
    let mut t = t;
    let stats_ptr: *const Stat = &t.stats;
    if let Some(sq) = t.stats_vq.as_mut() {
        // The spec asks for one stats buffer up front. It is never
        // refilled: the driver has no stats to offer.
        let len = core::mem::size_of::<Stat>() as u32;
        // SAFETY: `t.stats` lives in the box until the transport is dropped,
        // which happens after the device was reset (`remove`, or `undo`).
        let r = unsafe { sq.add_outbuf_kick(stats_ptr.cast(), len) };
        if let Err(e) = r {
            pr_warn!("virtio-balloon: stats buffer not queued: {:?}\n", e);
        }
    }
    let Some(sh) = hinting::shared() else {
        drop(t);
        return Err(undo(ENODEV));
    };
    sh.worker.lock().transport = AnyTransport::Virtio(t);
    STATE.store(State::Active as u32, Relaxed);
    pr_info!(
        "virtio-balloon: free page reporting on, {} entries per report{}\n",
        max_entries,
        if dev.has_feature(F_PAGE_POISON) {
            ", poison value sent to the host"
        } else {
            ""
        }
    );
    Ok(())
}

/// A `struct virtio_balloon_stat` (packed, little endian on x86).
#[repr(C, packed)]
struct Stat {
    tag: u16,
    val: u64,
}

/// Reports through the balloon device's reporting queue.
pub(crate) struct VirtioTransport {
    vq: Virtqueue,
    sg: SgTable<REPORT_MAX>,
    max_entries: usize,
    stats_vq: Option<Virtqueue>,
    stats: Stat,
}

/// How long to wait for the host before saying so in the log.
const SLOW_HOST_MS: u32 = 10_000;

impl Transport for VirtioTransport {
    fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn max_entry_bytes(&self) -> u64 {
        // Scatterlist lengths are u32.
        u32::MAX.into()
    }

    fn report(&mut self, ranges: &[PfnRange]) -> Result<bool> {
        if GONE.load(SeqCst) {
            return Err(ENODEV);
        }
        let max = self.max_entry_bytes() >> kernel::page::PAGE_SHIFT;
        if ranges.iter().any(|r| r.pages() == 0 || r.pages() > max) {
            return Err(EINVAL);
        }
        // SAFETY: the ranges are isolated buddy blocks the worker holds
        // (RAM with a memmap), each at most `max` pages (checked above).
        let n = unsafe { self.sg.set(ranges.iter().map(|r| (r.start, r.pages()))) };
        // SAFETY: the worker keeps the pages isolated until this returns,
        // and this returns only once the host gave the buffer back or the
        // device was reset.
        unsafe { self.vq.add_inbuf_kick(&mut self.sg, n) }?;
        let mut waited = 0u32;
        let vq = &mut self.vq;
        while !ACK.wait_until(SLOW_HOST_MS, || {
            GONE.load(SeqCst) || (!host_stalled() && vq.get_buf())
        }) {
            waited += SLOW_HOST_MS / 1000;
            let pages: u64 = ranges.iter().map(|r| r.pages()).sum();
            pr_warn!(
                "virtio-balloon: the host has not answered a report for {} s; its {} pages stay isolated\n",
                waited,
                pages
            );
        }
        if GONE.load(SeqCst) {
            return Err(ENODEV);
        }
        Ok(true)
    }

    fn lost(&self) -> bool {
        LOST.load(SeqCst)
    }
}
