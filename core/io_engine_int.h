/* Between core/io_engine.c and its two flavours (io_engine_uring.c,
 * io_engine_threads.c); nothing else includes this.
 *
 * Every function here runs on the engine's loop thread.  A flavour's queue
 * takes all of req[0..n) or none; flush hands what was queued this
 * iteration over (true: some is left, run again next iteration); reap runs
 * when the eventfd was readable (and read), and each completion it finds
 * goes through io_engine_completed(). */
#pragma once
#include "core/io_engine.h"

/* e->efd exists when init runs; the flavour makes completions signal it. */
int uring_flavour_init(struct io_engine *e, const struct io_engine_params *p);
int uring_flavour_queue(struct io_engine *e, struct io_op *op, const struct io_req *req,
			unsigned n);
bool uring_flavour_flush(struct io_engine *e);
void uring_flavour_reap(struct io_engine *e);
void uring_flavour_close(struct io_engine *e);

int pool_init(struct io_engine *e, unsigned max_threads);
int pool_queue(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n);
bool pool_flush(struct io_engine *e);
void pool_reap(struct io_engine *e);
void pool_close(struct io_engine *e);

/* Account for a completion and run its callback. */
static inline void io_engine_completed(struct io_engine *e, struct io_op *op, int res)
{
	e->inflight--;
	e->completions++;
	op->complete(op, res);
}
