#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print the host-side RSS trace of a run-guest.py result as a text chart.

Usage: rss-trace.py RESULT.json [--step SECONDS]
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--step", type=float, default=0.5, help="seconds between printed rows")
    args = ap.parse_args()
    r = json.load(open(args.result))
    samples, marks = r["samples"], r["marks"]
    if not samples:
        print("no samples")
        return
    top = max(s[1] for s in samples) or 1
    width = 50
    print(f"QEMU process on the host, sampled every 100 ms ({len(samples)} samples); "
          f"'#' = RSS, scale {top // 1024} MiB")
    print(f"{'time s':>8} {'RSS MiB':>8} {'AnonHuge':>9}  chart / guest events")
    next_t, mi = 0.0, 0
    for t, rss, ahp, *_ in samples:
        events = []
        while mi < len(marks) and marks[mi][0] <= t:
            events.append(marks[mi][1])
            mi += 1
        if t < next_t and not events:
            continue
        next_t = t + args.step
        bar = "#" * max(1, round(rss / top * width))
        print(f"{t:8.1f} {rss / 1024:8.0f} {ahp / 1024:9.0f}  {bar:<{width}} {' '.join(events)}")


if __name__ == "__main__":
    main()
