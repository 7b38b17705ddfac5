/* Per-loop io_uring.
 *
 * Operations take SQEs during a loop iteration; a final tick item
 * (core/tick.h) submits every queued SQE with one io_uring_submit() at the
 * end of the iteration, after the transport and the backends have queued
 * theirs.  Completions wake the loop through an eventfd registered with the
 * ring and are all reaped in one go; each runs its operation's complete()
 * callback, which must not block.
 */
#pragma once
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/tick.h"

struct io_op {
	/* res: bytes transferred or a negative errno, as in the CQE. */
	void (*complete)(struct io_op *op, int res);
};

struct io_engine {
	struct tick *tick;
	struct io_uring ring;
	int efd;
	uv_poll_t efd_poll;
	struct tick_item submit;
	unsigned queued;         /* SQEs not yet submitted */
	unsigned inflight;
	bool initialised;
	uint64_t submit_calls, sqes, cqes;
};

/* entries: SQ size (a power of two).  same_thread: the ring is used only by
 * the thread creating it (lets the kernel skip cross-thread work; a ring
 * created for a worker thread must not set it).  Negative errno on failure
 * (io_uring disabled by the kernel: -ENOSYS or -EPERM). */
int io_engine_init(struct io_engine *e, struct tick *tick, unsigned entries, bool same_thread);

/* An SQE for op (user_data set), submitted at the end of the iteration;
 * submits early if the SQ is full.  NULL if the ring cannot take one. */
struct io_uring_sqe *io_engine_sqe(struct io_engine *e, struct io_op *op);

/* Close the uv handle (the loop must run on to finish) and the ring. */
void io_engine_close(struct io_engine *e);
