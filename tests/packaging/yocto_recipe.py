#!/usr/bin/env python3
"""What can be checked of contrib/yocto's recipe without bitbake.

The recipe is read by a small evaluator of the BitBake syntax it uses
(assignments, :append, flags, ${VAR}, the two bb.utils calls), in the
target layout of oe-core's bitbake.conf for scarthgap (usrmerge, which
systemd requires since nanbield), with DISTRO_FEATURES "systemd
api-documentation" so that every PACKAGECONFIG the distro can switch on is
on, and the effects of the classes it inherits (meson: MESONOPTS and
PACKAGECONFIG_CONFARGS; manpages; bash-completion; systemd).  Then:

- every -D option the recipe names (EXTRA_OEMESON and every PACKAGECONFIG,
  on or off) exists in meson_options.txt with a value of its type;
- every dependency() of the meson.build files is in DEPENDS or in the
  build dependencies of a PACKAGECONFIG (or needs none: see NOT_NEEDED);
- meson setup with the recipe's options, compile and install into a DESTDIR
  succeed, as do_configure, do_compile and do_install would run them;
- every path the recipe's FILES, CONFFILES and SYSTEMD_SERVICE name exists
  in that install, no package the recipe adds is empty, and every installed
  file lands in a package (installed-vs-shipped);
- LIC_FILES_CHKSUM matches.
"""
import argparse
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

# oe-core meta/conf/bitbake.conf (scarthgap), with usrmerge.
LAYOUT = {
    "base_prefix": "", "prefix": "/usr", "exec_prefix": "/usr", "root_prefix": "/usr",
    "base_bindir": "/usr/bin", "base_sbindir": "/usr/sbin", "base_libdir": "/usr/lib",
    "nonarch_base_libdir": "/usr/lib", "sysconfdir": "/etc", "servicedir": "/srv",
    "sharedstatedir": "/com", "localstatedir": "/var", "runtimedir": "/run",
    "datadir": "/usr/share", "infodir": "/usr/share/info", "mandir": "/usr/share/man",
    "docdir": "/usr/share/doc", "systemd_unitdir": "/usr/lib/systemd",
    "systemd_system_unitdir": "/usr/lib/systemd/system", "nonarch_libdir": "/usr/lib",
    "bindir": "/usr/bin", "sbindir": "/usr/sbin", "libdir": "/usr/lib",
    "libexecdir": "/usr/libexec", "includedir": "/usr/include", "SOLIBS": ".so.*",
    "SOLIBSDEV": ".so", "WORKDIR": "/WORKDIR", "DISTRO_FEATURES": "systemd api-documentation",
}
# bitbake.conf's packages and their FILES, in order (PACKAGE_BEFORE_PN before ${PN}).
DEFAULT_PACKAGES = "${PN}-src ${PN}-dbg ${PN}-staticdev ${PN}-dev ${PN}-doc ${PN}-locale ${PACKAGE_BEFORE_PN} ${PN}"
DEFAULT_FILES = {
    "${PN}": "${bindir}/* ${sbindir}/* ${libexecdir}/* ${libdir}/lib*${SOLIBS} ${sysconfdir} "
             "${sharedstatedir} ${localstatedir} ${base_bindir}/* ${base_sbindir}/* "
             "${base_libdir}/*${SOLIBS} ${base_prefix}/lib/udev ${prefix}/lib/udev "
             "${base_libdir}/udev ${libdir}/udev ${datadir}/${BPN} ${libdir}/${BPN}/* "
             "${datadir}/pixmaps ${datadir}/applications ${datadir}/idl ${datadir}/omf "
             "${datadir}/sounds ${libdir}/bonobo/servers",
    "${PN}-doc": "${docdir} ${mandir} ${infodir} ${datadir}/gtk-doc ${datadir}/gnome/help",
    "${PN}-dev": "${includedir} ${libdir}/lib*${SOLIBSDEV} ${libdir}/*.la ${libdir}/*.o "
                 "${libdir}/pkgconfig ${datadir}/pkgconfig ${datadir}/aclocal ${libdir}/cmake "
                 "${datadir}/cmake",
    "${PN}-staticdev": "${libdir}/*.a",
    "${PN}-dbg": "/usr/lib/debug /usr/lib/debug-static /usr/src/debug",
    "${PN}-locale": "${datadir}/locale",
}
KNOWN_CLASSES = {"meson", "pkgconfig", "systemd", "bash-completion", "manpages"}
# pkg-config name in meson.build -> the recipe that provides it.
PROVIDERS = {"libuv": "libuv", "liburing": "liburing", "inih": "libinih", "libpci": "pciutils",
             "libkmod": "kmod", "libfdt": "dtc", "cmocka": "cmocka"}
