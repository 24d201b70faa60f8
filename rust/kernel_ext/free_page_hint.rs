// SPDX-License-Identifier: GPL-2.0

//! The series' free page hint API (`include/linux/free_page_hint.h`): the
//! hook in the page free path, and isolation of free buddy blocks.
//!
//! - [`HookRegistration`] attaches a [`FreeHook`]: from then on the page
//!   allocator calls it for every freed block, in any context.
//! - A [`Section`] (`free_page_hint_begin()`..`end()`) holds off memory
//!   hotplug while blocks are isolated.
//! - [`Isolated`] owns the blocks a [`Scan`] took off the free lists. It is
//!   the only way to hold isolated pages: only isolation fills it, the pages
//!   go back to the allocator only through it ([`Isolated::put_back`], or
//!   unmarked when it is dropped), and the only thing a transport can send
//!   is a [`Report`] that it made of its own blocks.

use crate::batch::{Batcher, Limits};
use crate::capture::{Counted, Entry, COUNT_LEFT_MASK, COUNT_LEFT_MAX};
use crate::kernel_ext::{
    cpu::PerCpu,
    slot::{ArcSlot, InArc},
};
use crate::ranges::{merge, Merge, PfnRange};
use crate::retry::Wait;
use core::marker::PhantomData;
use core::sync::atomic::{
    fence, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_uint, c_ulong},
    init::{self, Zeroable},
    prelude::*,
    sync::Arc,
};

/// The kernel's largest buddy order.
pub(crate) const MAX_PAGE_ORDER: u32 = bindings::MAX_PAGE_ORDER;

