#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Tune page_hinting and watch what it reports, once a second.
#
#   samples/page-hinting-watch.sh [KNOB=VALUE...]
#
# e.g. samples/page-hinting-watch.sh min_order=0 threshold_kb=2048
D=/sys/kernel/mm/page_hinting
[ -d $D ] || { echo "page_hinting is not loaded" >&2; exit 1; }
for kv in "$@"; do
	k=${kv%%=*} v=${kv#*=}
	if ! echo "$v" >"$D/$k"; then
		echo "$k: '$v' refused (see Documentation/ABI/testing/sysfs-kernel-mm-page_hinting)" >&2
		exit 1
	fi
done
echo "threshold_kb=$(cat $D/threshold_kb) min_order=$(cat $D/min_order)" \
	"enabled=$(cat $D/enabled) flush_ms=$(cat $D/flush_ms) delay_ms=$(cat $D/delay_ms)"
echo "transport: $(cat $D/transport)"
s() { cat "$D/stats/$1"; }
prev=$(s reported_pages)
printf '%8s %12s %12s %10s %10s %10s\n' secs reported_MiB MiB/s pending isolated overflow
t=0
while :; do
	sleep 1
	t=$((t + 1))
	cur=$(s reported_pages)
	printf '%8d %12d %12d %10d %10d %10d\n' $t $((cur / 256)) $(((cur - prev) / 256)) \
		"$(s pending_pages)" "$(s isolated_pages)" "$(s overflow_pages)"
	prev=$cur
done
