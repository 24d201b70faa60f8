// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the knob parsers on arbitrary bytes, comparing each one with a
//! simple reference model of the grammar `digit+ "\n"?`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use page_hinting_core::knobs::{self, KnobError};

/// The reference: strip one newline, all digits, compare against the
/// decimal text of `u64::MAX` for overflow.
fn model(input: &[u8]) -> Result<u64, KnobError> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if body.is_empty() {
        return Err(KnobError::Empty);
    }
    if !body.iter().all(u8::is_ascii_digit) {
        return Err(KnobError::Invalid);
    }
    let text = std::str::from_utf8(body).expect("digits are ASCII");
    let digits = text.trim_start_matches('0');
    let max = u64::MAX.to_string();
    if digits.len() > max.len() || (digits.len() == max.len() && digits > max.as_str()) {
        return Err(KnobError::Overflow);
    }
    Ok(if digits.is_empty() {
        0
    } else {
        digits.parse().expect("fits")
    })
}

fn ranged(m: Result<u64, KnobError>, min: u64, max: u64) -> Result<u64, KnobError> {
    match m {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(_) => Err(KnobError::OutOfRange { min, max }),
        Err(e) => Err(e),
    }
}

fuzz_target!(|data: &[u8]| {
    let m = model(data);
    assert_eq!(knobs::parse_u64(data), m);
    assert_eq!(
        knobs::parse_threshold_kb(data),
        ranged(m, knobs::THRESHOLD_KB_MIN, knobs::THRESHOLD_KB_MAX)
    );
    assert_eq!(
        knobs::parse_min_order(data),
        ranged(m, 0, 10).map(|v| v as u32)
    );
    assert_eq!(knobs::parse_enabled(data), ranged(m, 0, 1).map(|v| v == 1));
    assert_eq!(
        knobs::parse_flush_ms(data),
        ranged(m, 0, u64::from(knobs::FLUSH_MS_MAX)).map(|v| v as u32)
    );
    let host = match ranged(m, knobs::HOST_PAGE_KB_MIN, knobs::HOST_PAGE_KB_MAX) {
        Ok(v) if !v.is_power_of_two() => Err(KnobError::NotPowerOfTwo),
        r => r,
    };
    assert_eq!(knobs::parse_host_page_kb(data), host);
    if let Ok(kb) = host {
        // A host page covers 2^order guest pages exactly.
        for page_size in [4096u64, 16384, 65536] {
            let order = knobs::host_page_order(kb, page_size);
            assert_eq!(
                (page_size << order).max(kb * 1024),
                page_size << order,
                "{kb} KiB, {page_size} B pages"
            );
            assert!(kb * 1024 < page_size || page_size << order == kb * 1024);
        }
    }
    if let Ok(kb) = knobs::parse_threshold_kb(data) {
        for page_size in [4096u64, 16384, 65536] {
            let pages = knobs::threshold_pages(kb, page_size);
            assert!(pages >= 1);
            // Rounded up: enough pages, and not one too many.
            assert!(pages * page_size >= kb * 1024);
            assert!((pages - 1) * page_size < kb * 1024 || pages == 1);
        }
    }
});