/// What the free page hint hook calls.
pub(crate) trait FreeHook: Send + Sync + Sized + 'static {
    /// What each CPU's value of [`FreeHook::cpus`] holds.
    type Cpu: Sync;

    /// A block of `2^order` pages at `pfn` was freed, and not counted
    /// against the CPU's hints. Runs in the page free path, in any context
    /// (interrupts off, in an interrupt, preemption off, under
    /// `rcu_read_lock()`): it must not sleep, allocate or take a lock that
    /// is held around an allocation.
    fn freed(this: InArc<'_, Self>, pfn: u64, order: u32);

    /// The pages counted against this CPU's hints reached the limit
    /// ([`HintCpu::set_limit`]); called by the free that was counted last,
    /// in the same way as [`FreeHook::freed`].
    fn count_full(this: InArc<'_, Self>);

    /// The per-CPU values whose [`HintCpu`]s the free path counts against
    /// while the hook is attached.
    fn cpus(&self) -> &PerCpu<Hinted<Self::Cpu>>;
}

/// One CPU's hints, as `struct free_page_hint_cpu` (plus a field of the
/// hook's own): a direct-mapped table of aligned blocks, all of one order,
/// whose frees the page allocator only counts, inline, without calling the
/// hook.
///
/// The hook owns a hinted block's pages already (an entry it stored stands
/// for every page of the block), so counting a free there is all it needs.
/// Only the CPU counts against its own hints, with preemption off, and
/// only it fills a slot or changes the order (the hook does it on that CPU
/// with interrupts off); the hook empties the slots and takes the count
/// from any CPU. The fields are atomics.
///
/// The count is packed: in the low 32 bits, the pages left to count before
/// the free that takes them from above 0 to 0 or below calls
/// [`FreeHook::count_full`] (the page allocator counts them down, and they
/// wrap below 0); in the high 32 bits, the frees counted. The core models
/// the page allocator's side and decodes it ([`Counted::from_count`]).
#[repr(C)]
pub(crate) struct HintCpu {
    count: AtomicU64,
    order: AtomicU64,
    slots: [AtomicU64; SLOTS],
    // The hook's own, after the C struct: the pages left it set last, where
    // the count's low half started counting down.
    // INVARIANT: at most `COUNT_LEFT_MAX`.
    limit: AtomicU64,
}

/// The number of hint slots of a CPU.
const SLOTS: usize = bindings::FREE_PAGE_HINT_SLOTS as usize;

/// A slot that holds no block.
const EMPTY: u64 = u64::MAX;

// The count's packing is the core's, which models and tests it: the
// kernel's constants must be the same.
const _: () = {
    assert!(bindings::FREE_PAGE_HINT_LEFT_MASK as u64 == COUNT_LEFT_MASK);
};

// The layout starts as the C struct's: `unsigned long`s (the series needs a
// 64-bit kernel) in this order; the hook's own field follows it.
const _: () = {
    use core::mem::offset_of;
    type C = bindings::free_page_hint_cpu;
    assert!(offset_of!(HintCpu, count) == offset_of!(C, count));
    assert!(offset_of!(HintCpu, order) == offset_of!(C, order));
    assert!(offset_of!(HintCpu, slots) == offset_of!(C, slots));
    assert!(core::mem::size_of::<[AtomicU64; SLOTS]>() == core::mem::size_of::<[c_ulong; SLOTS]>());
    assert!(offset_of!(HintCpu, limit) >= core::mem::size_of::<C>());
};

impl HintCpu {
    /// No hint, nothing counted.
    pub(crate) const fn new() -> Self {
        HintCpu {
            count: AtomicU64::new(0),
            order: AtomicU64::new(0),
            slots: [const { AtomicU64::new(EMPTY) }; SLOTS],
            limit: AtomicU64::new(0),
        }
    }

    /// The slot of the block numbered `block`.
    fn slot(&self, block: u64) -> &AtomicU64 {
        &self.slots[(block % SLOTS as u64) as usize]
    }

    /// Hints the aligned block of `2^order` pages that holds `pfn`, a page
    /// being freed: from now on, frees inside it are counted. It takes the
    /// slot of whatever block was there; a block of another order empties
    /// every slot first. On this CPU with interrupts off (type
    /// documentation): no free counts meanwhile.
    pub(crate) fn fill(&self, pfn: u64, order: u32) {
        if order > MAX_PAGE_ORDER {
            return;
        }
        let order = u64::from(order);
        if self.order.load(Relaxed) != order {
            self.empty_slots();
            self.order.store(order, Relaxed);
        }
        let block = pfn >> order;
        self.slot(block).store(block, Relaxed);
    }

    /// Sets the pages that may be counted before [`FreeHook::count_full`]
    /// is called (at most 2^31: the free that reaches that many calls it,
    /// and the hook sets it again) and returns what was counted since the
    /// last take. On this CPU with interrupts off (type documentation).
    pub(crate) fn set_limit(&self, limit: u64) -> Counted {
        let limit = limit.min(COUNT_LEFT_MAX);
        let was = self.limit.load(Relaxed);
        // Only this CPU counts, and it does not meanwhile: the swap is the
        // take, the store that follows is the new start.
        let count = self.count.swap(limit, Relaxed);
        self.limit.store(limit, Relaxed);
        Counted::from_count(count, was)
    }

    fn empty_slots(&self) {
        for s in &self.slots {
            s.store(EMPTY, Relaxed);
        }
    }

    /// Takes every hint down. The full barrier orders it before what the
    /// caller does next (a scan of what the hints stood for).
    pub(crate) fn unhint(&self) {
        self.empty_slots();
        fence(SeqCst);
    }

    /// The frees counted since the last take.
    pub(crate) fn counted(&self) -> Counted {
        Counted::from_count(self.count.load(Relaxed), self.limit.load(Relaxed))
    }

    /// Takes the frees counted so far, from any CPU: the count starts again
    /// from the same pages left.
    pub(crate) fn take_counted(&self) -> Counted {
        let limit = self.limit.load(Relaxed);
        // A load first: the swap is a locked instruction, and mostly
        // nothing was counted.
        if self.count.load(Relaxed) == limit {
            return Counted::default();
        }
        Counted::from_count(self.count.swap(limit, Relaxed), limit)
    }
}

/// A value with a [`HintCpu`] in front, as a hook's per-CPU values are
/// laid out: the page allocator finds the hint at the per-CPU pointer.
#[pin_data]
#[repr(C)]
pub(crate) struct Hinted<T> {
    hint: HintCpu,
    #[pin]
    value: T,
}

impl<T> Hinted<T> {
    /// `value`, with no hint in front.
    pub(crate) fn new(value: impl PinInit<T>) -> impl PinInit<Self> {
        pin_init!(Hinted {
            hint: HintCpu::new(),
            value <- value,
        })
    }

    /// The hint.
    pub(crate) fn hint(&self) -> &HintCpu {
        &self.hint
    }

    /// The value.
    pub(crate) fn get(&self) -> &T {
        &self.value
    }
}

/// The ops the kernel calls, as registered.
#[repr(transparent)]
struct Ops(bindings::free_page_hint_ops);

// SAFETY: the ops are two function pointers and a per-CPU pointer to
// atomics (`HintCpu`), which any thread may use.
unsafe impl Send for Ops {}
// SAFETY: as for `Send`; shared use only reads the pointers.
unsafe impl Sync for Ops {}

/// The data of the [`HookRegistration`] attached, or null.
static HOOK_DATA: ArcSlot = ArcSlot::new();

/// # Safety
///
/// Only the page allocator calls it, through the ops of the attached
/// [`HookRegistration<T>`].
unsafe extern "C" fn free_tramp<T: FreeHook>(pfn: c_ulong, order: c_uint) {
    // SAFETY: `HOOK_DATA` was claimed with the `Arc<T>` of the
    // registration whose ops (this function, for this `T`) are attached;
    // it is cleared only after `free_page_hint_unregister()` returned,
    // which waits for every running callback (RCU).
    if let Some(data) = unsafe { HOOK_DATA.get_ref::<T>() } {
        T::freed(data, pfn as u64, order);
    }
}

/// # Safety
///
/// As [`free_tramp`].
unsafe extern "C" fn full_tramp<T: FreeHook>() {
    // SAFETY: as in `free_tramp`.
    if let Some(data) = unsafe { HOOK_DATA.get_ref::<T>() } {
        T::count_full(data);
    }
}

/// The free page hint hook, attached to `T` while this value lives. One
/// can be attached at a time (`EBUSY`: another module, or another
/// registration of this one, has the hook).
///
/// # Invariants
///
/// `ops` is registered with the kernel and calls `free_tramp::<T>` and
/// `full_tramp::<T>`, with the hints of `data.cpus()`; `HOOK_DATA` is
/// claimed with `data`.
pub(crate) struct HookRegistration<T: FreeHook> {
    ops: KBox<Ops>,
    data: Arc<T>,
}

impl<T: FreeHook> HookRegistration<T> {
    /// Attaches the hook to `data`. `EOPNOTSUPP`: the kernel has no hook
    /// (CONFIG_FREE_PAGE_HINT); `EBUSY`: it is taken.
    pub(crate) fn new(data: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            Ops(bindings::free_page_hint_ops {
                free: Some(free_tramp::<T>),
                count_full: Some(full_tramp::<T>),
                // Each value starts with its `HintCpu` (`Hinted` is
                // `repr(C)`), laid out as `struct free_page_hint_cpu`;
                // `data` keeps them.
                cpus: data.cpus().as_ptr().cast(),
            }),
            GFP_KERNEL,
        )?;
        HOOK_DATA.claim(&data)?;
        // SAFETY: `ops` is heap memory that stays in place until it is
        // unregistered on drop; the per-CPU hints it points to belong to
        // `data`, which lives as long as the registration.
        if let Err(e) = to_result(unsafe { bindings::free_page_hint_register(&ops.0) }) {
            HOOK_DATA.clear();
            return Err(e);
        }
        // INVARIANT: registered, and `HOOK_DATA` claimed with `data`.
        Ok(HookRegistration { ops, data })
    }
}

