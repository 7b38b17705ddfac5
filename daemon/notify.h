/* The sd_notify(3) protocol, implemented directly rather than linking
 * libsystemd for it: readiness ("READY=1", "STOPPING=1", "STATUS=...") and
 * the file-descriptor store (fds passed with SCM_RIGHTS, daemon/fdstore.h).
 *
 * Messages go out in order through a queue, on one datagram socket
 * connected to $NOTIFY_SOCKET, and the loop never waits on it: when the
 * supervisor's receive queue is full (a unix datagram queue holds only
 * net.unix.max_dgram_qlen messages, 10 by default, and the fd store sends
 * dozens at once), the rest goes out as soon as the socket is writable
 * again.  A supervisor that never reads costs memory up to
 * NOTIFY_MAX_QUEUED messages, then messages are dropped with one log line.
 * Main thread only.
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

#define NOTIFY_MAX_QUEUED 8192

struct notify_msg;

struct notifier {
	bool enabled;               /* $NOTIFY_SOCKET names a socket we reached */
	int sock;
	uv_poll_t poll;
	bool polling, closed;
	struct notify_msg *head, **tail;
	unsigned queued;
	bool overflowed;
	unsigned long long sent;
};

/* Connect to $NOTIFY_SOCKET if set (otherwise every send is a no-op). */
void notifier_init(struct notifier *n, uv_loop_t *loop);

/* Queue text, with a duplicate of fd attached (fd -1: none), and send what
 * the socket takes now. */
void notifier_send(struct notifier *n, const char *text, int fd);

/* Before the process is replaced (upgrade): send what is queued, waiting
 * for the supervisor at most timeout_ms.  Returns how many are left. */
unsigned notifier_flush_wait(struct notifier *n, int timeout_ms);

/* Close the watcher (the loop must run on); what is still queued is sent
 * without waiting, then dropped. */
void notifier_close(struct notifier *n);
