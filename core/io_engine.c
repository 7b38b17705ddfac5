/* The engine's common part: which flavour serves, the eventfd that brings
 * completions to the loop, the end-of-iteration hand-over, and the
 * dispatch (core/io_engine.h). */
#include "core/io_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/container_of.h"
#include "core/io_engine_int.h"
#include "core/shm.h"

#define DEFAULT_THREADS 4

/* The syscall an operation stands for (the pool threads', and the loop's
 * own for files in memory). */
int io_req_run(const struct io_req *rq)
{
	ssize_t r = 0;
	switch (rq->opcode) {
	case IO_READV:
		shm_tsan_blind_begin();     /* request buffers, ordered by the peer */
		r = preadv2(rq->fd, rq->iov, (int)rq->niov, (off_t)rq->off, 0);
		shm_tsan_blind_end();
		break;
	case IO_WRITEV:
		shm_tsan_blind_begin();
		r = pwritev2(rq->fd, rq->iov, (int)rq->niov, (off_t)rq->off, 0);
		shm_tsan_blind_end();
		break;
	case IO_FDATASYNC:
		r = fdatasync(rq->fd);
		break;
	case IO_FALLOCATE:
		r = fallocate(rq->fd, rq->mode, (off_t)rq->off, (off_t)rq->len);
		break;
	}
	return r < 0 ? -errno : (int)r;
}

static void reap(struct io_engine *e)
{
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

/* Completions of operations done at once (in memory): their callbacks,
 * in order; one that queues another such operation adds to the list. */
static void deliver_done(struct io_engine *e)
{
	for (unsigned i = 0; i < e->ndone; i++)
		io_engine_completed(e, e->done[i].op, e->done[i].res);
	e->ndone = 0;
}

/* In memory: the syscall only copies (io_uring would hand it to a worker
 * thread, as such files have no non-blocking path), so it is made now and
 * its completion kept for the end of the iteration. */
static int run_now(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n)
{
	if (e->ndone + n > e->done_cap) {
		unsigned cap = e->done_cap ? e->done_cap : 64;
		while (cap < e->ndone + n)
			cap *= 2;
		struct io_done *d = realloc(e->done, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		e->done = d;
		e->done_cap = cap;
	}
	for (unsigned i = 0; i < n; i++)
		e->done[e->ndone++] = (struct io_done){ op, io_req_run(&req[i]) };
	e->now_ops += n;
	return 0;
}

static bool submit_run(struct tick_item *it)
{
	struct io_engine *e = container_of(it, struct io_engine, submit);
	deliver_done(e);
	if (e->kind != IO_ENGINE_URING)
		return pool_flush(e);
	bool again = uring_flavour_flush(e);
	/* A read from the page cache (and many writes) completes inside
	 * io_uring_submit: take those now, so that their answers go out in
	 * this iteration (the transport's tick runs again after this final
	 * item) instead of after one more wake-up.  Once per iteration, so
	 * that a driver that keeps the queue full cannot hold the loop here. */
	if (e->inline_reaped != e->tick->iterations && uring_flavour_ready(e)) {
		e->inline_reaped = e->tick->iterations;
		e->inline_reaps++;
		reap(e);
	}
	return again;
}

static void efd_cb(uv_poll_t *h, int status, int events)
{
	reap(h->data);
}

/* Busy polling (core/busypoll.h): no spin while operations are in
 * flight; their completion wakes the loop. */
static bool spin_waits(struct busypoll_source *s)
{
	return container_of(s, struct io_engine, spin)->inflight != 0;
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
	e->spin = (struct busypoll_source){ .waits = spin_waits };
	if (tick->busypoll)
		busypoll_add(tick->busypoll, &e->spin);
	e->initialised = true;
	return 0;
}

int io_engine_queue(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n)
{
	if (!e->initialised || n == 0)
		return -EINVAL;
	bool now = true;
	for (unsigned i = 0; i < n; i++)
		now &= req[i].in_memory;
	int r = now ? run_now(e, op, req, n)
		: e->kind == IO_ENGINE_URING ? uring_flavour_queue(e, op, req, n)
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
	if (e->tick->busypoll)
		busypoll_remove(e->tick->busypoll, &e->spin);
	uv_close((uv_handle_t *)&e->efd_poll, NULL);
	if (e->kind == IO_ENGINE_URING)
		uring_flavour_close(e);
	else
		pool_close(e);
	close(e->efd);
	free(e->done);
	e->done = NULL;
}
