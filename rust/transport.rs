// SPDX-License-Identifier: GPL-2.0

//! Transports: how reports of free pfn ranges reach the host.
//!
//! A report is a slice of sorted, disjoint pfn ranges whose pages the worker
//! holds isolated; `report` returns once the host is done with them (or
//! failed), after which the worker gives the pages back to the allocator,
//! marked reported if the transport says the host has them.

use crate::ranges::PfnRange;
#[cfg(CONFIG_KUNIT)]
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{bindings, prelude::*};

/// Entries in the largest report any transport takes.
pub(crate) const REPORT_MAX: usize = 32;

/// Whether `init_on_free` (rather than page poisoning) decides what free
/// pages contain.
pub(crate) fn init_on_free() -> bool {
    // SAFETY: reads a static key.
    unsafe { bindings::want_init_on_free() }
}

/// Whether the guest relies on what free pages contain (page poisoning or
/// `init_on_free`): a host that discards them hands back other contents.
pub(crate) fn guest_keeps_free_contents() -> bool {
    // SAFETY: reads a static key set at boot.
    init_on_free() || unsafe { bindings::page_poisoning_enabled_static() }
}

/// Tests: while set, a [`RecordingTransport`] report waits, as for a host
/// that does not answer.
#[cfg(CONFIG_KUNIT)]
pub(crate) static STALL: AtomicBool = AtomicBool::new(false);

/// Tests: reports that began while [`STALL`] was set.
#[cfg(CONFIG_KUNIT)]
pub(crate) static STALLED: AtomicU64 = AtomicU64::new(0);

/// The operations every transport provides.
pub(crate) trait Transport {
    /// Most entries in one report (at most [`REPORT_MAX`]).
    fn max_entries(&self) -> usize;
    /// Most bytes in one entry. The worker rounds it down to whole
    /// `2^min_order`-page pieces and splits longer ranges there, so no
    /// entry ends inside a block of the reporting order.
    fn max_entry_bytes(&self) -> u64;
    /// Sends one report and waits for the host. `Ok(true)`: the host has the
    /// pages (mark them reported); `Ok(false)`: nothing was sent; `Err`: the
    /// report failed.
    fn report(&mut self, ranges: &[PfnRange]) -> Result<bool>;

    /// After a failed report: whether the device may still access its
    /// pages (it went away without confirming a reset). The worker then
    /// never gives them back to the allocator.
    fn lost(&self) -> bool {
        false
    }
}

/// A transport that sends nothing: the mechanism runs (capture, validation,
/// isolation) but no memory goes to the host and nothing is marked.
pub(crate) struct NullTransport;

impl Transport for NullTransport {
    fn max_entries(&self) -> usize {
        REPORT_MAX
    }
    fn max_entry_bytes(&self) -> u64 {
        u32::MAX.into()
    }
    fn report(&mut self, _ranges: &[PfnRange]) -> Result<bool> {
        Ok(false)
    }
}

/// Hyper-V's cold-discard memory heat hint (`HvExtCallMemoryHeatHint`, as
/// Linux's `hv_balloon` issues it): ranges encoded per the TLFS by the core
/// ([`crate::hv`]), one hypercall per report. The hypercall returns when
/// the host is done, so the pages are given back right after it.
pub(crate) struct HypercallTransport(());

/// Why the hypercall transport cannot be used.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HypercallRefused {
    /// The host does not offer the hypercall.
    NotOffered,
    /// The guest relies on the contents of free pages, which a cold
    /// discard leaves undefined (Hyper-V has no equivalent of virtio's
    /// `PAGE_POISON`).
    KeepsContents,
}

impl HypercallRefused {
    /// The log line's reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            HypercallRefused::NotOffered => {
                "the host does not offer Hyper-V's cold-discard memory heat hint"
            }
            HypercallRefused::KeepsContents => {
                "the guest poisons or zeroes free pages (page_poison, init_on_free) and a cold discard leaves their contents undefined"
            }
        }
    }

    /// The load's error.
    pub(crate) fn errno(self) -> Error {
        match self {
            HypercallRefused::NotOffered => ENODEV,
            HypercallRefused::KeepsContents => EINVAL,
        }
    }
}

impl HypercallTransport {
    /// The transport, if the host offers the hypercall and the guest does
    /// not rely on what its free pages contain.
    pub(crate) fn probe() -> core::result::Result<Self, HypercallRefused> {
        // (A deliberately broken build looks only at what the host offers.)
        if guest_keeps_free_contents() && !cfg!(ph_break_hypercall) {
            Err(HypercallRefused::KeepsContents)
        } else if crate::sys::hv_cold_discard_offered() {
            Ok(HypercallTransport(()))
        } else {
            Err(HypercallRefused::NotOffered)
        }
    }
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
    fn report(&mut self, ranges: &[PfnRange]) -> Result<bool> {
        let r = crate::sys::hv_heat_hint(|slots| {
            let mut n = 0;
            for e in ranges.iter().flat_map(|r| crate::hv::encode(*r)) {
                // The limits above make this unreachable; stop rather
                // than write past the page.
                let Some(slot) = slots.get_mut(n) else { break };
                *slot = e;
                n += 1;
            }
            n
        });
        match r {
            Ok(()) => Ok(true),
            Err(status) => {
                pr_warn!("memory heat hint failed: status {:#x}\n", status);
                Err(EIO)
            }
        }
    }
}

