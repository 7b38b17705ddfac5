/* sd_notify(3) readiness protocol, implemented directly (one datagram to
 * $NOTIFY_SOCKET) rather than linking libsystemd for it. */
#pragma once

/* Send state ("READY=1", "STOPPING=1", ...).  A no-op without
 * $NOTIFY_SOCKET.  Returns 0 or a negative errno. */
int notify_systemd(const char *state);
