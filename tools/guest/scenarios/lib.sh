# SPDX-License-Identifier: GPL-2.0
# Helpers for guest scenarios (sourced).
MOD=/lib/modules/page_hinting.ko
# ph.audit on the kernel command line (make check's scenarios): the audit
# build of the module (tools/module.sh audit), where there is one.
# ph.no_audit: no lost-report audit in this boot (the debug guest's
# integrity stress of check-kunit, for issue 38's open finding).
_cmdline=" $(cat /proc/cmdline) "
case $_cmdline in
*" ph.audit "*) [ -f /lib/modules/page_hinting-audit.ko ] && MOD=/lib/modules/page_hinting-audit.ko ;;
esac
case $_cmdline in *" ph.no_audit "*) NO_AUDIT=1 ;; esac

mark() { echo "PH-MARK $*"; }
# fail WHAT: says so, with what explains it: the module's statistics and
# the buddy allocator's free blocks.
fail() {
	echo "PH-FAIL $*"
	if [ -d /sys/kernel/mm/page_hinting/stats ]; then
		for f in /sys/kernel/mm/page_hinting/stats/*; do
			echo "PH-FAIL-STAT ${f##*/} $(cat "$f" 2>/dev/null)"
		done
	fi
	sed 's/^/PH-FAIL-BUDDYINFO /' /proc/buddyinfo
	exit 1
}

# The lost-report audit (audit builds, hinting/audit.rs): waits until the
# worker is idle, then fails, naming the blocks in the log, if any memory
# the module was told was freed is still free and unreported. Runs at
# every unload of page_hinting (the rmmod below) and at the end of the
# scenario (init), unless the scenario set NO_AUDIT (its unloads come in
# the middle of its frees on purpose) or the boot has ph.no_audit.
AUDIT=/sys/kernel/mm/page_hinting/test/audit
audit() {
	[ -e "$AUDIT" ] && [ -z "${NO_AUDIT:-}" ] || return 0
	echo 1 >"$AUDIT" 2>/dev/null || {
		dmesg | grep 'audit: ' | tail -n 20
		fail "lost-report audit: $(cat "$AUDIT") free blocks were never reported ($1)"
	}
	echo "PH-AUDIT ok ($1): $(dmesg | grep 'audit: order' | tail -n1 | sed 's/.*audit: //')"
}
rmmod() {
	if [ "$1" = page_hinting ] && grep -q '^page_hinting ' /proc/modules; then
		audit "before rmmod"
	fi
	command rmmod "$@"
}

# load_hinting [PARAM=VALUE...]: also takes ph_param.PARAM=VALUE from the
# kernel command line (benchmarks and sweeps set knobs that way). Without a
# transport= it loads page_hinting's own virtio driver (transport=virtio),
# which the scenarios written for it need; the default, transport=engine,
# is what the engine-* scenarios load (load_engine).
load_hinting() {
	for a in $(cat /proc/cmdline); do
		case $a in ph_param.*) set -- "$@" "${a#ph_param.}" ;; esac
	done
	case " $* " in *" transport="*) ;; *) set -- transport=virtio "$@" ;; esac
	insmod "$MOD" "$@" || fail "insmod page_hinting $*"
	grep -q '^page_hinting ' /proc/modules || fail "page_hinting not in /proc/modules"
	mark loaded
}

free_kib() { awk '/^MemFree:/ { print $2 }' /proc/meminfo; }

SYS=/sys/kernel/mm/page_hinting
# The kernel's longest zone lock holds (patches/0011,
# CONFIG_PAGE_REPORTING_STATS): report_lock_max_ns, free_lock_max_ns
KSTAT=/sys/module/page_reporting/parameters
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

