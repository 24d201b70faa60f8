#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make fmt: format the module with the kernel's rustfmt settings, the core and
# tools/bench-plot with cargo fmt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$ROOT/tools/kernel.sh" normal >/dev/null
/usr/bin/rustfmt --edition 2021 --config-path "$CACHE/kernel/src/.rustfmt.toml" "$ROOT"/rust/*.rs "$ROOT"/rust/*/*.rs
if [[ -f $ROOT/rust/core/Cargo.toml ]]; then (cd "$ROOT/rust/core" && cargo fmt); fi
(cd "$ROOT/tools/bench-plot" && cargo fmt)
