// SPDX-License-Identifier: GPL-2.0

//! The reporting worker: batches, scans, reports and retry rounds. Runs in
//! the mechanism's work items, one at a time, under the worker mutex.

use super::{
    capture, Engine, Mechanism, ReportError, Stats, Transport, Worker, RETRY_GAP, RETRY_RANGES,
    WORK_BATCHES, WORK_RETRY, WORK_SETTLE,
};
use crate::batch::{LimitError, Limits};
use crate::capture::Entry;
#[cfg(CONFIG_CONTIG_ALLOC)]
use crate::kernel_ext::free_page_hint::ContigPages;
use crate::kernel_ext::{
    free_page_hint::{Isolated, Mark, Report, Scan, ScanCounts, Section, MAX_PAGE_ORDER},
    mm,
};
use crate::ranges::{cut, granules, merge_out, sort, PfnRange};
use crate::retry::{drain_due, Retry, Wait};
#[cfg(ph_tests)]
use crate::tests::hooks;
use core::sync::atomic::Ordering::Relaxed;
use kernel::{prelude::*, sync::ArcBorrow};

/// Adds the time from its creation to its drop to the worker's counters:
/// wall time while it holds the worker mutex (`worker_busy_ns`, waiting for
/// the host included) and the time it ran on a CPU meanwhile
/// (`worker_cpu_ns`).
struct BusyTimer<'a> {
    stats: &'a Stats,
    start: u64,
    cpu_start: u64,
}

impl<'a> BusyTimer<'a> {
    fn start(stats: &'a Stats) -> Self {
        BusyTimer {
            stats,
            start: mm::ktime_ns(),
            cpu_start: mm::task_runtime_ns(),
        }
    }
}

impl Drop for BusyTimer<'_> {
    fn drop(&mut self) {
        let ns = mm::ktime_ns().saturating_sub(self.start);
        self.stats.worker_busy_ns.fetch_add(ns, Relaxed);
        let cpu = mm::task_runtime_ns().saturating_sub(self.cpu_start);
        self.stats.worker_cpu_ns.fetch_add(cpu, Relaxed);
    }
}

