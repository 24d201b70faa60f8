# SPDX-License-Identifier: GPL-2.0
# check-e2e (engine-orders, page_reporting.page_reporting_order=0 so that
# the engine reports order-0 blocks as in the integrity scenario): both
# load orders of virtio_balloon and page_hinting, and the unload of either
# while the integrity stress runs, with no page changed under it and
# nothing left isolated. Once page_hinting is gone, Linux's own engine
# reports for virtio_balloon again.
. /scenarios/lib.sh
P="min_order=0 threshold_kb=4 flush_ms=1"
# stressed WHAT: the stress runs until page_hinting has reported during it.
stressed() {
	_b=$(stat reported_pages)
	stress_start 64
	wait_for 120 "reports during the stress before $1" reported_since "$_b" 1
}

# page_hinting first: it waits for a device, and takes the one
# virtio_balloon registers.
load_engine $P
engine_waiting || fail "before virtio_balloon: $(cat "$SYS/transport")"
load_balloon
wait_for 60 "the engine attaching the device" engine_active
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports through virtio_balloon" reported_since "$b" 20480
mark ph-first

# virtio_balloon goes while page_hinting reports through it.
stressed "rmmod virtio_balloon"
rmmod virtio_balloon || fail "rmmod virtio_balloon"
engine_waiting || fail "after rmmod virtio_balloon: $(cat "$SYS/transport")"
wait_for 60 "nothing isolated after rmmod virtio_balloon" stat_is isolated_pages 0
stress_stop "around rmmod virtio_balloon"
mark balloon-unloaded

# virtio_balloon again: attached when it registers.
load_balloon
wait_for 60 "the engine attaching the device again" engine_active
mark balloon-reloaded

# page_hinting goes while it reports; Linux's engine takes the device back.
stressed "rmmod page_hinting"
# Unloaded in the middle of the stress on purpose: no audit before it.
NO_AUDIT=1
rmmod page_hinting || fail "rmmod page_hinting"
NO_AUDIT=
stress_stop "around rmmod page_hinting"
mark ph-unloaded
memhog alloc-free 400 1500 || fail memhog
# The guest cannot see what Linux reported: the host says when half of the
# 400 MiB is back.
ask_host fallen 300
mark mm-resumed

# page_hinting with the device registered already: attached at load.
load_engine $P
engine_active || fail "loaded after virtio_balloon: $(cat "$SYS/transport")"
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports after loading second" reported_since "$b" 20480
rmmod page_hinting || fail "rmmod page_hinting"
rmmod virtio_balloon || fail "rmmod virtio_balloon"
mark done
