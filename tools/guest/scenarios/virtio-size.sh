# SPDX-License-Identifier: GPL-2.0
# check-e2e (virtio-size): page_hinting's own virtio-balloon driver
# (transport=virtio) does not balloon. When the host asks for a balloon
# size it says so in the log, once however often the host asks, pointing
# to the engine mode, and it goes on reporting.
. /scenarios/lib.sh
load_hinting
logged() { [ "$(dmesg | grep -c 'does not serve')" -ge 1 ]; }
# A balloon of 256 MiB, then of 384 MiB: two configuration changes. The
# host answers after QEMU raised the change, so both have reached the
# driver before the count below.
ask_host inflate 30
wait_for 60 "the balloon size logged" logged
ask_host inflate2 30
b=$(stat reported_pages)
memhog alloc-free 100 0 || fail memhog
wait_for 120 "reports after the balloon request" reported_since "$b" 20480
n=$(dmesg | grep -c 'does not serve')
[ "$n" -eq 1 ] || fail "the balloon size was logged $n times"
dmesg | grep 'does not serve' | grep -q 'transport=engine' ||
	fail "the log line does not point to the engine mode"
mark size-logged-once
