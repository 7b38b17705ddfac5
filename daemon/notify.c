#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 16

bool notify_enabled(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	return path && path[0];
}

int notify_systemd_fds(const char *state, const int *fds, unsigned nfds)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return 0;
	if (nfds > MAX_FDS)
		return -E2BIG;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';      /* abstract namespace */
	/* never waits: a supervisor with a full queue gets -EAGAIN back */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} ctl;
	struct msghdr mh = {
		.msg_name = &sa,
		.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len),
		.msg_iov = &iov, .msg_iovlen = 1,
	};
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	int r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

int notify_systemd(const char *state)
{
	return notify_systemd_fds(state, NULL, 0);
}
