// SPDX-License-Identifier: GPL-2.0

//! Parsing and validation of the sysfs knobs.
//!
//! A sysfs `store` gets the bytes the user wrote. Every knob takes the same
//! grammar, what `echo 123 > knob` writes:
//!
//! ```text
//! value = digit { digit } [ "\n" ]
//! digit = "0" | "1" | ... | "9"
//! ```
//!
//! Leading zeros are allowed (`007` is 7). Everything else is rejected with
//! a [`KnobError`]: an empty write or a lone newline ([`KnobError::Empty`]);
//! signs (`-1`, `+1`), spaces, tabs, `0x10`, `1e3`, `1.5`, a NUL byte,
//! a `\r`, a second newline or anything after the newline
//! ([`KnobError::Invalid`]); a number above `u64::MAX`
//! ([`KnobError::Overflow`]); and a number outside the knob's bounds
//! ([`KnobError::OutOfRange`]).

use crate::capture::MAX_PAGE_ORDER;

/// Why a knob write was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobError {
    /// Nothing but an optional newline was written.
    Empty,
    /// A byte other than a decimal digit, or anything after the one allowed
    /// trailing newline.
    Invalid,
    /// The number does not fit in a `u64`.
    Overflow,
    /// The number is outside the knob's bounds, `min..=max`.
    OutOfRange {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// The knob takes powers of two only.
    NotPowerOfTwo,
}

impl KnobError {
    /// The (positive) errno a sysfs `store` returns: `EINVAL` (22) for
    /// every rejected write, an overflow or a value out of range included,
    /// as the knobs' ABI document promises (`kstrtou64` would answer
    /// `ERANGE` for those); the variant says why.
    pub const fn errno(&self) -> i32 {
        match self {
            KnobError::Empty
            | KnobError::Invalid
            | KnobError::Overflow
            | KnobError::OutOfRange { .. }
            | KnobError::NotPowerOfTwo => 22,
        }
    }
}

impl core::fmt::Display for KnobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KnobError::Empty => f.write_str("empty value"),
            KnobError::Invalid => f.write_str("not a decimal number"),
            KnobError::Overflow => f.write_str("number too large"),
            KnobError::OutOfRange { min, max } => {
                write!(f, "value out of range {min}..={max}")
            }
            KnobError::NotPowerOfTwo => f.write_str("not a power of two"),
        }
    }
}

/// Smallest `threshold_kb`: one 4 KiB page.
pub const THRESHOLD_KB_MIN: u64 = 4;
/// Largest `threshold_kb`: 1 TiB.
pub const THRESHOLD_KB_MAX: u64 = 1 << 30;
/// Largest `flush_ms`: one minute. 0 turns the timed flush off.
pub const FLUSH_MS_MAX: u32 = 60_000;
/// Largest `delay_ms`: one second (a batch waits at most that long).
pub const DELAY_MS_MAX: u32 = 1000;
/// Largest `settle_ms`: ten seconds (a small block waits at most twice
/// that long).
pub const SETTLE_MS_MAX: u32 = 10_000;

/// Smallest `host_page_kb`: a 4 KiB host page (no huge pages).
pub const HOST_PAGE_KB_MIN: u64 = 4;
/// Largest `host_page_kb`: a 1 GiB host page.
pub const HOST_PAGE_KB_MAX: u64 = 1 << 20;

/// Parses a decimal `u64` as described in the [module documentation](self).
pub const fn parse_u64(input: &[u8]) -> Result<u64, KnobError> {
    let digits = match input {
        [rest @ .., b'\n'] => rest,
        all => all,
    };
    if digits.is_empty() {
        return Err(KnobError::Empty);
    }
    // Check the grammar first, so that "99999999999999999999x" is Invalid
    // rather than Overflow.
    let mut i = 0;
    while i < digits.len() {
        if !digits[i].is_ascii_digit() {
            return Err(KnobError::Invalid);
        }
        i += 1;
    }
    let mut value: u64 = 0;
    let mut i = 0;
    while i < digits.len() {
        // Checked above to be an ASCII digit, so this cannot wrap.
        let d = digits[i].wrapping_sub(b'0') as u64;
        value = match value.checked_mul(10) {
            Some(v) => match v.checked_add(d) {
                Some(v) => v,
                None => return Err(KnobError::Overflow),
            },
            None => return Err(KnobError::Overflow),
        };
        i += 1;
    }
    Ok(value)
}

