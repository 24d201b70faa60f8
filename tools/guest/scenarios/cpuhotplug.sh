# SPDX-License-Identifier: GPL-2.0
# check-e2e: CPU 1 goes offline and online again 20 times while the
# integrity stress frees memory on both CPUs and page_hinting reports
# (min_order=0; a 16 MiB threshold and no idle flush, so that a CPU going
# offline still holds captured frees). What an offline CPU captured is
# handed to the worker; no page changes under the stress and none stays
# isolated.
. /scenarios/lib.sh
CPU=/sys/devices/system/cpu/cpu1/online
[ -w $CPU ] || fail "CPU 1 cannot go offline here"
load_hinting min_order=0 threshold_kb=16384 flush_ms=0
stress_start 128
h0=$(stat hotplug_handoffs)
i=0
while [ $i -lt 20 ]; do
	echo 0 >$CPU || fail "offline $i"
	sleep 0.$((i % 4 + 1))
	echo 1 >$CPU || fail "online $i"
	sleep 0.2
	i=$((i + 1))
done
stress_stop "during CPU hotplug"
h1=$(stat hotplug_handoffs)
echo "hotplug cycles: 20, hand-offs: $((h1 - h0)), reported: $(stat reported_pages) pages"
[ "$h1" -gt "$h0" ] || fail "no offline CPU handed its frees over"
wait_for 60 "no page isolated after the cycles" stat_is isolated_pages 0
mark hotplug-done "20 $((h1 - h0))"
rmmod page_hinting || fail rmmod
