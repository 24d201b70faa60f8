// SPDX-License-Identifier: GPL-2.0
/*
 * profmark: runs ph_profile_mark(), a function that does nothing, once.
 * tools/profile.py's QEMU plugin (tools/prof/tbprof.c) takes a snapshot of
 * its instruction counts whenever the guest executes that function (its
 * address is read from this static binary with nm), so that a profile
 * covers exactly what the guest ran between two profmark runs.
 */

__attribute__((noinline)) void ph_profile_mark(void)
{
	__asm__ volatile("nop" ::: "memory");
}

int main(void)
{
	ph_profile_mark();
	return 0;
}
