#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's layout rules, checked on its sources (make check-host):

- dependencies between the crate's top-level modules point one way
  (Documentation/mm/page_hinting.rst, "Layout"): an edge not in ALLOWED fails;
- `unsafe` and `bindings::` appear only in the abstraction layer
  (rust/kernel_ext/) and the test build's rust/tests/, and every other module
  forbids unsafe code.

Prints the dependency graph and the unsafe blocks per file.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUST = ROOT / "rust"
CORE = {"batch", "capture", "hv", "knobs", "ranges", "retry", "settle"}
ALLOWED = {
    "page_hinting_main": {"sysfs", "transport", "hinting", "kernel_ext", "core", "tests"},
    "sysfs": {"hinting", "kernel_ext", "core"},
    "transport": {"hinting", "kernel_ext", "core"},
    "hinting": {"kernel_ext", "core"},
    "kernel_ext": {"core"},
    "tests": {"hinting", "kernel_ext", "core", "sysfs", "transport"},
}
UNSAFE_OK = {"kernel_ext", "tests"}


def module_of(path):
    rel = path.relative_to(RUST)
    if rel.parts[0] == "page_hinting_main.rs":
        return "page_hinting_main"
    if rel.parts[0] == "core":
        return "core"
    return rel.parts[0].removesuffix(".rs")


def strip_comments(text):
    return "\n".join(l.split("//")[0] for l in text.splitlines())


bad = []
test_only = set()
graph = {}
unsafe_counts = []
for f in sorted(RUST.glob("**/*.rs")):
    rel = f.relative_to(RUST)
    if rel.parts[0] == "core" and rel.parts[1] != "src":
        continue
    mod = module_of(f)
    if mod == "core":
        continue
    text = f.read_text()
    code = strip_comments(text)
    deps = set()
    lines = code.splitlines()
    for i, line in enumerate(lines):
        for m in re.findall(r"\bcrate::(\w+)", line):
            # The test build's switches (rust/tests/hooks.rs), reached from
            # a line that only the test build compiles.
            if m == "tests" and mod != "tests" and "ph_tests" in " ".join(lines[max(0, i - 1):i + 1]):
                test_only.add((mod, str(rel)))
                continue
            deps.add("core" if m in CORE else m)
    for m in re.findall(r"\bsuper::(\w+)", code):
        pass  # within the module
    if mod == "page_hinting_main":
        deps |= {m for m in re.findall(r"^\s*(?:pub )?mod (\w+);", code, re.M) if m not in CORE}
        deps |= set(re.findall(r"^use (\w+)::", code, re.M)) - {"kernel", "core"}
    deps.discard(mod)
    deps.discard("VERSION")
    graph.setdefault(mod, set()).update(deps)
    n_unsafe = len(re.findall(r"\bunsafe\s*\{", code)) + len(re.findall(r"\bunsafe\s+impl\b", code))
    n_bind = len(re.findall(r"\bbindings::", code))
    unsafe_counts.append((str(rel), n_unsafe, n_bind))
    if mod not in UNSAFE_OK and (n_unsafe or n_bind):
        bad.append(f"rust/{rel}: {n_unsafe} unsafe, {n_bind} bindings:: outside the abstraction layer")
    if mod not in UNSAFE_OK and mod != "page_hinting_main" and rel.name in ("mod.rs", f"{mod}.rs"):
        if "#![forbid(unsafe_code)]" not in text:
            bad.append(f"rust/{rel}: module {mod} does not forbid unsafe code")

for mod, deps in sorted(graph.items()):
    extra = deps - ALLOWED.get(mod, set())
    print(f"[check-layout] {mod} -> {', '.join(sorted(deps)) or '(nothing)'}")
    if extra:
        bad.append(f"module {mod} depends on {', '.join(sorted(extra))}, against the layout")
for mod, f in sorted(test_only):
    print(f"[check-layout] {mod} -> tests (rust/{f}, test build only: #[cfg(ph_tests)])")
total = sum(n for _, n, _ in unsafe_counts)
print("[check-layout] unsafe blocks and impls per file: " +
      ", ".join(f"{p} {n}" for p, n, _ in unsafe_counts if n) + f" (total {total})")
shipped = sum(n for p, n, _ in unsafe_counts if not p.startswith("tests/"))
print(f"[check-layout] in the shipped module: {shipped}, all in rust/kernel_ext/")
for b in bad:
    print(f"[check-layout] error: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
