#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench: page_hinting side by side with Linux's own free page reporting.

Boots the same guest kernel, under the same QEMU, once per configuration,
workload and repetition (guest scenario tools/guest/scenarios/bench.sh) and
reads the QEMU process's RSS and AnonHugePages every 100 ms from the host.

Configurations: no hinting; Linux's virtio_balloon free page reporting at its
default order and at order 0; page_hinting driving the device at its
defaults and at min_order=0; page_hinting as the engine behind
virtio_balloon (ph-engine); the threshold, idle flush and delay swept
(bigfree only).
Workloads: 700 MiB of THP freed at once (bigfree); every other 4 KiB page of
256 MiB freed (scatter); 400 MiB of page cache dropped (pagecache); steady
THP allocate/free churn (churn, MiB/s); a page_fault1-style loop (pagefault,
faults/s); the footprint over time of a repeating allocate/hold/free pattern
(phases, one guest; fleet, three guests at once with staggered peaks: the
host memory they hold together).

The throughput workloads run under QEMU's instruction counting (ICOUNT), the
others on the host's clock (Documentation/mm/page_hinting.rst, "Measuring").

Writes results.json, results.csv, table.md, plot.json and bench.png to
$PAGE_HINTING_CACHE/out/bench/<time>/, prints the table and, unless
--no-publish, copies them to Documentation/bench/ and puts the table into
README.md between its bench markers.
"""

import argparse
import csv
import functools
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
from runlog import marks, pool_at, reserve_hugetlb, sample_at  # noqa: E402
MIB = 1024  # KiB

# name, driver, extra kernel command line, workloads (None: all)
CONFIGS = [
    ("none", "none", "", None),
    ("linux", "linux", "", None),
    ("linux-o0", "linux", "page_reporting.page_reporting_order=0", None),
    ("ph", "ph", "", None),
    ("ph-o0", "ph", "ph_param.min_order=0", None),
    # transport=engine: page_hinting reporting through virtio_balloon's
    # free page reporting (the default); "ph" rows drive the device
    # themselves (transport=virtio).
    ("ph-engine", "engine", "", None),
    # The sweeps: bigfree only by default (a throughput run under icount
    # takes minutes); --only NAME --work churn measures one.
    ("ph-t256", "ph", "ph_param.threshold_kb=256", ("bigfree",)),
    ("ph-t65536", "ph", "ph_param.threshold_kb=65536", ("bigfree",)),
    ("ph-f10", "ph", "ph_param.flush_ms=10", ("bigfree",)),
    ("ph-f1000", "ph", "ph_param.flush_ms=1000", ("bigfree",)),
    ("ph-d1000", "ph", "ph_param.delay_ms=1000", ("bigfree",)),
    ("ph-d100", "ph", "ph_param.delay_ms=100", ("bigfree",)),
]
# name, MiB freed (release workloads) or None (throughput workloads)
WORKLOADS = [
    ("bigfree", 700),
    ("scatter", 128),
    ("pagecache", 400),
    ("churn", None),
    ("pagefault", None),
]
THROUGHPUT_UNIT = {"churn": "MiB/s", "pagefault": "faults/s"}
# --icount: QEMU's deterministic instruction counting, guest time advancing
# with the instructions executed (one ns each), never with the host's clock:
# host load no longer moves the throughput figures (A/A pairs of the churn
# loop: 99.8-100.0% with it, 92-109% without, 2026-12-02). What it does not
# see: anything the host does outside the guest's instructions (its page
# faults and discards cost the guest no time), and it runs the vCPUs in one
# host thread.
ICOUNT = "-icount shift=0,sleep=off,align=off"

# The footprint workloads (tools/guest/phases.c): SPAN seconds of 12 s
# allocate/hold/free cycles (THP, 4 KiB pages and page cache, 704-768 MiB at
# the peak); the host's RSS of the QEMU process, averaged over the pattern
# (GiB*s/s) and its peak. fleet: FLEET guests at once, their cycles FLEET_STEP
# seconds apart, the sum of their RSS.
SPAN = 48
CYCLE = 12
FOOTPRINT_CONFIGS = ("none", "linux", "linux-o0", "ph", "ph-o0", "ph-engine")
FLEET = 3
FLEET_STEP = CYCLE // FLEET
FLEET_CONFIGS = ("none", "linux", "ph", "ph-o0")
FLEET_SMP = "1"  # three 2-vCPU TCG guests would need six host CPUs

# The zone lock holds (work=holds in bench.sh): one boot per configuration,
# ONE vCPU under instruction counting, so that a section with interrupts
# off lasts the instructions it ran (1 ns each) and never includes another
# vCPU's time slice (with two, QEMU runs them in turns of up to 100 ms of
# guest time, which lands inside some sections). The page-fault loop, then
# bigfree's 700 MiB free. The kernel's maxima come from patches/0011
# (CONFIG_PAGE_REPORTING_STATS): reporting's holds of a zone's lock, Linux's
# and page_hinting's alike, measured at the same place, and the free path's.
HOLDS_CONFIGS = ("none", "linux", "linux-o0", "ph", "ph-o0", "ph-engine")

# Guest RAM on the host's hugetlb pages, where the host takes back whole
# host pages only and its pool (free_hugepages) is the measure: (name, KiB,
# pages to reserve, MiB freed, run-guest arguments, kernel command line).
# The 1 GiB layout is check-e2e's hugetlb-1g (Documentation/admin-guide).
HUGE_SETUPS = [
    ("2 MiB", 2048, 512, 700, ["--hugetlb", "2048"], ""),
    ("1 GiB", 1 << 20, 2, 2048, ["--mem", "3072", "--hugetlb", str(1 << 20), "--hugetlb-mib", "2048"],
     "movablecore=2G"),
]
# (name, driver, extra kernel command line; {kb} is the host page size,
# given only above the largest buddy block: 2 MiB pages take the defaults)
HUGE_CONFIGS = [
    ("linux", "linux", ""),
    ("ph", "ph", "ph_param.host_page_kb={kb}"),
]


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def first_mark(r, *names):
    for n in names:
        m = marks(r, n)
        if m:
            return m[0]
    raise RuntimeError(f"the guest printed none of {names}")


def counts(r, name):
    v = first_mark(r, name)[1].split()
    return None if v[0] == "-" else [int(x) for x in v]


SMP = 2  # vCPUs (run-guest.py's default)


def figures(r, work, freed_mib, window, seconds=5):
    """The figures of one run (see the module docstring)."""
    f = {}
    if freed_mib is None:
        # Throughput: pairs of segments in one boot, nothing loaded (off)
        # and the configuration loaded (on), in the order off-on, on-off...
        off = [float(v.split()[0]) for _, v in marks(r, "thr-off")]
        on = [float(v.split()[0]) for _, v in marks(r, "thr-on")]
        if not on or len(off) != len(on):
            raise RuntimeError(f"{work}: {len(off)} off and {len(on)} on segments")
        f["throughput_off"], f["throughput"] = statistics.mean(off), statistics.mean(on)
        f["pair_ratios"] = [b / a for a, b in zip(off, on)]  # segment i of each
        f["ratio"] = sum(on) / sum(off)
        # Page_hinting's counters around each "on" segment.
        st0 = [v.split() for _, v in marks(r, "thr-stats0")]
        st1 = [v.split() for _, v in marks(r, "thr-stats")]
        if st1 and st1[0][0] != "-":
            d = [[int(b) - int(a) for a, b in zip(x0, x1)] for x0, x1 in zip(st0, st1)]
            f["reports"] = sum(x[0] for x in d)
            f["ranges"] = sum(x[1] for x in d)
            f["reported_mib"] = sum(x[2] for x in d) * 4 / 1024
            if all(len(x) > 5 for x in st1):
                # Maxima since each load: the largest over the on segments.
                f["zone_lock_max_us"] = max(int(x[4]) for x in st1) / 1000
                f["irqoff_max_us"] = max(int(x[5]) for x in st1) / 1000
            cpu_time = len(on) * seconds * SMP
            if all(len(x) > 3 for x in d):
                # The worker's busy (wall) time as a share of the CPUs'
                # time in the "on" segments: waiting for the host and
                # preempted included.
                f["worker_busy_pct"] = 100 * sum(x[3] for x in d) / 1e6 / cpu_time
            if all(len(x) > 6 for x in d):
                # The time it ran on a CPU: what reporting took from the
                # guest.
                f["worker_cpu_pct"] = 100 * sum(x[6] for x in d) / 1e6 / cpu_time
        return f, None
    c0, c1 = counts(r, "stats-before"), counts(r, "stats-after")
    if c0 and c1:
        f["reports"], f["ranges"] = c1[0] - c0[0], c1[1] - c0[1]
        f["reported_mib"] = (c1[2] - c0[2]) * 4 / 1024
        if len(c0) > 3 and len(c1) > 3:
            f["worker_ms"] = (c1[3] - c0[3]) / 1000
        if len(c1) > 5:
            f["zone_lock_max_us"], f["irqoff_max_us"] = c1[4] / 1000, c1[5] / 1000
    t0 = first_mark(r, "freeing", "scattering")[0]
    rss0, huge0 = sample_at(r, t0)
    rss1, huge1 = sample_at(r, t0 + window)
    want = freed_mib * MIB
    f["back_10s"] = (rss0 - rss1) / want
    for frac, key in ((0.5, "t50"), (0.9, "t90")):
        f[key] = None
        for ts, rss, *_ in r["samples"]:
            if t0 <= ts <= t0 + window and rss0 - rss >= frac * want:
                f[key] = round(ts - t0, 2)
                break
    f["huge_before"], f["huge_after"] = huge0 / MIB, huge1 / MIB
    trace = [(round(ts - t0, 2), (rss - rss0) / MIB) for ts, rss, *_ in r["samples"]
             if t0 - 1 <= ts <= t0 + window]
    return f, trace


def guest_cmd(kernel, initrd, outdir, conf, work, tag, args, disk=None, extra_append="",
              guest_args=()):
    """The run-guest.py command line of one bench guest, and its --json."""
    name, driver, extra, _ = conf
    js = os.path.join(outdir, "runs", tag + ".json")
    append = f"ph_bench.conf={driver} ph_bench.work={work} ph_bench.window={args.window} " \
             f"ph_bench.seconds={args.seconds} ph_bench.pairs={args.pairs} " \
             f"ph_bench.span={SPAN} {extra_append} {extra}"
    cmd = [os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", "bench", "--append", " ".join(append.split()), "--timeout", os.environ.get("BENCH_TIMEOUT", "300"),
           "--strict-console", "--quiet", "--json", js, *guest_args]
    if disk:
        cmd += ["--disk", disk]
    if (work in THROUGHPUT_UNIT or work == "holds") and args.icount:
        # Instruction counting is TCG's: KVM refuses -icount.
        cmd += ["--accel", "tcg", "--qemu-arg", ICOUNT]
    return cmd, js


def run_one(kernel, initrd, disk, outdir, conf, work, rep, args):
    tag = f"{conf[0]}.{work}.{rep}"
    cmd, js = guest_cmd(kernel, initrd, outdir, conf, work, tag, args,
                        disk=disk if work in ("pagecache", "phases") else None)
    t = time.monotonic()
    r = reuse(js, args) or launch(cmd, js, tag)
    return r, time.monotonic() - t


# Seconds of the runs --resume read back.
REUSED_S = [0.0]


def reuse(js, args):
    """With --resume, the result of a run the interrupted bench finished."""
    if args.resume and os.path.exists(js):
        r = json.load(open(js))
        if r.get("status") == 0:
            print(f"[bench] {os.path.basename(js)}: reused", flush=True)
            # The bench's time counts the first try's run.
            REUSED_S[0] += r.get("seconds", 0.0)
            return r
    return None


def run_fleet(kernel, initrd, outdir, conf, rep, args):
    """FLEET guests of one configuration at once, their phases cycles
    FLEET_STEP seconds apart; their results."""
    procs = []
    for i in range(FLEET):
        tag = f"fleet.{conf[0]}.{rep}.{i}"
        disk = os.path.join(outdir, f"fleet{i}.img")
        with open(disk, "wb") as f:
            f.truncate(256 << 20)
        cmd, js = guest_cmd(kernel, initrd, outdir, conf, "phases", tag, args, disk=disk,
                            extra_append=f"ph_bench.offset={i * FLEET_STEP}",
                            guest_args=["--smp", FLEET_SMP])
        procs.append((subprocess.Popen(cmd, stderr=subprocess.DEVNULL), js, tag, disk))
    out, err = [], None
    for p, js, tag, disk in procs:
        rc = p.wait()
        os.unlink(disk)
        r = json.load(open(js))
        if rc != 0 and err is None:
            tail = "\n".join("  | " + line for _, line in r["console"][-15:])
            err = RuntimeError(f"{tag}: guest status {rc}\n{tail}")
        out.append(r)
    if err:
        raise err
    return out


def rss_mean(points):
    """Time-weighted mean of (t, value) points (trapezoids)."""
    if len(points) < 2:
        return points[0][1] if points else None
    area = sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in zip(points, points[1:]))
    return area / (points[-1][0] - points[0][0])


def ideal_held(r, t0, offset):
    """The MiB the phases pattern itself holds, as a function of the
    console's clock: a cycle's memory grows linearly from its start to its
    peak mark (at the speed this run touched it), then follows the
    pattern's phases-held marks (4 KiB pages: the half of the small mapping
    it let go counts as gone). None where the run printed no such marks
    (before 2026-12-04)."""
    held = sorted((t, int(v.split()[0]), int(v.split()[1])) for t, v in marks(r, "phases-held"))
    if not held:
        return None
    peaks = {int(v.split()[0]): t for t, v in marks(r, "phases-peak")}
    top = {c: mib for t, c, mib in held if peaks.get(c) is not None and abs(t - peaks[c]) < 1.0}
    # From the peak mark on (its held mark follows it on the console).
    held = sorted(held + [(peaks[c], c, mib) for c, mib in top.items()])

    def at(t):
        now = 0
        for th, _, mib in held:
            if th > t:
                break
            now = mib
        for c, tp in peaks.items():
            start = t0 + offset + CYCLE * c
            if start <= t < tp and c in top:
                return top[c] * (t - start) / (tp - start)
        return now
    return at


def ideal_trace(r):
    """The ideal reporter's RSS (MiB) over a phases run, on the same clock as
    footprint()'s trace; None without the pattern's phases-held marks."""
    t0, t1 = first_mark(r, "phases-start")[0], first_mark(r, "phases-end")[0]
    held = ideal_held(r, t0, int(first_mark(r, "phases-start")[1].split()[0]))
    if held is None:
        return None
    base = [rss for ts, rss, *_ in r["samples"] if ts < t0][-1]
    return [(round(ts - t0, 2), base / MIB + held(ts)) for ts, *_ in r["samples"] if t0 <= ts <= t1]


def footprint(r):
    """One phases run: its average and peak host RSS over the pattern, the
    seconds each cycle took to allocate and touch its memory (the guest's
    throughput), the footprint of an ideal reporter at this run's
    throughput, and the RSS trace.

    The ideal holds the guest's RSS before the pattern began (the kernel,
    the programs, QEMU itself) plus what the pattern holds (ideal_held):
    every page back the moment it is freed, at 4 KiB granularity, and
    nothing the guest did not touch."""
    t0, t1 = first_mark(r, "phases-start")[0], first_mark(r, "phases-end")[0]
    offset = int(first_mark(r, "phases-start")[1].split()[0])
    pts = [(ts, rss) for ts, rss, *_ in r["samples"] if t0 <= ts <= t1]
    peaks = [(int(v.split()[0]), t) for t, v in marks(r, "phases-peak")]
    alloc = [t - (t0 + offset + CYCLE * i) for i, t in peaks]
    tr = ideal_trace(r)
    ideal = rss_mean([(ts + t0, v * MIB) for ts, v in tr]) / MIB / 1024 if tr else None
    return {"avg_gib": rss_mean(pts) / MIB / 1024, "peak_gib": max(v for _, v in pts) / MIB / 1024,
            "cycles": len(peaks), "alloc_s": statistics.mean(alloc) if alloc else None,
            "alloc_cycles": alloc, "ideal_gib": ideal}, \
        [(round(ts - t0, 2), rss / MIB) for ts, rss in pts]


def fleet_footprint(runs, step=0.25):
    """The sum of the fleet's RSS on the host's clock, over the time all of
    them ran their pattern: average, peak, the ideal's average (footprint),
    trace."""
    spans = []
    for r in runs:
        base = r["start_monotonic"]
        spans.append((base + first_mark(r, "phases-start")[0], base + first_mark(r, "phases-end")[0]))
    a, b = max(s for s, _ in spans), min(e for _, e in spans)
    if b <= a:
        raise RuntimeError("the fleet's guests never ran their patterns at the same time")
    ideals = []
    for r in runs:
        t0 = first_mark(r, "phases-start")[0]
        held = ideal_held(r, t0, int(first_mark(r, "phases-start")[1].split()[0]))
        base = [rss for ts, rss, *_ in r["samples"] if ts < t0][-1]
        ideals.append(None if held is None else (lambda t, h=held, b0=base: b0 + 1024 * h(t)))
    pts, ideal, t = [], [], a
    while t <= b:
        pts.append((t - a, sum(sample_at(r, t - r["start_monotonic"])[0] for r in runs)))
        if None not in ideals:
            ideal.append((t - a, sum(f(t - r["start_monotonic"]) for f, r in zip(ideals, runs))))
        t += step
    per = [footprint(r)[0] for r in runs]
    alloc = [x["alloc_s"] for x in per if x["alloc_s"] is not None]
    return {"avg_gib": rss_mean(pts) / MIB / 1024, "peak_gib": max(v for _, v in pts) / MIB / 1024,
            "overlap_s": round(b - a, 1), "alloc_s": statistics.mean(alloc) if alloc else None,
            "alloc_cycles": [c for x in per for c in x["alloc_cycles"]],
            "ideal_gib": rss_mean(ideal) / MIB / 1024 if ideal else None}, \
        [(round(x, 2), v / MIB) for x, v in pts]


def launch(cmd, js, tag):
    """Runs one run-guest.py command line; its result, or an error with the
    console's tail."""
    rc = subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode
    r = json.load(open(js))
    if rc != 0:
        tail = "\n".join("  | " + line for _, line in r["console"][-15:])
        raise RuntimeError(f"{tag}: guest status {rc}\n{tail}")
    return r


