#!/usr/bin/env python3
"""`meson install --destdir` into a temporary directory, then check the tree
and run what got installed, the way systemd would start it:

- every expected file is at its place, nothing else is installed, and the
  modes are sane (programs 0755, the rest 0644, no setuid, nothing writable
  by others);
- the installed daemon passes --check-config on the installed example;
- the unit's ExecStartPre and ExecStart name the installed daemon and config;
  run as the unit would (Type=notify: READY=1 on $NOTIFY_SOCKET), the daemon
  serves the example's placeholder and stops with exit 0 on its KillSignal;
  the installed virtio-ivshmemctl lists the placeholder in between;
- ExecReload (virtio-ivshmemctl upgrade) hands the placeholder to the
  installed daemon again; the unit keeps the fd store and restarts;
- systemd-analyze verify finds nothing to say about the unit, and the
  tmpfiles.d entry creates the runtime directory the example uses.

The example names /run/virtio-ivshmemd; the run uses a copy with that
directory (and the control socket) moved into the temporary directory, so
the test touches nothing outside it.
"""
import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

RUNDIR = "/run/virtio-ivshmemd"
errors = []


def fail(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def expected_files(a):
    """{absolute path: executable?} of everything `meson install` must lay out."""
    files = {
        os.path.join(a.sbindir, "virtio-ivshmemd"): True,
        os.path.join(a.bindir, "virtio-ivshmemctl"): True,
        os.path.join(a.libexecdir, "virtio-ivshmemd", "ivshmem-sim-server"): True,
        os.path.join(a.sysconfdir, "virtio-ivshmemd.conf"): False,
        os.path.join(a.docdir, "README.md"): False,
        os.path.join(a.docdir, "protocol.md"): False,
        os.path.join(a.docdir, "cellmgr.md"): False,
        os.path.join(a.docdir, "examples", "virtio-ivshmemd.conf"): False,
    }
    if a.cellmgr:
        files[os.path.join(a.sbindir, "jailhouse-cellmgr")] = True
    if a.unitdir:
        files[os.path.join(a.unitdir, "virtio-ivshmemd.service")] = False
        files[os.path.join(a.tmpfilesdir, "virtio-ivshmemd.conf")] = False
    if a.completionsdir:
        for prog in ["virtio-ivshmemd", "virtio-ivshmemctl"] + (["jailhouse-cellmgr"] if a.cellmgr else []):
            files[os.path.join(a.completionsdir, prog)] = False
    if a.mandir:
        pages = ["man8/virtio-ivshmemd.8", "man5/virtio-ivshmemd.conf.5", "man8/virtio-ivshmemctl.8"]
        if a.cellmgr:
            pages.append("man8/jailhouse-cellmgr.8")
        for p in pages:
            files[os.path.join(a.mandir, p)] = False
    return files


def check_tree(dest, a):
    want = expected_files(a)
    found = set()
    for root, dirs, names in os.walk(dest):
        for d in dirs:
            st = os.lstat(os.path.join(root, d))
            if stat.S_IMODE(st.st_mode) != 0o755:
                fail("directory %s has mode %o, not 755" % (os.path.join(root, d)[len(dest):],
                                                           stat.S_IMODE(st.st_mode)))
        for n in names:
            full = os.path.join(root, n)
            path = full[len(dest):]
            found.add(path)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                fail("%s is not a regular file" % path)
                continue
            if path not in want:
                fail("%s is installed but not expected (add it to this test if it should be)" % path)
                continue
            mode = stat.S_IMODE(st.st_mode)
            good = 0o755 if want[path] else 0o644
            if mode != good:
                fail("%s has mode %o, not %o" % (path, mode, good))
    for path in sorted(set(want) - found):
        fail("%s is missing" % path)


def unit_service(unit_path):
    """The [Service] settings of a unit file (last one wins), as a dict."""
    sec, out = None, {}
    with open(unit_path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                sec = line
            elif sec == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def run_like_systemd(dest, a, tmp, svc):
    """Start the daemon the way the unit does, with the example moved off /run."""
    conf = os.path.join(a.sysconfdir, "virtio-ivshmemd.conf")
    daemon = os.path.join(a.sbindir, "virtio-ivshmemd")
    pre, start = svc.get("ExecStartPre", "").split(), svc.get("ExecStart", "").split()
    if pre != [daemon, "--check-config", conf]:
        fail("ExecStartPre is %r, not %s --check-config %s" % (svc.get("ExecStartPre"), daemon, conf))
    if start != [daemon, "-c", conf]:
        fail("ExecStart is %r, not %s -c %s" % (svc.get("ExecStart"), daemon, conf))
    if svc.get("Type") != "notify":
        fail("the unit's Type is %r, not notify" % svc.get("Type"))
    ctl = os.path.join(a.bindir, "virtio-ivshmemctl")
    reload = svc.get("ExecReload", "").split()
    if reload != [ctl, "upgrade"]:
        fail("ExecReload is %r, not %s upgrade" % (svc.get("ExecReload"), ctl))
    for key, want in (("Restart", "always"), ("RuntimeDirectoryPreserve", "restart"),
                      ("NotifyAccess", "main")):
        if svc.get(key) != want:
            fail("the unit's %s is %r, not %s" % (key, svc.get(key), want))
    if int(svc.get("FileDescriptorStoreMax", "0")) < 256:
        fail("the unit's FileDescriptorStoreMax is %r: too small for the devices' fds"
             % svc.get("FileDescriptorStoreMax"))
    if errors:
        return
    run = os.path.join(tmp, "run")
    os.mkdir(run)
    with open(dest + conf) as f:
        text = f.read().replace(RUNDIR, run)
    text += "\n[daemon]\ncontrol-socket = %s/control.sock\n" % run
    copy = os.path.join(tmp, "example.conf")
    with open(copy, "w") as f:
        f.write(text)
    r = subprocess.run([dest + daemon, "--check-config", copy], capture_output=True, text=True)
    if r.returncode != 0:
        fail("ExecStartPre on the example (moved off /run) failed: " + r.stdout + r.stderr)
        return
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    proc = subprocess.Popen([dest + daemon, "-c", copy], env=env, stdout=log, stderr=log)
    try:
        ready = False
        while not ready:
            try:
                msg = notify.recv(4096).decode()
            except socket.timeout:
                break
            ready = "READY=1" in msg.split("\n")
        if not ready:
            fail("the daemon never sent READY=1 on the installed example")
        else:
            ctl = subprocess.run([dest + os.path.join(a.bindir, "virtio-ivshmemctl"), "-s",
                                  os.path.join(run, "control.sock"), "list"],
                                 capture_output=True, text=True, timeout=20)
            if ctl.returncode != 0 or "placeholder" not in ctl.stdout:
                fail("virtio-ivshmemctl list did not show the placeholder: " + ctl.stdout + ctl.stderr)
            # systemctl reload: the installed daemon upgrades to itself
            up = subprocess.run([dest + reload[0], "-s", os.path.join(run, "control.sock"),
                                 "upgrade"], capture_output=True, text=True, timeout=40)
            if up.returncode != 0 or "1 device(s) taken over" not in up.stdout:
                fail("ExecReload (upgrade) did not take the placeholder over: " + up.stdout
                     + up.stderr)
        sig = getattr(signal, svc.get("KillSignal", "SIGTERM"))
        proc.send_signal(sig)
        rc = proc.wait(timeout=int(svc.get("TimeoutStopSec", "30")))
        if rc != 0:
            fail("the daemon exited %d after %s" % (rc, sig.name))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    if errors:
        log.seek(0)
        print("daemon log:\n" + log.read())


def check_unit_tools(dest, a, tmp):
    unit = dest + os.path.join(a.unitdir, "virtio-ivshmemd.service")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        # verify checks that the programs exist: point them into DESTDIR.
        copy = os.path.join(tmp, "virtio-ivshmemd.service")
        with open(unit) as f:
            text = f.read()
        for d in (a.sbindir, a.bindir, a.sysconfdir, a.docdir):
            text = text.replace("=%s/" % d, "=%s%s/" % (dest, d)).replace("file://%s/" % d,
                                                                        "file://%s%s/" % (dest, d))
        with open(copy, "w") as f:
            f.write(text)
        r = subprocess.run([analyze, "verify", "--man=no", copy], capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
            fail("systemd-analyze verify: " + r.stdout + r.stderr)
    else:
        print("systemd-analyze not found: unit not verified")
    entry = dest + os.path.join(a.tmpfilesdir, "virtio-ivshmemd.conf")
    with open(entry) as f:
        lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
    if [l[:3] for l in lines] != [["d", RUNDIR, "0755"]]:
        fail("the tmpfiles.d entry is not one 'd %s 0755' line: %r" % (RUNDIR, lines))
    tmpfiles = shutil.which("systemd-tmpfiles")
    if tmpfiles and os.geteuid() == 0:     # it chowns to root
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        r = subprocess.run([tmpfiles, "--create", "--root=" + root, entry], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.isdir(root + RUNDIR):
            fail("systemd-tmpfiles --create did not make %s: %s" % (RUNDIR, r.stderr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build-root", required=True)
    for d in ("bindir", "sbindir", "libexecdir", "sysconfdir", "docdir"):
        ap.add_argument("--" + d, required=True)
    for d in ("unitdir", "tmpfilesdir", "completionsdir", "mandir"):
        ap.add_argument("--" + d, default="", help="empty: not installed")
    ap.add_argument("--cellmgr", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vivd-install-") as tmp:
        dest = os.path.join(tmp, "dest")
        r = subprocess.run([a.meson, "install", "-C", a.build_root, "--destdir", dest,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            fail("meson install failed")
            return 1
        check_tree(dest, a)
        conf = dest + os.path.join(a.sysconfdir, "virtio-ivshmemd.conf")
        r = subprocess.run([dest + os.path.join(a.sbindir, "virtio-ivshmemd"), "--check-config", conf],
                           capture_output=True, text=True)
        if r.returncode != 0 or "OK" not in r.stdout:
            fail("--check-config on the installed example: exit %d: %s" % (r.returncode, r.stdout + r.stderr))
        if a.unitdir and not errors:
            svc = unit_service(dest + os.path.join(a.unitdir, "virtio-ivshmemd.service"))
            run_like_systemd(dest, a, tmp, svc)
            check_unit_tools(dest, a, tmp)
    print("%d problem(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
