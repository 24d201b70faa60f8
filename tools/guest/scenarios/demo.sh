# SPDX-License-Identifier: GPL-2.0
# make run: load virtio_balloon and page_hinting as a distribution guest
# does (page_hinting reports through virtio_balloon's free page reporting,
# transport=engine, the default), allocate and free 400 MiB, wait for the
# host.
. /scenarios/lib.sh
load_balloon
load_engine
wait_for 60 "the engine attaching the device" engine_active
dmesg | grep page_hinting
cat "$SYS/transport"
b=$(stat reported_pages)
memhog alloc-free 400 2000 || fail memhog
wait_for 120 "90% of 400 MiB reported" reported_since "$b" 92160
sleep 1
mark done
rmmod page_hinting || fail rmmod
