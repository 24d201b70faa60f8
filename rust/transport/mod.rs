// SPDX-License-Identifier: GPL-2.0

//! Transports: how reports of free pfn ranges reach the host. Each registers
//! a [`crate::hinting::Transport`] with the mechanism and holds the
//! [`crate::hinting::Registration`] while it can report:
//!
//! - [`engine`]: the `report()` callback of the device registered with the
//!   kernel's free page reporting (virtio_balloon, hv_balloon), whose
//!   engine page_hinting replaces;
//! - [`virtio`]: the virtio-balloon free page reporting queue, through a
//!   virtio driver for the balloon device;
//! - [`hyperv`]: Hyper-V's memory heat hint hypercall.

#![forbid(unsafe_code)]

pub(crate) mod engine;
pub(crate) mod hyperv;
pub(crate) mod virtio;
