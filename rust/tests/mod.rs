// SPDX-License-Identifier: GPL-2.0

//! The test build only (`--cfg ph_tests`, which `tools/module.sh` sets for
//! the debug variant): the module's KUnit suites, the recording transport
//! they report through, the C helpers they need, and the test switches the
//! real-guest scenarios use. None of it is in the shipped module.
//!
//! Like the abstraction layer, this part calls C directly; each `unsafe`
//! block says why it is sound.

mod engine;
mod ext;
pub(crate) mod hooks;
pub(crate) mod kunit;
mod recorder;
mod selftest;
mod suites;
pub(crate) mod sys;

use crate::hinting::Mechanism;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::sync::{Arc, ArcBorrow};

/// The running mechanism, for the suites (which KUnit runs after `init`,
/// before the module can be unloaded).
static RUNNING: AtomicPtr<Mechanism> = AtomicPtr::new(core::ptr::null_mut());

/// Holds the mechanism for the suites while the module is loaded.
pub(crate) struct Running(());

impl Running {
    /// Publishes `mech` to the suites.
    pub(crate) fn new(mech: Arc<Mechanism>) -> Self {
        let old = RUNNING.swap(Arc::into_raw(mech).cast_mut(), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: a reference a previous `Running` published and never
            // took back (there is one `Running` at a time).
            drop(unsafe { Arc::from_raw(old) });
        }
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let p = RUNNING.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: the reference `new` published.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

/// The running mechanism, if the module is loaded.
pub(crate) fn mechanism() -> Option<Arc<Mechanism>> {
    let p = RUNNING.load(Ordering::Acquire);
    // SAFETY: non-null is a reference `Running` holds; KUnit runs the
    // suites while the module is loaded, so the `Running` outlives this
    // call, and the clone taken here keeps the mechanism for the caller.
    (!p.is_null()).then(|| Arc::from(unsafe { ArcBorrow::from_raw(p) }))
}
