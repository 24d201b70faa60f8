# SPDX-License-Identifier: GPL-2.0
# tools/profile.py: one configuration under the instruction profile. From
# the kernel command line:
#   ph_prof.conf=none|ph           nothing loaded / page_hinting (with its
#                                  ph_param.KNOB=VALUE settings)
#   ph_prof.work=pagefault|churn   the workload profiled
#   ph_prof.seconds=SECONDS        how long it runs between the two marks
# The workload runs once before the module is loaded and once after (the
# guest's memory faulted in, the module's first reports done), then runs
# again between two profmark calls, the window the profile covers. The
# module's symbols follow as "PH-KSYM" lines (after the window).
. /scenarios/lib.sh

arg() { sed -n "s/.*ph_prof\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
conf=$(arg conf)
work=$(arg work)
seconds=$(arg seconds)
: "${conf:=ph}" "${work:=pagefault}" "${seconds:=10}"
case $work in
pagefault) result=pf-result ;;
churn) result=churn-result ;;
*) fail "ph_prof.work=$work" ;;
esac

sleep 2
$work 3 >/dev/null || fail "$work"
case $conf in
none) ;;
ph) load_hinting ;;
*) fail "ph_prof.conf=$conf" ;;
esac
sleep 2
$work 3 >/dev/null || fail "$work"
profmark
v=$($work "$seconds" | sed -n "s/^PH-MARK $result \(.*\)/\1/p")
profmark
[ -n "$v" ] || fail "$work: no result"
mark prof-result "$v"
if [ "$conf" = ph ]; then
	grep '\[page_hinting\]' /proc/kallsyms | sed 's/^/PH-KSYM /'
fi
exit 0
