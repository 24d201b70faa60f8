#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-distro: the series and the module on Debian's own kernel
# configurations (tools/kernel.sh distro|rt), not on the project's small
# test kernels. For each, build the kernel (cached like the others) and run
# the end-to-end smoke with the production build of the module: load and
# unload, the 700 MiB free, scattered frees at min_order=0 and 9, the
# integrity stress, reload under load.
#
# The guests run under single-threaded TCG (--tcg-single). Under QEMU 7.2's
# multi-threaded TCG, Debian's cloud kernel dies in the reload scenario with
# "Oops: int3" at a free_page_hint_key jump-label site that
# static_branch_enable() had just finished patching (4 of 4 runs, within 7
# load/unload cycles; free_unref_folios+0x32, free_unref_page+0x12c): a CPU
# executed the patch's temporary int3 after the final byte was written and
# every CPU had taken the sync IPI, which real hardware does not do and
# single-threaded TCG never showed (0 of 3). The project's own kernels
# never showed it under multi-threaded TCG, where the race tests run.
#
# Then the Debian 12 image (tools/image.sh): the packages of
# tools/packages.sh installed with dpkg, booted by systemd, the module
# loaded by systemd-modules-load, the 700 MiB free back on the host.
#
# Usage: tools/check-distro.sh [distro] [rt] [image]     (all by default)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SMOKE=(load-unload free700 scatter integrity reload)
flavours=("$@")
((${#flavours[@]})) || flavours=(distro rt image)

for v in "${flavours[@]}"; do
	case $v in distro | rt | image) ;; *) die "usage: $0 [distro] [rt] [image]" ;; esac
	if [[ $v == image ]]; then
		start=$SECONDS
		"$ROOT/tools/image.sh" >/dev/null
		info "Debian image ready ($((SECONDS - start)) s)"
		start=$SECONDS
		"$ROOT/tools/check-e2e.py" --image
		info "Debian image: passed ($((SECONDS - start)) s)"
		continue
	fi
	start=$SECONDS
	"$ROOT/tools/kernel.sh" "$v" >/dev/null
	info "$v kernel ready ($((SECONDS - start)) s)"
	start=$SECONDS
	"$ROOT/tools/check-e2e.py" --variant "$v" "${SMOKE[@]}"
	info "$v kernel: smoke passed ($((SECONDS - start)) s)"
done
info "check-distro: all passed (${flavours[*]})"
