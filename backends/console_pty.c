/* Console endpoint: a PTY.  The daemon holds the master; `path` is a stable
 * symlink to the slave for screen/minicom.  Somebody is attached while the
 * slave is open (the master says POLLHUP exactly when nobody has it open,
 * once it was opened and closed at start); opens and closes are seen at
 * once through inotify, and every CONSOLE_CHECK_MS as a fallback.  The
 * slave's window size reaches the cell. */
#include "backends/console_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static void watch_slave(struct console_dev *dev);

static bool pty_hup(const struct console_dev *dev)
{
	struct pollfd pfd = { .fd = dev->master, .events = POLLIN | POLLOUT };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
}

static void pty_raw(struct console_dev *dev)
{
	/* Termios ioctls on a Linux master act on the slave. */
	struct termios tio;
	if (tcgetattr(dev->master, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(dev->master, TCSANOW, &tio);
	}
}

static void pty_check(struct console_dev *dev)
{
	bool hup = pty_hup(dev);
	if (dev->attached && hup) {
		console_detach(dev, "hang-up");
	} else if (!dev->attached && !hup) {
		log_debug("%s: terminal opened", dev->name);
		console_attach(dev);
	}
	console_winsize_check(dev);
}

static void inotify_cb(uv_poll_t *h, int status, int events)
{
	struct console_dev *dev = ((struct con_watch *)h->data)->dev;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (int i = 0; i < 16 && read(dev->ino_w->fd, buf, sizeof(buf)) > 0; i++)
		;
	pty_check(dev);
}

/* A terminal opened just now gets the output live, not via the backlog
 * (whose size the burst might exceed). */
static bool pty_before_output(struct console_dev *dev)
{
	if (dev->attached || pty_hup(dev))
		return false;
	pty_check(dev);     /* attaches, and pumps from there */
	return true;
}

/* A pty whose reader left keeps taking bytes for a while, then says EAGAIN:
 * that is a hang-up, not backpressure. */
static bool pty_really_full(struct console_dev *dev)
{
	if (pty_hup(dev)) {
		console_detach(dev, "hang-up");
		return false;
	}
	return true;
}

static void pty_input_ended(struct console_dev *dev, int err)
{
	console_detach(dev, err ? strerror(err) : "end of input");
}

static void pty_output_error(struct console_dev *dev, int err)
{
	console_detach(dev, strerror(err));
}

static void pty_detached(struct console_dev *dev)
{
	if (pty_hup(dev))
		pty_raw(dev);   /* whatever the last user left, the next finds raw */
}

/* Replace path by a symlink to target, atomically; refuses to replace
 * anything but a symlink. */
static int make_symlink(const char *target, const char *path, char *err, size_t err_len)
{
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode)) {
		snprintf(err, err_len, "%s exists and is not a symlink; not replacing it", path);
		return -EEXIST;
	}
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		snprintf(err, err_len, "cannot create the symlink %s -> %s: %s", path, target,
			 strerror(e));
		return -e;
	}
	return 0;
}

static int pty_open(struct console_dev *dev, char *err, size_t err_len)
{
	dev->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (dev->master < 0 || grantpt(dev->master) < 0 || unlockpt(dev->master) < 0 ||
	    ptsname_r(dev->master, dev->pts, sizeof(dev->pts)) != 0) {
		int e = errno;
		snprintf(err, err_len, "cannot create a pty: %s", strerror(e));
		return -e;
	}
	pty_raw(dev);
	struct winsize ws = { .ws_row = dev->rows, .ws_col = dev->cols };
	ioctl(dev->master, TIOCSWINSZ, &ws);
	/* Open and close the slave once: from then on the master reports
	 * POLLHUP exactly while nobody has the slave open. */
	int s = open(dev->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot open the pty slave %s: %s", dev->pts, strerror(e));
		return -e;
	}
	close(s);
	int r = make_symlink(dev->pts, dev->path, err, err_len);
	if (r < 0)
		return r;
	dev->symlink_made = true;
	struct con_watch *w = con_watch_new(dev, dev->master, &r);
	if (!w) {
		snprintf(err, err_len, "cannot watch the pty: %s", strerror(-r));
		return r;
	}
	dev->in_w = dev->out_w = w;
	dev->in_fd = dev->out_fd = dev->master;
	dev->winsz_fd = dev->master;
	watch_slave(dev);
	dev->attached = false;
	return 0;
}

