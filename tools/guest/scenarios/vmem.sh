# SPDX-License-Identifier: GPL-2.0
# check-e2e (debug kernel, two NUMA nodes, a virtio-mem device on node 1):
# memory comes and goes under the integrity stress while page_hinting
# reports at its most aggressive. Each cycle the host plugs 512 MiB
# (virtio-mem's requested-size, through QMP), the guest offlines and onlines
# the plugged memory blocks, and the host unplugs everything again, which
# virtio-mem does by offlining memory itself (a kernel-initiated offline
# never gives up). The worker must never hold isolated blocks across the
# start of an offline: that offline would wait for them forever, and the
# worker for it.
. /scenarios/lib.sh
# No lost-report audit here yet: it finds small blocks, last seen reported
# or in use by the worker's scans, free and unreported with no free the
# module heard of in between (issue 38; see Documentation/mm/page_hinting.rst,
# The lost-report audit).
NO_AUDIT=1
CYCLES=3
[ -d /sys/bus/virtio/drivers/virtio_mem ] || fail "no virtio_mem driver"
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
[ "$nodes" -ge 2 ] || fail "$nodes NUMA node(s), want 2"
load_hinting min_order=0 threshold_kb=4 flush_ms=1
stress_start 96
mt0=$(memtotal)
i=0 offlined=0
while [ $i -lt $CYCLES ]; do
	ask_host plug 60
	wait_for 300 "512 MiB plugged (cycle $i)" memtotal_above $((mt0 + 400 * 1024))
	for round in 1 2; do
		for b in $(movable); do
			# Offlining may fail (EBUSY: a page could not be migrated in
			# time); it must never hang.
			if echo offline >"$b/state" 2>/dev/null; then
				offlined=$((offlined + 1))
				echo online_movable >"$b/state" || fail "online ${b##*/}"
			fi
		done
	done
	ask_host unplug 60
	wait_for 300 "everything unplugged (cycle $i)" memtotal_below $((mt0 + 64 * 1024))
	i=$((i + 1))
done
stress_stop "while memory came and went"
cat /tmp/stress.out
wait_for 60 "no page isolated after the cycles" stat_is isolated_pages 0
echo "virtio-mem cycles: $CYCLES, memory blocks offlined and onlined by the guest: $offlined, reported: $(stat reported_pages) pages"
[ "$offlined" -gt 0 ] || fail "no memory block could be offlined: the test proves nothing"
mark vmem-done "$CYCLES $offlined $(stat reported_pages)"
rmmod page_hinting || fail rmmod
