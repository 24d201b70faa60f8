#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make paths: where the built artifacts are (building what is missing).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
k=$("$ROOT/tools/kernel.sh" normal)
dk=$("$ROOT/tools/kernel.sh" debug)
echo "kernel=$k/arch/x86/boot/bzImage"
echo "debug_kernel=$dk/arch/x86/boot/bzImage"
echo "module=$("$ROOT/tools/module.sh" normal)"
echo "debug_module=$("$ROOT/tools/module.sh" debug)"
echo "initramfs=$("$ROOT/tools/initramfs.sh" normal)"
echo "debug_initramfs=$("$ROOT/tools/initramfs.sh" debug)"
echo "kunit_py=$CACHE/kernel/src/tools/testing/kunit/kunit.py"
echo "kernel_build=$k"
echo "debug_kernel_build=$dk"
