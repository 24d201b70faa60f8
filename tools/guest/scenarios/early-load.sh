# SPDX-License-Identifier: GPL-2.0
# check-e2e (early-load): virtio_balloon and page_hinting loaded at the very
# start of init, as systemd-modules-load does within a second or two of
# boot, while the clocksource and much else still settle, and 100 MiB of
# THP-backed memory freed at once. All of it must be reported, and the
# lost-report audit at the end finds nothing forgotten (issue 38: freed
# THP blocks stayed on a per-CPU list through their retry rounds, were
# given up before any drain, and were never reported).
. /scenarios/lib.sh
load_balloon
load_engine
wait_for 60 "the engine attaching the device" engine_active
mark early-loaded "$(cut -d' ' -f1 /proc/uptime)"
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports after the early free" reported_since "$b" 20480
mark early-done
