# SPDX-License-Identifier: GPL-2.0
# make bench: one configuration, one workload (tools/bench.py). From the
# kernel command line:
#   ph_bench.conf=none|linux|ph|engine
#                                  nothing bound / Linux's virtio_balloon
#                                  (its own free page reporting) / page_hinting
#                                  driving the device (transport=virtio) /
#                                  page_hinting reporting through virtio_balloon
#                                  (transport=engine); both with their
#                                  ph_param.KNOB=VALUE settings
#   ph_bench.work=bigfree|scatter|pagecache|churn|pagefault|hugefree|phases|holds
#   ph_bench.mib=MIB               hugefree: MiB freed at once (700)
#   ph_bench.window=SECONDS        how long the host watches after the free
#   ph_bench.seconds=SECONDS       one throughput segment
#   ph_bench.span=SECONDS          phases: how long the pattern runs (48)
#   ph_bench.offset=SECONDS        phases: when its first cycle begins (0)
#   ph_bench.pairs=N               throughput: N pairs of segments, one with
#                                  nothing loaded, one with the configuration
#                                  loaded (a paired comparison in one boot:
#                                  runs under emulation differ by about 10%
#                                  from one boot to the next)
# Marks: "freeing" right before the memory is freed, "stats-before" and
# "stats-after" with page_hinting's reports, ranges, pages, worker busy
# time (us), longest zone-lock hold and free-hook interrupts-off time (ns,
# maxima since the load), worker CPU time (us), "thr-off V"
# and "thr-on V" per throughput segment; "holds" (work=holds) with the
# kernel's longest zone lock holds by reporting and by the free path
# (CONFIG_PAGE_REPORTING_STATS) since the load, then page_hinting's
# zone_lock_max_ns and free_irqoff_max_ns (ns, "-" where there is none).
. /scenarios/lib.sh

arg() { sed -n "s/.*ph_bench\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
conf=$(arg conf)
work=$(arg work)
window=$(arg window)
seconds=$(arg seconds)
pairs=$(arg pairs)
: "${window:=10}" "${seconds:=5}" "${pairs:=2}"

load() {
	case $conf in
	none) mark loaded ;;
	linux)
		insmod /lib/modules/virtio_balloon.ko || fail "insmod virtio_balloon"
		mark loaded "$(cat /sys/module/page_reporting/parameters/page_reporting_order)"
		;;
	ph) load_hinting ;;
	engine)
		balloon_bound || load_balloon
		load_engine
		wait_for 60 "the engine attaching the device" engine_active
		;;
	*) fail "ph_bench.conf=$conf" ;;
	esac
}

unload() {
	case $conf in
	linux) rmmod virtio_balloon || fail "rmmod virtio_balloon" ;;
	ph) rmmod page_hinting || fail "rmmod page_hinting" ;;
	engine)
		rmmod page_hinting || fail "rmmod page_hinting"
		rmmod virtio_balloon || fail "rmmod virtio_balloon"
		;;
	esac
	sleep 1
}

counts() {
	if [ -d "$SYS" ]; then
		echo "$(stat reports) $(stat reported_ranges) $(stat reported_pages) $(stat worker_busy_us)" \
			"$(stat zone_lock_max_ns) $(stat free_irqoff_max_ns) $(stat worker_cpu_us)"
	else
		echo "- - - - - - -"
	fi
}

# The kernel's maxima ($KSTAT), reset once the configuration is loaded.
reset_holds() {
	for f in report_lock_max_ns free_lock_max_ns; do
		echo 0 >"$KSTAT/$f" || fail "CONFIG_PAGE_REPORTING_STATS: no $KSTAT/$f"
	done
}
holds() {
	h="$(cat "$KSTAT/report_lock_max_ns") $(cat "$KSTAT/free_lock_max_ns")"
	if [ -d "$SYS" ]; then
		echo "$h $(stat zone_lock_max_ns) $(stat free_irqoff_max_ns)"
	else
		echo "$h - -"
	fi
}

# seg PROGRAM RESULT-MARK: one throughput segment; prints its figure, or
# fails (in the command substitution the caller runs it in).
seg() {
	v=$($1 "$seconds" | sed -n "s/^PH-MARK $2 \([^ ]*\).*/\1/p")
	[ -n "$v" ] || exit 1
	echo "$v"
}

# throughput PROGRAM RESULT-MARK: a warm-up segment (the first touch of
# guest memory makes the host fault it in), then pairs of segments in the
# order off on, on off, off on... (drift cancels out).
throughput() {
	seg "$1" "$2" >/dev/null || fail "$1"
	state=off
	i=0
	while [ $i -lt "$pairs" ]; do
		if [ $((i % 2)) -eq 0 ]; then order="off on"; else order="on off"; fi
		for s in $order; do
			if [ $s = on ] && [ $state = off ]; then
				load
			elif [ $s = off ] && [ $state = on ]; then
				unload
			fi
			state=$s
			[ $s = on ] && mark thr-stats0 "$(counts)"
			v=$(seg "$1" "$2") || fail "$1"
			mark thr-$s "$v"
			[ $s = on ] && mark thr-stats "$(counts)"
		done
		i=$((i + 1))
	done
	[ $state = off ] && load
}

case $work in
churn | pagefault) ;;
*) load ;;
esac

# Let the boot's own frees settle (and be reported) before measuring.
sleep 2
mark stats-before "$(counts)"
case $work in
bigfree)
	memhog alloc-free 700 1000 || fail memhog
	sleep "$window"
	;;
hugefree)
	# bigfree's free on a guest whose RAM is on host huge pages (the
	# host reads its hugetlb pool), with what page_hinting reported
	mib=$(arg mib)
	memhog alloc-free "${mib:-700}" 1000 || fail memhog
	sleep "$window"
	[ -d "$SYS" ] && mark host-pages "$(stat host_pages_reported)"
	;;
scatter)
	# every other 4 KiB page of 256 MiB, held for the window, then the rest
	memhog scatter 256 $((window * 1000)) 1000 || fail memhog
	;;
pagecache)
	# Held open: the last close of a block device drops its page cache.
	exec 3</dev/vda
	dd if=/dev/vda of=/dev/null bs=1M count=400 2>/dev/null || fail "reading /dev/vda"
	grep -E '^(Cached|Buffers):' /proc/meminfo
	sleep 1
	mark freeing 400
	echo 1 >/proc/sys/vm/drop_caches
	mark freed 400
	sleep "$window"
	exec 3<&-
	;;
phases)
	# tools/guest/phases.c: a repeating allocate/hold/free pattern of THP,
	# 4 KiB pages and page cache (of /dev/vda)
	span=$(arg span)
	offset=$(arg offset)
	phases "${span:-48}" "${offset:-0}" /dev/vda 128 || fail phases
	;;
churn) throughput churn churn-result ;;
pagefault) throughput pagefault pf-result ;;
holds)
	# bench.py boots this one with a single vCPU under instruction
	# counting: an interrupts-off section's length is then the
	# instructions it ran, never another vCPU's time slice. The
	# page-fault loop, then bigfree's free of 700 MiB at once.
	reset_holds
	pagefault "$seconds" >/dev/null || fail pagefault
	memhog alloc-free 700 1000 || fail memhog
	sleep "$window"
	mark holds "$(holds)"
	;;
*) fail "ph_bench.work=$work" ;;
esac
mark stats-after "$(counts)"
case $conf in ph | engine) dump_stats ;; esac
exit 0
