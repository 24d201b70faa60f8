#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cloud-hypervisor with a balloon device of size 0 that offers free page
# reporting (cloud-hypervisor's --balloon option, "free_page_reporting=on").
#
#   samples/cloud-hypervisor.sh vmlinux initramfs.cpio.gz
exec cloud-hypervisor \
	--kernel "$1" --initramfs "$2" --cmdline "console=ttyS0" \
	--cpus boot=2 --memory size=2G \
	--balloon size=0,free_page_reporting=on \
	--serial tty --console off
