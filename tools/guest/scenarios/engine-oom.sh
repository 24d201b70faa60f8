# SPDX-License-Identifier: GPL-2.0
# check-e2e (engine-oom, QEMU's deflate-on-oom=on): with page_hinting
# reporting through virtio_balloon, the host inflates the balloon to leave
# the guest 384 MiB; a program then needs 512 MiB, and virtio_balloon's OOM
# notifier deflates the balloon instead of the OOM killer killing it. The
# host sees the balloon give memory back; reporting goes on.
. /scenarios/lib.sh
load_balloon
load_engine
wait_for 60 "the engine attaching the device" engine_active
ask_host inflate 30
ask_host inflated 300
mark pressure
memhog alloc-free 512 0 || fail "memhog 512 MiB with the balloon inflated"
ask_host deflated 60
engine_active || fail "after the OOM deflate: $(cat "$SYS/transport")"
dmesg | grep -q "Out of memory: Killed" && fail "the OOM killer ran"
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports after the deflate" reported_since "$b" 20480
mark done
