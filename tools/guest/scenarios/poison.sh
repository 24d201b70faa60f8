# SPDX-License-Identifier: GPL-2.0
# check-e2e: the free page contents rules. The guest boots with
# init_on_free=1 (it relies on free pages being zero; page_poison=1 is the
# same rule with another value, and needs CONFIG_PAGE_POISONING, which only
# the debug kernel has: its KUnit boot negotiates it). If the device offers
# VIRTIO_BALLOON_F_PAGE_POISON (QEMU's default), the driver tells the host
# the value (0) and reports; with page-poison=off (ph_expect=refused on the
# command line) it must not report at all, and say why once in the log and
# in sysfs.
. /scenarios/lib.sh
load_hinting
t=$(cat "$SYS/transport")
echo "transport: $t"
r0=$(stat reported_pages)
memhog alloc-free 64 500 || fail memhog
# The worker has dealt with the frees: reported some (negotiated) or
# turned them away for want of a transport (refused).
case " $(cat /proc/cmdline) " in
*" ph_expect=refused "*) wait_for 60 "the frees looked at" stat_above no_transport_pages 0 ;;
*) wait_for 60 "a report" stat_above reported_pages "$r0" ;;
esac
memhog alloc-free 64 100 || fail "memhog (reallocating reported pages)"
r1=$(stat reported_pages)
echo "reported: $((r1 - r0)) pages"
case " $(cat /proc/cmdline) " in
*" ph_expect=refused "*)
	echo "$t" | grep -q "^virtio-balloon poison-refused: the guest poisons or zeroes free pages" ||
		fail "transport shows '$t', want poison-refused"
	[ "$r1" = "$r0" ] || fail "reported $((r1 - r0)) pages with poisoning refused"
	n=$(dmesg | grep -c "not reporting: the guest poisons")
	[ "$n" = 1 ] || fail "the refusal was logged $n times, want once"
	mark poison-refused
	;;
*)
	[ "$t" = "virtio-balloon active" ] || fail "transport shows '$t', want active"
	[ "$r1" -gt "$r0" ] || fail "nothing reported with the poison value negotiated"
	mark poison-negotiated
	;;
esac
rmmod page_hinting || fail rmmod
# The hypercall transport cannot keep free pages' contents (a cold discard
# leaves them undefined, and Hyper-V has no poison value to agree on): it
# refuses such a guest before it looks at what the host offers.
insmod "$MOD" transport=hypercall 2>/dev/null && fail "transport=hypercall loaded with init_on_free"
dmesg | grep -q "transport=hypercall: the guest poisons or zeroes free pages" ||
	fail "transport=hypercall: refusal for the guest's free page contents not logged"
mark hypercall-refused