impl<T: FreeHook> Drop for HookRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: we registered `ops` (type invariant); when this returns no
        // CPU runs a callback or counts against the hints any more.
        unsafe { bindings::free_page_hint_unregister(&self.ops.0) };
        HOOK_DATA.clear();
        // `ops` and the reference to `data` go after this.
        let _ = &self.data;
    }
}

/// An isolation section (`free_page_hint_begin()` to `free_page_hint_end()`):
/// blocks are isolated and put back only inside one, which holds off memory
/// hotplug, so that offlining never starts while blocks are held (it would
/// wait for them, and the holder for it). [`Isolated`] borrows the section,
/// so every block isolated in it is back before it ends. Sections do not
/// nest (the memory hotplug lock is a per-CPU rwsem, which a pending writer
/// would deadlock); a section may sleep.
pub(crate) struct Section {
    _not_send: PhantomData<*mut ()>,
}

impl Section {
    /// Begins a section; may sleep (while memory is being on- or offlined).
    pub(crate) fn begin() -> Self {
        // SAFETY: process context (the worker and tests); ended by `Drop`,
        // in the same task (the section is not `Send`).
        unsafe { bindings::free_page_hint_begin() };
        Section {
            _not_send: PhantomData,
        }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: ends the section `begin` started, in the same task.
        unsafe { bindings::free_page_hint_end() };
    }
}

