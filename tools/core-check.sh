#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Check the page-hinting core crate (rust/core): formatting, clippy with the
# kernel's lint set, rustdoc, unit and property tests, a kernel-style build
# of the same files (Debian's rustc, overflow checks on, no panicking call of
# our own left), and a short run of each fuzz target.
#
# Usage: tools/core-check.sh
# Environment: CORE_FUZZ_SECONDS (default 20 per target; 0 skips fuzzing),
#              CARGO_BUILD_JOBS (default 2), PROPTEST_CASES (default 256).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CORE=$ROOT/rust/core
export CARGO_TARGET_DIR=$CACHE/target
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
fuzz_seconds=${CORE_FUZZ_SECONDS:-20}

step() { info "core-check: $*"; }
cd "$CORE"

step "cargo fmt --check"
cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml

step "cargo clippy --all-targets -- -D warnings"
cargo clippy -q --all-targets -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps

step "cargo test (unit + property)"
cargo test

# The kernel module compiles these very files through #[path] module
# declarations; do the same with the kernel's compiler and lints, with
# overflow checks and debug assertions on, and make sure none of our own
# functions can reach a bounds-check, overflow or unwrap panic. (Calls to
# core::panicking::panic_nounwind_fmt are core's own precondition checks
# inside inlined library code, not ours.)
if [[ -x $KRUSTC ]]; then
	step "kernel-style build with $($KRUSTC --version | cut -d' ' -f1-2)"
	kdir=$CACHE/core-kcheck
	mkdir -p "$kdir"
	{
		echo '//! Stand-in for the module crate root.'
		echo '#![no_std]'
		for m in batch capture knobs ranges; do
			echo "#[path = \"$CORE/src/$m.rs\"]"
			echo "pub mod $m;"
		done
		cat <<'RS'
/// Instantiates the generic pipeline as the module uses it.
pub fn pipeline(
    v: &mut [capture::Entry],
    out: &mut [ranges::PfnRange],
    l: batch::Limits,
    k: u32,
) -> usize {
    ranges::sort(v);
    batch::Batcher::new(ranges::cut(ranges::merge(v), k), l).fill(out)
}
/// Instantiates `CaptureBuf::push`.
pub fn push(b: &mut capture::CaptureBuf<4096>, e: capture::Entry, t: u64) -> capture::Push {
    b.push(e, t)
}
RS
	} >"$kdir/kcheck.rs"
	"$KRUSTC" --edition=2021 --crate-type=lib --crate-name=kcheck \
		-Dwarnings -Dnon_ascii_idents -Dunsafe_op_in_unsafe_fn -Wmissing_docs \
		-Wrust_2018_idioms -Wunreachable_pub \
		-Copt-level=2 -Coverflow-checks=on -Cdebug-assertions=on -Cpanic=abort \
		--emit=asm -o "$kdir/kcheck.s" "$kdir/kcheck.rs"
	bad=$(awk '/^[_a-zA-Z][_$.a-zA-Z0-9]*:/ { fn = $1 }
		/call.*(panic_bounds_check|panic_const|unwrap_failed|expect_failed|slice_[a-z_]*fail|panic_fmt|panicking5panic[^_])/ {
			if (fn ~ /kcheck/) print fn ": " $NF
		}' "$kdir/kcheck.s")
	[[ -z $bad ]] || die "panicking calls in the core's code:
$bad"
else
	step "skipping the kernel-style build: no $KRUSTC (run tools/deps.sh)"
fi

if ((fuzz_seconds > 0)); then
	step "fuzz, ${fuzz_seconds}s per target"
	"$ROOT/tools/core-fuzz.sh" "$fuzz_seconds"
fi
step "ok"
