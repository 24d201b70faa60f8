// SPDX-License-Identifier: GPL-2.0

//! The C the suites need beyond the abstraction layer: allocating and
//! freeing blocks, reading page state, running code on another CPU, CPU
//! hotplug. Test build only.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_ulong},
    prelude::*,
};

/// Pages in `r` that are heads of free buddy blocks right now (a racy look
/// without the zone lock, for tests: isolated pages must show none).
pub(crate) fn count_buddy_heads(r: crate::ranges::PfnRange) -> u64 {
    let mut n = 0;
    for pfn in r.start..r.end {
        // SAFETY: `r` comes from isolated blocks, whose pfns have memmap
        // entries; PageBuddy only reads the page's type field.
        if unsafe { bindings::PageBuddy(bindings::pfn_to_page(pfn as c_ulong)) } {
            n += 1;
        }
    }
    n
}

/// Free pages in the system (`NR_FREE_PAGES`).
pub(crate) fn nr_free_pages() -> u64 {
    // SAFETY: reads a vmstat counter.
    unsafe { bindings::global_zone_page_state(bindings::zone_stat_item_NR_FREE_PAGES) as u64 }
}

/// The migratetype of the pageblock holding `pfn` (tests).
pub(crate) fn pageblock_migratetype(pfn: u64) -> i32 {
    // SAFETY: callers pass pfns of blocks they allocated, which have a
    // memmap; the pageblock flags are read without a lock (a racy look).
    unsafe { bindings::get_pageblock_migratetype(bindings::pfn_to_page(pfn as c_ulong)) }
}

/// `MIGRATE_MOVABLE`.
pub(crate) const MIGRATE_MOVABLE: i32 = bindings::migratetype_MIGRATE_MOVABLE as i32;

/// Splits an allocated block of `order` at `pfn` into single pages (tests):
/// from now on each of its pages is freed on its own, with
/// [`free_split_pages`].
///
/// # Safety
///
/// `pfn` is the first pfn of a block of `order` the caller allocated and
/// owns, not split before.
pub(crate) unsafe fn split_block(pfn: u64, order: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::split_page(bindings::pfn_to_page(pfn as c_ulong), order) };
}

/// Frees the single pages `[start, end)` of a block [`split_block`] split
/// (tests).
///
/// # Safety
///
/// Each pfn is a page of a split block the caller owns, freed once, here.
pub(crate) unsafe fn free_split_pages(start: u64, end: u64) {
    for pfn in start..end {
        // SAFETY: guaranteed by the caller.
        unsafe { bindings::__free_pages(bindings::pfn_to_page(pfn as c_ulong), 0) };
    }
}

/// A block of pages allocated from the buddy allocator, freed on drop
/// (test helper).
///
/// # Invariants
///
/// `page` is an allocated block of order `order` that this value owns.
pub(crate) struct OwnedBlock {
    page: NonNull<bindings::page>,
    order: u32,
}

/// How a test allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alloc {
    /// `GFP_KERNEL`: may reclaim.
    Normal,
    /// Fails fast and quietly instead of reclaiming hard ("allocate
    /// everything" loops).
    NoRetry,
    /// As `NoRetry`, and ignores the watermarks (`__GFP_MEMALLOC`), so a
    /// loop can empty a free list down to its last block. Only for tests
    /// that give everything back at once.
    Reserves,
}

impl OwnedBlock {
    /// Allocates a block of `order` the way `how` says.
    pub(crate) fn alloc(order: u32, how: Alloc) -> Option<Self> {
        let mut gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;
        match how {
            Alloc::Normal => {}
            Alloc::NoRetry => gfp |= 1 << bindings::___GFP_NORETRY_BIT,
            Alloc::Reserves => {
                gfp |= (1 << bindings::___GFP_NORETRY_BIT) | (1 << bindings::___GFP_MEMALLOC_BIT)
            }
        }
        // SAFETY: process context (KUnit tests), valid flags.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: non-null is a block of `order` we now own.
        Some(OwnedBlock {
            page: NonNull::new(page)?,
            order,
        })
    }

    /// The block's order.
    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    /// The block's first pfn.
    pub(crate) fn pfn(&self) -> u64 {
        // SAFETY: a valid page (type invariant).
        unsafe { bindings::page_to_pfn(self.page.as_ptr()) as u64 }
    }

