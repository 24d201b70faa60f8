# SPDX-License-Identifier: GPL-2.0
# check-e2e (engine-balloon): virtio_balloon keeps ballooning while
# page_hinting reports through it (transport=engine). The host polls the
# balloon's statistics while the guest frees memory and page_hinting
# reports it; then it asks for a 256 MiB smaller guest (QMP balloon), the
# guest's MemTotal must fall by it, and come back when the host asks for the
# whole guest again; reporting goes on afterwards.
. /scenarios/lib.sh
load_balloon
load_engine
wait_for 60 "the engine attaching the device" engine_active
cat "$SYS/transport"

# Statistics while reporting: memhog frees in the background.
b=$(stat reported_pages)
memhog alloc-free 200 0 >/dev/null &
ask_host stats 300
wait || fail memhog
wait_for 120 "the 200 MiB reported" reported_since "$b" 40960
mark stats-reported

# Inflate by 256 MiB and deflate again.
m0=$(memtotal)
ask_host inflate 30
wait_for 300 "MemTotal 256 MiB lower" memtotal_below $((m0 - 250 * 1024))
mark inflated "$(memtotal)"
ask_host deflate 30
wait_for 300 "MemTotal back" memtotal_above $((m0 - 6 * 1024))
mark deflated "$(memtotal)"
engine_active || fail "after ballooning: $(cat "$SYS/transport")"

# Still reporting.
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports after ballooning" reported_since "$b" 20480
mark done
