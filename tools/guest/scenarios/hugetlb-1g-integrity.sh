# SPDX-License-Identifier: GPL-2.0
# check-e2e: the integrity stress on a guest backed by 1 GiB host pages, at
# that granularity (host_page_kb=1048576; see hugetlb-1g.sh for the
# layout). The stress keeps 16 MiB live, so its GiB is nearly free all the
# time: page_hinting consolidates it (migrating the stress's own stamped
# pages away) and reports it whole while the stress runs. A page the host
# discarded while the guest used it fails the run with its address.
. /scenarios/lib.sh
OPS=$(stress_ops)
load_hinting host_page_kb=1048576 threshold_kb=4 flush_ms=1
h0=$(stat host_pages_reported) c0=$(stat host_pages_consolidated)
stress "$OPS" 16 || fail "integrity stress"
h1=$(stat host_pages_reported) c1=$(stat host_pages_consolidated)
echo "during the stress: $((h1 - h0)) host pages reported, $((c1 - c0)) consolidated"
[ "$h1" -gt "$h0" ] || fail "no host page was reported during the stress: it proves nothing"
mark integrity "$((h1 - h0)) $((c1 - c0))"
dump_stats
rmmod page_hinting || fail rmmod
