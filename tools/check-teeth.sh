#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Show that the in-guest tests catch the bugs they guard against: build the
# debug module once per deliberate break (tools/teeth/<name>.patch, which
# tools/module.sh applies to its copy of the sources when PH_BREAK=<name>),
# boot the check-kunit scenario with it, and require the test that guards
# against that bug to fail. Any break that leaves its test green fails this
# script. Not part of `make check` (one guest boot per break, 1-10 min each
# here); run it with `make check-teeth` after changing a test.
#
# First, and alone with --patches (tools/check-host.sh runs that: no build,
# no boot), every break's patch must apply exactly to the current sources, so
# that a patch the code moved away from fails at once, not after the boots.
#
# Usage: tools/check-teeth.sh [break...]
#        tools/check-teeth.sh --patches
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# break name -> what must fail (each of a space-separated list): a KUnit
# test case, "leakcheck" for the load/unload leak check of the kunit
# scenario, or "e2e:<scenario>" for a check-e2e scenario on the normal kernel.
declare -A GUARD=(
	[capture]=capture_records_frees
	[isolation]="isolation_keeps_pages_out e2e:integrity"
	[mark]=reported_flag_lifecycle
	[error]=transport_error_leaves_unmarked
	[kick]=threshold_triggers_report
	[hotplug]=cpu_offline_hands_over
	[leak]="leakcheck e2e:reload"
	[retry]="per_cpu_frees_are_retried per_cpu_blocks_wait_for_a_drain audit_names_a_forgotten_block"
	[giveup]=per_cpu_blocks_wait_for_a_drain
	[drain]=per_cpu_frees_are_retried
	[drainall]="per_cpu_frees_are_retried sustained_freeing_spaces_drains"
	[drainbusy]=sustained_freeing_spaces_drains
	[sizelog]=e2e:virtio-size
	[knob]=e2e:knobs
	[spill]="spilled_frees_are_reported stuck_host_blocks_nothing"
	[queue]=small_queue_splits_reports
	[cap]=e2e:pressure
	[freeze]=e2e:suspend
	[unload]=e2e:stuck-unload
	[hypercall]=e2e:poison-negotiated
	[granule]=e2e:hugetlb-1g-integrity
	[hostpage]=host_page_reported_whole
	[devorder]=engine_reports_through_device
	[sleep]=delayed_batch_waits_without_sleeping
	[settle]=small_blocks_settle
	[cover]=block_freed_in_two_batches
	[hint]=hint_covers_only_its_block
	[unhint]=hints_go_with_their_buffer
	[runtime]=runtime_counts_only_its_window
	[detach]="engine_reports_through_device e2e:engine-orders"
)
TEETH=$ROOT/tools/teeth

# Checks that the patches of breaks $@ apply to $ROOT without fuzz (a dry
# run: nothing is changed).
patches_apply() {
	local b out bad=0
	for b; do
		if ! out=$(patch -d "$ROOT" -p1 --dry-run -s --forward --fuzz=0 <"$TEETH/$b.patch" 2>&1); then
			info "teeth: tools/teeth/$b.patch does not apply to the current sources: ${out//$'\n'/; }"
			bad=1
		fi
	done
	((bad == 0)) || die "stale teeth patches: regenerate them against the current sources (tools/teeth/README)"
}

