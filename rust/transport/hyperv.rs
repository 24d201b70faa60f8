// SPDX-License-Identifier: GPL-2.0

//! The Hyper-V transport: the cold-discard memory heat hint
//! (`HvExtCallMemoryHeatHint`, as Linux's `hv_balloon` issues it), ranges
//! encoded per the TLFS by the core ([`crate::hv`]), one hypercall per
//! report. The hypercall returns when the host is done, so the pages are
//! given back right after it.

#![forbid(unsafe_code)]

use crate::hinting::{self, Mechanism, Registration, ReportError, Transport};
use crate::kernel_ext::{
    free_page_hint::{Report, REPORT_MAX},
    hyperv, mm,
};
use kernel::{prelude::*, sync::Arc};

/// Why the hypercall transport cannot be used.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refused {
    /// The host does not offer the hypercall.
    NotOffered,
    /// The guest relies on the contents of free pages, which a cold
    /// discard leaves undefined (Hyper-V has no equivalent of virtio's
    /// `PAGE_POISON`).
    KeepsContents,
}

impl Refused {
    /// The log line's reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::NotOffered => "the host does not offer Hyper-V's cold-discard memory heat hint",
            Refused::KeepsContents => {
                "the guest poisons or zeroes free pages (page_poison, init_on_free) and a cold discard leaves their contents undefined"
            }
        }
    }

    /// The load's error.
    pub(crate) fn errno(self) -> Error {
        match self {
            Refused::NotOffered => ENODEV,
            Refused::KeepsContents => EINVAL,
        }
    }
}

/// Reports through the hypercall.
struct HypercallTransport;

/// Registers the hypercall transport with `mech`, if the host offers the
/// hypercall and the guest does not rely on what its free pages contain.
pub(crate) fn register(mech: &Arc<Mechanism>) -> core::result::Result<Registration, Refused> {
    if mm::guest_keeps_free_contents() {
        return Err(Refused::KeepsContents);
    }
    if !hyperv::cold_discard_offered() {
        return Err(Refused::NotOffered);
    }
    let t = Arc::new(HypercallTransport, GFP_KERNEL).map_err(|_| Refused::NotOffered)?;
    hinting::register(mech, t).map_err(|_| Refused::NotOffered)
}

impl Transport for HypercallTransport {
    fn max_entries(&self) -> usize {
        // Each range takes at most three hypercall entries.
        const _: () =
            assert!(REPORT_MAX * crate::hv::MAX_ENTRIES_PER_RANGE <= crate::hv::MAX_RANGES);
        REPORT_MAX
    }

    fn max_entry_bytes(&self) -> u64 {
        crate::hv::MAX_ENTRY_BYTES
    }

    fn report(&self, report: &Report<'_>) -> core::result::Result<(), ReportError> {
        let r = hyperv::heat_hint(|slots| {
            let mut n = 0;
            for e in report.ranges().iter().flat_map(|r| crate::hv::encode(*r)) {
                // The limits above make this unreachable; stop rather than
                // write past the page.
                let Some(slot) = slots.get_mut(n) else { break };
                *slot = e;
                n += 1;
            }
            n
        });
        r.map_err(|e| {
            pr_warn!("memory heat hint failed: {:?}\n", e);
            ReportError::Failed(EIO)
        })
    }
}
