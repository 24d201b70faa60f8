# SPDX-License-Identifier: GPL-2.0
# check-e2e: the guest frees 700 MiB of THP-backed anonymous memory at once;
# the host must get at least 90% of it back, and the guest's count of
# reported pages must agree with what the host saw.
. /scenarios/lib.sh
load_hinting
cat "$SYS/transport"
mark_reported before
memhog alloc-free 700 1500 || fail memhog
sleep 6
mark_reported after
dump_stats
rmmod page_hinting || fail rmmod
