// SPDX-License-Identifier: GPL-2.0

//! The reporting worker: batches, scans, reports and retry rounds. Runs in
//! the mechanism's work items, one at a time, under the worker mutex.

use super::{
    capture, Engine, Mechanism, ReportError, Transport, Worker, RETRY_GAP, RETRY_RANGES,
    WORK_BATCHES, WORK_RETRY,
};
use crate::batch::Limits;
use crate::capture::Entry;
use crate::kernel_ext::{
    free_page_hint::{Isolated, Mark, Scan, ScanCounts, Section},
    mm,
};
use crate::ranges::{cut, merge, sort, PfnRange};
use crate::retry::Retry;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{prelude::*, sync::ArcBorrow};

/// Adds the time from its creation to its drop to a counter: the worker's
/// busy time, while it holds the worker mutex.
struct BusyTimer<'a> {
    counter: &'a AtomicU64,
    start: u64,
}

impl<'a> BusyTimer<'a> {
    fn start(counter: &'a AtomicU64) -> Self {
        BusyTimer {
            counter,
            start: mm::ktime_ns(),
        }
    }
}

impl Drop for BusyTimer<'_> {
    fn drop(&mut self) {
        let ns = mm::ktime_ns().saturating_sub(self.start);
        self.counter.fetch_add(ns, Relaxed);
    }
}

/// The batch work: takes the full buffer of every CPU that asked for the
/// worker and processes it, until those CPUs have nothing more.
pub(super) fn run_batches(mech: ArcBorrow<'_, Mechanism>) {
    for (_, cpu) in mech.cpus.iter() {
        if !capture::is_marked(cpu) {
            continue;
        }
        while capture::with_batch(cpu, |buf, newest_ns| {
            // Memory that the guest takes again within `delay_ms` of its
            // free is busy by the time the scan comes: only what stayed
            // free is reported, and the host is not made to fault in again
            // what the guest reuses at once. The worker waits until the
            // batch's newest entry is that old; new frees go to the other
            // buffer meanwhile.
            let ms = u64::from(mech.cfg.delay_ms.load(Relaxed));
            let age_ms = mm::mono_fast_ns().saturating_sub(newest_ns) / 1_000_000;
            if ms > age_ms {
                // At most `DELAY_MS_MAX`: fits.
                mm::msleep((ms - age_ms) as u32);
            }
            process(mech, buf);
        }) {}
    }
}

/// The idle flush: hands the entries of every CPU that holds some to the
/// worker.
pub(super) fn flush_idle(mech: ArcBorrow<'_, Mechanism>) {
    let mut any = false;
    for (_, cpu) in mech.cpus.iter() {
        any |= capture::mark_if_pending(cpu);
    }
    if any {
        Mechanism::queue(mech, WORK_BATCHES, 0);
    }
}

/// Processes one batch. The span of the frees the buffer had to turn away
/// goes to the next retry round: nothing freed is lost because the worker
/// fell behind.
fn process(mech: ArcBorrow<'_, Mechanism>, buf: &mut capture::Buf) {
    let pending = buf.pending_pages();
    process_entries(mech, buf.as_mut_slice(), pending);
    let span = buf.spilled();
    if !span.is_empty() && mech.cfg.enabled.load(Relaxed) {
        let mut state = mech.worker.lock();
        if state.transport().is_none() {
            return;
        }
        state.overflow_span = state.overflow_span.hull(span);
        mech.stats.overflow_spans.fetch_add(1, Relaxed);
        arm_retry(mech, &mut state);
    }
}

/// Processes a batch of captured entries holding `pending` pages: sort,
/// merge, cut, isolate, report, give back; ranges with pages still on
/// per-CPU lists go on the retry list. Process context; the worker mutex
/// serialises callers.
pub(crate) fn process_entries(mech: ArcBorrow<'_, Mechanism>, entries: &mut [Entry], pending: u64) {
    let engine: &Engine = &mech;
    engine.stats.batches.fetch_add(1, Relaxed);
    if !engine.cfg.enabled.load(Relaxed) {
        engine
            .stats
            .disabled_dropped_pages
            .fetch_add(pending, Relaxed);
        return;
    }
    let min_order = engine.min_order();
    let mut guard = engine.worker.lock();
    let _busy = BusyTimer::start(&engine.stats.worker_busy_ns);
    let state = &mut *guard;
    let Some(transport) = state.transport() else {
        engine.stats.no_transport_pages.fetch_add(pending, Relaxed);
        return;
    };
    let transport = &*transport;
    let Worker { store, retry, .. } = &mut *state;
    sort(entries);
    let section = Section::begin();
    let mut held = Isolated::new(&section, store);
    for r in cut(merge(entries), min_order) {
        if engine
            .scan_range(&mut held, transport, r, min_order)
            .unlisted
            != 0
        {
            engine.retry_later(retry, r);
        }
    }
    engine.report(&mut held, transport, min_order);
    drop(held);
    drop(section);
    arm_retry(mech, state);
}

/// Arms the retry round for the range on the list that is due first,
/// unless a round is already armed no later than that.
fn arm_retry(mech: ArcBorrow<'_, Mechanism>, state: &mut Worker) {
    // A pending overflow span is due at the first (shortest) delay.
    let ms = match state.retry.next_delay_ms() {
        _ if !state.overflow_span.is_empty() => crate::retry::DELAYS_MS[0],
        Some(ms) => ms,
        None => return,
    };
    let due = mm::ktime_ns().saturating_add(u64::from(ms) * 1_000_000);
    if state.retry_due_ns == 0 || due < state.retry_due_ns {
        state.retry_due_ns = due;
        Mechanism::queue_within(mech, WORK_RETRY, ms);
    }
}