/// The batch work: takes the full buffer of every CPU that asked for the
/// worker and processes it, until those CPUs have nothing more.
///
/// Memory that the guest takes again within `delay_ms` of its free is busy
/// by the time the scan comes: only what stayed free is reported, and the
/// host is not made to fault in again what the guest reuses at once. A
/// batch whose newest entry is younger waits, and the work item comes back
/// when the youngest waiting batch is due: it never sleeps, so no other
/// CPU's batch, flush or retry round waits behind it on the ordered queue.
pub(super) fn run_batches(mech: ArcBorrow<'_, Mechanism>) {
    let delay_ns = if mech.cfg.enabled.load(Relaxed) {
        u64::from(mech.cfg.delay_ms.load(Relaxed)) * 1_000_000
    } else {
        // Dropped anyway (process()), at once.
        0
    };
    let mut wait_ns: Option<u64> = None;
    for (_, cpu) in mech.cpus.iter() {
        if !capture::wants_worker(cpu) {
            continue;
        }
        loop {
            match capture::with_batch(cpu, delay_ns, |buf| process(mech, buf)) {
                capture::Batch::Processed => {}
                capture::Batch::Nothing => break,
                capture::Batch::Waiting(ns) => {
                    wait_ns = Some(wait_ns.map_or(ns, |w| w.min(ns)));
                    break;
                }
            }
        }
    }
    if let Some(ns) = wait_ns {
        // At most `DELAY_MS_MAX`: fits. Rounded up, so that the batch is
        // due when the item runs.
        let ms = ns.div_ceil(1_000_000) as u32;
        Mechanism::queue(mech, WORK_BATCHES, ms);
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
    let cover = buf.cover_order();
    process_entries(mech, buf.as_mut_slice(), pending, cover);
    let span = buf.spilled();
    if !span.is_empty() && mech.cfg.enabled.load(Relaxed) {
        let mut state = mech.worker.lock();
        if state.transport().is_none() {
            return;
        }
        mech.stats.overflow_spans.fetch_add(1, Relaxed);
        if let Some(ms) = mech.settling_ms() {
            // What the buffer turned away were mostly small frees of a
            // burst: the span waits with them, or a workload that frees
            // faster than the worker looks would have its churn reported
            // at the next retry round.
            #[cfg(ph_audit)]
            super::audit::trace(super::audit::Ev::SettleAdd, span);
            state.settle.add(span);
            Mechanism::queue(mech, WORK_SETTLE, ms);
        } else {
            state.overflow_span = state.overflow_span.hull(span);
            arm_retry(mech, &mut state);
        }
    }
}

/// Processes a batch of captured entries holding `pending` pages: sort,
/// merge (each entry rounded out to its aligned block of `1 << cover`
/// pages, see [`crate::capture::CaptureBuf::push_in`]), cut, isolate,
/// report, give back; ranges with pages still on per-CPU lists go on the
/// retry list. Process context; the worker mutex serialises callers.
pub(crate) fn process_entries(
    mech: ArcBorrow<'_, Mechanism>,
    entries: &mut [Entry],
    pending: u64,
    cover: u32,
) {
    let engine: &Engine = &mech;
    engine.stats.batches.fetch_add(1, Relaxed);
    if !engine.cfg.enabled.load(Relaxed) {
        engine
            .stats
            .disabled_dropped_pages
            .fetch_add(pending, Relaxed);
        #[cfg(ph_audit)]
        super::audit::forget();
        return;
    }
    let min_order = engine.min_order();
    let mut guard = engine.worker.lock();
    let _busy = BusyTimer::start(&engine.stats);
    let state = &mut *guard;
    let Some(transport) = state.transport() else {
        engine.stats.no_transport_pages.fetch_add(pending, Relaxed);
        #[cfg(ph_audit)]
        super::audit::forget();
        return;
    };
    let transport = &*transport;
    #[cfg(ph_audit)]
    super::audit::path(super::audit::Ev::Batch);
    state.freeing.batch(mm::ktime_ns() / 1_000_000);
    let Worker {
        store,
        retry,
        recent,
        settle,
        ..
    } = &mut *state;
    sort(entries);
    let section = Section::begin();
    let mut held = Isolated::new(&section, store);
    if let Some(order) = engine.granule_order() {
        // Host pages above the largest buddy block: each one a free
        // touched gets a look of its own, unless it had one lately.
        let now = mm::ktime_ns();
        for g in granules(merge_out(entries, cover), order) {
            if recent.looked_lately(g.start, now) {
                engine.retry_later(retry, g);
                continue;
            }
            let look = engine.look_at_host_page(&section, &mut held, transport, g, order);
            if look.again != Wait::Nothing {
                engine.retry_later(retry, g);
            }
            recent.note(g.start, now, look.busy);
        }
    } else {
        // Below a pageblock, small blocks wait to show they stay free
        // (core `settle`); whole pageblocks and more go at once.
        let settling = engine.settling_ms();
        let pb = mm::pageblock_order();
        for r in cut(merge_out(entries, cover), min_order) {
            let now = if settling.is_some() {
                let whole = cut([r], pb).next();
                let (head, tail) = match whole {
                    Some(w) => (PfnRange::new(r.start, w.start), PfnRange::new(w.end, r.end)),
                    None => (r, PfnRange::default()),
                };
                #[cfg(ph_audit)]
                {
                    super::audit::trace(super::audit::Ev::SettleAdd, head);
                    super::audit::trace(super::audit::Ev::SettleAdd, tail);
                }
                settle.add(head);
                settle.add(tail);
                whole
            } else {
                Some(r)
            };
            if let Some(now) = now {
                engine.scan_or_retry(&section, &mut held, transport, retry, now, min_order);
            }
        }
        if let Some(ms) = settling.filter(|_| !settle.is_empty()) {
            // Unless a tick is pending already.
            Mechanism::queue(mech, WORK_SETTLE, ms);
        }
    }
    engine.report_held(&mut held, transport, min_order);
    drop(held);
    drop(section);
    arm_retry(mech, state);
}

/// The settle tick: scans the small blocks freed one to two intervals ago
/// that were not freed again since (core [`crate::settle`]), reporting
/// what is still free, and comes back while blocks wait. Process context.
pub(crate) fn settle_tick(mech: ArcBorrow<'_, Mechanism>) {
    let engine: &Engine = &mech;
    let mut guard = engine.worker.lock();
    let _busy = BusyTimer::start(&engine.stats);
    let state = &mut *guard;
    if state.settle.is_empty() {
        return;
    }
    let transport = state.transport();
    let Some(transport) = transport.as_deref() else {
        let pages = state.settle.clear();
        engine.stats.no_transport_pages.fetch_add(pages, Relaxed);
        #[cfg(ph_audit)]
        super::audit::forget();
        return;
    };
    if !engine.cfg.enabled.load(Relaxed) {
        let pages = state.settle.clear();
        engine
            .stats
            .disabled_dropped_pages
            .fetch_add(pages, Relaxed);
        #[cfg(ph_audit)]
        super::audit::forget();
        return;
    }
    let min_order = engine.min_order();
    engine.stats.settle_ticks.fetch_add(1, Relaxed);
    #[cfg(ph_audit)]
    super::audit::path(super::audit::Ev::Settle);
    let Worker {
        store,
        retry,
        settle,
        ..
    } = &mut *state;
    let section = Section::begin();
    let mut held = Isolated::new(&section, store);
    let waited = settle.old_pages();
    // Pieces of pages that were freed a while ago and not since: at the
    // reporting order (a piece's edges need not be aligned).
    let scanned = settle.tick(|piece| {
        for r in cut([piece], min_order) {
            engine.scan_or_retry(&section, &mut held, transport, retry, r, min_order);
        }
    });
    let stats = &engine.stats;
    stats.settle_scanned_pages.fetch_add(scanned, Relaxed);
    stats
        .settle_refreed_pages
        .fetch_add(waited.saturating_sub(scanned), Relaxed);
    engine.report_held(&mut held, transport, min_order);
    drop(held);
    drop(section);
    if !settle.is_empty() {
        // Back in `settle_ms` while blocks wait (at once if it was set to
        // 0 meanwhile: what waits then goes at the next tick).
        Mechanism::queue(mech, WORK_SETTLE, engine.cfg.settle_ms.load(Relaxed));
    }
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

/// A retry round: drains the per-CPU lists unless that was done less than
/// a gap ago (a longer one under sustained freeing), then scans every
/// range on the retry list again, reporting what is free now. Process
/// context.
pub(crate) fn retry_round(mech: ArcBorrow<'_, Mechanism>) {
    let engine: &Engine = &mech;
    let mut guard = engine.worker.lock();
    let _busy = BusyTimer::start(&engine.stats);
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
        #[cfg(ph_audit)]
        super::audit::forget();
        return;
    }
    let min_order = engine.min_order();
    engine.stats.retry_rounds.fetch_add(1, Relaxed);
    #[cfg(ph_audit)]
    super::audit::path(super::audit::Ev::Retry);
    // At most one drain a gap, a longer one while frees keep coming (see
    // crate::retry): the pages a busy workload is about to reuse stay in
    // its per-CPU caches.
    let now_ms = mm::ktime_ns() / 1_000_000;
    if drain_due(now_ms, state.last_drain_ms, state.freeing.sustained(now_ms)) {
        engine.drain_pcp();
        state.last_drain_ms = Some(now_ms);
        // What a round still finds off the free lists after the drains a
        // range needs was freed after them, and the free path told the
        // worker about it again (core `retry`: a drain may be skipped).
        state.retry.drained();
    }
    let Some(transport) = transport.as_deref() else {
        return;
    };
    let Worker {
        store,
        retry,
        recent,
        ..
    } = &mut *state;
    let section = Section::begin();
    let mut held = Isolated::new(&section, store);
    let granule = engine.granule_order();
    let now = mm::ktime_ns();
    let mut look = |held: &mut Isolated<'_>, r: PfnRange| match granule {
        // Every host page of the range, however lately it was looked at:
        // this is the later look that was promised.
        Some(order) => granules([r], order).fold(Wait::Nothing, |again, g| {
            let look = engine.look_at_host_page(&section, held, transport, g, order);
            recent.note(g.start, now, look.busy);
            look.again.max(again)
        }),
        None => engine
            .scan_range(&section, held, transport, r, min_order)
            .wait(),
    };
    let skipped = retry.round(|r| look(&mut held, r));
    engine
        .stats
        .retry_given_up_pages
        .fetch_add(skipped.given_up_pages, Relaxed);
    // The overflow span is scanned once; what is still on per-CPU lists in
    // it joins the retry list.
    #[cfg(ph_audit)]
    super::audit::path(super::audit::Ev::Span);
    if !span.is_empty() && look(&mut held, span) != Wait::Nothing {
        engine.retry_later(retry, span);
    }
    engine.report_held(&mut held, transport, min_order);
    drop(held);
    drop(section);
    arm_retry(mech, state);
}

