/* virtio-ivshmemctl: talk to a running virtio-ivshmemd over its control socket. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtio-ivshmemctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"Commands:\n"
		"  list                 devices, links, cell-side state, features, queues\n"
		"  stats [NAME]         requests, bytes, errors, notifications, in-flight\n"
		"  resize NAME          re-read the image size and tell the cell\n"
		"  change NAME IMAGE    swap the medium (read-only disks, or while the cell is down)\n"
		"  eject NAME           remove the medium\n"
		"Options:\n"
		"  -s, --socket PATH    control socket (default " CFG_DEFAULT_CONTROL ")\n"
		"  -j, --json           machine-readable output\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *path = CFG_DEFAULT_CONTROL;
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char line[4096];
	size_t len = (size_t)snprintf(line, sizeof(line), "%s", json ? "json" : "");
	for (int i = optind; i < argc; i++) {
		if (strchr(argv[i], '\n') || strchr(argv[i], ' ')) {
			fprintf(stderr, "virtio-ivshmemctl: arguments may not contain spaces or newlines\n");
			return 2;
		}
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "", argv[i]);
		if (len >= sizeof(line) - 2) {
			fprintf(stderr, "virtio-ivshmemctl: command too long\n");
			return 2;
		}
	}
	line[len++] = '\n';

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "virtio-ivshmemctl: socket path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "virtio-ivshmemctl: cannot connect to %s: %s (is virtio-ivshmemd "
			"running?)\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, line, len) != (ssize_t)len) {
		fprintf(stderr, "virtio-ivshmemctl: cannot send the command: %s\n", strerror(errno));
		return 1;
	}
	/* Read until the terminating "." line. */
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "virtio-ivshmemctl: no answer from the daemon\n");
			return 1;
		}
		if (got + 4096 > cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + got, cap - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (got >= 2 && (strcmp(buf + got - 2, ".\n") == 0) &&
		    (got == 2 || buf[got - 3] == '\n'))
			break;
	}
	close(fd);
	buf[got] = '\0';
	char *nl = strchr(buf, '\n');
	if (!nl) {
		fprintf(stderr, "virtio-ivshmemctl: truncated answer\n");
		return 1;
	}
	*nl = '\0';
	char *body = nl + 1;
	size_t blen = strlen(body);
	if (blen >= 2)
		body[blen - 2] = '\0';      /* drop ".\n" */
	if (strncmp(buf, "error: ", 7) == 0) {
		fprintf(stderr, "virtio-ivshmemctl: %s\n", buf + 7);
		return 1;
	}
	fputs(body, stdout);
	free(buf);
	return 0;
}
