#include "core/sim_proto.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
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

int sim_recv(int sock, uint8_t *buf, size_t buf_len, int *fd, int timeout_ms, int block)
{
	uint8_t hdr[8];
	union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } ctl;
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	*fd = -1;
	if (block) {
		int r = wait_readable(sock, timeout_ms);
		if (r < 0)
			return r;
	}
	do {
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return -ECONNRESET;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
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
	size_t got = (size_t)n;
	/* The header may arrive in pieces; the rest of the message too. */
	while (got < sizeof(hdr)) {
		int r = wait_readable(sock, timeout_ms);
		if (r == 0) {
			n = recv(sock, hdr + got, sizeof(hdr) - got, MSG_DONTWAIT);
			r = n > 0 ? 0 : n == 0 ? -ECONNRESET : (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
			if (n > 0)
				got += n;
		}
		if (r < 0) {
			n = r;
			goto fail_n;
		}
	}
	uint32_t len = le32(hdr, 4);
	if (len < sizeof(hdr) || len > SIM_MSG_MAX_LEN) {
		n = -EPROTO;
		goto fail_n;
	}
	memcpy(buf, hdr, buf_len < sizeof(hdr) ? buf_len : sizeof(hdr));
	while (got < len) {
		uint8_t tmp[256];
		size_t want = len - got;
		uint8_t *dst = got < buf_len ? buf + got : tmp;
		size_t room = got < buf_len ? buf_len - got : sizeof(tmp);
		if (want > room)
			want = room;
		int r = wait_readable(sock, timeout_ms);
		if (r < 0) {
			n = r;
			goto fail_n;
		}
		n = recv(sock, dst, want, MSG_DONTWAIT);
		if (n == 0) {
			n = -ECONNRESET;
			goto fail_n;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			n = -errno;
			goto fail_n;
		}
		got += n;
	}
	return (int)len;
fail_n:
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return (int)n;
}
