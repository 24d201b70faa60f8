#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench: page_hinting side by side with Linux's own free page reporting.

Boots the same guest kernel, under the same QEMU, once per configuration,
workload and repetition (guest scenario tools/guest/scenarios/bench.sh) and
reads the QEMU process's RSS and AnonHugePages every 100 ms from the host.

Configurations: no hinting; Linux's virtio_balloon free page reporting at its
default order and at order 0; page_hinting at its defaults, at min_order=0,
and with the threshold and idle flush swept.
Workloads: 700 MiB of THP freed at once (bigfree); every other 4 KiB page of
256 MiB freed (scatter); 400 MiB of page cache dropped (pagecache); steady
THP allocate/free churn (churn, MiB/s); a page_fault1-style loop (pagefault,
faults/s).

Writes results.json, results.csv, table.md, plot.json and bench.png to
$PAGE_HINTING_CACHE/out/bench/<time>/, prints the table and, unless
--no-publish, copies them to Documentation/bench/ and puts the table into
README.md between its bench markers.
"""

import argparse
import csv
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
    ("ph-t256", "ph", "ph_param.threshold_kb=256", ("bigfree", "churn")),
    ("ph-t65536", "ph", "ph_param.threshold_kb=65536", ("bigfree", "churn")),
    ("ph-f10", "ph", "ph_param.flush_ms=10", ("bigfree", "churn")),
    ("ph-f1000", "ph", "ph_param.flush_ms=1000", ("bigfree", "churn")),
    ("ph-d1000", "ph", "ph_param.delay_ms=1000", ("bigfree", "churn")),
    ("ph-d100", "ph", "ph_param.delay_ms=100", ("bigfree", "churn")),
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
            if all(len(x) > 3 for x in d):
                # The worker's busy time as a share of the CPUs' time in
                # the "on" segments: what reporting took from the guest.
                busy = sum(x[3] for x in d) / 1e6
                f["worker_cpu_pct"] = 100 * busy / (len(on) * seconds * SMP)
        return f, None
    c0, c1 = counts(r, "stats-before"), counts(r, "stats-after")
    if c0 and c1:
        f["reports"], f["ranges"] = c1[0] - c0[0], c1[1] - c0[1]
        f["reported_mib"] = (c1[2] - c0[2]) * 4 / 1024
        if len(c0) > 3 and len(c1) > 3:
            f["worker_ms"] = (c1[3] - c0[3]) / 1000
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


def run_one(kernel, initrd, disk, outdir, conf, work, rep, args):
    name, driver, extra, _ = conf
    tag = f"{name}.{work}.{rep}"
    js = os.path.join(outdir, "runs", tag + ".json")
    append = f"ph_bench.conf={driver} ph_bench.work={work} ph_bench.window={args.window} " \
             f"ph_bench.seconds={args.seconds} ph_bench.pairs={args.pairs} {extra}"
    cmd = [os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", "bench", "--append", append.strip(), "--timeout", "240",
           "--strict-console", "--quiet", "--json", js]
    if work == "pagecache":
        cmd += ["--disk", disk]
    if args.icount:
        cmd += ["--qemu-arg", ICOUNT]
    t = time.monotonic()
    r = launch(cmd, js, tag)
    return r, time.monotonic() - t


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
                row["pair_ratios"] = fmt_range([p for x in rs for p in x["pair_ratios"]], "%", 1, 100)
                if "worker_cpu_pct" in rs[0]:
                    row["worker"] = fmt_range([x["worker_cpu_pct"] for x in rs], "%", 2)
            else:
                row["freed_mib"] = freed
                row["t50_s"] = fmt_range([x["t50"] for x in rs], "", 2)
                row["t90_s"] = fmt_range([x["t90"] for x in rs], "", 2)
                row["back_10s"] = fmt_range([x["back_10s"] for x in rs], "%", 0, 100)
                row["huge_mib"] = fmt_range([x["huge_before"] for x in rs], "", 0) + " -> " + \
                    fmt_range([x["huge_after"] for x in rs], "", 0)
                if "worker_ms" in rs[0]:
                    row["worker"] = fmt_range([x["worker_ms"] for x in rs], " ms", 0)
            if "reports" in rs[0]:
                row["reports"] = fmt_range([x["reports"] for x in rs], "", 0)
                row["ranges"] = fmt_range([x["ranges"] for x in rs], "", 0)
            rows.append(row)
    return rows


def secs(s):
    return s if s.startswith("never") else s.split(" ", 1)[0] + " s" + \
        (" " + s.split(" ", 1)[1] if " " in s else "")


def table_md(rows, meta):
    out = [f"`make bench`, {meta['date']}, {meta.get('minutes', '?')} min: "
           f"{meta['reps']} repetition(s) of each free, median (min-max); "
           f"QEMU {meta['qemu']} ({meta['accel'].upper()}"
           + (", -icount: guest time counts instructions" if meta.get("icount") else "") + "), "
           f"{meta['smp']} vCPUs, {meta['mem']} MiB guest, host sampled every 100 ms, "
           f"{meta['window']} s window after each free.", ""]
    out += ["Memory freed in the guest, back to the host (QEMU RSS):", "",
            "| workload | config | freed | 50% back | 90% back | back after "
            f"{meta['window']} s | host AnonHugePages MiB | reports | ranges | worker busy |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "freed_mib" in r:
            out.append(f"| {r['workload']} | {r['config']} | {r['freed_mib']} MiB | "
                       f"{secs(r['t50_s'])} | {secs(r['t90_s'])} | {r['back_10s']} | {r['huge_mib']} | "
                       f"{r.get('reports', '-')} | {r.get('ranges', '-')} | {r.get('worker', '-')} |")
    out += ["", f"Guest throughput: after a warm-up segment, {meta['pairs']} pairs of "
            f"{meta['seconds']} s segments in one boot, nothing loaded (off) and the configuration "
            "loaded (on), in the order off-on, on-off; `none` loads nothing in either and shows "
            "the noise. Worker CPU: page_hinting's worker busy time (`stats/worker_busy_us`) as a "
            "share of both vCPUs' time in the on segments, what reporting took from the guest:", "",
            "| workload | config | off | on | on/off | per pair | reports | ranges | worker CPU |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ratio" in r:
            out.append(f"| {r['workload']} | {r['config']} | {r['off']} {r['unit']} | "
                       f"{r['on']} {r['unit']} | {r['ratio']} | {r['pair_ratios']} | "
                       f"{r.get('reports', '-')} | {r.get('ranges', '-')} | {r.get('worker', '-')} |")
    return "\n".join(out) + "\n"


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
    for f in ("bench.png", "results.csv", "results.json", "table.md"):
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "2")))
    ap.add_argument("--window", type=int, default=10, help="seconds watched after each free")
    ap.add_argument("--seconds", type=int, default=5, help="one throughput segment, seconds")
    ap.add_argument("--pairs", type=int, default=2, help="off/on segment pairs per throughput run")
    ap.add_argument("--only", help="comma-separated configurations")
    ap.add_argument("--work", help="comma-separated workloads")
    ap.add_argument("--no-publish", action="store_true")
    ap.add_argument("--replot", help="redraw from an earlier results directory")
    ap.add_argument("--icount", action="store_true",
                    help="run the guests under QEMU's instruction counting (see ICOUNT)")
    ap.add_argument("--hugetlb-only", action="store_true",
                    help="only the host huge page runs (their table, not published)")
    args = ap.parse_args()

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
        outdir = os.path.join(os.path.dirname(initrd), "bench", stamp)
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
                and (c[3] is None or w in c[3]) and (freed is not None or rep == 0)]
        print(f"[bench] {len(plan)} guest runs ({args.reps} repetition(s)); results in {outdir}")
        results, accel = [], "?"
        t_start = time.monotonic()
        for i, (c, w, freed, rep) in enumerate(plan):
            r, secs = run_one(kernel, initrd, disk, outdir, c, w, rep, args)
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
        os.unlink(disk)
        # The host huge page runs belong to the whole bench, or to
        # --work hugefree.
        huge = huge_runs(kernel, initrd, outdir, args) if works is None or "hugefree" in works else []
        qemu = re.search(r"version (\S+)", sh("qemu-system-x86_64", "--version")).group(1)
        meta = {"date": time.strftime("%Y-%m-%d"), "reps": args.reps, "window": args.window,
                "seconds": args.seconds, "pairs": args.pairs, "accel": accel, "qemu": qemu, "smp": SMP, "mem": 1024,
                "icount": args.icount,
                "minutes": round((time.monotonic() - t_start) / 60, 1)}
        json.dump({"meta": meta, "results": results, "hugetlb": huge},
                  open(os.path.join(outdir, "results.json"), "w"), indent=1)
        keys = ["config", "workload", "rep", "t50", "t90", "back_10s", "huge_before", "huge_after",
                "throughput_off", "throughput", "ratio", "reports", "ranges", "reported_mib",
                "worker_ms", "worker_cpu_pct", "seconds"]
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
            r = json.load(open(os.path.join(outdir, "runs", f"{x['config']}.{x['workload']}.0.json")))
            traces[(x["config"], x["workload"])] = figures(r, x["workload"], freed, meta["window"],
                                                           meta["seconds"])[1]
    rows = summarize(results)
    md = table_md(rows, meta)
    if data.get("hugetlb"):
        md += huge_table(data["hugetlb"], meta)
    open(os.path.join(outdir, "table.md"), "w").write(md)
    spec = os.path.join(outdir, "plot.json")
    json.dump(plot_spec(results, traces, meta), open(spec, "w"))
    subprocess.run([plotter, spec, os.path.join(outdir, "bench.png")], check=True)
    print(md)
    print(f"[bench] {outdir}/bench.png, results.csv, results.json, table.md"
          + (f" ({meta['minutes']} min)" if "minutes" in meta else ""))
    if not args.no_publish:
        publish(outdir, md)


if __name__ == "__main__":
    main()
