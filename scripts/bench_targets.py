"""Where scripts/bench (bench_run.py) measures: set up a target's image or
device and the daemon serving it, and take it all down again.

  file   an image on the disk's own file system (--file-dir, /var/tmp),
         filled, so in page cache;
  loop   a loop device with direct I/O over a file in --file-dir, filled
         through the device so that its page cache is warm (root only);
  tmpfs  an image in --tmpfs-dir (/dev/shm);
  null   the daemon's null disk (image = null:SIZE): no data at all.
One daemon per target (threads = 2) serves disk "one" and, for patterns
with several disks, m0..mN-1 on the same image, as fio's jobs share a file.
"""
import os
import shutil
import subprocess
import tempfile
import time


def fstype(path):
    return subprocess.run(["df", "--output=fstype", path], stdout=subprocess.PIPE,
                          text=True).stdout.split()[-1]


def fill(cfg, path, size):
    subprocess.run([cfg.fio, "--name=fill", "--filename=" + path, "--size=%d" % size,
                    "--rw=write", "--bs=1M", "--ioengine=psync", "--end_fsync=0",
                    "--output=/dev/null"], check=True)


class Target:
    def __init__(self, cfg, name):
        self.cfg, self.name, self.size = cfg, name, cfg.size
        self.image = self.fio_file = self.backing = self.loopdev = None
        self.daemon = None
        self.desc = ""

    def sock(self, dev):
        return os.path.join(self.cfg.work, "%s-%s.sock" % (self.name, dev))

    def log_tail(self):
        try:
            return "".join(open(os.path.join(self.cfg.work, self.name + ".log")).readlines()[-20:])
        except OSError:
            return ""

    def setup(self):
        """None, or why the target is skipped."""
        cfg = self.cfg
        if self.name == "null":
            self.image, self.desc = "null:%d" % self.size, "the null disk: no data, no fio"
        elif self.name == "loop":
            if os.geteuid() != 0:
                return "a loop device needs root (losetup)"
            if not shutil.which("losetup"):
                return "losetup is missing (Debian: mount)"
            fd, self.backing = tempfile.mkstemp(prefix="virtio-ivshmemd-bench.", suffix=".loop",
                                                dir=cfg.file_dir)
            os.ftruncate(fd, self.size)
            os.close(fd)
            self.loopdev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on",
                                           self.backing], stdout=subprocess.PIPE, text=True,
                                          check=True).stdout.strip()
            fill(cfg, self.loopdev, self.size)      # through the device: its page cache is warm
            self.image = self.fio_file = self.loopdev
            self.desc = "%s, direct I/O over a file on %s (%s)" % (
                self.loopdev, cfg.file_dir, fstype(cfg.file_dir))
        else:
            d = cfg.file_dir if self.name == "file" else cfg.tmpfs_dir
            fs = fstype(d)
            if self.name == "tmpfs" and fs != "tmpfs":
                return "%s is %s, not tmpfs" % (d, fs)
            free = shutil.disk_usage(d).free
            if free < self.size + (64 << 20):
                return "%s has %d bytes free, the image needs %d" % (d, free, self.size)
            fd, self.image = tempfile.mkstemp(prefix="virtio-ivshmemd-bench.", suffix=".img",
                                              dir=d)
            os.close(fd)
            fill(cfg, self.image, self.size)
            self.fio_file = self.image
            self.desc = "%s (%s%s)" % (self.image, fs, ", page cache" if fs != "tmpfs" else "")
        self.start_daemon()
        return None

    def start_daemon(self):
        cfg = self.cfg
        shm = 64 << 20      # size_max = shm / 4 / 126 must cover the largest bs
        while shm // 4 // 126 < cfg.max_bs and shm < (4 << 30):
            shm *= 2
        qsize = 256
        while qsize < cfg.max_depth * 3 and qsize < 32768:
            qsize *= 2
        conf = ["[daemon]", "control-socket = none", "threads = 2",
                "io-engine = " + cfg.io_engine, "",
                "[block one]", "sim = " + self.sock("one"), "image = " + self.image,
                "queues = %d" % cfg.max_queues, "queue-size = %d" % qsize,
                "shm-size = %dM" % (shm >> 20), ""]
        for k in range(cfg.max_disks if cfg.max_disks > 1 else 0):
            # more disks on the same image, as fio's jobs share its file
            conf += ["[block m%d]" % k, "sim = " + self.sock("m%d" % k), "image = " + self.image,
                     "queues = %d" % cfg.max_queues, "queue-size = %d" % qsize,
                     "shm-size = %dM" % (shm >> 20), ""]
        path = os.path.join(cfg.work, self.name + ".conf")
        with open(path, "w") as f:
            f.write("\n".join(conf))
        ndev = 1 + (cfg.max_disks if cfg.max_disks > 1 else 0)
        log = open(os.path.join(cfg.work, self.name + ".log"), "w")
        self.daemon = subprocess.Popen([cfg.daemon, "-c", path], stdout=log, stderr=log)
        want = "serving %d device(s)" % ndev
        for _ in range(400):
            if want in open(log.name).read():
                return
            if self.daemon.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the daemon did not start:\n" + self.log_tail())

    def cleanup(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.loopdev:
            subprocess.run(["losetup", "-d", self.loopdev])
        for p in (self.backing, self.image if self.name in ("file", "tmpfs") else None):
            if p and os.path.exists(p):
                os.unlink(p)
