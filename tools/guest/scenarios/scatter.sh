# SPDX-License-Identifier: GPL-2.0
# check-e2e: memory freed as scattered 4 KiB pages (every other page of a
# THP-backed 256 MiB mapping). With min_order=0 most of it goes back to the
# host; with the default min_order none of it is reported and the host keeps
# its huge pages.
. /scenarios/lib.sh

# scatter NAME: run memhog scatter; mark NAME-mid with the reported count 5 s
# after the scattered free, while the rest of the mapping is still held.
scatter() {
	rm -f /tmp/memhog.out
	memhog scatter 256 6000 | tee /tmp/memhog.out &
	i=0
	until grep -q freed-scattered /tmp/memhog.out 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "memhog never freed"
		sleep 0.1
	done
	sleep 5
	mark_reported "$1-mid"
	wait || fail memhog
}

# min_order=0 through sysfs (the knobs scenario covers the parameter).
load_hinting
echo 0 >"$SYS/min_order" || fail "min_order=0"
mark_reported o0-before
scatter o0
dump_stats
rmmod page_hinting || fail rmmod
sleep 1
load_hinting
mark_reported o9-before
scatter o9
rmmod page_hinting || fail rmmod
