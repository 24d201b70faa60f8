#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A guest whose freed memory page_hinting returns to the host: QEMU (5.1 or
# later, the first with free-page-reporting) with a virtio-balloon device
# offering free page reporting. Zeroed free pages (init_on_free=1) are
# fine: QEMU offers VIRTIO_BALLOON_F_PAGE_POISON (page-poison=on, its
# default) and discards what it is given. A guest that poisons free pages
# with a non-zero value (page_poison=1) is reported too, but QEMU keeps
# that memory (it cannot discard pages whose contents must stay the poison
# value). See Documentation/admin-guide/mm/page_hinting.rst.
#
#   samples/qemu.sh bzImage initramfs.cpio.gz
#
# In the guest: insmod page_hinting.ko (and not virtio_balloon.ko).
exec qemu-system-x86_64 \
	-machine q35,accel=kvm:tcg -cpu max -smp 2 -m 2G \
	-kernel "$1" -initrd "$2" -append "console=ttyS0" \
	-device virtio-balloon-pci,id=balloon0,free-page-reporting=on \
	-nographic -no-reboot