/// Host pages that were looked at lately: a free into one of them soon
/// after a look that found it busy defers it to the retry list instead of
/// scanning it again (a busy host page takes every free of its workload,
/// and a look may isolate most of a host page before it finds the busy
/// part). How soon doubles with each busy look, from [`Recent::LATELY_NS`]
/// up to 16 times that; a reported host page starts again. Retry rounds
/// look regardless, so the last free into a host page is never left
/// without a look.
#[derive(Default)]
pub(crate) struct Recent {
    /// (first pfn, ktime ns of the look, busy looks in a row).
    looks: [(u64, u64, u32); 8],
}

impl Recent {
    /// The shortest back-off.
    const LATELY_NS: u64 = 500_000_000;
    /// The longest back-off is `LATELY_NS << MAX_SHIFT`.
    const MAX_SHIFT: u32 = 4;

    /// Whether the host page at `start` is within its back-off at `now`.
    fn looked_lately(&self, start: u64, now: u64) -> bool {
        self.looks.iter().any(|&(s, t, busy)| {
            t != 0 && s == start && now.saturating_sub(t) < Self::LATELY_NS << busy
        })
    }

    /// Notes a look at the host page at `start` at `now`, which found it
    /// `busy` (or not), in its own entry or the oldest one.
    fn note(&mut self, start: u64, now: u64, busy: bool) {
        let own = self
            .looks
            .iter()
            .position(|&(s, t, _)| t != 0 && s == start);
        let slot = own.unwrap_or_else(|| {
            (0..self.looks.len())
                .min_by_key(|&i| self.looks[i].1)
                .unwrap_or(0)
        });
        if let Some(l) = self.looks.get_mut(slot) {
            let shift = match (own, busy) {
                (Some(_), true) => (l.2 + 1).min(Self::MAX_SHIFT),
                _ => 0,
            };
            *l = (start, now.max(1), shift);
        }
    }
}

