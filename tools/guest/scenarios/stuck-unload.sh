# SPDX-License-Identifier: GPL-2.0
# check-e2e (debug kernel, test build): a host that never answers a report
# must not hang the unload. The test build's test_stall_host=1 makes the
# transport ignore the device's answers until the device is reset. A report
# waits for the host with its pages isolated; an enabled=0 write waits for
# the worker; then rmmod must finish (the device reset ends the report, the
# write returns, sysfs goes) and leave nothing isolated.
. /scenarios/lib.sh
load_hinting test_stall_host=1 min_order=0 flush_ms=1
memhog alloc-free 64 100 >/dev/null || fail memhog
wait_for 60 "a report waiting for the host" stat_above isolated_pages 0
echo 0 >"$SYS/enabled" &
w=$!
wait_for 60 "the enabled=0 write waiting for the worker" blocked $w
mark stuck "$(stat isolated_pages)"
rmmod page_hinting &
r=$!
wait_for 120 "rmmod with a host that never answers" gone $r
wait $r || fail "rmmod failed"
wait $w
grep -q '^page_hinting ' /proc/modules && fail "page_hinting still loaded"
dmesg | grep -q "pages still isolated at unload" && fail "pages left isolated at unload"
mark stuck-unload-done
