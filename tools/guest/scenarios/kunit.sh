# SPDX-License-Identifier: GPL-2.0
# check-kunit: load the test build of the module; KUnit runs its suites at
# load and prints KTAP on the console, which the host parses. Then check that
# loading and unloading while memory is being freed leaks no page.
. /scenarios/lib.sh
load_engine
rmmod page_hinting || fail rmmod
mark kunit-done
# check-teeth's boots for one KUnit case need no leak cycles.
case " $(cat /proc/cmdline) " in *" ph.no_leakcheck "*) exit 0 ;; esac

# From here on KUnit must not run the suites again at each load.
echo 'page-hinting-none' >/sys/module/kunit/parameters/filter_glob ||
	fail "cannot set kunit.filter_glob"

# Unload with pending and in-flight batches: free memory must come back to
# its baseline (an isolated page never returned would be missing from it).
# Each cycle frees 2 x 48 MiB while the module is loaded. Even cycles unload
# once this load has sent a report (so every one of them has put isolated
# blocks back, however slow the guest is), odd ones at a different moment
# of the frees. A few cycles first let slab caches and per-CPU lists reach
# their steady size.
# Unloads in the middle of the frees on purpose: no audit before them.
cycles() {
	NO_AUDIT=1
	i=0
	while [ $i -lt "$1" ]; do
		insmod "$MOD" transport=virtio || fail "insmod $i"
		memhog alloc-free 48 0 >/dev/null &
		memhog alloc-free 48 0 >/dev/null &
		if [ $((i % 2)) -eq 0 ]; then
			wait_for 60 "a report in load/unload cycle $i" stat_above reports 0
		else
			sleep 0.$((i % 10 / 2))
		fi
		rmmod page_hinting || fail "rmmod $i"
		wait
		i=$((i + 1))
	done
	NO_AUDIT=
}
cycles 3
base=$(settle)
cycles 20
after=$(settle)
lost=$((base - after))
echo "PH-LEAKCHECK cycles=20 base_kib=$base after_kib=$after lost_kib=$lost"
[ "$lost" -lt 4096 ] || fail "free memory fell by $lost KiB over 20 load/unload cycles"
mark leakcheck-done
