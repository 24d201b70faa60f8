# SPDX-License-Identifier: GPL-2.0
# check-e2e: the guest frees 700 MiB of THP-backed anonymous memory at once;
# the host must get at least 90% of it back, and the guest's count of
# reported pages must agree with what the host saw.
. /scenarios/lib.sh
load_hinting
cat "$SYS/transport"
# Count from right before the free: while memhog faults its memory in,
# the kernel may free and report other memory (compaction for its huge
# pages, reclaim) that memhog then takes again, which the host never sees
# fall (seen on Debian's RT kernel: 224 MiB of such reports).
rm -f /tmp/mh-ready /tmp/mh-go
MEMHOG_READY=/tmp/mh-ready MEMHOG_RELEASE=/tmp/mh-go memhog alloc-free 700 &
hog=$!
wait_for 300 "700 MiB allocated" test -e /tmp/mh-ready
wait_for 120 "reporting settled before the free" settled
mark_reported before
b=$(stat reported_pages)
touch /tmp/mh-go
wait $hog || fail memhog
# The reports of 90% of it (161280 pages), then nothing more on the way:
# the host's view is read at the next mark.
wait_for 120 "90% of 700 MiB reported" reported_since "$b" 161280
wait_for 120 "reporting settled" settled
mark_reported after
dump_stats
rmmod page_hinting || fail rmmod
