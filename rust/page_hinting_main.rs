// SPDX-License-Identifier: GPL-2.0

//! page_hinting: tells the hypervisor which guest pages are free, soon after
//! they are freed, so that the host can take the memory back.
//!
//! See `Documentation/mm/page_hinting.rst` for the design and
//! `Documentation/admin-guide/mm/page_hinting.rst` for its use.

use kernel::prelude::*;

// The no_std core, the same files `cargo test` checks on the host.
#[path = "core/src/batch.rs"]
pub mod batch;
#[path = "core/src/capture.rs"]
pub mod capture;
#[path = "core/src/knobs.rs"]
pub mod knobs;
#[path = "core/src/ranges.rs"]
pub mod ranges;

mod hinting;
mod sys;
mod transport;
mod virtio;
mod virtio_sys;

#[cfg(CONFIG_KUNIT)]
mod kunit;
#[cfg(CONFIG_KUNIT)]
mod selftest;
#[cfg(CONFIG_KUNIT)]
mod tests;

module! {
    type: PageHinting,
    name: "page_hinting",
    author: "page-hinting developers",
    description: "Free page hinting: report freed guest memory to the hypervisor",
    license: "GPL",
}

/// The module's version, printed at load.
pub const VERSION: &str = "0.1.0";

struct PageHinting {
    // Fields drop in order: the virtio driver goes first (unbinding resets
    // the device, which ends any report in flight), then the mechanism.
    _virtio: Option<virtio::Driver>,
    _hinting: hinting::Hinting,
}

impl kernel::Module for PageHinting {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let params = hinting::Params {
            threshold_pages: knobs::threshold_pages(4096, kernel::page::PAGE_SIZE as u64),
            min_order: sys::pageblock_order(),
            enabled: true,
            flush_ms: 100,
        };
        let h = hinting::Hinting::new(&params)?;
        // Binds the balloon device if one is present and free; the
        // mechanism runs with no transport otherwise.
        let v = match virtio::register(module) {
            Ok(v) => Some(v),
            Err(e) => {
                pr_warn!("virtio driver not registered ({:?}): no transport\n", e);
                None
            }
        };
        pr_info!(
            "version {} loaded: transport {} (virtio-balloon: {}), min_order {}, threshold {} pages, flush {} ms\n",
            VERSION,
            h.transport_name(),
            virtio::State::get().name(),
            params.min_order,
            params.threshold_pages,
            params.flush_ms
        );
        Ok(PageHinting {
            _virtio: v,
            _hinting: h,
        })
    }
}

impl Drop for PageHinting {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
