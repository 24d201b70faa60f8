# SPDX-License-Identifier: GPL-2.0
"""Reading a run-guest.py result (its --json): the guest's PH-MARK events
and the host-side samples, on one clock. Shared by check-e2e.py and
bench.py."""


def marks(r, name):
    """Times and values of every PH-MARK name."""
    return [(t, v) for t, n, v in r["marks"] if n == name]


def sample_at(r, t):
    """(RSS KiB, AnonHugePages KiB) of the last sample at or before t."""
    best = None
    for s in r["samples"]:
        if s[0] <= t:
            best = s
    if best is None:
        raise AssertionError(f"no RSS sample before t={t}")
    return best[1], best[2]


def pool_at(r, t):
    """Free pages of the host's hugetlb pool (run-guest --hugetlb) in the
    last sample at or before t."""
    best = None
    for s in r["samples"]:
        if s[0] <= t and len(s) > 3 and s[3] is not None:
            best = s
    if best is None:
        raise AssertionError(f"no hugetlb pool sample before t={t}")
    return best[3]
