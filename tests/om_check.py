#!/usr/bin/env python3
"""Check `virtio-ivshmemctl stats --openmetrics` against `stats --json` of the
same idle moment (tests/test_metrics.c runs it).

The OpenMetrics text must parse with prometheus_client's OpenMetrics parser
(Debian's python3-prometheus-client), and since that parser is lax, also:
every family has TYPE and HELP, a family named for a unit has that UNIT,
every "le" is in the canonical form (Go's shortest %g with ".0" for an
integer), the text ends in "# EOF\\n".  Then every sample must equal what the
JSON says, and every JSON counter must have its sample: a sample left over or
one missing is an error.

Usage: om_check.py OPENMETRICS_FILE JSON_FILE; exit 0 when all holds, else 1
with one line per problem.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

P = "virtio_ivshmemd_"
STATES = ["waiting for peer", "negotiating", "running", "broken", "stopped", "gone"]


def check(om_text, js):
    problems = []
    if not om_text.endswith("# EOF\n"):
        problems.append("does not end in '# EOF\\n'")
    try:
        families = list(text_string_to_metric_families(om_text))
    except ValueError as e:
        return ["the OpenMetrics parser refuses it: %s" % e]
    samples = {}
    for f in families:
        if f.type == "unknown":
            problems.append("%s: no TYPE" % f.name)
        if not f.documentation:
            problems.append("%s: no HELP" % f.name)
        for unit in ("seconds", "bytes"):
            if f.name.endswith("_" + unit) and f.unit != unit:
                problems.append("%s: no UNIT %s" % (f.name, unit))
        for s in f.samples:
            if "le" in s.labels and s.labels["le"] != "+Inf" and \
                    s.labels["le"] != floatToGoString(float(s.labels["le"])):
                problems.append("%s: le %s is not canonical" % (s.name, s.labels["le"]))
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in samples:
                problems.append("%s%s: twice" % key)
            samples[key] = s.value

    def expect(want, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in samples:
            problems.append("missing: %s%s" % key)
            return
        got = samples.pop(key)
        if got != want:
            problems.append("%s%s: %r, the JSON says %r" % (key + (got, want)))

    le_ns = js["latency_le_ns"]
    for d in js["devices"]:
        dev = d["name"]
        for st in STATES:
            expect(1 if st == d["state"] else 0, P + "device_state", device=dev,
                   type=d["type"], state=st)
        if d["state"] == "gone":
            continue
        for key, name in (("transactions", "transactions"), ("resets", "resets"),
                          ("sessions", "sessions"), ("protocol_errors", "protocol_errors")):
            expect(d[key], P + name + "_total", device=dev)
        for q in d["queues"]:
            ql = dict(device=dev, queue=str(q["index"]))
            for key in ("requests", "kicks", "busy_polled", "interrupts"):
                expect(q[key], P + "queue_" + key + "_total", **ql)
            expect(q["inflight"], P + "queue_inflight", **ql)
            expect(q["inflight_max"], P + "queue_inflight_max", **ql)
            lat = q["latency"]
            if sum(lat["buckets"]) != lat["count"]:
                problems.append("%s queue %s: the JSON buckets do not add up to its count"
                                % (dev, q["index"]))
            cum = 0
            for i, c in enumerate(lat["buckets"]):
                cum += c
                le = floatToGoString(le_ns[i] / 1e9) if i < len(le_ns) else "+Inf"
                expect(cum, P + "queue_latency_seconds_bucket", le=le, **ql)
            expect(lat["count"], P + "queue_latency_seconds_count", **ql)
            name = P + "queue_latency_seconds_sum"
            key = (name, tuple(sorted(ql.items())))
            if key in samples and round(samples[key] * 1e9) == lat["sum_ns"]:
                samples.pop(key)
            else:
                problems.append("%s%s: %r, the JSON says %d ns" %
                                (key + (samples.pop(key, None), lat["sum_ns"])))
        if d["type"] == "block":
            for direction in ("read", "write"):
                io = d[direction]
                expect(io["requests"], P + "blk_requests_total", device=dev, direction=direction)
                expect(io["bytes"], P + "blk_bytes_total", device=dev, direction=direction)
                expect(io["errors"], P + "blk_errors_total", device=dev, direction=direction)
            for key, t in (("flushes", "flush"), ("discards", "discard"),
                           ("write_zeroes", "write_zeroes"), ("get_ids", "get_id")):
                expect(d[key], P + "blk_commands_total", device=dev, type=t)
            expect(d["unsupported"], P + "blk_unsupported_total", device=dev)
            expect(d["inflight"], P + "blk_inflight", device=dev)
            for direction in ("read", "write"):
                b = d["bounced"][direction]
                expect(b["requests"], P + "blk_bounced_total", device=dev, direction=direction)
                expect(b["bytes"], P + "blk_bounced_bytes_total", device=dev,
                       direction=direction)
        else:
            expect(d["to_cell_bytes"], P + "console_bytes_total", device=dev, direction="to_cell")
            expect(d["from_cell_bytes"], P + "console_bytes_total", device=dev,
                   direction="from_cell")
            expect(d["dropped_backlog"], P + "console_dropped_bytes_total", device=dev,
                   reason="backlog")
            expect(d["dropped_error"], P + "console_dropped_bytes_total", device=dev,
                   reason="error")
            expect(d["backlog_bytes"], P + "console_backlog_bytes", device=dev)
            expect(1 if d["attached"] else 0, P + "console_attached", device=dev)
            expect(d["clients"], P + "console_clients_total", device=dev)
            expect(d["refused"], P + "console_refused_total", device=dev)
    for key in sorted(samples):
        problems.append("not in the JSON: %s%s" % key)
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        om_text = f.read()
    with open(sys.argv[2], encoding="utf-8") as f:
        js = json.load(f)
    problems = check(om_text, js)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
