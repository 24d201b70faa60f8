# SPDX-License-Identifier: GPL-2.0
# check-e2e: the device goes away while reports are in flight (the driver
# is unbound, the path a device removal takes), then comes back. No page may
# stay isolated, the free path goes on, and reporting resumes on rebind.
. /scenarios/lib.sh
D=/sys/bus/virtio/drivers/page_hinting
load_hinting
dev=$(ls "$D" | grep '^virtio' | head -n1)
[ -n "$dev" ] || fail "page_hinting bound no virtio device"
# Free memory continuously while the device goes.
(while :; do memhog alloc-free 32 0 >/dev/null || exit 1; done) &
churn=$!
wait_for 60 "a report before the unbind" stat_above reported_pages 0
r0=$(stat reported_pages)
echo "$dev" >"$D/unbind" || fail unbind
grep -q "^virtio-balloon no-device" "$SYS/transport" || fail "transport: $(cat "$SYS/transport")"
c0=$(stat captured_pages)
wait_for 60 "the free path after the unbind" stat_above captured_pages "$c0"
[ "$(stat isolated_pages)" = 0 ] || fail "$(stat isolated_pages) pages isolated with no device"
mark unbound
r1=$(stat reported_pages)
echo "$dev" >"$D/bind" || fail bind
grep -q "^virtio-balloon active" "$SYS/transport" || fail "rebind: $(cat "$SYS/transport")"
wait_for 60 "a report after the rebind" stat_above reported_pages "$r1"
mark rebound
kill $churn
wait $churn 2>/dev/null
rmmod page_hinting || fail rmmod
dmesg | grep -q "pages still isolated at unload" && fail "pages left isolated at unload"
mark done
