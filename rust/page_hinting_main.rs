// SPDX-License-Identifier: GPL-2.0

//! page_hinting: tells the hypervisor which guest pages are free, soon after
//! they are freed, so that the host can take the memory back.
//!
//! See `Documentation/mm/page_hinting.rst` for the design and
//! `Documentation/admin-guide/mm/page_hinting.rst` for its use.

use kernel::prelude::*;

#[cfg(CONFIG_KUNIT)]
mod kunit;
#[cfg(CONFIG_KUNIT)]
mod selftest;

module! {
    type: PageHinting,
    name: "page_hinting",
    author: "page-hinting developers",
    description: "Free page hinting: report freed guest memory to the hypervisor",
    license: "GPL",
}

/// The module's version, printed at load.
pub const VERSION: &str = "0.1.0";

struct PageHinting;

impl kernel::Module for PageHinting {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("version {} loaded\n", VERSION);
        Ok(PageHinting)
    }
}

impl Drop for PageHinting {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
