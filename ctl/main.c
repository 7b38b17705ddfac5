/* virtio-ivshmemctl: talk to a running virtio-ivshmemd over its control socket. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/client.h"
#include "ctl/proto.h"

#define TIMEOUT_MS 10000
/* the new binary's config check (10 s at most), the drain (upgrade-drain-ms,
 * at most 60 s), its start */
#define UPGRADE_TIMEOUT_MS 90000

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
		"  upgrade [PATH]       replace the daemon by PATH (default: the executable it\n"
		"                       was started from) without the cells noticing\n"
		"Options:\n"
		"  -s, --socket PATH    control socket (default " CTL_DEFAULT_SOCKET ")\n"
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
	const char *path = CTL_DEFAULT_SOCKET;
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
	/* The daemon runs elsewhere (its own working directory). */
	char exe[PATH_MAX];
	bool upgrade = strcmp(argv[optind], "upgrade") == 0;
	if (upgrade && optind + 1 < argc) {
		if (!realpath(argv[optind + 1], exe)) {
			fprintf(stderr, "virtio-ivshmemctl: %s: %s\n", argv[optind + 1],
				strerror(errno));
			return 1;
		}
		argv[optind + 1] = exe;
	}
	char line[CTL_MAX_LINE];
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
	char *body = NULL, err[1024];
	int r = ctl_request(path, line, upgrade ? UPGRADE_TIMEOUT_MS : TIMEOUT_MS, &body, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "virtio-ivshmemctl: %s\n", err);
		return 1;
	}
	fputs(body, stdout);
	if (body[0] && body[strlen(body) - 1] != '\n')
		putchar('\n');
	free(body);
	return 0;
}
