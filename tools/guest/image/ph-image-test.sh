#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# make check-distro, Debian image (tools/image.sh): run by systemd once it
# has booted the guest (ph-image-test.service). page_hinting must have been
# loaded by the distribution's own mechanism, systemd-modules-load reading
# the package's /etc/modules-load.d/page-hinting.conf; then the 700 MiB
# free of check-e2e's free700 scenario must come back to the host. The
# guest's status goes to the host through isa-debug-exit.
T=/usr/local/lib/page-hinting-test
export PATH=$T:$PATH
(
	. $T/lib.sh
	echo "PH-INIT image: $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), init $(cat /proc/1/comm)"
	[ "$(cat /proc/1/comm)" = systemd ] || fail "init is $(cat /proc/1/comm), not systemd"
	systemctl is-active -q systemd-modules-load.service ||
		fail "systemd-modules-load: $(systemctl status systemd-modules-load.service 2>&1 | tail -n 5)"
	journalctl -b -o cat -t systemd-modules-load | grep -q "Inserted module 'page_hinting'" || {
		journalctl -b --no-pager | grep -i -E "modules-load|page_hinting"
		fail "systemd-modules-load did not load page_hinting"
	}
	grep -q '^page_hinting ' /proc/modules || fail "page_hinting not in /proc/modules"
	# udev loads virtio_balloon for the device; page_hinting reports
	# through it (transport=engine, the default), whichever came first.
	wait_for 120 "udev loading virtio_balloon" grep -q '^virtio_balloon ' /proc/modules
	wait_for 60 "the engine attaching the device" engine_active
	echo "transport: $(cat "$SYS/transport")"
	# Signed with the kernel's module key: out of tree (O), but not
	# unsigned (E).
	[ "$(cat /sys/module/page_hinting/taint)" = O ] ||
		fail "module taint '$(cat /sys/module/page_hinting/taint)', want O (signed, out of tree)"
	echo "signer: $(modinfo -F signer page_hinting)"
	v=$(dpkg-query -W -f '${Version}' page-hinting)
	[ "$(modinfo -F version page_hinting)" = "$v" ] ||
		fail "modinfo version '$(modinfo -F version page_hinting)', package version $v"
	n=$(modinfo -p page_hinting | grep -cE '^(threshold_kb|min_order|enabled|flush_ms|delay_ms|host_page_kb|transport):')
	[ "$n" = 7 ] || fail "modinfo -p page_hinting lists $n parameters: $(modinfo -p page_hinting)"
	mark loaded
	# The free700 scenario (tools/guest/scenarios/free700.sh).
	free_measured 700 161280
	modprobe -r page_hinting || fail "modprobe -r page_hinting"
	mark image-done
)
rc=$?
echo "PH-EXIT $rc"
ph-exit "$rc"
