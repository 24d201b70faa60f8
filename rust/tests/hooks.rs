// SPDX-License-Identifier: GPL-2.0

//! The test switches: module parameters of the test build that the
//! real-guest scenarios use, and the hooks the mechanism and the virtio
//! transport call in the test build.
//!
//! - `test_stall_host=1`: the virtio transport waits for an answer the host
//!   never gives (it ignores the device's acknowledgements until the device
//!   is reset), for the scenarios that check that a stuck host blocks
//!   neither unload nor the rest of the guest.
//! - `test_pause_scan=1` (writable at run time): the worker waits, holding
//!   the blocks it isolated, before its next isolation;
//!   `test_scan_from_pfn=N`: it scans only pfns from N on. The memory
//!   hotplug scenario uses them to hold blocks in the memory it offlines.
//! - [`hold_on_pcp`] (KUnit only): the worker's scans treat a range as if
//!   its pages sat on a per-CPU list (free, but off the free lists) until
//!   the worker's next drain of those lists, whenever that comes: the
//!   deterministic stand-in for a freed THP that stays on a per-CPU list
//!   through its retry rounds (issue 38).

use crate::kernel_ext::{
    mm,
    sysfs::{module_param, ParamOps, ParamSet},
};
use crate::ranges::PfnRange;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

/// The host never answers a report.
pub(crate) static STALL_HOST: AtomicBool = AtomicBool::new(false);
/// Pause before an isolation while blocks are held.
pub(crate) static PAUSE_SCAN: AtomicBool = AtomicBool::new(false);
/// Scan only pfns from here on.
pub(crate) static SCAN_FROM: AtomicU64 = AtomicU64::new(0);
/// The range held as if on a per-CPU list (`[HOLD_START, HOLD_END)`),
/// empty if none.
static HOLD_START: AtomicU64 = AtomicU64::new(0);
static HOLD_END: AtomicU64 = AtomicU64::new(0);

/// Makes the worker's scans treat `r` as pages on a per-CPU list until its
/// next drain.
pub(crate) fn hold_on_pcp(r: PfnRange) {
    HOLD_END.store(0, Relaxed);
    HOLD_START.store(r.start, Relaxed);
    HOLD_END.store(r.end, Relaxed);
}

/// Whether a range is still held (no drain since [`hold_on_pcp`]).
pub(crate) fn holding() -> bool {
    HOLD_END.load(Relaxed) != 0
}

/// The worker drained the per-CPU lists: what was held is on the free
/// lists now.
pub(crate) fn drained() {
    HOLD_END.store(0, Relaxed);
}

/// Splits `r` around the held range: the pieces to scan, and how many
/// pages of `r` are held.
pub(crate) fn held_on_pcp(r: PfnRange) -> ([PfnRange; 2], u64) {
    let (hs, he) = (HOLD_START.load(Relaxed), HOLD_END.load(Relaxed));
    let (s, e) = (r.start.max(hs), r.end.min(he));
    if s >= e {
        return ([r, PfnRange::default()], 0);
    }
    ([PfnRange::new(r.start, s), PfnRange::new(e, r.end)], e - s)
}

/// Waits while `PAUSE_SCAN` is set, if the worker holds `pages` pages.
pub(crate) fn before_isolate(pages: u64) {
    if pages == 0 || !PAUSE_SCAN.load(Relaxed) {
        return;
    }
    pr_info!("test: worker paused holding {} isolated pages\n", pages);
    while PAUSE_SCAN.load(Relaxed) {
        mm::msleep(5);
    }
    pr_info!("test: worker goes on\n");
}

/// The part of `r` at or above `SCAN_FROM`.
pub(crate) fn filter(r: PfnRange) -> PfnRange {
    let from = SCAN_FROM.load(Relaxed);
    PfnRange::new(r.start.max(from), r.end.max(from))
}

/// A 0/1 switch.
fn parse_switch(input: &[u8]) -> Result<bool> {
    crate::knobs::parse_enabled(input).map_err(|_| EINVAL)
}

struct StallHost;
impl ParamSet for StallHost {
    fn set(input: &[u8]) -> Result {
        STALL_HOST.store(parse_switch(input)?, Relaxed);
        Ok(())
    }
}

struct PauseScan;
impl ParamSet for PauseScan {
    fn set(input: &[u8]) -> Result {
        PAUSE_SCAN.store(parse_switch(input)?, Relaxed);
        Ok(())
    }
}

struct ScanFrom;
impl ParamSet for ScanFrom {
    fn set(input: &[u8]) -> Result {
        let s = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        let v: u64 = s.trim().parse().map_err(|_| EINVAL)?;
        SCAN_FROM.store(v, Relaxed);
        Ok(())
    }
}

static OPS_STALL_HOST: ParamOps = ParamOps::new::<StallHost>();
static OPS_PAUSE_SCAN: ParamOps = ParamOps::new::<PauseScan>();
static OPS_SCAN_FROM: ParamOps = ParamOps::new::<ScanFrom>();
module_param!(PARAM_STALL_HOST, c"test_stall_host", &OPS_STALL_HOST, new);
module_param!(
    PARAM_PAUSE_SCAN,
    c"test_pause_scan",
    &OPS_PAUSE_SCAN,
    new_writable
);
module_param!(
    PARAM_SCAN_FROM,
    c"test_scan_from_pfn",
    &OPS_SCAN_FROM,
    new_writable
);
