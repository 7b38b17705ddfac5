/* Busy polling: look at the rings for a while before the loop sleeps.
 *
 * A request round trip between a cell and the daemon is a hand-off each
 * way, and a hand-off to a CPU that has gone idle costs its wake-up: on a
 * virtual machine a halted vCPU is an exit and a host reschedule (measured
 * here: one disk at 4 KiB QD 32 in page cache ran at 190k IOPS with the
 * CPUs idle between batches, 435k with a niced spinner keeping them awake),
 * on a board a C-state exit.  So, like QEMU's adaptive AioContext polling
 * and vhost's busy loop, a loop that is about to sleep first checks its
 * sources (a queue's avail index: a plain load, no system call) for up to
 * a window, and serves what shows up without sleeping.
 *
 * It spins only to wait for the driver, never while I/O is in flight
 * (a source's waits(): the I/O engine's): that I/O wakes the loop when it
 * completes anyway, and it runs on the same CPUs (io_uring's workers, the
 * thread pool), which a spin would take from it - measured, 4 KiB random
 * writes to ext4 (punted to io_uring's workers) lost a fifth of their IOPS
 * to spinning on 2 vCPUs.
 *
 * The window adapts to the traffic, as QEMU's does: it grows (4 us, then
 * doubling up to the configured maximum) when the loop slept less than the
 * maximum, so a longer spin would have caught the work; it halves (and
 * under 4 us drops to 0) each time the loop slept longer than the maximum,
 * so one late request does not undo it but an idle cell stops costing CPU
 * after a few sleeps (at most about twice the maximum in all); it stays
 * while spins find work.
 *
 * One per loop, used on that loop's thread only.  A source is registered
 * by its owner for as long as it exists on the loop: ready() (may it be
 * served now, and is there work?) and waits() must be cheap and
 * side-effect free; run() does what the wake-up would have done and says
 * whether it took any work (only that counts as a hit).
 *
 * It spins only when the loop is about to sleep as far as libuv tells
 * (uv_backend_timeout() > 0): not in an iteration that registers watcher
 * changes (libuv answers 0 then), nor past a due timer.
 *
 * While it spins the driver need not kick: a kick would cost the cell a
 * doorbell (under Jailhouse a trapped MMIO write) and the loop one more,
 * empty, wake-up, as QEMU and vhost know (they turn notifications off
 * while polling).  A source with quiet() has it turn kicks off when the
 * spin starts; when the spin ends, hit or not, arm() turns them on again
 * and says whether work arrived in between, which no kick will announce:
 * that work is run there and then.  So a loop never sleeps with a source
 * quiet, and a source removed while quiet is armed on its way out.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct busypoll_source {
	struct busypoll_source *next;
	bool (*ready)(struct busypoll_source *s);   /* optional */
	bool (*run)(struct busypoll_source *s);     /* true: it took work */
	bool (*waits)(struct busypoll_source *s);   /* optional: I/O in flight, no spin */
	bool (*quiet)(struct busypoll_source *s);   /* optional: kicks off; true if it did */
	bool (*arm)(struct busypoll_source *s);     /* with quiet: kicks on; true: work came */
	bool added;
	bool quieted;           /* quiet() said yes, arm() not called yet */
	bool arrived;           /* arm() said work came, not run yet */
};

struct busypoll_stats {
	uint64_t spins;         /* times the loop spun before sleeping */
	uint64_t hits;          /* spins that found work (a sleep saved) */
	uint64_t spun_ns;       /* time spent spinning */
};

struct busypoll {
	uv_loop_t *loop;
	uv_prepare_t prepare;
	uv_check_t check;
	uv_idle_t idle;             /* a spin found work: the poll must not block */
	struct busypoll_source *head;
	uint64_t max_ns;            /* 0: never spin */
	uint64_t window_ns;         /* the adaptive spin length */
	uint64_t sleep_from;        /* when the loop went to sleep, 0 if it did not */
	bool closed;
	struct busypoll_stats stats;
};

#define BUSYPOLL_START_NS 4000u

/* max_ns 0 disables spinning (the handles exist all the same). */
void busypoll_init(struct busypoll *bp, uv_loop_t *loop, uint64_t max_ns);
void busypoll_add(struct busypoll *bp, struct busypoll_source *s);
void busypoll_remove(struct busypoll *bp, struct busypoll_source *s);
/* Close the uv handles (the loop must run on for them to close). */
void busypoll_close(struct busypoll *bp);

/* The adaptation rule alone (for tests): the next window after sleeping
 * slept_ns with window and max. */
uint64_t busypoll_adapt(uint64_t window, uint64_t max, uint64_t slept_ns);
