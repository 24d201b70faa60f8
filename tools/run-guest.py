#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot the page-hinting guest under QEMU, run one scenario, sample the host.

The guest's init runs the scenario named by ph.scenario= and hands its exit
status back through QEMU's isa-debug-exit device. While the guest runs, a
sampler reads the QEMU process's RSS and AnonHugePages from
/proc/PID/smaps_rollup every 100 ms; console lines are timestamped on the
same clock, so "PH-MARK" events from the guest line up with the samples.

The guest can also wait for the host. A second serial port (the guest's
ttyS1, read by its init into /tmp/host) carries the runner's answers: with
`--on NAME=ACTION`, the runner carries out ACTION when the guest prints
"PH-MARK NAME" and then writes "NAME done" (or "NAME timeout") on that port.
Actions:

  pause:SECS             stop the VM through QMP (needs --qmp) for SECS
                         seconds, then let it go on
  rss-fall:MARK:MIB:LIM  wait until the QEMU process's RSS is MIB below what
                         it was at the guest's latest mark MARK, at most LIM
                         seconds
  qom-set:PATH:PROP:VAL  set a QOM property through QMP (needs --qmp), e.g.
                         a virtio-mem device's requested-size
  pool-rise:MARK:N:LIM   wait until the host's hugetlb pool (--hugetlb) has
                         N more free pages than at the guest's latest mark
                         MARK, at most LIM seconds
  balloon:MIB            ask the balloon for a guest of MIB MiB (QMP
                         balloon; needs --qmp), and answer at once
  balloon-actual:OP:MIB:LIM
                         wait until the balloon's actual size (QMP
                         query-balloon) is OP (le or ge) MIB MiB, at most LIM
                         seconds
  guest-stats:LIM        have the balloon poll the guest's statistics every
                         second (QOM guest-stats-polling-interval) and wait
                         until two updates came in after the mark, at most
                         LIM seconds; each update is a "stats" event

With --hugetlb KB, guest RAM is a memfd of KB-KiB hugetlb pages (QEMU's
memory-backend-memfd,hugetlb=on), and every sample also reads the pool's
free_hugepages: the host gets memory back from such a guest only in whole
host pages, and RSS does not show hugetlb memory at all. The pool must hold
the pages (nr_hugepages) before the guest boots; the caller reserves them.

Every mark also takes a sample on the spot, so a check can read the host's
view at the instant the guest said something, without waiting for the next
period. Tests wait for such events, never for a fixed time.

