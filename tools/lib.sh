# SPDX-License-Identifier: GPL-2.0
# Shared settings for the tools/ scripts. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive build output lives outside the clone, keyed by what it is built from.
CACHE=${PAGE_HINTING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/page-hinting}
# The kernel is built with Debian's rustc-web (it ships a matching rust-src),
# never with the rustup toolchain that may come first on PATH.
KRUSTC=/usr/bin/rustc
KBINDGEN=$CACHE/bindgen/bin/bindgen
# The tools every make of the kernel tree names (tools/kernel.sh, and
# tools/packages.sh's bindeb-pkg, which must reuse that build).
KMAKE_TOOLS=(RUSTC="$KRUSTC" HOSTRUSTC="$KRUSTC" BINDGEN="$KBINDGEN" RUSTFMT=/usr/bin/rustfmt
	CLIPPY_DRIVER=/usr/bin/clippy-driver)
OUT=$CACHE/out

# The compiler a variant's kernel, and so its modules, is built with: the
# debug kernel uses clang (LLVM=1), since the kernel allows KASAN together
# with Rust only on a clang build. Sets the array llvm to the make arguments.
set_llvm() {
	llvm=()
	[[ $1 == debug ]] && llvm=(LLVM=1)
	return 0
}

info() { printf '[page-hinting] %s\n' "$*" >&2; }
die() {
	printf '[page-hinting] error: %s\n' "$*" >&2
	exit 1
}

# Boot the debug kernel $1 with initramfs $2 into the kunit scenario (the
# module's KUnit suites, then the load/unload leak check), with page
# poisoning on; writes the run to $3.json and the console to $3.log. Further
# arguments go to run-guest.py. Returns the guest's status.
kunit_boot() {
	local kernel=$1 initrd=$2 out=$3 rc=0
	shift 3
	"$ROOT/tools/run-guest.py" --kernel "$kernel" --initrd "$initrd" --scenario kunit \
		--timeout 600 --append "page_poison=1" --quiet --json "$out.json" "$@" || rc=$?
	python3 -c 'import json,sys; [print(l) for _, l in json.load(open(sys.argv[1]))["console"]]' \
		"$out.json" >"$out.log"
	return "$rc"
}

# The project's static guest programs (tools/guest/*.c), built once into
# $CACHE/guest-bin (rebuilt when a source is newer); prints that directory.
guest_bins() {
	local bin=$CACHE/guest-bin src exe
	mkdir -p "$bin"
	for src in "$ROOT"/tools/guest/*.c; do
		exe=$bin/$(basename "$src" .c)
		if [[ ! -x $exe || $src -nt $exe ]]; then
			gcc -static -O2 -Wall -Wextra -Werror -o "$exe" "$src" -lpthread ||
				die "building guest program $src"
		fi
	done
	echo "$bin"
}
