#include "server/io_engine.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "server/log.h"

static void run_flush(struct io_engine *e)
{
	struct io_flush_item *list = e->flush_head, *again = NULL;
	e->flush_head = NULL;
	while (list) {
		struct io_flush_item *it = list;
		list = it->next;
		it->queued = false;
		it->next = NULL;
		if (it->flush(it) && !it->queued) {
			it->queued = true;
			it->next = again;
			again = it;
		}
	}
	/* Items deferred during the flush run next time as well. */
	if (again) {
		struct io_flush_item *tail = again;
		while (tail->next)
			tail = tail->next;
		tail->next = e->flush_head;
		e->flush_head = again;
	}
}

static void idle_cb(uv_idle_t *h)
{
	(void)h;
}

static void check_cb(uv_check_t *h)
{
	struct io_engine *e = h->data;
	run_flush(e);
	io_engine_submit(e);
	if (e->flush_head)
		uv_idle_start(&e->idle, idle_cb);
	else
		uv_idle_stop(&e->idle);
}

static void reap(struct io_engine *e)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&e->ring, head, cqe) {
			struct io_op *op = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			n++;
			/* Advance first: the callback may queue new SQEs. */
			io_uring_cq_advance(&e->ring, 1);
			e->inflight--;
			e->cqes++;
			op->complete(op, res);
			break;
		}
		if (n == 0)
			break;
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
	run_flush(e);
	io_engine_submit(e);
}

int io_engine_init(struct io_engine *e, uv_loop_t *loop, unsigned entries, bool same_thread)
{
	memset(e, 0, sizeof(*e));
	e->loop = loop;
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
	uv_poll_init(loop, &e->efd_poll, e->efd);
	e->efd_poll.data = e;
	uv_poll_start(&e->efd_poll, UV_READABLE, efd_cb);
	uv_check_init(loop, &e->check);
	e->check.data = e;
	uv_check_start(&e->check, check_cb);
	uv_idle_init(loop, &e->idle);
	e->initialised = true;
	return 0;
}

void io_engine_submit(struct io_engine *e)
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
	if (r > 0) {
		e->queued -= (unsigned)r < e->queued ? (unsigned)r : e->queued;
	}
}

struct io_uring_sqe *io_engine_sqe(struct io_engine *e, struct io_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		io_engine_submit(e);
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	e->queued++;
	e->inflight++;
	e->sqes++;
	return sqe;
}

void io_engine_defer(struct io_engine *e, struct io_flush_item *item)
{
	if (item->queued)
		return;
	item->queued = true;
	item->next = e->flush_head;
	e->flush_head = item;
}

void io_engine_close(struct io_engine *e)
{
	if (!e->initialised)
		return;
	e->initialised = false;
	uv_close((uv_handle_t *)&e->efd_poll, NULL);
	uv_close((uv_handle_t *)&e->check, NULL);
	uv_close((uv_handle_t *)&e->idle, NULL);
	io_uring_unregister_eventfd(&e->ring);
	close(e->efd);
	io_uring_queue_exit(&e->ring);
}
