#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest scenarios on the normal kernel with assertions on the host side.

Each scenario boots the guest, runs, and is judged by its exit status, a
clean console (no warning or splat) and what the host-side sampler saw.
"""
import json
import os
import shutil
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
from runlog import marks, pool_at, reserve_hugetlb, sample_at  # noqa: E402


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


PAUSE_SECS = 3.0
# A bound on a failing run only (the runner answers "timeout" after it):
# what the checks wait for comes back within seconds (Linux's reporting
# gives half of 400 MiB back in about 2 s, page_hinting 96 MiB of
# scattered pages in under 1 s).
RSS_FALL_LIMIT = 240


def boot(kernel, initrd, outdir, name, scenario, timeout=300, extra=(), append=()):
    js = os.path.join(outdir, name + ".json")
    # Several --append arguments become one command line.
    extra, append = list(extra), list(append)
    while "--append" in extra:
        i = extra.index("--append")
        append.append(extra[i + 1])
        del extra[i:i + 2]
    if append:
        extra += ["--append", " ".join(append)]
    # PH_E2E_QEMU_ARG="-s": more QEMU arguments (a gdb stub, to look at a
    # guest that hangs).
    if os.environ.get("PH_E2E_QEMU_ARG"):
        extra += ["--qemu-arg=" + os.environ["PH_E2E_QEMU_ARG"]]
    cmd = [os.path.join(TOOLS, "run-guest.py"), "--kernel", kernel, "--initrd", initrd,
           "--scenario", scenario, "--timeout", str(timeout), "--strict-console", "--quiet",
           "--json", js, *extra]
    rc = subprocess.run(cmd).returncode
    r = json.load(open(js))
    if rc != 0:
        # What the guest said when it failed (lib.sh's fail: the module's
        # statistics and /proc/buddyinfo), then the end of the console.
        tail = r["console"][-30:]
        for _, line in r["console"]:
            if line.startswith("PH-FAIL") and (_, line) not in tail:
                print("  | " + line)
        for _, line in tail:
            print("  | " + line)
        # Again after the tail: CI shows the end of the output only, and
        # run-guest printed them (to stderr) before the console.
        for t, line in r.get("splats", [])[:20]:
            print(f"  splat [{t:8.3f}] {line}")
    return rc, r


def mark_time(r, name):
    for t, n, _ in r["marks"]:
        if n == name:
            return t
    raise AssertionError(f"the guest never printed PH-MARK {name}")


def rss_at(r, t):
    """RSS (KiB) of the last sample at or before t."""
    return sample_at(r, t)[0]


MIB = 1024  # KiB


def mark_value(r, name):
    v = marks(r, name)
    if not v:
        raise AssertionError(f"the guest never printed PH-MARK {name}")
    return int(v[0][1].split()[0])


def first_time(r, t0, t1, pred, field=1):
    """Seconds from t0 to the first sample in [t0, t1] whose field (1:
    RSS, 3: the hugetlb pool's free pages) is there and meets pred."""
    for s in r["samples"]:
        if t0 <= s[0] <= t1 and len(s) > field and s[field] is not None and pred(s[field]):
            return s[0] - t0
    return None


def check_load_unload(r):
    assert r["status"] == 0


def check_demo(r):
    # The sampler must see the guest's 400 MiB arrive in the QEMU process:
    # this proves the host-side measurement that later scenarios rely on.
    # The runner samples at every mark: "freeing" is the instant before the
    # munmap, with all of it touched and held.
    t_loaded, t_held = mark_time(r, "loaded"), mark_time(r, "freeing")
    rise = (rss_at(r, t_held) - rss_at(r, t_loaded)) / 1024
    print(f"  host RSS rose by {rise:.0f} MiB while the guest touched 400 MiB")
    assert rise >= 0.9 * 400, f"host RSS rose by only {rise:.0f} MiB"


def check_free700(r):
    # 700 MiB freed at once: the host gets >= 90% of it back, and the
    # guest's reported pages agree with the host's drop.
    freed = 700
    # Read at the guest's marks (the runner samples at each): "before" is
    # the guest's mark with all of it touched and reporting settled, right
    # before it lets memhog free (free_measured in lib.sh), "after" once the
    # guest's reports are in and nothing more is on the way (it waits for
    # that, not for a time). Not memhog's own "freeing" mark: reports can
    # reach the host before that line does, so its sample may already be
    # below the peak (seen on microvm: 504 instead of 845 MiB).
    t_freeing = mark_time(r, "before")
    t_freed, t_after = mark_time(r, "freed"), mark_time(r, "after")
    base = rss_at(r, mark_time(r, "loaded"))
    peak = rss_at(r, t_freeing)
    end = rss_at(r, t_after)
    fall = (peak - end) / MIB
    t90 = first_time(r, t_freeing, t_after, lambda rss: peak - rss >= 0.9 * freed * MIB)
    reported = (mark_value(r, "after") - mark_value(r, "before")) * 4 / MIB
    print(f"  host RSS {base / MIB:.0f} -> {peak / MIB:.0f} MiB with {freed} MiB touched, "
          f"{end / MIB:.0f} MiB once reporting settled ({t_after - t_freed:.1f} s after the "
          f"free): {fall:.0f} MiB "
          f"({100 * fall / freed:.0f}%) back; 90% back "
          + (f"{t90:.1f} s after the guest let memhog free" if t90 is not None else "never")
          + f"; guest reported {reported:.0f} MiB")
    assert peak - base >= 0.9 * freed * MIB, "the guest's memory never reached the host"
    assert fall >= 0.9 * freed, f"only {fall:.0f} of {freed} MiB came back"
    # RSS moves in whole host pages and also by QEMU's own allocations:
    # agree within 5% of the freed amount. The host cannot get back more
    # than the guest reported. The other way round holds only where every
    # free was captured as it was: frees that overflowed the per-CPU buffers
    # are kept as pfn spans and everything free in a span is reported,
    # including memory the host never backed (a kernel without THP, as
    # PREEMPT_RT is, frees the 700 MiB as 179200 single pages).
    spans = [int(l.split()[2]) for _, l in r["console"] if l.startswith("stat overflow_spans ")]
    assert spans, "no statistics in the console"
    print(f"  overflow spans: {spans[-1]}")
    assert reported >= fall - 0.05 * freed, \
        f"guest reported {reported:.0f} MiB, host saw {fall:.0f} MiB"
    assert spans[-1] > 0 or reported <= fall + 0.05 * freed, \
        f"guest reported {reported:.0f} MiB, host saw {fall:.0f} MiB"


def check_scatter(r):
    # Every other 4 KiB page of 256 MiB freed (128 MiB): with min_order=0
    # most of it comes back; with the default min_order nothing is
    # reported and the host keeps its huge pages.
    scattered = 128
    starts = marks(r, "scattering")
    scats = marks(r, "freed-scattered")
    assert len(starts) == 2 and len(scats) == 2, "memhog did not run twice"
    out = {}
    for (t_b, _), (t_s, _), tag in zip(starts, scats, ("o0", "o9")):
        t_mid = mark_time(r, f"{tag}-mid")
        # Before the first page is freed (hinting reports during the loop).
        rss0, huge0 = sample_at(r, t_b)
        rss1, huge1 = sample_at(r, t_mid)
        rep = mark_value(r, f"{tag}-mid") - mark_value(r, f"{tag}-before")
        out[tag] = ((rss0 - rss1) / MIB, huge0 / MIB, huge1 / MIB, rep * 4 / MIB)
        print(f"  {tag}: host RSS fell {out[tag][0]:.0f} MiB of {scattered} MiB scattered "
              f"(freeing took {t_s - t_b:.1f} s, settled {t_mid - t_s:.1f} s after); "
              f"AnonHugePages {out[tag][1]:.0f} -> {out[tag][2]:.0f} MiB; "
              f"guest reported {out[tag][3]:.0f} MiB")
    fall0, _, _, rep0 = out["o0"]
    assert fall0 >= 0.75 * scattered, f"min_order=0: only {fall0:.0f} MiB came back"
    assert rep0 >= 0.75 * scattered, f"min_order=0: the guest reported only {rep0:.0f} MiB"
    # The guest may report other free memory meanwhile (pages that were
    # never backed on the host): the host's view is what proves that none
    # of the scattered pages went back.
    fall9, h0, h1, _ = out["o9"]
    assert fall9 <= 8, f"default min_order: host RSS fell {fall9:.0f} MiB"
    assert h1 >= h0 - 8, f"default min_order: host AnonHugePages fell {h0 - h1:.0f} MiB"


def check_linux_balloon(r):
    # Linux's virtio_balloon with free page reporting still works here.
    freed = 400
    # The guest waits until the runner sees half of it back on the host
    # (--on fallen=rss-fall:freeing:200:...), then marks done.
    t_freeing, t_done = mark_time(r, "freeing"), mark_time(r, "done")
    peak = rss_at(r, t_freeing)
    fall = (peak - rss_at(r, t_done)) / MIB
    t50 = first_time(r, t_freeing, t_done, lambda rss: peak - rss >= 0.5 * freed * MIB)
    print(f"  virtio_balloon: {fall:.0f} of {freed} MiB back {t_done - t_freeing:.1f} s after "
          "the free; 50% back " + (f"after {t50:.1f} s" if t50 is not None else "never"))
    assert fall >= 0.5 * freed, f"virtio_balloon returned only {fall:.0f} MiB"
    rep, free = (int(v) / 1000 for v in marks(r, "holds")[0][1].split())
    print(f"  longest zone lock hold: Linux's reporting {rep:.1f} us, the free path {free:.1f} us")


def check_knobs(r):
    for m in ("params-refused", "params-taken", "knobs-validated", "knobs-effective"):
        mark_time(r, m)
    # The ABI document lists exactly the files the module creates.
    files = {line.split()[1] for _, line in r["console"] if line.startswith("sysfs-file ")}
    abi = os.path.join(os.path.dirname(TOOLS), "Documentation", "ABI", "testing",
                       "sysfs-kernel-mm-page_hinting")
    # (The entry for the directory itself is its introduction.)
    documented = {line.split()[1] for line in open(abi)
                  if line.startswith("What:") and not line.rstrip().endswith("/")}
    assert files, "the guest listed no sysfs file"
    assert files == documented, \
        f"undocumented: {sorted(files - documented)}; documented, absent: {sorted(documented - files)}"
    print(f"  {len(files)} sysfs files, each documented in {os.path.relpath(abi, os.path.dirname(TOOLS))}")


def check_pause(r):
    # The monitor stopped the VM and let it go on, between two rounds of
    # frees: the marks show the gap, and reporting went on after it. The
    # guest asked for the pause after round 2 and freed 4 more rounds after
    # the runner's answer (pause.sh), so this holds on any machine.
    acts = [(w, t) for t, n, w in r["events"] if n == "pause-point"]
    assert [w for w, _ in acts] == ["stop", "cont", "done"], f"runner events: {r['events']}"
    t_stop, t_cont = acts[0][1], acts[1][1]
    rounds = marks(r, "round")
    # The gap that spans the stop: its first mark was read before the cont,
    # its second after the stop (a line the stop cut in two is read around
    # the cont, so the two event times are not a clean cut).
    spans = [(rounds[k][0] - rounds[k - 1][0], k) for k in range(1, len(rounds))
             if rounds[k - 1][0] <= t_cont and rounds[k][0] >= t_stop]
    assert spans, "the pause did not land among the rounds"
    gap, i = max(spans)
    assert gap >= PAUSE_SECS, f"no pause between rounds (largest gap {gap:.1f} s)"
    assert i >= 2, f"the pause came after {i} round(s), before the guest asked for it"
    assert len(rounds) - i >= 4, \
        f"the pause did not land among the rounds ({len(rounds) - i} after it)"
    before, after = int(rounds[i][1]), int(rounds[-1][1])
    print(f"  VM stopped for {PAUSE_SECS:.0f} s after round {i} of {len(rounds)} "
          f"(gap {gap:.1f} s); reported pages {before} -> {after} after it")
    assert after > before, "nothing was reported after the VM went on"
    mark_time(r, "pause-done")


def check_marks(*names):
    def check(r):
        for m in names:
            mark_time(r, m)
    return check


def pool_first_rise(r, t0, t1, base):
    """Seconds from t0 to the first sample in [t0, t1] whose hugetlb pool
    has more free pages than base, or None."""
    return first_time(r, t0, t1, lambda free: free > base, field=3)


def check_hugetlb_2m(r):
    # 700 MiB freed from a guest on 2 MiB host pages: at least 90% of it
    # back in the host's pool, as whole free pages, and the guest's count
    # agrees. (RSS does not show hugetlb memory.)
    freed = 700
    t_before, t_freeing = mark_time(r, "before"), mark_time(r, "freeing")
    t_after = mark_time(r, "after")
    p0, p1 = pool_at(r, t_before), pool_at(r, t_after)
    back = (p1 - p0) * 2
    first = pool_first_rise(r, t_freeing, t_after, p0)
    reported = (mark_value(r, "after") - mark_value(r, "before")) * 4 / MIB
    print(f"  host pool: {p0} -> {p1} free 2 MiB pages: {back} MiB of {freed} MiB back "
          f"({100 * back / freed:.0f}%); first page back "
          + (f"{first:.2f} s after the free" if first is not None else "never")
          + f"; guest reported {reported:.0f} MiB")
    assert back >= 0.9 * freed, f"only {back} of {freed} MiB came back to the pool"
    assert reported >= back - 0.05 * freed, f"guest reported {reported:.0f} MiB, pool got {back} MiB"


def check_hugetlb_1g(r):
    # 2 GiB freed in a guest on 1 GiB host pages: the pool gets its
    # movable GiB back as one free page, and the guest's count
    # of host pages reported agrees.
    t_before, t_freeing = mark_time(r, "before"), mark_time(r, "freeing")
    t_after = mark_time(r, "after")
    p0, p1 = pool_at(r, t_before), pool_at(r, t_after)
    guest = mark_value(r, "after") - mark_value(r, "before")
    first = pool_first_rise(r, t_freeing, t_after, p0)
    print(f"  host pool: {p0} -> {p1} free 1 GiB pages; first page back "
          + (f"{first:.2f} s after the free" if first is not None else "never")
          + f"; guest reported {guest} host page(s)"
          + f" ({mark_time(r, 'reported') - t_freeing:.2f} s after the free)")
    assert p1 - p0 >= 1, "no 1 GiB page came back to the pool"
    # The guest may report its ordinary third GiB too, and a consolidated
    # GiB twice (once while it holds it, once marked): never fewer.
    assert guest >= p1 - p0, f"the pool got {p1 - p0} pages, the guest reported {guest}"


def check_hugetlb_integrity(r):
    mark_time(r, "stress-done")
    rep, cons = (int(x) for x in marks(r, "integrity")[0][1].split())
    pools = [s[3] for s in r["samples"] if len(s) > 3 and s[3] is not None]
    print(f"  {rep} host page(s) reported and {cons} consolidated during the stress; "
          f"host pool free pages between {min(pools)} and {max(pools)}")


def check_on(text, check):
    """check, and the console shows text (how the guest was booted)."""
    def run(r):
        assert any(text in line for _, line in r["console"]), f"no {text!r} in the console"
        check(r)
    return run


def check_engine_balloon(r):
    # The balloon's statistics came in while page_hinting reported, and
    # QMP balloon moved MemTotal both ways.
    stats = [w for _, n, w in r["events"] if n == "stats" and w.startswith("stats ")]
    assert len(stats) >= 3, f"guest-stats updates seen: {len(stats)}"
    free = [json.loads(w[6:]).get("stat-free-memory", -1) >> 20 for w in stats]
    assert all(f > 0 for f in free), f"stat-free-memory not served: {stats}"
    m0 = mark_value(r, "deflated")
    m1 = mark_value(r, "inflated")
    rss_in = rss_at(r, mark_time(r, "inflated")) / MIB
    rss_out = rss_at(r, mark_time(r, "deflated")) / MIB
    print(f"  guest-stats: {len(stats)} updates while reporting, free memory "
          + " -> ".join(f"{f} MiB" for f in free)
          + f"; MemTotal {m0 // MIB} -> {m1 // MIB} -> {m0 // MIB} MiB (QMP balloon), "
          f"host RSS {rss_in:.0f} MiB inflated, {rss_out:.0f} MiB deflated")
    check_marks("stats-reported", "done")(r)


def check_engine_oom(r):
    # deflate-on-oom: the balloon gave memory back under pressure.
    acts = {n: w for _, n, w in r["events"] if w.startswith("actual ")}
    assert "inflated" in acts and "deflated" in acts, f"runner events: {r['events']}"
    print(f"  balloon: guest left {acts['inflated'][7:]} MiB; deflated to "
          f"{acts['deflated'][7:]} MiB under a 512 MiB program")
    check_marks("done")(r)


ENGINE_ORDERS = ("--append", "page_reporting.page_reporting_order=0",
                 "--on", f"fallen=rss-fall:freeing:200:{RSS_FALL_LIMIT}")


POISON = "init_on_free=1"
HUGE_1G = ("--mem", "3072", "--hugetlb", str(1 << 20), "--hugetlb-mib", "2048",
           "--append", "movablecore=2G")
# (name, guest scenario, check, extra run-guest arguments)
SCENARIOS = [
    ("load-unload", "load-unload", check_load_unload, ()),
    ("demo", "demo", check_demo, ()),
    ("knobs", "knobs", check_knobs, ()),
    ("free700", "free700", check_free700, ()),
    ("scatter", "scatter", check_scatter,
     ("--on", f"o0-back=rss-fall:scattering:96:{RSS_FALL_LIMIT}")),
    ("linux-balloon", "linux-balloon", check_linux_balloon,
     ("--on", f"fallen=rss-fall:freeing:200:{RSS_FALL_LIMIT}")),
    ("integrity", "integrity", check_marks("stress-done", "integrity"), ()),
    # The stress in the other configurations users run (issue 44): small
    # blocks reported at once (settle_ms=0), and the engine mode through
    # virtio_balloon at the device's own order and at order 0.
    ("integrity-settle0", "integrity", check_marks("stress-done", "integrity"),
     ("--append", "ph_param.settle_ms=0")),
    ("integrity-engine", "integrity", check_marks("stress-done", "integrity"),
     ("--append", "ph_param.transport=engine")),
    ("integrity-engine-o0", "integrity", check_marks("stress-done", "integrity"),
     ("--append", "ph_param.transport=engine page_reporting.page_reporting_order=0")),
    ("reload", "reload", check_marks("reload-done"), ()),
    ("cpuhotplug", "cpuhotplug", check_marks("hotplug-done"), ()),
    ("pressure", "pressure", check_marks("baseline-done", "pressure-done"), ()),
    ("pause", "pause", check_pause, ("--on", f"pause-point=pause:{PAUSE_SECS:g}")),
    ("no-reporting", "no-reporting", check_marks("refused"),
     ("--balloon-opts", ",free-page-reporting=off")),
    ("unbind", "unbind", check_marks("unbound", "rebound", "done"), ()),
    # The Rust driver's one log line when the host asks for a balloon size.
    ("virtio-size", "virtio-size", check_marks("size-logged-once"),
     ("--on", "inflate=balloon:768", "--on", "inflate2=balloon:640")),
    ("poison-negotiated", "poison", check_marks("poison-negotiated", "hypercall-refused"),
     ("--append", POISON)),
    ("poison-refused", "poison", check_marks("poison-refused", "hypercall-refused"),
     ("--append", POISON + " ph_expect=refused", "--balloon-opts", ",page-poison=off")),
    # Stand-ins for the samples' VMMs: QEMU's microvm has only virtio-mmio,
    # the transport Firecracker gives its guests; "--pvh" boots the ELF
    # vmlinux through its PVH entry, as cloud-hypervisor does (QEMU boots an
    # ELF kernel only through its PVH note, and refuses one without).
    ("microvm", "free700", check_on("virtio_mmio.device=", check_free700), ("--machine", "microvm")),
    ("pvh", "free700", check_free700, ("--pvh",)),
    # Guest RAM on the host's huge pages (issue 16), which the test
    # reserves (HUGETLB below). 1 GiB pages: a 3 GiB guest whose first
    # 2 GiB are two host pages; ZONE_MOVABLE from 1 GiB up keeps the
    # kernel's own allocations out of the second, and its memmap (placed
    # at the top of memory) lands in the ordinary third GiB.
    # transport=engine: Linux's virtio_balloon owns the device and
    # page_hinting reports through its page reporting callback (issue 15).
    ("engine-free700", "free700", check_on("engine active", check_free700),
     ("--append", "ph_mode=engine")),
    ("engine-balloon", "engine-balloon", check_engine_balloon,
     ("--on", "stats=guest-stats:120", "--on", "inflate=balloon:768",
      "--on", "deflate=balloon:1024")),
    ("engine-oom", "engine-oom", check_engine_oom,
     ("--balloon-opts", ",deflate-on-oom=on", "--on", "inflate=balloon:384",
      "--on", "inflated=balloon-actual:le:400:300",
      "--on", "deflated=balloon-actual:ge:480:60")),
    # Loaded at the very start of init and freeing at once (issue 38).
    ("early-load", "early-load", check_marks("early-loaded", "early-done"), ()),
    ("engine-orders", "engine-orders",
     check_marks("ph-first", "balloon-unloaded", "balloon-reloaded", "ph-unloaded",
                 "mm-resumed", "done"), ENGINE_ORDERS),
    ("hugetlb-2m", "hugetlb-2m", check_hugetlb_2m, ("--hugetlb", "2048")),
    ("hugetlb-1g", "hugetlb-1g", check_hugetlb_1g, HUGE_1G),
    ("hugetlb-1g-integrity", "hugetlb-1g-integrity", check_hugetlb_integrity, HUGE_1G),
]
# Host huge pages each scenario needs in the pool: (KiB, pages).
HUGETLB = {"hugetlb-2m": (2048, 512), "hugetlb-1g": (1 << 20, 2),
           "hugetlb-1g-integrity": (1 << 20, 2)}

# What real guests run, on the debug kernel (tools/kconfig/debug.config:
# memory hotplug, virtio-mem, NUMA, CMA, suspend, ...) with the test build
# of the module (its KUnit suites do not run at each load: kunit.enable=0).
VMEM = (
    # One socket per node: CPUs of one package on two nodes make the
    # kernel warn about the topology.
    "--smp", "2,sockets=2",
    "--mem-opts", ",slots=1,maxmem=2048M",
    "--qemu-arg", "-object memory-backend-ram,id=m0,size=512M "
    "-object memory-backend-ram,id=m1,size=512M "
    "-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 "
    "-object memory-backend-ram,id=vmem0,size=512M "
    "-device virtio-mem-pci,id=vm0,memdev=vmem0,node=1,requested-size=0",
    "--append", "memhp_default_state=online_movable",
    "--on", "plug=qom-set:/machine/peripheral/vm0:requested-size:536870912",
    "--on", "unplug=qom-set:/machine/peripheral/vm0:requested-size:0",
)
DEBUG_SCENARIOS = [
    ("stuck-unload", "stuck-unload", check_marks("stuck", "stuck-unload-done"), ()),
    ("suspend", "suspend", check_marks("suspend-done"), ()),
    ("vmem", "vmem", check_marks("vmem-done"), VMEM),
    ("offline-held", "offline-held", check_marks("offline-started", "offline-held-done"), VMEM),
    ("cma", "cma", check_marks("cma-done"), ("--append", "cma=64M")),
]
DEBUG = {n for n, *_ in DEBUG_SCENARIOS}

# Run only when named (make soak): the integrity stress for longer.
SOAK = [
    ("integrity-soak", "integrity", check_marks("stress-done", "integrity"),
     ("--append", "ph_stress_ops=20000")),
]


def check_image():
    """make check-distro: the Debian 12 image of tools/image.sh, booted by
    systemd from its own disk, kernel and initramfs; page_hinting loaded by
    systemd-modules-load from the package's modules-load.d entry, and the
    700 MiB free coming back (tools/guest/image/ph-image-test.sh)."""
    img = sh(os.path.join(TOOLS, "image.sh"))
    outdir = os.path.join(os.path.dirname(img), "e2e")
    os.makedirs(outdir, exist_ok=True)
    print("[check-e2e] image (Debian 12, systemd, the packages of make packages)")
    rc, r = boot(os.path.join(img, "vmlinuz"), os.path.join(img, "initrd.img"), outdir, "image",
                 "image", timeout=900, append=["root=/dev/vda rw"],
                 extra=("--disk", os.path.join(img, "disk.raw"), "--snapshot", "--mem", "1536",
                        "--accel", "tcg", "--tcg-single"))
    try:
        assert rc == 0, f"guest status {rc}" + (
                f" (the console shows {len(r['splats'])} kernel splat line(s), above)"
                if r.get("splats") else "")
        t_init = next((t for t, line in r["console"] if "PH-INIT image" in line), None)
        assert t_init is not None, "the image's test service never ran"
        print(f"  systemd reached the test {t_init:.1f} s after QEMU started")
        check_marks("loaded", "image-done")(r)
        check_free700(r)
        print(f"[check-e2e] image: ok ({r['seconds']:.0f} s)")
    except AssertionError as e:
        print(f"[check-e2e] image: FAILED: {e}")
        sys.exit(1)

def main():
    if sys.argv[1:] == ["--image"]:
        check_image()
        return
    variants = {}

    # PH_E2E_DIR=DIR: the initramfs images are copied into DIR when the run
    # starts and the results go there, so that a long run (--repeat) goes
    # on with the module it started with while other work rebuilds it.
    own = os.environ.get("PH_E2E_DIR")

    def artifacts(variant):
        if variant not in variants:
            kernel = sh(os.path.join(TOOLS, "kernel.sh"), variant) + "/arch/x86/boot/bzImage"
            initrd = sh(os.path.join(TOOLS, "initramfs.sh"), variant)
            if own:
                os.makedirs(own, exist_ok=True)
                copy = os.path.join(own, os.path.basename(initrd))
                shutil.copyfile(initrd, copy)
                initrd = copy
            variants[variant] = (kernel, initrd)
        return variants[variant]

    brk = os.environ.get("PH_BREAK")
    only = sys.argv[1:]
    # --repeat N: the named scenarios N times in a row (a loop that shows an
    # intermittent failure is gone); the failures are counted per scenario.
    repeat = 1
    if only[:1] == ["--repeat"]:
        repeat, only = int(only[1]), only[2:]
        assert only, "--repeat needs scenario names"
    # --stress N: the whole run beside `stress-ng --cpu N` on the host (the
    # guests' vCPUs then share the host's CPUs with it).
    stress = None
    if only[:1] == ["--stress"]:
        cpus, only = only[1], only[2:]
        stress = subprocess.Popen(["stress-ng", "--cpu", cpus, "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"[check-e2e] beside stress-ng --cpu {cpus}")
    # --variant distro|rt: the named scenarios of SCENARIOS on that kernel
    # (make check-distro), with the production build of the module.
    forced = None
    if only[:1] == ["--variant"]:
        forced, only = only[1], only[2:]
        assert only, "--variant needs scenario names"
    failed, skipped = [], []
    soak = {n for n, *_ in SOAK}
    runs = [s for s in SCENARIOS + DEBUG_SCENARIOS + SOAK
            if ((s[0] in only) if only else (s[0] not in soak))]
    for rep in range(repeat):
        if repeat > 1:
            print(f"[check-e2e] run {rep + 1} of {repeat}")
        for name, scenario, check, extra in runs:
            debug = name in DEBUG
            variant = forced or ("debug" if debug else "normal")
            kernel, initrd = artifacts(variant)
            if "--pvh" in extra:
                extra = tuple(a for a in extra if a != "--pvh")
                kernel = kernel.replace("arch/x86/boot/bzImage", "vmlinux")
            outdir = os.path.join(os.path.dirname(initrd), "e2e" + ("" if variant == "normal" else f"-{variant}")
                                  + (f"-break-{brk}" if brk else ""))
            os.makedirs(outdir, exist_ok=True)
            print(f"[check-e2e] {name}" + ("" if variant == "normal" else f" ({variant} kernel)"))
            # A bound on a hung run only: the debug kernel's scenarios take
            # minutes where the others take seconds (vmem: 281 s here, and a
            # slower machine once ran past 600 s), so theirs is far above that.
            timeout = 3600 if name in soak else 1500 if debug else 600
            # PH_E2E_TIMEOUT=SECONDS: a shorter bound while chasing a hang.
            timeout = int(os.environ.get("PH_E2E_TIMEOUT", timeout))
            if forced:
                # Debian's kernels under multi-threaded TCG: see tools/check-distro.sh.
                extra = (*extra, "--tcg-single")
            restore = None
            if name in HUGETLB:
                restore, why = reserve_hugetlb(*HUGETLB[name])
                if restore is None:
                    print(f"[check-e2e] {name}: SKIPPED: {why}")
                    skipped.append(name)
                    continue
            try:
                rc, r = boot(kernel, initrd, outdir, name, scenario, timeout=timeout, extra=extra,
                             append=(["kunit.enable=0"] if debug else []) + ["ph.audit"])
            finally:
                if restore is not None:
                    restore()
            try:
                assert rc == 0, f"guest status {rc}" + (
                    f" (the console shows {len(r['splats'])} kernel splat line(s), above)"
                    if r.get("splats") else "")
                check(r)
                print(f"[check-e2e] {name}: ok ({r['seconds']:.0f} s)")
            except AssertionError as e:
                print(f"[check-e2e] {name}: FAILED: {e}")
                failed.append(name if repeat == 1 else f"{name}#{rep + 1}")
    if stress is not None:
        stress.terminate()
        stress.wait()
    if repeat > 1:
        print(f"[check-e2e] {repeat} runs of {len(runs)} scenario(s): {len(failed)} failed")
    if skipped:
        print(f"[check-e2e] skipped (the host could not reserve their huge pages): {' '.join(skipped)}")
    if failed:
        print(f"[check-e2e] failed: {' '.join(failed)}")
        sys.exit(1)
    print("[check-e2e] all scenarios passed" + (f" but {len(skipped)} skipped" if skipped else ""))


if __name__ == "__main__":
    main()
