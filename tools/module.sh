#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build page_hinting.ko out of tree against the normal or debug guest kernel,
# with the kernel's CLIPPY=1; any compiler or clippy warning fails the build.
# Kbuild in 6.12 writes its output next to the sources, so the sources are
# mirrored to a directory under the cache and built there.
#
# Usage: tools/module.sh normal|debug     prints the path of the .ko
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-normal}
case $variant in normal | debug) ;; *) die "usage: $0 normal|debug" ;; esac

kbuild=$("$ROOT/tools/kernel.sh" "$variant")
mdir=$CACHE/module-$variant
mkdir -p "$mdir"
# -a keeps mtimes, so make only rebuilds what changed.
rsync -a --delete --include='/Kbuild' --include='/rust/' --include='/rust/*.rs' \
	--include='/rust/core/' --include='/rust/core/src/' --include='/rust/core/src/*.rs' \
	--exclude='*' "$ROOT/" "$mdir/"

log=$CACHE/module-$variant.log
if ! make -C "$kbuild" M="$mdir" RUSTC="$KRUSTC" HOSTRUSTC="$KRUSTC" BINDGEN="$KBINDGEN" \
	CLIPPY_DRIVER=/usr/bin/clippy-driver CLIPPY=1 KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror \
	modules >"$log" 2>&1; then
	grep -v '^make\|^  [A-Z]' "$log" | head -n 60 >&2
	die "page_hinting.ko ($variant) failed to build (log: $log)"
fi
if grep -q 'warning' "$log"; then
	grep -A8 'warning' "$log" | head -n 40 >&2
	die "page_hinting.ko ($variant) built with warnings (log: $log)"
fi
echo "$mdir/page_hinting.ko"
