// SPDX-License-Identifier: GPL-2.0

//! The user interface: `/sys/kernel/mm/page_hinting/` (knobs, the
//! transport's state, `stats/`) and the module parameters that give the
//! knobs' initial values.
//!
//! Every write goes through the core's parser ([`crate::knobs`]): a bad
//! value gets `-EINVAL` and leaves the knob as it was. Writers are
//! serialised, so concurrent writes leave one of the written values, never
//! a mix. `Documentation/ABI/testing/sysfs-kernel-mm-page_hinting` is the
//! reference for every file.

#![forbid(unsafe_code)]

use crate::hinting::{self, CpuTotals, Mechanism};
use crate::kernel_ext::{
    mm,
    sysfs::{Attr, AttrList, Attrs, CtxSlot, Dir, Group, ParamOps, ParamSet, ParamShow, ShowBuf},
};
use crate::knobs::{self, KnobError};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::{c_str, prelude::*, sync::Arc};

/// Default `threshold_kb`: see `Documentation/admin-guide/mm/page_hinting.rst`.
pub(crate) const DEFAULT_THRESHOLD_KB: u64 = 4096;
/// Default `flush_ms`.
pub(crate) const DEFAULT_FLUSH_MS: u32 = 100;
/// Default `delay_ms`.
pub(crate) const DEFAULT_DELAY_MS: u32 = 0;
/// Default `settle_ms`: blocks below a pageblock are reported after one to
/// two seconds free, about when Linux's reporting would look (2 s).
pub(crate) const DEFAULT_SETTLE_MS: u32 = 1000;
/// Default `host_page_kb`: no host huge pages assumed (`min_order` decides).
pub(crate) const DEFAULT_HOST_PAGE_KB: u64 = 4;

/// The transport chosen at load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TransportChoice {
    /// The `report()` callback of the kernel's registered free page
    /// reporting device (virtio_balloon, hv_balloon), in place of mm's own
    /// engine (the default).
    Engine,
    /// The virtio-balloon free page reporting queue, through the module's
    /// own driver for the device.
    Virtio,
    /// Hyper-V's memory heat hint hypercall.
    Hypercall,
}

// Module parameters: parsed before `init`, read once by it.
static P_THRESHOLD_KB: AtomicU64 = AtomicU64::new(DEFAULT_THRESHOLD_KB);
/// [`MIN_ORDER_DEFAULT`] until a `min_order` is given.
static P_MIN_ORDER: AtomicU32 = AtomicU32::new(MIN_ORDER_DEFAULT);
/// What `P_MIN_ORDER` holds while no `min_order` was given.
const MIN_ORDER_DEFAULT: u32 = u32::MAX;
static P_ENABLED: AtomicBool = AtomicBool::new(true);
static P_FLUSH_MS: AtomicU32 = AtomicU32::new(DEFAULT_FLUSH_MS);
static P_DELAY_MS: AtomicU32 = AtomicU32::new(DEFAULT_DELAY_MS);
static P_SETTLE_MS: AtomicU32 = AtomicU32::new(DEFAULT_SETTLE_MS);
static P_HOST_PAGE_KB: AtomicU64 = AtomicU64::new(DEFAULT_HOST_PAGE_KB);
/// The `transport` parameter, a [`TransportChoice`] as `u32`.
static P_TRANSPORT: AtomicU32 = AtomicU32::new(TransportChoice::Engine as u32);

/// Logs why a value was refused and turns the error into `EINVAL`.
fn refuse(what: &str, input: &[u8], e: KnobError) -> Error {
    let shown = core::str::from_utf8(input).unwrap_or("(not UTF-8)");
    pr_err!(
        "{}={:?} refused: {}\n",
        what,
        shown.trim_end_matches('\n'),
        e
    );
    Error::from_errno(-e.errno())
}

/// A module parameter that parses like its sysfs knob (a bad value is
/// refused with a log line) and stores into a static (its `P_*` static for
/// `init`, or a test switch).
macro_rules! knob_param {
    ($ty:ident, $name:literal, $parse:path, $store:path) => {
        pub(crate) struct $ty;
        impl ParamSet for $ty {
            fn set(input: &[u8]) -> Result {
                let v = $parse(input).map_err(|e| refuse($name, input, e))?;
                $store.store(v, Relaxed);
                Ok(())
            }
        }
    };
}