/// What a scan skipped, in pages.
#[derive(Default, Clone, Copy)]
pub(crate) struct ScanCounts {
    /// Not free (allocated again).
    pub(crate) busy: u64,
    /// Free but not on the buddy free lists (on a per-CPU list): the range
    /// is worth another look after a drain.
    pub(crate) unlisted: u64,
    /// Free, in a pageblock isolated by memory offlining or a contiguous
    /// allocation: not looked at again (see [`ScanCounts::wait`]).
    pub(crate) isolated: u64,
    /// Free, but reported already.
    pub(crate) reported: u64,
    /// Free, in blocks below the scan's order.
    pub(crate) small: u64,
    /// Free, in zones short of memory.
    pub(crate) low: u64,
}

impl ScanCounts {
    /// What the range waits for before its free pages can be taken.
    ///
    /// Free pages of an isolated pageblock wait for nothing here: when
    /// the isolation is undone the kernel tells the free path about the
    /// whole pageblock again (`free_page_hint_unisolated()`), and if it is
    /// not, they leave with the memory.
    pub(crate) fn wait(&self) -> Wait {
        Wait::from(self.unlisted != 0)
    }
}

impl core::ops::AddAssign for ScanCounts {
    fn add_assign(&mut self, o: Self) {
        self.busy += o.busy;
        self.unlisted += o.unlisted;
        self.isolated += o.isolated;
        self.reported += o.reported;
        self.small += o.small;
        self.low += o.low;
    }
}

/// A scan of a pfn range for free buddy blocks (the C
/// `struct free_page_hint_scan`), which [`Isolated::take`] advances. It
/// belongs to the [`Section`] it was begun in: what it found stays online
/// while the section lasts.
pub(crate) struct Scan<'a> {
    raw: bindings::free_page_hint_scan,
    range: PfnRange,
    /// Pages [`Isolated::take`] took through this scan.
    taken: u64,
    _section: &'a Section,
}

impl<'a> Scan<'a> {
    /// A scan of `range` for blocks of order `min_order` or more, isolating
    /// at most `max_pages` pages in all.
    pub(crate) fn new(
        section: &'a Section,
        range: PfnRange,
        min_order: u32,
        max_pages: u64,
    ) -> Self {
        Scan {
            raw: bindings::free_page_hint_scan {
                pfn: range.start as c_ulong,
                end_pfn: range.end as c_ulong,
                min_order,
                max_pages: max_pages as c_ulong,
                nr_busy: 0,
                nr_unlisted: 0,
                nr_isolated: 0,
                nr_reported: 0,
                nr_small: 0,
                nr_low: 0,
                over_budget: false,
            },
            range,
            taken: 0,
            _section: section,
        }
    }

    /// The range scanned.
    pub(crate) fn range(&self) -> PfnRange {
        self.range
    }

    /// Whether the whole range was scanned.
    pub(crate) fn done(&self) -> bool {
        self.raw.pfn >= self.raw.end_pfn
    }

    /// Whether the scan stopped at a block bigger than its remaining budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.raw.over_budget
    }

    /// Gives the scan a fresh budget (after the held blocks went back).
    pub(crate) fn set_budget(&mut self, max_pages: u64) {
        self.raw.max_pages = max_pages as c_ulong;
        self.raw.over_budget = false;
    }

    /// What the scan skipped so far.
    pub(crate) fn counts(&self) -> ScanCounts {
        // The C scan counts unlisted pages and those of isolated
        // pageblocks within `nr_busy`.
        let unlisted = self.raw.nr_unlisted as u64;
        let isolated = self.raw.nr_isolated as u64;
        ScanCounts {
            busy: (self.raw.nr_busy as u64).saturating_sub(unlisted + isolated),
            unlisted,
            isolated,
            reported: self.raw.nr_reported as u64,
            small: self.raw.nr_small as u64,
            low: self.raw.nr_low as u64,
        }
    }

    /// Pages of the range scanned so far.
    pub(crate) fn scanned_pages(&self) -> u64 {
        (self.raw.pfn as u64).clamp(self.range.start, self.range.end) - self.range.start
    }

    /// Free pages the scan found so far: those it took and those it left
    /// (reported, in small blocks, in a zone short of memory, on per-CPU
    /// lists, in isolated pageblocks).
    pub(crate) fn free_pages(&self) -> u64 {
        let c = self.counts();
        self.taken + c.reported + c.small + c.low + c.unlisted + c.isolated
    }

    /// Pages of the scanned part of the range that the scan accounted for
    /// in no way: the pfns it found without online memory (the C scan
    /// steps over them uncounted). 0 for a done scan means every pfn of the
    /// range is online memory of a populated zone.
    pub(crate) fn offline_pages(&self) -> u64 {
        let seen = self.free_pages() + self.counts().busy;
        self.scanned_pages().saturating_sub(seen)
    }
}

