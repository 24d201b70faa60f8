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

use crate::hinting::{self, CpuTotals, Shared};
use crate::knobs::{self, KnobError};
use crate::sysfs_sys::{
    param_info, Attr, AttrList, Attrs, Group, MmDir, Param, ParamOps, ParamSet, ParamShow, ShowBuf,
};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

/// Default `threshold_kb`: see `Documentation/admin-guide/mm/page_hinting.rst`.
pub(crate) const DEFAULT_THRESHOLD_KB: u64 = 4096;
/// Default `flush_ms`.
pub(crate) const DEFAULT_FLUSH_MS: u32 = 100;
/// Default `delay_ms`.
pub(crate) const DEFAULT_DELAY_MS: u32 = 0;

/// The transport chosen at load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TransportChoice {
    /// The virtio-balloon free page reporting queue.
    Virtio,
    /// Hyper-V's memory heat hint hypercall.
    Hypercall,
}

// Module parameters: parsed before `init`, read once by it.
static P_THRESHOLD_KB: AtomicU64 = AtomicU64::new(DEFAULT_THRESHOLD_KB);
/// `u32::MAX`: not given, use the pageblock order.
static P_MIN_ORDER: AtomicU32 = AtomicU32::new(u32::MAX);
static P_ENABLED: AtomicBool = AtomicBool::new(true);
static P_FLUSH_MS: AtomicU32 = AtomicU32::new(DEFAULT_FLUSH_MS);
static P_DELAY_MS: AtomicU32 = AtomicU32::new(DEFAULT_DELAY_MS);
static P_HYPERCALL: AtomicBool = AtomicBool::new(false);

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
        struct $ty;
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

