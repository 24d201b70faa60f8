# SPDX-License-Identifier: GPL-2.0
# check-e2e: memory pressure. The integrity stress keeps about 80% of the
# available memory mapped (its random sizes take it higher at times) and
# churns it, first with nothing loaded (the baseline: no OOM kill), then
# with page_hinting at its most aggressive. Pages held for a report must
# not cause an OOM kill the baseline does not have, and the pages isolated
# at once must stay within the cap (1/64 of RAM, 1024 to 16384 pages).
. /scenarios/lib.sh
OPS=600
ooms() { dmesg | grep -c -E 'invoked oom-killer|Out of memory'; }
# low_stress OPS LIVE: the stress, and the lowest MemAvailable (MiB) seen
# while it ran, sampled every 100 ms.
low_stress() {
	(
		low=999999
		while [ ! -e /tmp/stress.done ]; do
			a=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
			[ "$a" -lt "$low" ] && low=$a
			echo "$low" >/tmp/stress.low
			sleep 0.1
		done
	) &
	rm -f /tmp/stress.done
	stress "$1" "$2"
	rc=$?
	touch /tmp/stress.done
	wait
	echo "lowest MemAvailable during the stress: $(cat /tmp/stress.low) MiB"
	return $rc
}
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
live=$((avail * 80 / 100))
mark pressure-live "$live $avail"
low_stress "$OPS" "$live" || fail "stress with nothing loaded (the baseline)"
[ "$(ooms)" -eq 0 ] || fail "OOM kill with nothing loaded: the baseline is too tight"
mark baseline-done
load_hinting min_order=0 threshold_kb=4 flush_ms=1
r0=$(stat reported_pages)
low_stress "$OPS" "$live" || fail "stress with page_hinting"
[ "$(ooms)" -eq 0 ] || fail "OOM kill with page_hinting loaded"
reported=$(($(stat reported_pages) - r0))
[ "$reported" -gt 0 ] || fail "nothing was reported under pressure: it proves nothing"
ram=$(awk '/^MemTotal:/ { print int($2 / 4) }' /proc/meminfo)
cap=$((ram / 64))
[ $cap -ge 1024 ] || cap=1024
[ $cap -le 16384 ] || cap=16384
peak=$(stat isolated_peak_pages)
echo "under pressure: $reported pages reported, isolated peak $peak pages (cap $cap)," \
	"$(stat skipped_low_pages) pages left alone for the watermarks"
[ "$peak" -le "$cap" ] || fail "isolated peak $peak pages above the cap $cap"
mark pressure-done "$reported $peak $cap $(cat /tmp/stress.low)"
rmmod page_hinting || fail rmmod
