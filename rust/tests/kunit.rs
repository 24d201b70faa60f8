// SPDX-License-Identifier: GPL-2.0

//! Just enough KUnit glue to write test suites in Rust on 6.12.
//!
//! 6.12 has no `#[kunit_tests]`: a suite is a table of `struct kunit_case`
//! and a `struct kunit_suite`, and a pointer to the suite goes into the
//! `.kunit_test_suites` section, from which KUnit runs it when the module
//! loads. [`kunit_suite!`] builds all three from a list of test functions of
//! type `fn(&Test)`. Failures are KUnit *expectations*: they mark the test
//! failed and let it go on, so no test ever unwinds through Rust frames.

use core::{cell::UnsafeCell, ffi::c_void, fmt};
use kernel::{bindings, str::CStr};

/// The running KUnit test, handed to a test function.
///
/// # Invariants
///
/// `self.0` is the valid `struct kunit` of the test that is running on this
/// thread, for as long as the `Test` exists.
pub(crate) struct Test(*mut bindings::kunit);

impl Test {
    /// Wraps the pointer KUnit passes to a test case.
    ///
    /// # Safety
    ///
    /// `test` must be the `struct kunit` of the running test case, and the
    /// returned value must not outlive the case.
    pub(crate) unsafe fn from_raw(test: *mut bindings::kunit) -> Self {
        // INVARIANT: guaranteed by the caller.
        Test(test)
    }

    /// Records a failed expectation at `file:line` with a message.
    pub(crate) fn fail(&self, file: &'static CStr, line: u32, args: fmt::Arguments<'_>) {
        let loc = bindings::kunit_loc {
            line: line as i32,
            file: file.as_char_ptr(),
        };
        let assert = bindings::kunit_fail_assert {
            assert: bindings::kunit_assert {},
        };
        // SAFETY: `self.0` is the running test (type invariant). `loc` and
        // `assert` live across the call, which formats the message at once
        // and keeps no pointer to them. "%pA" takes a `fmt::Arguments`, and
        // `args` outlives the call.
        unsafe {
            bindings::__kunit_do_failed_assertion(
                self.0,
                &loc,
                bindings::kunit_assert_type_KUNIT_EXPECTATION,
                &assert.assert,
                Some(bindings::kunit_fail_assert_format),
                kernel::c_str!("%pA").as_char_ptr(),
                &args as *const fmt::Arguments<'_> as *const c_void,
            );
        }
    }
}

/// Runs one case, which fails as well if any report made meanwhile covered
/// a page page_hinting did not hold (`hinting::audit::unheld`): every case
/// that reports checks isolation at the moment of each report. Afterwards
/// the lost-report audit forgets what the case told the mechanism.
pub(crate) fn run_case(t: &Test, case: fn(&Test)) {
    use core::sync::atomic::Ordering::Relaxed;
    let unheld = crate::hinting::audit::UNHELD.load(Relaxed);
    case(t);
    // What a case did with the frees it told the mechanism about (a
    // recording transport, a failing one, a list dropped on purpose) is not
    // the mechanism's own reporting: the lost-report audit starts over.
    crate::hinting::audit::forget();
    let now = crate::hinting::audit::UNHELD.load(Relaxed);
    if now != unheld {
        t.fail(
            kernel::c_str!(file!()),
            line!(),
            format_args!(
                "{} report(s) covered pages page_hinting did not hold (the log names them)",
                now - unheld
            ),
        );
    }
}

/// Expects a condition to hold in a KUnit test; on failure the test is marked
/// failed with the condition's text (or the given message) and goes on.
/// Evaluates to the condition's value.
macro_rules! kexpect {
    ($test:expr, $cond:expr $(,)?) => {
        $crate::tests::kunit::kexpect!($test, $cond, "expected {}", stringify!($cond))
    };
    ($test:expr, $cond:expr, $($arg:tt)+) => {{
        let ok: bool = $cond;
        if !ok {
            $test.fail(kernel::c_str!(file!()), line!(), format_args!($($arg)+));
        }
        ok
    }};
}
pub(crate) use kexpect;

/// Expects two values to be equal; see [`kexpect!`].
macro_rules! kexpect_eq {
    ($test:expr, $left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        $crate::tests::kunit::kexpect!(
            $test,
            *l == *r,
            "expected {} == {}, but {:?} != {:?}",
            stringify!($left),
            stringify!($right),
            l,
            r
        )
    }};
}
pub(crate) use kexpect_eq;