Exit status: the scenario's own status, 124 when the guest timed out (it is
killed and the runner says so), 125 when QEMU failed on its own.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("PAGE_HINTING_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "page-hinting")


def read_rollup(pid):
    """(Rss, AnonHugePages) of a process in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    rss = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
    ahp = re.search(r"^AnonHugePages:\s+(\d+) kB", text, re.M)
    if not rss:
        return None
    return int(rss.group(1)), int(ahp.group(1)) if ahp else 0


def qmp(path, *commands):
    """Runs QMP commands on QEMU's monitor socket; returns the replies."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as so:
        so.settimeout(10)
        so.connect(path)
        f = so.makefile("rw")
        json.loads(f.readline())  # greeting
        out = []
        for c in ("qmp_capabilities",) + commands:
            c = c if isinstance(c, dict) else {"execute": c}
            f.write(json.dumps(c) + "\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    out.append(r)
                    break
        return out[1:]


# Actions that talk to QEMU's monitor (a socket is made for them).
QMP_ACTIONS = ("pause", "qom-set", "balloon", "balloon-actual", "guest-stats")
BALLOON = "/machine/peripheral/balloon0"


def balloon_actual_mib(path):
    """The balloon's actual guest size in MiB (QMP query-balloon)."""
    r = qmp(path, "query-balloon")[0]
    return r["return"]["actual"] >> 20 if "return" in r else None


def pool_dir(kb):
    return f"/sys/kernel/mm/hugepages/hugepages-{kb}kB"


def read_pool_free(kb):
    """Free pages of the host's hugetlb pool of KB-KiB pages, or None."""
    try:
        with open(os.path.join(pool_dir(kb), "free_hugepages")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def parse_rule(text):
    """NAME=ACTION (see the module docstring) -> (name, kind, params)."""
    name, _, action = text.partition("=")
    kind, *params = action.split(":")
    if kind == "pause" and len(params) == 1:
        return name, kind, (float(params[0]),)
    if kind == "rss-fall" and len(params) == 3:
        return name, kind, (params[0], float(params[1]), float(params[2]))
    if kind == "qom-set" and len(params) == 3:
        return name, kind, tuple(params)
    if kind == "pool-rise" and len(params) == 3:
        return name, kind, (params[0], int(params[1]), float(params[2]))
    if kind == "balloon" and len(params) == 1:
        return name, kind, (int(params[0]),)
    if kind == "balloon-actual" and len(params) == 3 and params[0] in ("le", "ge"):
        return name, kind, (params[0], int(params[1]), float(params[2]))
    if kind == "guest-stats" and len(params) == 1:
        return name, kind, (float(params[0]),)
    raise argparse.ArgumentTypeError(f"bad --on rule {text!r}")


def hugetlb_args(args):
    """QEMU arguments for guest RAM on host huge pages (--hugetlb)."""
    if not args.hugetlb:
        return []
    hp = args.hugetlb_mib or args.mem
    backend = f"memory-backend-memfd,size={hp}M,hugetlb=on,hugetlbsize={args.hugetlb}K"
    if hp >= args.mem:
        return ["-M", "pc,memory-backend=ram0", "-object", f"{backend},id=ram0"]
    # The first MiB of guest RAM on huge pages, the rest on ordinary
    # memory after it: two NUMA nodes to QEMU, one node to a guest without
    # CONFIG_NUMA. The early allocations the guest makes from the top of
    # its memory (its memmap) then land in the ordinary part.
    cpus = int(str(args.smp).split(",")[0])
    return ["-object", f"{backend},id=hp0",
            "-object", f"memory-backend-ram,id=rest0,size={args.mem - hp}M",
            "-numa", f"node,nodeid=0,cpus=0-{cpus - 1},memdev=hp0",
            "-numa", "node,nodeid=1,memdev=rest0"]


def qemu_cmd(args, accel, chan=None):
    # no5lvl: 4-level paging, as on most hosts. With 5-level paging a
    # KASAN kernel (the debug guest) can report a false wild-memory-access
    # when an interrupt lands in identify_cpu() between the memset() of
    # boot_cpu_data.x86_capability and its refill: until alternatives are
    # patched, pgtable_l5_enabled() reads X86_FEATURE_LA57 from there, so
    # KASAN's idea of the address space shrinks to 47 bits and the
    # interrupt's irq_desc lock looks wild (seen once in CI, at boot,
    # before the module was loaded).
    #
    # rcupdate.rcu_cpu_stall_suppress_at_boot: no RCU stall warning before
    # /init runs (the module is not loaded yet). Under TCG on a busy host
    # the switch to the refined TSC clocksource (stop_machine) can make
    # jiffies jump by a minute: the debug guest then warned of an RCU
    # stall at boot when another guest ran beside it. Stalls once /init
    # runs are still reported, and fail strict runs.
    append = ("console=ttyS0 panic=-1 loglevel=7 no5lvl rcupdate.rcu_cpu_stall_suppress_at_boot=1"
              " ph.scenario=%s %s" % (args.scenario, args.append))
    cmd = [
        "qemu-system-x86_64", "-nodefaults", "-no-reboot", "-display", "none",
        # Without ACPI, as Firecracker: QEMU names the virtio-mmio devices
        # on the kernel command line (virtio_mmio.device=).
        *(["-M", "microvm,acpi=off"] if args.machine == "microvm" else []),
        *hugetlb_args(args),
        "-m", str(args.mem) + args.mem_opts, "-smp", str(args.smp),
        "-kernel", args.kernel, "-initrd", args.initrd, "-append", append.strip(),
        "-serial", "stdio",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    if chan:
        # The host channel: the guest's ttyS1, QEMU connects to the runner.
        cmd += ["-chardev", f"socket,id=hostchan,path={chan},server=off"]
        # microvm instantiates one ISA serial port; the second is added.
        cmd += (["-device", "isa-serial,chardev=hostchan"] if args.machine == "microvm"
                else ["-serial", "chardev:hostchan"])
    if accel == "kvm":
        cmd += ["-accel", "kvm", "-cpu", "host"]
    else:
        cmd += ["-accel", "tcg" + (",thread=single" if args.tcg_single else ""), "-cpu", "max"]
    if args.balloon:
        # On microvm, virtio devices sit on virtio-mmio (as on Firecracker),
        # announced to the kernel on its command line (virtio_mmio.device=).
        dev = "virtio-balloon-device" if args.machine == "microvm" else "virtio-balloon-pci"
        cmd += ["-device", f"{dev},id=balloon0,free-page-reporting=on" + args.balloon_opts]
    if args.disk:
        cmd += ["-drive", f"file={args.disk},format=raw,if=virtio,cache=unsafe"
                + (",snapshot=on" if args.snapshot else "")]
    if args.qmp:
        cmd += ["-qmp", f"unix:{args.qmp},server=on,wait=off"]
    for a in args.qemu_arg:
        cmd += shlex.split(a)
    return cmd


def run(args, accel, quiet=False):
    """Runs one guest; returns the result dict."""
    tmp = tempfile.mkdtemp(prefix="ph-run-")
    chan_path = os.path.join(tmp, "chan")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(chan_path)
    listener.listen(1)
    if args.qmp is None and any(kind in QMP_ACTIONS for _, kind, _ in args.on):
        args = argparse.Namespace(**vars(args))
        args.qmp = os.path.join(tmp, "qmp")
    cmd = qemu_cmd(args, accel, chan_path)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    console, samples, marks, events = [], [], [], []
    done = threading.Event()
    lock = threading.Lock()
    chan = {}

    def now():
        return round(time.monotonic() - t0, 3)

    def sample(t=None):
        r = read_rollup(proc.pid)
        if r is not None:
            pool = read_pool_free(args.hugetlb) if args.hugetlb else None
            with lock:
                samples.append((now() if t is None else t, r[0], r[1], pool))

    def sampler():
        while not done.is_set():
            sample()
            done.wait(args.interval)

    def accept():
        listener.settimeout(30)
        try:
            chan["sock"], _ = listener.accept()
        except OSError:
            pass

    acc = threading.Thread(target=accept, daemon=True)
    acc.start()

    def answer(name, word):
        acc.join(30)
        with lock:
            events.append((now(), name, word))
        so = chan.get("sock")
        if so is not None:
            try:
                so.sendall(f"{name} {word}\n".encode())
            except OSError:
                pass

    def at_mark(mark, field=1):
        # The latest such mark: a scenario may print it more than once.
        t = next((t for t, n, _ in reversed(marks) if n == mark), None)
        if t is None:
            return None
        with lock:
            before = [s for s in samples if s[0] <= t]
        return before[-1][field] if before else None

    def rss_at_mark(mark):
        return at_mark(mark)

    def act(name, kind, params):
        if kind == "pause":
            secs, = params
            try:
                qmp(args.qmp, "stop")
                with lock:
                    events.append((now(), name, "stop"))
                time.sleep(secs)
                qmp(args.qmp, "cont")
                with lock:
                    events.append((now(), name, "cont"))
            except OSError as e:
                answer(name, f"error {e}")
                return
            answer(name, "done")
        elif kind == "qom-set":
            path, prop, val = params
            value = int(val) if val.isdigit() else val
            try:
                r = qmp(args.qmp, {"execute": "qom-set", "arguments":
                                   {"path": path, "property": prop, "value": value}})
            except OSError as e:
                answer(name, f"error {e}")
                return
            answer(name, "done" if "return" in r[0] else f"error {r[0].get('error')}")
        elif kind == "rss-fall":
            mark, mib, limit = params
            ref = rss_at_mark(mark)
            deadline = time.monotonic() + limit
            while ref is not None and time.monotonic() < deadline and proc.poll() is None:
                with lock:
                    last = samples[-1][1]
                if ref - last >= mib * 1024:
                    answer(name, "done")
                    return
                time.sleep(args.interval)
            answer(name, "timeout")
        elif kind == "balloon":
            mib, = params
            try:
                r = qmp(args.qmp, {"execute": "balloon", "arguments": {"value": mib << 20}})
            except OSError as e:
                answer(name, f"error {e}")
                return
            answer(name, "done" if "return" in r[0] else f"error {r[0].get('error')}")
        elif kind == "balloon-actual":
            op, mib, limit = params
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    a = balloon_actual_mib(args.qmp)
                except OSError:
                    a = None
                if a is not None and (a <= mib if op == "le" else a >= mib):
                    sample()
                    with lock:
                        events.append((now(), name, f"actual {a}"))
                    answer(name, "done")
                    return
                time.sleep(args.interval)
            answer(name, "timeout")
        elif kind == "guest-stats":
            limit, = params
            deadline = time.monotonic() + limit
            seen = []
            try:
                qmp(args.qmp, {"execute": "qom-set", "arguments": {
                    "path": BALLOON, "property": "guest-stats-polling-interval", "value": 1}})
                while time.monotonic() < deadline and proc.poll() is None and len(seen) < 3:
                    r = qmp(args.qmp, {"execute": "qom-get", "arguments": {
                        "path": BALLOON, "property": "guest-stats"}})[0]
                    st = r.get("return", {})
                    upd = st.get("last-update", 0)
                    if upd and (not seen or upd != seen[-1]):
                        seen.append(upd)
                        with lock:
                            events.append((now(), name, "stats " + json.dumps(st.get("stats", {}))))
                    time.sleep(args.interval)
            except OSError as e:
                answer(name, f"error {e}")
                return
            # The first update seen may predate the mark: two more after it.
            answer(name, "done" if len(seen) >= 3 else "timeout")
        elif kind == "pool-rise":
            mark, pages, limit = params
            ref = at_mark(mark, 3)
            deadline = time.monotonic() + limit
            while ref is not None and time.monotonic() < deadline and proc.poll() is None:
                free = read_pool_free(args.hugetlb)
                if free is not None and free - ref >= pages:
                    sample()
                    answer(name, "done")
                    return
                time.sleep(args.interval)
            answer(name, "timeout")

    th = threading.Thread(target=sampler, daemon=True)
    th.start()

    def reader():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            t = round(time.monotonic() - t0, 3)
            console.append((t, line))
            m = re.search(r"PH-MARK (\S+)(.*)$", line)
            if m:
                sample(t)
                marks.append((t, m.group(1), m.group(2).strip()))
                for name, kind, params in args.on:
                    if name == m.group(1):
                        threading.Thread(target=act, args=(name, kind, params),
                                         daemon=True).start()
            if not quiet:
                print(f"[{t:8.3f}] {line}", flush=True)

    rd = threading.Thread(target=reader, daemon=True)
    rd.start()
    timed_out = False
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    rd.join(5)
    done.set()
    th.join()
    listener.close()
    if chan.get("sock") is not None:
        chan["sock"].close()
    try:
        shutil.rmtree(tmp)
    except OSError:
        pass
    samples.sort(key=lambda s: s[0])

    rc = proc.returncode
    if timed_out:
        status = 124
    elif rc is not None and rc > 0 and rc % 2 == 1:
        status = rc >> 1  # isa-debug-exit: (status << 1) | 1
    else:
        status = 125
    return {
        "scenario": args.scenario, "accel": accel, "qemu": cmd,
        "qemu_returncode": rc, "status": status, "timed_out": timed_out,
        "seconds": round(time.monotonic() - t0, 3),
        # The host's CLOCK_MONOTONIC at t=0: runs side by side line up.
        "start_monotonic": t0,
        "console": console, "samples": samples, "marks": marks, "events": events,
    }


def pick_accel(args):
    """TCG unless a probe boot proves KVM works on this machine (cached)."""
    if args.accel != "auto":
        return args.accel
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    key = "%s %s" % (os.uname().release, os.stat(args.kernel).st_mtime_ns)
    cache = os.path.join(CACHE, "kvm-probe")
    try:
        with open(cache) as f:
            k, verdict = f.read().rsplit(" ", 1)
            if k == key:
                return verdict.strip()
    except (OSError, ValueError):
        pass
    probe = argparse.Namespace(**vars(args))
    probe.scenario, probe.timeout, probe.qmp, probe.on = "probe", 40, None, []
    r = run(probe, "kvm", quiet=True)
    verdict = "kvm" if r["status"] == 0 else "tcg"
    print(f"[run-guest] KVM probe: {'boots' if verdict == 'kvm' else 'does not boot'} "
          f"this kernel; using {verdict.upper()}", file=sys.stderr)
    os.makedirs(CACHE, exist_ok=True)
    with open(cache, "w") as f:
        f.write(f"{key} {verdict}\n")
    return verdict


SPLAT = re.compile(r"WARNING:|BUG:|BUG |Oops|general protection|INFO: possible|INFO: trying to register"
                   r"|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|turning off the locking correctness"
                   r"|possible recursive locking"
                   r"|possible circular locking|inconsistent lock state|bad page|Bad page"
                   r"|KASAN|UBSAN|kernel BUG|Call Trace:|pagealloc: memory corruption"
                   r"|rcu_sched detected stall|RCU stall|soft lockup|hung task|Kernel panic")


def splats(console):
    """Console lines that mean the kernel complained."""
    return [(t, line) for t, line in console if SPLAT.search(line)]


def summarize(r):
    s = r["samples"]
    out = [f"[run-guest] scenario {r['scenario']}: status {r['status']}"
           f"{' (TIMED OUT, guest killed)' if r['timed_out'] else ''}, "
           f"{r['seconds']:.1f} s, accel {r['accel']}, {len(s)} RSS samples"]
    if s:
        out.append(f"[run-guest] QEMU RSS: first {s[0][1] // 1024} MiB, "
                   f"max {max(x[1] for x in s) // 1024} MiB, last {s[-1][1] // 1024} MiB")
        pools = [x[3] for x in s if len(x) > 3 and x[3] is not None]
        if pools:
            out.append(f"[run-guest] host hugetlb pool, free pages: first {pools[0]}, "
                       f"min {min(pools)}, max {max(pools)}, last {pools[-1]}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--mem", type=int, default=1024, help="guest MiB")
    ap.add_argument("--mem-opts", default="",
                    help="appended to -m (e.g. ',slots=1,maxmem=2048M' for memory hotplug)")
    ap.add_argument("--qemu-arg", action="append", default=[],
                    help="more QEMU arguments (split like a shell would), repeatable")
    ap.add_argument("--smp", default="2", help="QEMU's -smp (a count, or e.g. '2,sockets=2')")
    ap.add_argument("--accel", choices=["auto", "tcg", "kvm"], default="auto")
    # One host thread for all vCPUs under TCG (see tools/check-distro.sh for
    # why Debian's kernels need it here).
    ap.add_argument("--tcg-single", action="store_true")
    # microvm: QEMU's minimal machine, virtio-mmio only, the stand-in for
    # Firecracker. An ELF vmlinux as --kernel boots through its PVH entry
    # on either machine (cloud-hypervisor's way in).
    ap.add_argument("--machine", choices=["pc", "microvm"], default="pc")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before the guest is killed")
    ap.add_argument("--interval", type=float, default=0.1, help="sampling period, seconds")
    ap.add_argument("--hugetlb", type=int, metavar="KB",
                    help="back guest RAM with KB-KiB host huge pages (2048, 1048576) and "
                    "sample the pool's free pages")
    ap.add_argument("--hugetlb-mib", type=int, metavar="MIB",
                    help="with --hugetlb: only the first MIB of guest RAM on huge pages, "
                    "the rest ordinary memory")
    ap.add_argument("--no-balloon", dest="balloon", action="store_false")
    ap.add_argument("--balloon-opts", default="", help="extra virtio-balloon-pci options")
    ap.add_argument("--qmp", help="QMP unix socket path")
    ap.add_argument("--on", type=parse_rule, action="append", default=[], metavar="MARK=ACTION",
                    help="when the guest prints PH-MARK MARK, carry out ACTION and answer "
                    "on the host channel (see above)")
    ap.add_argument("--disk", help="a raw image the guest sees as /dev/vda (virtio-blk)")
    ap.add_argument("--snapshot", action="store_true",
                    help="the guest's writes to --disk go to a temporary overlay "
                    "(QEMU's snapshot=on): the image stays as it was")
    ap.add_argument("--strict-console", action="store_true",
                    help="fail (status 1) on WARNING:, BUG:, lockdep, bad page or KASAN-style lines")
    ap.add_argument("--json", help="write the result (console, samples, marks) here")
    ap.add_argument("--quiet", action="store_true", help="do not echo the console")
    args = ap.parse_args()
    if args.hugetlb and args.machine != "pc":
        ap.error("--hugetlb needs --machine pc")

    accel = pick_accel(args)
    r = run(args, accel, quiet=args.quiet)
    bad = splats(r["console"]) if args.strict_console else []
    if bad:
        print("[run-guest] the console shows kernel warnings or splats:", file=sys.stderr)
        for t, line in bad[:20]:
            print(f"  [{t:8.3f}] {line}", file=sys.stderr)
        if r["status"] == 0:
            r["status"] = 1
    r["splats"] = bad
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f)
    if r["timed_out"]:
        print(f"[run-guest] TIMEOUT: the guest did not finish within {args.timeout:.0f} s "
              "and was killed", file=sys.stderr)
    if r["status"] == 125:
        tail = "\n".join(line for _, line in r["console"][-20:])
        print(f"[run-guest] QEMU exited with {r['qemu_returncode']} without a guest status:\n{tail}",
              file=sys.stderr)
    print(summarize(r), file=sys.stderr)
    sys.exit(r["status"])


if __name__ == "__main__":
    main()
