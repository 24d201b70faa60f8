// SPDX-License-Identifier: GPL-2.0

//! Load-time self checks, run by KUnit when the test build of the module
//! loads: the kernel pieces the module relies on are there and behave.

use crate::tests::kunit::{kexpect, kexpect_eq, kunit_suite, Test};
use kernel::bindings;

/// The module reports a version.
fn version_is_set(t: &Test) {
    kexpect!(t, !crate::VERSION.is_empty());
}

/// The free page hint hook from the patch series refuses a callback table
/// without a callback: the series is applied and its checks are in place.
fn hook_rejects_empty_ops(t: &Test) {
    // SAFETY: a null pointer is a documented input of
    // free_page_hint_register(), rejected before any use.
    let ret = unsafe { bindings::free_page_hint_register(core::ptr::null()) };
    kexpect_eq!(t, ret, -(bindings::EINVAL as i32));
}

/// page_to_pfn() and pfn_to_page() helpers round-trip a real page.
fn pfn_round_trip(t: &Test) {
    // SAFETY: allocating one page with GFP_KERNEL from process context.
    let page = unsafe { bindings::alloc_pages(bindings::GFP_KERNEL, 0) };
    if !kexpect!(t, !page.is_null(), "alloc_pages failed") {
        return;
    }
    // SAFETY: `page` is a valid page we own.
    let pfn = unsafe { bindings::page_to_pfn(page) };
    // SAFETY: `pfn` is the pfn of a page we own, so it has a memmap entry.
    let back = unsafe { bindings::pfn_to_page(pfn) };
    kexpect_eq!(t, back, page);
    // SAFETY: an allocated page is not a free buddy page.
    kexpect!(t, !unsafe { bindings::PageBuddy(page) });
    // SAFETY: we allocated `page` with order 0 above and free it once.
    unsafe { bindings::__free_pages(page, 0) };
}

kunit_suite!(
    page_hinting_selftest,
    "page_hinting_selftest",
    [version_is_set, hook_rejects_empty_ops, pfn_round_trip]
);
