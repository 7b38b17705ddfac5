/* The engine's common part: which flavour serves, the eventfd that brings
 * completions to the loop, the end-of-iteration hand-over, and the
 * dispatch (core/io_engine.h). */
#include "core/io_engine.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/container_of.h"
#include "core/io_engine_int.h"

#define DEFAULT_THREADS 4

static bool submit_run(struct tick_item *it)
{
	struct io_engine *e = container_of(it, struct io_engine, submit);
	return e->kind == IO_ENGINE_URING ? uring_flavour_flush(e) : pool_flush(e);
}

static void efd_cb(uv_poll_t *h, int status, int events)
{
	struct io_engine *e = h->data;
	uint64_t cnt;
	/* Read before reaping: a completion posted after the read signals
	 * again, so none is left behind.  EAGAIN: one we reaped woke us. */
	if (read(e->efd, &cnt, sizeof(cnt)) < 0) {
	}
	if (e->kind == IO_ENGINE_URING)
		uring_flavour_reap(e);
	else
		pool_reap(e);
}

static int start_flavour(struct io_engine *e, const struct io_engine_params *p)
{
	if (p->kind != IO_ENGINE_THREADS) {
		int r = uring_flavour_init(e, p);
		if (r == 0) {
			e->kind = IO_ENGINE_URING;
			return 0;
		}
		if (p->kind == IO_ENGINE_URING)
			return r;
		/* AUTO: whatever kept io_uring out (disabled, filtered, missing
		 * opcodes, no memory for the ring), the threads serve. */
		e->uring_err = r;
	}
	e->kind = IO_ENGINE_THREADS;
	return pool_init(e, e->max_threads);
}

int io_engine_init(struct io_engine *e, struct tick *tick, const struct io_engine_params *p)
{
	memset(e, 0, sizeof(*e));
	e->tick = tick;
	e->submit.run = submit_run;
	e->submit.final = true;
	e->max_threads = p->threads ? p->threads : DEFAULT_THREADS;
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0)
		return -errno;
	int r = start_flavour(e, p);
	if (r < 0) {
		close(e->efd);
		return r;
	}
	uv_poll_init(tick->loop, &e->efd_poll, e->efd);
	e->efd_poll.data = e;
	uv_poll_start(&e->efd_poll, UV_READABLE, efd_cb);
	e->initialised = true;
	return 0;
}

int io_engine_queue(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n)
{
	if (!e->initialised || n == 0)
		return -EINVAL;
	int r = e->kind == IO_ENGINE_URING ? uring_flavour_queue(e, op, req, n)
					   : pool_queue(e, op, req, n);
	if (r < 0)
		return r;
	e->inflight += n;
	e->ops += n;
	tick_defer(e->tick, &e->submit);
	return 0;
}

const char *io_engine_kind_name(enum io_engine_kind kind)
{
	switch (kind) {
	case IO_ENGINE_URING: return "io_uring";
	case IO_ENGINE_THREADS: return "threads";
	default: return "auto";
	}
}

void io_engine_close(struct io_engine *e)
{
	if (!e->initialised)
		return;
	e->initialised = false;
	tick_cancel(e->tick, &e->submit);
	uv_close((uv_handle_t *)&e->efd_poll, NULL);
	if (e->kind == IO_ENGINE_URING)
		uring_flavour_close(e);
	else
		pool_close(e);
	close(e->efd);
}
