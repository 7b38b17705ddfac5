#!/usr/bin/env python3
"""scripts/bench's Python side, by behaviour: pattern specs and their
refusals, fio's latency bins to percentiles, the summaries; and a short run
on the null disk (no fio, no root needed) whose JSON has every round and
its medians and whose SVG is well-formed XML naming every pattern, and in
which the daemon rang no doorbells for a polling cell (hipri).  No figure
is judged: what things cost is the benchmark's business.

    test_bench_scripts.py --daemon PATH --bench PATH
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "scripts")
sys.dont_write_bytecode = True
sys.path.insert(0, SCRIPTS)
import bench_report  # noqa: E402
import bench_run  # noqa: E402


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


def test_patterns():
    labels = [bench_run.Pattern(n, s).label for n, s in bench_run.PATTERNS]
    check(labels == ["4k randread QD32", "4k randwrite QD32", "128k read QD8",
                     "128k read QD8 no-copy", "4k randread QD1", "4k randread QD1 hipri",
                     "16k randrw 70/30 QD16 2q 2t",
                     "4k randread QD32 x8 disks 2t"], "built-in labels: %s" % labels)
    p = bench_run.Pattern("x", "rw=randwrite,bs=1M,iodepth=2,queues=3")
    check((p.rw, p.bs, p.depth, p.queues, p.disks, p.nocopy, p.threads, p.fio_depth) ==
          ("randwrite", 1 << 20, 2, 3, 1, False, 1, 6), "a spec's fields")
    p = bench_run.Pattern("x", "rw=randread,iodepth=1,hipri=1")
    check(p.hipri and p.label == "4k randread QD1 hipri", "a polled pattern")
    p = bench_run.Pattern("x", "rw=randread,iodepth=32,disks=8,threads=2")
    check((p.threads, p.fio_depth) == (2, 128), "8 disks on 2 threads: fio 2 jobs of 128")
    for spec, msg in (("rw=trim", "bad item 'rw=trim'"), ("bs=1000", "bs a multiple of 512"),
                      ("queues=65", "queues and disks 1..64"), ("depth=4", "bad item 'depth=4'"),
                      ("rw=read,queues=2,disks=2", "to have a fio equivalent"),
                      ("rw=read,queues=2", "to have a fio equivalent"),
                      ("queues=3,threads=2", "divide the 3 queue(s) evenly"),
                      ("threads=2", "divide the 1 queue(s) evenly")):
        try:
            bench_run.Pattern("x", spec)
            check(False, "spec %s accepted" % spec)
        except ValueError as e:
            check(msg in str(e), "spec %s: %s" % (spec, e))


def test_numbers():
    bins = {"1000": 50, "2000": 49, "9000": 1}
    check(bench_run.pct_from_bins(bins, 50) == 1000, "p50 of bins")
    check(bench_run.pct_from_bins(bins, 99) == 2000, "p99 of bins")
    check(bench_run.pct_from_bins(bins, 100) == 9000, "p100 of bins")
    check(bench_run.pct_from_bins({}, 50) == 0, "an empty histogram")
    s = bench_report.summary([{"iops": 3.0}, {"iops": 1.0}, {"iops": 2.0, "x": 5.0}])
    check(s["iops"] == {"median": 2.0, "min": 1.0, "max": 3.0}, "summary: %s" % s)
    check(bench_report.fmt(123456) == "123k" and bench_report.fmt(12.345) == "12.3",
          "fmt: %s %s" % (bench_report.fmt(123456), bench_report.fmt(12.345)))
    check(bench_run.to_bytes("128k") == 131072 and bench_run.to_bytes("1GiB") == 1 << 30,
          "sizes")
    check(abs(bench_report.qd1_expected(3.6, 2.0, 12.4) - 18.0) < 1e-9, "the QD1 sum")
    check(abs(bench_report.qd1_expected(3.6, 2.0, -0.5) - 5.1) < 1e-9,
          "a negative wake cost is shown, not hidden")
    check(bench_report.qd1_expected(None, 2.0, 12.4) is None, "none without the null disk")


def test_report_expected():
    """The QD1 expected column: null + fio + wake, no wake for a polling cell,
    none on tmpfs."""
    import contextlib
    import io

    def res(target, pattern, hipri, d_p50, f_p50):
        side = lambda p50: {"summary": bench_report.summary([{"iops": 1.0, "p50_us": p50,
                                                              "p99_us": p50,
                                                              "host_busy_pct": 50.0}])}
        return {"target": target, "pattern": pattern, "label": pattern, "depth": 1,
                "disks": 1, "hipri": hipri, "daemon": side(d_p50),
                "fio": side(f_p50) if f_p50 else {}}
    results = [res("file", "qd1", False, 19.0, 2.0), res("file", "qd1-hipri", True, 6.0, 2.0),
               res("tmpfs", "qd1-tmpfs", False, 19.0, 59.0),
               res("null", "qd1", False, 3.0, None), res("null", "qd1-hipri", True, 2.5, None),
               res("null", "qd1-tmpfs", False, 3.0, None)]
    wake = {"summary": bench_report.summary([{"wake_us": 12.0, "slept_share": 1.0}])}
    targets = [argparse.Namespace(name=n, desc=n) for n in ("file", "tmpfs", "null")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_report.report(1, 1, results, targets, wake)
    rows = {}
    for ln in out.getvalue().splitlines():
        if ln.startswith("  qd1"):
            rows.setdefault(ln.split()[0], ln.split())      # the first table's
    check(rows["qd1"][-2:] == ["3.0", "17.0"] and rows["qd1-hipri"][-2:] == ["2.5", "4.5"] and
          rows["qd1-tmpfs"][-1] == "3.0", "expected: %s" % out.getvalue())
    check("adds 12.0 us" in out.getvalue(), "the wake cost line")


def test_wake_cost(bench):
    p = subprocess.run([bench, "--wake-cost", "--socket", "x"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 2 and "--wake-cost drives no device" in p.stdout,
          "--wake-cost with a device: %d %s" % (p.returncode, p.stdout))
    w = bench_run.run_wake(argparse.Namespace(bench=bench))
    # The answer comes 5 us after the request at the earliest: a round trip
    # below that means the requester did not wait for it.
    check(w["work_us"] == 5 and w["slept_p50_us"] >= 5.0 and w["awake_p50_us"] > 0,
          "wake cost: %s" % w)
    check(w["slept_share"] >= 0 and w["requests"] > 100, "wake cost: %s" % w)
    check(abs(w["wake_us"] - (w["slept_p50_us"] - 5 - w["awake_p50_us"])) < 0.02,
          "wake = slept - work - awake: %s" % w)


def test_null_run(daemon, bench):
    tmp = tempfile.gettempdir()
    ours = lambda: {f for f in os.listdir(tmp) if f.startswith("virtio-ivshmemd-bench.")}
    before = ours()
    with tempfile.TemporaryDirectory() as d:
        js, svg = os.path.join(d, "r.json"), os.path.join(d, "r.svg")
        cmd = [sys.executable, os.path.join(SCRIPTS, "bench_run.py"), "--daemon", daemon,
               "--bench", bench, "--targets", "null", "--patterns",
               "randread-4k-qd1,randread-4k-qd1-hipri",
               "--pattern", "rw=randwrite,bs=8k,iodepth=4,disks=2,nocopy=1", "--rounds", "2",
               "--runtime", "1", "--size", "64M", "--json", js, "--svg", svg, "--note", "a test"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(p.returncode == 0, "bench_run.py failed:\n" + p.stdout)
        check("=== null: the null disk" in p.stdout, "the report:\n" + p.stdout)
        doc = json.load(open(js))
        check(doc["meta"]["rounds"] == 2 and doc["meta"]["note"] == "a test", "meta")
        check([r["pattern"] for r in doc["results"]] ==
              ["randread-4k-qd1", "randread-4k-qd1-hipri", "custom-0"],
              "results: %s" % [r["pattern"] for r in doc["results"]])
        # poll queues: the daemon rang no doorbell for the answers (event-idx
        # with used_event left at 0: once per 2^16 of them), where it rings
        # for each at QD1 with interrupts on
        hs = doc["results"][1]["daemon"]["summary"]
        check(hs["daemon_syscw"]["max"] < 0.01 and
              doc["results"][0]["daemon"]["summary"]["daemon_syscw"]["min"] > 0.5,
              "interrupts per request: %s, with poll queues %s" % (
                  doc["results"][0]["daemon"]["summary"]["daemon_syscw"], hs["daemon_syscw"]))
        check(len(doc["wake"]["rounds"]) == 2 and "wake_us" in doc["wake"]["summary"] and
              "=== wake cost: " in p.stdout, "a wake cost per round (a QD1 pattern ran)")
        for r in doc["results"]:
            check(len(r["daemon"]["rounds"]) == 2 and not r["fio"]["rounds"], "rounds")
            s = r["daemon"]["summary"]
            for k in ("iops", "p50_us", "p99_us", "daemon_cpu_us", "bench_cpu_us", "daemon_vcsw",
                      "daemon_syscr", "host_busy_pct"):
                check(k in s and s[k]["min"] <= s[k]["median"] <= s[k]["max"], "summary " + k)
            check(s["iops"]["min"] > 0, "no request completed")
        root = ET.parse(svg).getroot()
        check(root.tag.endswith("svg"), "the SVG's root")
        texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
        for label in ("4k randread QD1", "8k randwrite QD4 x2 disks no-copy", "a test"):
            check(label in texts, "the SVG names " + label)
    check(ours() <= before, "left behind in %s: %s" % (tmp, ours() - before))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--bench", required=True)
    a = ap.parse_args()
    test_patterns()
    test_numbers()
    test_report_expected()
    test_wake_cost(a.bench)
    test_null_run(a.daemon, a.bench)
    print("ok")


if __name__ == "__main__":
    main()
