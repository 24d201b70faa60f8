# SPDX-License-Identifier: GPL-2.0
# Measurement (not a pass/fail test): what reporting does to the page
# allocator's anti-fragmentation. The integrity stress churns memory first
# with nothing loaded, then with page_hinting at min_order=0 (the orders
# below a pageblock are where isolation could claim a pageblock for
# MIGRATE_MOVABLE), one boot each (ph_mode=none or ph_mode=hinting on the
# command line); before and after, the pageblocks of each migratetype
# (/proc/pagetypeinfo) and the THP fault fallbacks (/proc/vmstat) are
# printed as PH-MARK lines:
#   tools/run-guest.py --kernel ... --initrd ... --scenario pageblocks \
#       --append ph_mode=hinting
. /scenarios/lib.sh
OPS=1500
blocks() {
	awk '/^Number of blocks type/ { on = 1; next }
	on && /^Node/ { u += $5; m += $6; r += $7 }
	END { print u, m, r }' /proc/pagetypeinfo
}
fallback() { awk '/^thp_fault_fallback / { print $2 }' /proc/vmstat; }
run() {
	mark "$1-before" "$(blocks) $(fallback)"
	stress "$OPS" 192 >/dev/null || fail "integrity stress"
	# Small kernel allocations and frees between the rounds of user memory,
	# as a busy guest has (page tables, slab): the pageblocks they use are
	# the unmovable and reclaimable ones.
	i=0
	while [ $i -lt 20 ]; do
		ls -R /sys/kernel >/dev/null 2>&1
		i=$((i + 1))
	done
	stress "$OPS" 192 >/dev/null || fail "integrity stress"
	mark "$1-after" "$(blocks) $(fallback)"
}
MODE=none
for a in $(cat /proc/cmdline); do case $a in ph_mode=*) MODE=${a#*=} ;; esac; done
echo "pageblocks: unmovable movable reclaimable; thp_fault_fallback"
if [ "$MODE" = hinting ]; then
	load_hinting min_order=0 threshold_kb=4 flush_ms=1
	run hinting
	mark hinting-reported "$(stat reported_pages)"
	rmmod page_hinting || fail rmmod
else
	run none
fi