impl ParamShow for PThreshold {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        writeln!(out, "{}", P_THRESHOLD_KB.load(Relaxed)).map_err(|_| EINVAL)
    }
}
impl ParamShow for PMinOrder {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        let o = match P_MIN_ORDER.load(Relaxed) {
            u32::MAX => crate::sys::pageblock_order(),
            o => o,
        };
        writeln!(out, "{}", o).map_err(|_| EINVAL)
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
impl ParamShow for PTransport {
    fn show(out: &mut ShowBuf<'_>) -> Result {
        let t = if P_HYPERCALL.load(Relaxed) {
            "hypercall"
        } else {
            "virtio"
        };
        writeln!(out, "{}", t).map_err(|_| EINVAL)
    }
}

// What `modinfo -p page_hinting` lists.
param_info!(
    "threshold_kb",
    "ulong",
    "Pending freed memory on one CPU, in KiB, that starts a report (4..1073741824, default 4096)"
);
param_info!(
    "min_order",
    "uint",
    "Order of the smallest block reported (0..MAX_PAGE_ORDER, default pageblock_order: 9 on x86)"
);
param_info!(
    "enabled",
    "uint",
    "1: capture and report freed memory (default); 0: paused"
);
param_info!(
    "flush_ms",
    "uint",
    "ms after the first capture on an idle CPU that memory below threshold_kb is reported anyway (0..60000, 0: never, default 100)"
);
param_info!(
    "delay_ms",
    "uint",
    "ms a batch waits before the worker looks at it (0..1000, default 0)"
);
param_info!(
    "transport",
    "charp",
    "How reports reach the host: virtio (virtio-balloon free page reporting, default) or hypercall (Hyper-V)"
);

struct PTransport;
impl ParamSet for PTransport {
    fn set(input: &[u8]) -> Result {
        match input.strip_suffix(b"\n").unwrap_or(input) {
            b"virtio" => P_HYPERCALL.store(false, Relaxed),
            b"hypercall" => P_HYPERCALL.store(true, Relaxed),
            _ => {
                let shown = core::str::from_utf8(input).unwrap_or("(not UTF-8)");
                pr_err!(
                    "transport={:?} refused: not \"virtio\" or \"hypercall\"\n",
                    shown
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }
}

// Test builds only (`CONFIG_KUNIT`): `test_stall_host=1` makes the virtio
// transport wait for an answer the host never gives (it ignores the
// device's acknowledgements until the device is reset), for the scenarios
// that check a stuck host blocks neither unload nor the rest of the guest.
#[cfg(CONFIG_KUNIT)]
knob_param!(
    PStallHost,
    "test_stall_host",
    knobs::parse_enabled,
    crate::virtio::STALL_HOST
);
#[cfg(CONFIG_KUNIT)]
static OPS_STALL_HOST: ParamOps = ParamOps::new::<PStallHost>();
#[cfg(CONFIG_KUNIT)]
#[link_section = "__param"]
#[used]
static PARAM_STALL_HOST: Param = Param::new(c"test_stall_host", &OPS_STALL_HOST);

// Test builds only: `test_pause_scan=1` (writable at run time) makes the
// worker wait, holding the blocks it isolated, before its next isolation
// (see `hinting::test_hooks`); `test_scan_from_pfn=N` makes it scan only
// pfns from N on. The memory hotplug scenario uses them to hold blocks in
// the memory it offlines.
#[cfg(CONFIG_KUNIT)]
knob_param!(
    PPauseScan,
    "test_pause_scan",
    knobs::parse_enabled,
    hinting::test_hooks::PAUSE_SCAN
);
#[cfg(CONFIG_KUNIT)]
struct PScanFrom;
#[cfg(CONFIG_KUNIT)]
impl ParamSet for PScanFrom {
    fn set(input: &[u8]) -> Result {
        let s = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        let v: u64 = s.trim().parse().map_err(|_| EINVAL)?;
        hinting::test_hooks::SCAN_FROM.store(v, Relaxed);
        Ok(())
    }
}
#[cfg(CONFIG_KUNIT)]
static OPS_PAUSE_SCAN: ParamOps = ParamOps::new::<PPauseScan>();
#[cfg(CONFIG_KUNIT)]
static OPS_SCAN_FROM: ParamOps = ParamOps::new::<PScanFrom>();
#[cfg(CONFIG_KUNIT)]
#[link_section = "__param"]
#[used]
static PARAM_PAUSE_SCAN: Param = Param::new_writable(c"test_pause_scan", &OPS_PAUSE_SCAN);
#[cfg(CONFIG_KUNIT)]
#[link_section = "__param"]
#[used]
static PARAM_SCAN_FROM: Param = Param::new_writable(c"test_scan_from_pfn", &OPS_SCAN_FROM);

static OPS_THRESHOLD: ParamOps = ParamOps::new_shown::<PThreshold>();
static OPS_MIN_ORDER: ParamOps = ParamOps::new_shown::<PMinOrder>();
static OPS_ENABLED: ParamOps = ParamOps::new_shown::<PEnabled>();
static OPS_FLUSH: ParamOps = ParamOps::new_shown::<PFlush>();
static OPS_DELAY: ParamOps = ParamOps::new_shown::<PDelay>();
static OPS_TRANSPORT: ParamOps = ParamOps::new_shown::<PTransport>();

#[link_section = "__param"]
#[used]
static PARAM_THRESHOLD: Param = Param::new_shown(c"threshold_kb", &OPS_THRESHOLD);
#[link_section = "__param"]
#[used]
static PARAM_MIN_ORDER: Param = Param::new_shown(c"min_order", &OPS_MIN_ORDER);
#[link_section = "__param"]
#[used]
static PARAM_ENABLED: Param = Param::new_shown(c"enabled", &OPS_ENABLED);
#[link_section = "__param"]
#[used]
static PARAM_FLUSH: Param = Param::new_shown(c"flush_ms", &OPS_FLUSH);
#[link_section = "__param"]
#[used]
static PARAM_DELAY: Param = Param::new_shown(c"delay_ms", &OPS_DELAY);
#[link_section = "__param"]
#[used]
static PARAM_TRANSPORT: Param = Param::new_shown(c"transport", &OPS_TRANSPORT);

/// The initial knob values from the module parameters (defaults where none
/// was given), and the chosen transport.
pub(crate) fn params() -> (hinting::Params, TransportChoice) {
    let min_order = match P_MIN_ORDER.load(Relaxed) {
        u32::MAX => crate::sys::pageblock_order(),
        o => o,
    };
    let choice = if P_HYPERCALL.load(Relaxed) {
        TransportChoice::Hypercall
    } else {
        TransportChoice::Virtio
    };
    (
        hinting::Params {
            threshold_kb: P_THRESHOLD_KB.load(Relaxed),
            min_order,
            enabled: P_ENABLED.load(Relaxed),
            flush_ms: P_FLUSH_MS.load(Relaxed),
            delay_ms: P_DELAY_MS.load(Relaxed),
        },
        choice,
    )
}

fn shared() -> Result<&'static Shared> {
    hinting::shared().ok_or(ENODEV)
}

/// `/sys/kernel/mm/page_hinting/*`.
struct Knobs;

const THRESHOLD_KB: usize = 0;
const MIN_ORDER: usize = 1;
const ENABLED: usize = 2;
const FLUSH_MS: usize = 3;
const TRANSPORT: usize = 4;
const DELAY_MS: usize = 5;

impl Attrs for Knobs {
    fn show(idx: usize, out: &mut ShowBuf<'_>) -> Result {
        let sh = shared()?;
        let c = &sh.cfg;
        let r = match idx {
            THRESHOLD_KB => writeln!(out, "{}", c.threshold_kb.load(Relaxed)),
            MIN_ORDER => writeln!(out, "{}", c.min_order.load(Relaxed)),
            ENABLED => writeln!(out, "{}", u8::from(c.enabled.load(Relaxed))),
            FLUSH_MS => writeln!(out, "{}", c.flush_ms.load(Relaxed)),
            DELAY_MS => writeln!(out, "{}", c.delay_ms.load(Relaxed)),
            TRANSPORT => writeln!(out, "{}", crate::transport_status()),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)
    }

    fn store(idx: usize, input: &[u8]) -> Result {
        let sh = shared()?;
        let c = &sh.cfg;
        let _guard = sh.knob_lock.lock();
        match idx {
            THRESHOLD_KB => {
                // (A deliberately broken build checks only the digits.)
                let kb = if cfg!(ph_break_knob) {
                    knobs::parse_u64(input).map_err(bad)?
                } else {
                    knobs::parse_threshold_kb(input).map_err(bad)?
                };
                let pages = knobs::threshold_pages(kb, kernel::page::PAGE_SIZE as u64);
                c.threshold_kb.store(kb, Relaxed);
                c.threshold_pages.store(pages, Relaxed);
                P_THRESHOLD_KB.store(kb, Relaxed);
            }
            MIN_ORDER => {
                let o = knobs::parse_min_order(input).map_err(bad)?;
                c.min_order.store(o, Relaxed);
                P_MIN_ORDER.store(o, Relaxed);
            }
            ENABLED => {
                let on = knobs::parse_enabled(input).map_err(bad)?;
                sh.set_enabled(on);
                P_ENABLED.store(on, Relaxed);
            }
            FLUSH_MS => {
                let ms = knobs::parse_flush_ms(input).map_err(bad)?;
                c.flush_ms.store(ms, Relaxed);
                P_FLUSH_MS.store(ms, Relaxed);
                sh.arm_flush();
            }
            DELAY_MS => {
                let ms = knobs::parse_delay_ms(input).map_err(bad)?;
                c.delay_ms.store(ms, Relaxed);
                P_DELAY_MS.store(ms, Relaxed);
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

static KNOB_ATTRS: [Attr; 6] = [
    Attr::new::<Knobs, THRESHOLD_KB>(c"threshold_kb", true),
    Attr::new::<Knobs, MIN_ORDER>(c"min_order", true),
    Attr::new::<Knobs, ENABLED>(c"enabled", true),
    Attr::new::<Knobs, FLUSH_MS>(c"flush_ms", true),
    Attr::new::<Knobs, TRANSPORT>(c"transport", false),
    Attr::new::<Knobs, DELAY_MS>(c"delay_ms", true),
];
static KNOB_LIST: AttrList<7> = AttrList::new(&KNOB_ATTRS);
static KNOB_GROUP: Group = Group::new(None, &KNOB_LIST);

/// One statistic: its file name and how to read it.
type StatFn = fn(&Shared, &CpuTotals) -> u64;

/// `/sys/kernel/mm/page_hinting/stats/*`, in this order.
const STATS: [(&core::ffi::CStr, StatFn); 28] = [
    (c"captured_pages", |_, t| t.captured_pages),
    (c"captured_blocks", |_, t| t.captured_blocks),
    (c"pending_pages", |_, t| t.pending_pages),
    (c"overflow_blocks", |_, t| t.overflow_entries),
    (c"overflow_pages", |_, t| t.overflow_pages),
    (c"batches", |s, _| s.stats.batches.load(Relaxed)),
    (c"reports", |s, _| s.stats.reports.load(Relaxed)),
    (c"reported_ranges", |s, _| {
        s.stats.ranges_reported.load(Relaxed)
    }),
    (c"reported_pages", |s, _| {
        s.stats.pages_reported.load(Relaxed)
    }),
    (c"skipped_busy_pages", |s, _| {
        s.stats.skipped_busy.load(Relaxed)
    }),
    (c"skipped_reported_pages", |s, _| {
        s.stats.skipped_reported.load(Relaxed)
    }),
    (c"skipped_small_pages", |s, _| {
        s.stats.skipped_small.load(Relaxed)
    }),
    (c"skipped_low_pages", |s, _| {
        s.stats.skipped_low.load(Relaxed)
    }),
    (c"unlisted_pages", |s, _| s.stats.unlisted.load(Relaxed)),
    (c"retry_rounds", |s, _| s.stats.retry_rounds.load(Relaxed)),
    (c"pcp_drains", |s, _| s.stats.drains.load(Relaxed)),
    (c"retry_dropped_pages", |s, _| {
        s.stats.retry_dropped.load(Relaxed)
    }),
    (c"overflow_spans", |s, _| s.stats.spill_ranges.load(Relaxed)),
    (c"retry_given_up_pages", |s, _| {
        s.stats.retry_given_up.load(Relaxed)
    }),
    (c"disabled_dropped_pages", |s, _| {
        s.stats.dropped_disabled.load(Relaxed)
    }),
    (c"no_transport_pages", |s, _| {
        s.stats.no_transport.load(Relaxed)
    }),
    (c"transport_errors", |s, _| {
        s.stats.transport_errors.load(Relaxed)
    }),
    (c"isolated_pages", |s, _| s.stats.isolated_now.load(Relaxed)),
    (c"isolated_peak_pages", |s, _| {
        s.stats.isolated_peak.load(Relaxed)
    }),
    (c"isolated_total_pages", |s, _| {
        s.stats.pages_isolated.load(Relaxed)
    }),
    (c"last_report_latency_us", |s, _| {
        s.stats.last_latency_ns.load(Relaxed) / 1000
    }),
    (c"worker_busy_us", |s, _| {
        s.stats.worker_busy_ns.load(Relaxed) / 1000
    }),
    (c"hotplug_handoffs", |s, _| {
        s.stats.hotplug_handoffs.load(Relaxed)
    }),
];

/// `stats/*`.
struct Stats;

impl Attrs for Stats {
    fn show(idx: usize, out: &mut ShowBuf<'_>) -> Result {
        let sh = shared()?;
        let (_, f) = STATS.get(idx).ok_or(EINVAL)?;
        let v = f(sh, &sh.cpu_totals());
        writeln!(out, "{}", v).map_err(|_| EINVAL)
    }

    fn store(_idx: usize, _input: &[u8]) -> Result {
        Err(EPERM)
    }
}

macro_rules! stat_attrs {
    ($($i:literal),*) => {
        [$(Attr::new::<Stats, $i>(STATS[$i].0, false)),*]
    };
}

static STAT_ATTRS: [Attr; 28] = stat_attrs!(
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27
);
static STAT_LIST: AttrList<29> = AttrList::new(&STAT_ATTRS);
static STAT_GROUP: Group = Group::new(Some(c"stats"), &STAT_LIST);

static GROUPS: [&Group; 2] = [&KNOB_GROUP, &STAT_GROUP];

/// Creates `/sys/kernel/mm/page_hinting/`; dropping it removes the
/// directory and waits for running reads and writes.
pub(crate) fn create() -> Result<MmDir> {
    MmDir::new(c"page_hinting", &GROUPS)
}
