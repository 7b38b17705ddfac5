#!/usr/bin/env python3
"""The benchmark proper (scripts/bench builds the programs and runs this).

For each target -- where users keep their images -- one daemon serves the
disks, and in each round every pattern runs once through the daemon
(virtio-ivshmem-bench, the userspace front-end modelling the cell's driver)
and once as fio --ioengine=io_uring on the same file or device, with the
same direct=0 (the daemon opens images buffered) and --invalidate=0 (fio
would otherwise drop the page cache the daemon reads from); with --cache
none the daemon serves its disks with cache = none (O_DIRECT) and fio runs
with direct=1 on the file and loop targets alike.  Rounds
interleave the two (which one goes first alternates), so neighbours in time
see the same machine; the report gives medians and [min-max] ranges.

Targets: file (an image on the disk's own file system, in page cache:
/var/tmp), loop (a block device: a loop device with direct I/O over a file
on that disk, filled through the device so its page cache is warm; needs
root and losetup), tmpfs (/dev/shm), null (the daemon's null disk: no data
at all, the transport's own floor; no fio run).

Cost per request (medians): CPU of the daemon (all its threads, io_uring
workers included, apart as well), of the bench and of fio (wait4: every
thread and child process); context switches; read/write-family system
calls of the daemon and the bench (tests/bench_cost.h says what each
counts).  The host's busy share during each run is recorded: other
tenants show there.

hipri=1 patterns model a cell that polls (virtio_blk poll_queues, io_uring
IOPOLL): no interrupts, no sleep; fio runs them without --hipri (page cache
never sleeps; loop devices and files cannot be polled).

Wake cost: with a QD 1 pattern, each round also measures what waking a
thread asleep in poll() costs the machine (bench --wake-cost,
tests/bench_wake.h).  The report adds it to the null disk's and fio's QD 1
p50: what a QD 1 read adds up to without the daemon's own share, when the
front-end sleeps for every interrupt.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
import bench_plot  # noqa: E402
import bench_report  # noqa: E402
from bench_targets import Target  # noqa: E402

PATTERNS = [
    ("randread-4k-qd32", "rw=randread,bs=4k,iodepth=32"),
    ("randwrite-4k-qd32", "rw=randwrite,bs=4k,iodepth=32"),
    ("read-128k-qd8", "rw=read,bs=128k,iodepth=8"),
    ("read-128k-qd8-nocopy", "rw=read,bs=128k,iodepth=8,nocopy=1"),
    ("randread-4k-qd1", "rw=randread,bs=4k,iodepth=1"),
    ("randread-4k-qd1-hipri", "rw=randread,bs=4k,iodepth=1,hipri=1"),
    ("randrw-16k-qd16-2q", "rw=randrw,bs=16k,iodepth=16,queues=2,rwmixread=70,threads=2"),
    ("randread-4k-qd32-8disks", "rw=randread,bs=4k,iodepth=32,disks=8,threads=2"),
]
TARGETS = ["file", "loop", "tmpfs", "null"]
RWS = ["read", "write", "randread", "randwrite", "randrw"]


def die(msg, code=2):
    print(msg, file=sys.stderr)
    sys.exit(code)


def to_bytes(s):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)(i?[bB])?", s)
    if not m:
        raise ValueError("bad size '%s'" % s)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def human(b):
    for shift, unit in ((30, "g"), (20, "m"), (10, "k")):
        if b % (1 << shift) == 0:
            return "%d%s" % (b >> shift, unit)
    return str(b)


class Pattern:
    def __init__(self, name, spec):
        self.name, self.spec = name, spec
        self.rw, self.bs, self.depth, self.queues, self.mix = "randread", 4096, 32, 1, 50
        self.disks, self.nocopy, self.threads, self.hipri = 1, False, 0, False
        for kv in spec.split(","):
            k, _, v = kv.partition("=")
            if k == "rw" and v in RWS:
                self.rw = v
            elif k == "bs":
                self.bs = to_bytes(v)
            elif k in ("iodepth", "queues", "rwmixread", "disks", "nocopy", "threads",
                       "hipri") and v.isdigit():
                setattr(self, {"iodepth": "depth", "rwmixread": "mix"}.get(k, k),
                        bool(int(v)) if k in ("nocopy", "hipri") else int(v))
            else:
                raise ValueError("pattern '%s': bad item '%s'" % (spec, kv))
        if self.bs <= 0 or self.bs % 512 or not (1 <= self.queues <= 64) or self.depth < 1 \
                or not (1 <= self.disks <= 64) or self.mix > 100:
            raise ValueError("pattern '%s': bs a multiple of 512, queues and disks 1..64" % spec)
        # threads: the bench's workers (default one per disk) and fio's numjobs,
        # each job keeping its share of all queues' requests in flight
        self.threads = self.threads or self.disks
        units = self.queues * self.disks
        if self.threads > units or units % self.threads:
            raise ValueError("pattern '%s': threads must divide the %d queue(s) evenly" %
                             (spec, units))
        self.fio_depth = units * self.depth // self.threads
        if self.rw in ("read", "write") and self.queues > 1 and \
                (self.disks > 1 or self.threads != self.queues):
            raise ValueError("pattern '%s': sequential on several queues needs one disk and a "
                             "thread per queue to have a fio equivalent" % spec)
        label = "%s %s" % (human(self.bs), self.rw)
        if self.rw == "randrw":
            label += " %d/%d" % (self.mix, 100 - self.mix)
        label += " QD%d" % self.depth
        if self.queues > 1:
            label += " %dq" % self.queues
        if self.disks > 1:
            label += " x%d disks" % self.disks
        if self.threads != self.disks:
            label += " %dt" % self.threads
        if self.nocopy:
            label += " no-copy"
        if self.hipri:
            label += " hipri"
        self.label = label


# ---- measuring ---------------------------------------------------------------

def host_ticks():
    """(busy, total) jiffies of all CPUs: what every tenant did."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy, busy + v[3] + v[4]


