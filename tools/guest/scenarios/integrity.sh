# SPDX-License-Identifier: GPL-2.0
# check-e2e: integrity stress. Every CPU maps, stamps, verifies and unmaps
# memory at random while page_hinting reports at its most aggressive
# (min_order=0, the smallest threshold, a 1 ms idle flush) and the host
# discards what it is given. A page the host discarded while the guest used
# it fails the run with its address.
. /scenarios/lib.sh
# Operations per thread: ph_stress_ops=N on the kernel command line (make
# soak passes a larger one).
OPS=$(stress_ops)
# The configurations users run (check-e2e's integrity-* variants) come as
# ph_param.* on the kernel command line; the engine mode reports through
# virtio_balloon, loaded first.
case " $(cat /proc/cmdline) " in
*" ph_param.transport=engine "*)
	load_balloon
	load_hinting min_order=0 threshold_kb=4 flush_ms=1
	wait_for 60 "the engine attaching the device" engine_active
	;;
*) load_hinting min_order=0 threshold_kb=4 flush_ms=1 ;;
esac
r0=$(stat reported_pages) n0=$(stat reports)
stress "$OPS" 192 || fail "integrity stress"
r1=$(stat reported_pages) n1=$(stat reports)
echo "during the stress: $((n1 - n0)) reports, $((r1 - r0)) pages reported"
[ "$r1" -gt "$r0" ] || fail "nothing was reported during the stress: it proves nothing"
mark integrity "$((n1 - n0)) $((r1 - r0))"
dump_stats
rmmod page_hinting || fail rmmod
