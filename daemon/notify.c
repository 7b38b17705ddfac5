#include "daemon/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct notify_msg {
	struct notify_msg *next;
	int fd;                     /* ours (a duplicate), -1 when none */
	char text[];
};

void notifier_init(struct notifier *n, uv_loop_t *loop)
{
	*n = (struct notifier){ .sock = -1 };
	n->tail = &n->head;
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0;
	if (!len || (path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';      /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		log_warn("cannot reach the supervisor at $NOTIFY_SOCKET %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	n->sock = fd;
	n->enabled = true;
	uv_poll_init(loop, &n->poll, fd);
	n->poll.data = n;
}

/* One message: 0, -EAGAIN (the supervisor's queue is full) or an error. */
static int send_one(struct notifier *n, const struct notify_msg *m)
{
	struct iovec iov = { .iov_base = (void *)m->text, .iov_len = strlen(m->text) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (m->fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
	}
	ssize_t r = sendmsg(n->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	return r < 0 ? -errno : 0;
}

static void writable_cb(uv_poll_t *h, int status, int events);

/* Send from the head until the socket is full (then wait to be writable). */
static void flush(struct notifier *n)
{
	struct notify_msg *m;
	while ((m = n->head)) {
		int r = send_one(n, m);
		if (r == -EAGAIN) {
			if (!n->polling && !n->closed) {
				uv_poll_start(&n->poll, UV_WRITABLE, writable_cb);
				n->polling = true;
			}
			return;
		}
		if (r < 0)
			log_warn("supervisor: cannot send \"%.40s\": %s", m->text, strerror(-r));
		else
			n->sent++;
		n->head = m->next;
		if (!n->head)
			n->tail = &n->head;
		n->queued--;
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	if (n->polling) {
		uv_poll_stop(&n->poll);
		n->polling = false;
	}
}

static void writable_cb(uv_poll_t *h, int status, int events)
{
	flush(h->data);
}

void notifier_send(struct notifier *n, const char *text, int fd)
{
	if (!n->enabled)
		return;
	if (n->queued >= NOTIFY_MAX_QUEUED) {
		if (!n->overflowed)
			log_err("supervisor: it takes no more messages; \"%.40s\" and what follows "
				"are dropped", text);
		n->overflowed = true;
		return;
	}
	size_t len = strlen(text) + 1;
	struct notify_msg *m = malloc(sizeof(*m) + len);
	if (!m)
		return;
	m->next = NULL;
	m->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd >= 0 && m->fd < 0) {
		free(m);
		return;
	}
	memcpy(m->text, text, len);
	*n->tail = m;
	n->tail = &m->next;
	n->queued++;
	flush(n);
}

unsigned notifier_flush_wait(struct notifier *n, int timeout_ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n->enabled && n->head) {
		flush(n);
		if (!n->head)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= timeout_ms)
			break;
		struct pollfd p = { n->sock, POLLOUT, 0 };
		poll(&p, 1, (int)(timeout_ms - ms));
	}
	return n->queued;
}

void notifier_close(struct notifier *n)
{
	if (!n->enabled || n->closed)
		return;
	flush(n);
	n->closed = true;
	uv_close((uv_handle_t *)&n->poll, NULL);
	struct notify_msg *m, *next;
	for (m = n->head; m; m = next) {
		next = m->next;
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	n->head = NULL;
	n->tail = &n->head;
	n->queued = 0;
	close(n->sock);
	n->sock = -1;
}
