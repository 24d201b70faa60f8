// SPDX-License-Identifier: GPL-2.0

//! The abstraction layer: safe Rust APIs over the C the module needs and
//! 6.12's `kernel` crate does not have. It is the only part of the shipped
//! module with `unsafe` code; every other module of the crate is
//! `#![forbid(unsafe_code)]` and uses no `bindings` (the test-only code in
//! `rust/tests/`, which is not built into the shipped module, is the other
//! exception).
//!
//! Each file is one abstraction, written the way the `kernel` crate writes
//! them (`rust/kernel/sync/lock.rs`, `rust/kernel/workqueue.rs`,
//! `rust/kernel/page.rs`): types that are initialised by their constructor
//! (pin-init), owners that undo on drop, `# Invariants` on every type that
//! has them and a `// SAFETY:` argument on every `unsafe` block.
//!
//! - [`cpu`]: per-CPU memory over the possible CPUs, interrupts-off tokens,
//!   the CPU hotplug "dead" callback.
//! - [`sync`]: the interrupt-safe raw spinlock as a `lock::Backend`, lock
//!   class keys, a wait queue.
//! - [`workqueue`]: an owned ordered workqueue and delayed work items owned
//!   by an `Arc`.
//! - [`free_page_hint`]: the series' free page hint hook and buddy-block
//!   isolation, with [`free_page_hint::Isolated`], the owner of isolated
//!   pages, and [`free_page_hint::Report`], the only thing a transport can
//!   send.
//! - [`mm`]: the few page allocator and time facts the mechanism reads.
//! - [`hyperv`]: Hyper-V's memory heat hint hypercall.
//! - [`page_reporting`]: the series' claim on the kernel's free page
//!   reporting, and the registered device's `report()`.
//! - [`sysfs`]: a directory of attributes under `/sys/kernel/mm/`, module
//!   parameters, `.modinfo` entries.
//! - [`virtio`]: a virtio driver, its device, virtqueues and scatterlists.
//!
//! Lock order, outermost first: the knob lock (`Engine::knob_lock`, sysfs
//! writes), the worker mutex (`Engine::worker`), a CPU's capture lock
//! ([`sync::IrqsOffLock`], taken with interrupts off, never while sleeping).
//! The zone locks the C isolation code takes nest inside the worker mutex
//! and never inside a capture lock.

pub(crate) mod cpu;
pub(crate) mod free_page_hint;
pub(crate) mod hyperv;
pub(crate) mod mm;
pub(crate) mod page_reporting;
pub(crate) mod slot;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod virtio;
pub(crate) mod workqueue;
