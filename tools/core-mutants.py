#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check that the core's tests catch real bugs: apply each hand-written
mutation to rust/core/src in turn, run the unit + property tests and the
matching fuzz target (from an empty corpus), report what failed, and put the
source back. Exits non-zero if a mutant survives both.

Usage: tools/core-mutants.py [--fuzz-seconds N] [mutant...]

The mutations match the source text exactly: update them with the code.
Needs cargo-fuzz (tools/core-fuzz.sh installs it)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = os.path.join(ROOT, "rust", "core")
CACHE = os.environ.get("PAGE_HINTING_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "page-hinting")

# name: (file, original text, mutated text, fuzz target)
MUTANTS = {
    "merge-no-adjacent": (
        "src/ranges.rs", "if s <= cur.end && t >= cur.start {",
        "if s < cur.end && t >= cur.start {", "pipeline"),
    "cut-off-by-one": (
        "src/ranges.rs", "let start = r.start.checked_add(mask)? & !mask;",
        "let start = r.start.checked_add(mask + 1)? & !mask;", "pipeline"),
    "batch-drop-leftover": (
        "src/batch.rs", "self.leftover = rest;",
        "let _ = rest;\n        self.leftover = None;", "pipeline"),
    "capture-threshold-gt": (
        "src/capture.rs", "if self.len == N || self.pending_pages >= threshold_pages {",
        "if self.len == N || self.pending_pages > threshold_pages {", "pipeline"),
    "sort-network-missing-comparator": (
        "src/ranges.rs", "network_sort!(network_sort4, 4, 0 1, 2 3, 0 2, 1 3, 1 2);",
        "network_sort!(network_sort4, 4, 0 1, 2 3, 0 2, 1 3);", "pipeline"),
    "knobs-overflow-wraps": (
        "src/knobs.rs", "value = match value.checked_mul(10) {",
        "value = match Some(value.wrapping_mul(10)) {", "knobs"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-seconds", type=int, default=60)
    ap.add_argument("mutants", nargs="*", choices=[[]] + list(MUTANTS), default=[])
    args = ap.parse_args()
    # Failures of mutants are not regressions: keep proptest from saving them.
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(CACHE, "target"),
               CARGO_BUILD_JOBS=os.environ.get("CARGO_BUILD_JOBS", "2"),
               PROPTEST_DISABLE_FAILURE_PERSISTENCE="1")
    fenv = dict(env, CARGO_TARGET_DIR=os.path.join(CACHE, "target-fuzz"), RUSTC_BOOTSTRAP="1",
                PATH=os.path.join(CACHE, "cargo-fuzz", "bin") + os.pathsep + os.environ["PATH"])
    survivors = 0
    for name in args.mutants or MUTANTS:
        rel, old, new, target = MUTANTS[name]
        path = os.path.join(CORE, rel)
        src = open(path).read()
        if src.count(old) != 1:
            sys.exit(f"{name}: the text to mutate is not in {rel} exactly once; update {__file__}")
        try:
            with open(path, "w") as f:
                f.write(src.replace(old, new))
            r = subprocess.run(["cargo", "test", "--no-fail-fast", "-q"], cwd=CORE, env=env,
                               capture_output=True, text=True)
            failed = sorted({t for t in re.findall(r"^    (\S+)$", r.stdout + r.stderr, re.M)
                             if re.fullmatch(r"[a-z_:0-9]+", t)})
            print(f"{name}: cargo test {'FAILED' if r.returncode else 'passed'}: "
                  f"{', '.join(failed) or '-'}", flush=True)
            fuzz_caught = False
            if args.fuzz_seconds > 0:
                with tempfile.TemporaryDirectory() as tmp:
                    os.mkdir(os.path.join(tmp, "corpus"))
                    r = subprocess.run(
                        ["cargo", "fuzz", "run", target, os.path.join(tmp, "corpus"), "--",
                         f"-max_total_time={args.fuzz_seconds}", f"-artifact_prefix={tmp}/"],
                        cwd=CORE, env=fenv, capture_output=True, text=True)
                out = r.stdout + r.stderr
                where = re.search(r"panicked at (\S+)", out)
                execs = re.findall(r"^#(\d+)", out, re.M)
                fuzz_caught = r.returncode != 0 and where is not None
                if r.returncode != 0 and where is None:
                    print(out[-3000:])
                print(f"{name}: fuzz {target}: "
                      + (f"caught after ~{execs[-1] if execs else '?'} runs ({where.group(1) if where else 'crash'})"
                         if fuzz_caught else "survived"), flush=True)
            if not failed and not fuzz_caught:
                survivors += 1
        finally:
            with open(path, "w") as f:
                f.write(src)
    print(f"[core-mutants] {len(args.mutants or MUTANTS)} mutants, {survivors} survived")
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