# Tests wait for events, never for a fixed time: the machine may be faster,
# slower or busier than the one the test was written on.
#
# wait_for LIMIT WHAT CMD...: poll every 0.1 s until CMD succeeds. LIMIT
# (seconds of polling) only decides how long a failing run takes to say
# so; a passing run goes on as soon as the event happens, so it is set
# far above any passing run (tens of times what this project's machines
# take), never tuned to one machine.
wait_for() {
	_lim=$1 _what=$2
	shift 2
	_n=0
	until "$@"; do
		_n=$((_n + 1))
		[ $_n -le $((_lim * 10)) ] || fail "$_what: not within ${_lim} s"
		sleep 0.1
	done
}
# reported_since BASE PAGES: at least PAGES pages reported since BASE.
reported_since() { [ $(($(stat reported_pages) - $1)) -ge "$2" ]; }
# stat_above NAME VALUE: the statistic NAME is above VALUE.
stat_above() { [ "$(stat "$1")" -gt "$2" ]; }
# stat_is NAME VALUE: the statistic NAME is VALUE.
stat_is() { [ "$(stat "$1")" = "$2" ]; }
# settled: nothing isolated, and the reported count stood still for a
# second: ten times the idle flush (flush_ms, 100 ms by default, which the
# knobs scenario checks is kept), so whatever the frees so far made
# reportable has been reported. (Pending pages are no measure: the polling
# shell's own forks free pages all the time.) Used after a workload's own
# reports are in, where a reported-pages threshold comes first, and where
# a check needs nothing more on the way.
settled() {
	_r=$(stat reported_pages)
	[ "$(stat isolated_pages)" = 0 ] || return 1
	sleep 1
	[ "$(stat isolated_pages)" = 0 ] && [ "$(stat reported_pages)" = "$_r" ]
}
# ask_host NAME LIMIT: mark NAME and wait for the runner's answer to it
# (run-guest.py --on NAME=...); fail unless the answer is "done". A name
# may be asked again: each mark gets its own answer.
answers() { grep -c "^$1 " /tmp/host 2>/dev/null; }
answered() { [ "$(answers "$1")" -gt "$2" ]; }
# answer_whole NAME: the last answer to NAME has arrived whole (init's cat
# copies the serial port as it comes, so a line can be read half written:
# "inflate2 do").
answer_whole() { grep "^$1 " /tmp/host | tail -n1 | grep -Eq "^$1 (done|timeout|error.*)\$"; }
ask_host() {
	_a=$(answers "$1")
	mark "$1"
	wait_for "$2" "the host's answer to $1" answered "$1" "$_a"
	wait_for 10 "the whole of the host's answer to $1" answer_whole "$1"
	grep "^$1 " /tmp/host | tail -n1 | grep -q "^$1 done" ||
		fail "the host answered $(grep "^$1 " /tmp/host | tail -n1)"
}
# gone PID: the process has ended (a zombie counts: it ran to its end).
gone() {
	_s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -z "$_s" ] || [ "$_s" = Z ]
}
# blocked PID: the process sleeps uninterruptibly (waits in the kernel).
blocked() { [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = D ]; }
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
memtotal_above() { [ "$(memtotal)" -gt "$1" ]; }
memtotal_below() { [ "$(memtotal)" -lt "$1" ]; }
# movable: the online memory blocks in ZONE_MOVABLE (hot-plugged memory
# onlined with memhp_default_state=online_movable; boot memory is not).
movable() {
	for b in /sys/devices/system/memory/memory*; do
		[ "$(cat "$b/state")" = online ] && grep -q Movable "$b/valid_zones" && echo "$b"
	done
}

# stress_ops: operations per stress thread, 1500 unless the kernel command
# line says ph_stress_ops=N (make soak passes a larger one).
stress_ops() {
	_ops=1500
	for a in $(cat /proc/cmdline); do case $a in ph_stress_ops=*) _ops=${a#*=} ;; esac; done
	echo "$_ops"
}

# stress_start MIB: the integrity stress in rounds (200 operations per CPU,
# MIB each) in the background until stress_stop WHAT, which fails, saying
# during WHAT, if any round found a page changed under it.
stress_start() {
	rm -f /tmp/stop
	(
		while [ ! -f /tmp/stop ]; do
			stress 200 "$1" >/tmp/stress.out || { cat /tmp/stress.out; exit 1; }
		done
	) &
	STRESS_PID=$!
}
stress_stop() {
	touch /tmp/stop
	wait "$STRESS_PID" || fail "integrity stress failed $1"
}

# free_measured MIB PAGES: the free700 flow. memhog allocates MIB MiB of
# THP-backed memory; once reporting has settled the guest marks "before"
# and lets memhog free it all at once, waits until PAGES pages were
# reported since, then until nothing more is on the way, marks "after" and
# dumps the statistics. Counted from right before the free: while memhog
# faults its memory in, the kernel may free and report other memory
# (compaction for its huge pages, reclaim) that memhog then takes again,
# which the host never sees fall (seen on Debian's RT kernel: 224 MiB of
# such reports).
free_measured() {
	rm -f /tmp/mh-ready /tmp/mh-go
	MEMHOG_READY=/tmp/mh-ready MEMHOG_RELEASE=/tmp/mh-go memhog alloc-free "$1" &
	_hog=$!
	wait_for 300 "$1 MiB allocated" test -e /tmp/mh-ready
	wait_for 120 "reporting settled before the free" settled
	mark_reported before
	_b=$(stat reported_pages)
	touch /tmp/mh-go
	wait $_hog || fail memhog
	wait_for 120 "$2 pages reported" reported_since "$_b" "$2"
	wait_for 120 "reporting settled" settled
	mark_reported after
	dump_stats
}

# The engine mode (transport=engine, the default): Linux's virtio_balloon
# owns the device and page_hinting reports through its page reporting
# callback.
VB=/lib/modules/virtio_balloon.ko
# load_balloon: insmod virtio_balloon and wait for it to bind the device.
load_balloon() {
	insmod "$VB" || fail "insmod virtio_balloon"
	wait_for 60 "virtio_balloon binding the device" balloon_bound
}
balloon_bound() { ls /sys/bus/virtio/drivers/virtio_balloon 2>/dev/null | grep -q '^virtio'; }
# load_engine [PARAM=VALUE...]: page_hinting with the default transport.
load_engine() { load_hinting transport=engine "$@"; }
engine_active() { grep -q '^engine active' "$SYS/transport"; }
engine_waiting() { grep -q '^engine waiting' "$SYS/transport"; }
