/* The daemon's control socket: a unix stream socket (mode 0600 by default)
 * that takes one command per line and answers each with
 *
 *   ok                  or   error: <message>
 *   <body lines>
 *   .
 *
 * (ctl/proto.h has the framing, shared with the client.)  Commands are
 * answered in order; a client's next line is read once the previous one is
 * answered, so a command may take its time (it is answered from a worker's
 * reply) without stalling anything else.  A line longer than
 * CTL_MAX_LINE, too many clients, or a client that does not read its
 * replies (more than CONTROL_MAX_PENDING bytes queued) is disconnected: no
 * client can stall device service or make the daemon allocate without
 * bound.  The commands themselves are the daemon's (control_handler); this
 * module only moves lines.
 *
 * The socket is created in a private directory with the final mode and
 * renamed into place: no umask() (process-wide, racing with the worker
 * threads), and no window in which others could connect.
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "core/handover.h"
#include "ctl/proto.h"

#define CONTROL_MAX_CLIENTS  16
#define CONTROL_MAX_PENDING  (1u << 20)

/* One command from a client, waiting for its answer. */
struct control_cmd;

/* Handle one command line; answer with control_answer(), now or later. */
typedef void (*control_handler)(void *ctx, const char *line, struct control_cmd *cmd);

struct control;

int control_open(uv_loop_t *loop, const char *path, unsigned mode, control_handler handler,
		 void *ctx, struct control **ret, char *err, size_t err_len);
/* Answer cmd, exactly once: rc 0 is "ok" with body, a negative errno an
 * error with body as the message (strerror(-rc) when empty).  The client
 * may have gone meanwhile: the answer is then dropped. */
void control_answer(struct control_cmd *cmd, int rc, const char *body);
/* Hand-over names (core/handover.h). */
#define CONTROL_FD_NAME         "control"
#define CONTROL_CLIENT_FD_NAME  "control/client"

/* Name the listening socket, and the client of keep if given (it gets its
 * answer from the next process), in h. */
int control_export(struct control *c, struct control_cmd *keep, struct handover *h);

/* The path it listens on. */
const char *control_path(const struct control *c);

/* control_open() on the socket a previous process handed over in h, when
 * that one listened on path too (handed_path, which the previous process
 * told; else 1: open a new one, the old socket is closed).  A handed-over
 * client comes back as *pending: the command it waits on, to answer with
 * control_answer(); or, when the socket is not taken over, as *orphan, an
 * fd to answer with control_answer_orphan() (-1: none). */
int control_adopt(uv_loop_t *loop, const char *path, const char *handed_path, struct handover *h,
		  control_handler handler, void *ctx, struct control **ret,
		  struct control_cmd **pending, int *orphan, char *err, size_t err_len);
/* Answer a client that has no control socket any more, and close it. */
void control_answer_orphan(int fd, int rc, const char *body);

/* Close the socket and every client; memory is freed once libuv is done
 * and every pending command is answered. */
void control_close(struct control *c);