/// Blocks one [`Isolated`] holds at most.
pub(crate) const HELD_BLOCKS: usize = 256;

/// Entries in the largest [`Report`].
pub(crate) const REPORT_MAX: usize = 32;

/// Blocks isolated or put back under one hold of a zone's lock at most: what
/// `mm/page_reporting.c` takes at once (`PAGE_REPORTING_CAPACITY`), so that
/// an allocation on another CPU never waits longer for the lock than it
/// would for Linux's own reporting.
pub(crate) const LOCK_BLOCKS: usize = 32;

/// Steps (pages at order 0, blocks of the scan's order above) that one
/// isolation call looks at, at most: a bound on its zone lock hold.
const LOCK_STEPS: c_ulong = 128;

/// Room for the blocks of an [`Isolated`] (too big for the kernel stack),
/// reused from section to section. It holds no block outside one.
pub(crate) struct BlockStore {
    blocks: [bindings::free_page_hint_block; HELD_BLOCKS],
    entries: [Entry; HELD_BLOCKS],
}

// SAFETY: integers, and entries that are `u64`s (zero: pfn 0, order 0).
unsafe impl Zeroable for BlockStore {}

impl BlockStore {
    /// An empty store.
    pub(crate) fn new() -> Result<KBox<Self>> {
        KBox::init(init::zeroed(), GFP_KERNEL)
    }
}

/// How pages go back to the free lists.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mark {
    /// The host has them: marked `PageReported`, so they are not reported
    /// again until they are allocated.
    Reported,
    /// Not reported (nothing was sent, or a report failed).
    Unreported,
}

/// The blocks taken off the free lists in one [`Section`], owned by this
/// value until they go back.
///
/// # Invariants
///
/// `store.blocks[..len]` are blocks that free page hint isolation took off
/// the free lists in `section`, owned by this value and by nothing else,
/// and disjoint (in the order they were isolated: pfn order within one
/// scan, not across the ranges of a round); `store.entries[..len]` describe the
/// same blocks, and they hold `pages` pages.
#[must_use = "isolated pages go back to the allocator through put_back() or when this is dropped"]
pub(crate) struct Isolated<'a> {
    _section: &'a Section,
    store: &'a mut BlockStore,
    len: usize,
    pages: u64,
    /// The longest call into isolation or put-back so far, in ns: each
    /// holds a zone's lock (interrupts off) for nearly all of its time.
    longest_lock_ns: u64,
}

impl<'a> Isolated<'a> {
    /// Holds nothing yet; [`Isolated::take`] fills it.
    pub(crate) fn new(section: &'a Section, store: &'a mut BlockStore) -> Self {
        // INVARIANT: no block.
        Isolated {
            _section: section,
            store,
            len: 0,
            pages: 0,
            longest_lock_ns: 0,
        }
    }

