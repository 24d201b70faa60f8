#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make packages: Debian packages for a guest image.
#
#   linux-image-KREL, linux-headers-KREL, linux-libc-dev
#       the guest kernel with patches/ applied, built by the kernel's own
#       `make bindeb-pkg` on the distribution configuration (tools/kernel.sh
#       distro: Debian's cloud-amd64 config + tools/kconfig/distro.config)
#   page-hinting
#       page_hinting.ko for that kernel, signed with the kernel's module
#       signing key, in /lib/modules/KREL/updates/; /etc/modules-load.d/
#       and /etc/modprobe.d/ entries so that systemd loads it at boot;
#       the documentation in /usr/share/doc/page-hinting/
#
# Usage: tools/packages.sh      prints the directory holding the .debs
#
# The kernel packages are cached by the kernel build's key (what it is built
# from), the module package by a hash of its contents and this script.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kbuild=$("$ROOT/tools/kernel.sh" distro)
ko=$("$ROOT/tools/module.sh" distro)
KDIR=$CACHE/kernel
SRC=$KDIR/src
krel=$(cat "$kbuild/include/config/kernel.release")
kver=$krel-1
PKG=$CACHE/packages
mkdir -p "$PKG"

# --- the kernel: bindeb-pkg --------------------------------------------------
kkey=$(sha256sum <"$kbuild/.ph-key" | cut -c1-16)
kout=$PKG/kernel-$kkey
if [[ ! -f $kout/.done ]]; then
	exec 9>"$KDIR/.lock" # one kernel build at a time (tools/kernel.sh)
	flock 9
	rm -rf "$kout"
	mkdir -p "$kout"
	log=$PKG/bindeb-pkg.log
	info "building the kernel packages (make bindeb-pkg, $krel; log: $log)"
	start=$SECONDS
	# The same compilers as tools/kernel.sh, so that the build directory
	# is reused and only what packaging needs is built.
	rm -f "$KDIR"/*.deb "$KDIR"/*.buildinfo "$KDIR"/*.changes
	make -C "$SRC" O="$kbuild" "${KMAKE_TOOLS[@]}" \
		KDEB_PKGVERSION="$kver" -j"$(($(nproc) + 1))" bindeb-pkg >"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		die "make bindeb-pkg failed (see $log)"
	}
	# dpkg-buildpackage writes next to the build directory.
	mv "$KDIR"/*_"$kver"_*.deb "$kout/"
	rm -f "$KDIR"/*.buildinfo "$KDIR"/*.changes
	ls "$kout"/linux-image-"$krel"_*.deb >/dev/null || die "no linux-image-$krel package from bindeb-pkg"
	touch "$kout/.done"
	info "kernel packages built in $((SECONDS - start)) s"
	exec 9>&-
fi

# --- page-hinting ------------------------------------------------------------
docs=("$ROOT/README.md" "$ROOT/Documentation/admin-guide/mm/page_hinting.rst"
	"$ROOT/Documentation/mm/page_hinting.rst" "$ROOT/Documentation/mm/page_hinting_core.rst"
	"$ROOT/Documentation/ABI/testing/sysfs-kernel-mm-page_hinting")
etc=("$ROOT/tools/debian/modules-load.d/page-hinting.conf"
	"$ROOT/tools/debian/modprobe.d/page-hinting.conf")
mkey=$(cat "$ko" "${docs[@]}" "${etc[@]}" "$0" "$ROOT"/tools/debian/{control,postinst,postrm} | sha256sum | cut -c1-16)
# The module's own version (rust/page_hinting_main.rs).
version=$(grep -A2 '^macro_rules! version' "$ROOT/rust/page_hinting_main.rs" | sed -n 's/^ *"\([0-9.]*\)"$/\1/p')
[[ -n $version ]] || die "no VERSION in rust/page_hinting_main.rs"
out=$PKG/out-$kkey-$mkey
if [[ ! -f $out/.done ]]; then
	rm -rf "$out"
	mkdir -p "$out"
	cp "$kout"/*.deb "$out/"
	root=$out/page-hinting
	mod=$root/lib/modules/$krel/updates/page_hinting.ko
	install -D -m 0644 "$ko" "$mod"
	# Signed as the kernel's own modules are (CONFIG_MODULE_SIG_ALL): a
	# kernel that enforces signatures loads it.
	"$kbuild/scripts/sign-file" sha256 "$kbuild/certs/signing_key.pem" \
		"$kbuild/certs/signing_key.x509" "$mod"
	install -D -m 0644 "${etc[0]}" "$root/etc/modules-load.d/page-hinting.conf"
	install -D -m 0644 "${etc[1]}" "$root/etc/modprobe.d/page-hinting.conf"
	d=$root/usr/share/doc/page-hinting
	install -D -m 0644 "$ROOT/README.md" "$d/README.md"
	install -D -m 0644 "$ROOT/Documentation/admin-guide/mm/page_hinting.rst" "$d/admin-guide.rst"
	install -D -m 0644 "$ROOT/Documentation/mm/page_hinting.rst" "$d/design.rst"
	install -D -m 0644 "$ROOT/Documentation/mm/page_hinting_core.rst" "$d/design-core.rst"
	install -D -m 0644 "$ROOT/Documentation/ABI/testing/sysfs-kernel-mm-page_hinting" "$d/ABI/sysfs-kernel-mm-page_hinting"
	printf '%s\n' "page-hinting: a Rust guest kernel module that reports freed guest memory" \
		"to the hypervisor." "" "License: GPL-2.0 (see /usr/share/common-licenses/GPL-2)" >"$d/copyright"
	mkdir -p "$root/DEBIAN"
	sed -e "s/@KREL@/$krel/g" -e "s/@KVER@/$kver/g" -e "s/@VERSION@/$version/g" "$ROOT/tools/debian/control" >"$root/DEBIAN/control"
	echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)" >>"$root/DEBIAN/control"
	printf '%s\n' /etc/modules-load.d/page-hinting.conf /etc/modprobe.d/page-hinting.conf >"$root/DEBIAN/conffiles"
	for s in postinst postrm; do
		sed "s/@KREL@/$krel/g" "$ROOT/tools/debian/$s" >"$root/DEBIAN/$s"
		chmod 0755 "$root/DEBIAN/$s"
	done
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out/page-hinting_${version}_amd64.deb" >/dev/null
	rm -rf "$root"
	touch "$out/.done"
	info "page-hinting $version package for $krel built"
fi
echo "$out"