/// Parses a decimal `u64` and checks it is within `min..=max`.
pub const fn parse_u64_in(input: &[u8], min: u64, max: u64) -> Result<u64, KnobError> {
    match parse_u64(input) {
        Ok(v) if v >= min && v <= max => Ok(v),
        Ok(_) => Err(KnobError::OutOfRange { min, max }),
        Err(e) => Err(e),
    }
}

/// `threshold_kb`: KiB of freed pages that make a capture buffer ready,
/// [`THRESHOLD_KB_MIN`]`..=`[`THRESHOLD_KB_MAX`]. Convert it with
/// [`threshold_pages`].
pub const fn parse_threshold_kb(input: &[u8]) -> Result<u64, KnobError> {
    parse_u64_in(input, THRESHOLD_KB_MIN, THRESHOLD_KB_MAX)
}

/// `min_order`: the smallest order of aligned block that is reported,
/// `0..=`[`MAX_PAGE_ORDER`].
pub const fn parse_min_order(input: &[u8]) -> Result<u32, KnobError> {
    match parse_u64_in(input, 0, MAX_PAGE_ORDER as u64) {
        // At most MAX_PAGE_ORDER, so the cast cannot truncate.
        Ok(v) => Ok(v as u32),
        Err(e) => Err(e),
    }
}

/// `enabled`: `0` or `1` only.
pub const fn parse_enabled(input: &[u8]) -> Result<bool, KnobError> {
    match parse_u64_in(input, 0, 1) {
        Ok(v) => Ok(v == 1),
        Err(e) => Err(e),
    }
}

/// `flush_ms`: how long captured pages may wait before a timed flush;
/// `0` turns the timed flush off, else `1..=`[`FLUSH_MS_MAX`].
pub const fn parse_flush_ms(input: &[u8]) -> Result<u32, KnobError> {
    match parse_u64_in(input, 0, FLUSH_MS_MAX as u64) {
        // At most FLUSH_MS_MAX, so the cast cannot truncate.
        Ok(v) => Ok(v as u32),
        Err(e) => Err(e),
    }
}

/// `delay_ms`: how long a batch waits before the worker looks at it, so
/// that only memory that stayed free that long is reported;
/// `0..=`[`DELAY_MS_MAX`].
pub const fn parse_delay_ms(input: &[u8]) -> Result<u32, KnobError> {
    match parse_u64_in(input, 0, DELAY_MS_MAX as u64) {
        // At most DELAY_MS_MAX, so the cast cannot truncate.
        Ok(v) => Ok(v as u32),
        Err(e) => Err(e),
    }
}

/// `settle_ms`: blocks smaller than a pageblock are reported once they
/// stayed free (not freed again) between one and two such intervals; `0`
/// reports them when first seen, else `1..=`[`SETTLE_MS_MAX`].
pub const fn parse_settle_ms(input: &[u8]) -> Result<u32, KnobError> {
    match parse_u64_in(input, 0, SETTLE_MS_MAX as u64) {
        // At most SETTLE_MS_MAX, so the cast cannot truncate.
        Ok(v) => Ok(v as u32),
        Err(e) => Err(e),
    }
}

/// `host_page_kb`: the size of the host pages behind guest memory, in KiB,
/// a power of two in [`HOST_PAGE_KB_MIN`]`..=`[`HOST_PAGE_KB_MAX`]. Convert
/// it with [`host_page_order`].
pub const fn parse_host_page_kb(input: &[u8]) -> Result<u64, KnobError> {
    match parse_u64_in(input, HOST_PAGE_KB_MIN, HOST_PAGE_KB_MAX) {
        Ok(v) if v.is_power_of_two() => Ok(v),
        Ok(_) => Err(KnobError::NotPowerOfTwo),
        Err(e) => Err(e),
    }
}

/// The order of the block of guest pages of `page_size` bytes that one host
/// page of `host_page_kb` KiB covers: 0 when a host page is no larger than a
/// guest page. Both sizes are taken as powers of two (rounded down); a
/// `page_size` of 0 is taken as 1.
pub const fn host_page_order(host_page_kb: u64, page_size: u64) -> u32 {
    let host = match host_page_kb.checked_mul(1024) {
        Some(b) if b != 0 => b.ilog2(),
        Some(_) => 0,
        None => 63 + 1,
    };
    let page = if page_size == 0 { 0 } else { page_size.ilog2() };
    host.saturating_sub(page)
}

