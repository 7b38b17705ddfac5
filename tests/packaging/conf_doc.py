#!/usr/bin/env python3
"""Every key the config parser accepts is documented in virtio-ivshmemd.conf(5),
and every documented key is accepted, section by section.

Three sources must agree on each (section, key):
- config/config.c: the keys its handlers compare with strcmp(key, "...")
  (daemon_key, device_key, console_key, cell_key; device_key's block_only[]
  keys are refused in consoles).  Reading the source is what catches a key
  added without documentation: no probing can guess a new name.  So that a
  key handled somewhere else cannot slip past, every strcmp(key, "...") in
  the file must sit in one of those four functions, and key may be compared
  with no other variable than block_only[i];
- the parser's behaviour: the daemon's --check-config on a one-key file
  ("[SECTION]\\nKEY = %bad"), which says "unknown key" (or "not a console
  key") for a key it refuses and anything else for a key it takes.  This
  keeps the reading of the source honest, and refuses documented keys that
  do not exist;
- the page: entries "*KEY* = ..." under "## [SECTION ...]" headings (a
  heading naming several sections documents its keys for each).

Each entry must also give its default ("Default:") or say "Required", and
where the parser's error for a bad value states a range ("from 1 to 64",
"up to 64M") or the choices ("error, warning, info or debug"), the entry
must state the same.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

SECTIONS = ["daemon", "block", "console", "cell"]
HANDLERS = {"daemon_key": ["daemon"], "device_key": ["block", "console"],
            "console_key": ["console"], "cell_key": ["cell"]}
BOGUS = "no-such-key"


def source_keys(path):
    src = open(path).read()
    keys = {s: set() for s in SECTIONS}
    seen = 0
    for func, secs in HANDLERS.items():
        m = re.search(r"^static \w+ %s\(.*?^}$" % func, src, re.M | re.S)
        if not m:
            sys.exit("%s: no function %s: update this test" % (path, func))
        body = m.group(0)
        found = re.findall(r'strcmp\(key,\s*"([^"]+)"\)', body)
        seen += len(found)
        block_only = set()
        if func == "device_key":
            t = re.search(r"block_only\[\]\s*=\s*\{(.*?)\}", body, re.S)
            block_only = set(re.findall(r'"([^"]+)"', t.group(1))) if t else set()
        for s in secs:
            keys[s] |= set(k for k in found if not (s == "console" and k in block_only))
    total = len(re.findall(r'strcmp\(key,\s*"', src))
    if total != seen:
        sys.exit("%s compares key in %d places outside %s: teach this test about them"
                 % (path, total - seen, ", ".join(HANDLERS)))
    # Keys from a table would not be seen above: block_only[] is the one known.
    other = set(re.findall(r"strcmp\(key,\s*([^\"\s][^)]*)\)", src)) - {"block_only[i]"}
    if other:
        sys.exit("%s compares key with %s: teach this test about them" % (path, ", ".join(other)))
    return keys


def strip_markup(text):
    return re.sub(r"\s+", " ", re.sub(r"[*_]", "", text)).strip()


def page_keys(path):
    """{section: {key: entry text}} from the scdoc source."""
    keys = {s: {} for s in SECTIONS}
    secs, key = [], None
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("#"):
            secs = [s for s in re.findall(r"\[(\w+)", line) if s in SECTIONS] if line.startswith("## ") else []
            key = None
            continue
        m = re.match(r"\*([a-z-]+)\* = ", line)
        if m:
            if not secs:
                sys.exit("%s: entry %s outside a section heading" % (path, m.group(1)))
            key = m.group(1)
            for s in secs:
                keys[s][key] = line
        elif key and (line.startswith("\t") or not line):
            for s in secs:
                keys[s][key] += " " + line.strip()
        else:
            key = None
    return {s: {k: strip_markup(v) for k, v in d.items()} for s, d in keys.items()}


def probe(daemon, tmp, section, key):
    """The parser's complaint about KEY = %bad in SECTION ('' if none)."""
    conf = os.path.join(tmp, "probe.conf")
    with open(conf, "w") as f:
        f.write("[%s]\n%s = %%bad\n" % (section if section == "daemon" else section + " probe", key))
    r = subprocess.run([daemon, "--check-config", conf], capture_output=True, text=True)
    out = r.stdout + r.stderr
    m = re.search(r"\] %s: (.*)" % re.escape(key), out)
    return m.group(1) if m else ""


def stated_facts(msg):
    """What an error message says about valid values: phrases the page must contain."""
    m = re.search(r"from (\S+) to (\S+?)[,:]? ", msg + " ")
    if m:
        return ["%s to %s" % (m.group(1), m.group(2))]
    m = re.search(r"up to (\S+?),? ", msg + " ")
    if m:
        return ["up to " + m.group(1)]
    m = re.match(r"must be ([a-z, ]+?) \(got", msg)
    if m:
        return [w for w in re.split(r", | or ", m.group(1)) if w]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--page", required=True)
    a = ap.parse_args()
    src, doc = source_keys(a.source), page_keys(a.page)
    errors = []
    with tempfile.TemporaryDirectory(prefix="vivd-confdoc-") as tmp:
        for s in SECTIONS:
            names = sorted(src[s] | set(doc[s]) | {BOGUS} | set().union(*src.values()))
            for k in names:
                msg = probe(a.daemon, tmp, s, k)
                accepted = not (msg.startswith("unknown key") or msg.startswith("not a console key"))
                where = "[%s] %s" % (s, k)
                if accepted and k not in doc[s]:
                    errors.append("%s: the parser accepts it, virtio-ivshmemd.conf(5) does not "
                                  "document it" % where)
                if not accepted and k in doc[s]:
                    errors.append("%s: documented, but the parser refuses it (%s)" % (where, msg))
                if accepted != (k in src[s]):
                    errors.append("%s: reading config.c says %s, the parser %s it: fix this test"
                                  % (where, "accepted" if k in src[s] else "refused",
                                     "accepts" if accepted else "refuses"))
                if k not in doc[s]:
                    continue
                entry = doc[s][k]
                if "Default:" not in entry and "Required" not in entry:
                    errors.append("%s: the entry gives no default ('Default: ...' or 'Required')" % where)
                for fact in stated_facts(msg) if accepted else []:
                    if fact not in entry:
                        errors.append("%s: the parser says '%s', the entry does not state '%s'"
                                      % (where, msg, fact))
    for e in errors:
        print("FAIL: " + e)
    n = sum(len(d) for d in doc.values())
    print("%d documented (section, key) pairs, %d problem(s)" % (n, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