// The knobs' parameters are shown in `/sys/module/page_hinting/parameters/`
// (read-only there): the `P_*` statics hold the value given at load, and
// every accepted write to the sysfs knob updates them, so both places show
// the value in force.
knob_param!(
    PThreshold,
    "threshold_kb",
    knobs::parse_threshold_kb,
    P_THRESHOLD_KB
);
knob_param!(PMinOrder, "min_order", knobs::parse_min_order, P_MIN_ORDER);
knob_param!(PEnabled, "enabled", knobs::parse_enabled, P_ENABLED);
knob_param!(PFlush, "flush_ms", knobs::parse_flush_ms, P_FLUSH_MS);
knob_param!(PDelay, "delay_ms", knobs::parse_delay_ms, P_DELAY_MS);
knob_param!(PSettle, "settle_ms", knobs::parse_settle_ms, P_SETTLE_MS);
knob_param!(
    PHostPage,
    "host_page_kb",
    knobs::parse_host_page_kb,
    P_HOST_PAGE_KB
);

impl ParamShow for PThreshold {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_THRESHOLD_KB.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PMinOrder {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", given_min_order()).map_err(|_| EINVAL)
    }
}
impl ParamShow for PEnabled {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", u8::from(P_ENABLED.load(Relaxed))).map_err(|_| EINVAL)
    }
}
impl ParamShow for PFlush {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_FLUSH_MS.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PDelay {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_DELAY_MS.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PSettle {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_SETTLE_MS.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PHostPage {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_HOST_PAGE_KB.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PTransport {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", transport_choice().name()).map_err(|_| EINVAL)
    }
}

pub(crate) struct PTransport;
impl ParamSet for PTransport {
    fn set(input: &[u8]) -> Result {
        match input.strip_suffix(b"\n").unwrap_or(input) {
            b"engine" => P_TRANSPORT.store(TransportChoice::Engine as u32, Relaxed),
            b"virtio" => P_TRANSPORT.store(TransportChoice::Virtio as u32, Relaxed),
            b"hypercall" => P_TRANSPORT.store(TransportChoice::Hypercall as u32, Relaxed),
            _ => {
                let shown = core::str::from_utf8(input).unwrap_or("(not UTF-8)");
                pr_err!(
                    "transport={:?} refused: not \"engine\", \"virtio\" or \"hypercall\"\n",
                    shown
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }
}

/// The ops of the module parameters (declared at the crate root).
pub(crate) static OPS_THRESHOLD: ParamOps = ParamOps::new_shown::<PThreshold>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_MIN_ORDER: ParamOps = ParamOps::new_shown::<PMinOrder>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_ENABLED: ParamOps = ParamOps::new_shown::<PEnabled>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_FLUSH: ParamOps = ParamOps::new_shown::<PFlush>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_DELAY: ParamOps = ParamOps::new_shown::<PDelay>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_SETTLE: ParamOps = ParamOps::new_shown::<PSettle>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_HOST_PAGE: ParamOps = ParamOps::new_shown::<PHostPage>();
/// See [`OPS_THRESHOLD`].
pub(crate) static OPS_TRANSPORT: ParamOps = ParamOps::new_shown::<PTransport>();

impl TransportChoice {
    /// The parameter's word for it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TransportChoice::Engine => "engine",
            TransportChoice::Virtio => "virtio",
            TransportChoice::Hypercall => "hypercall",
        }
    }
}

/// The `transport` parameter.
fn transport_choice() -> TransportChoice {
    match P_TRANSPORT.load(Relaxed) {
        x if x == TransportChoice::Virtio as u32 => TransportChoice::Virtio,
        x if x == TransportChoice::Hypercall as u32 => TransportChoice::Hypercall,
        _ => TransportChoice::Engine,
    }
}

/// `min_order` as given at load (or written since), or the pageblock order.
fn given_min_order() -> u32 {
    match P_MIN_ORDER.load(Relaxed) {
        MIN_ORDER_DEFAULT => mm::pageblock_order(),
        o => o,
    }
}

/// The initial knob values from the module parameters (defaults where none
/// was given), and the chosen transport.
pub(crate) fn params() -> (hinting::Params, TransportChoice) {
    let min_order = given_min_order();
    let choice = transport_choice();
    (
        hinting::Params {
            threshold_kb: P_THRESHOLD_KB.load(Relaxed),
            min_order,
            enabled: P_ENABLED.load(Relaxed),
            flush_ms: P_FLUSH_MS.load(Relaxed),
            delay_ms: P_DELAY_MS.load(Relaxed),
            settle_ms: P_SETTLE_MS.load(Relaxed),
            host_page_kb: P_HOST_PAGE_KB.load(Relaxed),
        },
        choice,
    )
}

/// What the directory's attributes see: the mechanism, and how to show the
/// transport's state (which the module's root knows).
pub(crate) struct Ui {
    /// The mechanism the knobs tune and the statistics read.
    pub(crate) mech: Arc<Mechanism>,
    /// Writes what `transport` shows (without the newline). Takes no lock,
    /// so it answers while a report waits for a slow host.
    pub(crate) transport_status: fn(&mut ShowBuf<'_>) -> core::fmt::Result,
}

/// Where the directory keeps its [`Ui`].
static UI: CtxSlot<Ui> = CtxSlot::new();

/// `/sys/kernel/mm/page_hinting/*`.
struct Knobs;

const THRESHOLD_KB: usize = 0;
const MIN_ORDER: usize = 1;
const ENABLED: usize = 2;
const FLUSH_MS: usize = 3;
const TRANSPORT: usize = 4;
const DELAY_MS: usize = 5;
const HOST_PAGE_KB: usize = 6;
const SETTLE_MS: usize = 7;

impl Attrs for Knobs {
    type Ctx = Ui;
    const SLOT: &'static CtxSlot<Ui> = &UI;

