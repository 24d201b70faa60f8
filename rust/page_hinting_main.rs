// SPDX-License-Identifier: GPL-2.0

//! page_hinting: tells the hypervisor which guest pages are free, soon after
//! they are freed, so that the host can take the memory back.
//!
//! The crate, from the hook to the host:
//!
//! - [`kernel_ext`]: the abstraction layer over C, the only shipped module
//!   with `unsafe` code;
//! - [`hinting`]: the mechanism (capture, worker, retry), which knows
//!   transports only as registered [`hinting::Transport`]s;
//! - [`transport`]: the virtio-balloon driver and the Hyper-V hypercall,
//!   each registering a transport with the mechanism;
//! - [`sysfs`]: `/sys/kernel/mm/page_hinting/` and the module parameters;
//! - the no_std core (`rust/core/src/`, tested on the host): sorting,
//!   merging, batching, retry, knob parsing;
//! - this file, which builds them in order and tears them down in reverse;
//! - `rust/tests/`, only in the test build (`--cfg ph_tests`): KUnit
//!   suites and the test switches.
//!
//! See `Documentation/mm/page_hinting.rst` for the design and
//! `Documentation/admin-guide/mm/page_hinting.rst` for its use.

#![deny(unsafe_code)]

use kernel::prelude::*;

// The no_std core, the same files `cargo test` checks on the host.
#[path = "core/src/batch.rs"]
#[forbid(unsafe_code)]
pub mod batch;
#[path = "core/src/capture.rs"]
#[forbid(unsafe_code)]
pub mod capture;
#[path = "core/src/hv.rs"]
#[forbid(unsafe_code)]
pub mod hv;
#[path = "core/src/knobs.rs"]
#[forbid(unsafe_code)]
pub mod knobs;
#[path = "core/src/ranges.rs"]
#[forbid(unsafe_code)]
pub mod ranges;
#[path = "core/src/retry.rs"]
#[forbid(unsafe_code)]
pub mod retry;
#[path = "core/src/settle.rs"]
#[forbid(unsafe_code)]
pub mod settle;

mod hinting;
#[allow(unsafe_code)]
mod kernel_ext;
mod sysfs;
mod transport;

#[cfg(ph_tests)]
#[allow(unsafe_code)]
mod tests;

use kernel_ext::sysfs::{modinfo, module_param, param_info, ShowBuf};

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
modinfo!(concat!("version=", version!()));

// The module parameters, parsed by `sysfs` before `init`, and what
// `modinfo -p page_hinting` lists.
module_param!(
    PARAM_THRESHOLD,
    c"threshold_kb",
    &sysfs::OPS_THRESHOLD,
    new_shown
);
module_param!(
    PARAM_MIN_ORDER,
    c"min_order",
    &sysfs::OPS_MIN_ORDER,
    new_shown
);
module_param!(PARAM_ENABLED, c"enabled", &sysfs::OPS_ENABLED, new_shown);
module_param!(PARAM_FLUSH, c"flush_ms", &sysfs::OPS_FLUSH, new_shown);
module_param!(PARAM_DELAY, c"delay_ms", &sysfs::OPS_DELAY, new_shown);
module_param!(PARAM_SETTLE, c"settle_ms", &sysfs::OPS_SETTLE, new_shown);
module_param!(
    PARAM_HOST_PAGE,
    c"host_page_kb",
    &sysfs::OPS_HOST_PAGE,
    new_shown
);
module_param!(
    PARAM_TRANSPORT,
    c"transport",
    &sysfs::OPS_TRANSPORT,
    new_shown
);
param_info!(
    "threshold_kb",
    "ulong",
    "Pending freed memory on one CPU, in KiB, that starts a report (4..1073741824, default 4096)"
);
param_info!(
    "min_order",
    "uint",
    "Order of the smallest block reported (0..MAX_PAGE_ORDER, default pageblock_order: 9 on x86)"
);
param_info!(
    "enabled",
    "uint",
    "1: capture and report freed memory (default); 0: paused"
);
param_info!(
    "flush_ms",
    "uint",
    "ms after the first capture on an idle CPU that memory below threshold_kb is reported anyway (0..60000, 0: never, default 100)"
);
param_info!(
    "delay_ms",
    "uint",
    "ms a batch waits before the worker looks at it (0..1000, default 0)"
);
param_info!(
    "settle_ms",
    "uint",
    "Blocks below a pageblock are reported once free, and not freed again, for 1 to 2 times this many ms (0..10000, 0: at once, default 1000)"
);
param_info!(
    "host_page_kb",
    "ulong",
    "Size of the host pages behind guest memory, in KiB (a power of two, 4..1048576, default 4): only whole, aligned host pages are reported"
);
param_info!(
    "transport",
    "charp",
    "How reports reach the host: engine (the report callback of the device virtio_balloon or hv_balloon registered for free page reporting, default), virtio (page_hinting's own virtio-balloon driver) or hypercall (Hyper-V)"
);