# Asked only for directories that the recipe passes as options, or built in.
NOT_NEEDED = {"systemd", "bash-completion", "threads"}

errors = []


def fail(msg):
    errors.append(msg)
    print("FAIL: " + msg)


class Recipe:
    def __init__(self, path):
        self.vars, self.flags, self.appends, self.inherits = {}, {}, {}, []
        self.assigned = set()       # set with "=" (not only appended to)
        self.vars.update(LAYOUT)
        pn = re.sub(r"_[^_]*\.bb$", "", os.path.basename(path))
        self.vars.update(PN=pn, BPN=pn)
        self.parse(path)

    def logical_lines(self, path):
        buf = ""
        for line in open(path):
            line = line.rstrip("\n")
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            yield (buf + line).strip()
            buf = ""

    def parse(self, path):
        for line in self.logical_lines(path):
            if not line or line.startswith("#"):
                continue
            if line.startswith("inherit "):
                self.inherits += line.split()[1:]
                continue
            m = re.match(r'([\w${}:.-]+?)(?:\[([\w-]+)\])?\s*(\?\?=|\?=|\+=|=)\s*"(.*)"$', line)
            if not m:
                sys.exit("%s: the checker does not understand: %s" % (path, line))
            name, flag, op, value = m.groups()
            name = self.expand(name)
            if flag:
                self.flags.setdefault(name, {})[flag] = value
            elif name.endswith(":append"):
                self.appends[name[:-7]] = self.appends.get(name[:-7], "") + value
            elif op == "=":
                self.vars[name] = value
                self.assigned.add(name)
            elif op in ("?=", "??="):
                self.vars.setdefault(name, value)
            else:
                self.vars[name] = self.vars.get(name, "") + " " + value

    def expand(self, text):
        def py(m):
            expr = m.group(1)
            f = re.fullmatch(r"bb\.utils\.filter\('(\w+)', '([^']*)', d\)", expr)
            if f:
                have = self.get(f.group(1)).split()
                return " ".join(w for w in f.group(2).split() if w in have)
            c = re.fullmatch(r"bb\.utils\.contains\('(\w+)', '([^']*)', '([^']*)', '([^']*)', d\)", expr)
            if c:
                have = self.get(c.group(1)).split()
                return c.group(3) if all(w in have for w in c.group(2).split()) else c.group(4)
            sys.exit("the checker cannot evaluate ${@%s}" % expr)
        for _ in range(20):
            new = re.sub(r"\$\{@(.*?)\}", py, text)
            new = re.sub(r"\$\{([\w:.-]+)\}", lambda m: self.vars.get(m.group(1), m.group(0)), new)
            if new == text:
                return text
            text = new
        return text

    def get(self, name):
        return self.expand(self.vars.get(name, "") + self.appends.get(name, "")).strip()


