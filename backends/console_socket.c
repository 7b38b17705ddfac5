/* Console endpoint: a unix stream socket (mode 0600) listening at `path`.
 * Clients come and go, one at a time: a second one is accepted and closed
 * at once unless the first has hung up.  A client that shuts down its
 * sending side counts as gone. */
#include "backends/console_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/le.h"
#include "core/log.h"
#include "core/unix_addr.h"

#define ACCEPT_BUDGET 16        /* connections taken per wakeup */

/* The peer of a socket went away or stopped sending. */
static bool client_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP));
}

static void accept_cb(uv_poll_t *h, int status, int events)
{
	struct console_dev *dev = ((struct con_watch *)h->data)->dev;
	for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
		int fd = accept4(dev->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN) {
				log_err("%s: accepting on %s: %s", dev->name, dev->path,
					strerror(errno));
				/* Out of fds: the listener would fire forever;
				 * the check retries. */
				con_watch_set(dev->listen_w, 0, accept_cb);
				dev->listen_paused = true;
			}
			return;
		}
		if (dev->attached && !client_gone(dev->in_fd)) {
			log_info("%s: a second client was turned away (one at a time)", dev->name);
			dev->stats.refused++;
			close(fd);
			continue;
		}
		if (dev->attached)
			console_detach(dev, "hung up");
		int err = 0;
		struct con_watch *w = con_watch_new(dev, fd, &err);
		if (!w) {
			log_err("%s: cannot watch a client: %s", dev->name, strerror(-err));
			close(fd);
			continue;
		}
		dev->in_w = dev->out_w = w;
		dev->in_fd = dev->out_fd = fd;
		log_info("%s: client connected on %s%s", dev->name, dev->path,
			 dev->blh && bl_len(dev) ? ", replaying the backlog" : "");
		console_attach(dev);
	}
}

static void socket_check(struct console_dev *dev)
{
	if (dev->listen_paused) {
		dev->listen_paused = false;
		con_watch_set(dev->listen_w, UV_READABLE, accept_cb);
	}
	/* A client that left while we were not reading: only once its last
	 * bytes are taken (or nobody would ever take them). */
	if (dev->attached && client_gone(dev->in_fd)) {
		int pending = 0;
		if (ioctl(dev->in_fd, FIONREAD, &pending) < 0 || pending == 0)
			console_detach(dev, "hung up");
	}
}

static void socket_input_ended(struct console_dev *dev, int err)
{
	console_detach(dev, err ? strerror(err) : "end of input");
}

static void socket_output_error(struct console_dev *dev, int err)
{
	console_detach(dev, strerror(err));
}

/* The client is done: take what it sent before it went (if the cell has
 * buffers for it), then let it go. */
static void socket_watch_error(struct console_dev *dev, struct con_watch *w, int status)
{
	console_rx_pump(dev);
	console_detach(dev, "connection error or hang-up");
}

static void socket_detached(struct console_dev *dev)
{
	con_watch_close(dev->in_w, true);
	dev->in_w = dev->out_w = NULL;
	dev->in_fd = dev->out_fd = -1;
}

