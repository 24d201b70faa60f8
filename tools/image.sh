#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make image: a Debian 12 guest disk image with the packages of
# tools/packages.sh installed by dpkg, as an operator would install them
# into their own image.
#
#   1. debootstrap Debian 12 (bookworm, minbase + systemd, udev, kmod,
#      initramfs-tools) from deb.debian.org; cached by suite and package
#      list
#   2. in a copy: dpkg -i the kernel and page-hinting packages (the
#      kernel's postinst makes the initramfs with initramfs-tools: its root
#      disk driver, virtio_blk, is a module, as in Debian)
#   3. the test's own pieces, which are not part of the packages:
#      ph-image-test.service and its script, memhog, ph-exit
#   4. an ext4 file system image of it (mkfs.ext4 -d: no loop device, no
#      mount), plus the kernel and initramfs from its /boot, which QEMU
#      boots directly (root=/dev/vda)
#
# Usage: tools/image.sh      prints the directory holding disk.raw,
#                            vmlinuz, initrd.img and krel
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUITE=bookworm
MIRROR=${PAGE_HINTING_MIRROR:-http://deb.debian.org/debian}
INCLUDE=systemd-sysv,udev,kmod,initramfs-tools,zstd
IMG=$CACHE/image
mkdir -p "$IMG"

for t in debootstrap mkfs.ext4 chroot; do
	command -v "$t" >/dev/null || die "$t missing (run tools/deps.sh)"
done
[[ $(id -u) -eq 0 ]] || die "building the image needs root (debootstrap, chroot)"

pkgs=$("$ROOT/tools/packages.sh")

# --- 1. the base system --------------------------------------------------------
bkey=$(echo "$SUITE $MIRROR $INCLUDE" | sha256sum | cut -c1-16)
base=$IMG/base-$bkey.tar
if [[ ! -f $base ]]; then
	info "debootstrap Debian 12 ($SUITE) from $MIRROR"
	start=$SECONDS
	rm -rf "$IMG/base.tmp"
	debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$IMG/base.tmp" "$MIRROR" \
		>"$IMG/debootstrap.log" 2>&1 || {
		tail -n 20 "$IMG/debootstrap.log" >&2
		die "debootstrap failed (see $IMG/debootstrap.log)"
	}
	tar -C "$IMG/base.tmp" --numeric-owner -cf "$base.tmp" .
	mv "$base.tmp" "$base"
	rm -rf "$IMG/base.tmp"
	info "base system in $((SECONDS - start)) s"
fi

# --- 2.-4. the image -------------------------------------------------------------
G=$ROOT/tools/guest
bin=$(guest_bins)
key=$( (
	echo "$bkey"
	sha256sum "$pkgs"/*.deb | cut -c1-64
	cat "$0" "$G"/image/* "$G/scenarios/lib.sh" "$bin/memhog" "$bin/ph-exit"
) | sha256sum | cut -c1-16)
out=$IMG/img-$key
if [[ -f $out/.done ]]; then
	echo "$out"
	exit 0
fi
start=$SECONDS
rm -rf "$out"
mkdir -p "$out"
root=$out/root
mkdir "$root"
tar -C "$root" -xf "$base"

mounted=()
cleanup() {
	local m
	for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev; do
	mount --bind "/$m" "$root/$m"
	mounted=("$root/$m" "${mounted[@]}")
done

echo page-hinting-guest >"$root/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
# A fixed machine id: no first-boot setup.
echo 5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e >"$root/etc/machine-id"
chroot "$root" passwd -dq root

info "installing the packages with dpkg"
cp "$pkgs"/*.deb "$root/tmp/"
kdeb=$(ls "$pkgs"/linux-image-*.deb | grep -v -- -dbg_ | head -n1)
krel=$(dpkg-deb -f "$kdeb" Package)
krel=${krel#linux-image-}
(cd "$root/tmp" && chroot "$root" sh -c "DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/linux-image-${krel}_*.deb /tmp/page-hinting_*.deb") \
	>"$out/dpkg.log" 2>&1 || {
	tail -n 30 "$out/dpkg.log" >&2
	die "dpkg -i failed in the image (see $out/dpkg.log)"
}
rm -f "$root"/tmp/*.deb
[[ -f $root/boot/initrd.img-$krel ]] || die "the kernel package made no initramfs (see $out/dpkg.log)"

# The test's own pieces.
T=$root/usr/local/lib/page-hinting-test
install -D -m 0755 "$G/image/ph-image-test.sh" "$T/ph-image-test.sh"
install -m 0644 "$G/scenarios/lib.sh" "$T/lib.sh"
install -m 0755 "$bin/memhog" "$bin/ph-exit" "$T/"
install -D -m 0644 "$G/image/ph-image-test.service" "$root/etc/systemd/system/ph-image-test.service"
chroot "$root" systemctl enable -q ph-image-test.service
# The test writes to the serial console: no login prompt on it then.
d=$root/etc/systemd/system/serial-getty@ttyS0.service.d
mkdir -p "$d"
printf '[Unit]\nConditionKernelCommandLine=!ph.scenario=image\n' >"$d/page-hinting-test.conf"

cleanup
mounted=()
cp "$root/boot/vmlinuz-$krel" "$out/vmlinuz"
cp "$root/boot/initrd.img-$krel" "$out/initrd.img"
echo "$krel" >"$out/krel"
mkfs.ext4 -q -F -L root -d "$root" "$out/disk.raw" 2G >/dev/null
rm -rf "$root"
touch "$out/.done"
info "image built in $((SECONDS - start)) s ($(du -sh --apparent-size "$out/disk.raw" | cut -f1) disk, $(du -sh "$out/disk.raw" | cut -f1) used)"
# Older images go: each is 2 GiB sparse.
find "$IMG" -maxdepth 1 -name 'img-*' ! -name "img-$key" -exec rm -rf {} +
echo "$out"
