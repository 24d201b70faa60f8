#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build tools/bench-plot (plotters, from crates.io; cargo rebuilds only what
# changed) into the cache and print the binary's path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export CARGO_TARGET_DIR=$CACHE/bench-plot-target
cargo build -q --release --locked --manifest-path "$ROOT/tools/bench-plot/Cargo.toml" >&2 ||
	die "building tools/bench-plot"
echo "$CARGO_TARGET_DIR/release/bench-plot"
