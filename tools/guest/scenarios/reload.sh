# SPDX-License-Identifier: GPL-2.0
# check-e2e: load and unload page_hinting 50 times (reporting at its most
# aggressive: small blocks do not settle, a cycle is shorter than a settle
# tick) while the integrity stress runs on every CPU and the host
# discards what it is given. No page may change under the stress, and
# afterwards free memory is back to its baseline: no page stuck isolated.
. /scenarios/lib.sh
CYCLES=50
# The cycles unload in the middle of the frees on purpose: the audit runs
# once, at the end, on a load of its own.
NO_AUDIT=1
cycle() {
	insmod "$MOD" transport=virtio min_order=0 threshold_kb=4 flush_ms=1 settle_ms=0 || fail "insmod $1"
	sleep 0.$(($1 % 5))
	rmmod page_hinting || fail "rmmod $1"
}
# Warm up slab caches and per-CPU lists, then take the baseline.
stress 100 64 >/dev/null || fail "warm-up stress"
cycle 0
base=$(settle)
rm -f /tmp/stop
(
	n=0
	while [ ! -f /tmp/stop ]; do
		stress 200 128 >/tmp/stress.out || { cat /tmp/stress.out; exit 1; }
		n=$((n + 1))
	done
	echo "stress rounds: $n"
) &
spid=$!
i=1
while [ $i -le $CYCLES ]; do
	cycle $i
	i=$((i + 1))
done
touch /tmp/stop
wait $spid || fail "integrity stress failed during the load/unload cycles"
after=$(settle)
lost=$((base - after))
echo "PH-LEAKCHECK cycles=$CYCLES base_kib=$base after_kib=$after lost_kib=$lost"
dmesg | grep -q "pages still isolated at unload" && fail "pages left isolated at unload"
[ "$lost" -lt 4096 ] || fail "free memory fell by $lost KiB over $CYCLES load/unload cycles"
n=$(dmesg | grep -c 'page_hinting: unloading:')
rep=$(dmesg | sed -n 's/.*page_hinting: unloading: .* isolated, \([0-9]*\) reported.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
echo "reported over the cycles: $rep pages"
[ "$rep" -gt 0 ] || fail "nothing was reported during the cycles: the test proves nothing"
# The audit, with the cycles' settings: a load of its own, one round of the
# stress, then the unload audits.
NO_AUDIT=
insmod "$MOD" transport=virtio min_order=0 threshold_kb=4 flush_ms=1 settle_ms=0 || fail "insmod for the audit"
stress 100 64 >/dev/null || fail "stress before the audit"
rmmod page_hinting || fail "rmmod after the audit"
mark reload-done "$CYCLES $n $rep"
