# SPDX-License-Identifier: GPL-2.0
# check-e2e: the comparison path: Linux's own virtio_balloon with free page
# reporting binds the device instead of page_hinting, and memory still goes
# back to the host.
. /scenarios/lib.sh
insmod /lib/modules/virtio_balloon.ko || fail "insmod virtio_balloon"
[ -d /sys/bus/virtio/drivers/virtio_balloon ] || fail "virtio_balloon driver not registered"
ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio || fail "virtio_balloon bound no device"
mark loaded
memhog alloc-free 400 1500 || fail memhog
# The guest cannot see what Linux reported: the host says when half of the
# 400 MiB is back (check-e2e.py: --on fallen=rss-fall:freeing:200:...).
ask_host fallen 300
# patches/0011 (CONFIG_PAGE_REPORTING_STATS, on in the test guests): the
# longest zone lock holds of Linux's reporting and of the free path were
# recorded; a write of anything but 0 is refused and changes nothing.
r=$(cat "$KSTAT/report_lock_max_ns") || fail "no $KSTAT/report_lock_max_ns"
f=$(cat "$KSTAT/free_lock_max_ns") || fail "no $KSTAT/free_lock_max_ns"
[ "$r" -gt 0 ] && [ "$f" -gt 0 ] || fail "zone lock holds not recorded: $r $f"
if echo 5 >"$KSTAT/report_lock_max_ns" 2>/dev/null; then
	fail "report_lock_max_ns took 5"
fi
[ "$(cat "$KSTAT/report_lock_max_ns")" -ge "$r" ] || fail "a refused write changed report_lock_max_ns"
echo 0 >"$KSTAT/free_lock_max_ns" || fail "free_lock_max_ns refused 0"
mark holds "$r $f"
mark done
