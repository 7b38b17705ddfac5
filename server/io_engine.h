/* Per-worker io_uring, driven by a libuv loop.
 *
 * Requests take SQEs during a loop iteration; the uv_check hook at the end of
 * the iteration first runs the deferred "flush" items (publishing used rings,
 * one interrupt per queue per batch) and then submits every queued SQE with
 * one io_uring_submit().  Completions wake the loop through an eventfd
 * registered with the ring; all CQEs are reaped in one go.
 */
#pragma once
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct io_op {
	/* res: bytes transferred or negative errno, as in the CQE. */
	void (*complete)(struct io_op *op, int res);
};

struct io_flush_item {
	struct io_flush_item *next;
	bool queued;
	/* Return true to be run again in the next iteration (more work). */
	bool (*flush)(struct io_flush_item *item);
};

struct io_engine {
	uv_loop_t *loop;
	struct io_uring ring;
	int efd;
	uv_poll_t efd_poll;
	uv_check_t check;
	uv_idle_t idle;          /* keeps the loop from sleeping while work is left */
	unsigned queued;         /* SQEs not yet submitted */
	unsigned inflight;
	struct io_flush_item *flush_head;
	bool initialised;
	uint64_t submit_calls, sqes, cqes;
};

/* entries: SQ size (a power of two).  same_thread: the ring is used only by
 * the thread creating it (lets the kernel skip cross-thread work; a ring
 * created for a worker thread must not set it).  Negative errno on failure
 * (io_uring disabled by the kernel: -ENOSYS or -EPERM). */
int io_engine_init(struct io_engine *e, uv_loop_t *loop, unsigned entries, bool same_thread);

/* An SQE for op (user_data set); submits early if the SQ is full. */
struct io_uring_sqe *io_engine_sqe(struct io_engine *e, struct io_op *op);

/* Submit queued SQEs now. */
void io_engine_submit(struct io_engine *e);

/* Run item->flush at the end of this loop iteration (once, however often
 * it is deferred). */
void io_engine_defer(struct io_engine *e, struct io_flush_item *item);

/* Close the uv handles (the loop must run on to finish) and the ring. */
void io_engine_close(struct io_engine *e);
