#include "core/sim_proto.h"

#include "core/le.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int sim_send(int sock, const void *msg, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EIO;    /* small messages are never split on unix sockets */
		if (errno != EINTR)
			return -errno;
	}
}

static int wait_readable(int sock, int timeout_ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int r;
	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Messages are taken whole: nothing is consumed until all of one is in the
 * socket, then one recvmsg takes exactly it (and its fd).  A process that
 * dies at any instant therefore never leaves the stream in the middle of a
 * message: the next one, handed the same socket, reads on at a boundary. */
int sim_recv(int sock, uint8_t *buf, size_t buf_len, int *fd, int timeout_ms, int block)
{
	uint8_t msg[SIM_MSG_MAX_LEN];
	struct timespec t0;
	uint32_t len = 0;
	*fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* a peek without a control buffer installs no fd */
		ssize_t n = recv(sock, msg, 8, MSG_PEEK | MSG_DONTWAIT);
		if (n == 8) {
			len = le32(msg, 4);
			if (len < 8 || len > SIM_MSG_MAX_LEN)
				return -EPROTO;
			n = recv(sock, msg, len, MSG_PEEK | MSG_DONTWAIT);
			if (n == (ssize_t)len)
				break;
		}
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (!block)
			return -EAGAIN;     /* not all there yet: the poll brings us back */
		long left = timeout_ms - ms_since(&t0);
		if (left <= 0)
			return -ETIMEDOUT;
		if (n <= 0) {
			int r = wait_readable(sock, (int)left);
			if (r < 0)
				return r;
		} else {
			/* part of a message is there (poll would not wait) */
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } ctl;
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	do {
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = f;
			else
				close(f);   /* one fd per message: drop extras */
		}
	}
	if (n != (ssize_t)len) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return n < 0 ? -errno : -EPROTO;
	}
	memcpy(buf, msg, len < buf_len ? len : buf_len);
	return (int)len;
}