    /// Isolates the free blocks `scan` finds next, until this value is full,
    /// [`LOCK_BLOCKS`] were taken, or the scan is done or over its budget.
    /// Returns the pages taken.
    pub(crate) fn take(&mut self, scan: &mut Scan<'_>) -> u64 {
        let start = self.len;
        let room = &mut self.store.blocks[start..];
        let cap = room.len().min(LOCK_BLOCKS) as c_uint;
        // One call looks at LOCK_STEPS steps of the range at most: the
        // zone lock is held that long, not the kernel's 1024 steps (at
        // order 0, 1024 pages: 230 us under TCG).
        let end_pfn = scan.raw.end_pfn;
        let step: c_ulong = 1 << scan.raw.min_order.min(MAX_PAGE_ORDER);
        scan.raw.end_pfn = end_pfn.min(scan.raw.pfn.saturating_add(step * LOCK_STEPS));
        let t0 = super::mm::ktime_ns();
        // SAFETY: `scan.raw` is a valid scan (its end pulled in, put back
        // below); `room` is valid for `cap` writes; process context,
        // inside a section (`self._section`).
        let n = unsafe { bindings::free_page_hint_isolate(&mut scan.raw, room.as_mut_ptr(), cap) };
        scan.raw.end_pfn = end_pfn;
        let end = start + (n as usize).min(room.len());
        self.note_lock(t0);
        let mut kept = start;
        let mut pages = 0;
        for i in start..end {
            let b = self.store.blocks[i];
            match Entry::new(b.pfn as u64, b.order) {
                Some(e) => {
                    self.store.blocks[kept] = b;
                    self.store.entries[kept] = e;
                    kept += 1;
                    pages += e.pages();
                }
                // A block the core cannot describe (the build-time check
                // of the largest order makes this unreachable) goes back at
                // once: it must never be reported.
                // SAFETY: the block was just isolated in this section and
                // is ours; it is given back once, here.
                None => unsafe { bindings::free_page_hint_putback(&b, 1, false) },
            }
        }
        // INVARIANT: `blocks[start..kept]` are ours, mirrored in `entries`.
        self.len = kept;
        self.pages += pages;
        // A block given back at once is left out: the scan's range then
        // looks partly offline, which only ever refuses consolidation.
        scan.taken += pages;
        pages
    }

    /// Whether no block fits any more.
    pub(crate) fn is_full(&self) -> bool {
        self.len == HELD_BLOCKS
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages held.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// The blocks held, in pfn order (the audit's walk reads them).
    #[cfg(ph_audit)]
    pub(crate) fn blocks(&self) -> &[Entry] {
        &self.store.entries[..self.len]
    }

    /// The audit builds' check at the moment of a report: every page of
    /// `report` lies in a block this value holds, and every block it
    /// touches is still held by page state (no page of it on a free list,
    /// none allocated). Returns the first pfn for which that does not hold,
    /// and why.
    /// A racy read of page state, as compaction's: the blocks are ours, so
    /// a page that changes under the read is a page that was not held.
    #[cfg(ph_audit)]
    pub(crate) fn unheld_pfn(&self, report: &Report<'_>) -> Option<(u64, Unheld)> {
        let blocks = &self.store.entries[..self.len];
        // The blocks are disjoint but in the order they were isolated,
        // which is pfn order only within one scan: look each page up.
        for r in report.ranges() {
            let mut p = r.start;
            while p < r.end {
                let Some(e) = blocks
                    .iter()
                    .find(|e| e.pfn() <= p && p < e.pfn() + e.pages())
                else {
                    return Some((p, Unheld::NotIsolated));
                };
                if let Some(bad) = block_not_held(e.pfn(), e.order()) {
                    return Some(bad);
                }
                p = e.pfn() + e.pages();
            }
        }
        None
    }

    /// The longest call into isolation or put-back so far, in ns: an upper
    /// bound on how long it held a zone's lock.
    pub(crate) fn longest_lock_ns(&self) -> u64 {
        self.longest_lock_ns
    }

    fn note_lock(&mut self, t0: u64) {
        let ns = super::mm::ktime_ns().saturating_sub(t0);
        self.longest_lock_ns = self.longest_lock_ns.max(ns);
    }

    /// The held blocks as reports: merged into ranges (in pfn order when
    /// they were isolated in pfn order), each split so that
    /// its entries fit `limits`, at most `max_entries` (and [`REPORT_MAX`])
    /// entries a report.
    pub(crate) fn reports(&self, limits: Limits, max_entries: usize) -> Reports<'_> {
        Reports {
            batcher: Batcher::new(merge(&self.store.entries[..self.len]), limits),
            max_entries: max_entries.clamp(1, REPORT_MAX),
        }
    }