def busy_pct(h0, h1):
    total = h1[1] - h0[1]
    return 100.0 * (h1[0] - h0[0]) / total if total else 0.0


def pct_from_bins(bins, p):
    """Nearest-rank percentile (ns) of fio's json+ latency bins."""
    items = sorted((int(k), n) for k, n in bins.items())
    total = sum(n for _, n in items)
    if not total:
        return 0
    want, seen = max(1, int(p / 100.0 * total + 0.5)), 0
    for v, n in items:
        seen += n
        if seen >= want:
            return v
    return items[-1][0]


def run_bench(cfg, t, pat):
    socks = [t.sock("one")] if pat.disks == 1 else [t.sock("m%d" % k) for k in range(pat.disks)]
    cmd = [cfg.bench]
    for s in socks:
        cmd += ["--socket", s]
    cmd += ["--rw", pat.rw, "--rwmixread", str(pat.mix), "--bs", str(pat.bs), "--iodepth",
            str(pat.depth), "--queues", str(pat.queues), "--threads", str(pat.threads),
            "--runtime", str(cfg.runtime),
            "--quiet", "--daemon-pid", str(t.daemon.pid)]
    if pat.nocopy:
        cmd.append("--no-copy")
    if pat.hipri:
        cmd.append("--hipri")
    h0 = host_ticks()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    h1 = host_ticks()
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("bench failed (exit %d):\n%s\ndaemon log:\n%s" %
                           (p.returncode, p.stdout, t.log_tail()))
    r = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    m = re.search(r"^total: kicks/request (\S+)\s+interrupts/request (\S+)", p.stdout, re.M)
    if m:
        r["kicks"], r["irqs"] = float(m.group(1)), float(m.group(2))
    r["host_busy_pct"] = busy_pct(h0, h1)
    return r


