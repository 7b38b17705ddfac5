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
#include "ctl/top.h"

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
		"  stats [--openmetrics] [NAME]\n"
		"                       requests, bytes, errors, notifications, in-flight,\n"
		"                       latency; --openmetrics: for Prometheus, node_exporter\n"
		"  top [-n COUNT] [-i SECONDS] [NAME]\n"
		"                       per disk every second (-i): IOPS, MB/s, p50/p99 latency,\n"
		"                       in flight; until Ctrl-C or for COUNT intervals\n"
		"  resize NAME          re-read the image size and tell the cell\n"
		"  change NAME IMAGE    swap the medium (read-only disks, or while the cell is down)\n"
		"  eject NAME           remove the medium\n"
		"  upgrade [PATH]       replace the daemon by PATH (default: the executable it\n"
		"                       was started from) without the cells noticing\n"
		"Options:\n"
		"  -s, --socket PATH    control socket (default " CTL_DEFAULT_SOCKET ")\n"
		"  -j, --json           machine-readable output\n");
}

/* stats [--openmetrics] [NAME]: the daemon's line, or NULL after a usage
 * message. */
static const char *stats_line(int argc, char **argv, bool json, char *line, size_t len)
{
	static const struct option opts[] = {
		{ "openmetrics", no_argument, NULL, 'o' },
		{ 0 }
	};
	bool om = false;
	int c;
	optind = 0;     /* rescan: argv is the command and its arguments */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'o')
			return NULL;
		om = true;
	}
	if (argc - optind > 1 || (om && json)) {
		fprintf(stderr, "virtio-ivshmemctl: stats [--openmetrics] [NAME] (no --json with "
			"--openmetrics)\n");
		return NULL;
	}
	snprintf(line, len, "%sstats%s%s", om ? "openmetrics " : json ? "json " : "",
		 optind < argc ? " " : "", optind < argc ? argv[optind] : "");
	return line;
}

/* top [-n COUNT] [-i SECONDS] [NAME] */
static int top(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ 0 }
	};
	unsigned long count = 0;
	double interval = 1;
	char *end;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "n:i:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			count = strtoul(optarg, &end, 10);
			if (errno || *end || !count || optarg[0] == '-') {
				fprintf(stderr, "virtio-ivshmemctl: top -n: a count of 1 or more\n");
				return 2;
			}
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "virtio-ivshmemctl: top -i: seconds from 0.1 to 3600\n");
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "virtio-ivshmemctl: top [-n COUNT] [-i SECONDS] [NAME]\n");
		return 2;
	}
	char err[1024];
	int r = top_run(path, optind < argc ? argv[optind] : NULL, count, interval, stdout, err,
			sizeof(err));
	if (r < 0) {
		fprintf(stderr, "virtio-ivshmemctl: %s\n", err);
		return 1;
	}
	return 0;
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
	const char *verb = argv[optind];
	if (strcmp(verb, "top") == 0) {
		if (json) {
			fprintf(stderr, "virtio-ivshmemctl: top has no JSON form (use stats --json)\n");
			return 2;
		}
		return top(path, argc - optind, argv + optind);
	}
	/* The daemon runs elsewhere (its own working directory). */
	char exe[PATH_MAX];
	bool upgrade = strcmp(verb, "upgrade") == 0;
	if (upgrade && optind + 1 < argc) {
		if (!realpath(argv[optind + 1], exe)) {
			fprintf(stderr, "virtio-ivshmemctl: %s: %s\n", argv[optind + 1],
				strerror(errno));
			return 1;
		}
		argv[optind + 1] = exe;
	}
	char line[CTL_MAX_LINE];
	size_t len = 0;
	if (strcmp(verb, "stats") == 0) {
		if (!stats_line(argc - optind, argv + optind, json, line, sizeof(line)))
			return 2;
		len = strlen(line);
	} else {
		len = (size_t)snprintf(line, sizeof(line), "%s", json ? "json" : "");
		for (int i = optind; i < argc; i++) {
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "",
						argv[i]);
			if (len >= sizeof(line) - 2)
				break;
		}
	}
	if (strchr(line, '\n') || len >= sizeof(line) - 2) {
		fprintf(stderr, "virtio-ivshmemctl: command too long or with a newline\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (strchr(argv[i], '\n') || strchr(argv[i], ' ')) {
			fprintf(stderr, "virtio-ivshmemctl: arguments may not contain spaces or newlines\n");
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