/// The transport's part, held while the module is loaded.
enum Reporter {
    /// The claim on the kernel's free page reporting; it registers a
    /// transport while a device is attached.
    Engine { _engine: transport::engine::Engine },
    /// The virtio driver; it registers a transport while it has a device.
    Virtio { _driver: transport::virtio::Driver },
    /// The hypercall transport, registered at load.
    Hypercall {
        _registration: hinting::Registration,
    },
    /// Nothing reports (the virtio driver could not be registered).
    None,
}

struct PageHinting {
    // Fields drop in order. The transport goes first: unbinding the virtio
    // driver resets the device, which ends any report in flight, even one a
    // host never answers; a knob write waiting for the worker
    // (`enabled=0`) then returns, so removing sysfs next cannot wait for it
    // forever. No knob write can reach the mechanism once sysfs is gone;
    // the mechanism goes last.
    _reporter: Reporter,
    _sysfs: kernel_ext::sysfs::Dir<sysfs::Ui>,
    #[cfg(ph_tests)]
    _tests: tests::Running,
    _hinting: hinting::Hinting,
}

/// What `/sys/kernel/mm/page_hinting/transport` shows: the transport, its
/// state, and why it does not report if it does not. Takes no lock.
fn transport_status(out: &mut ShowBuf<'_>) -> core::fmt::Result {
    use core::fmt::Write;
    match sysfs::params().1 {
        sysfs::TransportChoice::Engine => transport::engine::status(out),
        // The module loads with the hypercall only if the host offers it.
        sysfs::TransportChoice::Hypercall => out.write_str("hyperv-heat-hint active"),
        sysfs::TransportChoice::Virtio => {
            let s = transport::virtio::State::get();
            write!(out, "virtio-balloon {}", s.name())?;
            if let Some(why) = s.reason() {
                write!(out, ": {}", why)?;
            }
            Ok(())
        }
    }
}

impl kernel::Module for PageHinting {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let (params, choice) = sysfs::params();
        if let Err(why) = hinting::check_host_page_kb(params.host_page_kb) {
            pr_err!(
                "host_page_kb={} refused: {}; not loading\n",
                params.host_page_kb,
                why
            );
            return Err(EINVAL);
        }
        let h = hinting::Hinting::new(&params)?;
        let mech = h.mechanism();
        let reporter = match choice {
            sysfs::TransportChoice::Engine => match transport::engine::claim(mech.clone()) {
                Ok(e) => Reporter::Engine { _engine: e },
                Err(e) => {
                    pr_err!(
                        "transport=engine: free page reporting not claimed ({:?}): another module has it; not loading\n",
                        e
                    );
                    return Err(e);
                }
            },
            sysfs::TransportChoice::Hypercall => match transport::hyperv::register(mech) {
                Ok(r) => Reporter::Hypercall { _registration: r },
                Err(why) => {
                    pr_err!("transport=hypercall: {}; not loading\n", why.reason());
                    return Err(why.errno());
                }
            },
            // Binds the balloon device if one is present and free; the
            // mechanism runs with no transport otherwise.
            sysfs::TransportChoice::Virtio => {
                match transport::virtio::register(module, mech.clone()) {
                    Ok(v) => Reporter::Virtio { _driver: v },
                    Err(e) => {
                        pr_warn!("virtio driver not registered ({:?}): no transport\n", e);
                        Reporter::None
                    }
                }
            }
        };
        let ui = kernel::sync::Arc::new(
            sysfs::Ui {
                mech: mech.clone(),
                transport_status,
            },
            GFP_KERNEL,
        )?;
        let dir = sysfs::create(ui)?;
        let mut status = [0u8; 256];
        let mut buf = ShowBuf::new(&mut status);
        let _ = transport_status(&mut buf);
        let status = buf.as_str();
        pr_info!(
            "version {} loaded: transport {}, min_order {}, host pages {} KiB, threshold {} KiB, flush {} ms, delay {} ms, settle {} ms{}\n",
            VERSION,
            status,
            params.min_order,
            params.host_page_kb,
            params.threshold_kb,
            params.flush_ms,
            params.delay_ms,
            params.settle_ms,
            if params.enabled { "" } else { ", paused" }
        );
        Ok(PageHinting {
            _reporter: reporter,
            _sysfs: dir,
            #[cfg(ph_tests)]
            _tests: tests::Running::new(mech.clone()),
            _hinting: h,
        })
    }
}

impl Drop for PageHinting {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
