#include "daemon/control.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/unix_addr.h"
#include "daemon/strbuf.h"

struct client {
	uv_pipe_t pipe;
	struct control *ctl;
	char line[CTL_MAX_LINE];
	size_t len;
	bool closing;
	bool closed;                /* libuv is done with the pipe */
	struct control_cmd *busy;   /* the command being answered, or NULL */
};

struct control_cmd {
	struct client *cl;          /* NULL once the client is gone */
};

struct control {
	uv_pipe_t server;
	char path[108];
	control_handler handler;
	void *ctx;
	unsigned nclients;
	unsigned open_handles;
	bool closing;
	struct client *clients[CONTROL_MAX_CLIENTS];
};

struct reply {
	uv_write_t req;
	char *text;
};

static void maybe_free(struct control *c)
{
	if (c->closing && c->open_handles == 0)
		free(c);
}

/* A client's memory goes when libuv is done with it and no command of its
 * waits for an answer. */
static void client_maybe_free(struct client *cl)
{
	if (!cl->closed || cl->busy)
		return;
	struct control *c = cl->ctl;
	c->open_handles--;
	free(cl);
	maybe_free(c);
}

static void client_closed(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct control *c = cl->ctl;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	c->nclients--;
	cl->closed = true;
	client_maybe_free(cl);
}

