// SPDX-License-Identifier: GPL-2.0

//! Ranges the worker looks at again later.
//!
//! The free path learns about a freed block before the block reaches the
//! buddy free lists: the page allocator first keeps it on a per-CPU list,
//! from where it reaches the free lists when that list overflows, when
//! vmstat decays it (seconds to tens of seconds), or when someone drains
//! the lists. A scan that finds such pages cannot report them yet.
//!
//! The worker keeps those ranges in a [`Retry`] list and scans them again in
//! *rounds*, after a delay that grows with each round ([`DELAYS_MS`]);
//! before a round the module drains the per-CPU lists, so the pages that
//! stayed free that long reach the free lists, but at most once every
//! [`DRAIN_GAP_MS`], and while frees keep coming at most once every
//! [`DRAIN_GAP_BUSY_MS`] ([`drain_due`]). Under sustained freeing, rounds
//! come every 200 ms, and draining each time emptied the per-CPU caches of
//! a workload that frees and at once reallocates, made the pages it was
//! about to reuse reported and the host fault them in again; and each
//! drain sends every page on those caches through the buddy free lists and
//! back (an instruction profile of the page-fault loop put that at about
//! 0.6% of its instructions at a drain a second; the throughput bench did
//! not resolve the gain of spacing them, see Documentation/mm). Per-CPU
//! lists that keep taking frees overflow to the free lists on their own;
//! the lists a drain is for are those of CPUs that stopped freeing, and
//! once the frees stop everywhere the gap is short again.
//!
//! A range leaves the list when a round finds none of its pages free off
//! the free lists (they were reported, or allocated again: if they are
//! freed again, the free path sees them again). One whose pages are still
//! off the free lists stays for at least [`DELAYS_MS`]`.len()` rounds, and
//! is given up only by a round that came after [`DRAINS_TO_GIVE_UP`] drains
//! of the per-CPU lists made since the range was added ([`Retry::drained`]):
//! pages that are still off the free lists then were freed after a drain,
//! and the free path has told the worker about them again. The drains
//! must really drain: `drain_all_pages(NULL)` returns without draining
//! while another drain runs (kcompactd's, memory offlining's), and ranges
//! given up after such drains were lost (issue 38: under the integrity
//! stress on the debug kernel, and beside virtio-mem's offlines); the
//! module drains zone by zone (`free_page_hint_drain()`), which waits for
//! a drain in progress. Two of them, because the free path tells the
//! worker about a page before it puts the page on a per-CPU list: a free
//! preempted in between can put it there after the first drain, when its
//! range was scanned already. Giving a range up earlier loses
//! memory for good: rounds come every 200 ms while new ranges arrive, so
//! three of them can pass between two drains, and a block that a later
//! drain (or a per-CPU list's overflow) moves to the free lists reaches
//! them without a free, so nothing would ever look at it again.
//!
//! Free pages in a pageblock that memory offlining or a contiguous
//! allocation isolated are off the free lists too, but no drain brings
//! them back and no round needs to wait for them: the kernel tells the
//! free path about the pageblock again when the isolation is undone
//! (`free_page_hint_unisolated()`), and the memory leaves with the offline
//! otherwise. The module counts them and lets them go ([`Wait::Nothing`]).
//!
//! The list has a fixed capacity. Close ranges share an entry (the pages
//! between them are scanned too, which is harmless: a scan takes only free
//! pages), and a full list grows its last entry whatever the gap rather
//! than lose a range: nothing pushed is ever dropped. An entry that grows
//! waits for a drain again before it may be given up.

use crate::ranges::PfnRange;

/// Delay before each round, in milliseconds, by the number of rounds a
/// range has already been through: 200 ms, then 1 s, then 5 s.
///
/// The first delay is the time freed memory stays free before it is
/// drained from the per-CPU lists and reported: long enough that a
/// workload that frees and at once reallocates keeps its per-CPU caches,
/// short enough that memory freed for good is back with the host within a
/// second.
pub const DELAYS_MS: [u32; 3] = [200, 1000, 5000];

/// The shortest time between two drains of the per-CPU lists, in
/// milliseconds: memory freed once is drained at its first round (200 ms),
/// memory freed now and then at most once a second.
pub const DRAIN_GAP_MS: u32 = 1000;

/// The shortest time between two drains while frees keep coming
/// ([`Freeing::sustained`]), in milliseconds. Not longer than the last of
/// [`DELAYS_MS`]: a range that waits for its drains ([`Retry::round`])
/// waits at most that long for each.
pub const DRAIN_GAP_BUSY_MS: u32 = 5000;

