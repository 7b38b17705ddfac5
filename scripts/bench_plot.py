#!/usr/bin/env python3
"""An SVG plot of scripts/bench's JSON: per pattern, IOPS and p99 latency of
the daemon and of fio on each target, medians as bars, [min, max] of the
rounds as whiskers, the null disk's median as a dashed line.  Standard library only, so that it runs wherever the
benchmark does.

    scripts/bench_plot.py RESULTS.json [-o PLOT.svg]
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

WIDTH = 1000
TOP = 92            # title, note, legend
PANEL = 200         # one pattern: both charts and its title
CHART_H = 130
CHART_W = 400
CHARTS_X = (80, 580)
COLORS = {"daemon": "#3465a4", "fio": "#f57900", "null": "#888a85"}
FONT = 'font-family="sans-serif"'


def nice_max(v):
    """The smallest 1, 2, 4, 6 or 8 x 10^k at or above v: quarters of it are
    round numbers too (the grid has four steps)."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 4, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def short(v):
    if v >= 1e6:
        return "%.3gM" % (v / 1e6)
    if v >= 1e3:
        return "%.3gk" % (v / 1e3)
    return "%.3g" % v


class Svg:
    def __init__(self):
        self.parts = []

    def text(self, x, y, s, size=11, anchor="start", weight="normal", fill="#222"):
        self.parts.append('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" '
                          'font-weight="%s" fill="%s" %s>%s</text>' %
                          (x, y, size, anchor, weight, fill, FONT, escape(s)))

    def line(self, x1, y1, x2, y2, stroke="#ccc", width=1, dash=None):
        self.parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" '
                          'stroke-width="%g"%s/>' % (x1, y1, x2, y2, stroke, width,
                                                     ' stroke-dasharray="%s"' % dash if dash
                                                     else ""))

    def rect(self, x, y, w, h, fill):
        self.parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' %
                          (x, y, w, max(h, 0.5), fill))


def bars(doc, pattern, key):
    """[(target, side, median, min, max)] of one pattern, in target order."""
    out = []
    for r in doc["results"]:
        if r["pattern"] != pattern:
            continue
        for side in ("daemon", "fio"):
            s = r.get(side, {}).get("summary", {}).get(key)
            if s:
                out.append((r["target"], side, s["median"], s["min"], s["max"]))
    return out


def chart(svg, x0, y0, title, data):
    """Bars per target (daemon, fio); the null disk, whose figures are of
    another order, as a dashed line across, or a note when off the scale."""
    null = [d for d in data if d[0] == "null"]
    data = [d for d in data if d[0] != "null"]
    ymax = nice_max(max([d[4] for d in data] + [0]) or (null[0][2] if null else 0))
    svg.text(x0, y0 - 8, title, size=11, weight="bold")
    for i in range(5):
        y = y0 + CHART_H - CHART_H * i / 4
        svg.line(x0, y, x0 + CHART_W, y, stroke="#e4e4e4" if i else "#888")
        svg.text(x0 - 6, y + 4, short(ymax * i / 4), size=9, anchor="end", fill="#555")
    targets = []
    for d in data:
        if d[0] not in targets:
            targets.append(d[0])
    group = CHART_W / max(len(targets), 1)
    for gi, t in enumerate(targets):
        mine = [d for d in data if d[0] == t]
        bw = min(34.0, (group - 16) / len(mine))
        gx = x0 + gi * group + (group - bw * len(mine)) / 2
        for bi, (_, side, med, lo, hi) in enumerate(mine):
            bx = gx + bi * bw
            h = CHART_H * med / ymax
            svg.rect(bx + 2, y0 + CHART_H - h, bw - 4, h, COLORS[side])
            ylo, yhi = y0 + CHART_H - CHART_H * lo / ymax, y0 + CHART_H - CHART_H * hi / ymax
            cx = bx + bw / 2
            svg.line(cx, ylo, cx, yhi, stroke="#222")
            svg.line(cx - 4, yhi, cx + 4, yhi, stroke="#222")
            svg.line(cx - 4, ylo, cx + 4, ylo, stroke="#222")
            svg.text(cx, min(y0 + CHART_H - h, yhi) - 4, short(med), size=9, anchor="middle")
        svg.text(x0 + gi * group + group / 2, y0 + CHART_H + 14, t, size=10, anchor="middle")
    for _, _, med, lo, hi in null[:1]:
        label = "null disk %s [%s-%s]" % (short(med), short(lo), short(hi)) if lo != hi \
            else "null disk %s" % short(med)
        if med <= ymax:
            y = y0 + CHART_H - CHART_H * med / ymax
            svg.line(x0, y, x0 + CHART_W, y, stroke=COLORS["null"], width=1.5, dash="6,4")
            label = "- - " + label
        else:
            label += " (off the scale)"
        svg.text(x0 + CHART_W, y0 - 8, label, size=9, anchor="end", fill="#555")


def svg(doc):
    patterns = []
    for r in doc["results"]:
        if r["pattern"] not in [p for p, _ in patterns]:
            patterns.append((r["pattern"], r["label"]))
    height = TOP + PANEL * len(patterns) + 10
    s = Svg()
    m = doc.get("meta", {})
    s.text(20, 24, "virtio-ivshmemd (through the userspace front-end) vs fio --ioengine=io_uring "
           "on the same target", size=14, weight="bold")
    s.text(20, 42, "%s CPUs, kernel %s, %s, %s round(s) of %s s, medians, whiskers: min-max of "
           "the rounds; revision %s, %s" % (m.get("cpus", "?"), m.get("kernel", "?"),
                                             m.get("fio", "fio"), m.get("rounds", "?"),
                                             m.get("runtime_s", "?"), m.get("revision", "?"),
                                             m.get("date", "")), size=10, fill="#555")
    if m.get("note"):
        s.text(20, 58, m["note"], size=11, weight="bold", fill="#a40000")
    lx = 20
    for name, label in (("daemon", "daemon"), ("fio", "fio")):
        s.rect(lx, 68, 12, 12, COLORS[name])
        s.text(lx + 17, 78, label, size=10)
        lx += 40 + 6.5 * len(label)
    s.line(lx, 74, lx + 24, 74, stroke=COLORS["null"], width=1.5, dash="6,4")
    s.text(lx + 30, 78, "the daemon on the null disk (no data: the transport's floor)", size=10)
    for i, (pat, label) in enumerate(patterns):
        y = TOP + PANEL * i
        s.text(20, y + 20, label, size=12, weight="bold")
        chart(s, CHARTS_X[0], y + 48, "IOPS", bars(doc, pat, "iops"))
        chart(s, CHARTS_X[1], y + 48, "p99 latency (us)", bars(doc, pat, "p99_us"))
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'
            '<rect width="100%%" height="100%%" fill="white"/>\n%s\n</svg>\n' %
            (WIDTH, height, WIDTH, height, "\n".join(s.parts)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json")
    ap.add_argument("-o", "--output", help="the SVG file (default: standard output)")
    a = ap.parse_args()
    with open(a.json) as f:
        out = svg(json.load(f))
    if a.output:
        with open(a.output, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)


if __name__ == "__main__":
    main()