static void watch_slave(struct console_dev *dev)
{
	int r;
	/* Opens and closes of the slave, at once; the check is the fallback. */
	int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino >= 0 && inotify_add_watch(ino, dev->pts, IN_OPEN | IN_CLOSE) >= 0 &&
	    (dev->ino_w = con_watch_new(dev, ino, &r)) != NULL) {
		con_watch_set(dev->ino_w, UV_READABLE, inotify_cb);
	} else if (ino >= 0) {
		close(ino);
	}
}

/* blob: the slave's name (NUL-terminated) and whether we made the symlink. */
static int pty_export(struct console_dev *dev, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap)
{
	char name[HANDOVER_NAME_MAX + 1];
	size_t n = strlen(dev->pts) + 1;
	if (cap < n + 1)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s/pty", prefix);
	int r = handover_add(h, name, dev->master);
	if (r < 0)
		return r;
	memcpy(blob, dev->pts, n);
	blob[n] = dev->symlink_made;
	return (int)(n + 1);
}

/* The same master: whoever has the slave open (screen, minicom) keeps it. */
static int pty_adopt(struct console_dev *dev, const char *prefix, struct handover *h,
		     const uint8_t *blob, size_t len, char *err, size_t err_len)
{
	char name[HANDOVER_NAME_MAX + 1];
	const char *nul = memchr(blob, '\0', len);
	if (!nul || (size_t)(nul - (const char *)blob) + 2 != len ||
	    strncmp((const char *)blob, "/dev/pts/", 9) != 0 ||
	    (size_t)(nul - (const char *)blob) >= sizeof(dev->pts)) {
		snprintf(err, err_len, "the console's description is malformed");
		return -EBADMSG;
	}
	snprintf(name, sizeof(name), "%s/pty", prefix);
	dev->master = handover_take(h, name);
	if (dev->master < 0) {
		snprintf(err, err_len, "no %s handed over", name);
		return -ENOENT;
	}
	/* the master's own slave is what the description names */
	char pts[sizeof(dev->pts)];
	if (ptsname_r(dev->master, pts, sizeof(pts)) != 0 || strcmp(pts, (const char *)blob) != 0) {
		snprintf(err, err_len, "the pty handed over is not %s", (const char *)blob);
		return -ESTALE;
	}
	snprintf(dev->pts, sizeof(dev->pts), "%s", (const char *)blob);
	dev->symlink_made = blob[len - 1] != 0;
	int r;
	struct con_watch *w = con_watch_new(dev, dev->master, &r);
	if (!w) {
		snprintf(err, err_len, "cannot watch the pty: %s", strerror(-r));
		return r;
	}
	dev->in_w = dev->out_w = w;
	dev->in_fd = dev->out_fd = dev->master;
	dev->winsz_fd = dev->master;
	watch_slave(dev);
	dev->attached = false;
	pty_check(dev);
	return 0;
}

static void pty_close(struct console_dev *dev)
{
	con_watch_close(dev->in_w, false);
	con_watch_close(dev->ino_w, true);
	if (dev->master >= 0)
		close(dev->master);
	if (dev->symlink_made) {
		/* Only our own link: a new daemon may have made its own. */
		char target[sizeof(dev->pts)];
		ssize_t n = readlink(dev->path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, dev->pts) == 0)
				unlink(dev->path);
		}
	}
}

const struct con_endpoint_ops con_pty_ops = {
	.name = "terminal",
	.needs_path = true,
	.backlog = true,
	.open = pty_open,
	.close = pty_close,
	.check = pty_check,
	.input_ended = pty_input_ended,
	.output_error = pty_output_error,
	.really_full = pty_really_full,
	.before_output = pty_before_output,
	.after_input = console_winsize_check,
	.detached = pty_detached,
	.export = pty_export,
	.adopt = pty_adopt,
};
