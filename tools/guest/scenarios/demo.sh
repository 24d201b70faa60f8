# SPDX-License-Identifier: GPL-2.0
# make run: load page_hinting, allocate and free 400 MiB, wait for the host.
. /scenarios/lib.sh
load_hinting
dmesg | grep page_hinting
b=$(stat reported_pages)
memhog alloc-free 400 2000 || fail memhog
wait_for 120 "90% of 400 MiB reported" reported_since "$b" 92160
sleep 1
mark done
rmmod page_hinting || fail rmmod
