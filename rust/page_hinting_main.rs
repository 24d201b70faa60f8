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
#[path = "core/src/hv.rs"]
pub mod hv;
#[path = "core/src/knobs.rs"]
pub mod knobs;
#[path = "core/src/ranges.rs"]
pub mod ranges;
#[path = "core/src/retry.rs"]
pub mod retry;

mod hinting;
mod sys;
mod sysfs;
mod sysfs_sys;
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

/// The module's version as a literal, for `concat!`; `make packages`
/// versions the package with it.
macro_rules! version {
    () => {
        "0.3.0"
    };
}
/// The module's version, printed at load.
pub const VERSION: &str = version!();
// `modinfo page_hinting` shows it.
sysfs_sys::modinfo!(concat!("version=", version!()));

struct PageHinting {
    // Fields drop in order. The virtio driver goes first: unbinding resets
    // the device, which ends any report in flight, even one a host never
    // answers; a knob write waiting for the worker (`enabled=0`) then
    // returns, so removing sysfs next cannot wait for it forever. No knob
    // write can reach the mechanism once sysfs is gone; the mechanism goes
    // last. (A deliberately broken build removes sysfs first.)
    #[cfg(ph_break_unload)]
    _sysfs: sysfs_sys::MmDir,
    _virtio: Option<virtio::Driver>,
    #[cfg(not(ph_break_unload))]
    _sysfs: sysfs_sys::MmDir,
    _hinting: hinting::Hinting,
}

/// What `/sys/kernel/mm/page_hinting/transport` shows: the transport, its
/// state, and why it does not report if it does not. Takes no lock, so it
/// answers while a report waits for a slow host.
pub(crate) fn transport_status() -> impl core::fmt::Display {
    struct Status(sysfs::TransportChoice, virtio::State);
    impl core::fmt::Display for Status {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                // The module loads with the hypercall only if the host
                // offers it.
                sysfs::TransportChoice::Hypercall => f.write_str("hyperv-heat-hint active"),
                sysfs::TransportChoice::Virtio => {
                    write!(f, "virtio-balloon {}", self.1.name())?;
                    if let Some(why) = self.1.reason() {
                        write!(f, ": {}", why)?;
                    }
                    Ok(())
                }
            }
        }
    }
    Status(sysfs::params().1, virtio::State::get())
}

impl kernel::Module for PageHinting {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let (params, choice) = sysfs::params();
        let hypercall = match choice {
            sysfs::TransportChoice::Hypercall => match transport::HypercallTransport::probe() {
                Ok(t) => Some(t),
                Err(why) => {
                    pr_err!("transport=hypercall: {}; not loading\n", why.reason());
                    return Err(why.errno());
                }
            },
            sysfs::TransportChoice::Virtio => None,
        };
        let h = hinting::Hinting::new(&params)?;
        let v = match hypercall {
            Some(t) => {
                h.set_transport(transport::AnyTransport::Hypercall(t));
                None
            }
            // Binds the balloon device if one is present and free; the
            // mechanism runs with no transport otherwise.
            None => match virtio::register(module) {
                Ok(v) => Some(v),
                Err(e) => {
                    pr_warn!("virtio driver not registered ({:?}): no transport\n", e);
                    None
                }
            },
        };
        let dir = sysfs::create()?;
        pr_info!(
            "version {} loaded: transport {}, min_order {}, threshold {} KiB, flush {} ms, delay {} ms{}\n",
            VERSION,
            transport_status(),
            params.min_order,
            params.threshold_kb,
            params.flush_ms,
            params.delay_ms,
            if params.enabled { "" } else { ", paused" }
        );
        Ok(PageHinting {
            _virtio: v,
            _sysfs: dir,
            _hinting: h,
        })
    }
}

impl Drop for PageHinting {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
