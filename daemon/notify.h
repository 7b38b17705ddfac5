/* sd_notify(3) protocol, implemented directly (one datagram to
 * $NOTIFY_SOCKET) rather than linking libsystemd for it: readiness, and the
 * file-descriptor store (fds passed with SCM_RIGHTS, see daemon/fdstore.h). */
#pragma once
#include <stdbool.h>

/* Is there a supervisor to notify? */
bool notify_enabled(void);

/* Send state ("READY=1", "STOPPING=1", ...).  A no-op without
 * $NOTIFY_SOCKET.  Never waits: -EAGAIN when the supervisor's queue is
 * full.  Returns 0 or a negative errno. */
int notify_systemd(const char *state);

/* Send state with nfds fds attached ("FDSTORE=1\nFDNAME=..."). */
int notify_systemd_fds(const char *state, const int *fds, unsigned nfds);
