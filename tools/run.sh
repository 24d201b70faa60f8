#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make run: install what is missing, build, boot the guest with page_hinting
# loaded, allocate and free 400 MiB in it, and show the host's view of the
# QEMU process's memory over time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$ROOT/tools/deps.sh"
kbuild=$("$ROOT/tools/kernel.sh" normal)
initrd=$("$ROOT/tools/initramfs.sh" normal)
mkdir -p "$OUT"
rc=0
"$ROOT/tools/run-guest.py" --kernel "$kbuild/arch/x86/boot/bzImage" --initrd "$initrd" \
	--scenario demo --timeout 300 --json "$OUT/demo.json" "$@" || rc=$?
echo
"$ROOT/tools/rss-trace.py" "$OUT/demo.json"
exit $rc