def run_huge(kernel, initrd, outdir, setup, conf, rep, args):
    """One hugefree run; returns its figures, or None (with a line) where
    the host cannot reserve the pages."""
    label, kb, pages, mib, guest_args, cmdline = setup
    name, driver, extra = conf
    tag = f"huge-{kb}.{name}.{rep}"
    js = os.path.join(outdir, "runs", tag + ".json")
    append = f"ph_bench.conf={driver} ph_bench.work=hugefree ph_bench.mib={mib} " \
             f"ph_bench.window={args.window} {extra.format(kb=kb) if kb > 4096 else ''} {cmdline}"
    cmd = [os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", "bench", "--append", append.strip(), "--timeout", "240",
           "--strict-console", "--quiet", "--json", js, *guest_args]
    restore, why = reserve_hugetlb(kb, pages)
    if restore is None:
        print(f"[bench] {label} host pages: SKIPPED: {why}")
        return None
    try:
        r = launch(cmd, js, tag)
    finally:
        restore()
    t0 = first_mark(r, "freeing")[0]
    p0, p1 = pool_at(r, t0), pool_at(r, t0 + args.window)
    f = {"setup": label, "config": name, "rep": rep, "freed_mib": mib,
         "back_mib": (p1 - p0) * kb // 1024, "first": None, "all": None}
    for ts, _, _, *pool in r["samples"]:
        if t0 <= ts <= t0 + args.window and pool and pool[0] is not None:
            if f["first"] is None and pool[0] > p0:
                f["first"] = round(ts - t0, 2)
            if f["all"] is None and p1 > p0 and pool[0] >= p1:
                f["all"] = round(ts - t0, 2)
    hp = marks(r, "host-pages")
    f["host_pages_reported"] = int(hp[0][1]) if hp else None
    return f


def run_holds(kernel, initrd, outdir, conf, args):
    """One holds run: the maxima in us (None where there is none)."""
    tag = f"{conf[0]}.holds.0"
    cmd, js = guest_cmd(kernel, initrd, outdir, conf, "holds", tag, args, guest_args=["--smp", "1"])
    t = time.monotonic()
    r = reuse(js, args) or launch(cmd, js, tag)
    v = first_mark(r, "holds")[1].split()
    us = [None if x == "-" else int(x) / 1000 for x in v[:4]]
    return {"config": conf[0], "report_lock_us": us[0], "free_lock_us": us[1],
            "ph_lock_us": us[2], "ph_irqoff_us": us[3]}, time.monotonic() - t


def fmt_us(v, nd=1):
    """A hold in us, or "-" where the configuration has none."""
    return "-" if v is None else fmt(v, " us", nd)


def holds_table(holds):
    """The zone lock holds' rows."""
    out = ["", "Zone lock holds and interrupts-off sections: one boot per configuration, "
           "1 vCPU under instruction counting (1 ns an instruction, no other vCPU's time slice "
           "inside a section), the page-fault loop then bigfree's 700 MiB free; the longest of "
           "each since the configuration was loaded. reporting: a zone's lock held (interrupts "
           "off) to take free blocks off the free lists or put them back, Linux's "
           "page_reporting.c and page_hinting's isolation alike, read by the kernel at the same "
           "place (patches/0011); free path: the page free path's own zone lock holds "
           "(free_pcppages_bulk(), free_one_page()), interrupts off, in every configuration; "
           "ph call: page_hinting's `zone_lock_max_ns` (a whole isolation or put-back call, "
           "its upper bound); free hook: page_hinting's `free_irqoff_max_ns`, the interrupts-off "
           "section its hook adds to the free path:", "",
           "| config | reporting | free path | ph call | free hook |",
           "|---|---|---|---|---|"]
    for h in holds:
        out.append(f"| {h['config']} | {fmt_us(h['report_lock_us'])} | {fmt_us(h['free_lock_us'])} | "
                   f"{fmt_us(h['ph_lock_us'])} | {fmt_us(h['ph_irqoff_us'], 2)} |")
    return "\n".join(out) + "\n"


def huge_table(results, meta):
    out = ["", f"Guest RAM on host huge pages (hugetlb, QEMU memory-backend-memfd): the host "
           f"takes back whole host pages only; measured by its pool's free pages, "
           f"{meta['window']} s window after the free. 2 MiB: a 1 GiB guest; 1 GiB: a 3 GiB "
           "guest whose first 2 GiB are two host pages, with movablecore=2G "
           "(Documentation/admin-guide/mm/page_hinting.rst):", "",
           "| host pages | config | freed | back after window | first page back | all back |",
           "|---|---|---|---|---|---|"]
    for label, *_ in HUGE_SETUPS:
        for name, *_ in HUGE_CONFIGS:
            rs = [x for x in results if x["setup"] == label and x["config"] == name]
            if not rs:
                continue
            out.append(f"| {label} | {name} | {rs[0]['freed_mib']} MiB | "
                       f"{fmt_range([x['back_mib'] for x in rs], ' MiB', 0)} | "
                       f"{secs(fmt_range([x['first'] for x in rs], '', 2))} | "
                       f"{secs(fmt_range([x['all'] for x in rs], '', 2))} |")
    return "\n".join(out) + "\n"


def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(v, unit="", nd=1):
    if v is None:
        return "never"
    return f"{v:.{nd}f}{unit}"


def fmt_range(vals, unit="", nd=1, scale=1.0):
    med, lo, hi = spread(vals)
    if med is None:
        return "never" if vals else "-"
    s = fmt(med * scale, unit, nd)
    if len([v for v in vals if v is not None]) > 1 and hi - lo > 0:
        s += f" ({lo * scale:.{nd}f}-{hi * scale:.{nd}f})"
    if None in vals:
        s += f" [{vals.count(None)}x never]"
    return s


def summarize(results):
    """Rows of the table: one per configuration and workload."""
    rows = []
    for conf in CONFIGS:
        for w, freed in WORKLOADS:
            rs = [x for x in results if x["config"] == conf[0] and x["workload"] == w]
            if not rs:
                continue
            row = {"config": conf[0], "workload": w, "runs": len(rs)}
            if freed is None:
                row["pairs"] = sum(len(x["pair_ratios"]) for x in rs)
                row["off"] = fmt_range([x["throughput_off"] for x in rs], "", 0)
                row["on"] = fmt_range([x["throughput"] for x in rs], "", 0)
                row["unit"] = THROUGHPUT_UNIT[w]
                row["ratio"] = fmt(100 * statistics.median([x["ratio"] for x in rs]), "%", 1)
                pairs = [p for x in rs for p in x["pair_ratios"]]
                row["pair_ratios"] = fmt_range(pairs, "%", 1, 100)
                # Two standard errors of the mean pair ratio: the ratio's
                # noise, which shrinks with the number of pairs.
                if len(pairs) > 1:
                    row["ratio"] += f" ±{200 * statistics.stdev(pairs) / len(pairs) ** 0.5:.1f}"
                # A row merged from an earlier run is read against that
                # run's A/A (merge_published()).
                if "aa" in rs[0]:
                    row["aa"] = rs[0]["aa"]
                if "worker_cpu_pct" in rs[0]:
                    row["worker"] = fmt_range([x["worker_cpu_pct"] for x in rs], "%", 2)
                if "worker_busy_pct" in rs[0]:
                    row["busy"] = fmt_range([x["worker_busy_pct"] for x in rs], "%", 2)
            else:
                row["freed_mib"] = freed
                row["t50_s"] = fmt_range([x["t50"] for x in rs], "", 2)
                row["t90_s"] = fmt_range([x["t90"] for x in rs], "", 2)
                row["back_10s"] = fmt_range([x["back_10s"] for x in rs], "%", 0, 100)
                row["huge_mib"] = fmt_range([x["huge_before"] for x in rs], "", 0) + " -> " + \
                    fmt_range([x["huge_after"] for x in rs], "", 0)
                if "worker_ms" in rs[0]:
                    row["worker"] = fmt_range([x["worker_ms"] for x in rs], " ms", 0)
            if "zone_lock_max_us" in rs[0]:
                row["lock_max"] = fmt(max(x["zone_lock_max_us"] for x in rs), " us", 0)
                row["irqoff_max"] = fmt(max(x["irqoff_max_us"] for x in rs), " us", 1)
            if "reports" in rs[0]:
                row["reports"] = fmt_range([x["reports"] for x in rs], "", 0)
                row["ranges"] = fmt_range([x["ranges"] for x in rs], "", 0)
            rows.append(row)
    return rows


def footprint_table(foot):
    """The footprint rows: average and peak host RSS, against Linux's
    default reporting, and against an ideal reporter at the run's own
    throughput."""
    out = ["", f"Footprint over time: tools/guest/phases.c, {SPAN} s of {CYCLE} s cycles (THP, 4 KiB "
           "pages and page cache, up to 768 MiB held, then freed). phases: one guest, 2 vCPUs; "
           f"fleet: {FLEET} guests at once ({FLEET_SMP} vCPU each), their cycles {FLEET_STEP} s "
           "apart, the sum of their RSS over the time all ran the pattern. Average: host RSS "
           "integrated over time, GiB*s/s; vs linux: the average against Linux's default "
           "reporting (negative: less host memory); ideal: what a reporter would hold that gave "
           "back every 4 KiB page the moment it was freed, at this run's throughput (the RSS "
           "before the pattern plus what the pattern holds; its figure against Linux's measured "
           "one: the linux row's is the most any reporter can save at Linux's throughput); over "
           "ideal: the measured average above it; alloc: seconds a cycle took to map and touch "
           "its memory (the guest's throughput; median and range over cycles, host clock):", "",
           "| workload | config | average host RSS | peak | vs linux | ideal (vs linux) | over ideal "
           "| alloc per cycle |",
           "|---|---|---|---|---|---|---|---|"]
    for work in ("phases", "fleet"):
        base = [x["avg_gib"] for x in foot if x["workload"] == work and x["config"] == "linux"]
        ref = statistics.median(base) if base else None
        for name in FOOTPRINT_CONFIGS:
            rs = [x for x in foot if x["workload"] == work and x["config"] == name]
            if not rs:
                continue
            avg = statistics.median([x["avg_gib"] for x in rs])
            vs = f"{100 * (avg / ref - 1):+.0f}%" if ref else "-"
            ideals = [x.get("ideal_gib") for x in rs if x.get("ideal_gib") is not None]
            ideal, over = "-", "-"
            if ideals:
                med = statistics.median(ideals)
                ideal = f"{med:.3f} GiB" + (f" ({100 * (med / ref - 1):+.0f}%)" if ref else "")
                over = f"{100 * (avg / med - 1):+.0f}%"
            cycles = [c for x in rs for c in x.get("alloc_cycles", [])] or [x["alloc_s"] for x in rs]
            out.append(f"| {work} | {name} | {fmt_range([x['avg_gib'] for x in rs], ' GiB', 3)} | "
                       f"{fmt_range([x['peak_gib'] for x in rs], ' GiB', 3)} | {vs} | {ideal} | "
                       f"{over} | {secs(fmt_range(cycles, '', 2))} |")
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=None)
def published_curves():
    """{(panel, series name): points} of the published plot.json (panel: the
    workload its title begins with), for a merge whose per-run files are
    gone; empty if there is none. Read once: every missing curve asks."""
    try:
        spec = json.load(open(os.path.join(ROOT, "Documentation", "bench", "plot.json")))
    except FileNotFoundError:
        return {}
    return {(p["title"].split(":", 1)[0], x["name"]): x["points"]
            for p in spec["panels"] for x in p.get("series", [])}


