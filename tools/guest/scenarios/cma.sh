# SPDX-License-Identifier: GPL-2.0
# check-e2e (debug kernel, cma=64M): contiguous allocations from the CMA
# area (CMA_DEBUGFS's alloc and free files) race the integrity stress while
# page_hinting reports at its most aggressive. A contiguous allocation
# isolates pageblocks that may lie inside a block the worker holds; the
# block must go back pageblock by pageblock, each to its own free list.
# Afterwards, with nothing isolated by anyone, each zone's free page count
# (NR_FREE_PAGES) must equal what its free lists hold (/proc/buddyinfo).
. /scenarios/lib.sh
ROUNDS=300
CMA=$(ls -d /sys/kernel/debug/cma/*/ 2>/dev/null | head -n1)
[ -n "$CMA" ] && [ -w "$CMA/alloc" ] || fail "no CMA debugfs area (cma= on the command line, CONFIG_CMA_DEBUGFS)"
load_hinting min_order=0 threshold_kb=4 flush_ms=1
stress_start 96
i=0 ok=0
while [ $i -lt $ROUNDS ]; do
	# 1024 pages: two pageblocks, an order-10 block's worth.
	if echo 1024 >"$CMA/alloc" 2>/dev/null; then
		ok=$((ok + 1))
		echo 1024 >"$CMA/free" || fail "cma free"
	fi
	i=$((i + 1))
done
stress_stop "during the CMA allocations"
cat /tmp/stress.out
wait_for 60 "no page isolated" stat_is isolated_pages 0
rep=$(stat reported_pages)
rmmod page_hinting || fail rmmod
echo "CMA allocations: $ok of $ROUNDS succeeded; reported: $rep pages"
[ "$ok" -gt 0 ] || fail "no CMA allocation succeeded: the test proves nothing"
# NR_FREE_PAGES against the free lists, per zone. The two files are read
# one after the other while the guest is quiet: a few pages may move in
# between, a pageblock (512 pages) put on the wrong list may not.
freecheck() {
	awk '
	/^Node/ { n = $2; gsub(",", "", n); z = n "," $4 }
	FNR == NR { p = 1; for (i = 5; i <= NF; i++) { buddy[z] += $i * p; p *= 2 }; next }
	/^ +pages free/ { nr[z] = $3 }
	END { bad = 0; for (z in nr) { d = nr[z] - buddy[z]; if (d < 0) d = -d
		printf "zone %s: NR_FREE_PAGES %d, free lists %d\n", z, nr[z], buddy[z]
		if (d > 64) bad = 1 }
		exit bad }' /proc/buddyinfo /proc/zoneinfo
}
n=0
until freecheck >/tmp/freecheck; do
	n=$((n + 1))
	[ $n -lt 10 ] || { cat /tmp/freecheck; fail "NR_FREE_PAGES does not match the free lists"; }
	sleep 0.2
done
cat /tmp/freecheck
mark cma-done "$ROUNDS $ok $rep"
