#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build page_hinting.ko out of tree against the normal or debug guest kernel,
# with the kernel's CLIPPY=1; any compiler or clippy warning fails the build.
# Kbuild in 6.12 writes its output next to the sources, so the sources are
# mirrored to a directory under the cache and built there.
#
# Usage: tools/module.sh normal|audit|debug|distro|rt     prints the path of the .ko
#
# audit is the normal kernel's module with the lost-report audit
# (`--cfg ph_audit`, rust/hinting/audit.rs), which the real-guest scenarios
# of make check load; normal is the module as shipped.
#
# PH_BREAK=<name> builds a deliberately broken variant in its own directory:
# the mirrored sources with tools/teeth/<name>.patch applied (the repository's
# own sources are never changed); tools/check-teeth.sh uses it to show that
# each test catches the bug it guards against.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-normal}
case $variant in normal | audit | debug | distro | rt) ;; *) die "usage: $0 normal|audit|debug|distro|rt" ;; esac
kvariant=$variant
[[ $variant != audit ]] || kvariant=normal

brk=${PH_BREAK:-}
[[ $brk =~ ^[a-z_]*$ ]] || die "bad PH_BREAK: $brk"
brk_patch=
if [[ -n $brk ]]; then
	brk_patch=$ROOT/tools/teeth/$brk.patch
	[[ -f $brk_patch ]] ||
		die "PH_BREAK=$brk: no $brk_patch (known: $(cd "$ROOT/tools/teeth" && ls -- *.patch | sed 's/\.patch$//' | xargs))"
fi
kbuild=$("$ROOT/tools/kernel.sh" "$kvariant")
mdir=$CACHE/module-$variant${brk:+-break-$brk}
rflags=-Dwarnings
# The debug variant is the test build: it carries the KUnit suites and the
# test switches of rust/tests/ (`--cfg ph_tests`) and the lost-report audit
# (`--cfg ph_audit`); the audit variant has the audit only; every other
# build is the module as shipped.
[[ $variant != debug ]] || rflags+=" --cfg ph_tests --cfg ph_audit"
[[ $variant != audit ]] || rflags+=" --cfg ph_audit"
mkdir -p "$mdir"
# -a keeps mtimes, so make only rebuilds what changed. A source copied in
# with an mtime older than the last build (another tree sharing the cache,
# a checkout of older code) would not be rebuilt: if anything was copied,
# the crate root is touched (the module is one crate, built as a whole).
# A break's directory holds patched files from its last build: -c compares
# contents, so every file the patch changed is copied back pristine, whatever
# its mtime, before the patch is applied again.
changed=$(rsync -a ${brk:+-c} -i --delete --include='/Kbuild' --include='/rust/' --include='/rust/*.rs' \
	--include='/rust/core/' --include='/rust/core/src/' --include='/rust/core/src/*.rs' \
	--exclude='/rust/core/*' --include='/rust/*/' --include='/rust/*/*.rs' \
	--exclude='*' "$ROOT/" "$mdir/")
if [[ -n $brk ]]; then
	# No fuzz, no backup or reject files: a patch that does not apply
	# exactly (the code it breaks changed) fails here, loudly.
	patch -d "$mdir" -p1 -s --forward --fuzz=0 --no-backup-if-mismatch -r - <"$brk_patch" >&2 ||
		die "PH_BREAK=$brk: $brk_patch does not apply to the current sources; regenerate it (see tools/teeth/README)"
	changed=1
fi
[[ -z $changed ]] || touch "$mdir/rust/page_hinting_main.rs"

log=$mdir.log
# The hash of the last .ko built without a warning: a rerun with nothing to
# rebuild prints no warnings, so it must not pass a module that had some
# (objtool's come after the object is written, and do not fail make).
clean=$mdir.clean
set_llvm "$kvariant" # built like its kernel
build() {
	make -C "$kbuild" M="$mdir" "${llvm[@]}" RUSTC="$KRUSTC" HOSTRUSTC="$KRUSTC" BINDGEN="$KBINDGEN" \
		CLIPPY_DRIVER=/usr/bin/clippy-driver CLIPPY=1 KRUSTFLAGS="$rflags" KCFLAGS=-Werror \
		modules >"$log" 2>&1 || {
		grep -v '^make\|^  [A-Z]' "$log" | head -n 60 >&2
		die "page_hinting.ko ($variant) failed to build (log: $log)"
	}
}
build
ko_hash() { sha256sum "$mdir/page_hinting.ko" | cut -d' ' -f1; }
if ! grep -q 'warning' "$log" && [[ ! -f $clean || $(cat "$clean") != "$(ko_hash)" ]] &&
	! grep -q 'LD \[M\]' "$log"; then
	# Not rebuilt, and not known clean: rebuild to see its warnings.
	touch "$mdir/rust/page_hinting_main.rs"
	build
fi
if grep -q 'warning' "$log"; then
	rm -f "$clean"
	grep -A8 'warning' "$log" | head -n 40 >&2
	die "page_hinting.ko ($variant) built with warnings (log: $log)"
fi
ko_hash >"$clean"
echo "$mdir/page_hinting.ko"
