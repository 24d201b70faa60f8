#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the page-hinting core (rust/core/fuzz) with cargo-fuzz / libFuzzer.
#
# Usage: tools/core-fuzz.sh [seconds] [target...]
#   seconds  time per target (default 300)
#   target   pipeline, knobs, settle (default: all)
#
# cargo-fuzz wants nightly; this machine only has the stable toolchain, so
# the build runs with RUSTC_BOOTSTRAP=1, which lets stable rustc take the
# -Z flags cargo-fuzz passes (-Zsanitizer=address, sancov passes). cargo-fuzz
# itself is installed from crates.io into the cache on first use.
#
# The corpus is kept in $CACHE/fuzz/corpus/<target> so every run builds on
# the previous ones; crash inputs go to $CACHE/fuzz/artifacts/<target>/.
# Reproduce one with: tools/core-fuzz.sh --repro <target> <file>
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CARGO_FUZZ_VERSION=0.13.2
CORE=$ROOT/rust/core
FUZZ_CACHE=$CACHE/fuzz
export CARGO_TARGET_DIR=$CACHE/target-fuzz
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export RUSTC_BOOTSTRAP=1
export PATH=$CACHE/cargo-fuzz/bin:$PATH

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
	info "installing cargo-fuzz $CARGO_FUZZ_VERSION into $CACHE/cargo-fuzz"
	cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$CACHE/cargo-fuzz"
fi

cd "$CORE"
if [[ ${1:-} == --repro ]]; then
	[[ $# -eq 3 ]] || die "usage: $0 --repro <target> <file>"
	exec cargo fuzz run "$2" "$3"
fi

seconds=${1:-300}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || die "seconds must be a positive integer, not '$seconds'"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(pipeline knobs settle)

mkdir -p "$FUZZ_CACHE"
info "core-fuzz: building ${targets[*]}"
cargo fuzz build >/dev/null 2>"$FUZZ_CACHE/build.log" || {
	cat "$FUZZ_CACHE/build.log" >&2
	die "cargo fuzz build failed"
}
for t in "${targets[@]}"; do
	mkdir -p "$FUZZ_CACHE/corpus/$t" "$FUZZ_CACHE/artifacts/$t"
	log=$FUZZ_CACHE/$t.log
	info "core-fuzz: $t for ${seconds}s (corpus $FUZZ_CACHE/corpus/$t)"
	if ! cargo fuzz run "$t" "$FUZZ_CACHE/corpus/$t" -- \
		-max_total_time="$seconds" -artifact_prefix="$FUZZ_CACHE/artifacts/$t/" \
		-print_final_stats=1 >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "fuzz target $t failed; input in $FUZZ_CACHE/artifacts/$t/ (reproduce: $0 --repro $t <file>)"
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
	info "core-fuzz: $t ok: ${runs:-?} runs, $cov, $(find "$FUZZ_CACHE/corpus/$t" -type f | wc -l) corpus inputs"
done