def footprint_panels(outdir, foot):
    """Host RSS over time of the first repetition of each footprint run."""
    panels = []
    for work in ("phases", "fleet"):
        series = []
        for name in FOOTPRINT_CONFIGS:
            if not any(x["workload"] == work and x["config"] == name and x["rep"] == 0 for x in foot):
                continue
            first = (f"{name}.phases.0.json" if work == "phases" else f"fleet.{name}.0.0.json")
            if not os.path.exists(os.path.join(outdir, "runs", first)):
                tr = published_curves().get((work, name))
                if tr:
                    series.append({"name": name, "points": tr, "thin": False})
                continue
            if work == "phases":
                r = json.load(open(os.path.join(outdir, "runs", f"{name}.phases.0.json")))
                tr = footprint(r)[1]
                ideal = ideal_trace(r) if name == "linux" else None
                if ideal:
                    series.append({"name": "ideal at linux's pace", "points": ideal, "thin": True})
            else:
                runs = [json.load(open(os.path.join(outdir, "runs", f"fleet.{name}.0.{i}.json")))
                        for i in range(FLEET)]
                tr = fleet_footprint(runs)[1]
            series.append({"name": name, "points": tr, "thin": False})
        if series:
            panels.append({
                "title": (f"phases: one guest, {CYCLE} s allocate/hold/free cycles" if work == "phases"
                          else f"fleet: {FLEET} guests, cycles {FLEET_STEP} s apart, summed"),
                "xlabel": "seconds since the pattern began",
                "ylabel": "host RSS (MiB)", "series": series,
            })
    return panels


