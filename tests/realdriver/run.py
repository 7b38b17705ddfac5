#!/usr/bin/env python3
"""The daemon against the real Linux drivers, in QEMU guests.

The kit (../shared/realdriver, or $VIVD_REALDRIVER_KIT) has a QEMU with the
IVSHMEM v2 device, the ivshmem2-server link server and a Debian 6.1 guest
kernel with the out-of-tree virtio_ivshmem (front-end) and uio_ivshmem
(back-end) drivers.  This program builds small initramfs images (static
busybox, the kit's modules, a few host tools with their libraries, the guest
scripts in guest/ and test data), boots guests under TCG and checks what they
report on their serial console and what lands in the images on the host.

Scenarios (all by default; --only NAME to pick):
  hosted  the daemon on the host hosts the links (sim =): two writable
          disks, a read-only disk and a console, default sizes
  joined  the same, but the daemon joins links hosted by ivshmem2-server
          (sim-connect =), as on Jailhouse where the link outlives it
  uio     a back-end guest binds uio_ivshmem and runs the daemon with
          uio = /dev/uioN; a front-end guest uses its disks; the links
          come from ivshmem2-server
  handover      a guest keeps writing files on ext4 on a disk the daemon
                serves from the host (sim =) while the daemon is upgraded
                10 times and killed 10 times under vivd-supervise (the
                tests' stand-in for systemd's fd store and Restart=)
  handover-uio  the same with the daemon in a back-end guest on
                uio_ivshmem (the uio fd kept by the supervisor, so the
                driver never resets the link)

Exit status: 0 all passed, 1 a check failed, 77 the kit is missing (meson
counts that as skipped).
"""
import argparse
import gzip
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
KERNEL = "guest/vmlinuz-6.1.0-57-amd64"
MiB = 1 << 20
# Linux disables an IRQ when 99,900 of 100,000 interrupts find nothing to do.
FLOOD_WRITES = 110000

SCENARIOS = ("hosted", "joined", "uio", "handover", "handover-uio")

# Host tools copied into the guests, with the Debian package that has them.
TOOLS = {
    "busybox": ("/bin/busybox", "busybox-static"),
    "mkfs.ext4": ("/sbin/mke2fs", "e2fsprogs"),
    "e2fsck": ("/sbin/e2fsck", "e2fsprogs"),
    "blkdiscard-util": ("/sbin/blkdiscard", "util-linux"),
}


class Failed(Exception):
    pass


# ---------------------------------------------------------------- initramfs

