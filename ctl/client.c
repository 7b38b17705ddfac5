#include "ctl/client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/unix_addr.h"
#include "ctl/proto.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to become ready for events until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { fd, events, 0 };
		if (left < 0)
			left = 0;
		int r = poll(&p, 1, (int)(left > INT32_MAX ? INT32_MAX : left));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static bool reply_complete(const char *buf, size_t len)
{
	/* "ok\n.\n" (empty body), "ok\nBODY\n.\n", "error: MSG\n.\n" */
	return len >= 3 && memcmp(buf + len - 3, "\n.\n", 3) == 0;
}

static int send_all(int fd, const char *line, size_t len, int64_t deadline)
{
	size_t sent = 0;
	while (sent < len) {
		ssize_t n = send(fd, line + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		sent += (size_t)n;
	}
	return 0;
}

/* Read until the terminating ".\n" line; *out gets a NUL-terminated buffer. */
static int recv_reply(int fd, int64_t deadline, char **out, size_t *out_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CTL_REPLY_MAX) {
				free(buf);
				return -EMSGSIZE;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLIN, deadline);
			if (r < 0) {
				free(buf);
				return r;
			}
			continue;
		}
		if (n < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (reply_complete(buf, len))
			break;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

int ctl_request(const char *sock_path, const char *cmd, int timeout_ms, char **body, char *err,
		size_t err_len)
{
	struct sockaddr_un sa;
	int64_t deadline = now_ms() + timeout_ms;
	size_t cmd_len = strlen(cmd), len = 0;
	char line[CTL_MAX_LINE], *buf = NULL;
	int r;

	*body = NULL;
	if (unix_addr(&sa, sock_path) < 0) {
		snprintf(err, err_len, "control socket path %s is too long", sock_path);
		return -ENAMETOOLONG;
	}
	if (strchr(cmd, '\n') || cmd_len + 1 >= sizeof(line)) {
		snprintf(err, err_len, "control command too long or with a newline");
		return -EINVAL;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, err_len, "socket(AF_UNIX): %s", strerror(-r));
		return r;
	}
	/* A unix stream connect completes at once or fails (a full backlog
	 * gives EAGAIN: that is "not reachable right now" too). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, err_len, "cannot connect to virtio-ivshmemd at %s: %s (is it running?)",
			 sock_path, strerror(-r));
		goto out;
	}
	memcpy(line, cmd, cmd_len);
	line[cmd_len++] = '\n';
	r = send_all(fd, line, cmd_len, deadline);
	if (r == 0)
		r = recv_reply(fd, deadline, &buf, &len);
	if (r == -EMSGSIZE) {
		snprintf(err, err_len, "virtio-ivshmemd at %s: reply to \"%s\" is larger than %u bytes",
			 sock_path, cmd, CTL_REPLY_MAX);
		goto out;
	}
	if (r < 0) {
		snprintf(err, err_len, "talking to virtio-ivshmemd at %s: %s", sock_path,
			 r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
		goto out;
	}
	if (!reply_complete(buf, len)) {
		r = -EPROTO;
		snprintf(err, err_len, "virtio-ivshmemd at %s closed the connection before the end of "
			 "the reply to \"%s\"", sock_path, cmd);
		goto out;
	}
	buf[len - 3] = '\0';    /* drop "\n.\n" */
	if (strncmp(buf, "ok\n", 3) == 0 || strcmp(buf, "ok") == 0) {
		size_t off = buf[2] ? 3 : 2;
		memmove(buf, buf + off, strlen(buf + off) + 1);
		*body = buf;
		buf = NULL;
		r = 0;
	} else if (strncmp(buf, "error: ", 7) == 0) {
		char *nl = strchr(buf, '\n');
		if (nl)
			*nl = '\0';
		r = -EREMOTEIO;
		snprintf(err, err_len, "%s", buf + 7);
	} else {
		r = -EPROTO;
		snprintf(err, err_len, "virtio-ivshmemd at %s: unexpected reply to \"%s\"", sock_path,
			 cmd);
	}
out:
	free(buf);
	close(fd);
	return r;
}
