#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Firecracker: give the VM a balloon with free page reporting before it
# boots (PUT /balloon; the body is samples/firecracker-balloon.json). The
# balloon's "free_page_reporting" field exists from Firecracker v1.14.0 on
# (a developer preview there). Firecracker's devices are virtio-mmio unless
# it runs with --enable-pci: the guest kernel needs CONFIG_VIRTIO_MMIO and
# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (Firecracker puts the devices on the
# kernel command line; the project's guest kernels have both, and make
# check boots such a guest under QEMU's microvm, scenario "microvm").
# Firecracker does not offer VIRTIO_BALLOON_F_PAGE_POISON: a guest that
# poisons or zeroes its free pages (page_poison=1, init_on_free=1) does not
# report there (transport shows poison-refused).
#
#   samples/firecracker.sh /run/firecracker.socket
curl --unix-socket "$1" -sS -X PUT http://localhost/balloon \
	-H 'Content-Type: application/json' \
	--data @"$(dirname "$0")/firecracker-balloon.json"