def apply_classes(r):
    """What the inherited classes add, as far as this check needs it."""
    for c in r.inherits:
        if c not in KNOWN_CLASSES:
            fail("the recipe inherits %s, which this checker does not model" % c)
    pc = r.get("PACKAGECONFIG").split()
    if "manpages" in r.inherits and "api-documentation" in r.get("DISTRO_FEATURES").split():
        pc.append("manpages")
    r.enabled = pc
    args, deps = [], r.get("DEPENDS").split()
    for name, spec in r.flags.get("PACKAGECONFIG", {}).items():
        parts = (r.expand(spec).split(",") + ["", "", ""])[:4]
        args += parts[0].split() if name in pc else parts[1].split()
        if name in pc:
            deps += parts[2].split()
    r.mesonargs = r.get("EXTRA_OEMESON").split() + args
    r.depends = deps
    r.packages = r.expand(DEFAULT_PACKAGES.replace("${PACKAGE_BEFORE_PN}", r.get("PACKAGE_BEFORE_PN"))).split()
    r.files = {r.expand(k): r.expand(v) for k, v in DEFAULT_FILES.items()}
    if "bash-completion" in r.inherits:
        r.packages.append(r.expand("${PN}-bash-completion"))
        r.files[r.expand("${PN}-bash-completion")] = r.expand("${datadir}/bash-completion ${sysconfdir}/bash_completion.d")
    r.own_files = {}
    for pkg in r.packages:
        own = r.get("FILES:" + pkg)
        if ("FILES:" + pkg) in r.assigned:
            r.files[pkg] = own          # "=" replaces the default, "+=" adds to it
        elif own:
            r.files[pkg] = (r.files.get(pkg, "") + " " + own).strip()
        if own:
            r.own_files[pkg] = own.split()


def meson_options(path):
    opts = {}
    text = open(path).read()
    for m in re.finditer(r"option\('([^']+)',\s*type\s*:\s*'(\w+)'(.*?)\)\s*$", text, re.S | re.M):
        choices = re.search(r"choices\s*:\s*\[([^\]]*)\]", m.group(3))
        opts[m.group(1)] = (m.group(2), re.findall(r"'([^']*)'", choices.group(1)) if choices else None)
    return opts


def check_options(r, opts):
    specs = [r.get("EXTRA_OEMESON")]
    for spec in r.flags.get("PACKAGECONFIG", {}).values():
        specs += r.expand(spec).split(",")[:2]
    for arg in " ".join(specs).split():
        m = re.fullmatch(r"-D([\w-]+)=(.*)", arg)
        if not m:
            fail("%s: not a -Dname=value option" % arg)
            continue
        name, value = m.groups()
        if name not in opts:
            fail("the recipe sets -D%s, which meson_options.txt does not have" % name)
            continue
        kind, choices = opts[name]
        ok = {"boolean": value in ("true", "false"), "feature": value in ("enabled", "disabled", "auto"),
              "combo": choices is not None and value in choices, "string": True}.get(kind, True)
        if not ok:
            fail("-D%s=%s is not a valid %s value" % (name, value, kind))


def check_dependencies(r, src):
    wanted = set()
    for root, dirs, names in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
        if "meson.build" in names:
            wanted |= set(re.findall(r"dependency\('([^']+)'", open(os.path.join(root, "meson.build")).read()))
    buildable = set(r.depends)
    for spec in r.flags.get("PACKAGECONFIG", {}).values():
        buildable |= set((r.expand(spec).split(",") + ["", "", ""])[2].split())
    for dep in sorted(wanted - NOT_NEEDED):
        if dep not in PROVIDERS:
            fail("meson.build asks for dependency('%s'): add its recipe to the recipe's DEPENDS or a "
                 "PACKAGECONFIG, and to PROVIDERS in this test" % dep)
        elif PROVIDERS[dep] not in buildable:
            fail("meson.build asks for dependency('%s'), but the recipe never depends on %s"
                 % (dep, PROVIDERS[dep]))