    fn show(ui: &Ui, idx: usize, out: &mut ShowBuf<'_>) -> Result {
        let cfg = &ui.mech.cfg;
        let r = match idx {
            THRESHOLD_KB => writeln!(out, "{}", cfg.threshold_kb.load(Relaxed)),
            MIN_ORDER => writeln!(out, "{}", cfg.min_order.load(Relaxed)),
            ENABLED => writeln!(out, "{}", u8::from(cfg.enabled.load(Relaxed))),
            FLUSH_MS => writeln!(out, "{}", cfg.flush_ms.load(Relaxed)),
            DELAY_MS => writeln!(out, "{}", cfg.delay_ms.load(Relaxed)),
            SETTLE_MS => writeln!(out, "{}", cfg.settle_ms.load(Relaxed)),
            HOST_PAGE_KB => writeln!(out, "{}", cfg.host_page_kb.load(Relaxed)),
            TRANSPORT => (ui.transport_status)(out).and_then(|()| writeln!(out)),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)
    }

    fn store(ui: &Ui, idx: usize, input: &[u8]) -> Result {
        let mech = ui.mech.as_arc_borrow();
        let cfg = &mech.cfg;
        let _guard = mech.knob_lock.lock();
        match idx {
            THRESHOLD_KB => {
                let kb = knobs::parse_threshold_kb(input).map_err(bad)?;
                let pages = knobs::threshold_pages(kb, kernel::page::PAGE_SIZE as u64);
                cfg.threshold_kb.store(kb, Relaxed);
                cfg.threshold_pages.store(pages, Relaxed);
                P_THRESHOLD_KB.store(kb, Relaxed);
            }
            MIN_ORDER => {
                let o = knobs::parse_min_order(input).map_err(bad)?;
                cfg.min_order.store(o, Relaxed);
                P_MIN_ORDER.store(o, Relaxed);
            }
            ENABLED => {
                let on = knobs::parse_enabled(input).map_err(bad)?;
                hinting::set_enabled(mech, on);
                P_ENABLED.store(on, Relaxed);
            }
            FLUSH_MS => {
                let ms = knobs::parse_flush_ms(input).map_err(bad)?;
                cfg.flush_ms.store(ms, Relaxed);
                P_FLUSH_MS.store(ms, Relaxed);
                hinting::arm_flush(mech);
            }
            DELAY_MS => {
                let ms = knobs::parse_delay_ms(input).map_err(bad)?;
                cfg.delay_ms.store(ms, Relaxed);
                P_DELAY_MS.store(ms, Relaxed);
                // Counted frees would not move their batch's newest time.
                hinting::unhint_all(mech);
            }
            SETTLE_MS => {
                let ms = knobs::parse_settle_ms(input).map_err(bad)?;
                cfg.settle_ms.store(ms, Relaxed);
                P_SETTLE_MS.store(ms, Relaxed);
                // What waits now goes at the next tick, which comes within
                // the new interval.
                hinting::arm_settle(mech);
            }
            HOST_PAGE_KB => {
                let kb = knobs::parse_host_page_kb(input).map_err(bad)?;
                if let Err(why) = hinting::check_host_page_kb(kb) {
                    // Well-formed but impossible here: say why, once per
                    // write (only root writes the knob).
                    pr_warn!("host_page_kb={} refused: {}\n", kb, why);
                    return Err(EINVAL);
                }
                // The worker takes the new order at its next batch; what it
                // holds now goes back as it would have.
                cfg.host_page_kb.store(kb, Relaxed);
                cfg.host_order.store(hinting::host_order(kb), Relaxed);
                P_HOST_PAGE_KB.store(kb, Relaxed);
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }
}

/// A refused write: `-EINVAL` (the store's caller sees why in errno only;
/// the log stays quiet so that userspace cannot flood it).
fn bad(e: KnobError) -> Error {
    Error::from_errno(-e.errno())
}

static KNOB_ATTRS: [Attr; 8] = [
    Attr::new::<Knobs, THRESHOLD_KB>(c_str!("threshold_kb"), true),
    Attr::new::<Knobs, MIN_ORDER>(c_str!("min_order"), true),
    Attr::new::<Knobs, ENABLED>(c_str!("enabled"), true),
    Attr::new::<Knobs, FLUSH_MS>(c_str!("flush_ms"), true),
    Attr::new::<Knobs, TRANSPORT>(c_str!("transport"), false),
    Attr::new::<Knobs, DELAY_MS>(c_str!("delay_ms"), true),
    Attr::new::<Knobs, HOST_PAGE_KB>(c_str!("host_page_kb"), true),
    Attr::new::<Knobs, SETTLE_MS>(c_str!("settle_ms"), true),
];
static KNOB_LIST: AttrList<9> = AttrList::new(&KNOB_ATTRS);
static KNOB_GROUP: Group = Group::new(None, &KNOB_LIST);

/// One statistic: its file name and how to read it.
type StatFn = fn(&hinting::Stats, &CpuTotals) -> u64;

/// A worker counter shown as is, under its own name.
macro_rules! worker_stat {
    ($field:ident) => {
        (
            kernel::c_str!(stringify!($field)),
            |s: &hinting::Stats, _: &CpuTotals| s.$field.load(Relaxed),
        )
    };
}

/// A per-CPU counter, summed, under its own name.
macro_rules! cpu_stat {
    ($field:ident) => {
        (
            kernel::c_str!(stringify!($field)),
            |_: &hinting::Stats, t: &CpuTotals| t.$field,
        )
    };
}

/// `/sys/kernel/mm/page_hinting/stats/*`, in this order; each file has the
/// name of its counter.
const STATS: [(&kernel::str::CStr, StatFn); 38] = [
    cpu_stat!(captured_pages),
    cpu_stat!(captured_blocks),
    cpu_stat!(pending_pages),
    cpu_stat!(overflow_blocks),
    cpu_stat!(overflow_pages),
    worker_stat!(batches),
    worker_stat!(reports),
    worker_stat!(reported_ranges),
    worker_stat!(reported_pages),
    worker_stat!(skipped_busy_pages),
    worker_stat!(skipped_reported_pages),
    worker_stat!(skipped_small_pages),
    worker_stat!(skipped_low_pages),
    worker_stat!(unlisted_pages),
    worker_stat!(skipped_isolated_pages),
    worker_stat!(retry_rounds),
    worker_stat!(settle_ticks),
    worker_stat!(settle_scanned_pages),
    worker_stat!(settle_refreed_pages),
    worker_stat!(pcp_drains),
    worker_stat!(retry_dropped_pages),
    worker_stat!(overflow_spans),
    worker_stat!(retry_given_up_pages),
    worker_stat!(disabled_dropped_pages),
    worker_stat!(no_transport_pages),
    worker_stat!(transport_errors),
    worker_stat!(isolated_pages),
    worker_stat!(isolated_peak_pages),
    worker_stat!(isolated_total_pages),
    (c_str!("last_report_latency_us"), |s, _| {
        s.last_report_latency_ns.load(Relaxed) / 1000
    }),
    (c_str!("worker_busy_us"), |s, _| {
        s.worker_busy_ns.load(Relaxed) / 1000
    }),
    (c_str!("worker_cpu_us"), |s, _| {
        s.worker_cpu_ns.load(Relaxed) / 1000
    }),
    worker_stat!(hotplug_handoffs),
    worker_stat!(host_pages_reported),
    worker_stat!(host_pages_busy),
    worker_stat!(host_pages_consolidated),
    worker_stat!(zone_lock_max_ns),
    (c_str!("free_irqoff_max_ns"), |s, _| {
        mm::ticks_to_ns(s.free_irqoff_max_ticks.load(Relaxed))
    }),
];

/// `stats/*`.
struct Stats;

impl Attrs for Stats {
    type Ctx = Ui;
    const SLOT: &'static CtxSlot<Ui> = &UI;

    fn show(ui: &Ui, idx: usize, out: &mut ShowBuf<'_>) -> Result {
        let (_, f) = STATS.get(idx).ok_or(EINVAL)?;
        let v = f(&ui.mech.stats, &ui.mech.cpu_totals());
        writeln!(out, "{}", v).map_err(|_| EINVAL)
    }

    fn store(_ui: &Ui, _idx: usize, _input: &[u8]) -> Result {
        Err(EPERM)
    }
}

macro_rules! stat_attrs {
    ($($i:literal),*) => {
        [$(Attr::new::<Stats, $i>(STATS[$i].0, false)),*]
    };
}

// One attribute per counter: a counter added to STATS without its index
// here fails to build.
static STAT_ATTRS: [Attr; STATS.len()] = stat_attrs!(
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37
);
static STAT_LIST: AttrList<{ STATS.len() + 1 }> = AttrList::new(&STAT_ATTRS);
static STAT_GROUP: Group = Group::new(Some(c_str!("stats")), &STAT_LIST);

#[cfg(not(ph_audit))]
static GROUPS: [&Group; 2] = [&KNOB_GROUP, &STAT_GROUP];
#[cfg(ph_audit)]
static GROUPS: [&Group; 3] = [&KNOB_GROUP, &STAT_GROUP, &audit::GROUP];

/// `test/audit`, in the audit builds only (`--cfg ph_audit`): writing `1`
/// runs the lost-report audit (`hinting::audit`) and fails with `EIO` if it
/// found freed memory the module never reported; reading shows the last
/// audit's lost blocks (`none` before the first).
#[cfg(ph_audit)]
mod audit {
    use super::{Ui, UI};
    use crate::hinting::audit;
    use crate::kernel_ext::sysfs::{Attr, AttrList, Attrs, CtxSlot, Group, ShowBuf};
    use core::fmt::Write;
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use kernel::{c_str, prelude::*};

    /// Lost blocks at the last audit; `u64::MAX` before the first.
    static LAST: AtomicU64 = AtomicU64::new(u64::MAX);

    struct Audit;

    impl Attrs for Audit {
        type Ctx = Ui;
        const SLOT: &'static CtxSlot<Ui> = &UI;

        fn show(_ui: &Ui, _idx: usize, out: &mut ShowBuf<'_>) -> Result {
            match LAST.load(Relaxed) {
                u64::MAX => writeln!(out, "none"),
                n => writeln!(out, "{}", n),
            }
            .map_err(|_| EINVAL)
        }

        fn store(ui: &Ui, _idx: usize, input: &[u8]) -> Result {
            if crate::knobs::parse_enabled(input).map_err(|_| EINVAL)? {
                let out = audit::run(ui.mech.as_arc_borrow());
                LAST.store(out.nlost as u64, Relaxed);
                if out.nlost != 0 {
                    return Err(EIO);
                }
            }
            Ok(())
        }
    }

    static ATTRS: [Attr; 1] = [Attr::new::<Audit, 0>(c_str!("audit"), true)];
    static LIST: AttrList<2> = AttrList::new(&ATTRS);
    pub(super) static GROUP: Group = Group::new(Some(c_str!("test")), &LIST);
}

/// Creates `/sys/kernel/mm/page_hinting/`, whose files see `ui`; dropping
/// it removes the directory and waits for running reads and writes.
pub(crate) fn create(ui: Arc<Ui>) -> Result<Dir<Ui>> {
    Dir::new(c_str!("page_hinting"), &GROUPS, &UI, ui)
}
