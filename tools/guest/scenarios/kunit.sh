# SPDX-License-Identifier: GPL-2.0
# check-kunit: load the test build of the module; KUnit runs its suites at
# load and prints KTAP on the console, which the host parses. Then check that
# loading and unloading while memory is being freed leaks no page.
. /scenarios/lib.sh
echo "KTAP version 1" >/dev/kmsg
load_hinting
rmmod page_hinting || fail rmmod
mark kunit-done

# Unload with pending and in-flight batches: free memory must come back to
# its baseline (an isolated page never returned would be missing from it).
settle() { sync; echo 3 >/proc/sys/vm/drop_caches; sleep 1; free_kib; }
base=$(settle)
i=0
while [ $i -lt 20 ]; do
	insmod "$MOD" || fail "insmod $i"
	memhog alloc-free 48 0 >/dev/null &
	memhog alloc-free 48 0 >/dev/null &
	sleep 0.$((i % 5))
	rmmod page_hinting || fail "rmmod $i"
	wait
	i=$((i + 1))
done
after=$(settle)
lost=$((base - after))
echo "PH-LEAKCHECK cycles=$i base_kib=$base after_kib=$after lost_kib=$lost"
[ "$lost" -lt 4096 ] || fail "free memory fell by $lost KiB over $i load/unload cycles"
mark leakcheck-done