/// The longest pause between two batches, in milliseconds, that still
/// counts as one stretch of freeing: twice the idle flush's default
/// interval, so that the flush of a burst's last frees belongs to it.
pub const QUIET_MS: u32 = 200;

/// Drains of the per-CPU lists since a range was added before a round may
/// give it up (see the module documentation).
pub const DRAINS_TO_GIVE_UP: u8 = 2;

/// How long a stretch of freeing must have lasted, in milliseconds, to be
/// sustained: a burst (a process exiting, a cache dropped) is over within
/// it, and its last pages are drained at the short gap.
pub const SUSTAINED_MS: u32 = 1000;

/// The current stretch of freeing: batches that came less than
/// [`QUIET_MS`] apart. Times in milliseconds on one monotonic clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freeing {
    /// (first batch of the stretch, latest batch), `None` before the first.
    stretch: Option<(u64, u64)>,
}

impl Freeing {
    /// No batch yet.
    pub const fn new() -> Self {
        Freeing { stretch: None }
    }

    /// Notes a batch processed at `now_ms`.
    pub fn batch(&mut self, now_ms: u64) {
        let first = match self.stretch {
            Some((first, last)) if now_ms.saturating_sub(last) < QUIET_MS as u64 => first,
            _ => now_ms,
        };
        self.stretch = Some((first, now_ms.max(first)));
    }

    /// Whether frees are still coming at `now_ms` (the latest batch less
    /// than [`QUIET_MS`] ago) and have been for [`SUSTAINED_MS`] or more.
    pub const fn sustained(&self, now_ms: u64) -> bool {
        match self.stretch {
            None => false,
            Some((first, last)) => {
                now_ms.saturating_sub(last) < QUIET_MS as u64
                    && now_ms.saturating_sub(first) >= SUSTAINED_MS as u64
            }
        }
    }
}

/// Whether a retry round drains the per-CPU lists first: unless a drain
/// happened in the last [`DRAIN_GAP_MS`], or, while freeing is
/// `sustained` ([`Freeing::sustained`]), in the last
/// [`DRAIN_GAP_BUSY_MS`]. `now_ms` and `last_drain_ms` are on one
/// monotonic clock; `last_drain_ms` is `None` before the first drain.
pub const fn drain_due(now_ms: u64, last_drain_ms: Option<u64>, sustained: bool) -> bool {
    let Some(drained) = last_drain_ms else {
        return true;
    };
    let gap = if sustained {
        DRAIN_GAP_BUSY_MS
    } else {
        DRAIN_GAP_MS
    };
    now_ms.saturating_sub(drained) >= gap as u64
}

/// What a look at a range found free but off the free lists, and so
/// what the range waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wait {
    /// Nothing: the range's free pages were reported, or it is in use
    /// (once freed again, the free path tells the worker).
    Nothing,
    /// Pages on per-CPU lists: a drain brings them to the free lists.
    Drain,
}

impl From<bool> for Wait {
    /// `true`: pages on per-CPU lists ([`Wait::Drain`]); `false`:
    /// [`Wait::Nothing`].
    fn from(off_lists: bool) -> Self {
        if off_lists {
            Wait::Drain
        } else {
            Wait::Nothing
        }
    }
}

/// What a round did with the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Ranges scanned.
    pub scanned: usize,
    /// Ranges kept for another round.
    pub kept: usize,
    /// Pages of ranges dropped after their last round while still not free.
    pub given_up_pages: u64,
}

/// The index of the last delay: an entry that has been through this many
/// rounds waits that long for each further one.
const LAST: u8 = DELAYS_MS.len() as u8 - 1;

