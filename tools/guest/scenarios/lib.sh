# SPDX-License-Identifier: GPL-2.0
# Helpers for guest scenarios (sourced).
MOD=/lib/modules/page_hinting.ko

mark() { echo "PH-MARK $*"; }
fail() { echo "PH-FAIL $*"; exit 1; }

load_hinting() {
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
