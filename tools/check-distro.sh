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
# Usage: tools/check-distro.sh [distro] [rt]     (both by default)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SMOKE=(load-unload free700 scatter integrity reload)
flavours=("$@")
((${#flavours[@]})) || flavours=(distro rt)

for v in "${flavours[@]}"; do
	case $v in distro | rt) ;; *) die "usage: $0 [distro] [rt]" ;; esac
	start=$SECONDS
	"$ROOT/tools/kernel.sh" "$v" >/dev/null
	info "$v kernel ready ($((SECONDS - start)) s)"
	start=$SECONDS
	"$ROOT/tools/check-e2e.py" --variant "$v" "${SMOKE[@]}"
	info "$v kernel: smoke passed ($((SECONDS - start)) s)"
done
info "check-distro: all passed (${flavours[*]})"
