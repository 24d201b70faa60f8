#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything page-hinting needs to build and boot its guest, and check
# that the versions fit together. Idempotent: when everything is present it
# only verifies and returns in about a second.
#
# Usage: tools/deps.sh            install what is missing, then verify
#        tools/deps.sh --verify   verify only, never install
set -euo pipefail

. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.70.1
APT_PKGS=(linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web libclang-dev flex bison bc
          libelf-dev libssl-dev cpio qemu-system-x86 busybox-static python3 python3-docutils rsync
          xz-utils patch fonts-dejavu-core clang lld debootstrap dpkg-dev debhelper kmod linux-config-6.12
          stress-ng)

verify_only=0
[[ ${1:-} == --verify ]] && verify_only=1

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if ((${#missing[@]})); then
	((verify_only)) && die "missing Debian packages: ${missing[*]} (run tools/deps.sh)"
	[[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]}; run as root or install them"
	info "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# rustc-web and rust-web-src must be the same version: the kernel builds
# `core` from that source with that compiler.
rv=$(dpkg-query -W -f='${Version}' rustc-web)
sv=$(dpkg-query -W -f='${Version}' rust-web-src)
[[ $rv == "$sv" ]] || die "rustc-web ($rv) and rust-web-src ($sv) differ; install the same version of both"
[[ -x $KRUSTC ]] || die "$KRUSTC not found (Debian's rustc-web)"
cv=$(dpkg-query -W -f='${Version}' rust-web-clippy)
[[ $rv == "$cv" ]] || die "rustc-web ($rv) and rust-web-clippy ($cv) differ: the module's CLIPPY=1 build needs the same version"

if ! [[ -x $KBINDGEN ]] || ! "$KBINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	((verify_only)) && die "bindgen $BINDGEN_VERSION missing at $KBINDGEN (run tools/deps.sh)"
	info "installing bindgen-cli $BINDGEN_VERSION from crates.io into $CACHE/bindgen"
	cargo install -q bindgen-cli --version "$BINDGEN_VERSION" --locked --root "$CACHE/bindgen"
fi
"$KBINDGEN" --version | grep -q " $BINDGEN_VERSION\$" ||
	die "bindgen at $KBINDGEN is not $BINDGEN_VERSION"

tarball=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1 || true)
[[ -n $tarball ]] || die "no /usr/src/linux-source-6.12.tar.* (package linux-source-6.12)"
[[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing"

info "dependencies ok: rustc-web $rv, bindgen $BINDGEN_VERSION, $(basename "$tarball") $(dpkg-query -W -f='${Version}' linux-source-6.12)"