def secs(s):
    return s if s.startswith("never") else s.split(" ", 1)[0] + " s" + \
        (" " + s.split(" ", 1)[1] if " " in s else "")


def merged_note(meta):
    """Which rows of a --merge come from earlier runs, and from when."""
    parts = meta.get("merged_parts")
    if not parts:
        return ""
    if isinstance(parts[0], str):
        # A merge from before rows carried their date.
        return (f" Merged: {', '.join(parts)} and whatever table this run did not measure "
                f"come from the run of {meta['merged']}.")
    return (" Merged from earlier runs (rows this run did not measure): "
            + "; ".join(f"{p['what']} ({p['date']})" for p in parts)
            + "; the tables this run did not measure, likewise.")


def table_md(rows, meta):
    out = [f"`make bench`, {meta['date']}, {meta.get('minutes', '?')} min: "
           f"{meta['reps']} repetition(s) of each free, median (min-max); "
           f"QEMU {meta['qemu']} ({meta['accel'].upper()}"
           + ("; the throughput workloads under TCG with -icount, guest time counting "
              "instructions" if meta.get("icount") else "") + "), "
           f"{meta['smp']} vCPUs, {meta['mem']} MiB guest, host sampled every 100 ms, "
           f"{meta['window']} s window after each free."
           + merged_note(meta),
           ""]
    if any("freed_mib" in r for r in rows):
        out += release_rows(rows, meta)
    if any("ratio" in r for r in rows):
        out += throughput_rows(rows, meta)
    return "\n".join(out) + "\n"


