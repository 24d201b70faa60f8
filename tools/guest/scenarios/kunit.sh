# SPDX-License-Identifier: GPL-2.0
# check-kunit: load the test build of the module; KUnit runs its suites at
# load and prints KTAP on the console, which the host parses.
. /scenarios/lib.sh
echo "KTAP version 1" >/dev/kmsg
load_hinting
rmmod page_hinting || fail rmmod
