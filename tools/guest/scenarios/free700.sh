# SPDX-License-Identifier: GPL-2.0
# check-e2e: the guest frees 700 MiB of THP-backed anonymous memory at once;
# the host must get at least 90% of it back, and the guest's count of
# reported pages must agree with what the host saw. With ph_mode=engine on
# the kernel command line (engine-free700), Linux's virtio_balloon owns the
# device and page_hinting reports through it (transport=engine).
. /scenarios/lib.sh
if grep -qw ph_mode=engine /proc/cmdline; then
	load_balloon
	load_engine
	wait_for 60 "the engine attaching the device" engine_active
else
	load_hinting
fi
cat "$SYS/transport"
# The reports of 90% of it (161280 pages), then nothing more on the way:
# the host's view is read at the next mark.
free_measured 700 161280
rmmod page_hinting || fail rmmod