def build_and_install(r, src, meson, tmp):
    noprefix = lambda v: r.get(v)[len("/usr/"):]
    cmd = [meson, "setup", os.path.join(tmp, "build"), src, "--prefix", "/usr",
           "--buildtype", "plain", "--wrap-mode", "nodownload"]
    for opt in ("bindir", "sbindir", "datadir", "libdir", "libexecdir", "includedir", "mandir", "infodir"):
        cmd += ["--" + opt, noprefix(opt)]
    for opt in ("sysconfdir", "localstatedir", "sharedstatedir"):
        cmd += ["--" + opt, r.get(opt)]
    cmd += r.mesonargs
    image = os.path.join(tmp, "image")
    for step in (cmd, [meson, "compile", "-C", os.path.join(tmp, "build")],
                 [meson, "install", "-C", os.path.join(tmp, "build"), "--destdir", image,
                  "--no-rebuild"]):
        p = subprocess.run(step, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stdout[-4000:] + p.stderr[-4000:])
            fail("%s failed" % " ".join(step[:2]))
            return None
    return image


def installed(image):
    out = []
    for root, dirs, names in os.walk(image):
        for n in names:
            out.append(os.path.join(root, n)[len(image):])
    return sorted(out)


def matches(pattern, path):
    return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/")


def check_packaging(r, image):
    files = installed(image)
    shipped = {}
    # The systemd class puts each SYSTEMD_SERVICE unit into its package.
    units = {os.path.join(r.get("systemd_system_unitdir"), s): pkg
             for pkg in r.packages for s in r.get("SYSTEMD_SERVICE:" + pkg).split()}
    for f in files:
        for pkg in r.packages:
            if any(matches(p, f) for p in r.files.get(pkg, "").split()) or units.get(f) == pkg:
                shipped.setdefault(pkg, []).append(f)
                break
        else:
            fail("%s is installed but in no package (installed-vs-shipped)" % f)
    for pkg, pats in r.own_files.items():
        for p in pats:
            if not any(matches(p, f) for f in files):
                fail("FILES:%s names %s, which the install does not have" % (pkg, p))
    for pkg in r.get("PACKAGE_BEFORE_PN").split():
        if not shipped.get(pkg):
            fail("package %s is empty" % pkg)
    for pkg in r.packages:
        for conf in r.get("CONFFILES:" + pkg).split():
            if conf not in shipped.get(pkg, []):
                fail("CONFFILES:%s names %s, which is not in that package" % (pkg, conf))
        for unit in r.get("SYSTEMD_SERVICE:" + pkg).split():
            if os.path.join(r.get("systemd_system_unitdir"), unit) not in files:
                fail("SYSTEMD_SERVICE:%s names %s, which is not in %s" % (pkg, unit,
                                                                          r.get("systemd_system_unitdir")))
    for pkg in sorted(shipped):
        print("%s: %s" % (pkg, " ".join(shipped[pkg])))


def check_license(r, src):
    for entry in r.get("LIC_FILES_CHKSUM").split():
        m = re.fullmatch(r"file://([^;]+)((?:;[^;]+)*)", entry)
        params = dict(p.split("=", 1) for p in m.group(2).split(";") if p)
        lines = open(os.path.join(src, m.group(1)), "rb").readlines()
        begin, end = int(params.get("beginline", 1)), int(params.get("endline", len(lines)))
        md5 = hashlib.md5(b"".join(lines[begin - 1:end])).hexdigest()
        if md5 != params.get("md5"):
            fail("LIC_FILES_CHKSUM %s: md5 of lines %d-%d is %s" % (m.group(1), begin, end, md5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-root", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--meson", required=True)
    a = ap.parse_args()
    r = Recipe(a.recipe)
    if not shutil.which("scdoc"):
        print("scdoc not found: checking without api-documentation (no manual pages)")
        LAYOUT["DISTRO_FEATURES"] = "systemd"
        r = Recipe(a.recipe)
    apply_classes(r)
    print("PACKAGECONFIG: %s\nmeson: %s" % (" ".join(r.enabled), " ".join(r.mesonargs)))
    check_options(r, meson_options(os.path.join(a.source_root, "meson_options.txt")))
    check_dependencies(r, a.source_root)
    check_license(r, a.source_root)
    with tempfile.TemporaryDirectory(prefix="vivd-yocto-") as tmp:
        image = build_and_install(r, a.source_root, a.meson, tmp)
        if image:
            check_packaging(r, image)
    print("%d problem(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
