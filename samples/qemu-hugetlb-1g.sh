#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A guest on 1 GiB host hugetlb pages whose freed GiBs page_hinting returns
# to the host (the layout of make check's hugetlb-1g scenario): 3 GiB of
# guest RAM, the first 2 GiB on two 1 GiB host pages, the last GiB
# ordinary memory where the guest's memmap and other early allocations
# land (they are taken from the top of memory), and ZONE_MOVABLE from
# 1 GiB up (movablecore=2G) so that no kernel allocation pins the second
# GiB. page_hinting must be told the host page size: host_page_kb=1048576.
# The host needs the pages in its pool first:
#
#   echo 2 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
#   samples/qemu-hugetlb-1g.sh bzImage initramfs.cpio.gz
#
# In the guest: insmod page_hinting.ko host_page_kb=1048576. Watch the
# host's free_hugepages in that directory rise when the guest frees the
# memory of its second GiB (QEMU's RSS does not count hugetlb memory).
# See "Host huge pages" in Documentation/admin-guide/mm/page_hinting.rst.
exec qemu-system-x86_64 \
	-machine pc,accel=kvm:tcg -cpu max -smp 2 -m 3G \
	-object memory-backend-memfd,id=hp0,size=2G,hugetlb=on,hugetlbsize=1G \
	-object memory-backend-ram,id=rest0,size=1G \
	-numa node,nodeid=0,cpus=0-1,memdev=hp0 -numa node,nodeid=1,memdev=rest0 \
	-kernel "$1" -initrd "$2" -append "console=ttyS0 movablecore=2G" \
	-device virtio-balloon-pci,id=balloon0,free-page-reporting=on \
	-nographic -no-reboot
