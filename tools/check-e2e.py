#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest scenarios on the normal kernel with assertions on the host side.

Each scenario boots the guest, runs, and is judged by its exit status, a
clean console (no warning or splat) and what the host-side sampler saw.
"""
import json
import os
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def boot(kernel, initrd, outdir, scenario, timeout=300, extra=()):
    js = os.path.join(outdir, scenario + ".json")
    cmd = [os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", scenario, "--timeout", str(timeout), "--strict-console", "--quiet",
           "--json", js, *extra]
    rc = subprocess.run(cmd).returncode
    r = json.load(open(js))
    if rc != 0:
        for _, line in r["console"][-30:]:
            print("  | " + line)
    return rc, r


def mark_time(r, name):
    for t, n, _ in r["marks"]:
        if n == name:
            return t
    raise AssertionError(f"the guest never printed PH-MARK {name}")


def rss_at(r, t):
    """RSS (KiB) of the last sample at or before t."""
    best = None
    for ts, rss, _ in r["samples"]:
        if ts <= t:
            best = rss
    if best is None:
        raise AssertionError(f"no RSS sample before t={t}")
    return best


def check_load_unload(r):
    assert r["status"] == 0


def check_demo(r):
    # The sampler must see the guest's 400 MiB arrive in the QEMU process:
    # this proves the host-side measurement that later scenarios rely on.
    t_loaded, t_alloc = mark_time(r, "loaded"), mark_time(r, "allocated")
    rise = (rss_at(r, t_alloc + 0.3) - rss_at(r, t_loaded)) / 1024
    print(f"  host RSS rose by {rise:.0f} MiB while the guest touched 400 MiB")
    assert rise >= 0.9 * 400, f"host RSS rose by only {rise:.0f} MiB"


SCENARIOS = [("load-unload", check_load_unload), ("demo", check_demo)]


def main():
    kernel = sh(os.path.join(TOOLS, "kernel.sh"), "normal") + "/arch/x86/boot/bzImage"
    initrd = sh(os.path.join(TOOLS, "initramfs.sh"), "normal")
    outdir = os.path.join(os.path.dirname(initrd), "e2e")
    os.makedirs(outdir, exist_ok=True)
    only = sys.argv[1:]
    failed = []
    for name, check in SCENARIOS:
        if only and name not in only:
            continue
        print(f"[check-e2e] {name}")
        rc, r = boot(kernel, initrd, outdir, name)
        try:
            assert rc == 0, f"guest status {rc}"
            check(r)
            print(f"[check-e2e] {name}: ok ({r['seconds']:.0f} s)")
        except AssertionError as e:
            print(f"[check-e2e] {name}: FAILED: {e}")
            failed.append(name)
    if failed:
        print(f"[check-e2e] failed: {' '.join(failed)}")
        sys.exit(1)
    print("[check-e2e] all scenarios passed")


if __name__ == "__main__":
    main()
