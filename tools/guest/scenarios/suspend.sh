# SPDX-License-Identifier: GPL-2.0
# check-e2e (debug kernel): suspend and resume with the kernel's PM test
# mode (pm_test=devices: tasks and the workqueue are frozen, every device
# suspended and resumed, which resets the virtio device). Reporting must
# go on after each resume: the driver freezes (queues deleted) and restores
# (queues set up again); without that the next report waits forever for a
# device that lost its queue.
. /scenarios/lib.sh
[ -w /sys/power/pm_test ] || fail "no /sys/power/pm_test (CONFIG_PM_DEBUG)"
CYCLES=3
load_hinting min_order=0 flush_ms=1
r0=$(stat reported_pages)
memhog alloc-free 64 100 >/dev/null || fail memhog
wait_for 60 "a report before the suspend" stat_above reported_pages "$r0"
echo devices >/sys/power/pm_test
echo 1 >/sys/module/suspend/parameters/pm_test_delay
i=0
while [ $i -lt $CYCLES ]; do
	echo freeze >/sys/power/state || fail "suspend $i"
	t=$(cat "$SYS/transport")
	[ "$t" = "virtio-balloon active" ] || fail "after resume $i: transport '$t'"
	r=$(stat reported_pages)
	memhog alloc-free 64 100 >/dev/null || fail memhog
	wait_for 60 "a report after resume $i" stat_above reported_pages "$r"
	wait_for 60 "no page isolated after resume $i" stat_is isolated_pages 0
	i=$((i + 1))
done
echo none >/sys/power/pm_test
dmesg | grep -c "PM: suspend exit" | { read -r n; echo "suspend cycles: $n"; }
mark suspend-done "$CYCLES $(stat reported_pages)"
rmmod page_hinting || fail rmmod
