# SPDX-License-Identifier: GPL-2.0
"""Reading a run-guest.py result (its --json): the guest's PH-MARK events
and the host-side samples, on one clock; and reserving the host huge pages
a run on them needs. Shared by check-e2e.py and bench.py."""

import os
import subprocess


def marks(r, name):
    """Times and values of every PH-MARK name."""
    return [(t, v) for t, n, v in r["marks"] if n == name]


def last_sample(r, t, field, what):
    """The last sample at or before t that has field (1: RSS, 3: the hugetlb
    pool's free pages)."""
    best = None
    for s in r["samples"]:
        if s[0] <= t and len(s) > field and s[field] is not None:
            best = s
    if best is None:
        raise AssertionError(f"no {what} sample before t={t}")
    return best


def sample_at(r, t):
    """(RSS KiB, AnonHugePages KiB) of the last sample at or before t."""
    best = last_sample(r, t, 1, "RSS")
    return best[1], best[2]


def pool_at(r, t):
    """Free pages of the host's hugetlb pool (run-guest --hugetlb) in the
    last sample at or before t."""
    return last_sample(r, t, 3, "hugetlb pool")[3]


def reserve_hugetlb(kb, pages):
    """Makes PAGES free pages of KB KiB in the host's hugetlb pool for one
    run. Returns (restore, None), or (None, why) where the host cannot."""
    d = f"/sys/kernel/mm/hugepages/hugepages-{kb}kB"
    nr_path = os.path.join(d, "nr_hugepages")

    def read(name):
        with open(os.path.join(d, name)) as f:
            return int(f.read())

    if not os.path.isdir(d):
        return None, f"the host kernel has no {kb} KiB huge pages"
    nr0 = read("nr_hugepages")

    def restore():
        with open(nr_path, "w") as f:
            f.write(str(nr0))

    def grow():
        short = pages - read("free_hugepages")
        if short > 0:
            with open(nr_path, "w") as f:
                f.write(str(read("nr_hugepages") + short))
        return read("free_hugepages") >= pages

    try:
        if grow():
            return restore, None
        # Fragmented host memory: compact it (and drop the page cache
        # that may pin it) and try once more.
        subprocess.run(["sync"], check=False)
        for path, val in (("/proc/sys/vm/drop_caches", "3"), ("/proc/sys/vm/compact_memory", "1")):
            with open(path, "w") as f:
                f.write(val)
        if grow():
            return restore, None
        got = read("free_hugepages")
        restore()
        return None, f"the host could reserve only {got} of {pages} {kb} KiB huge pages"
    except OSError as e:
        return None, f"cannot reserve {kb} KiB huge pages ({e})"
