# SPDX-License-Identifier: GPL-2.0
# check-e2e: the user interface. Module parameters (bad values fail the
# load with a message; transport=hypercall is refused on this host), every
# sysfs knob (valid values are taken and take effect, every kind of bad
# write gets EINVAL and leaves the value as it was, only root writes).
. /scenarios/lib.sh

expect_write() { # FILE BYTES WANT [UID]
	if [ -n "${4:-}" ]; then got=$(ph-write -u "$4" "$1" "$2"); else got=$(ph-write "$1" "$2"); fi
	[ "$got" = "$3" ] || fail "write '$2' to ${1##*/}: got '$got', want '$3'"
}
pending() { stat pending_pages; }
pending_below() { [ "$(pending)" -lt "$1" ]; }

# --- module parameters ---
for p in min_order=11 min_order=abc min_order=-1 threshold_kb=0 threshold_kb=3 \
	threshold_kb=1073741825 threshold_kb=18446744073709551616 enabled=2 enabled=yes \
	flush_ms=60001 flush_ms=1e3 delay_ms=1001 delay_ms=-5 settle_ms=10001 settle_ms=1s \
	transport=foo host_page_kb=3000 \
	host_page_kb=2 host_page_kb=2097152 host_page_kb=1048576; do
	out=$(insmod "$MOD" "$p" 2>&1) && fail "insmod $p loaded"
	echo "$out" | grep -q "Invalid argument" || fail "insmod $p: '$out', want Invalid argument"
done
dmesg | grep -q 'page_hinting: min_order="11" refused: value out of range 0..=10' ||
	fail "no log line for a bad parameter"
dmesg | grep -q 'page_hinting: host_page_kb="3000" refused: not a power of two' ||
	fail "no log line for host_page_kb=3000"
# Well-formed, but this 1 GiB guest cannot hold a 1 GiB host page aside.
dmesg | grep -q 'page_hinting: host_page_kb=1048576 refused: the guest.s [0-9]* KiB of RAM is less than 1.5 host pages; not loading' ||
	fail "no log line for host_page_kb=1048576 in a 1 GiB guest"
out=$(insmod "$MOD" transport=hypercall 2>&1) && fail "transport=hypercall loaded on QEMU"
echo "$out" | grep -q "No such device" || fail "transport=hypercall: '$out', want No such device"
dmesg | grep -q "transport=hypercall: the host does not offer" || fail "no hypercall log line"
mark params-refused

load_hinting threshold_kb=8192 min_order=3 flush_ms=250 delay_ms=20 settle_ms=250 enabled=0 \
	transport=virtio host_page_kb=2048
for kv in threshold_kb=8192 min_order=3 flush_ms=250 delay_ms=20 settle_ms=250 enabled=0 \
	host_page_kb=2048; do
	[ "$(cat "$SYS/${kv%=*}")" = "${kv#*=}" ] || fail "parameter $kv: knob shows $(cat "$SYS/${kv%=*}")"
done
grep -q "^virtio-balloon active$" "$SYS/transport" || fail "transport: $(cat "$SYS/transport")"
# The parameters, read-only in /sys/module, show the values in force, and
# modinfo lists each with a description.
PARAMS=/sys/module/page_hinting/parameters
params_show() { # NAME=VALUE...
	for kv in "$@"; do
		f=$PARAMS/${kv%=*}
		[ "$(cat "$f")" = "${kv#*=}" ] || fail "parameters/${kv%=*} shows '$(cat "$f")', want ${kv#*=}"
	done
}
params_show threshold_kb=8192 min_order=3 flush_ms=250 delay_ms=20 settle_ms=250 enabled=0 \
	transport=virtio host_page_kb=2048
for f in "$PARAMS"/*; do
	[ "$(busybox stat -c %a "$f")" = 444 ] || fail "${f##*/}: mode is not 0444"
