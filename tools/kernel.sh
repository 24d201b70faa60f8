#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest kernel: Debian's linux-source-6.12 with patches/ applied,
# built out of tree with O=. Variants:
#   normal  tinyconfig + kvm_guest.config + tools/kconfig/guest.config
#   debug   the same + tools/kconfig/debug.config, built with clang (LLVM=1)
#   distro  Debian's own cloud-amd64 configuration (package linux-config-6.12)
#           + tools/kconfig/distro.config, its modules cut down to the few a
#           guest of the test suite loads (make check-distro)
#   rt      Debian's PREEMPT_RT configuration (amd64_rt_amd64), the same way,
#           + tools/kconfig/rt.config
#
# Usage: tools/kernel.sh normal|debug|distro|rt
# Prints the build directory on stdout.
#
# The source tree and each build directory carry a key: a hash of what they
# are built from (source package version, the patch series, the config
# fragments, the compilers). An unchanged rerun only compares keys. A changed
# series updates the one source tree in place, rewriting only the files whose
# content changed, so the rebuild is incremental.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-normal}
case $variant in normal | debug | distro | rt) ;; *) die "usage: $0 normal|debug|distro|rt" ;; esac

"$ROOT/tools/deps.sh" --verify >/dev/null

KDIR=$CACHE/kernel
SRC=$KDIR/src
BUILD=$KDIR/build-$variant
mkdir -p "$KDIR"

tarball=$(ls /usr/src/linux-source-6.12.tar.* | head -n1)
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
series=$ROOT/patches/series

series_hash() {
	{
		cat "$series"
		while read -r p; do
			[[ -z $p || $p == \#* ]] && continue
			cat "$ROOT/patches/$p"
		done <"$series"
	} | sha256sum | cut -c1-16
}

src_key="$srcver $(series_hash)"
case $variant in
normal) frags=("$ROOT/tools/kconfig/guest.config") ;;
debug) frags=("$ROOT/tools/kconfig/guest.config" "$ROOT/tools/kconfig/debug.config") ;;
distro | rt)
	frags=("$ROOT/tools/kconfig/distro.config")
	[[ $variant == rt ]] && frags+=("$ROOT/tools/kconfig/rt.config")
	debconf=/usr/src/linux-config-6.12/config.amd64_$([[ $variant == rt ]] && echo rt_amd64 || echo none_cloud-amd64).xz
	[[ -f $debconf ]] || die "$debconf missing (package linux-config-6.12; run tools/deps.sh)"
	;;
esac
set_llvm "$variant" # clang for the debug kernel (lib.sh)
tools_ver="$($KRUSTC --version) $($KBINDGEN --version) $(gcc --version | head -n1)"
[[ $variant == debug ]] && tools_ver+=" $(clang --version | head -n1) $(ld.lld --version | head -n1)"
build_key="$src_key $(cat "${frags[@]}" ${debconf:+"$debconf"} | sha256sum | cut -c1-16) $(echo "$tools_ver" | sha256sum | cut -c1-16)"

up_to_date() {
	[[ -f $SRC/.ph-key && $(cat "$SRC/.ph-key") == "$src_key" &&
		-f $BUILD/.ph-key && $(cat "$BUILD/.ph-key") == "$build_key" &&
		-f $BUILD/arch/x86/boot/bzImage ]]
}
if up_to_date; then
	info "$variant kernel up to date"
	echo "$BUILD"
	exit 0
fi

# One kernel build at a time: the machines have two cores, and the source
# tree is shared by both variants.
exec 9>"$KDIR/.lock"
flock 9
if up_to_date; then
	echo "$BUILD"
	exit 0
fi

