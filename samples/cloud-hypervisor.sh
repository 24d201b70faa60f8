#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cloud-hypervisor with a balloon device of size 0 that offers free page
# reporting (cloud-hypervisor's --balloon option, "free_page_reporting=on",
# since cloud-hypervisor v22.0, March 2022). cloud-hypervisor
# boots the uncompressed ELF vmlinux through its PVH entry: the guest
# kernel needs CONFIG_PVH=y (the project's guest kernels have it; make
# check boots that entry under QEMU, scenario "pvh"). cloud-hypervisor does
# not offer VIRTIO_BALLOON_F_PAGE_POISON: a guest that poisons or zeroes
# its free pages (page_poison=1, init_on_free=1) does not report there
# (transport shows poison-refused).
#
#   samples/cloud-hypervisor.sh vmlinux initramfs.cpio.gz
exec cloud-hypervisor \
	--kernel "$1" --initramfs "$2" --cmdline "console=ttyS0" \
	--cpus boot=2 --memory size=2G \
	--balloon size=0,free_page_reporting=on \
	--serial tty --console off