    /// Writes `v` into the first 8 bytes of the block.
    pub(crate) fn write_u64(&self, v: u64) {
        // SAFETY: we own the page; the mapping is used and dropped here.
        unsafe {
            let p = bindings::kmap_local_page(self.page.as_ptr()) as *mut u64;
            p.write(v);
            bindings::kunmap_local(p as *const c_void);
        }
    }

    /// Reads the first 8 bytes of the block.
    pub(crate) fn read_u64(&self) -> u64 {
        // SAFETY: as for `write_u64`.
        unsafe {
            let p = bindings::kmap_local_page(self.page.as_ptr()) as *const u64;
            let v = p.read();
            bindings::kunmap_local(p as *const c_void);
            v
        }
    }

    /// Takes back ownership of a block from its pfn and order.
    ///
    /// # Safety
    ///
    /// `pfn` must be the first pfn of an allocated block of `order` whose
    /// owner gave it up (e.g. with [`OwnedBlock::leak`]).
    pub(crate) unsafe fn from_pfn(pfn: u64, order: u32) -> Self {
        // SAFETY: an allocated block has a memmap entry.
        let page = unsafe { bindings::pfn_to_page(pfn as c_ulong) };
        // INVARIANT: guaranteed by the caller.
        OwnedBlock {
            // SAFETY: `pfn_to_page` of a valid pfn is not null.
            page: unsafe { NonNull::new_unchecked(page) },
            order,
        }
    }

    /// Gives up ownership without freeing; returns the pfn.
    pub(crate) fn leak(self) -> u64 {
        let pfn = self.pfn();
        core::mem::forget(self);
        pfn
    }
}

impl Drop for OwnedBlock {
    fn drop(&mut self) {
        // SAFETY: we own the block (type invariant) and free it once.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// Page state of `pfn` as the tests look at it (racy reads without the zone
/// lock, so only meaningful for pages nobody else touches).
pub(crate) struct PageState {
    pub(crate) buddy: bool,
    pub(crate) reported: bool,
    pub(crate) uptodate: bool,
}

/// Reads the state of the page at `pfn`, which must be a RAM pfn.
pub(crate) fn page_state(pfn: u64) -> PageState {
    // SAFETY: the tests only pass pfns of blocks they allocated, so the pfn
    // has a memmap entry; the helpers only read flags.
    unsafe {
        let p = bindings::pfn_to_page(pfn as c_ulong);
        PageState {
            buddy: bindings::PageBuddy(p),
            reported: bindings::PageReported(p),
            uptodate: bindings::PageUptodate(p),
        }
    }
}

/// Runs `f` on `cpu` in interrupt context (an IPI) and waits for it.
pub(crate) fn run_on_cpu<F: FnMut()>(cpu: u32, f: &mut F) -> Result {
    /// # Safety
    ///
    /// `info` points to an `F` that is valid and not otherwise used for the
    /// duration of the call.
    unsafe extern "C" fn tramp<F: FnMut()>(info: *mut c_void) {
        // SAFETY: guaranteed by the caller (`run_on_cpu` passes `f`).
        let f = unsafe { &mut *info.cast::<F>() };
        f();
    }
    let cpu = c_int::try_from(cpu).map_err(|_| EINVAL)?;
    // SAFETY: `wait` is 1, so the call returns only after `tramp` has run
    // and `f` (borrowed for the whole call) is used by nothing else meanwhile.
    let r = unsafe {
        bindings::smp_call_function_single(cpu, Some(tramp::<F>), (f as *mut F).cast(), 1)
    };
    to_result(r)
}

/// Takes `cpu` offline (as `echo 0 > .../cpuN/online` does).
pub(crate) fn cpu_down(cpu: u32) -> Result {
    // SAFETY: process context; the hotplug core checks `cpu`.
    to_result(unsafe { bindings::remove_cpu(cpu) })
}

/// Brings `cpu` back online.
pub(crate) fn cpu_up(cpu: u32) -> Result {
    // SAFETY: process context; the hotplug core checks `cpu`.
    to_result(unsafe { bindings::add_cpu(cpu) })
}

/// Whether `cpu` is online.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: reads the online mask; `cpu` is checked against nr_cpu_ids.
    cpu < crate::kernel_ext::cpu::nr_cpu_ids() && unsafe { bindings::cpu_online(cpu) }
}
