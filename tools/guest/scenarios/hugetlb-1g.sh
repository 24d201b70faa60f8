# SPDX-License-Identifier: GPL-2.0
# check-e2e: a 3 GiB guest whose first 2 GiB are two 1 GiB host pages
# (run-guest.py --hugetlb 1048576 --hugetlb-mib 2048), ZONE_MOVABLE from
# 1 GiB up (movablecore=2G on the command line: kernel allocations would pin
# every GiB otherwise). With host_page_kb=1048576 page_hinting reports a GiB
# only when all of it is free, as one range; Linux's reporting (4 MiB blocks
# at most) never gets one back. memhog takes 2 GiB and frees it: the host's
# pool must get a 1 GiB page back, and the guest's count must agree
# (check-e2e.py). The first GiB holds the kernel and stays.
. /scenarios/lib.sh
load_hinting host_page_kb=1048576
[ "$(cat "$SYS/host_page_kb")" = 1048576 ] || fail "host_page_kb not taken"
# A size that is not a power of two is refused, and the knob keeps its
# value.
echo 3000 >"$SYS/host_page_kb" 2>/dev/null && fail "host_page_kb=3000 accepted"
[ "$(cat "$SYS/host_page_kb")" = 1048576 ] || fail "host_page_kb changed by a refused write"
rm -f /tmp/mh-ready /tmp/mh-go
MEMHOG_READY=/tmp/mh-ready MEMHOG_RELEASE=/tmp/mh-go memhog alloc-free 2048 &
hog=$!
wait_for 300 "2 GiB allocated" test -e /tmp/mh-ready
wait_for 120 "reporting settled before the free" settled
h0=$(stat host_pages_reported)
mark before "$h0"
touch /tmp/mh-go
wait $hog || fail memhog
wait_for 120 "a host page reported" stat_above host_pages_reported "$h0"
mark reported "$(stat host_pages_reported)"
wait_for 120 "reporting settled" settled
mark after "$(stat host_pages_reported)"
dump_stats
rmmod page_hinting || fail rmmod