/// A transport that records what it is given, for tests.
#[cfg(CONFIG_KUNIT)]
pub(crate) struct RecordingTransport {
    /// Reports received.
    pub(crate) reports: u64,
    /// Entries received.
    pub(crate) entries: u64,
    /// Pages received.
    pub(crate) pages: u64,
    /// The first ranges received, up to the capacity.
    pub(crate) ranges: [PfnRange; 64],
    /// How many of `ranges` are filled.
    pub(crate) nranges: usize,
    /// Fail every report with this error.
    pub(crate) fail: Option<Error>,
    /// Entry limit to announce.
    pub(crate) max_entries: usize,
    /// Pages of a report entry that were still free buddy pages when the
    /// transport saw them (must stay 0: reported pages are isolated).
    pub(crate) seen_free: u64,
    /// Ranges a test watches, and how many of their pages were reported
    /// (however many ranges the reports hold).
    pub(crate) watch: [PfnRange; 16],
    pub(crate) watched_pages: u64,
}

#[cfg(CONFIG_KUNIT)]
impl RecordingTransport {
    /// An empty recorder that accepts reports of `max_entries` entries.
    pub(crate) fn new(max_entries: usize) -> Self {
        RecordingTransport {
            reports: 0,
            entries: 0,
            pages: 0,
            ranges: [PfnRange::default(); 64],
            nranges: 0,
            fail: None,
            max_entries: max_entries.min(REPORT_MAX),
            seen_free: 0,
            watch: [PfnRange::default(); 16],
            watched_pages: 0,
        }
    }

    /// Whether `pfn` lies in a recorded range.
    pub(crate) fn contains(&self, pfn: u64) -> bool {
        self.ranges[..self.nranges]
            .iter()
            .any(|r| r.start <= pfn && pfn < r.end)
    }
}

#[cfg(CONFIG_KUNIT)]
impl Transport for RecordingTransport {
    fn max_entries(&self) -> usize {
        self.max_entries
    }
    fn max_entry_bytes(&self) -> u64 {
        u32::MAX.into()
    }
    fn report(&mut self, ranges: &[PfnRange]) -> Result<bool> {
        if STALL.load(Ordering::Acquire) {
            STALLED.fetch_add(1, Ordering::Relaxed);
            while STALL.load(Ordering::Acquire) {
                crate::sys::msleep(5);
            }
        }
        self.reports += 1;
        for r in ranges {
            self.entries += 1;
            self.pages += r.pages();
            self.seen_free += crate::sys::count_buddy_heads(*r);
            for w in &self.watch {
                let (lo, hi) = (w.start.max(r.start), w.end.min(r.end));
                self.watched_pages += hi.saturating_sub(lo);
            }
            if self.nranges < self.ranges.len() {
                self.ranges[self.nranges] = *r;
                self.nranges += 1;
            }
        }
        match self.fail {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }
}

/// The transport in use.
pub(crate) enum AnyTransport {
    /// See [`NullTransport`].
    Null(NullTransport),
    /// See [`crate::virtio::VirtioTransport`].
    Virtio(KBox<crate::virtio::VirtioTransport>),
    /// See [`HypercallTransport`].
    Hypercall(HypercallTransport),
    /// See [`RecordingTransport`].
    #[cfg(CONFIG_KUNIT)]
    Recording(KBox<RecordingTransport>),
}

impl AnyTransport {
    fn inner(&mut self) -> &mut dyn Transport {
        match self {
            AnyTransport::Null(t) => t,
            AnyTransport::Virtio(t) => &mut **t,
            AnyTransport::Hypercall(t) => t,
            #[cfg(CONFIG_KUNIT)]
            AnyTransport::Recording(t) => &mut **t,
        }
    }

    /// Whether reports go anywhere: with no transport the worker neither
    /// isolates nor drains.
    pub(crate) fn sends(&self) -> bool {
        !matches!(self, AnyTransport::Null(_))
    }
    /// See [`Transport::max_entries`].
    pub(crate) fn max_entries(&mut self) -> usize {
        self.inner().max_entries().clamp(1, REPORT_MAX)
    }
    /// See [`Transport::max_entry_bytes`].
    pub(crate) fn max_entry_bytes(&mut self) -> u64 {
        self.inner().max_entry_bytes()
    }
    /// See [`Transport::report`].
    pub(crate) fn report(&mut self, ranges: &[PfnRange]) -> Result<bool> {
        self.inner().report(ranges)
    }
    /// See [`Transport::lost`].
    pub(crate) fn lost(&mut self) -> bool {
        self.inner().lost()
    }
}