    /// Gives every held block back to the free lists, marked as `mark`
    /// says; afterwards nothing is held.
    pub(crate) fn put_back(&mut self, mark: Mark) {
        // A zone's lock is held per call: [`LOCK_BLOCKS`] at a time.
        let mut done = 0;
        while done < self.len {
            let n = (self.len - done).min(LOCK_BLOCKS);
            let t0 = super::mm::ktime_ns();
            // SAFETY: `blocks[done..done + n]` are isolated blocks this
            // value owns, isolated in its section, which is still open
            // (type invariant), and not given back yet; process context.
            unsafe {
                bindings::free_page_hint_putback(
                    self.store.blocks[done..].as_ptr(),
                    n as c_uint,
                    mark == Mark::Reported,
                )
            };
            self.note_lock(t0);
            done += n;
        }
        // INVARIANT: nothing is held any more.
        self.len = 0;
        self.pages = 0;
    }

    /// Gives up the held blocks without returning them: a device that went
    /// away without confirming its reset may still access them, so they
    /// stay isolated for good (a leak, never reuse). Returns the pages.
    pub(crate) fn give_up(&mut self) -> u64 {
        let pages = self.pages;
        // INVARIANT: nothing is held any more; the blocks are nobody's.
        self.len = 0;
        self.pages = 0;
        pages
    }
}

/// Why a page of a report is not held ([`Isolated::unheld_pfn`]).
#[cfg(ph_audit)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unheld {
    /// Not in a block the worker isolated.
    NotIsolated,
    /// In a free buddy block of this order (on a free list).
    OnFreeList(u32),
    /// A buddy page inside the block (part of it went back).
    BuddyInside,
    /// Allocated: this reference count.
    Referenced(i32),
}

/// The first page of the block at `pfn` of `order` (taken off the free
/// lists by isolation) that is not held any more: on a free list (a free
/// buddy block contains it) or allocated (a reference count), and why.
/// `None` if the whole block is still held.
#[cfg(ph_audit)]
fn block_not_held(pfn: u64, order: u32) -> Option<(u64, Unheld)> {
    // A free buddy block that starts at or before the block and covers it.
    for o in order..=MAX_PAGE_ORDER {
        let head = pfn & !((1u64 << o) - 1);
        // SAFETY: `head` is in the same naturally aligned block of at most
        // MAX_PAGE_ORDER as a pfn isolation returned, so within one memory
        // section with a memmap (sections are larger than the largest
        // buddy block); only flags and a word are read.
        let (buddy, private) = unsafe {
            let page = bindings::pfn_to_page(head as c_ulong);
            (
                bindings::PageBuddy(page),
                core::ptr::read_volatile(core::ptr::addr_of!(
                    (*page).__bindgen_anon_1.__bindgen_anon_1.private
                )),
            )
        };
        if buddy && private as u64 >= u64::from(o) {
            return Some((pfn, Unheld::OnFreeList(private as u32)));
        }
    }
    for q in pfn..pfn + (1u64 << order) {
        // SAFETY: a page of the isolated block (see above); only its flags
        // and reference count are read.
        let (buddy, refs) = unsafe {
            let page = bindings::pfn_to_page(q as c_ulong);
            (
                bindings::PageBuddy(page),
                core::ptr::read_volatile(core::ptr::addr_of!((*page)._refcount.counter)),
            )
        };
        if buddy {
            return Some((q, Unheld::BuddyInside));
        }
        if refs != 0 {
            return Some((q, Unheld::Referenced(refs)));
        }
    }
    None
}

impl Drop for Isolated<'_> {
    fn drop(&mut self) {
        self.put_back(Mark::Unreported);
    }
}

/// The reports of an [`Isolated`], in pfn order.
pub(crate) struct Reports<'a> {
    batcher: Batcher<Merge<'a>>,
    max_entries: usize,
}

impl<'a> Iterator for Reports<'a> {
    type Item = Report<'a>;

    fn next(&mut self) -> Option<Report<'a>> {
        let mut ranges = [PfnRange::default(); REPORT_MAX];
        let n = self.batcher.fill(&mut ranges[..self.max_entries]);
        // INVARIANT: ranges of blocks the `Isolated` borrowed for `'a`
        // holds.
        (n != 0).then_some(Report {
            ranges,
            len: n,
            _held: PhantomData,
        })
    }
}

/// One report: disjoint pfn ranges of pages held off the allocator, which
/// stay held at least as long as the report lives.
///
/// # Invariants
///
/// `ranges[..len]` are non-empty ranges of blocks held by the [`Isolated`]
/// (or the pages of the `ContigPages`) this report borrows from.
pub(crate) struct Report<'a> {
    ranges: [PfnRange; REPORT_MAX],
    len: usize,
    _held: PhantomData<&'a ()>,
}

