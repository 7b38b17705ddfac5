/* The daemon's control socket: a unix stream socket (mode 0600 by default)
 * that takes one command per line and answers each with
 *
 *   ok                  or   error: <message>
 *   <body lines>
 *   .
 *
 * A line longer than CONTROL_MAX_LINE, too many clients, or a client that
 * does not read its replies (more than CONTROL_MAX_PENDING bytes queued) is
 * disconnected: no client can stall device service or make the daemon
 * allocate without bound.  The commands themselves are the daemon's
 * (control_handler); this module only moves lines.
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "server/strbuf.h"

#define CONTROL_MAX_LINE     4096
#define CONTROL_MAX_CLIENTS  16
#define CONTROL_MAX_PENDING  (1u << 20)

/* Handle one command line; write the body into out.  Return 0 for "ok" or a
 * negative errno with the message in out (which is then the error line). */
typedef int (*control_handler)(void *ctx, const char *line, struct strbuf *out);

struct control;

int control_open(uv_loop_t *loop, const char *path, unsigned mode, control_handler handler,
		 void *ctx, struct control **ret, char *err, size_t err_len);
/* Close the socket and every client; memory is freed once libuv is done. */
void control_close(struct control *c);
