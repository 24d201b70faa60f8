#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmark the page-hinting core: sort + merge + cut against a naive
# std baseline, and the sort choices, on batches of 32 to 65536 entries.
# Prints Markdown tables; asserts nothing about timings.
#
# Usage: tools/core-bench.sh [--quick]
# The numbers are best-of-N trials: on a shared machine the best trial is
# the one least disturbed by other load.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export CARGO_TARGET_DIR=$CACHE/target
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cd "$ROOT/rust/core"
cargo build -q --release --example bench
exec "$CARGO_TARGET_DIR/release/examples/bench" "$@"