/// A retry round: drains the per-CPU lists, then scans every range on the
/// retry list again, reporting what is free now. Process context.
pub(crate) fn retry_round(mech: ArcBorrow<'_, Mechanism>) {
    let engine: &Engine = &mech;
    let mut guard = engine.worker.lock();
    let _busy = BusyTimer::start(&engine.stats.worker_busy_ns);
    let state = &mut *guard;
    state.retry_due_ns = 0;
    let span = core::mem::take(&mut state.overflow_span);
    if state.retry.is_empty() && span.is_empty() {
        return;
    }
    let transport = state.transport();
    if !engine.cfg.enabled.load(Relaxed) || transport.is_none() {
        let pages = state.retry.clear();
        engine
            .stats
            .disabled_dropped_pages
            .fetch_add(pages, Relaxed);
        return;
    }
    let min_order = engine.min_order();
    engine.stats.retry_rounds.fetch_add(1, Relaxed);
    mm::drain_all_pages();
    engine.stats.pcp_drains.fetch_add(1, Relaxed);
    let Some(transport) = transport.as_deref() else {
        return;
    };
    let Worker { store, retry, .. } = &mut *state;
    let section = Section::begin();
    let mut held = Isolated::new(&section, store);
    let skipped = retry.round(|r| {
        engine
            .scan_range(&mut held, transport, r, min_order)
            .unlisted
            != 0
    });
    engine
        .stats
        .retry_given_up_pages
        .fetch_add(skipped.given_up_pages, Relaxed);
    // The overflow span is scanned once; what is still on per-CPU lists in
    // it joins the retry list.
    if !span.is_empty()
        && engine
            .scan_range(&mut held, transport, span, min_order)
            .unlisted
            != 0
    {
        engine.retry_later(retry, span);
    }
    engine.report(&mut held, transport, min_order);
    drop(held);
    drop(section);
    arm_retry(mech, state);
}

impl Engine {
    /// Puts `r`, which still has pages on per-CPU lists, on the retry list;
    /// what the list cannot take is counted as dropped.
    fn retry_later(&self, retry: &mut Retry<RETRY_RANGES>, r: PfnRange) {
        if !retry.push(r, RETRY_GAP) {
            self.stats.retry_dropped_pages.fetch_add(r.pages(), Relaxed);
        }
    }

    /// Isolates the free blocks of `r`, reporting whenever the held blocks
    /// fill up or reach the isolation cap. Returns what the scan skipped.
    fn scan_range(
        &self,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        r: PfnRange,
        min_order: u32,
    ) -> ScanCounts {
        let budget = self.cfg.max_isolated.load(Relaxed);
        #[cfg(ph_tests)]
        let r = crate::tests::hooks::filter(r);
        let mut scan = Scan::new(r, min_order, budget.saturating_sub(held.pages()));
        loop {
            #[cfg(ph_tests)]
            crate::tests::hooks::before_isolate(held.pages());
            let pages = held.take(&mut scan);
            let stats = &self.stats;
            stats.isolated_total_pages.fetch_add(pages, Relaxed);
            let now = stats.isolated_pages.fetch_add(pages, Relaxed) + pages;
            stats.isolated_peak_pages.fetch_max(now, Relaxed);
            if held.is_full() || scan.over_budget() {
                self.report(held, transport, min_order);
                scan.set_budget(budget);
            }
            if scan.done() {
                break;
            }
            mm::cond_resched();
        }
        let skipped = scan.counts();
        let stats = &self.stats;
        stats.skipped_busy_pages.fetch_add(skipped.busy, Relaxed);
        stats.unlisted_pages.fetch_add(skipped.unlisted, Relaxed);
        stats
            .skipped_reported_pages
            .fetch_add(skipped.reported, Relaxed);
        stats.skipped_small_pages.fetch_add(skipped.small, Relaxed);
        stats.skipped_low_pages.fetch_add(skipped.low, Relaxed);
        skipped
    }

    /// Sends the held blocks to the transport and gives them back, marked
    /// reported if the host took every report.
    fn report(&self, held: &mut Isolated<'_>, transport: &dyn Transport, min_order: u32) {
        if held.is_empty() {
            return;
        }
        let start = mm::ktime_ns();
        let pages = held.pages();
        let limits = Limits::from_max_bytes(
            transport.max_entry_bytes(),
            kernel::page::PAGE_SHIFT as u32,
            min_order,
        );
        let stats = &self.stats;
        let mut sent = false;
        let mut failed = limits.is_err();
        let mut lost = false;
        if let Ok(limits) = limits {
            for report in held.reports(limits, transport.max_entries()) {
                match transport.report(&report) {
                    Ok(()) => {
                        sent = true;
                        stats.reports.fetch_add(1, Relaxed);
                        stats
                            .reported_ranges
                            .fetch_add(report.ranges().len() as u64, Relaxed);
                        stats.reported_pages.fetch_add(report.pages(), Relaxed);
                    }
                    Err(err) => {
                        stats.transport_errors.fetch_add(1, Relaxed);
                        failed = true;
                        lost = err == ReportError::Lost;
                        break;
                    }
                }
            }
        }
        if lost {
            // The device may still be reading them: they stay isolated
            // (`isolated_pages` keeps counting them) and are never reused.
            pr_err!(
                "{} pages stay isolated for good: the device did not confirm its reset\n",
                held.give_up()
            );
            return;
        }
        held.put_back(if sent && !failed {
            Mark::Reported
        } else {
            Mark::Unreported
        });
        stats.isolated_pages.fetch_sub(pages, Relaxed);
        stats
            .last_report_latency_ns
            .store(mm::ktime_ns().saturating_sub(start), Relaxed);
    }
}
