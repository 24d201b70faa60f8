# SPDX-License-Identifier: GPL-2.0
# Shared settings for the tools/ scripts. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive build output lives outside the clone, keyed by what it is built from.
CACHE=${PAGE_HINTING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/page-hinting}
# The kernel is built with Debian's rustc-web (it ships a matching rust-src),
# never with the rustup toolchain that may come first on PATH.
KRUSTC=/usr/bin/rustc
KBINDGEN=$CACHE/bindgen/bin/bindgen
OUT=$CACHE/out

info() { printf '[page-hinting] %s\n' "$*" >&2; }
die() {
	printf '[page-hinting] error: %s\n' "$*" >&2
	exit 1
}