static void client_close(struct client *cl)
{
	if (cl->closing)
		return;
	cl->closing = true;
	uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void write_done(uv_write_t *req, int status)
{
	struct reply *r = (struct reply *)req;
	free(r->text);
	free(r);
}

static void send_reply(struct client *cl, int rc, const char *body)
{
	struct strbuf out;
	size_t blen = body ? strlen(body) : 0;
	sb_init(&out);
	if (rc < 0) {
		sb_printf(&out, "error: %s\n.\n", blen ? body : strerror(-rc));
	} else {
		sb_printf(&out, "ok\n");
		if (blen) {
			sb_printf(&out, "%s", body);
			if (body[blen - 1] != '\n')
				sb_printf(&out, "\n");
		}
		sb_printf(&out, ".\n");
	}
	struct reply *r = malloc(sizeof(*r));
	if (!r || out.oom) {
		free(r);
		sb_free(&out);
		client_close(cl);
		return;
	}
	r->text = out.buf;
	uv_buf_t buf = uv_buf_init(out.buf, (unsigned)out.len);
	if (uv_write(&r->req, (uv_stream_t *)&cl->pipe, &buf, 1, write_done) < 0) {
		free(r->text);
		free(r);
		client_close(cl);
		return;
	}
	/* A client that sends commands but does not read the answers. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) > CONTROL_MAX_PENDING)
		client_close(cl);
}

static void next_lines(struct client *cl);
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

void control_answer(struct control_cmd *cmd, int rc, const char *body)
{
	struct client *cl = cmd->cl;
	free(cmd);
	if (!cl)
		return;
	cl->busy = NULL;
	if (cl->closing) {
		client_maybe_free(cl);
		return;
	}
	send_reply(cl, rc, body);
	next_lines(cl);
}

/* Handle the complete lines in the buffer, one command at a time. */
static void next_lines(struct client *cl)
{
	while (!cl->closing && !cl->busy) {
		char *nl = memchr(cl->line, '\n', cl->len);
		if (!nl)
			break;
		*nl = '\0';
		size_t used = (size_t)(nl - cl->line) + 1;
		char line[CTL_MAX_LINE];
		memcpy(line, cl->line, used);
		memmove(cl->line, cl->line + used, cl->len - used);
		cl->len -= used;
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (!n) {
			send_reply(cl, 0, "");
			continue;
		}
		struct control_cmd *cmd = calloc(1, sizeof(*cmd));
		if (!cmd) {
			client_close(cl);
			return;
		}
		cmd->cl = cl;
		cl->busy = cmd;
		cl->ctl->handler(cl->ctl->ctx, line, cmd);
	}
	if (cl->closing)
		return;
	if (cl->len == sizeof(cl->line)) {
		char msg[64];
		snprintf(msg, sizeof(msg), "command longer than %d bytes", CTL_MAX_LINE - 1);
		send_reply(cl, -EINVAL, msg);
		client_close(cl);
		return;
	}
	/* Read on only while no command is being answered: answers stay in
	 * order and a client cannot queue work without bound. */
	if (cl->busy)
		uv_read_stop((uv_stream_t *)&cl->pipe);
	else
		uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;
	buf->base = cl->line + cl->len;
	buf->len = sizeof(cl->line) - cl->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	if (n < 0) {
		if (cl->busy)
			cl->busy->cl = NULL;    /* its answer has nowhere to go */
		cl->busy = NULL;
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	next_lines(cl);
}

static void on_connect(uv_stream_t *server, int status)
{
	struct control *c = server->data;
	if (status < 0)
		return;
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return;
	cl->ctl = c;
	uv_pipe_init(server->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	c->open_handles++;
	c->nclients++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
		client_close(cl);
		return;
	}
	unsigned slot = CONTROL_MAX_CLIENTS;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (!c->clients[i]) {
			slot = i;
			break;
		}
	}
	if (slot == CONTROL_MAX_CLIENTS) {
		send_reply(cl, -EUSERS, "too many control clients");
		client_close(cl);
		return;
	}
	c->clients[slot] = cl;
	next_lines(cl);
}

static void server_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	c->open_handles--;
	maybe_free(c);
}

/* Bind a listening socket at path with the given mode and no window in
 * which it has another: bound in a fresh private directory next to it,
 * chmod'ed there, then renamed into place.  No umask() involved. */
static int bind_private(uv_pipe_t *server, const char *path, unsigned mode, char *err,
			size_t err_len)
{
	char dir[PATH_MAX], tmpdir[PATH_MAX + 32], tmp[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(tmpdir, sizeof(tmpdir), "%s/.control-XXXXXX", dirname(dir));
	if (!mkdtemp(tmpdir)) {
		int e = errno;
		snprintf(err, err_len, "cannot listen on control socket %s: %s", path, strerror(e));
		return -e;
	}
	snprintf(tmp, sizeof(tmp), "%s/s", tmpdir);
	struct sockaddr_un sa;
	int r = unix_addr(&sa, tmp) < 0 ? UV_ENAMETOOLONG : uv_pipe_bind(server, tmp);
	if (r == 0 && chmod(tmp, mode) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	unlink(tmp);
	rmdir(tmpdir);
	if (r < 0)
		snprintf(err, err_len, "cannot listen on control socket %s: %s", path, uv_strerror(r));
	return r;
}

int control_open(uv_loop_t *loop, const char *path, unsigned mode, control_handler handler,
		 void *ctx, struct control **ret, char *err, size_t err_len)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	struct sockaddr_un sa;
	if (unix_addr(&sa, path) < 0) {
		free(c);
		snprintf(err, err_len, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->handler = handler;
	c->ctx = ctx;
	uv_pipe_init(loop, &c->server, 0);
	c->server.data = c;
	c->open_handles = 1;
	int r = bind_private(&c->server, path, mode, err, err_len);
	if (r == 0) {
		r = uv_listen((uv_stream_t *)&c->server, 8, on_connect);
		if (r < 0)
			snprintf(err, err_len, "cannot listen on control socket %s: %s", path,
				 uv_strerror(r));
	}
	if (r < 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->server, server_closed);
		return r;
	}
	*ret = c;
	return 0;
}

/* ---- hand-over ---------------------------------------------------------- */

int control_export(struct control *c, struct control_cmd *keep, struct handover *h)
{
	uv_os_fd_t fd;
	int r = uv_fileno((uv_handle_t *)&c->server, &fd);
	if (r == 0)
		r = handover_add(h, CONTROL_FD_NAME, fd);
	if (r == 0 && keep && keep->cl) {
		r = uv_fileno((uv_handle_t *)&keep->cl->pipe, &fd);
		if (r == 0)
			r = handover_add(h, CONTROL_CLIENT_FD_NAME, fd);
	}
	return r;
}

/* Is fd a listening unix socket?  (Its bound name says nothing: it was
 * bound under a temporary name, see bind_private.) */
static bool listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

const char *control_path(const struct control *c)
{
	return c->path;
}

int control_adopt(uv_loop_t *loop, const char *path, const char *handed_path, struct handover *h,
		  control_handler handler, void *ctx, struct control **ret,
		  struct control_cmd **pending, int *orphan, char *err, size_t err_len)
{
	*pending = NULL;
	*orphan = -1;
	int fd = handover_take(h, CONTROL_FD_NAME);
	int cfd = handover_take(h, CONTROL_CLIENT_FD_NAME);
	if (fd < 0 || !listening(fd) || !handed_path || strcmp(handed_path, path) != 0) {
		/* none, or the config names another socket now: the asking client
		 * still gets its answer (control_answer_orphan) */
		if (fd >= 0)
			close(fd);
		*orphan = cfd;
		return 1;
	}
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		if (cfd >= 0)
			close(cfd);
		return -ENOMEM;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->handler = handler;
	c->ctx = ctx;
	uv_pipe_init(loop, &c->server, 0);
	c->server.data = c;
	c->open_handles = 1;
	int r = uv_pipe_open(&c->server, fd);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&c->server, 8, on_connect);
	if (r < 0) {
		snprintf(err, err_len, "cannot listen on the control socket handed over (%s): %s",
			 path, uv_strerror(r));
		if (cfd >= 0)
			close(cfd);
		c->closing = true;
		uv_close((uv_handle_t *)&c->server, server_closed);
		return r;
	}
	*ret = c;
	/* The client that asked for the hand-over gets its answer from us. */
	struct client *cl = cfd >= 0 ? calloc(1, sizeof(*cl)) : NULL;
	struct control_cmd *cmd = cl ? calloc(1, sizeof(*cmd)) : NULL;
	if (!cmd) {
		free(cl);
		if (cfd >= 0)
			close(cfd);
		return 0;
	}
	cl->ctl = c;
	uv_pipe_init(loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	c->open_handles++;
	c->nclients++;
	c->clients[0] = cl;
	if (uv_pipe_open(&cl->pipe, cfd) < 0) {
		close(cfd);
		free(cmd);
		client_close(cl);
		return 0;
	}
	cmd->cl = cl;
	cl->busy = cmd;
	*pending = cmd;
	return 0;
}

void control_answer_orphan(int fd, int rc, const char *body)
{
	if (fd < 0)
		return;
	char text[CTL_MAX_LINE + 64];
	int n = rc < 0 ? snprintf(text, sizeof(text), "error: %s\n.\n", body)
		       : snprintf(text, sizeof(text), "ok\n%s\n.\n", body);
	if (n > 0 && (size_t)n < sizeof(text)) {
		/* a few dozen bytes into an empty socket buffer: no waiting */
		ssize_t w = send(fd, text, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	close(fd);
}

void control_close(struct control *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct client *cl = c->clients[i];
		if (!cl)
			continue;
		if (cl->busy)
			cl->busy->cl = NULL;    /* answered later into the void */
		cl->busy = NULL;
		client_close(cl);
	}
	uv_close((uv_handle_t *)&c->server, server_closed);
	unlink(c->path);
}