/// What a look at a host page found.
struct Look {
    /// Worth another look soon (the retry list), after what.
    again: Wait,
    /// Part of it in use.
    busy: bool,
}

impl Look {
    /// Reported, or nothing to do.
    const DONE: Look = Look {
        again: Wait::Nothing,
        busy: false,
    };
}

/// A host page may be consolidated (its last pages migrated away) when at
/// most `1 / 2^CONSOLIDATE_SHIFT` of it is in use: 64 MiB of a GiB.
const CONSOLIDATE_SHIFT: u32 = 4;

impl Engine {
    /// Looks at the host page `g` (`2^order` pages, above the largest buddy
    /// block, aligned): isolates every top-order block of it and reports it
    /// as one range if that is all of it; puts everything back unmarked
    /// otherwise. A host page that is free but for a few movable pages, or
    /// free but partly marked reported (the host refaulted it whole when
    /// part of it was used), is consolidated (see [`Engine::consolidate`]).
    /// Returns whether `g` is worth another look soon (pages on per-CPU
    /// lists, or a consolidation that lost a race), and whether it was
    /// busy.
    fn look_at_host_page(
        &self,
        section: &Section,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        g: PfnRange,
        order: u32,
    ) -> Look {
        // Whatever a range before it left held goes first, so that `held`
        // holds nothing but `g`.
        self.report(held, transport, MAX_PAGE_ORDER);
        let pages = g.pages();
        let scan = self.take_host_page(section, held, g);
        if held.pages() == pages {
            self.report_host_page(held, transport, order);
            return Look::DONE;
        }
        let c = scan.counts();
        self.give_back(held, Mark::Unreported);
        if c.reported == pages {
            // Reported whole and untouched since.
            return Look::DONE;
        }
        // What the scan did not reach counts as in use.
        let in_use = pages.saturating_sub(scan.free_pages());
        let nearly_free = in_use <= pages >> CONSOLIDATE_SHIFT
            && c.low == 0
            && c.isolated == 0
            && scan.done()
            && scan.offline_pages() == 0;
        if !nearly_free {
            self.stats.host_pages_busy.fetch_add(1, Relaxed);
            return Look {
                // All free but on per-CPU lists: a drain will tell.
                again: if in_use == 0 { c.wait() } else { Wait::Nothing },
                busy: true,
            };
        }
        self.consolidate(section, held, transport, &scan, order)
    }