def release_rows(rows, meta):
    out = ["Memory freed in the guest, back to the host (QEMU RSS). Zone lock max and irq-off max "
           "(here and below): page_hinting's `stats/zone_lock_max_ns` (its longest isolation or "
           "put-back call, a zone's lock held with interrupts off) and `stats/free_irqoff_max_ns` "
           "(its free hook's longest interrupts-off run), the largest of the runs:", "",
            "| workload | config | freed | 50% back | 90% back | back after "
            f"{meta['window']} s | host AnonHugePages MiB | reports | ranges | worker busy "
            "| zone lock max | irq-off max |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "freed_mib" in r:
            out.append(f"| {r['workload']} | {r['config']} | {r['freed_mib']} MiB | "
                       f"{secs(r['t50_s'])} | {secs(r['t90_s'])} | {r['back_10s']} | {r['huge_mib']} | "
                       f"{r.get('reports', '-')} | {r.get('ranges', '-')} | {r.get('worker', '-')} | "
                       f"{r.get('lock_max', '-')} | {r.get('irqoff_max', '-')} |")
    return out + [""]


def throughput_rows(rows, meta):
    out = [f"Guest throughput: after a warm-up segment, pairs of "
            f"{meta['seconds']} s segments in one boot ({meta['pairs']} in this run; a merged "
            "row's own number in its per-pair column), nothing loaded (off) and the configuration "
            "loaded (on), in the order off-on, on-off; `none` loads nothing in either and shows "
            "the noise. Worker CPU: the time page_hinting's worker ran on a CPU "
            "(`stats/worker_cpu_us`) as a share of both vCPUs' time in the on segments, what "
            "reporting took from the guest; worker busy: its wall time holding the worker "
            "(`stats/worker_busy_us`: waiting for the host and preempted included). "
            "on/off: the on segments' sum over the off segments', ± two standard errors of the "
            "mean pair ratio. A/A: the same workload's `none` run (nothing loaded in either "
            "half), the noise each ratio is read against. The zone lock holds are in their own "
            "table below (a single-vCPU run: with two, a hold can include the other vCPU's "
            "time slice):", "",
            "| workload | config | off | on | on/off | per pair | A/A on/off | reports | ranges "
            "| worker CPU | worker busy |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    aa = {r["workload"]: r["ratio"] for r in rows if "ratio" in r and r["config"] == "none"}
    for r in rows:
        if "ratio" in r:
            out.append(f"| {r['workload']} | {r['config']} | {r['off']} {r['unit']} | "
                       f"{r['on']} {r['unit']} | {r['ratio']} | {r['pair_ratios']}, "
                       f"{r['pairs']} pairs | {r.get('aa') or aa.get(r['workload'], '-')} | "
                       f"{r.get('reports', '-')} | {r.get('ranges', '-')} | {r.get('worker', '-')} | "
                       f"{r.get('busy', '-')} |")
    return out


def plot_spec(results, traces, meta):
    """What bench-plot draws: RSS over time per release workload, and the
    throughput/return trade-off."""
    panels = []
    for w, freed in WORKLOADS:
        if freed is None:
            continue
        series = []
        for conf in CONFIGS:
            tr = traces.get((conf[0], w))
            if tr:
                series.append({"name": conf[0], "points": tr, "thin": conf[0] not in MAIN})
        panels.append({
            "title": f"{w}: {freed} MiB freed at t=0" + (" (every other 4 KiB page)" if w == "scatter" else ""),
            "xlabel": "seconds since the free began", "ylabel": "host RSS change (MiB)",
            "series": series, "vline": {"x": 0.0, "label": "freed"},
            "hline": {"y": -float(freed), "label": f"all {freed} MiB back"},
        })
    # Trade-off: time to get 90% of bigfree back vs churn throughput.
    pts = []
    for conf in CONFIGS:
        t90 = [x["t90"] for x in results if x["config"] == conf[0] and x["workload"] == "bigfree"]
        thr = [x["ratio"] for x in results if x["config"] == conf[0] and x["workload"] == "churn"]
        if not thr or not t90:
            continue
        t = spread(t90)[0]
        x = t if t is not None else float(meta["window"])
        pts.append({"name": conf[0], "x": x, "y": 100 * statistics.median(thr), "never": t is None})
    panels.append({
        "title": "trade-off: return speed vs guest throughput (churn)",
        "xlabel": f"bigfree: seconds until 90% back ({meta['window']} = never)",
        "ylabel": "churn throughput, % of nothing loaded", "points": pts,
    })
    return {"title": f"page_hinting vs Linux free page reporting - QEMU {meta['accel'].upper()}, "
                     f"{meta['smp']} vCPUs, {meta['mem']} MiB guest, {meta['date']}",
            "panels": panels}


MAIN = {"none", "linux", "linux-o0", "ph", "ph-o0", "ph-engine"}


def huge_runs(kernel, initrd, outdir, args):
    """The host huge page runs, each setup and configuration args.reps times."""
    out = []
    for setup in HUGE_SETUPS:
        for conf in HUGE_CONFIGS:
            for rep in range(args.reps):
                t = time.monotonic()
                f = run_huge(kernel, initrd, outdir, setup, conf, rep, args)
                if f is None:
                    break
                out.append(f)
                print(f"[bench] hugetlb {setup[0]:<5} {conf[0]:<6} rep {rep}: {f['back_mib']} of "
                      f"{f['freed_mib']} MiB back, first page {fmt(f['first'], ' s', 2)} "
                      f"({time.monotonic() - t:.0f} s)", flush=True)
    return out


def build_plotter():
    return sh(os.path.join(TOOLS, "bench-plot.sh"))


def publish(outdir, md):
    dest = os.path.join(ROOT, "Documentation", "bench")
    os.makedirs(dest, exist_ok=True)
    # plot.json too: the curves of a later --merge on a machine that no
    # longer has this run's per-run files come from it.
    for f in ("bench.png", "results.csv", "results.json", "table.md", "plot.json"):
        shutil.copy(os.path.join(outdir, f), os.path.join(dest, f))
    readme = os.path.join(ROOT, "README.md")
    text = open(readme).read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        block = "\n\n![make bench](Documentation/bench/bench.png)\n\n" + md + "\n"
        open(readme, "w").write(head + begin + block + end + tail)
    print(f"[bench] published to {os.path.relpath(dest, ROOT)}/ and README.md")


def merge_published(outdir, meta, results, huge, foot, holds):
    """This run's results, completed with the published run's for what this
    one did not measure (--merge). The plot takes that run's curves from its
    per-run files if its results directory is still in the cache, else from
    the published plot.json (published_curves())."""
    old = json.load(open(os.path.join(ROOT, "Documentation", "bench", "results.json")))
    src = [d for d in glob.glob(os.path.join(os.path.dirname(outdir), "*"))
           if d != outdir and os.path.exists(os.path.join(d, "results.json"))
           and json.load(open(os.path.join(d, "results.json")))["meta"] == old["meta"]]
    if not src and not published_curves():
        print("[bench] --merge: neither the published run's results directory nor a published "
              "plot.json: the plot has only this run's curves", flush=True)
    for f in glob.glob(os.path.join(src[0], "runs", "*.json")) if src else []:
        dest = os.path.join(outdir, "runs", os.path.basename(f))
        if not os.path.exists(dest):
            shutil.copy(f, dest)
    ran = {(x["config"], x["workload"]) for x in results}
    kept = [x for x in old["results"] if (x["config"], x["workload"]) not in ran]
    # A kept throughput row goes on being read against the A/A of the run it
    # came from, not against this run's.
    old_aa = {r["workload"]: r["ratio"] for r in summarize(old["results"])
              if r["config"] == "none" and "ratio" in r}
    for x in kept:
        if "ratio" in x and "aa" not in x and x["config"] != "none" and x["workload"] in old_aa:
            x["aa"] = old_aa[x["workload"]]
    meta["merged"] = old["meta"].get("merged") or old["meta"]["date"]
    if meta["accel"] == "?":
        # No release run here: the merged ones say how they ran.
        meta["accel"] = old["meta"]["accel"]
    for x in results:
        x.setdefault("date", meta["date"])
    old_parts = old["meta"].get("merged_parts") or []
    for x in kept:
        # A row from before rows carried their date: the published run's,
        # or the run that one merged it from.
        if "date" not in x:
            x["date"] = (old["meta"]["merged"] if x["workload"] in old_parts
                         and isinstance(old_parts[0], str) else old["meta"]["date"])
    if kept:
        # The merged rows keep their own run's settings in the notes.
        by = {}
        for x in kept:
            by.setdefault((x["date"], x["workload"]), set()).add(x["config"])
        parts = []
        for date in sorted({d for d, _ in by}):
            works = sorted(w for d, w in by if d == date)
            for w in works:
                confs = by[(date, w)]
                every = {x["config"] for x in old["results"] if x["workload"] == w}
                what = w if confs == every else f"{w} of {', '.join(sorted(confs))}"
                parts.append({"what": what, "date": date})
        meta["merged_parts"] = parts
    # Per configuration (and workload) in the footprint and holds tables
    # too: a run that measured page_hinting alone keeps Linux's rows.
    foot_ran = {(x["config"], x["workload"]) for x in foot}
    foot += [x for x in old.get("footprint") or [] if (x["config"], x["workload"]) not in foot_ran]
    holds_ran = {x["config"] for x in holds}
    holds += [x for x in old.get("holds") or [] if x["config"] not in holds_ran]
    order = [c[0] for c in CONFIGS]
    holds.sort(key=lambda x: order.index(x["config"]) if x["config"] in order else len(order))
    return results + kept, huge or old.get("hugetlb") or [], foot, holds


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "2")))
    ap.add_argument("--window", type=int, default=10, help="seconds watched after each free")
    ap.add_argument("--seconds", type=int, default=5, help="one throughput segment, seconds")
    ap.add_argument("--pairs", type=int, default=6,
                    help="off/on segment pairs per throughput run (6: an A/A ratio of the page-fault "
                    "loop within ±0.5%%, 2026-12-03)")
    ap.add_argument("--only", help="comma-separated configurations")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=DRIVER:CMDLINE",
                    help="an extra configuration for this run, e.g. "
                    "'ph-off=ph:ph_param.enabled=0' (DRIVER: none, linux, ph, engine)")
    ap.add_argument("--work", help="comma-separated workloads")
    ap.add_argument("--no-publish", action="store_true")
    ap.add_argument("--merge", action="store_true",
                    help="complete this run's results with the published ones (Documentation/bench) "
                    "for the configurations, workloads and tables it did not run; the table says "
                    "which date each part comes from")
    ap.add_argument("--replot", help="redraw from an earlier results directory")
    ap.add_argument("--resume", metavar="DIR",
                    help="go on with the interrupted bench of results directory DIR, with the "
                    "same options: the runs it finished are read back, not run again")
    ap.add_argument("--no-icount", dest="icount", action="store_false",
                    help="run the throughput workloads on the host's clock, not under QEMU's "
                    "instruction counting (see ICOUNT)")
    ap.add_argument("--footprint-reps", type=int, default=1,
                    help="repetitions of the phases and fleet workloads")
    ap.add_argument("--hugetlb-only", action="store_true",
                    help="only the host huge page runs (their table, not published)")
    args = ap.parse_args()
    global FOOTPRINT_CONFIGS, FLEET_CONFIGS, HOLDS_CONFIGS
    for c in args.config:
        name, rest = c.split("=", 1)
        driver, cmdline = rest.split(":", 1)
        CONFIGS.append((name, driver, cmdline.replace(",", " "), None))
        # An extra configuration runs every workload it is asked for.
        FOOTPRINT_CONFIGS += (name,)
        FLEET_CONFIGS += (name,)
        HOLDS_CONFIGS += (name,)

    if args.hugetlb_only:
        kernel = sh(os.path.join(TOOLS, "kernel.sh"), "normal") + "/arch/x86/boot/bzImage"
        initrd = sh(os.path.join(TOOLS, "initramfs.sh"), "normal")
        outdir = os.path.join(os.path.dirname(initrd), "bench", time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(os.path.join(outdir, "runs"), exist_ok=True)
        huge = huge_runs(kernel, initrd, outdir, args)
        print(huge_table(huge, {"window": args.window}))
        return

    plotter = build_plotter()
    if args.replot:
        outdir = args.replot
    else:
        kernel = sh(os.path.join(TOOLS, "kernel.sh"), "normal") + "/arch/x86/boot/bzImage"
        initrd = sh(os.path.join(TOOLS, "initramfs.sh"), "normal")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        outdir = args.resume or os.path.join(os.path.dirname(initrd), "bench", stamp)
        os.makedirs(os.path.join(outdir, "runs"), exist_ok=True)
        disk = os.path.join(outdir, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(512 << 20)  # sparse: the guest's reads fill its page cache
        only = set(args.only.split(",")) if args.only else None
        works = set(args.work.split(",")) if args.work else None
        # Throughput runs pair their segments in one boot: one run each.
        plan = [(c, w, freed, rep) for rep in range(args.reps) for c in CONFIGS
                for w, freed in WORKLOADS
                if (only is None or c[0] in only) and (works is None or w in works)
                and (c[3] is None or w in c[3] or (works and w in works))
                and (freed is not None or rep == 0)]
        # The throughput runs first: instruction counting makes their
        # figures immune to what else the host runs, the others are not.
        plan.sort(key=lambda p: p[2] is not None)
        print(f"[bench] {len(plan)} guest runs ({args.reps} repetition(s)); results in {outdir}")
        results, accel, thr_accel = [], "?", "?"
        t_start = time.monotonic()
        for i, (c, w, freed, rep) in enumerate(plan):
            r, secs = run_one(kernel, initrd, disk, outdir, c, w, rep, args)
            if freed is None:
                thr_accel = r["accel"]
            else:
                accel = r["accel"]
            f, _ = figures(r, w, freed, args.window, args.seconds)
            f.update({"config": c[0], "workload": w, "rep": rep, "seconds": round(secs, 1)})
            results.append(f)
            brief = (f"{f['throughput_off']:.0f} -> {f['throughput']:.0f} {THROUGHPUT_UNIT[w]} "
                     f"({100 * f['ratio']:.1f}%)" if freed is None else
                     f"90% back {fmt(f['t90'], ' s', 2)}, {100 * f['back_10s']:.0f}% after "
                     f"{args.window} s")
            print(f"[bench] {i + 1}/{len(plan)} {c[0]:<10} {w:<9} rep {rep}: {brief} "
                  f"({secs:.0f} s)", flush=True)
        # The zone lock holds: one single-vCPU boot per configuration.
        holds = []
        if works is None or "holds" in works:
            for c in CONFIGS:
                if c[0] not in HOLDS_CONFIGS or (only and c[0] not in only):
                    continue
                h, secs = run_holds(kernel, initrd, outdir, c, args)
                holds.append(h)
                print(f"[bench] holds  {c[0]:<10}: reporting {fmt_us(h['report_lock_us'])}, "
                      f"free path {fmt_us(h['free_lock_us'])}, free hook "
                      f"{fmt_us(h['ph_irqoff_us'], 2)} ({secs:.0f} s)", flush=True)
        # The footprint workloads: one guest, then the fleet.
        foot = []
        if works is None or "phases" in works:
            for rep in range(args.footprint_reps):
                for c in CONFIGS:
                    if c[0] not in FOOTPRINT_CONFIGS or (only and c[0] not in only):
                        continue
                    r, secs = run_one(kernel, initrd, disk, outdir, c, "phases", rep, args)
                    accel = r["accel"]
                    f, _ = footprint(r)
                    f.update({"workload": "phases", "config": c[0], "rep": rep})
                    foot.append(f)
                    print(f"[bench] phases {c[0]:<10} rep {rep}: host RSS {f['avg_gib']:.3f} GiB "
                          f"on average, peak {f['peak_gib']:.3f} GiB ({secs:.0f} s)", flush=True)
        os.unlink(disk)
        if works is None or "fleet" in works:
            for rep in range(args.footprint_reps):
                for c in CONFIGS:
                    if c[0] not in FLEET_CONFIGS or (only and c[0] not in only):
                        continue
                    t = time.monotonic()
                    runs = run_fleet(kernel, initrd, outdir, c, rep, args)
                    accel = runs[0]["accel"]
                    f, _ = fleet_footprint(runs)
                    f.update({"workload": "fleet", "config": c[0], "rep": rep})
                    foot.append(f)
                    print(f"[bench] fleet  {c[0]:<10} rep {rep}: {FLEET} guests' host RSS "
                          f"{f['avg_gib']:.3f} GiB on average, peak {f['peak_gib']:.3f} GiB "
                          f"({time.monotonic() - t:.0f} s)", flush=True)
        # The host huge page runs belong to the whole bench, or to
        # --work hugefree.
        huge = huge_runs(kernel, initrd, outdir, args) if works is None or "hugefree" in works else []
        qemu = re.search(r"version (\S+)", sh("qemu-system-x86_64", "--version")).group(1)
        meta = {"date": time.strftime("%Y-%m-%d"), "reps": args.reps, "window": args.window,
                "seconds": args.seconds, "pairs": args.pairs, "accel": accel, "qemu": qemu, "smp": SMP, "mem": 1024,
                "icount": args.icount, "thr_accel": thr_accel,
                "minutes": round((time.monotonic() - t_start + REUSED_S[0]) / 60, 1)}
        if args.merge:
            results, huge, foot, holds = merge_published(outdir, meta, results, huge, foot, holds)
        json.dump({"meta": meta, "results": results, "hugetlb": huge, "footprint": foot,
                   "holds": holds},
                  open(os.path.join(outdir, "results.json"), "w"), indent=1)
        keys = ["config", "workload", "rep", "t50", "t90", "back_10s", "huge_before", "huge_after",
                "throughput_off", "throughput", "ratio", "reports", "ranges", "reported_mib",
                "worker_ms", "worker_cpu_pct", "worker_busy_pct", "zone_lock_max_us", "irqoff_max_us", "seconds"]
        with open(os.path.join(outdir, "results.csv"), "w", newline="") as fh:
            wr = csv.DictWriter(fh, keys, extrasaction="ignore")
            wr.writeheader()
            for x in results:
                wr.writerow(x)

    data = json.load(open(os.path.join(outdir, "results.json")))
    meta, results = data["meta"], data["results"]
    # The RSS traces of the first repetition are the plot's lines.
    traces = {}
    for x in results:
        freed = dict(WORKLOADS)[x["workload"]]
        if x["rep"] == 0 and freed is not None:
            js = os.path.join(outdir, "runs", f"{x['config']}.{x['workload']}.0.json")
            if not os.path.exists(js):
                # A merged row whose run is gone: its published curve.
                tr = published_curves().get((x["workload"], x["config"]))
                if tr:
                    traces[(x["config"], x["workload"])] = tr
                continue
            r = json.load(open(js))
            traces[(x["config"], x["workload"])] = figures(r, x["workload"], freed, meta["window"],
                                                           meta["seconds"])[1]
    rows = summarize(results)
    md = table_md(rows, meta)
    foot = data.get("footprint") or []
    if data.get("holds"):
        md += holds_table(data["holds"])
    if foot:
        md += footprint_table(foot)
    if data.get("hugetlb"):
        md += huge_table(data["hugetlb"], meta)
    open(os.path.join(outdir, "table.md"), "w").write(md)
    spec = os.path.join(outdir, "plot.json")
    plot = plot_spec(results, traces, meta)
    plot["panels"] += footprint_panels(outdir, foot)
    json.dump(plot, open(spec, "w"))
    subprocess.run([plotter, spec, os.path.join(outdir, "bench.png")], check=True)
    print(md)
    print(f"[bench] {outdir}/bench.png, results.csv, results.json, table.md"
          + (f" ({meta['minutes']} min)" if "minutes" in meta else ""))
    if not args.no_publish:
        publish(outdir, md)


if __name__ == "__main__":
    main()
