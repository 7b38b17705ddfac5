/* Console endpoint: the daemon's own stdin and stdout (foreground use).  A
 * terminal on stdin is put in raw mode (output processing kept, for the
 * daemon's own log lines) and restored on close; its window size reaches
 * the cell. */
#include "backends/console_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* A descriptor of our own for stdin/stdout.  Terminals and pipes are opened
 * again through /proc, so O_NONBLOCK stays private to us.  Anything else is
 * dup'ed: a socket (journald) is then used with MSG_DONTWAIT and its shared
 * description stays blocking for the daemon's own log lines. */
static int stdio_fd(struct console_dev *dev, int fd, int acc, unsigned slot)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		int nfd = open(p, acc | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0)
			return nfd;
	}
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		/* uv_poll_init makes it non-blocking: undone right after. */
		dev->restore_fd[slot] = nfd;
		dev->restore_fl[slot] = fcntl(nfd, F_GETFL);
	}
	if (S_ISSOCK(st.st_mode)) {
		if (slot == 0)
			dev->in_sock = true;
		else
			dev->out_sock = true;
	}
	return nfd;
}

static void restore_flags(struct console_dev *dev, unsigned slot)
{
	if (dev->restore_fd[slot] >= 0 && dev->restore_fl[slot] >= 0)
		fcntl(dev->restore_fd[slot], F_SETFL, dev->restore_fl[slot]);
}

static int stdio_open(struct console_dev *dev, char *err, size_t err_len)
{
	int r;
	int fd = stdio_fd(dev, STDIN_FILENO, O_RDONLY, 0);
	if (fd >= 0) {
		dev->in_fd = fd;
		dev->in_w = con_watch_new(dev, fd, &r);
		if (!dev->in_w)
			log_info("%s: stdin cannot be polled (%s); the console has no input",
				 dev->name, strerror(-r));
		restore_flags(dev, 0);
	}
	fd = stdio_fd(dev, STDOUT_FILENO, O_WRONLY, 1);
	if (fd < 0) {
		snprintf(err, err_len, "no usable stdout: %s", strerror(-fd));
		return fd;
	}
	dev->out_fd = fd;
	dev->out_w = con_watch_new(dev, fd, &r);
	restore_flags(dev, 1);
	struct stat st;
	if (!dev->out_w && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* /dev/null and the like, opened again by us: blocking writes. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	if (dev->in_fd >= 0 && isatty(dev->in_fd) && tcgetattr(dev->in_fd, &dev->saved_tio) == 0) {
		struct termios tio = dev->saved_tio;
		cfmakeraw(&tio);
		/* Keep output processing: the daemon's own log lines share the
		 * terminal and need their carriage returns. */
		tio.c_oflag = dev->saved_tio.c_oflag;
		if (tcsetattr(dev->in_fd, TCSANOW, &tio) == 0)
			dev->tty_fd = dev->in_fd;
	}
	if (isatty(dev->out_fd))
		dev->winsz_fd = dev->out_fd;
	else if (dev->in_fd >= 0 && isatty(dev->in_fd))
		dev->winsz_fd = dev->in_fd;
	dev->attached = true;
	return 0;
}

/* blob: the terminal settings to restore at the end (the terminal is raw
 * now: a new process must not take that for the original). */
static int stdio_export(struct console_dev *dev, const char *prefix, struct handover *h,
			uint8_t *blob, size_t cap)
{
	if (cap < 1 + sizeof(dev->saved_tio))
		return -ENOSPC;
	blob[0] = dev->tty_fd >= 0;
	memcpy(blob + 1, &dev->saved_tio, sizeof(dev->saved_tio));
	return (int)(1 + sizeof(dev->saved_tio));
}

static int stdio_adopt(struct console_dev *dev, const char *prefix, struct handover *h,
		       const uint8_t *blob, size_t len, char *err, size_t err_len)
{
	int r = stdio_open(dev, err, err_len);
	if (r == 0 && len == 1 + sizeof(dev->saved_tio) && blob[0] && dev->tty_fd >= 0)
		memcpy(&dev->saved_tio, blob + 1, sizeof(dev->saved_tio));
	return r;
}

static void stdio_input_ended(struct console_dev *dev, int err)
{
	if (!dev->in_eof)
		log_info("%s: stdin %s; console input ends", dev->name,
			 err ? strerror(err) : "closed");
	dev->in_eof = true;
}

static void stdio_close(struct console_dev *dev)
{
	if (dev->tty_fd >= 0)
		tcsetattr(dev->tty_fd, TCSANOW, &dev->saved_tio);
	con_watch_close(dev->in_w, false);
	con_watch_close(dev->out_w, false);
	if (dev->in_fd >= 0)
		close(dev->in_fd);
	if (dev->out_fd >= 0)
		close(dev->out_fd);
}

const struct con_endpoint_ops con_stdio_ops = {
	.name = "stdio",
	.open = stdio_open,
	.close = stdio_close,
	.check = console_winsize_check,
	.input_ended = stdio_input_ended,
	.export = stdio_export,
	.adopt = stdio_adopt,
};
