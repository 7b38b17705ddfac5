/* vivd-supervise: tests/supervisor.h as a program, for the real-driver
 * tests (a script on the host, or a busybox guest, has no systemd).
 *
 *   vivd-supervise LOG DAEMON CONFIG
 *
 * runs DAEMON -c CONFIG as a Type=notify, Restart=always unit with a file-
 * descriptor store would, its output appended to LOG.  Prints "READY N" when
 * the daemon of start N (0, 1, ...) is ready.  Reads commands on stdin, one
 * per line:
 *   kill    SIGKILL the daemon (it is started again with the store);
 *           prints "KILLED N", or "NOTHING" when none runs
 *   stop    SIGTERM, wait; prints "STOPPED STATUS UNEXPECTED" (its exit
 *           status, deaths nobody asked for) and exits
 * End of input is "stop".
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/supervisor.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: vivd-supervise LOG DAEMON CONFIG\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct supervisor *s;
	char err[512];
	if (sup_start(&s, argv[2], argv[3], argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "vivd-supervise: %s\n", err);
		return 1;
	}
	unsigned announced = 0;
	char line[256];
	for (;;) {
		while (sup_wait_ready(s, announced, 0) == 0)
			printf("READY %u\n", announced++);
		struct pollfd p = { 0, POLLIN, 0 };
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (!fgets(line, sizeof(line), stdin) || strncmp(line, "stop", 4) == 0)
			break;
		if (strncmp(line, "kill", 4) == 0) {
			int r = sup_kill(s, SIGKILL);
			if (r < 0)
				printf("NOTHING\n");
			else
				printf("KILLED %d\n", r);
		}
	}
	int st = sup_stop(s);
	printf("STOPPED %d %u\n", st, sup_unexpected(s));
	sup_free(s);
	return 0;
}