impl Report<'_> {
    /// The ranges.
    pub(crate) fn ranges(&self) -> &[PfnRange] {
        &self.ranges[..self.len]
    }

    /// Pages in the report.
    pub(crate) fn pages(&self) -> u64 {
        self.ranges().iter().map(|r| r.pages()).sum()
    }
}

/// Every page of an aligned range of whole top-order blocks, taken off the
/// allocator with `alloc_contig_range()`: its free pages are allocated and
/// its movable pages migrated elsewhere first, the way CMA and gigantic
/// hugetlb pages are taken. Dropping it frees every page again (order 0,
/// through the per-CPU lists). The worker uses it to consolidate a host page
/// larger than the largest buddy block that is almost free.
///
/// # Invariants
///
/// One successful `alloc_contig_range()` allocated every page of `range`
/// (a non-empty range, aligned to `1 << MAX_PAGE_ORDER` pages), and this
/// value owns them; `range` stays online while `_section` lasts.
#[cfg(CONFIG_CONTIG_ALLOC)]
pub(crate) struct ContigPages<'a> {
    range: PfnRange,
    _section: &'a Section,
}

#[cfg(CONFIG_CONTIG_ALLOC)]
impl<'a> ContigPages<'a> {
    /// Takes the range `scan` covered. The scan must be done, of whole
    /// aligned top-order blocks, and must have found every pfn of its range
    /// online ([`Scan::offline_pages`] 0); otherwise `EINVAL`. `EBUSY` (or
    /// `ENOMEM`, `EINTR`): a page could not be taken or migrated (an
    /// unmovable or pinned page, another zone, memory short, a fatal
    /// signal); nothing is held then. Process context; may sleep for as
    /// long as migration takes.
    pub(crate) fn take(scan: &Scan<'a>) -> Result<Self> {
        let range = scan.range;
        let mask = (1u64 << MAX_PAGE_ORDER) - 1;
        if !scan.done()
            || scan.offline_pages() != 0
            || range.is_empty()
            || range.start & mask != 0
            || range.end & mask != 0
        {
            return Err(EINVAL);
        }
        // SAFETY: every pfn of `range` has a memmap: the scan looked at
        // every 4 MiB-aligned piece of it and found online memory in a
        // populated zone (none of its pfns went uncounted), memory is
        // onlined in whole sections (at least 128 MiB, aligned), so each
        // piece lies in one online section, and the scan's section keeps it
        // online until `'a` ends. alloc_contig_range() checks everything
        // else itself and fails (nothing taken) on any page it cannot take,
        // a range across zones included; process context (the worker).
        to_result(unsafe {
            bindings::alloc_contig_range_noprof(
                range.start as c_ulong,
                range.end as c_ulong,
                bindings::migratetype_MIGRATE_MOVABLE,
                bindings::GFP_KERNEL | bindings::__GFP_NOWARN,
            )
        })?;
        // INVARIANT: allocated just now, and ours.
        Ok(ContigPages {
            range,
            _section: scan._section,
        })
    }

    /// All of it as a report of one range: its pages are allocated to this
    /// value and to nothing else, so the host may discard them while the
    /// report lives.
    pub(crate) fn report(&self) -> Report<'_> {
        let mut ranges = [PfnRange::default(); REPORT_MAX];
        ranges[0] = self.range;
        // INVARIANT: one non-empty range of pages this value holds.
        Report {
            ranges,
            len: 1,
            _held: PhantomData,
        }
    }

    /// Gives up the pages without freeing them: a device that went away
    /// without confirming its reset may still access them (a leak, never
    /// reuse). Returns the pages.
    pub(crate) fn give_up(self) -> u64 {
        let pages = self.range.pages();
        core::mem::forget(self);
        pages
    }
}

#[cfg(CONFIG_CONTIG_ALLOC)]
impl Drop for ContigPages<'_> {
    fn drop(&mut self) {
        // SAFETY: every page of `range` was allocated by one
        // alloc_contig_range() and is ours, untouched (type invariant);
        // freed once, here.
        unsafe {
            bindings::free_contig_range(self.range.start as c_ulong, self.range.pages() as c_ulong)
        };
    }
}
