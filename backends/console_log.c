/* Console endpoint: output appended to the file at `path`, no input.  It
 * never holds the cell back: bytes that cannot be written are dropped and
 * counted.  SIGHUP reopens it (logrotate). */
#include "backends/console_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static int open_log_fd(const char *path)
{
	/* O_NONBLOCK: a fifo or terminal given as "log" must not stall the loop
	 * (EAGAIN drops); regular files ignore it. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		      0640);
	return fd < 0 ? -errno : fd;
}

static int log_open(struct console_dev *dev, char *err, size_t err_len)
{
	int fd = open_log_fd(dev->path);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open log %s: %s", dev->path, strerror(-fd));
		return fd;
	}
	dev->out_fd = fd;
	dev->attached = true;
	return 0;
}

static int log_reopen(struct console_dev *dev)
{
	int fd = open_log_fd(dev->path);
	if (fd < 0) {
		log_err("%s: cannot reopen log %s: %s; still writing to the old file", dev->name,
			dev->path, strerror(-fd));
		return fd;
	}
	close(dev->out_fd);
	dev->out_fd = fd;
	dev->logged_errors = 0;
	return 0;
}

static int log_export(struct console_dev *dev, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap)
{
	char name[HANDOVER_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s/log", prefix);
	int r = handover_add(h, name, dev->out_fd);
	return r < 0 ? r : 0;
}

/* The same open file (a logrotate'd one is reopened at the next SIGHUP). */
static int log_adopt(struct console_dev *dev, const char *prefix, struct handover *h,
		     const uint8_t *blob, size_t len, char *err, size_t err_len)
{
	char name[HANDOVER_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s/log", prefix);
	int fd = handover_take(h, name);
	if (fd < 0)
		return log_open(dev, err, err_len);
	dev->out_fd = fd;
	dev->attached = true;
	return 0;
}

static void log_close(struct console_dev *dev)
{
	if (dev->out_fd >= 0)
		close(dev->out_fd);
}

const struct con_endpoint_ops con_log_ops = {
	.name = "log",
	.needs_path = true,
	.open = log_open,
	.close = log_close,
	.reopen = log_reopen,
	.export = log_export,
	.adopt = log_adopt,
};