if [[ ${1:-} == --patches ]]; then
	# Every break has a patch, every patch a break, and each applies.
	bad=0
	for b in "${!GUARD[@]}"; do
		[[ -f $TEETH/$b.patch ]] || { info "teeth: break '$b' has no tools/teeth/$b.patch"; bad=1; }
	done
	for p in "$TEETH"/*.patch; do
		b=$(basename "$p" .patch)
		[[ -n ${GUARD[$b]:-} ]] || { info "teeth: $p is not a break of GUARD (tools/check-teeth.sh)"; bad=1; }
	done
	((bad == 0)) || die "tools/teeth/ and the breaks of tools/check-teeth.sh differ"
	mapfile -t all < <(printf '%s\n' "${!GUARD[@]}" | sort)
	patches_apply "${all[@]}"
	info "teeth: all ${#all[@]} break patches apply"
	exit 0
fi

breaks=("$@")
# No names: every break of GUARD.
((${#breaks[@]})) || mapfile -t breaks < <(printf '%s\n' "${!GUARD[@]}" | sort)
for b in "${breaks[@]}"; do
	[[ -n ${GUARD[$b]:-} ]] || die "unknown break '$b' (known: ${!GUARD[*]})"
	[[ -f $TEETH/$b.patch ]] || die "break '$b' has no tools/teeth/$b.patch"
done
patches_apply "${breaks[@]}"

kbuild=$("$ROOT/tools/kernel.sh" debug)
res=$OUT/teeth
mkdir -p "$res"
bad=0
for b in "${breaks[@]}"; do
	wants=${GUARD[$b]:-}
	[[ -n $wants ]] || die "unknown break '$b' (known: ${!GUARD[*]})"
	for want in $wants; do
		t0=$SECONDS
		if [[ $want == e2e:* ]]; then
			# Guarded by a check-e2e scenario on the normal kernel.
			log=$res/$b-${want#e2e:}.log
			if PH_BREAK=$b "$ROOT/tools/check-e2e.py" "${want#e2e:}" >"$log" 2>&1; then
				info "teeth: break '$b' -> $want PASSED: the test does not catch this bug (log: $log)"
				bad=1
			else
				info "teeth: break '$b' -> $want fails, as it must ($((SECONDS - t0)) s: $(grep -m1 PH-FAIL "$log" | sed 's/^ *| *//'))"
			fi
			continue
		fi
		# One KUnit boot per guard: KUnit runs only that case
		# (kunit.filter_glob), and the load/unload leak cycles only for
		# the leakcheck guard, so a boot takes about a minute, not five.
		initrd=$(PH_BREAK=$b "$ROOT/tools/initramfs.sh" debug)
		args=()
		if [[ $want == leakcheck ]]; then
			args=(--append "kunit.filter_glob=page-hinting-none")
		else
			args=(--append "kunit.filter_glob=*.$want ph.no_leakcheck")
		fi
		kunit_boot "$kbuild/arch/x86/boot/bzImage" "$initrd" "$res/$b-$want" "${args[@]}" >/dev/null 2>&1 || true
		failed=$(sed -n 's/^\[ *[0-9.]*\] *not ok [0-9]* \([a-z_]*\)$/\1/p' "$res/$b-$want.log" | sort -u | tr '\n' ' ')
		grep -q '^PH-FAIL free memory fell' "$res/$b-$want.log" && failed+="leakcheck "
		# The guest died in the load/unload cycles (out of memory from
		# what the break loses, say): the check failed too.
		[[ $want != leakcheck ]] || ! grep -q 'PH-MARK kunit-done' "$res/$b-$want.log" ||
			grep -q 'PH-MARK leakcheck-done' "$res/$b-$want.log" || failed+="leakcheck "
		# A filter that ran no case proves nothing.
		if [[ $want != leakcheck ]] && ! grep -Eq "^\[ *[0-9.]*\] *(not )?ok [0-9]* $want\$" "$res/$b-$want.log"; then
			info "teeth: break '$b' -> $want did not run (log: $res/$b-$want.log)"
			bad=1
			continue
		fi
		if [[ " $failed" == *" $want "* ]]; then
			info "teeth: break '$b' -> $want fails, as it must ($((SECONDS - t0)) s; failed: ${failed% })"
		else
			info "teeth: break '$b' -> $want PASSED: the test does not catch this bug (failed: ${failed:-nothing}; log: $res/$b-$want.log)"
			bad=1
		fi
	done
done
((bad == 0)) || die "some tests do not catch the bug they guard against"
info "teeth: every break was caught"