def run_fio(cfg, t, pat):
    out = os.path.join(cfg.work, "fio.json")
    cmd = [cfg.fio, "--name=bench", "--filename=" + t.fio_file, "--ioengine=io_uring",
           "--direct=%d" % (1 if t.direct else 0), "--invalidate=0", "--rw=" + pat.rw, "--bs=%d" % pat.bs,
           "--iodepth=%d" % pat.fio_depth, "--numjobs=%d" % pat.threads,
           "--runtime=%d" % cfg.runtime,
           "--time_based", "--group_reporting", "--norandommap", "--randrepeat=0",
           "--lat_percentiles=1", "--output-format=json+", "--output=" + out]
    if pat.rw == "randrw":
        cmd.append("--rwmixread=%d" % pat.mix)
    if pat.queues > 1 and pat.rw in ("read", "write"):
        # the bench gives queue k its own slice of the disk: so do fio's jobs
        slice_ = t.size // pat.bs // pat.queues * pat.bs
        cmd += ["--size=%d" % slice_, "--offset_increment=%d" % slice_]
    if os.path.exists(out):
        os.unlink(out)
    h0 = host_ticks()
    with open(os.path.join(cfg.work, "fio.err"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)     # every thread and job process of fio
        proc.returncode = os.waitstatus_to_exitcode(status)
    h1 = host_ticks()
    raw = open(out).read() if os.path.exists(out) else ""
    if proc.returncode != 0 or "{" not in raw:
        raise RuntimeError("fio failed (exit %d): %s" % (
            proc.returncode, open(os.path.join(cfg.work, "fio.err")).read()))
    job = json.loads(raw[raw.index("{"):])["jobs"][0]
    if job.get("error"):
        raise RuntimeError("fio reported error %d" % job["error"])
    rd, wr = job["read"], job["write"]
    n = rd["total_ios"] + wr["total_ios"]
    bins = {}
    for d in (rd, wr):
        for k, c in d.get("lat_ns", {}).get("bins", {}).items():
            bins[k] = bins.get(k, 0) + c
    per = (lambda v: v / n) if n else (lambda v: 0.0)
    return {"iops": rd["iops"] + wr["iops"], "mbps": (rd["bw_bytes"] + wr["bw_bytes"]) / 1e6,
            "p50_us": pct_from_bins(bins, 50) / 1e3, "p99_us": pct_from_bins(bins, 99) / 1e3,
            "requests": n, "fio_cpu_us": per((ru.ru_utime + ru.ru_stime) * 1e6),
            "fio_usr_us": per(ru.ru_utime * 1e6), "fio_sys_us": per(ru.ru_stime * 1e6),
            "fio_vcsw": per(ru.ru_nvcsw), "fio_ivcsw": per(ru.ru_nivcsw),
            "host_busy_pct": busy_pct(h0, h1)}


def run_wake(cfg):
    """The machine's cost of waking a thread asleep in poll() (bench --wake-cost,
    tests/bench_wake.h): what a QD 1 request pays when the bench sleeps for its
    interrupt, which neither fio nor the null disk's figure contains."""
    p = subprocess.run([cfg.bench, "--wake-cost", "--runtime", "1"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("bench --wake-cost failed (exit %d):\n%s" % (p.returncode, p.stdout))
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


# ---- main ----------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__.split("\n\n")[0],
        epilog="Patterns: " + "; ".join("%s (%s)" % p for p in PATTERNS) +
        ". SPEC: comma-separated rw=read|write|randread|randwrite|randrw, bs=SIZE, "
        "iodepth=N (per queue), queues=N, rwmixread=PCT, disks=N, nocopy=1, threads=N (the "
        "bench's workers sharing all queues, default one per disk; fio: numjobs=N, each "
        "with its share of the requests in flight), hipri=1 (the bench's queues are poll "
        "queues and its workers poll instead of sleeping, as a cell with virtio_blk "
        "poll_queues and io_uring IOPOLL; fio runs without --hipri, which page cache and "
        "loop devices cannot poll).")
    ap.add_argument("--daemon", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--bench", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--runtime", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("--size", default="1G", help="image size per target (default 1G)")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated, of %s (default: all)" % ", ".join(TARGETS))
    ap.add_argument("--patterns", default="all",
                    help="comma-separated names of the built-in patterns, all or none")
    ap.add_argument("--pattern", action="append", default=[], metavar="SPEC",
                    help="an extra pattern (repeatable)")
    ap.add_argument("--file-dir", default="/var/tmp", help="the file and loop targets' "
                    "directory, on the disk's file system (default /var/tmp)")
    ap.add_argument("--tmpfs-dir", default="/dev/shm", help="the tmpfs target (default /dev/shm)")
    ap.add_argument("--json", metavar="FILE", help="write every round and the summaries")
    ap.add_argument("--svg", metavar="FILE", help="plot IOPS and p99 per pattern (bench_plot.py)")
    ap.add_argument("--io-engine", default="auto", choices=("auto", "io_uring", "threads"),
                    help="the daemon's io-engine (default auto)")
    ap.add_argument("--cache", default="writeback", choices=("writeback", "none"),
                    help="the daemon's cache mode (default writeback); none: O_DIRECT, and fio "
                    "with --direct=1 (file and loop targets; tmpfs and null keep writeback)")
    ap.add_argument("--note", default="", help="a line for the JSON and the plot, e.g. what "
                    "else the machine was doing")
    cfg = ap.parse_args()
    if cfg.rounds < 1 or cfg.runtime < 1:
        die("--rounds and --runtime: at least 1")
    try:
        cfg.size = to_bytes(cfg.size)
        names = [n for n in cfg.patterns.split(",") if n] if cfg.patterns not in ("all", "none") \
            else ([p[0] for p in PATTERNS] if cfg.patterns == "all" else [])
        known = dict(PATTERNS)
        for n in names:
            if n not in known:
                die("--patterns: unknown '%s' (see --help)" % n)
        cfg.pats = [Pattern(n, known[n]) for n in names] + \
                   [Pattern("custom-%d" % i, s) for i, s in enumerate(cfg.pattern)]
    except ValueError as e:
        die(str(e))
    cfg.targets = [t for t in cfg.targets.split(",") if t]
    for t in cfg.targets:
        if t not in TARGETS:
            die("--targets: unknown '%s' (%s)" % (t, ", ".join(TARGETS)))
    if not cfg.pats or not cfg.targets:
        die("nothing to run")
    cfg.max_bs = max(p.bs for p in cfg.pats)
    cfg.max_depth = max(p.depth for p in cfg.pats)
    cfg.max_queues = max(p.queues for p in cfg.pats)
    cfg.max_disks = max(p.disks for p in cfg.pats)
    if cfg.size < cfg.max_bs * cfg.max_queues:
        die("--size is too small for the patterns")
    cfg.fio = shutil.which("fio")
    if not cfg.fio and cfg.targets != ["null"]:
        die("fio is missing: apt-get install fio", 1)
    return cfg


def meta(cfg, skipped, targets):
    fio_v = subprocess.run([cfg.fio, "--version"], stdout=subprocess.PIPE,
                           text=True).stdout if cfg.fio else "no fio"
    rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                          "--always", "--dirty"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "kernel": platform.release(),
            "cpus": os.cpu_count(), "fio": fio_v.strip(), "revision": rev,
            "rounds": cfg.rounds, "runtime_s": cfg.runtime, "size": cfg.size,
            "direct": 1 if cfg.cache == "none" else 0, "cache": cfg.cache,
            "io_engine": cfg.io_engine, "note": cfg.note, "skipped": skipped,
            "targets": {t.name: t.desc for t in targets}}


def main():
    cfg = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg.work = tempfile.mkdtemp(prefix="virtio-ivshmemd-bench.")
    targets, skipped, results, failed = [], {}, [], []
    try:
        for name in cfg.targets:
            t = Target(cfg, name)
            print(">>> target %s: setting up" % name, flush=True)
            try:
                why = t.setup()
            except BaseException:
                t.cleanup()
                raise
            if why:
                print(">>> target %s skipped: %s" % (name, why), flush=True)
                skipped[name] = why
                t.cleanup()
                continue
            targets.append(t)
            print(">>> target %s: %s, daemon %d" % (name, t.desc, t.daemon.pid), flush=True)
        res = {(t.name, p.name): {"target": t.name, "pattern": p.name, "label": p.label,
                                  "spec": p.spec, "depth": p.depth, "disks": p.disks,
                                  "hipri": p.hipri,
                                  "daemon": {"rounds": []}, "fio": {"rounds": []}}
               for t in targets for p in cfg.pats}
        wake = {"rounds": []}
        for rnd in range(cfg.rounds):
            if any(p.depth == 1 and not p.hipri for p in cfg.pats):
                print("    round %d/%d wake cost" % (rnd + 1, cfg.rounds), end="", flush=True)
                try:
                    w = run_wake(cfg)
                    wake["rounds"].append(w)
                    print(" %.1f us (%.2f sleeps per request)" % (w["wake_us"],
                                                                  w["slept_share"]), flush=True)
                except RuntimeError as e:
                    print(" FAILED")
                    failed.append("wake cost: %s" % e)
            for t in targets:
                for p in cfg.pats:
                    sides = ["daemon", "fio"] if t.name != "null" else ["daemon"]
                    if rnd % 2:
                        sides.reverse()
                    for side in sides:
                        print("    round %d/%d %-5s %-28s %-6s" % (rnd + 1, cfg.rounds, t.name,
                              p.label, side), end="", flush=True)
                        try:
                            r = run_bench(cfg, t, p) if side == "daemon" else run_fio(cfg, t, p)
                        except RuntimeError as e:
                            print(" FAILED")
                            failed.append("%s %s %s: %s" % (t.name, p.label, side, e))
                            continue
                        res[(t.name, p.name)][side]["rounds"].append(r)
                        print(" %10.0f IOPS  p50 %8.1f us  p99 %8.1f us" % (
                            r["iops"], r["p50_us"], r["p99_us"]), flush=True)
        for r in res.values():
            for side in ("daemon", "fio"):
                r[side]["summary"] = bench_report.summary(r[side]["rounds"])
            d, f = r["daemon"]["rounds"], r["fio"]["rounds"]
            if d and f:
                # of the medians, and the median of each round's pair (neighbours in time)
                pairs = [a["iops"] / b["iops"] for a, b in zip(d, f) if b["iops"]]
                r["ratio"] = {"median": statistics.median(x["iops"] for x in d) /
                              statistics.median(x["iops"] for x in f),
                              "pairs_median": statistics.median(pairs) if pairs else None}
            results.append(r)
        print("\n=== results: %d CPUs, %s, image %s per target, fio --ioengine=io_uring "
              "--direct=%d --invalidate=0, daemon cache = %s" % (
                  os.cpu_count(), platform.release(), human(cfg.size),
                  1 if cfg.cache == "none" else 0, cfg.cache))
        if cfg.note:
            print("    note: " + cfg.note)
        for name, why in skipped.items():
            print("    %s: skipped (%s)" % (name, why))
        wake["summary"] = bench_report.summary(wake["rounds"])
        bench_report.report(cfg.rounds, cfg.runtime, results, targets, wake)
        doc = {"meta": meta(cfg, skipped, targets), "results": results, "wake": wake}
        if cfg.json:
            with open(cfg.json, "w") as f:
                json.dump(doc, f, indent=1)
            print("\n>>> wrote " + cfg.json)
        if cfg.svg:
            with open(cfg.svg, "w") as f:
                f.write(bench_plot.svg(doc))
            print(">>> wrote " + cfg.svg)
    finally:
        for t in targets:
            t.cleanup()
        shutil.rmtree(cfg.work, ignore_errors=True)
    if failed:
        print("\nFAILED runs:\n" + "\n".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
