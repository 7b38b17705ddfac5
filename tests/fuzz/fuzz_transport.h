/* Internal to the transport fuzz target: fuzz_transport.c (the device, its
 * backend and the oracles) and fuzz_transport_ops.c (the driver's program
 * decoded from the input).  A step is ft_step_begin(), one driver action,
 * ft_step_end(): the loop iteration runs and every oracle is checked. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/journal.h"
#include "core/transport.h"
#include "tests/fake_port.h"
#include "tests/fuzz/fuzz.h"

#define FT_RW      (4 * 4096)       /* the R/W section */
#define FT_MAX_NQ  4
#define FT_MAX_QS  64               /* largest queue */
#define FT_MAX_RINGS (4 * FT_MAX_NQ)

struct ft {
	uint8_t *rw;
	struct fake_port *fp;
	struct vdev vd;
	struct journal jr;
	unsigned nq, qmax;
	uint64_t features;
	size_t cfg_size;
	unsigned max_segments;      /* the backend's limit, 0: the queue size */
	uint64_t polled;            /* the backend's polled queues */
	bool answer_at_once, cancel_answers;
	bool refill;                /* the driver makes each head available again at once */
	bool draining;              /* the final drain: it no longer does */
	uint32_t at_once_len;
	bool stopped;               /* vdev_shutdown() finished */
	/* Requests with the backend, per queue. */
	struct vreq *held[FT_MAX_NQ][FT_MAX_QS];
	unsigned nheld[FT_MAX_NQ];
	/* Answers not yet seen in the used ring, per queue and head. */
	uint16_t answered[FT_MAX_NQ][FT_MAX_QS];
	uint16_t seen_used[FT_MAX_NQ];
	/* The driver wrote into the queue's used ring: its entries say
	 * nothing about the device any more (until the queue is set up anew). */
	bool tampered[FT_MAX_NQ];
	/* The queues at the start of the step. */
	bool was_live[FT_MAX_NQ];
	/* The used rings of queues live at some moment of the step (its start,
	 * the device handing out or the backend answering a request, a take
	 * over, its end): the device may have written those. */
	uint64_t ring_at[FT_MAX_RINGS];
	uint16_t ring_num[FT_MAX_RINGS];
	unsigned nrings;
	bool adopted;               /* this step took the device over */
	unsigned waits;             /* OP_WAITs so far */
};

extern struct ft ft;

void ft_step_begin(void);
/* processed: the step ran vdev_process() on vector 0 or unknown (so a
 * pending transaction must have been answered). */
void ft_step_end(bool processed);
void ft_write(uint64_t off, const void *src, size_t n);
void ft_answer(unsigned q, unsigned i, uint32_t len);
void ft_init_vdev(void);
void ft_shutdown(void);
/* The device dies and a new one takes over from its journal, after
 * mut(journal bytes) ran. */
void ft_crash(void (*mut)(uint8_t *journal, size_t size, void *arg), void *arg);

/* fuzz_transport_ops.c: set the device up from the input and run its
 * program; a driver racing the device: head made available again on
 * queue q while the device is still popping. */
void ft_program(struct fz *f);
void ft_repost(unsigned q, uint16_t head);
