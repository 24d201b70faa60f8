# SPDX-License-Identifier: GPL-2.0
# check-e2e: memory freed as scattered 4 KiB pages (every other page of a
# THP-backed 256 MiB mapping). With min_order=0 most of it goes back to the
# host; with the default min_order none of it is reported and the host keeps
# its huge pages.
. /scenarios/lib.sh

# scatter NAME [ASK]: run memhog scatter; once the scattered free is done
# and dealt with (where memory is expected back, the host's answer to ASK:
# its RSS fell by what the check asks for; else reporting settled), mark
# NAME-mid with the reported count while the rest of the mapping is still
# held, then let memhog free the rest. (The guest's own count is no
# measure of the scattered pages: it also counts other free memory the
# worker reports meanwhile.)
scatter() {
	rm -f /tmp/memhog.out /tmp/release
	MEMHOG_RELEASE=/tmp/release memhog scatter 256 0 1000 | tee /tmp/memhog.out &
	wait_for 120 "memhog's scattered free" grep -q freed-scattered /tmp/memhog.out
	if [ -n "$2" ]; then
		ask_host "$2" 180
	else
		wait_for 120 "reporting settled" settled
	fi
	mark_reported "$1-mid"
	touch /tmp/release
	wait || fail memhog
}

# min_order=0 through sysfs (the knobs scenario covers the parameter).
load_hinting
echo 0 >"$SYS/min_order" || fail "min_order=0"
mark_reported o0-before
# 75% of the 128 MiB scattered back on the host (check-e2e.py: --on
# o0-back=rss-fall:scattering:96:...), what the host check asks for.
scatter o0 o0-back
dump_stats
rmmod page_hinting || fail rmmod
load_hinting
mark_reported o9-before
scatter o9
rmmod page_hinting || fail rmmod
