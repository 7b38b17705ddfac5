"""The text report of scripts/bench (bench_run.py): medians and [min-max]
ranges of each target's runs, the null disk's QD1 p50 beside each QD1 row
and what it adds up to with fio's p50 and the machine's wake cost, and the
cost per request; summary() makes the JSON's summaries.
"""
import statistics


def summary(rounds):
    """{key: {median, min, max}} over the rounds' numbers."""
    out = {}
    for k in rounds[0] if rounds else []:
        vals = [r[k] for r in rounds if k in r]
        out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


def fmt(v, digits=1):
    """Three significant figures with k/M for large numbers; digits below 100."""
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return "%.3gM" % (v / 1e6)
    if abs(v) >= 1e4:
        return "%.3gk" % (v / 1e3)
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.*f" % (digits, v)


def med(res, side, key):
    s = res.get(side, {}).get("summary", {}).get(key)
    return s["median"] if s else None


def rng(res, side, key):
    """median [min-max] over the rounds."""
    s = res.get(side, {}).get("summary", {}).get(key)
    if not s:
        return "-"
    if s["min"] == s["max"]:
        return fmt(s["median"])
    return "%s [%s-%s]" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))


def table(rows):
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))


def qd1_expected(null_p50, fio_p50, wake_us):
    """What a QD1 p50 adds up to without the daemon's own share: the link's
    round trip (the null disk answers before the bench sleeps), the
    storage's time (fio's p50) and what waking the bench costs the machine
    (0 for a cell that polls).  Medians of separate runs do not add
    exactly: an expectation, not a bound."""
    if null_p50 is None or fio_p50 is None or wake_us is None:
        return None
    return null_p50 + fio_p50 + wake_us


def report(rounds, runtime, results, targets, wake=None):
    null_qd1 = {r["pattern"]: med(r, "daemon", "p50_us") for r in results
                if r["target"] == "null" and r["depth"] == 1}
    ws = (wake or {}).get("summary", {}).get("wake_us")
    wake_us = ws["median"] if ws else None
    if ws:
        sl = wake["summary"]["slept_share"]["median"]
        print("\n=== wake cost: a thread asleep in poll() woken from another CPU adds %s us "
              "[%s-%s] at the median (%.2f sleeps per request; bench --wake-cost)" % (
                  fmt(wake_us), fmt(ws["min"]), fmt(ws["max"]), sl))
        if wake_us < 0:
            print("    it came out negative: the machine's figures are noise")
    for t in targets:
        rs = [r for r in results if r["target"] == t.name]
        if not rs:
            continue
        fio = t.name != "null"
        print("\n=== %s: %s; %d round(s) of %d s, medians [min-max]" % (
            t.name, t.desc, rounds, runtime))
        head = ["pattern", "daemon IOPS"] + (["fio IOPS", "d/fio"] if fio else []) + \
               ["p50 us"] + (["fio p50"] if fio else []) + ["p99 us"] + \
               (["fio p99"] if fio else []) + (["null QD1 p50", "expected"] if fio else [])
        rows = [head]
        for r in rs:
            row = [r["label"], rng(r, "daemon", "iops")]
            if fio:
                row += [rng(r, "fio", "iops"), fmt(r.get("ratio", {}).get("median"), 2)]
            row.append(fmt(med(r, "daemon", "p50_us")))
            if fio:
                row.append(fmt(med(r, "fio", "p50_us")))
            row.append(rng(r, "daemon", "p99_us"))
            if fio:
                row.append(rng(r, "fio", "p99_us"))
            nq = null_qd1.get(r["pattern"]) if r["depth"] == 1 else None
            if fio:
                # a polling cell does not sleep: no wake-up; on tmpfs fio's
                # reads go through io_uring's workers, the daemon's do not
                fl = qd1_expected(nq, med(r, "fio", "p50_us"),
                                  0.0 if r.get("hipri") else wake_us) \
                    if nq is not None and t.name != "tmpfs" else None
                row += [fmt(nq) if nq is not None else "", fmt(fl) if fl is not None else ""]
            rows.append(row)
        table(rows)
        if fio:
            print("  d/fio: the daemon's median IOPS over fio's; null QD1 p50: the null disk's "
                  "p50 at queue depth 1, the transport's floor; expected: null + fio p50 + the "
                  "wake cost (none with hipri), the QD1 p50 without the daemon's own share")
        print("  cost per request, medians: cpu us (daemon: all threads, of which io_uring "
              "workers), context switches vol/invol, syscalls r+w (bench_cost.h)")
        rows = [["pattern", "daemon cpu", "iou-wrk", "bench cpu", "d+b cpu"] +
                (["fio cpu"] if fio else []) + ["daemon cs", "bench cs"] +
                (["fio cs"] if fio else []) + ["daemon sc", "bench sc", "host busy %"]]
        for r in rs:
            dc, bc = med(r, "daemon", "daemon_cpu_us"), med(r, "daemon", "bench_cpu_us")
            cs = lambda side, who: "%s/%s" % (fmt(med(r, side, who + "_vcsw"), 2),
                                               fmt(med(r, side, who + "_ivcsw"), 2))
            sc = lambda who: fmt((med(r, "daemon", who + "_syscr") or 0) +
                                 (med(r, "daemon", who + "_syscw") or 0), 2)
            row = [r["label"], fmt(dc, 2), fmt(med(r, "daemon", "daemon_wrk_cpu_us"), 2),
                   fmt(bc, 2), fmt((dc or 0) + (bc or 0), 2)]
            if fio:
                row.append(fmt(med(r, "fio", "fio_cpu_us"), 2))
            row += [cs("daemon", "daemon"), cs("daemon", "bench")]
            if fio:
                row.append(cs("fio", "fio"))
            hb = [med(r, s, "host_busy_pct") for s in ("daemon", "fio") if med(r, s, "iops")]
            row += [sc("daemon"), sc("bench"), "/".join("%.0f" % h for h in hb)]
            rows.append(row)
        table(rows)
        one = next((r for r in rs if r["pattern"] == "randread-4k-qd32"), None)
        for r in rs:
            if r["disks"] > 1 and one:
                parts = ["%s %.2f" % (side, med(r, side, "iops") / med(one, side, "iops"))
                         for side in ("daemon", "fio") if med(r, side, "iops") and
                         med(one, side, "iops")]
                print("  %s aggregate / one disk (%s): %s" % (r["label"], one["label"],
                                                              ", ".join(parts)))
