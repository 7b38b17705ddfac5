#include "server/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/log.h"

struct client {
	uv_pipe_t pipe;
	struct control *ctl;
	char line[CONTROL_MAX_LINE];
	size_t len;
	bool closing;
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

static void client_closed(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct control *c = cl->ctl;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	c->nclients--;
	c->open_handles--;
	free(cl);
	maybe_free(c);
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

static void send_reply(struct client *cl, int rc, struct strbuf *body)
{
	struct strbuf out;
	sb_init(&out);
	if (rc < 0) {
		sb_printf(&out, "error: %s\n.\n", body->len ? body->buf : strerror(-rc));
	} else {
		sb_printf(&out, "ok\n");
		if (body->len) {
			sb_printf(&out, "%s", body->buf);
			if (body->buf[body->len - 1] != '\n')
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
	}
}

static void handle_line(struct client *cl, char *line)
{
	struct strbuf body;
	sb_init(&body);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	int rc = n ? cl->ctl->handler(cl->ctl->ctx, line, &body) : 0;
	send_reply(cl, rc, &body);
	sb_free(&body);
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
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	/* Answer every complete line in the buffer. */
	char *start = cl->line, *nl;
	while (!cl->closing && (nl = memchr(start, '\n', cl->len - (size_t)(start - cl->line)))) {
		*nl = '\0';
		handle_line(cl, start);
		start = nl + 1;
	}
	size_t rest = cl->len - (size_t)(start - cl->line);
	memmove(cl->line, start, rest);
	cl->len = rest;
	if (cl->len == sizeof(cl->line)) {
		struct strbuf msg;
		sb_init(&msg);
		sb_printf(&msg, "command longer than %d bytes", CONTROL_MAX_LINE - 1);
		send_reply(cl, -EINVAL, &msg);
		sb_free(&msg);
		client_close(cl);
		return;
	}
	/* A client that sends commands but does not read the answers. */
	if (uv_stream_get_write_queue_size(s) > CONTROL_MAX_PENDING)
		client_close(cl);
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
		struct strbuf msg;
		sb_init(&msg);
		sb_printf(&msg, "too many control clients");
		send_reply(cl, -EUSERS, &msg);
		sb_free(&msg);
		client_close(cl);
		return;
	}
	c->clients[slot] = cl;
	uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb);
}

static void server_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	c->open_handles--;
	maybe_free(c);
}

int control_open(uv_loop_t *loop, const char *path, unsigned mode, control_handler handler,
		 void *ctx, struct control **ret, char *err, size_t err_len)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (strlen(path) >= sizeof(c->path)) {
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
	unlink(path);
	/* Created with the final mode: no window in which others could connect. */
	mode_t old = umask(0777 & ~mode);
	int r = uv_pipe_bind(&c->server, path);
	umask(old);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&c->server, 8, on_connect);
	if (r < 0) {
		snprintf(err, err_len, "cannot listen on control socket %s: %s", path, uv_strerror(r));
		c->closing = true;
		uv_close((uv_handle_t *)&c->server, server_closed);
		return r;
	}
	*ret = c;
	return 0;
}

void control_close(struct control *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i])
			client_close(c->clients[i]);
	uv_close((uv_handle_t *)&c->server, server_closed);
	unlink(c->path);
}