/// A bounded list of ranges to scan again, each with the number of rounds
/// it has been through and how often the per-CPU lists were drained since
/// it was added.
///
/// INVARIANT: `len <= N`, every `tries[i]` for `i < len` is at most
/// `LAST` (below `DELAYS_MS.len()`), and no range in `ranges[..len]` is
/// empty.
#[derive(Clone, Debug)]
pub struct Retry<const N: usize> {
    ranges: [PfnRange; N],
    tries: [u8; N],
    /// Drains of the per-CPU lists since every page of the range was added
    /// ([`Retry::drained`]), up to [`DRAINS_TO_GIVE_UP`].
    drained: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Retry<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Retry<N> {
    /// An empty list.
    pub const fn new() -> Self {
        Retry {
            ranges: [PfnRange { start: 0, end: 0 }; N],
            tries: [0; N],
            drained: [0; N],
            len: 0,
        }
    }

    /// Number of ranges on the list.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages of all ranges on the list (ranges may overlap: a page freed
    /// twice is counted twice).
    pub fn pages(&self) -> u64 {
        self.ranges[..self.len].iter().map(|r| r.pages()).sum()
    }

    /// Adds a range whose pages are free but off the free lists (on a
    /// per-CPU list). A range inside one that has not been through a round
    /// yet changes nothing but that entry's wait for a drain (the same host
    /// page deferred again, say). If the last range added has not been
    /// through a round either and lies at most `max_gap` pages away
    /// (overlapping or touching: 0), it grows to cover both; when the list
    /// is full the last range grows whatever the gap and however many
    /// rounds it has been through, since scanning the pages in between
    /// costs a little time (a scan takes only pages that are free) while
    /// dropping the range would lose it. Either way the entry that takes
    /// the range waits for a drain again ([`Retry::drained`]) before a
    /// round may give it up. An empty range is ignored.
    pub fn push(&mut self, r: PfnRange, max_gap: u64) {
        if r.is_empty() {
            return;
        }
        // Already waiting for its first round (the same host page deferred
        // again, say): only a drain from now on counts for it.
        if let Some(i) = (0..self.len).find(|&i| {
            let q = self.ranges[i];
            self.tries[i] == 0 && q.start <= r.start && r.end <= q.end
        }) {
            self.drained[i] = 0;
            return;
        }
        if let Some(i) = self.len.checked_sub(1) {
            let last = &mut self.ranges[i];
            let gap = if r.start > last.end {
                r.start - last.end
            } else {
                last.start.saturating_sub(r.end)
            };
            if (self.tries[i] == 0 && gap <= max_gap) || self.len == N {
                last.start = last.start.min(r.start);
                last.end = last.end.max(r.end);
                self.drained[i] = 0;
                return;
            }
        }
        // INVARIANT: the list is not full (the last range took `r`
        // otherwise, and an empty list has room: `N > 0` or it would have
        // no last range and no room, see the assertion), so `len < N`
        // before the increment; the range is not empty and 0 is at most
        // `LAST`.
        const { assert!(N > 0, "a retry list needs room for a range") };
        self.ranges[self.len] = r;
        self.tries[self.len] = 0;
        self.drained[self.len] = 0;
        self.len += 1;
    }

    /// Notes that the per-CPU lists were drained: a range on the list that
    /// has seen [`DRAINS_TO_GIVE_UP`] of them may be given up by a round
    /// that still finds it off the free lists (see [`Retry::round`]).
    /// Called after the drain, before the round that follows it scans.
    pub fn drained(&mut self) {
        for d in &mut self.drained[..self.len] {
            *d = (*d + 1).min(DRAINS_TO_GIVE_UP);
        }
    }

    /// The delay before the next round, by the range that has been through
    /// the fewest rounds; `None` if the list is empty.
    pub fn next_delay_ms(&self) -> Option<u32> {
        let min = self.tries[..self.len].iter().min()?;
        Some(DELAYS_MS[usize::from(*min)])
    }

    /// One round: calls `scan` on every range, in the order they were
    /// added. A range for which `scan` returns [`Wait::Nothing`] (`false`:
    /// none of its free pages is off the free lists) leaves the list. One
    /// for which it returns [`Wait::Drain`] (`true`) is kept, unless it has
    /// been through `DELAYS_MS.len()` rounds with this one *and* the
    /// per-CPU lists were drained [`DRAINS_TO_GIVE_UP`] times since it was
    /// added: then what is still off the free lists was freed after a
    /// drain, and the free path has reported it again, so the range is
    /// given up. A range that waits stays at the last delay.
    pub fn round<W: Into<Wait>>(&mut self, mut scan: impl FnMut(PfnRange) -> W) -> Round {
        let mut out = Round {
            scanned: self.len,
            ..Round::default()
        };
        let mut kept = 0;
        for i in 0..self.len {
            let r = self.ranges[i];
            let (tries, drained) = (self.tries[i], self.drained[i]);
            match scan(r).into() {
                Wait::Nothing => continue,
                Wait::Drain if tries == LAST && drained >= DRAINS_TO_GIVE_UP => {
                    out.given_up_pages += r.pages();
                    continue;
                }
                Wait::Drain => {}
            }
            // INVARIANT: `kept <= i < len`, and the new `tries` is at most
            // `LAST`.
            self.ranges[kept] = r;
            self.tries[kept] = (tries + 1).min(LAST);
            self.drained[kept] = drained;
            kept += 1;
        }
        self.len = kept;
        out.kept = kept;
        out
    }

    /// Empties the list and returns the pages it held.
    pub fn clear(&mut self) -> u64 {
        let pages = self.pages();
        self.len = 0;
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> PfnRange {
        PfnRange::new(start, end)
    }

    #[test]
    fn empty_list_has_no_round() {
        let l = Retry::<4>::new();
        assert!(l.is_empty());
        assert_eq!(l.next_delay_ms(), None);
        assert_eq!(l.pages(), 0);
    }

    #[test]
    fn push_merges_close_fresh_ranges() {
        let mut l = Retry::<4>::new();
        l.push(r(0, 512), 0);
        l.push(r(512, 1024), 0);
        l.push(r(600, 700), 0);
        assert_eq!(l.len(), 1);
        assert_eq!(l.pages(), 1024);
        l.push(r(2048, 2560), 0);
        assert_eq!(l.len(), 2);
        // Every other page: with a gap of 1 allowed, one range.
        l.push(r(4000, 4001), 1);
        l.push(r(4002, 4003), 1);
        l.push(r(3998, 3999), 1);
        assert_eq!(l.len(), 3, "below the last range works too");
        assert_eq!(l.pages(), 1024 + 512 + 5);
        l.push(r(5, 5), 0);
        assert_eq!(l.len(), 3, "an empty range is ignored");
    }

    /// The drains a range must see before a round may give it up.
    fn drain(l: &mut Retry<4>) {
        for _ in 0..DRAINS_TO_GIVE_UP {
            l.drained();
        }
    }

    #[test]
    fn full_list_grows_its_last_range_and_drops_nothing() {
        let mut l = Retry::<2>::new();
        l.push(r(0, 1), 0);
        l.push(r(10, 11), 0);
        l.push(r(20, 21), 0);
        assert_eq!(l.len(), 2, "full: the last range covers it");
        assert_eq!(l.pages(), 1 + 11);
        // Also once the last range went through rounds and drains: it
        // grows, and must wait for its drains again.
        l.round(|_| true);
        l.round(|_| true);
        for _ in 0..DRAINS_TO_GIVE_UP {
            l.drained();
        }
        l.push(r(30, 31), 0);
        assert_eq!(l.pages(), 1 + 21);
        let k = l.round(|_| true);
        assert_eq!(k.given_up_pages, 1, "only the first range had its drains");
        assert_eq!(l.len(), 1);
        for _ in 0..DRAINS_TO_GIVE_UP {
            l.drained();
        }
        assert_eq!(l.round(|_| true).given_up_pages, 21);
        assert!(l.is_empty());
    }

    #[test]
    fn rounds_back_off_and_give_up_after_the_drains() {
        let mut l = Retry::<4>::new();
        l.push(r(0, 512), 0);
        for (i, d) in DELAYS_MS.iter().enumerate() {
            assert_eq!(l.next_delay_ms(), Some(*d));
            if i + 1 == DELAYS_MS.len() {
                drain(&mut l);
            }
            let k = l.round(|_| true);
            assert_eq!(k.scanned, 1);
            if i + 1 < DELAYS_MS.len() {
                assert_eq!((k.kept, k.given_up_pages), (1, 0));
            } else {
                assert_eq!((k.kept, k.given_up_pages), (0, 512));
            }
        }
        assert!(l.is_empty());
    }

    /// Issue 38: rounds come every 200 ms while new ranges arrive, drains
    /// at most every 5 s while frees keep coming. A range whose pages sat
    /// on a per-CPU list through its rounds was given up before any drain
    /// moved them to the free lists, and nothing looked at them again. And
    /// a free may put its page on a per-CPU list after the first drain:
    /// one drain is not enough.
    #[test]
    fn ranges_off_the_free_lists_wait_for_their_drains() {
        let mut l = Retry::<4>::new();
        l.push(r(0, 512), 0);
        for _ in 0..10 {
            let k = l.round(|_| true);
            assert_eq!(
                (k.kept, k.given_up_pages),
                (1, 0),
                "given up with no drain since"
            );
        }
        assert_eq!(l.next_delay_ms(), Some(DELAYS_MS[DELAYS_MS.len() - 1]));
        // One drain (which may not have drained): kept.
        l.drained();
        assert_eq!(
            l.round(|_| true).given_up_pages,
            0,
            "given up after one drain"
        );
        // The drains came; the round after them still finds pages off the
        // free lists (freed again since, so told again): given up.
        l.drained();
        assert_eq!(l.round(|_| true).given_up_pages, 512);
        // A range that a round finds done leaves at once, drain or not.
        l.push(r(0, 512), 0);
        assert_eq!(l.round(|_| false).kept, 0);
        // Drains before the range's first round count once it has had its
        // rounds; ones that came before the push do not.
        drain(&mut l);
        l.push(r(1024, 1536), 0);
        drain(&mut l);
        l.push(r(1100, 1200), 0);
        for _ in 0..DELAYS_MS.len() - 1 {
            assert_eq!(l.round(|_| true).given_up_pages, 0);
        }
        assert_eq!(
            l.round(|_| true).given_up_pages,
            0,
            "a range inside a fresh one waits for its own drains"
        );
        drain(&mut l);
        assert_eq!(l.round(|_| true).given_up_pages, 512);
    }

    #[test]
    fn drains_are_spaced() {
        let gap = u64::from(DRAIN_GAP_MS);
        assert!(drain_due(0, None, false), "the first drain is due at once");
        assert!(drain_due(0, None, true), "sustained or not");
        assert!(drain_due(1000 + gap, Some(1000), false));
        assert!(!drain_due(999 + gap, Some(1000), false));
        assert!(!drain_due(1000, Some(1000), false));
        // A clock that went backwards waits for the gap.
        assert!(!drain_due(5, Some(1000), false));
    }

    #[test]
    fn drains_are_spaced_further_while_freeing_is_sustained() {
        let (gap, busy) = (u64::from(DRAIN_GAP_MS), u64::from(DRAIN_GAP_BUSY_MS));
        assert!(busy > gap);
        assert!(DRAIN_GAP_BUSY_MS <= DELAYS_MS[DELAYS_MS.len() - 1]);
        assert!(!drain_due(1000 + gap, Some(1000), true));
        assert!(!drain_due(999 + busy, Some(1000), true));
        assert!(drain_due(1000 + busy, Some(1000), true));
    }

    #[test]
    fn freeing_is_sustained_after_a_second_of_batches() {
        let (quiet, long) = (u64::from(QUIET_MS), u64::from(SUSTAINED_MS));
        let mut f = Freeing::new();
        assert!(!f.sustained(0), "no batch yet");
        // Batches every half QUIET_MS for SUSTAINED_MS.
        let mut t = 10_000;
        f.batch(t);
        while t < 10_000 + long {
            assert!(!f.sustained(t), "a burst shorter than SUSTAINED_MS at {t}");
            t += quiet / 2;
            f.batch(t);
        }
        assert!(f.sustained(t));
        assert!(f.sustained(t + quiet - 1));
        // The frees stopped: no longer, and a new batch starts a new stretch.
        assert!(!f.sustained(t + quiet));
        f.batch(t + quiet);
        assert!(!f.sustained(t + quiet));
        assert!(!f.sustained(t + quiet + long - 1));
        // A pause of QUIET_MS - 1 keeps the stretch.
        let mut g = Freeing::new();
        g.batch(0);
        g.batch(quiet - 1);
        g.batch(2 * quiet - 2);
        assert_eq!(
            g,
            Freeing {
                stretch: Some((0, 2 * quiet - 2))
            }
        );
        // A clock that went backwards does not end the stretch, nor move
        // its start; the latest batch is the one noted last.
        g.batch(5);
        assert_eq!(
            g,
            Freeing {
                stretch: Some((0, 5))
            }
        );
    }

    #[test]
    fn round_drops_ranges_that_are_done_and_keeps_order() {
        let mut l = Retry::<8>::new();
        for i in 0..6u64 {
            l.push(r(i * 10, i * 10 + 1), 0);
        }
        let mut seen = [0u64; 6];
        let mut n = 0;
        let k = l.round(|x| {
            seen[n] = x.start;
            n += 1;
            x.start % 20 == 0
        });
        assert_eq!(seen, [0, 10, 20, 30, 40, 50]);
        assert_eq!((k.scanned, k.kept), (6, 3));
        let mut left = [0u64; 3];
        let mut m = 0;
        l.round(|x| {
            left[m] = x.start;
            m += 1;
            false
        });
        assert_eq!(left, [0, 20, 40]);
        assert!(l.is_empty());
    }

    #[test]
    fn fresh_range_after_a_round_is_not_merged_and_sets_the_delay() {
        let mut l = Retry::<4>::new();
        l.push(r(0, 512), 0);
        l.round(|_| true);
        assert_eq!(l.next_delay_ms(), Some(DELAYS_MS[1]));
        l.push(r(512, 1024), 0);
        assert_eq!(l.len(), 2, "a retried range does not absorb a new one");
        assert_eq!(l.next_delay_ms(), Some(DELAYS_MS[0]));
        assert_eq!(l.clear(), 1024);
        assert!(l.is_empty());
    }
}
