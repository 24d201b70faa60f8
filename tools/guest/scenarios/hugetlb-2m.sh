# SPDX-License-Identifier: GPL-2.0
# check-e2e: guest RAM on the host's 2 MiB hugetlb pages (run-guest.py
# --hugetlb 2048). The host can only take back whole, aligned 2 MiB pages;
# the default min_order (9, 2 MiB) already reports nothing smaller, and
# host_page_kb=2048 says so explicitly. 700 MiB freed at once: the host's
# pool must get at least 90% of it back, as free pages.
. /scenarios/lib.sh
load_hinting host_page_kb=2048
[ "$(cat "$SYS/host_page_kb")" = 2048 ] || fail "host_page_kb not taken"
# The reports of 90% of it (161280 pages), then nothing more on the way.
free_measured 700 161280
rmmod page_hinting || fail rmmod
