# SPDX-License-Identifier: GPL-2.0
# check-e2e: the host stops the VM (QEMU monitor "stop") for 3 s while the
# guest frees memory round after round, then lets it go on ("cont"). The
# host-side check finds the pause between two rounds' marks and requires
# reporting to go on after it; the console must stay clean (no stall or
# lockup warning), and nothing may stay isolated.
. /scenarios/lib.sh
load_hinting
i=0
while [ $i -lt 24 ]; do
	memhog alloc-free 48 50 >/dev/null || fail memhog
	mark_reported "round"
	i=$((i + 1))
done
sleep 1
[ "$(stat isolated_pages)" = 0 ] || fail "$(stat isolated_pages) pages still isolated"
mark_reported pause-done
rmmod page_hinting || fail rmmod
