#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A guest whose freed memory page_hinting returns to the host: QEMU with a
# virtio-balloon device offering free page reporting. The guest must not
# poison free pages (no page_poison=1 / init_on_free=1), or QEMU keeps the
# memory (see Documentation/admin-guide/mm/page_hinting.rst).
#
#   samples/qemu.sh bzImage initramfs.cpio.gz
#
# In the guest: insmod page_hinting.ko (and not virtio_balloon.ko).
exec qemu-system-x86_64 \
	-machine q35,accel=kvm:tcg -cpu max -smp 2 -m 2G \
	-kernel "$1" -initrd "$2" -append "console=ttyS0" \
	-device virtio-balloon-pci,id=balloon0,free-page-reporting=on \
	-nographic -no-reboot
