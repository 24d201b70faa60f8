# SPDX-License-Identifier: GPL-2.0
# Helpers for guest scenarios (sourced).
MOD=/lib/modules/page_hinting.ko

mark() { echo "PH-MARK $*"; }
fail() { echo "PH-FAIL $*"; exit 1; }

# load_hinting [PARAM=VALUE...]: also takes ph_param.PARAM=VALUE from the
# kernel command line (benchmarks and sweeps set knobs that way).
load_hinting() {
	for a in $(cat /proc/cmdline); do
		case $a in ph_param.*) set -- "$@" "${a#ph_param.}" ;; esac
	done
	insmod "$MOD" "$@" || fail "insmod page_hinting $*"
	grep -q '^page_hinting ' /proc/modules || fail "page_hinting not in /proc/modules"
	mark loaded
}

free_kib() { awk '/^MemFree:/ { print $2 }' /proc/meminfo; }

SYS=/sys/kernel/mm/page_hinting
stat() { cat "$SYS/stats/$1"; }
# mark NAME with the current reported_pages count
mark_reported() { mark "$1" "$(stat reported_pages)"; }
dump_stats() { for f in "$SYS"/stats/*; do echo "stat ${f##*/} $(cat "$f")"; done; }
# Free memory after dropping caches, counting the pages on the per-CPU free
# lists too (MemFree does not, and their fill varies by megabytes from one
# moment to the next): the leak checks compare it before and after.
settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	pcp=$(awk '$1 == "count:" { s += $2 } END { print s * 4 }' /proc/zoneinfo)
	echo $(($(free_kib) + pcp))
}
