// SPDX-License-Identifier: GPL-2.0

//! The pure algorithmic core of page-hinting.
//!
//! page-hinting is a guest kernel module that reports freed guest pages to
//! the hypervisor. This crate holds everything that needs no kernel API:
//!
//! - [`capture`]: the [`capture::Entry`] `(pfn, order)` record packed into one
//!   `u64`, and the fixed-size [`capture::CaptureBuf`] the free path appends
//!   to.
//! - [`ranges`]: [`ranges::sort`] for a batch of entries, [`ranges::merge`]
//!   into maximal page ranges and [`ranges::cut`] to aligned pieces.
//! - [`batch`]: [`batch::Batcher`], which splits ranges into transport-sized
//!   reports.
//! - [`retry`]: [`retry::Retry`], the bounded list of ranges the worker
//!   scans again later, with its back-off.
//! - [`settle`]: [`settle::Settle`], the two generations of small freed
//!   blocks that wait to show they stay free before they are reported.
//! - [`hv`]: the range encoding of Hyper-V's memory heat hint hypercall.
//! - [`knobs`]: parsing and validation of the sysfs knobs, and
//!   [`knobs::threshold_pages`].
//!
//! The crate is `no_std`, has no dependencies, never allocates and has no
//! `unsafe` code. The kernel module compiles the very same files with
//! `#[path = "core/src/<file>.rs"] pub mod <file>;` lines at its crate root,
//! which is why this file holds nothing but attributes and module
//! declarations, and why the modules refer to each other as `crate::<file>`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod capture;
pub mod hv;
pub mod knobs;
pub mod ranges;
pub mod retry;
pub mod settle;