/// A `struct kunit_case` table that KUnit updates while it runs.
pub(crate) struct Cases<const N: usize>(pub(crate) UnsafeCell<[bindings::kunit_case; N]>);

// SAFETY: KUnit runs the cases of a suite one at a time and is the only
// writer; the module never touches the table after building it.
unsafe impl<const N: usize> Sync for Cases<N> {}

/// A `struct kunit_suite` that KUnit updates while it runs.
pub(crate) struct Suite(pub(crate) UnsafeCell<bindings::kunit_suite>);

// SAFETY: as for `Cases`: KUnit is the only writer.
unsafe impl Sync for Suite {}

/// An entry of the `.kunit_test_suites` section.
#[repr(transparent)]
pub(crate) struct SuiteRef(pub(crate) *const bindings::kunit_suite);

// SAFETY: the pointer is to a `static` and is only read by KUnit.
unsafe impl Sync for SuiteRef {}

/// A test case entry for `name` running `run`.
pub(crate) const fn case(
    name: &'static CStr,
    run: unsafe extern "C" fn(*mut bindings::kunit),
) -> bindings::kunit_case {
    // SAFETY: `kunit_case` is a C struct of pointers, integers and an enum
    // whose zero value is valid; all-zero is how C initialises the fields a
    // case does not set.
    let mut c: bindings::kunit_case = unsafe { core::mem::zeroed() };
    c.run_case = Some(run);
    c.name = name.as_char_ptr();
    c
}

/// The all-zero entry that ends a case table.
pub(crate) const fn end_of_cases() -> bindings::kunit_case {
    // SAFETY: see `case`; the zero entry is KUnit's terminator.
    unsafe { core::mem::zeroed() }
}

/// A suite called `name` over the case table at `cases`.
pub(crate) const fn suite(name: &str, cases: *mut bindings::kunit_case) -> bindings::kunit_suite {
    // SAFETY: `kunit_suite` is a C struct of arrays, pointers and integers
    // for which all-zero is valid and is what C's designated initialisers give.
    let mut s: bindings::kunit_suite = unsafe { core::mem::zeroed() };
    let bytes = name.as_bytes();
    let mut i = 0;
    // Leave at least one NUL at the end of `name`.
    while i < bytes.len() && i + 1 < s.name.len() {
        s.name[i] = bytes[i] as _;
        i += 1;
    }
    s.test_cases = cases;
    s
}

/// Defines a KUnit suite from test functions of type `fn(&Test)`.
///
/// ```ignore
/// kunit_suite!(page_hinting_selftest, "page_hinting_selftest", [loads, hook_api]);
/// ```
macro_rules! kunit_suite {
    ($id:ident, $name:literal, [$($case:ident),+ $(,)?]) => {
        mod $id {
            use $crate::tests::kunit::{Cases, Suite, SuiteRef};
            use kernel::bindings;

            $(
                #[allow(non_snake_case)]
                pub(super) mod $case {
                    /// KUnit's entry point for this case.
                    ///
                    /// # Safety
                    ///
                    /// Only KUnit calls it, with the running test.
                    pub(crate) unsafe extern "C" fn run(test: *mut kernel::bindings::kunit) {
                        // SAFETY: KUnit passes the running test, and the
                        // `Test` does not outlive this call.
                        let t = unsafe { $crate::tests::kunit::Test::from_raw(test) };
                        $crate::tests::kunit::run_case(&t, super::super::$case);
                    }
                }
            )+

            const N: usize = [$(stringify!($case)),+].len() + 1;

            static CASES: Cases<N> = Cases(core::cell::UnsafeCell::new([
                $($crate::tests::kunit::case(kernel::c_str!(stringify!($case)), $case::run),)+
                $crate::tests::kunit::end_of_cases(),
            ]));

            static SUITE: Suite = Suite(core::cell::UnsafeCell::new($crate::tests::kunit::suite(
                $name,
                CASES.0.get() as *mut bindings::kunit_case,
            )));

            #[used]
            #[link_section = ".kunit_test_suites"]
            static SUITE_REF: SuiteRef = SuiteRef(SUITE.0.get());
        }
    };
}
pub(crate) use kunit_suite;
