#include "core/io_engine.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/container_of.h"
#include "core/log.h"

static void submit_now(struct io_engine *e)
{
	if (!e->queued)
		return;
	int r;
	do {
		r = io_uring_submit(&e->ring);
	} while (r == -EINTR);
	e->submit_calls++;
	if (r < 0) {
		/* Nothing was taken: the SQEs stay queued for the next try. */
		log_warn("io_uring_submit failed: %s", strerror(-r));
		return;
	}
	e->queued -= (unsigned)r < e->queued ? (unsigned)r : e->queued;
}

static bool submit_run(struct tick_item *it)
{
	struct io_engine *e = container_of(it, struct io_engine, submit);
	submit_now(e);
	return e->queued != 0;      /* the kernel took less: try again */
}

static void reap(struct io_engine *e)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
		struct io_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		/* Advance first: the callback may queue new SQEs. */
		io_uring_cqe_seen(&e->ring, cqe);
		e->inflight--;
		e->cqes++;
		op->complete(op, res);
	}
}

static void efd_cb(uv_poll_t *h, int status, int events)
{
	struct io_engine *e = h->data;
	uint64_t cnt;
	if (read(e->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: a CQE we already reaped woke us. */
	}
	reap(e);
}

int io_engine_init(struct io_engine *e, struct tick *tick, unsigned entries, bool same_thread)
{
	memset(e, 0, sizeof(*e));
	e->tick = tick;
	e->submit.run = submit_run;
	e->submit.final = true;
	struct io_uring_params p = { .flags = IORING_SETUP_COOP_TASKRUN |
					      (same_thread ? IORING_SETUP_SINGLE_ISSUER : 0) };
	int r = io_uring_queue_init_params(entries, &e->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));   /* kernel older than 6.0 */
		r = io_uring_queue_init_params(entries, &e->ring, &p);
	}
	if (r < 0)
		return r;
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		r = -errno;
		io_uring_queue_exit(&e->ring);
		return r;
	}
	r = io_uring_register_eventfd(&e->ring, e->efd);
	if (r < 0) {
		close(e->efd);
		io_uring_queue_exit(&e->ring);
		return r;
	}
	uv_poll_init(tick->loop, &e->efd_poll, e->efd);
	e->efd_poll.data = e;
	uv_poll_start(&e->efd_poll, UV_READABLE, efd_cb);
	e->initialised = true;
	return 0;
}

struct io_uring_sqe *io_engine_sqe(struct io_engine *e, struct io_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		submit_now(e);
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	e->queued++;
	e->inflight++;
	e->sqes++;
	tick_defer(e->tick, &e->submit);
	return sqe;
}

void io_engine_close(struct io_engine *e)
{
	if (!e->initialised)
		return;
	e->initialised = false;
	tick_cancel(e->tick, &e->submit);
	uv_close((uv_handle_t *)&e->efd_poll, NULL);
	io_uring_unregister_eventfd(&e->ring);
	close(e->efd);
	io_uring_queue_exit(&e->ring);
}