if [[ ! -f $SRC/.ph-key || $(cat "$SRC/.ph-key") != "$src_key" ]]; then
	info "preparing kernel source ($srcver + $(grep -cv '^#' "$series") patches)"
	rm -rf "$SRC.new"
	mkdir -p "$SRC.new"
	tar -xf "$tarball" -C "$SRC.new" --strip-components=1
	while read -r p; do
		[[ -z $p || $p == \#* ]] && continue
		patch -d "$SRC.new" -p1 -s --forward <"$ROOT/patches/$p" ||
			die "patches/$p does not apply to linux-source $srcver"
	done <"$series"
	if [[ -d $SRC ]]; then
		# Keep unchanged files' mtimes so make only rebuilds what changed.
		rsync -rlc --delete --exclude=/.ph-key "$SRC.new/" "$SRC/"
		rm -rf "$SRC.new"
	else
		mv "$SRC.new" "$SRC"
	fi
	echo "$src_key" >"$SRC/.ph-key"
fi

own_frags=("${frags[@]}")
[[ -n ${debconf:-} ]] || frags=("$SRC/kernel/configs/kvm_guest.config" "${frags[@]}")

kmake() {
	make -C "$SRC" O="$BUILD" "${llvm[@]}" "${KMAKE_TOOLS[@]}" "$@"
}

if [[ -f $BUILD/.ph-key && $(cat "$BUILD/.ph-key") == "$build_key" &&
	-f $BUILD/arch/x86/boot/bzImage ]]; then
	echo "$BUILD"
	exit 0
fi

mkdir -p "$BUILD"
rm -f "$BUILD/.ph-key"
log=$KDIR/build-$variant.log
: >"$log"

kmake -s rustavailable >>"$log" 2>&1 || {
	tail -n 20 "$log" >&2
	die "'make rustavailable' failed: the kernel cannot be built with Rust (see $log)"
}

# Modules a guest of the test suite loads, or that the series must build
# against; Debian's other ~1100 (cloud) or ~4000 (rt) are left out.
DISTRO_MODULES="VIRTIO_BALLOON VIRTIO_MEM VIRTIO_MMIO HYPERV HYPERV_BALLOON VIRTIO_BLK"

info "configuring the $variant kernel"
{
	if [[ -n ${debconf:-} ]]; then
		xz -dc "$debconf" >"$BUILD/.config"
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "${frags[@]}"
		kmake olddefconfig
		keep="^CONFIG_($(tr ' ' '|' <<<"$DISTRO_MODULES"))=m\$"
		sed -i -E "/$keep/!s/^(CONFIG_[A-Z0-9_]+)=m\$/# \1 is not set/" "$BUILD/.config"
	else
		kmake tinyconfig
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "${frags[@]}"
	fi
	kmake olddefconfig
} >>"$log" 2>&1 || {
	tail -n 30 "$log" >&2
	die "kernel configuration failed (see $log)"
}

# Every option a fragment asks for must have survived olddefconfig: a
# dependency that silently drops one (say CONFIG_RUST) is a broken guest.
bad=()
while IFS= read -r line; do
	[[ $line =~ ^(CONFIG_[A-Z0-9_]+)=(.*)$ ]] || continue
	opt=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
	if [[ $val == n ]]; then
		grep -qx "# $opt is not set" "$BUILD/.config" || grep -qx "$opt=n" "$BUILD/.config" ||
			! grep -q "^$opt=" "$BUILD/.config" || bad+=("$opt=$val")
	else
		grep -qx "$opt=$val" "$BUILD/.config" || bad+=("$opt=$val")
	fi
done < <(cat "${own_frags[@]}")
((${#bad[@]} == 0)) || die "options lost in the $variant config (dependencies missing?): ${bad[*]}"

jobs=$(($(nproc) + 1))
case $variant in
normal | debug) eta="4-10 min" ;;
*) eta="15-30 min" ;;
esac
info "building the $variant kernel with -j$jobs (log: $log; about $eta on 2 cores from scratch)"
start=$SECONDS
kmake -j"$jobs" all >>"$log" 2>&1 || {
	grep -E 'error|Error' "$log" | head -n 20 >&2
	tail -n 20 "$log" >&2
	die "the $variant kernel build failed (see $log)"
}
if grep -E '^[^ ]*: warning:|^warning:' "$log" | grep -v 'objtool' >"$KDIR/warnings-$variant.txt"; then
	info "kernel build warnings (see $KDIR/warnings-$variant.txt):"
	head -n 20 "$KDIR/warnings-$variant.txt" >&2
	die "the $variant kernel build has warnings"
fi
info "$variant kernel built in $((SECONDS - start)) s"
echo "$build_key" >"$BUILD/.ph-key"
echo "$BUILD"
