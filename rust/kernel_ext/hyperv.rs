// SPDX-License-Identifier: GPL-2.0

//! Hyper-V's memory heat hint hypercall (`HvExtCallMemoryHeatHint`, as
//! Linux's `hv_balloon` issues it), for the hypercall transport.

use crate::kernel_ext::cpu::IrqOff;
use kernel::bindings;

/// Entry slots after the header in the hypercall input page.
pub(crate) const SLOTS: usize = crate::hv::MAX_RANGES;

/// Whether the host offers Hyper-V's cold-discard memory heat hint
/// (`HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT`). False when not running
/// on Hyper-V, or in a kernel without Hyper-V support.
pub(crate) fn cold_discard_offered() -> bool {
    const HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT: u64 = 1 << 8;
    // SAFETY: `hv_query_ext_cap` checks that extended hypercalls exist
    // before it makes one, and returns false outside Hyper-V; process
    // context.
    unsafe { bindings::hv_query_ext_cap(HV_EXT_CAPABILITY_MEMORY_COLD_DISCARD_HINT) }
}

/// Why a heat hint failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HintError {
    /// This CPU has no hypercall input page.
    NoInputPage,
    /// The hypervisor's status.
    Status(u16),
}

/// Issues `HvExtCallMemoryHeatHint` with the entries `fill` writes into
/// this CPU's hypercall input page (after the header), with interrupts off
/// as the input page requires. `fill` gets the entry slots and returns how
/// many it filled.
pub(crate) fn heat_hint(
    fill: impl FnOnce(&mut [u64; SLOTS]) -> usize,
) -> core::result::Result<(), HintError> {
    const HV_EXT_CALL_MEMORY_HEAT_HINT: u16 = 0x8003;
    const HV_HYPERCALL_RESULT_MASK: u64 = 0xffff;
    let irq = IrqOff::new();
    // SAFETY: interrupts are off, so this CPU's input page is ours until
    // `irq` drops; the helper returns null if there is none.
    let page = unsafe { bindings::hv_input_page() }.cast::<u64>();
    if page.is_null() {
        return Err(HintError::NoInputPage);
    }
    // SAFETY: the input page is HV_HYP_PAGE_SIZE (4096) bytes, 8-byte
    // aligned, and ours (above): the header and `SLOTS` entries, 8 + 511 * 8
    // bytes, fit.
    let slots = unsafe {
        page.write(crate::hv::HINT_COLD_DISCARD);
        &mut *page.add(1).cast::<[u64; SLOTS]>()
    };
    let n = fill(slots).min(SLOTS);
    if n == 0 {
        return Ok(());
    }
    // SAFETY: the input page holds a valid heat hint of `n` entries; the
    // call has no output; interrupts are off (above).
    let status = unsafe {
        bindings::hv_do_rep_hypercall(
            HV_EXT_CALL_MEMORY_HEAT_HINT,
            n as u16,
            0,
            page.cast(),
            core::ptr::null_mut(),
        )
    };
    drop(irq);
    match status & HV_HYPERCALL_RESULT_MASK {
        0 => Ok(()),
        s => Err(HintError::Status(s as u16)),
    }
}
