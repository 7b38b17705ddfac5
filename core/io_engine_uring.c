/* The io_uring flavour of the engine (core/io_engine.h): each operation is
 * an SQE pointing at the caller's buffers; one io_uring_submit per loop
 * iteration; the ring signals e->efd for every CQE. */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "core/io_engine_int.h"
#include "core/log.h"

struct io_uring_flavour {
	struct io_uring ring;
	unsigned queued;            /* SQEs not yet submitted */
	uint64_t submit_calls;
};

/* What the engine offers; a kernel without one of them is not used. */
static const int needed_ops[] = {
	IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV, IORING_OP_WRITEV,
	IORING_OP_FSYNC, IORING_OP_FALLOCATE,
};

static int check_ops(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	if (!probe)
		return -EOPNOTSUPP;     /* before 5.6: no probe, and no fallocate either */
	int r = 0;
	for (size_t i = 0; i < sizeof(needed_ops) / sizeof(needed_ops[0]); i++)
		if (!io_uring_opcode_supported(probe, needed_ops[i]))
			r = -EOPNOTSUPP;
	io_uring_free_probe(probe);
	return r;
}

int uring_flavour_init(struct io_engine *e, const struct io_engine_params *p)
{
	struct io_uring_flavour *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct io_uring_params up = { .flags = IORING_SETUP_COOP_TASKRUN |
					       (p->same_thread ? IORING_SETUP_SINGLE_ISSUER : 0) };
	int r = io_uring_queue_init_params(p->entries, &u->ring, &up);
	if (r == -EINVAL) {
		memset(&up, 0, sizeof(up));   /* kernel older than 6.0 */
		r = io_uring_queue_init_params(p->entries, &u->ring, &up);
	}
	if (r < 0) {
		free(u);
		return r;
	}
	r = check_ops(&u->ring);
	if (r == 0)
		r = io_uring_register_eventfd(&u->ring, e->efd);
	if (r < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return r;
	}
	e->uring = u;
	return 0;
}

static void submit_now(struct io_uring_flavour *u)
{
	if (!u->queued)
		return;
	int r;
	do {
		r = io_uring_submit(&u->ring);
	} while (r == -EINTR);
	u->submit_calls++;
	if (r < 0) {
		/* Nothing was taken: the SQEs stay queued for the next try. */
		log_warn("io_uring_submit failed: %s", strerror(-r));
		return;
	}
	u->queued -= (unsigned)r < u->queued ? (unsigned)r : u->queued;
}

static void prep(struct io_uring_sqe *sqe, const struct io_req *rq)
{
	switch (rq->opcode) {
	case IO_READV:
	case IO_WRITEV:
		/* One segment (the common case): skip the kernel's iovec import. */
		if (rq->niov == 1 && rq->opcode == IO_READV)
			io_uring_prep_read(sqe, rq->fd, rq->iov[0].iov_base,
					   (unsigned)rq->iov[0].iov_len, rq->off);
		else if (rq->niov == 1)
			io_uring_prep_write(sqe, rq->fd, rq->iov[0].iov_base,
					    (unsigned)rq->iov[0].iov_len, rq->off);
		else if (rq->opcode == IO_READV)
			io_uring_prep_readv(sqe, rq->fd, rq->iov, rq->niov, rq->off);
		else
			io_uring_prep_writev(sqe, rq->fd, rq->iov, rq->niov, rq->off);
		break;
	case IO_FDATASYNC:
		io_uring_prep_fsync(sqe, rq->fd, IORING_FSYNC_DATASYNC);
		break;
	case IO_FALLOCATE:
		io_uring_prep_fallocate(sqe, rq->fd, rq->mode, rq->off, rq->len);
		break;
	}
}

int uring_flavour_queue(struct io_engine *e, struct io_op *op, const struct io_req *req,
			unsigned n)
{
	struct io_uring_flavour *u = e->uring;
	/* All or none: a chain cut short would link its last SQE to
	 * whatever is queued next. */
	if (io_uring_sq_space_left(&u->ring) < n)
		submit_now(u);
	if (io_uring_sq_space_left(&u->ring) < n)
		return -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
		prep(sqe, &req[i]);
		io_uring_sqe_set_data(sqe, op);
		if (i + 1 < n)
			sqe->flags |= IOSQE_IO_HARDLINK;
	}
	u->queued += n;
	return 0;
}

bool uring_flavour_flush(struct io_engine *e)
{
	struct io_uring_flavour *u = e->uring;
	if (u->queued)
		e->batches++;
	submit_now(u);
	return u->queued != 0;      /* the kernel took less: try again */
}

void uring_flavour_reap(struct io_engine *e)
{
	struct io_uring_flavour *u = e->uring;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct io_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		/* Advance first: the callback may queue new SQEs. */
		io_uring_cqe_seen(&u->ring, cqe);
		io_engine_completed(e, op, res);
	}
}

void uring_flavour_close(struct io_engine *e)
{
	struct io_uring_flavour *u = e->uring;
	io_uring_unregister_eventfd(&u->ring);
	io_uring_queue_exit(&u->ring);
	free(u);
	e->uring = NULL;
}
