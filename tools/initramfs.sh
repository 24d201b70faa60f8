#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest initramfs for the normal or debug kernel: busybox, the
# project's static guest programs, page_hinting.ko and virtio_balloon.ko
# built for that kernel, the init script and the scenarios.
#
# Usage: tools/initramfs.sh normal|debug|distro|rt     prints the path of the image
# (PH_BREAK: see tools/module.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-normal}
kbuild=$("$ROOT/tools/kernel.sh" "$variant")
ko=$("$ROOT/tools/module.sh" "$variant")
# The normal kernel's guests also get the audit build (tools/module.sh), which
# the scenarios load when the kernel command line says ph.audit.
audit_ko=
[[ $variant != normal ]] || audit_ko=$("$ROOT/tools/module.sh" audit)

G=$ROOT/tools/guest
bin=$(guest_bins)

stage=$CACHE/initramfs-$variant${PH_BREAK:+-break-$PH_BREAK}
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,lib/modules,scenarios}
cp /bin/busybox "$stage/bin/busybox"
cp "$bin"/* "$stage/bin/"
cp "$G/init" "$stage/init"
cp "$G"/scenarios/*.sh "$stage/scenarios/"
cp "$ROOT/samples/page-hinting-watch.sh" "$stage/bin/"
cp "$ko" "$stage/lib/modules/page_hinting.ko"
[[ -z $audit_ko ]] || cp "$audit_ko" "$stage/lib/modules/page_hinting-audit.ko"
cp "$kbuild/drivers/virtio/virtio_balloon.ko" "$stage/lib/modules/virtio_balloon.ko"
chmod +x "$stage/init"

out=$OUT/initramfs-$variant${PH_BREAK:+-break-$PH_BREAK}.cpio.gz
mkdir -p "$OUT"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 >"$out.tmp")
mv "$out.tmp" "$out"
echo "$out"
