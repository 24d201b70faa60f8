# SPDX-License-Identifier: GPL-2.0
# check-e2e: the comparison path: Linux's own virtio_balloon with free page
# reporting binds the device instead of page_hinting, and memory still goes
# back to the host.
. /scenarios/lib.sh
insmod /lib/modules/virtio_balloon.ko || fail "insmod virtio_balloon"
[ -d /sys/bus/virtio/drivers/virtio_balloon ] || fail "virtio_balloon driver not registered"
ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio || fail "virtio_balloon bound no device"
mark loaded
memhog alloc-free 400 1500 || fail memhog
# The guest cannot see what Linux reported: the host says when half of the
# 400 MiB is back (check-e2e.py: --on fallen=rss-fall:freeing:200:...).
ask_host fallen 300
mark done
