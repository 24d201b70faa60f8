// SPDX-License-Identifier: GPL-2.0

//! A transport that records what it is given, for the suites.

use crate::hinting::{ReportError, Transport};
use crate::kernel_ext::{
    free_page_hint::{Report, REPORT_MAX},
    mm,
};
use crate::ranges::PfnRange;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// While set, a report waits, as for a host that does not answer.
pub(crate) static STALL: AtomicBool = AtomicBool::new(false);
/// Reports that began while [`STALL`] was set.
pub(crate) static STALLED: AtomicU64 = AtomicU64::new(0);

/// What a [`RecordingTransport`] saw.
pub(crate) struct Record {
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
    /// Pages of a report entry that were still free buddy pages when the
    /// transport saw them (must stay 0: reported pages are isolated).
    pub(crate) seen_free: u64,
    /// Ranges a test watches, and how many of their pages were reported
    /// (however many ranges the reports hold).
    pub(crate) watch: [PfnRange; 16],
    pub(crate) watched_pages: u64,
}

impl Record {
    /// Whether `pfn` lies in a recorded range.
    pub(crate) fn contains(&self, pfn: u64) -> bool {
        self.ranges[..self.nranges]
            .iter()
            .any(|r| r.start <= pfn && pfn < r.end)
    }
}

/// Records the reports it gets.
#[pin_data]
pub(crate) struct RecordingTransport {
    #[pin]
    rec: Mutex<Record>,
    max_entries: usize,
}

impl RecordingTransport {
    /// An empty recorder that accepts reports of `max_entries` entries.
    pub(crate) fn new(max_entries: usize) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(RecordingTransport {
                rec <- new_mutex!(Record {
                    reports: 0,
                    entries: 0,
                    pages: 0,
                    ranges: [PfnRange::default(); 64],
                    nranges: 0,
                    fail: None,
                    seen_free: 0,
                    watch: [PfnRange::default(); 16],
                    watched_pages: 0,
                }),
                max_entries: max_entries.clamp(1, REPORT_MAX),
            }),
            GFP_KERNEL,
        )
    }

    /// Runs `f` on the record.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.rec.lock())
    }
}

impl Transport for RecordingTransport {
    fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn max_entry_bytes(&self) -> u64 {
        u32::MAX.into()
    }

    fn report(&self, report: &Report<'_>) -> core::result::Result<(), ReportError> {
        if STALL.load(Ordering::Acquire) {
            STALLED.fetch_add(1, Ordering::Relaxed);
            while STALL.load(Ordering::Acquire) {
                mm::msleep(5);
            }
        }
        let mut r = self.rec.lock();
        r.reports += 1;
        for range in report.ranges() {
            r.entries += 1;
            r.pages += range.pages();
            r.seen_free += crate::tests::sys::count_buddy_heads(*range);
            let mut watched = 0;
            for w in &r.watch {
                let (lo, hi) = (w.start.max(range.start), w.end.min(range.end));
                watched += hi.saturating_sub(lo);
            }
            r.watched_pages += watched;
            if r.nranges < r.ranges.len() {
                let i = r.nranges;
                r.ranges[i] = *range;
                r.nranges += 1;
            }
        }
        match r.fail {
            Some(e) => Err(ReportError::Failed(e)),
            None => Ok(()),
        }
    }
}
