#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side checks: the core crate (fmt, clippy, unit + property tests, short
# fuzz), the module's formatting and its CLIPPY=1 build against the normal
# kernel, the patch series (applies, checkpatch-clean), that the deliberate
# breaks of tools/check-teeth.sh still apply (tools/teeth/, a dry run), the
# tools' syntax and the documentation.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

step() { info "check-host: $*"; }

if [[ -x $ROOT/tools/core-check.sh ]]; then
	step "core crate"
	"$ROOT/tools/core-check.sh"
fi

step "patch series: checkpatch"
"$ROOT/tools/patches.sh" check

step "module: layout (one-way dependencies, unsafe only in rust/kernel_ext/)"
python3 "$ROOT/tools/check-layout.py"

step "module: rustfmt"
"$ROOT/tools/kernel.sh" normal >/dev/null
rustfmt_cfg=$CACHE/kernel/src/.rustfmt.toml
mapfile -t rs < <(ls "$ROOT"/rust/*.rs "$ROOT"/rust/*/*.rs)
/usr/bin/rustfmt --edition 2021 --config-path "$rustfmt_cfg" --check "${rs[@]}" ||
	die "module sources are not rustfmt-clean (run: make fmt)"

step "module: the check-teeth breaks' patches apply (tools/teeth/)"
"$ROOT/tools/check-teeth.sh" --patches

step "module: CLIPPY=1 build, normal, audit and debug (test) variants"
"$ROOT/tools/module.sh" normal >/dev/null
"$ROOT/tools/module.sh" audit >/dev/null
"$ROOT/tools/module.sh" debug >/dev/null

step "tools: bench-plot (rustfmt, clippy)"
(cd "$ROOT/tools/bench-plot" && cargo fmt --check) || die "tools/bench-plot is not rustfmt-clean (run: make fmt)"
CARGO_TARGET_DIR=$CACHE/bench-plot-target cargo clippy -q --release --locked \
	--manifest-path "$ROOT/tools/bench-plot/Cargo.toml" -- -D warnings

step "tools: python syntax, shell syntax"
python3 -m py_compile "$ROOT"/tools/*.py
for f in "$ROOT"/tools/*.sh "$ROOT"/tools/guest/scenarios/*.sh "$ROOT"/.ci/run; do
	bash -n "$f"
done
gcc -Wall -Wextra -Werror -fsyntax-only "$ROOT/tools/prof/tbprof.c" # tools/profile.py's plugin

if compgen -G "$ROOT/Documentation/**/*.rst" >/dev/null || [[ -d $ROOT/Documentation ]]; then
	step "documentation"
	"$ROOT/tools/check-docs.py"
fi
info "check-host: ok"