    /// Isolates the top-order blocks of the host page `g` into `held`
    /// (which holds nothing), up to all of it, a few at a time: it stops
    /// early (not done) once more of `g` is in use than consolidation
    /// would take, so a busy host page costs a look at a part of it only.
    fn take_host_page<'a>(
        &self,
        section: &'a Section,
        held: &mut Isolated<'_>,
        g: PfnRange,
    ) -> Scan<'a> {
        // Blocks isolated between two checks.
        const CHUNK: u64 = 16 << MAX_PAGE_ORDER;
        let slack = g.pages() >> CONSOLIDATE_SHIFT;
        let mut scan = Scan::new(section, g, MAX_PAGE_ORDER, CHUNK);
        loop {
            self.count_isolated(held.take(&mut scan));
            // A zone short of memory is not consolidated from either.
            if scan.done()
                || held.is_full()
                || scan.counts().low != 0
                || scan.scanned_pages().saturating_sub(scan.free_pages()) > slack
            {
                break;
            }
            if scan.over_budget() {
                scan.set_budget(CHUNK);
            }
            mm::cond_resched();
        }
        self.count_skipped(scan.counts());
        scan
    }

    /// Takes the nearly free host page `scan` covered whole with
    /// `alloc_contig_range()` (its movable pages migrated away) and reports
    /// it while it holds it, then frees it; where that cannot be done (see
    /// below), frees it first and isolates it again at once, reporting it
    /// if that got all of it. Returns what the look found.
    #[cfg(CONFIG_CONTIG_ALLOC)]
    fn consolidate(
        &self,
        section: &Section,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        scan: &Scan<'_>,
        order: u32,
    ) -> Look {
        let g = scan.range();
        match ContigPages::take(scan) {
            Ok(taken) => {
                self.stats.host_pages_consolidated.fetch_add(1, Relaxed);
                // Report it while it is ours (nothing can take a page of it
                // meanwhile), then free it: it goes back unmarked, and its
                // next look reports it again and marks it. Not where the
                // guest writes free pages (poisoning, init_on_free: the
                // frees would fault the host page back in), nor where one
                // entry cannot hold it.
                if !mm::guest_keeps_free_contents() && Self::whole_entry(transport, order) {
                    let start = mm::ktime_ns();
                    let report = taken.report();
                    match transport.report(&report) {
                        Ok(()) => {
                            self.count_sent(&report);
                            let stats = &self.stats;
                            stats.host_pages_reported.fetch_add(1, Relaxed);
                            stats
                                .last_report_latency_ns
                                .store(mm::ktime_ns().saturating_sub(start), Relaxed);
                        }
                        Err(ReportError::Lost) => {
                            self.stats.transport_errors.fetch_add(1, Relaxed);
                            pr_err!(
                                "{} pages stay allocated for good: the device did not confirm its reset\n",
                                taken.give_up()
                            );
                            return Look::DONE;
                        }
                        Err(ReportError::Failed(_)) => {
                            self.stats.transport_errors.fetch_add(1, Relaxed);
                        }
                    }
                    drop(taken);
                    return Look::DONE;
                }
                // Back to the allocator: order-0 frees, onto this CPU's
                // per-CPU list, whose drain merges them into top-order
                // blocks again. Nothing else can take them in between but
                // an allocation, which makes the host page busy anyway.
                drop(taken);
                self.drain_pcp();
                let _ = self.take_host_page(section, held, g);
                if held.pages() == g.pages() {
                    self.report_host_page(held, transport, order);
                    return Look::DONE;
                }
                self.give_back(held, Mark::Unreported);
                self.stats.host_pages_busy.fetch_add(1, Relaxed);
                // An allocation got in between: soon again.
                Look {
                    again: Wait::Drain,
                    busy: false,
                }
            }
            Err(_) => {
                self.stats.host_pages_busy.fetch_add(1, Relaxed);
                Look {
                    again: Wait::Nothing,
                    busy: true,
                }
            }
        }
    }

    /// Without `alloc_contig_range()` (refused at `host_page_kb`), nothing
    /// is consolidated.
    #[cfg(not(CONFIG_CONTIG_ALLOC))]
    fn consolidate(
        &self,
        _section: &Section,
        _held: &mut Isolated<'_>,
        _transport: &dyn Transport,
        _scan: &Scan<'_>,
        _order: u32,
    ) -> Look {
        self.stats.host_pages_busy.fetch_add(1, Relaxed);
        Look {
            again: Wait::Nothing,
            busy: true,
        }
    }

    /// Whether one entry of `transport` holds a host page of `order` (a
    /// virtio descriptor holds 4 GiB).
    fn whole_entry(transport: &dyn Transport, order: u32) -> bool {
        Self::limits(transport, order).is_ok()
    }

    /// Reports the one host page `held` holds, as one range when the
    /// transport's entries can hold it, and gives it back marked reported
    /// if the host took it.
    fn report_host_page(&self, held: &mut Isolated<'_>, transport: &dyn Transport, order: u32) {
        let whole = Self::whole_entry(transport, order);
        if self.report(held, transport, if whole { order } else { MAX_PAGE_ORDER }) {
            self.stats.host_pages_reported.fetch_add(1, Relaxed);
        }
    }

    /// Gives back what `held` holds, marked as `mark` says.
    fn give_back(&self, held: &mut Isolated<'_>, mark: Mark) {
        let pages = held.pages();
        #[cfg(ph_audit)]
        for e in held.blocks() {
            let ev = if mark == Mark::Reported {
                super::audit::Ev::BackReported
            } else {
                super::audit::Ev::BackUnreported
            };
            super::audit::trace(ev, PfnRange::new(e.pfn(), e.pfn() + e.pages()));
        }
        held.put_back(mark);
        self.stats.isolated_pages.fetch_sub(pages, Relaxed);
    }

    /// Puts `r`, which still has pages on per-CPU lists, on the retry list
    /// (which never drops a range: a full list grows its last one).
    pub(super) fn retry_later(&self, retry: &mut Retry<RETRY_RANGES>, r: PfnRange) {
        #[cfg(ph_audit)]
        super::audit::trace(super::audit::Ev::RetryAdd, r);
        retry.push(r, RETRY_GAP);
    }

    /// Drains every CPU's per-CPU page lists into the free lists.
    fn drain_pcp(&self) {
        mm::drain_pcp_lists();
        self.stats.pcp_drains.fetch_add(1, Relaxed);
        // The test build's stand-in for pages on a per-CPU list goes to
        // the free lists with them.
        #[cfg(ph_tests)]
        hooks::drained();
    }

    /// Scans `r` ([`Engine::scan_range`]) and puts it on the retry list if
    /// pages of it were still on per-CPU lists.
    fn scan_or_retry(
        &self,
        section: &Section,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        retry: &mut Retry<RETRY_RANGES>,
        r: PfnRange,
        min_order: u32,
    ) {
        if self
            .scan_range(section, held, transport, r, min_order)
            .wait()
            != Wait::Nothing
        {
            self.retry_later(retry, r);
        }
    }

    /// Reports what a batch, round or tick left held, and records its
    /// longest zone lock hold.
    fn report_held(&self, held: &mut Isolated<'_>, transport: &dyn Transport, min_order: u32) {
        self.report(held, transport, min_order);
        self.stats
            .zone_lock_max_ns
            .fetch_max(held.longest_lock_ns(), Relaxed);
    }

    /// Isolates the free blocks of `r`, reporting whenever the held blocks
    /// fill up or reach the isolation cap. Returns what the scan skipped.
    fn scan_range(
        &self,
        section: &Section,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        r: PfnRange,
        min_order: u32,
    ) -> ScanCounts {
        #[cfg(not(ph_tests))]
        let skipped = self.scan_piece(section, held, transport, r, min_order);
        // The test build scans from `test_scan_from_pfn` on, and may hold
        // a range as if its pages were on a per-CPU list until the next
        // drain: the scan passes over them and counts them as unlisted.
        #[cfg(ph_tests)]
        let skipped = {
            let from = hooks::filter(r);
            // What the switch keeps the scan from is not expected to be
            // reported.
            super::audit::dropped(PfnRange::new(r.start, from.start.min(r.end)));
            let (pieces, unlisted) = hooks::held_on_pcp(from);
            let mut c = ScanCounts {
                unlisted,
                ..ScanCounts::default()
            };
            for p in pieces {
                c += self.scan_piece(section, held, transport, p, min_order);
            }
            c
        };
        // A zone short of memory is left alone by design.
        #[cfg(ph_audit)]
        {
            if skipped.low != 0 {
                super::audit::dropped(r);
            }
            super::audit::scanned(r, &skipped);
        }
        self.count_skipped(skipped);
        skipped
    }

    /// [`Engine::scan_range`] without the counting.
    fn scan_piece(
        &self,
        section: &Section,
        held: &mut Isolated<'_>,
        transport: &dyn Transport,
        r: PfnRange,
        min_order: u32,
    ) -> ScanCounts {
        if r.is_empty() {
            return ScanCounts::default();
        }
        let budget = self.cfg.max_isolated.load(Relaxed);
        let mut scan = Scan::new(section, r, min_order, budget.saturating_sub(held.pages()));
        loop {
            #[cfg(ph_tests)]
            hooks::before_isolate(held.pages());
            self.count_isolated(held.take(&mut scan));
            if held.is_full() || scan.over_budget() {
                self.report(held, transport, min_order);
                scan.set_budget(budget);
            }
            if scan.done() {
                break;
            }
            mm::cond_resched();
        }
        scan.counts()
    }

    /// Counts `pages` just isolated.
    fn count_isolated(&self, pages: u64) {
        let stats = &self.stats;
        stats.isolated_total_pages.fetch_add(pages, Relaxed);
        let now = stats.isolated_pages.fetch_add(pages, Relaxed) + pages;
        stats.isolated_peak_pages.fetch_max(now, Relaxed);
    }

    /// Counts what a scan skipped.
    fn count_skipped(&self, c: ScanCounts) {
        let stats = &self.stats;
        stats.skipped_busy_pages.fetch_add(c.busy, Relaxed);
        stats.unlisted_pages.fetch_add(c.unlisted, Relaxed);
        stats.skipped_isolated_pages.fetch_add(c.isolated, Relaxed);
        stats.skipped_reported_pages.fetch_add(c.reported, Relaxed);
        stats.skipped_small_pages.fetch_add(c.small, Relaxed);
        stats.skipped_low_pages.fetch_add(c.low, Relaxed);
    }

    /// Counts a report the host took.
    fn count_sent(&self, report: &Report<'_>) {
        #[cfg(ph_audit)]
        {
            super::audit::reported(report.ranges());
            for &r in report.ranges() {
                super::audit::trace(super::audit::Ev::Reported, r);
            }
        }
        let stats = &self.stats;
        stats.reports.fetch_add(1, Relaxed);
        stats
            .reported_ranges
            .fetch_add(report.ranges().len() as u64, Relaxed);
        stats.reported_pages.fetch_add(report.pages(), Relaxed);
    }

    /// Report limits for `transport` at `order`.
    fn limits(transport: &dyn Transport, order: u32) -> Result<Limits, LimitError> {
        Limits::from_max_bytes(
            transport.max_entry_bytes(),
            kernel::page::PAGE_SHIFT as u32,
            order,
        )
    }

    /// Sends the held blocks to the transport and gives them back, marked
    /// reported if the host took every report (then returns true).
    fn report(&self, held: &mut Isolated<'_>, transport: &dyn Transport, min_order: u32) -> bool {
        if held.is_empty() {
            return false;
        }
        let start = mm::ktime_ns();
        let limits = Self::limits(transport, min_order);
        let stats = &self.stats;
        let mut sent = false;
        let mut failed = limits.is_err();
        let mut lost = false;
        if let Ok(limits) = limits {
            for report in held.reports(limits, transport.max_entries()) {
                // The audit builds check every report before it goes: a
                // page it covers that page_hinting does not hold is a bug
                // that would let the host discard memory in use.
                #[cfg(ph_audit)]
                if let Some((pfn, why)) = held.unheld_pfn(&report) {
                    super::audit::unheld(pfn, why);
                    stats.transport_errors.fetch_add(1, Relaxed);
                    failed = true;
                    break;
                }
                match transport.report(&report) {
                    Ok(()) => {
                        sent = true;
                        self.count_sent(&report);
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
            return false;
        }
        let reported = sent && !failed;
        self.give_back(
            held,
            if reported {
                Mark::Reported
            } else {
                Mark::Unreported
            },
        );
        stats
            .last_report_latency_ns
            .store(mm::ktime_ns().saturating_sub(start), Relaxed);
        reported
    }
}