/// The number of pages of `page_size` bytes that hold `threshold_kb` KiB,
/// rounded up, and at least 1.
///
/// Saturates at `u64::MAX` KiB-bytes (far beyond [`THRESHOLD_KB_MAX`]);
/// a `page_size` of 0 is taken as 1.
pub const fn threshold_pages(threshold_kb: u64, page_size: u64) -> u64 {
    let page_size = if page_size == 0 { 1 } else { page_size };
    let pages = threshold_kb.saturating_mul(1024).div_ceil(page_size);
    if pages == 0 {
        1
    } else {
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_page_kb_takes_powers_of_two_in_range() {
        assert_eq!(parse_host_page_kb(b"4\n"), Ok(4));
        assert_eq!(parse_host_page_kb(b"2048"), Ok(2048));
        assert_eq!(parse_host_page_kb(b"1048576\n"), Ok(1 << 20));
        assert_eq!(parse_host_page_kb(b"3000"), Err(KnobError::NotPowerOfTwo));
        assert_eq!(parse_host_page_kb(b"12"), Err(KnobError::NotPowerOfTwo));
        let range = KnobError::OutOfRange {
            min: HOST_PAGE_KB_MIN,
            max: HOST_PAGE_KB_MAX,
        };
        assert_eq!(parse_host_page_kb(b"2"), Err(range));
        assert_eq!(parse_host_page_kb(b"0"), Err(range));
        assert_eq!(parse_host_page_kb(b"2097152"), Err(range));
        assert_eq!(parse_host_page_kb(b"-4"), Err(KnobError::Invalid));
        assert_eq!(KnobError::NotPowerOfTwo.errno(), 22);
    }

    #[test]
    fn host_page_orders() {
        assert_eq!(host_page_order(4, 4096), 0);
        assert_eq!(host_page_order(2048, 4096), 9);
        assert_eq!(host_page_order(4096, 4096), 10);
        assert_eq!(host_page_order(1 << 20, 4096), 18);
        // A host page smaller than a guest page (64 KiB guest pages).
        assert_eq!(host_page_order(4, 65536), 0);
        assert_eq!(host_page_order(2048, 65536), 5);
        assert_eq!(host_page_order(0, 4096), 0);
        assert_eq!(host_page_order(1 << 20, 0), 30);
        assert_eq!(host_page_order(u64::MAX, 4096), 52);
    }

    #[test]
    fn accepts_digits_and_newline() {
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b"0\n"), Ok(0));
        assert_eq!(parse_u64(b"42\n"), Ok(42));
        assert_eq!(parse_u64(b"007"), Ok(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551615\n"), Ok(u64::MAX));
        assert_eq!(
            parse_u64(b"00000000000000000000000000018446744073709551615"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn empty() {
        assert_eq!(parse_u64(b""), Err(KnobError::Empty));
        assert_eq!(parse_u64(b"\n"), Err(KnobError::Empty));
    }

    #[test]
    fn invalid() {
        for bad in [
            &b"-1"[..],
            b"+1",
            b"1e3",
            b"0x10",
            b" 1",
            b"1 ",
            b"1\t",
            b"1\0",
            b"\0",
            b"1\n\n",
            b"\n\n",
            b"1\nx",
            b"\n1",
            b"1\r\n",
            b"1.5",
            b"abc",
            b"99999999999999999999999x",
            b"\xff",
        ] {
            assert_eq!(parse_u64(bad), Err(KnobError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn overflow() {
        assert_eq!(parse_u64(b"18446744073709551616"), Err(KnobError::Overflow));
        assert_eq!(
            parse_u64(b"99999999999999999999\n"),
            Err(KnobError::Overflow)
        );
        assert_eq!(
            parse_u64(b"184467440737095516150"),
            Err(KnobError::Overflow)
        );
    }

    #[test]
    fn threshold_kb_bounds() {
        assert_eq!(parse_threshold_kb(b"4\n"), Ok(4));
        assert_eq!(parse_threshold_kb(b"1073741824"), Ok(1 << 30));
        let range = KnobError::OutOfRange {
            min: THRESHOLD_KB_MIN,
            max: THRESHOLD_KB_MAX,
        };
        assert_eq!(parse_threshold_kb(b"3"), Err(range));
        assert_eq!(parse_threshold_kb(b"0"), Err(range));
        assert_eq!(parse_threshold_kb(b"1073741825"), Err(range));
        assert_eq!(parse_threshold_kb(b""), Err(KnobError::Empty));
    }

    #[test]
    fn min_order_bounds() {
        assert_eq!(parse_min_order(b"0"), Ok(0));
        assert_eq!(parse_min_order(b"10\n"), Ok(10));
        assert_eq!(
            parse_min_order(b"11"),
            Err(KnobError::OutOfRange { min: 0, max: 10 })
        );
        assert_eq!(parse_min_order(b"-1"), Err(KnobError::Invalid));
    }

    #[test]
    fn enabled_only_zero_or_one() {
        assert_eq!(parse_enabled(b"0\n"), Ok(false));
        assert_eq!(parse_enabled(b"1\n"), Ok(true));
        assert_eq!(parse_enabled(b"01"), Ok(true));
        assert_eq!(
            parse_enabled(b"2"),
            Err(KnobError::OutOfRange { min: 0, max: 1 })
        );
        assert_eq!(parse_enabled(b"y"), Err(KnobError::Invalid));
        assert_eq!(parse_enabled(b"true"), Err(KnobError::Invalid));
    }

    #[test]
    fn flush_ms_bounds() {
        assert_eq!(parse_flush_ms(b"0"), Ok(0));
        assert_eq!(parse_flush_ms(b"1"), Ok(1));
        assert_eq!(parse_flush_ms(b"60000\n"), Ok(60_000));
        assert_eq!(
            parse_flush_ms(b"60001"),
            Err(KnobError::OutOfRange {
                min: 0,
                max: 60_000
            })
        );
        assert_eq!(
            parse_flush_ms(b"99999999999999999999"),
            Err(KnobError::Overflow)
        );
    }

    #[test]
    fn delay_ms_bounds() {
        assert_eq!(parse_delay_ms(b"0"), Ok(0));
        assert_eq!(parse_delay_ms(b"1000\n"), Ok(1000));
        assert_eq!(
            parse_delay_ms(b"1001"),
            Err(KnobError::OutOfRange { min: 0, max: 1000 })
        );
        assert_eq!(parse_delay_ms(b"-1"), Err(KnobError::Invalid));
        assert_eq!(parse_settle_ms(b"0"), Ok(0));
        assert_eq!(parse_settle_ms(b"10000\n"), Ok(10_000));
        assert_eq!(
            parse_settle_ms(b"10001"),
            Err(KnobError::OutOfRange {
                min: 0,
                max: 10_000
            })
        );
        assert_eq!(parse_settle_ms(b"1s"), Err(KnobError::Invalid));
    }

    #[test]
    fn errnos() {
        assert_eq!(KnobError::Empty.errno(), 22);
        assert_eq!(KnobError::Invalid.errno(), 22);
        assert_eq!(KnobError::Overflow.errno(), 22);
        assert_eq!(KnobError::OutOfRange { min: 0, max: 1 }.errno(), 22);
    }

    #[test]
    fn threshold_pages_rounds_up() {
        assert_eq!(threshold_pages(4, 4096), 1);
        assert_eq!(threshold_pages(5, 4096), 2);
        assert_eq!(threshold_pages(8, 4096), 2);
        assert_eq!(threshold_pages(0, 4096), 1);
        assert_eq!(threshold_pages(1, 4096), 1);
        assert_eq!(threshold_pages(2048, 4096), 512);
        assert_eq!(threshold_pages(THRESHOLD_KB_MAX, 4096), 1 << 28);
        assert_eq!(threshold_pages(64, 65536), 1);
        assert_eq!(threshold_pages(65, 65536), 2);
        assert_eq!(threshold_pages(1, 0), 1024);
        assert_eq!(threshold_pages(u64::MAX, 4096), u64::MAX.div_ceil(4096));
        assert_eq!(threshold_pages(u64::MAX, 1), u64::MAX);
    }
}
