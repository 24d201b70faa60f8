#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where the module's price goes: an instruction profile of the guest.

Boots the normal guest kernel once per configuration under TCG with
-icount (as make bench's throughput workloads) and QEMU's TCG plugin
tools/prof/tbprof.c, which counts the instructions executed at every guest
address. The guest (tools/guest/scenarios/profile.sh) runs the workload
between two calls of tools/guest/profmark, and the plugin snapshots its
counts at each: the profile covers that window only. Each address is
attributed to its function (the kernel's System.map, the module's symbols
from /proc/kallsyms), and the functions are printed by how many
instructions more per unit of work (page fault, MiB churned) each
configuration ran than the first one (by default: none, nothing loaded).

  tools/profile.py [--work pagefault|churn] [--seconds S] [--top N]
                   [--config NAME=DRIVER:CMDLINE ...]

DRIVER is none or ph; CMDLINE adds ph_param.KNOB=VALUE settings, e.g.
--config ph-o0=ph:ph_param.min_order=0. Without --config: none and ph.
A run takes about 1.5 min per configuration (10 s windows). Needs gcc (the
plugin is built on the fly, into the cache).

The instruction counts are exact for what ran, but one window is one
sample: which pages the allocator hands out, where the scheduler switches,
differ from boot to boot, and functions that differ by a few instructions
per unit are within that (run it twice to see). The throughput figures
with their spread come from make bench.
"""
import argparse
import bisect
import json
import os
import re
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
CACHE = os.environ.get("PAGE_HINTING_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "page-hinting")
ICOUNT = "-icount shift=0,sleep=off,align=off"
UNIT = {"pagefault": "fault", "churn": "MiB"}


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def build_plugin():
    src = os.path.join(TOOLS, "prof", "tbprof.c")
    out = os.path.join(CACHE, "prof", "tbprof.so")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or os.path.getmtime(src) > os.path.getmtime(out):
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                        "-o", out, src], check=True)
    return out


def kernel_symbols(build):
    syms = []
    with open(os.path.join(build, "System.map")) as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if kind in "tTwW":
                syms.append((int(addr, 16), name))
    return syms


def short(name):
    """A Rust symbol of the module, shortened to its path's tail."""
    m = re.match(r"_RN\w*?page_hinting_main(.*)", name)
    return "ph:" + (m.group(1) if m else name)[-70:]


def read_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            a, c = line.split()
            counts[int(a, 16)] = int(c)
    return counts


def run(name, driver, cmdline, args, kernel, initrd, plugin, mark, outdir):
    out = os.path.join(outdir, name)
    js = out + ".json"
    append = f"ph_prof.conf={driver} ph_prof.work={args.work} ph_prof.seconds={args.seconds} {cmdline}"
    cmd = [sys.executable, os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", "profile", "--append", " ".join(append.split()), "--accel", "tcg",
           "--qemu-arg", f"{ICOUNT} -plugin {plugin},arg=out={out}.counts,arg=mark={mark:#x}",
           "--timeout", "1800", "--json", js, "--quiet"]
    print(f"[profile] {name}: {' '.join(append.split())}", file=sys.stderr)
    subprocess.run(cmd, check=True)
    with open(js) as f:
        r = json.load(f)
    result = [v for _, n, v in r["marks"] if n == "prof-result"]
    if not result:
        sys.exit(f"[profile] {name}: no result (see {js})")
    units = float(result[0].split()[1])
    ksyms = []
    for _, line in r["console"]:
        m = re.match(r"PH-KSYM ([0-9a-f]+) ([tT]) (\S+)", line)
        if m:
            ksyms.append((int(m.group(1), 16), short(m.group(3))))
    before = read_counts(out + ".counts.0")
    after = read_counts(out + ".counts.1")
    window = {a: c - before.get(a, 0) for a, c in after.items() if c != before.get(a, 0)}
    return units, ksyms, window


def attribute(window, syms):
    syms = sorted(syms)
    addrs = [a for a, _ in syms]
    per = {}
    for a, c in window.items():
        if a < 1 << 63:
            name = "<user space>"
        else:
            i = bisect.bisect_right(addrs, a) - 1
            name = syms[i][1] if i >= 0 else "?"
        per[name] = per.get(name, 0) + c
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", choices=sorted(UNIT), default="pagefault")
    ap.add_argument("--seconds", type=int, default=10, help="the window's length (guest seconds)")
    ap.add_argument("--top", type=int, default=30, help="functions printed per configuration")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=DRIVER:CMDLINE")
    args = ap.parse_args()
    configs = [("none", "none", ""), ("ph", "ph", "")]
    if args.config:
        configs = [("none", "none", "")]
        for c in args.config:
            m = re.match(r"([\w.-]+)=(none|ph):?(.*)$", c)
            if not m:
                sys.exit(f"--config {c}: NAME=DRIVER:CMDLINE, DRIVER none or ph")
            configs.append(m.groups())

    build = sh(os.path.join(TOOLS, "kernel.sh"), "normal")
    initrd = sh(os.path.join(TOOLS, "initramfs.sh"), "normal")
    plugin = build_plugin()
    nm = sh("nm", os.path.join(CACHE, "guest-bin", "profmark"))
    mark = int(re.search(r"^([0-9a-f]+) T ph_profile_mark$", nm, re.M).group(1), 16)
    outdir = os.path.join(CACHE, "out", "profile")
    os.makedirs(outdir, exist_ok=True)
    ksyms = kernel_symbols(build)

    unit = UNIT[args.work]
    rows = []
    for name, driver, cmdline in configs:
        units, msyms, window = run(name, driver, cmdline, args,
                                   os.path.join(build, "arch/x86/boot/bzImage"), initrd, plugin, mark, outdir)
        per = attribute(window, ksyms + msyms)
        rows.append((name, units, sum(window.values()), {k: v / units for k, v in per.items()}))

    base_name, base_units, base_total, base = rows[0]
    print(f"Instruction profile, {args.work}, {args.seconds} s window, 2 vCPUs, TCG -icount "
          f"(instructions per {unit}; a window is one sample: see --help)")
    for name, units, total, _ in rows:
        rel = (units / total) / (base_units / base_total)
        print(f"  {name:10} {units:12.0f} {unit}s in {total / 1e9:6.2f} G instructions: "
              f"{total / units:9.1f} per {unit}, {unit}s per instruction {rel * 100:6.2f}% of {base_name}'s")
    for name, units, total, per in rows[1:]:
        diff = [(per.get(n, 0) - base.get(n, 0), n) for n in set(per) | set(base)]
        extra = total / units - base_total / base_units
        mod = sum(v for n, v in per.items() if n.startswith("ph:"))
        print(f"\n{name} vs {base_name}: {extra:+.1f} instructions per {unit} "
              f"({mod:.1f} in the module's own code); the functions that differ most:")
        print(f"{'delta':>9} {name:>9} {base_name:>9}  function")
        top = sorted(diff, key=lambda d: -abs(d[0]))[:args.top]
        for d, n in top:
            print(f"{d:+9.2f} {per.get(n, 0):9.2f} {base.get(n, 0):9.2f}  {n}")


if __name__ == "__main__":
    main()
