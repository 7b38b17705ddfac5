/* A client of virtio-ivshmemd's control socket (ctl/proto.h): one command
 * per connection.  Used by virtio-ivshmemctl and jailhouse-cellmgr.  The
 * reply is untrusted input: bounded in time (timeout_ms in total) and size
 * (CTL_REPLY_MAX), checked for its framing. */
#pragma once
#include <stddef.h>

/* Send cmd (one line, no newline) and wait for the answer.  0: "ok", *body
 * is the malloc'ed body (may be "").  -EREMOTEIO: the daemon answered
 * "error: MSG" (MSG in err).  Other negative errnos: the socket could not
 * be reached, timed out, or the reply was malformed; err says which. */
int ctl_request(const char *sock_path, const char *cmd, int timeout_ms, char **body, char *err,
		size_t err_len);
