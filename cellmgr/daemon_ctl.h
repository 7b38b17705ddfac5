/* The cell manager's side of virtio-ivshmemd's control socket, on the
 * shared client (ctl/client.h): one command per connection.
 *
 * `jailhouse-cellmgr up` uses it to ask, before a cell boots, whether the
 * daemon serves every device of that cell (`json list`).  The reply is
 * treated as untrusted input: bounded in size and time, parsed by a strict
 * JSON reader that keeps only the string fields it needs.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cellmgr/err.h"


struct cm_daemon_dev {
	char name[64];
	char type[16];       /* "block", "console" */
	char link[128];      /* "sim:/run/x.sock", "uio:/dev/uio3" */
	char state[32];      /* "waiting for peer", "negotiating", "running", "broken", "stopped" */
	char cell[64];       /* "" if the daemon's config names none */
};

/* Send one command line and wait (at most timeout_ms in total) for the
 * reply.  0: "ok", *body is the malloc'ed body (may be "").  -EREMOTEIO:
 * the daemon answered "error: ..." (in err).  Other negative errnos: the
 * socket could not be reached or the reply was malformed (err says which). */
int cm_daemon_cmd(const char *sock_path, const char *cmd, int timeout_ms, char **body,
		  struct cm_err *err);

/* Parse the body of `json list`: {"devices":[{...},...]}.  *devs is
 * malloc'ed (NULL if there are none).  -EPROTO on malformed input. */
int cm_daemon_parse_list(const char *json, struct cm_daemon_dev **devs, size_t *n,
			 struct cm_err *err);

/* `json list` through cm_daemon_cmd() and cm_daemon_parse_list(). */
int cm_daemon_list(const char *sock_path, int timeout_ms, struct cm_daemon_dev **devs,
		   size_t *n, struct cm_err *err);

/* Does this state mean the back-end has published READY on its link?
 * "waiting for peer", "negotiating" and "running".  Note that the daemon
 * also says "waiting for peer" while it waits for the peer to publish
 * RESET before it publishes READY; for a cell that has not booted yet the
 * peer is in reset, so the daemon has moved on to READY by the time the
 * cell's driver looks. */
bool cm_daemon_state_serving(const char *state);