static int socket_open(struct console_dev *dev, char *err, size_t err_len)
{
	struct sockaddr_un sa;
	if (unix_addr(&sa, dev->path) < 0) {
		snprintf(err, err_len, "socket path %s is too long (at most %zu bytes)", dev->path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	struct stat st;
	if (lstat(dev->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "%s exists and is not a socket", dev->path);
			return -EEXIST;
		}
		/* Somebody's live socket, or a stale one from a crash? */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int r = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		if (probe >= 0)
			close(probe);
		if (r == 0) {
			snprintf(err, err_len, "%s is in use by another process", dev->path);
			return -EADDRINUSE;
		}
		if (e == ECONNREFUSED)
			unlink(dev->path);
	}
	dev->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (dev->listen_fd < 0 || bind(dev->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot listen on %s: %s", dev->path, strerror(e));
		return -e;
	}
	/* The console of a cell is a root shell's worth: owner only.  Nobody
	 * can connect before listen(), so the mode is set before anyone can. */
	if (chmod(dev->path, 0600) < 0 || listen(dev->listen_fd, 4) < 0 ||
	    stat(dev->path, &st) < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot listen on %s: %s", dev->path, strerror(e));
		unlink(dev->path);
		return -e;
	}
	dev->sock_dev = st.st_dev;
	dev->sock_ino = st.st_ino;
	dev->in_sock = dev->out_sock = true;
	int r;
	dev->listen_w = con_watch_new(dev, dev->listen_fd, &r);
	if (!dev->listen_w) {
		snprintf(err, err_len, "cannot watch %s: %s", dev->path, strerror(-r));
		return r;
	}
	con_watch_set(dev->listen_w, UV_READABLE, accept_cb);
	dev->attached = false;
	return 0;
}

/* blob: the socket file's device and inode (so that only our own file is
 * removed at the end), and whether a client is attached. */
static int socket_export(struct console_dev *dev, const char *prefix, struct handover *h,
			 uint8_t *blob, size_t cap)
{
	char name[HANDOVER_NAME_MAX + 1];
	int r;
	if (cap < 17)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s/listen", prefix);
	if ((r = handover_add(h, name, dev->listen_fd)) < 0)
		return r;
	if (dev->attached && dev->in_fd >= 0) {
		snprintf(name, sizeof(name), "%s/client", prefix);
		if ((r = handover_add(h, name, dev->in_fd)) < 0)
			return r;
	}
	put_le64(blob, 0, (uint64_t)dev->sock_dev);
	put_le64(blob, 8, (uint64_t)dev->sock_ino);
	blob[16] = dev->attached;
	return 17;
}

/* The same listening socket, and the same client: it sees no hang-up. */
static int socket_adopt(struct console_dev *dev, const char *prefix, struct handover *h,
			const uint8_t *blob, size_t len, char *err, size_t err_len)
{
	char name[HANDOVER_NAME_MAX + 1];
	int r;
	if (len != 17) {
		snprintf(err, err_len, "the console's description is malformed");
		return -EBADMSG;
	}
	snprintf(name, sizeof(name), "%s/listen", prefix);
	dev->listen_fd = handover_take(h, name);
	if (dev->listen_fd < 0) {
		snprintf(err, err_len, "no %s handed over", name);
		return -ENOENT;
	}
	dev->sock_dev = (dev_t)le64(blob, 0);
	dev->sock_ino = (ino_t)le64(blob, 8);
	dev->in_sock = dev->out_sock = true;
	dev->listen_w = con_watch_new(dev, dev->listen_fd, &r);
	if (!dev->listen_w) {
		snprintf(err, err_len, "cannot watch %s: %s", dev->path, strerror(-r));
		return r;
	}
	con_watch_set(dev->listen_w, UV_READABLE, accept_cb);
	dev->attached = false;
	snprintf(name, sizeof(name), "%s/client", prefix);
	int fd = handover_take(h, name);
	if (fd >= 0 && blob[16]) {
		struct con_watch *w = con_watch_new(dev, fd, &r);
		if (!w) {
			close(fd);
			return 0;       /* the client reconnects */
		}
		dev->in_w = dev->out_w = w;
		dev->in_fd = dev->out_fd = fd;
		dev->attached = true;
		console_update_watches(dev);
	} else if (fd >= 0) {
		log_warn("%s: a client was handed over but the journal says none was attached; "
			 "it is disconnected", dev->name);
		close(fd);
	}
	return 0;
}

static void socket_close(struct console_dev *dev)
{
	con_watch_close(dev->in_w, true);    /* the client */
	con_watch_close(dev->listen_w, false);
	if (dev->listen_fd >= 0) {
		close(dev->listen_fd);
		/* Only our own socket: a new daemon may have made its own. */
		struct stat st;
		if (dev->sock_ino && stat(dev->path, &st) == 0 &&
		    st.st_dev == dev->sock_dev && st.st_ino == dev->sock_ino)
			unlink(dev->path);
	}
}

const struct con_endpoint_ops con_socket_ops = {
	.name = "client",
	.needs_path = true,
	.backlog = true,
	.open = socket_open,
	.close = socket_close,
	.check = socket_check,
	.input_ended = socket_input_ended,
	.output_error = socket_output_error,
	.watch_error = socket_watch_error,
	.detached = socket_detached,
	.export = socket_export,
	.adopt = socket_adopt,
};