class Initramfs:
    """A newc cpio archive, built in memory (no cpio tool needed)."""

    def __init__(self):
        self.entries = {}      # path -> (mode, data or link target)
        self.ino = 1

    def dir(self, path):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), (0o040755, b""))

    def file(self, path, data, mode=0o644):
        self.dir(os.path.dirname(path.strip("/")) or ".")
        self.entries[path.strip("/")] = (0o100000 | mode, data)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path.strip("/")) or ".")
        self.entries[path.strip("/")] = (0o120777, target.encode())

    def host_file(self, path, host_path, mode=0o755):
        with open(host_path, "rb") as f:
            self.file(path, f.read(), mode)

    def binary(self, path, host_path):
        """A dynamically linked host binary and every library it needs."""
        self.host_file(path, host_path)
        out = subprocess.run(["ldd", host_path], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.search(r"(/\S+)\s+\(0x", line)
            if m and os.path.exists(m.group(1)):
                lib = m.group(1)
                self.host_file(lib, os.path.realpath(lib))

    def write(self, out_path):
        blob = bytearray()

        def put(name, mode, data):
            name_b = name.encode() + b"\0"
            hdr = "070701" + "".join("%08X" % v for v in (
                self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
            self.ino += 1
            blob.extend(hdr.encode() + name_b)
            blob.extend(b"\0" * (-len(blob) % 4))
            blob.extend(data)
            blob.extend(b"\0" * (-len(blob) % 4))

        self.entries.pop(".", None)
        for name in sorted(self.entries):
            mode, data = self.entries[name]
            put(name, mode, data)
        put("TRAILER!!!", 0, b"")
        with open(out_path, "wb") as f:
            f.write(gzip.compress(bytes(blob), compresslevel=1))


def base_initramfs(kit, init_script):
    rd = Initramfs()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "mnt", "data", "lib/modules"):
        rd.dir(d)
    rd.host_file("bin/busybox", TOOLS["busybox"][0])
    applets = subprocess.run([TOOLS["busybox"][0], "--list"], capture_output=True,
                             text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            rd.symlink("bin/" + a, "busybox")
    for ko in os.listdir(os.path.join(kit, "guest/modules")):
        rd.host_file("lib/modules/" + ko, os.path.join(kit, "guest/modules", ko), 0o644)
    rd.host_file("common.sh", os.path.join(HERE, "guest/common.sh"), 0o644)
    rd.host_file("init", os.path.join(HERE, "guest", init_script))
    return rd


# ---------------------------------------------------------------- processes

class Guest:
    """A QEMU guest whose serial console is our stdin/stdout pipe."""

    def __init__(self, name, kit, workdir, initrd, links, cmdline="", smp=1):
        self.name = name
        self.lines = queue.Queue()
        self.all = []
        self.log_path = os.path.join(workdir, name + ".console.log")
        args = [os.path.join(kit, "bin/qemu-system-x86_64"), "-machine", "pc", "-accel", "tcg",
                "-cpu", "max", "-m", "512", "-smp", str(smp), "-nodefaults", "-display", "none",
                "-no-reboot", "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                "-kernel", os.path.join(kit, KERNEL), "-initrd", initrd,
                "-append", "console=ttyS0 panic=-1 quiet " + cmdline,
                "-serial", "stdio", "-monitor", "none"]
        for i, sock in enumerate(links):
            args += ["-chardev", "socket,path=%s,id=iv%d" % (sock, i),
                     "-device", "ivshmem,chardev=iv%d" % i]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "wb") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip("\r\n")
                self.all.append(line)
                self.lines.put(line)
        self.lines.put(None)

    def expect(self, pattern, timeout):
        """The first VIVD line matching pattern; fails on timeout or exit."""
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise Failed("%s: no '%s' within %d s (guest hung?)" % (self.name, pattern, timeout))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise Failed("%s: guest ended before '%s'" % (self.name, pattern))
            if rx.search(line):
                return line

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def results(self):
        return [l for l in self.all if l.startswith("VIVD ")]

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed("%s: did not power off within %d s" % (self.name, timeout))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Daemon:
    def __init__(self, binary, workdir, conf_text, devices):
        self.conf = os.path.join(workdir, "vivd.conf")
        self.log_path = os.path.join(workdir, "daemon.log")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        want = "serving %d device(s)" % devices
        while want not in self.text():
            if self.proc.poll() is not None or time.time() > deadline:
                raise Failed("daemon did not start:\n" + self.text())
            time.sleep(0.05)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failed("daemon did not exit within %d s of SIGTERM" % timeout)


class LinkServer:
    """The kit's ivshmem2-server hosting one link."""

    def __init__(self, kit, sock, size, vectors, protocol):
        # -m: memory from an unlinked file in our directory.  The default
        # (-M ivshmem, one POSIX shm name) would give every link the same
        # memory.
        self.proc = subprocess.Popen(
            [os.path.join(kit, "bin/ivshmem2-server"), "-F", "-S", sock, "-m",
             os.path.dirname(sock), "-l", size, "-n", "2", "-V", str(vectors), "-P", protocol],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if time.time() > deadline or self.proc.poll() is not None:
                raise Failed("ivshmem2-server did not start on " + sock)
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


# ---------------------------------------------------------------- checks

class Run:
    def __init__(self, args):
        self.args = args
        self.kit = args.kit
        self.failures = []
        self.notes = []

    def check(self, cond, what):
        print("  %s %s" % ("ok  " if cond else "FAIL", what), flush=True)
        if not cond:
            self.failures.append(what)

    def note(self, text):
        print("  note " + text, flush=True)
        self.notes.append(text)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def read_range(path, off, length):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(length)


def test_data(seed):
    rnd = random.Random(seed)
    return {name: rnd.randbytes(size) for name, size in
            (("d1", MiB), ("d2", MiB), ("d3", MiB), ("d4", MiB),
             ("cin", 256 << 10), ("cout", 256 << 10))}


def frontend_initramfs(kit, workdir, data, hipri=None):
    rd = base_initramfs(kit, "frontend.sh")
    for name, blob in data.items():
        rd.file("data/" + name, blob)
    if hipri:
        rd.binary("bin/vivd-hipri", hipri)
    rd.binary("bin/mkfs.ext4", TOOLS["mkfs.ext4"][0])
    rd.binary("bin/blkdiscard-util", TOOLS["blkdiscard-util"][0])
    if os.path.exists("/etc/mke2fs.conf"):
        rd.host_file("etc/mke2fs.conf", "/etc/mke2fs.conf", 0o644)
    path = os.path.join(workdir, "frontend.cpio.gz")
    rd.write(path)
    return path


def vivd_results(guest):
    """PASS/FAIL/INFO lines of a guest as {word: [rest...]}."""
    res = {}
    for line in guest.results():
        parts = line.split(" ", 2)
        if len(parts) >= 2:
            res.setdefault(parts[1], []).append(parts[2] if len(parts) > 2 else "")
    return res


def expect_passes(run, guest, names):
    res = vivd_results(guest)
    passed = " ".join(res.get("PASS", []))
    for f in res.get("FAIL", []):
        run.check(False, "%s: guest reports FAIL %s" % (guest.name, f))
    for n in names:
        run.check(re.search(r"(^| )%s( |$)" % re.escape(n), passed) is not None,
                  "%s: %s" % (guest.name, n))


def info(guest, key):
    for line in guest.results():
        m = re.match(r"VIVD INFO %s (.*)" % re.escape(key), line)
        if m:
            return m.group(1)
    return None


def console_exchange(guest, sock_path, data):
    """After the guest's WAIT console: connect, send cin, read cout."""
    guest.expect(r"^VIVD WAIT console", 60)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.settimeout(60)
    guest.send("go")
    s.sendall(data["cin"])
    got = bytearray()
    while len(got) < len(data["cout"]):
        chunk = s.recv(65536)
        if not chunk:
            break
        got.extend(chunk)
    s.close()
    return bytes(got)


def frontend_checks(run, guest, data, images, console_out):
    """What every front-end scenario checks in the guest and on the host."""
    expect_passes(run, guest, ["dd-direct", "dd-buffered", "blkdiscard", "write-zeroes",
                               "ro-refused", "ext4", "ext4-remount", "console-hvc0",
                               "unbind", "rebind", "rebind-data", "rebind-io"])
    run.check(info(guest, "serial") == "VIVD-DISK0", "GET_ID: /sys/block/vdX/serial is the "
              "configured serial (got %s)" % info(guest, "serial"))
    run.check(info(guest, "ro-flag") == "1", "read-only disk shows ro=1 in the guest")
    if console_out is not None:
        run.check(console_out == data["cout"], "console: cell -> host bytes complete and in "
                  "order (%d of %d)" % (len(console_out), len(data["cout"])))
        run.check(info(guest, "console-in-sha") == sha(data["cin"]),
                  "console: host -> cell bytes complete and in order")
    if images:
        raw, fs, ro = images["raw"], images["fs"], images["ro"]
        run.check(read_range(raw, 0, MiB) == data["d1"], "host image: direct write at 0")
        run.check(read_range(raw, 4 * MiB, MiB) == data["d2"], "host image: buffered write at 4M")
        run.check(read_range(raw, 8 * MiB, MiB) == bytes(MiB), "host image: discarded range "
                  "reads zeroes")
        run.check(read_range(raw, 12 * MiB, MiB) == bytes(MiB), "host image: write-zeroes range "
                  "reads zeroes")
        run.check(read_range(raw, 16 * MiB, MiB) == data["d4"], "host image: write after rebind")
        run.check(info(guest, "ro-sha") == sha(read_range(ro, 0, MiB)),
                  "read-only disk reads as the host image")
        fsck = subprocess.run(["e2fsck", "-fn", fs], capture_output=True, text=True)
        run.check(fsck.returncode == 0, "host: e2fsck -fn clean on the ext4 image (%d)%s" %
                  (fsck.returncode, "" if fsck.returncode == 0 else "\n" + fsck.stdout))
        for path, want in (("/f1", data["d1"]), ("/sub/f2", data["d2"])):
            got = subprocess.run(["debugfs", "-R", "cat " + path, fs], capture_output=True).stdout
            run.check(got == want, "host: %s in the ext4 image as written" % path)
        big = subprocess.run(["debugfs", "-R", "cat /big", fs], capture_output=True).stdout
        run.check(sha(big) == info(guest, "big-sha"), "host: /big in the ext4 image as written")


def host_images(workdir):
    imgs = {k: os.path.join(workdir, k + ".img") for k in ("raw", "fs", "ro")}
    for k in ("raw", "fs"):
        with open(imgs[k], "wb") as f:
            f.truncate(64 * MiB)
    with open(imgs["ro"], "wb") as f:
        f.write(random.Random(99).randbytes(16 * MiB))
    return imgs


def scenario_frontend(run, workdir, joined):
    """Front-end guest against the daemon on the host."""
    data = test_data(1 if joined else 2)
    # Hosted: a guest with two CPUs drives disk0's two queues, served on the
    # daemon's two threads (one of them away from the disk's home).
    mq = not joined
    # Joined: virtio_blk makes disk0's second queue a poll queue (no
    # callback, so no vector: 2 vectors do, as the driver asks for one per
    # callback), which polled I/O from the guest uses.
    poll = joined and bool(run.args.hipri)
    if joined and not poll:
        run.note("joined: no --hipri binary, the poll-queue checks were left out")
    initrd = frontend_initramfs(run.kit, workdir, data, run.args.hipri if poll else None)
    imgs = host_images(workdir)
    devs = [("block", "disk0", imgs["raw"],
             "serial = VIVD-DISK0\n" + ("queues = 2\n" if mq or poll else ""), "0x8002",
             3 if mq else 2),
            ("block", "disk1", imgs["fs"], "serial = VIVD-FS\n", "0x8002", 2),
            ("block", "ro", imgs["ro"], "serial = VIVD-RO\nread-only = yes\n", "0x8002", 2),
            ("console", "con0", None, "endpoint = socket\npath = %s/con0.sock\n" % workdir,
             "0x8003", 3)]
    # Hosted, the loops spin up to 1 ms before they sleep: the guest's
    # virtio_ring then often finds kicks turned off (event-idx) while it
    # queues, and must still get every request served.
    conf = "[daemon]\ncontrol-socket = %s/ctl.sock\n%s" % (
        workdir, "threads = 2\nbusy-poll-us = 1000\n" if mq else "")
    servers, links = [], []
    try:
        for kind, name, img, extra, proto, vectors in devs:
            sock = os.path.join(workdir, name + ".link")
            links.append(sock)
            if joined:
                size = "4M" if kind == "block" else "256K"
                servers.append(LinkServer(run.kit, sock, size, vectors, proto))
                conf += "[%s %s]\nsim-connect = %s\n" % (kind, name, sock)
            else:
                conf += "[%s %s]\nsim = %s\n" % (kind, name, sock)
            conf += ("image = %s\n" % img if img else "") + extra
        daemon = Daemon(run.args.daemon, workdir, conf, len(devs))
        # The console flood takes ~15 s under TCG: once is enough.
        flood = "" if joined else " vivd.flood=%d" % FLOOD_WRITES
        guest = Guest("frontend", run.kit, workdir, initrd, links,
                      "vivd.disks=VIVD-DISK0,VIVD-FS vivd.ro=VIVD-RO vivd.console=1 "
                      "vivd.sigterm=1" + flood + (" vivd.mq=1" if mq else "") +
                      (" vivd.poll=1 vivd.modarg_virtio_blk=poll_queues=1" if poll else ""),
                      # virtio_blk makes no more queues than possible CPUs
                      smp=2 if mq else "1,maxcpus=2" if poll else 1)
        try:
            console_out = console_exchange(guest, os.path.join(workdir, "con0.sock"), data)
            guest.expect(r"^VIVD WAIT sigterm", 120)
            if poll:
                polled_queue_checks(run, guest, imgs, data, os.path.join(workdir, "ctl.sock"))
            status = daemon.stop()
            run.check(status == 0, "daemon: SIGTERM with the guest idle exits 0 (%s)" % status)
            guest.send("go")
            guest.wait(60)
        finally:
            guest.kill()
            daemon.stop()
        run.check(any(l == "VIVD DONE" for l in guest.results()), "guest ran to the end")
        frontend_checks(run, guest, data, imgs, console_out)
        if mq:
            run.check("disk0: serving" in daemon.text() and
                      "2 queue(s) of" in daemon.text() and "on 2 worker(s)" in daemon.text(),
                      "daemon: disk0's two queues on two workers")
            run.check(info(guest, "mq-queues") == "2", "guest: virtio_blk made two queues "
                      "(got %s)" % info(guest, "mq-queues"))
            expect_passes(run, guest, ["mq-io"])
            run.check(read_range(imgs["raw"], 20 * MiB, MiB) == data["d1"] and
                      read_range(imgs["raw"], 24 * MiB, MiB) == data["d2"],
                      "host image: the writes from both CPUs at once")
        fails = info(guest, "backend-failed")
        rc = info(guest, "io-after-stop")
        run.note("%s: after SIGTERM the guest logged 'backend failed!' %s time(s); a read "
                 "then ended with status %s (%s)" % (
                     "joined" if joined else "hosted", fails, rc,
                     "failed at once" if rc not in (None, "0", "124", "143") else
                     "hung until the guest's timeout" if rc in ("124", "143") else "succeeded"))
        run.check(fails is not None and int(fails) >= 1, "guest sees the back-end go away "
                  "('backend failed!')")
        run.check(rc is not None and rc not in ("124", "143"),
                  "I/O after the daemon stopped does not hang the guest (dd status %s)" % rc)
        if not joined:
            run.check(info(guest, "flood-nobody-cared") == "0",
                      "console: %d small writes do not get an IRQ disabled ('nobody cared')" %
                      FLOOD_WRITES)
            irqs = [l for l in guest.results() if l.startswith("VIVD INFO flood-irq ")]
            run.note("console flood of %d writes: %s" % (FLOOD_WRITES, "; ".join(
                " ".join(l.split()[3:6]) for l in irqs)))
        dmesg = [l[len("VIVD DMESG "):] for l in guest.results() if l.startswith("VIVD DMESG ")]
        run.check(not any("shared memory is full" in l or "Error allocating" in l for l in dmesg),
                  "no allocation failure in the guest's driver log")
    finally:
        for s in servers:
            s.stop()


def polled_queue_checks(run, guest, imgs, data, ctl):
    """The guest's polled I/O went down disk0's poll queue (queue 1), which
    the daemon answered without interrupts."""
    expect_passes(run, guest, ["hipri-io"])
    run.check(info(guest, "io-poll") == "1", "guest: disk0 can poll (queue/io_poll %s; "
              "possible CPUs %s: virtio_blk needs two for a poll queue)" %
              (info(guest, "io-poll"), info(guest, "cpus-possible")))
    run.check(read_range(imgs["raw"], 28 * MiB, MiB) == data["d2"],
              "host image: the polled writes")
    out = subprocess.run([run.args.ctl, "-s", ctl, "--json", "stats", "disk0"],
                         capture_output=True, text=True).stdout
    try:
        q = json.loads(out)["devices"][0]["queues"]
    except (ValueError, LookupError):
        run.check(False, "daemon: stats disk0 (%r)" % out[:200])
        return
    # 256 writes and 256 reads of 4 KiB, one at a time; used_event stays at
    # 0 on a queue without a callback, so only the first answer crosses it
    run.check(len(q) == 2 and q[1]["requests"] >= 512 and q[1]["interrupts"] <= 1,
              "daemon: the polled requests on queue 1 without interrupts (%s)" %
              [{k: x.get(k) for k in ("requests", "kicks", "interrupts")} for x in q])
    run.note("joined: poll queue %s" % {k: q[1].get(k) for k in ("requests", "kicks",
                                                                 "busy_polled", "interrupts")})


def scenario_uio(run, workdir):
    """Back-end guest (uio_ivshmem + daemon) and front-end guest, linked by
    ivshmem2-server: the block checks."""
    data = test_data(3)
    be = base_initramfs(run.kit, "backend.sh")
    be.binary("bin/virtio-ivshmemd", run.args.daemon)
    if run.args.cellmgr and os.path.exists(run.args.cellmgr):
        be.binary("bin/jailhouse-cellmgr", run.args.cellmgr)
    be.binary("bin/e2fsck", TOOLS["e2fsck"][0])
    be_initrd = os.path.join(workdir, "backend.cpio.gz")
    be.write(be_initrd)
    fe_initrd = frontend_initramfs(run.kit, workdir, data)
    socks = [os.path.join(workdir, "blk%d.link" % i) for i in range(2)]
    servers = [LinkServer(run.kit, s, "4M", 2, "0x8002") for s in socks]
    backend = frontend = None
    try:
        # The back-end joins first: it gets peer ID 0, the back-end role.
        # disk0's two queues on the daemon's two threads, driven from the
        # front-end guest's two CPUs.
        backend = Guest("backend", run.kit, workdir, be_initrd, socks,
                        "vivd.serial0=VIVD-DISK0 vivd.serial1=VIVD-FS vivd.mq=1")
        backend.expect(r"^VIVD (READY|FAIL)", 120)
        frontend = Guest("frontend", run.kit, workdir, fe_initrd, socks,
                         "vivd.disks=VIVD-DISK0,VIVD-FS vivd.mq=1", smp=2)
        frontend.wait(300)
        backend.send("check disk0 0:%d %d:%d %d:%d %d:%d %d:%d %d:%d %d:%d" % (
            MiB, 4 * MiB, MiB, 8 * MiB, MiB, 12 * MiB, MiB, 16 * MiB, MiB, 20 * MiB, MiB,
            24 * MiB, MiB))
        backend.expect(r"^VIVD CHECKED", 60)
        backend.send("fsck disk1")
        backend.expect(r"^VIVD FSCK ", 120)
        backend.send("stop")
        backend.expect(r"^VIVD STOPPED", 60)
        backend.wait(60)
    finally:
        for g in (frontend, backend):
            if g:
                g.kill()
        for s in servers:
            s.stop()
    res = vivd_results(backend)
    run.check("bind-cellmgr" in res.get("PASS", []) or "bind-new-id" in res.get("PASS", []),
              "back-end guest: devices bound to uio_ivshmem")
    if "bind-cellmgr" in res.get("PASS", []):
        run.note("uio: jailhouse-cellmgr bind bound the back-end devices in the guest")
    else:
        run.note("uio: bound with new_id (cellmgr: %s)" % info(backend, "bind-cellmgr-failed"))
    run.check(info(backend, "uio-devices") == "2", "back-end guest: two /dev/uioN")
    run.check(any(l == "VIVD READY" for l in backend.results()),
              "back-end guest: the daemon serves both uio devices")
    expect_passes(run, frontend, ["dd-direct", "dd-buffered", "blkdiscard", "write-zeroes",
                                  "ext4", "ext4-remount", "unbind", "rebind", "rebind-data",
                                  "rebind-io", "mq-io"])
    run.check(info(frontend, "mq-queues") == "2", "uio: virtio_blk made two queues (got %s)" %
              info(frontend, "mq-queues"))
    run.check(any("disk0: serving" in l and "on 2 worker(s)" in l for l in backend.results()),
              "uio: disk0's two queues on two workers in the back-end guest")
    run.check(info(frontend, "serial") == "VIVD-DISK0", "uio: GET_ID through the uio path")
    shas = {}
    for line in backend.results():
        m = re.match(r"VIVD SHA (\S+) (\d+):(\d+) (\S+)", line)
        if m:
            shas[(m.group(1), int(m.group(2)))] = m.group(4)
    for off, want, what in ((0, data["d1"], "direct write"), (4 * MiB, data["d2"], "buffered write"),
                            (8 * MiB, bytes(MiB), "discard"), (12 * MiB, bytes(MiB), "write-zeroes"),
                            (16 * MiB, data["d4"], "write after rebind"),
                            (20 * MiB, data["d1"], "write from CPU 0, beside CPU 1's"),
                            (24 * MiB, data["d2"], "write from CPU 1, beside CPU 0's")):
        run.check(shas.get(("disk0", off)) == sha(want), "uio: back-end image holds the %s" % what)
    fsck = [l for l in backend.results() if l.startswith("VIVD FSCK ")]
    run.check(fsck and fsck[0].endswith(" 0"), "uio: e2fsck -fn clean in the back-end guest (%s)" %
              (fsck[0] if fsck else "none"))
    stopped = [l for l in backend.results() if l.startswith("VIVD STOPPED ")]
    run.check(stopped and stopped[0].endswith(" 0"), "uio: the daemon exits 0 on SIGTERM")
    errors = [l for l in backend.results() if l.startswith("VIVD DAEMON ") and
              re.search(r"error|broke|refus", l, re.I)]
    run.check(not errors, "uio: no error in the daemon's log%s" % ("\n" + "\n".join(errors)
                                                                   if errors else ""))


# ---------------------------------------------------------------- hand-over

HANDOVER_ROUNDS = 10        # upgrades, and as many kills, alternating


def writer_initramfs(kit, workdir):
    rd = base_initramfs(kit, "writer.sh")
    rd.binary("bin/mkfs.ext4", TOOLS["mkfs.ext4"][0])
    if os.path.exists("/etc/mke2fs.conf"):
        rd.host_file("etc/mke2fs.conf", "/etc/mke2fs.conf", 0o644)
    path = os.path.join(workdir, "writer.cpio.gz")
    rd.write(path)
    return path


def files_written(guest):
    return sum(1 for l in list(guest.all) if l.startswith("VIVD FILE "))


def wait_files(guest, n, timeout):
    deadline = time.time() + timeout
    while files_written(guest) < n:
        if guest.proc.poll() is not None:
            raise Failed("%s: guest ended while writing" % guest.name)
        if time.time() > deadline:
            raise Failed("%s: no new file written within %d s (I/O stuck?)" % (guest.name,
                                                                            timeout))
        time.sleep(0.1)


def drive_handover(run, writer, upgrade, kill, what):
    """Alternate upgrades and kills while the writer writes; after each, two
    more files must reach the disk."""
    wait_files(writer, 2, 180)
    pauses = []
    for i in range(2 * HANDOVER_ROUNDS):
        before = files_written(writer)
        if i % 2 == 0:
            ok, text = upgrade()
            run.check(ok, "%s: upgrade %d: %s" % (what, i // 2 + 1, text))
            m = re.search(r"([0-9.]+) ms paused", text)
            if m:
                pauses.append(float(m.group(1)))
        else:
            ok, text = kill()
            run.check(ok, "%s: kill %d: %s" % (what, i // 2 + 1, text))
        wait_files(writer, before + 2, 120)
    if pauses:
        run.note("%s: upgrade pauses %s ms (as the daemon measured them)" % (
            what, ", ".join("%.1f" % p for p in pauses)))
    writer.expect(r"^VIVD WAIT stop", 10)
    writer.send("go")
    writer.wait(300)


def writer_checks(run, writer, what):
    res = vivd_results(writer)
    for f in res.get("FAIL", []):
        run.check(False, "%s: guest reports FAIL %s" % (what, f))
    run.check("umount" in res.get("PASS", []), "%s: ext4 unmounts cleanly" % what)
    run.check(info(writer, "reread-bad") == "0", "%s: every file reads back from the disk as "
              "written (%s bad)" % (what, info(writer, "reread-bad")))
    run.check(info(writer, "io-errors") == "0", "%s: no I/O error in the guest's log (%s)" % (
        what, info(writer, "io-errors")))
    run.check(info(writer, "backend-failed") == "0", "%s: the driver never saw the back-end "
              "fail (%s)" % (what, info(writer, "backend-failed")))
    files = {}
    for l in writer.results():
        m = re.match(r"VIVD FILE (\d+) ([0-9a-f]{64})", l)  # the echo of "go" may follow
        if m:
            files[int(m.group(1))] = m.group(2)
    run.note("%s: %d files written through %d upgrades and %d kills" % (
        what, len(files), HANDOVER_ROUNDS, HANDOVER_ROUNDS))
    return files


class Supervised:
    """The daemon under vivd-supervise, on the host."""

    def __init__(self, run, workdir, conf_text, devices):
        self.conf = os.path.join(workdir, "vivd.conf")
        self.log_path = os.path.join(workdir, "daemon.log")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.proc = subprocess.Popen([run.args.supervise, self.log_path, run.args.daemon,
                                      self.conf], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.expect("READY 0", 30)

    def expect(self, prefix, timeout):
        result = []

        def read():
            for line in self.proc.stdout:
                if line.startswith(prefix):
                    result.append(line.strip())
                    return
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            raise Failed("vivd-supervise: no '%s' within %d s; daemon log:\n%s" % (
                prefix, timeout, self.text()[-3000:]))
        return result[0]

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self, start):
        self.proc.stdin.write("kill\n")
        self.proc.stdin.flush()
        killed = self.expect("KILLED", 10)
        ready = self.expect("READY %d" % (start + 1), 60)
        return killed, ready

    def stop(self):
        if self.proc.poll() is not None:
            return None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        line = self.expect("STOPPED", 60)
        self.proc.wait(10)
        return line


def scenario_handover(run, workdir):
    """Upgrades and kills of the daemon on the host under a writing guest."""
    img = os.path.join(workdir, "fs.img")
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
    link = os.path.join(workdir, "disk0.link")
    ctl = os.path.join(workdir, "ctl.sock")
    # Spinning up to 1 ms before sleeping, so that kills also land while
    # the guest's driver sees its kicks turned off.
    conf = ("[daemon]\ncontrol-socket = %s\nbusy-poll-us = 1000\n[block disk0]\nsim = %s\n"
            "image = %s\nserial = VIVD-FS\n" % (ctl, link, img))
    sup = Supervised(run, workdir, conf, 1)
    writer = None
    starts = [0]
    try:
        writer = Guest("writer", run.kit, workdir, writer_initramfs(run.kit, workdir), [link],
                       "vivd.fs=VIVD-FS")

        def upgrade():
            r = subprocess.run([run.args.ctl, "-s", ctl, "upgrade"], capture_output=True,
                               text=True, timeout=60)
            text = (r.stdout + r.stderr).strip()
            return r.returncode == 0 and "1 device(s) taken over, 0 started afresh" in text, text

        def kill():
            killed, ready = sup.kill(starts[0])
            starts[0] += 1
            return True, "%s, %s" % (killed, ready)

        drive_handover(run, writer, upgrade, kill, "handover")
    finally:
        if writer:
            writer.kill()
        stopped = sup.stop()
    run.check(stopped == "STOPPED 0 0", "handover: the daemon stops cleanly and never died "
              "unasked (%s)" % stopped)
    files = writer_checks(run, writer, "handover")
    log = sup.text()
    run.check("cannot take the device over" not in log, "handover: every device taken over "
              "every time")
    run.check(log.count("restarted with") == HANDOVER_ROUNDS, "handover: %d restarts from the "
              "store (%d)" % (HANDOVER_ROUNDS, log.count("restarted with")))
    fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    run.check(fsck.returncode == 0, "handover: e2fsck -fn clean on the host image (%d)%s" % (
        fsck.returncode, "" if fsck.returncode == 0 else "\n" + fsck.stdout))
    bad = [n for n, want in sorted(files.items()) if sha(subprocess.run(
        ["debugfs", "-R", "cat /f%d" % n, img], capture_output=True).stdout) != want]
    run.check(files and not bad, "handover: every file in the host image as the guest wrote it "
              "(%d files, bad: %s)" % (len(files), bad[:10]))


def scenario_handover_uio(run, workdir):
    """The same with the daemon on uio_ivshmem in a back-end guest."""
    be = base_initramfs(run.kit, "backend.sh")
    be.binary("bin/virtio-ivshmemd", run.args.daemon)
    be.binary("bin/virtio-ivshmemctl", run.args.ctl)
    be.binary("bin/vivd-supervise", run.args.supervise)
    if run.args.cellmgr and os.path.exists(run.args.cellmgr):
        be.binary("bin/jailhouse-cellmgr", run.args.cellmgr)
    be.binary("bin/e2fsck", TOOLS["e2fsck"][0])
    be_initrd = os.path.join(workdir, "backend.cpio.gz")
    be.write(be_initrd)
    sock = os.path.join(workdir, "blk0.link")
    server = LinkServer(run.kit, sock, "4M", 2, "0x8002")
    backend = writer = None
    try:
        backend = Guest("backend", run.kit, workdir, be_initrd, [sock],
                        "vivd.serial0=VIVD-FS vivd.supervise=1")
        backend.expect(r"^VIVD (READY|FAIL)", 120)
        writer = Guest("writer", run.kit, workdir, writer_initramfs(run.kit, workdir), [sock],
                       "vivd.fs=VIVD-FS")

        def upgrade():
            backend.send("upgrade")
            line = backend.expect(r"^VIVD UPGRADED", 120)
            return (line.startswith("VIVD UPGRADED 0 ") and
                    "1 device(s) taken over, 0 started afresh" in line), line[14:]

        def kill():
            backend.send("kill")
            line = backend.expect(r"^VIVD (RESTARTED|FAIL)", 120)
            return line.startswith("VIVD RESTARTED"), line[5:]

        drive_handover(run, writer, upgrade, kill, "handover-uio")
        backend.send("fsck disk0")
        fsck = backend.expect(r"^VIVD FSCK ", 120)
        backend.send("stop")
        stopped = backend.expect(r"^VIVD STOPPED", 60)
        backend.wait(60)
    finally:
        for g in (writer, backend):
            if g:
                g.kill()
        server.stop()
    writer_checks(run, writer, "handover-uio")
    run.check(fsck.endswith(" 0"), "handover-uio: e2fsck -fn clean in the back-end guest (%s)" %
              fsck)
    run.check(stopped == "VIVD STOPPED 0 0", "handover-uio: the daemon stops cleanly and never "
              "died unasked (%s)" % stopped)
    log = [l for l in backend.results() if l.startswith("VIVD DAEMON ")]
    run.check(not any("cannot take the device over" in l for l in log),
              "handover-uio: every device taken over every time")
    run.check(sum("restarted with" in l for l in log) == HANDOVER_ROUNDS,
              "handover-uio: %d restarts from the store" % HANDOVER_ROUNDS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kit", default=os.environ.get("VIVD_REALDRIVER_KIT",
                                                    os.path.join(SRC, "..", "shared", "realdriver")))
    ap.add_argument("--daemon", required=True, help="the virtio-ivshmemd binary")
    ap.add_argument("--cellmgr", help="the jailhouse-cellmgr binary (for bind in the guest)")
    ap.add_argument("--ctl", help="the virtio-ivshmemctl binary (for the hand-over scenarios)")
    ap.add_argument("--supervise", help="the vivd-supervise binary (for the hand-over scenarios)")
    ap.add_argument("--hipri", help="the vivd-hipri binary (polled I/O in the joined scenario)")
    ap.add_argument("--only", choices=SCENARIOS, action="append")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.kit = os.path.abspath(args.kit)
    if not os.path.exists(os.path.join(args.kit, "bin/qemu-system-x86_64")):
        print("SKIP: the real-driver kit is not at %s (set VIVD_REALDRIVER_KIT)" % args.kit)
        return 77
    missing = sorted({pkg for tool, (path, pkg) in TOOLS.items() if not os.path.exists(path)} |
                     ({"e2fsprogs"} if not shutil.which("debugfs") else set()) |
                     ({"seabios"} if not os.path.exists("/usr/share/seabios/bios.bin") else set()) |
                     ({"qemu-system-data"} if not os.path.isdir("/usr/share/qemu") else set()))
    if missing:
        print("missing Debian packages for the guests: " + " ".join(missing))
        return 1
    run = Run(args)
    scenarios = args.only or list(SCENARIOS)
    if not (args.ctl and args.supervise):
        scenarios = [n for n in scenarios if not n.startswith("handover")]
    workroot = tempfile.mkdtemp(prefix="vivd-realdriver-")
    for name in scenarios:
        workdir = os.path.join(workroot, name)
        os.makedirs(workdir)
        start = time.time()
        print("=== %s (%s)" % (name, workdir), flush=True)
        try:
            if name == "uio":
                scenario_uio(run, workdir)
            elif name == "handover":
                scenario_handover(run, workdir)
            elif name == "handover-uio":
                scenario_handover_uio(run, workdir)
            else:
                scenario_frontend(run, workdir, joined=(name == "joined"))
        except Failed as e:
            run.check(False, "%s: %s" % (name, e))
        print("=== %s took %.1f s" % (name, time.time() - start), flush=True)
    if run.failures:
        print("\n%d check(s) failed; logs in %s" % (len(run.failures), workroot))
        for f in run.failures:
            print("  " + f.splitlines()[0])
        return 1
    print("\nall checks passed")
    for n in run.notes:
        print("note: " + n)
    if not args.keep:
        shutil.rmtree(workroot, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
