# SPDX-License-Identifier: GPL-2.0
# The module loads, says its version, and unloads cleanly, ten times over.
. /scenarios/lib.sh
i=0
while [ $i -lt 10 ]; do
	insmod "$MOD" transport=virtio || fail "insmod $i"
	rmmod page_hinting || fail "rmmod $i"
	i=$((i + 1))
done
n=$(dmesg | grep -c 'page_hinting: version .* loaded')
[ "$n" -eq 10 ] || fail "expected 10 load messages, saw $n"
mark cycles 10
