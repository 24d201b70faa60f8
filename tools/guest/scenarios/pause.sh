# SPDX-License-Identifier: GPL-2.0
# check-e2e: the host stops the VM (QEMU monitor "stop") for 3 s while the
# guest frees memory round after round, then lets it go on ("cont"). The
# pause is driven by the guest's progress, not by a time: after round 2 the
# guest asks for it (mark pause-point; check-e2e.py runs the runner with
# --on pause-point=pause:3) and goes on freeing; the runner stops the VM
# during the rounds that follow and, after "cont", answers on the host
# channel. The guest then frees 4 more rounds, so the pause lies among the
# rounds on any machine. The host-side check finds it between two rounds'
# marks and requires reporting to go on after it; the console must stay
# clean (no stall or lockup warning), and nothing may stay isolated.
. /scenarios/lib.sh
load_hinting
# Only rounds that begin after the answer count as "after": the stop may
# land right after the pause-point mark, with the answer then already there
# for that round's own check (seen: 3 rounds after the pause instead of 4).
i=0 after=0 seen=0
while [ $after -lt 4 ]; do
	answered pause-point 0 && seen=1
	memhog alloc-free 48 50 >/dev/null || fail memhog
	i=$((i + 1))
	mark_reported "round"
	[ $i = 2 ] && mark pause-point
	[ $seen = 1 ] && after=$((after + 1))
	# A bound on a failing run only: the host answers within seconds.
	[ $i -lt 2000 ] || fail "no answer from the host after $i rounds"
done
grep -q "^pause-point done" /tmp/host || fail "the host answered $(grep '^pause-point ' /tmp/host)"
wait_for 60 "no page isolated after the rounds" stat_is isolated_pages 0
mark_reported pause-done
rmmod page_hinting || fail rmmod
