# SPDX-License-Identifier: GPL-2.0
# make run: load page_hinting, allocate and free 400 MiB, wait for the host.
. /scenarios/lib.sh
load_hinting
dmesg | grep page_hinting
memhog alloc-free 400 2000 || fail memhog
sleep 8
mark done
rmmod page_hinting || fail rmmod
