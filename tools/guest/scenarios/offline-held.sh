# SPDX-License-Identifier: GPL-2.0
# check-e2e (debug kernel, test build, virtio-mem as in vmem): memory is
# offlined while the worker holds isolated blocks in it, deterministically.
# The test build's test_pause_scan makes the worker wait, holding what it
# isolated, before its next isolation; test_scan_from_pfn keeps it to the
# plugged memory. With the worker paused there, every plugged memory block
# is offlined in the background; once an offline is under way the worker
# goes on. The offline must finish: the worker must not isolate again
# while an offline that waits for its blocks holds memory hotplug's lock
# (with isolation taking that lock per call, the two wait for each other
# forever).
. /scenarios/lib.sh
# No lost-report audit: the test switches (test_scan_from_pfn,
# test_pause_scan) keep the worker's scans from most of memory on purpose.
NO_AUDIT=1
P=/sys/module/page_hinting/parameters
going_offline() { grep -q going-offline /sys/devices/system/memory/memory*/state; }
paused() { dmesg | grep -q "test: worker paused holding"; }
load_hinting min_order=0 threshold_kb=4 flush_ms=1
mt0=$(memtotal)
ask_host plug 60
wait_for 300 "512 MiB plugged" memtotal_above $((mt0 + 400 * 1024))
bs=$(printf '%d' "0x$(cat /sys/devices/system/memory/block_size_bytes)")
first=$(movable | head -n1)
[ -n "$first" ] || fail "no plugged memory block online"
pfn=$(($(printf '%d' "0x$(cat "$first/phys_index")") * bs / 4096))
echo "plugged memory from pfn $pfn"
echo "$pfn" >$P/test_scan_from_pfn
echo 1 >$P/test_pause_scan
# Most of the free memory, so that part of it is the plugged memory; every
# other page freed: each its own range, so the worker isolates again while
# it holds blocks.
mib=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) * 8 / 10 / 1024))
rm -f /tmp/memhog.out /tmp/release
MEMHOG_RELEASE=/tmp/release memhog scatter "$mib" 0 0 >/tmp/memhog.out &
wait_for 300 "the worker paused holding blocks of the plugged memory" paused
dmesg | grep "test: worker paused"
touch /tmp/release
wait || fail memhog
(for b in $(movable); do echo offline >"$b/state" 2>/dev/null; done) &
off=$!
wait_for 120 "an offline under way" going_offline
mark offline-started
echo 0 >$P/test_pause_scan
wait_for 120 "the offline, with the worker going on" gone $off
wait $off
wait_for 60 "no page isolated" stat_is isolated_pages 0
echo "offline finished; blocks now: $(cat /sys/devices/system/memory/memory*/state | sort | uniq -c | tr '\n' ' ')"
mark offline-held-done
rmmod page_hinting || fail rmmod
