# SPDX-License-Identifier: GPL-2.0
# check-e2e: a balloon device without a free page reporting queue (QEMU's
# free-page-reporting=off). page_hinting loads, refuses the device with one
# log line, says so in sysfs, reports nothing (and isolates nothing), and
# unloads cleanly; Linux's virtio_balloon can then bind the device.
. /scenarios/lib.sh
load_hinting
t=$(cat "$SYS/transport")
echo "transport: $t"
[ "$t" = "virtio-balloon no-reporting: the device does not offer free page reporting" ] ||
	fail "transport shows '$t', want no-reporting"
n=$(dmesg | grep -c "the device offers no free page reporting")
[ "$n" = 1 ] || fail "the refusal was logged $n times, want once"
memhog alloc-free 64 200 || fail memhog
# The worker has looked at the frees and turned them away.
wait_for 60 "the frees looked at" stat_above no_transport_pages 0
[ "$(stat reported_pages)" = 0 ] || fail "reported $(stat reported_pages) pages without a queue"
[ "$(stat isolated_total_pages)" = 0 ] || fail "isolated pages without a queue"
rmmod page_hinting || fail rmmod
insmod /lib/modules/virtio_balloon.ko || fail "insmod virtio_balloon"
ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio || fail "virtio_balloon bound no device"
mark refused