done
expect_write "$PARAMS/threshold_kb" "4096" EACCES
# (busybox's modinfo wants a modules.dep, even for a file name; the Debian
# image of make check-distro runs kmod's.)
mkdir -p "/lib/modules/$(uname -r)" && touch "/lib/modules/$(uname -r)/modules.dep"
n=$(modinfo -p "$MOD" | grep -cE '^(threshold_kb|min_order|enabled|flush_ms|delay_ms|settle_ms|host_page_kb|transport):.{20,}')
[ "$n" = 8 ] || fail "modinfo -p lists $n described parameters, want 8: $(modinfo -p "$MOD")"
mark params-taken
# Every file, for the host to compare with the ABI document.
for f in "$SYS"/* "$SYS"/stats/* "$PARAMS"/*; do [ -f "$f" ] && echo "sysfs-file $f"; done

# --- every knob: valid values, bad writes, permissions ---
check_knob() { # KNOB "VALID..." "OUT-OF-RANGE..."
	k=$1 f=$SYS/$1
	for v in $2; do
		expect_write "$f" "$v\n" "ok $((${#v} + 1))"
		[ "$(cat "$f")" = "$v" ] || fail "$k: wrote $v, reads $(cat "$f")"
		expect_write "$f" "$v" "ok ${#v}"
	done
	old=$(cat "$f")
	for bad in $3 abc -1 +1 1e3 0x10 1.5 " 1" "1 " "1\t" "\n" "\n\n" "1\n\n" "1\nx" \
		"1\0" "\0" "1\r\n" 12abc 18446744073709551616 99999999999999999999999 "\xff"; do
		expect_write "$f" "$bad" EINVAL
		[ "$(cat "$f")" = "$old" ] || fail "$k: bad write '$bad' changed it to $(cat "$f")"
	done
	# A write of no bytes never reaches the knob (sysfs returns 0).
	expect_write "$f" "" "ok 0"
	[ "$(cat "$f")" = "$old" ] || fail "$k: an empty write changed it"
	expect_write "$f" "$old" EACCES 65534
	[ "$(cat "$f")" = "$old" ] || fail "$k: a non-root write changed it"
	[ "$(busybox stat -c %a "$f")" = 644 ] || fail "$k: mode is not 0644"
}
check_knob threshold_kb "4 1073741824 4096" "0 3 1073741825"
check_knob min_order "0 10 9" "11 4294967296"
check_knob enabled "0 1" "2"
check_knob flush_ms "0 60000 100" "60001"
check_knob delay_ms "0 1000 0" "1001"
check_knob settle_ms "0 10000 1000" "10001"
# Powers of two only; a host page this 1 GiB guest cannot set aside is
# refused with a reason in the log.
check_knob host_page_kb "2048 4096 1024 4" "0 2 3000 12 2097152 1048576"
dmesg | grep -q 'page_hinting: host_page_kb=1048576 refused: the guest.s [0-9]* KiB of RAM is less than 1.5 host pages$' ||
	fail "no log line for a refused host_page_kb write"
expect_write "$SYS/transport" "x" EACCES
expect_write "$SYS/stats/reported_pages" "0" EACCES
# Fuzz every store handler against a model of the grammar.
ph-fuzz "$SYS/threshold_kb" 4 1073741824 3000 1 || fail "fuzz threshold_kb"
ph-fuzz "$SYS/min_order" 0 10 3000 2 || fail "fuzz min_order"
ph-fuzz "$SYS/enabled" 0 1 1000 3 || fail "fuzz enabled"
ph-fuzz "$SYS/flush_ms" 0 60000 3000 4 || fail "fuzz flush_ms"
ph-fuzz "$SYS/delay_ms" 0 1000 2000 5 || fail "fuzz delay_ms"
ph-fuzz "$SYS/settle_ms" 0 10000 2000 6 || fail "fuzz settle_ms"
echo 4096 >"$SYS/threshold_kb"
echo 9 >"$SYS/min_order"
echo 1 >"$SYS/enabled"
echo 100 >"$SYS/flush_ms"
echo 0 >"$SYS/delay_ms"
echo 1000 >"$SYS/settle_ms"
# An accepted write shows in /sys/module too; a refused one in neither.
params_show threshold_kb=4096 min_order=9 flush_ms=100 delay_ms=0 settle_ms=1000 enabled=1 \
	host_page_kb=4
mark knobs-validated

# --- each knob takes effect ---
# enabled: paused, frees are not captured; resumed, they are.
echo 0 >"$SYS/enabled"
c0=$(stat captured_pages)
memhog alloc-free 32 100 >/dev/null || fail memhog
[ "$(stat captured_pages)" = "$c0" ] || fail "enabled=0: frees were captured"
echo 1 >"$SYS/enabled"
memhog alloc-free 32 100 >/dev/null || fail memhog
[ "$(stat captured_pages)" -gt "$((c0 + 8192))" ] || fail "enabled=1: 32 MiB of frees not captured"
# threshold_kb with no idle flush: a huge threshold leaves 64 MiB pending;
# 4096 KiB hands it off.
echo 0 >"$SYS/flush_ms"
echo 1073741824 >"$SYS/threshold_kb"
memhog alloc-free 64 100 >/dev/null || fail memhog
p=$(pending)
[ "$p" -ge 16384 ] || fail "threshold_kb=1073741824: only $p pages pending after a 64 MiB free"
# flush_ms: an idle flush takes what is pending.
b0=$(stat batches)
echo 100 >"$SYS/flush_ms"
wait_for 60 "flush_ms=100: an idle flush" pending_below 1024
p=$(pending)
echo "flush: batches $b0 -> $(stat batches), pending $p"
[ "$p" -lt 1024 ] || fail "flush_ms=100: $p pages still pending after 2 s"
echo 0 >"$SYS/flush_ms"
echo 4096 >"$SYS/threshold_kb"
memhog alloc-free 64 100 >/dev/null || fail memhog
p=$(pending)
[ "$p" -le 3072 ] || fail "threshold_kb=4096: $p pages pending after a 64 MiB free"
# samples/page-hinting-watch.sh tunes and watches; a bad value stops it.
timeout 3 page-hinting-watch.sh threshold_kb=2048 flush_ms=100 >/tmp/watch.out
cat /tmp/watch.out
grep -q "^threshold_kb=2048 min_order=9 enabled=1 flush_ms=100" /tmp/watch.out || fail "watch: knobs not set"
grep -q "reported_MiB" /tmp/watch.out || fail "watch: no table"
page-hinting-watch.sh min_order=11 2>/dev/null && fail "watch: took min_order=11"
[ "$(cat "$SYS/min_order")" = 9 ] || fail "watch: a refused value changed min_order"
echo 4096 >"$SYS/threshold_kb"
# min_order takes effect: the scatter scenario sets it here (0 vs 9).
mark knobs-effective
rmmod page_hinting || fail rmmod
