/* Work deferred to the end of the current loop iteration ("tick").
 *
 * One tick per loop.  Anything that batches (the transport publishing used
 * rings and raising at most one interrupt per queue, finishing a reset once
 * the last request is answered; the io engine submitting every queued SQE
 * with one syscall) defers an item here instead of acting at once.  Items
 * run from the loop's check phase, after every poll callback of the
 * iteration, so they never run inside a completion or a device callback:
 * life-cycle work done from an item sees a quiet, consistent state.
 *
 * Items run in the order they were deferred; an item deferred while the
 * tick runs is run in the same pass, unless it defers itself while it runs
 * (then next iteration: a busy peer must not keep one pass going).  "Final" items run after the others
 * (the io engine's submit: it must see the SQEs the other items queued).
 * An item that asks to run again (returns true) runs next iteration, and
 * the loop does not sleep meanwhile; if another item defers it later in
 * the same pass (the io engine's submit, with completions it reaped at
 * once), it also runs once more in this pass, so that what it has to
 * publish goes out in this iteration.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct busypoll;

struct tick_item {
	struct tick_item *next;
	bool queued;
	bool final;
	uint64_t rerun;             /* the iteration it last ran once more in */
	/* Return true to run again next iteration (work left over). */
	bool (*run)(struct tick_item *it);
};

struct tick {
	uv_loop_t *loop;
	uv_check_t check;
	uv_idle_t idle;             /* keeps the loop from sleeping while work is left */
	struct tick_item *head, *tail;
	struct tick_item *again;    /* items that asked to run next iteration */
	struct tick_item *current;  /* running now */
	bool running;
	bool closed;
	uint64_t iterations;        /* loop iterations that ran the list */
	/* Queues that had requests to pop, this iteration and the last one
	 * (tick_count_busy): how many drivers this loop is serving at once. */
	unsigned busy, busy_last;
	/* The loop's busy poller (core/busypoll.h), NULL when it does not
	 * spin: whoever serves a ring on this loop registers it there, the
	 * I/O engine tells it about I/O in flight. */
	struct busypoll *busypoll;
};

void tick_init(struct tick *t, uv_loop_t *loop);
/* Run it at the end of this iteration, once however often it is deferred. */
void tick_defer(struct tick *t, struct tick_item *it);
/* Take it off the list if it is queued (its owner goes away). */
void tick_cancel(struct tick *t, struct tick_item *it);
/* Close the uv handles (the loop must run on for them to close). */
void tick_close(struct tick *t);

/* The number of the iteration running now, the same in its callbacks and
 * in its tick's pass (which counts it in). */
static inline uint64_t tick_iteration(const struct tick *t)
{
	return t->running ? t->iterations : t->iterations + 1;
}

/* Count a queue with requests to pop; *seen is the queue's own mark, so
 * that it counts once between two passes (busy_last: since the last one). */
static inline void tick_count_busy(struct tick *t, uint64_t *seen)
{
	if (*seen != t->iterations + 1) {
		*seen = t->iterations + 1;
		t->busy++;
	}
}
