/* Userspace virtio-over-IVSHMEM *driver* (front-end) on a software link.
 *
 * It does what the Linux virtio_ivshmem driver does (docs/protocol.md §2-3):
 * refuses a backend that is not READY, allocates rings and bounce buffers
 * from the same chunk pool in the R/W section (core/dma_pool.h: first
 * fit, power-of-two runs, the lowest free run reused first; DMA address =
 * section offset),
 * writes registers through write transactions on vector 0 and waits for
 * their acknowledgement, negotiates features, sets queues up in the same
 * order, kicks on each queue's device vector with event-idx suppression, and
 * checks/clears the event flags.  Tests, the demo and the benchmark use it.
 * Waits are bounded (timeout_ms) so a broken backend fails a test instead of
 * hanging it.
 *
 * Threads: one thread drives a device, or (the benchmark, as blk-mq drives
 * each queue from its own CPU) one thread per queue: the pool is locked as
 * the driver's alloc_lock is, and a queue's thread uses only that queue
 * (fe_vq_*, fe_queue_watch, fe_handle_watch); setup and fe_wait are for
 * one thread.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/dma_pool.h"
#include "core/port.h"

/* CLOCK_MONOTONIC in milliseconds: what the front-end's waits are bounded by. */
static inline uint64_t fe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct fe_sg {
	uint64_t off;           /* R/W-section offset */
	uint32_t len;
	bool write;             /* device-writable */
};

struct fe_vq {
	uint16_t num;
	uint64_t ring_off, desc, avail, used;
	uint16_t device_vector, driver_vector;
	uint16_t free_head, num_free;
	uint16_t avail_idx, last_used, kicked_idx;
	uint16_t *next;         /* free list links (private copy) */
	uint16_t *chain_len;
	uint64_t *indirect;     /* pool offset of a head's indirect table, or UINT64_MAX */
	uint32_t *indirect_len;
	void **token;
	uint64_t kicks;
	bool poll_queue;        /* fe_vq_set_poll_queue: no interrupts wanted */
};

struct fe_dev {
	struct ivshm_port *port;
	uint8_t *rw;
	size_t rw_size;
	uint32_t hdr_size;
	uint32_t device_id;
	struct dma_pool pool;   /* the Linux driver's allocator, modelled */
	pthread_mutex_t pool_lock;
	uint64_t features;      /* negotiated */
	/* Publish each request's avail index as it is added, as Linux's
	 * virtio_ring does (the kick is decided at the end of the batch); else
	 * at fe_vq_kick, so that a test's burst shows up at once. */
	bool publish_each;
	unsigned nq;
	struct fe_vq *vq;
	int timeout_ms;
	uint64_t interrupts;    /* atomic */
	uint64_t violations;    /* used entries naming a head not in flight */
	uint64_t lost_interrupts;   /* answers found after a wait, with no interrupt */
	int gone_why;           /* why the back-end was seen gone: 1/3 its state no
				   longer READY (before/after a wait), 2 the link closed */
	unsigned violation_queue, violation_id;     /* the first one */
	uint16_t violation_pos;
};

/* Connect to the link at path as the front-end.  wait_ms: how long to wait
 * for the backend to become READY (the Linux driver does not wait: 0). */
int fe_open(const char *path, int wait_ms, struct fe_dev **ret, char *err, size_t err_len);

/* Reset, negotiate (offer & want), set nq queues of up to qsize up, DRIVER_OK. */
int fe_init(struct fe_dev *fe, uint64_t want, unsigned nq, uint16_t qsize,
	    char *err, size_t err_len);

/* Reset the device (status 0; acknowledged once the device has answered
 * what it had in flight) and drop the queues as the Linux driver's del_vqs
 * does: rings and indirect tables go back to the pool; the token of every
 * request still in flight is handed to abandoned() for its owner to free.
 * fe_init() may run again afterwards. */
int fe_reset(struct fe_dev *fe, void (*abandoned)(void *token, void *arg), void *arg);

/* Announce the driver leaving (STATE 0) and disconnect. */
void fe_close(struct fe_dev *fe);

/* Register write through a transaction (waits for the previous one). */
int fe_reg_write(struct fe_dev *fe, uint32_t off, uint64_t val, unsigned size);
/* Wait until the backend has acknowledged the last transaction. */
int fe_sync(struct fe_dev *fe);
/* Read device config bytes inside the config_generation loop. */
int fe_read_config(struct fe_dev *fe, uint32_t off, void *buf, size_t len);
uint8_t fe_status(const struct fe_dev *fe);

/* DMA pool: returns an offset, or UINT64_MAX when the section is full.
 * Zeroed: the driver's allocator (vi_dma_alloc) clears every allocation,
 * the rings and the bounce buffer of each streaming mapping alike, so a
 * mapped read buffer costs the cell a memset and a written one a memset
 * and a copy. */
uint64_t fe_alloc(struct fe_dev *fe, size_t size);
/* The same placement without the clearing: only for the benchmark's
 * --no-copy, which leaves out what the bounce costs the cell's CPU. */
uint64_t fe_alloc_nozero(struct fe_dev *fe, size_t size);
void fe_free(struct fe_dev *fe, uint64_t off, size_t size);
static inline void *fe_ptr(struct fe_dev *fe, uint64_t off) { return fe->rw + off; }

/* Add a chain (readable sg first), published at once with publish_each.
 * -ENOSPC when descriptors are short. */
int fe_vq_add(struct fe_dev *fe, unsigned q, const struct fe_sg *sg, unsigned n, void *token);
/* Publish added chains and kick if the device wants it (the event-idx
 * rule over everything added since the last call, as Linux decides). */
void fe_vq_kick(struct fe_dev *fe, unsigned q);
/* Next completed chain, or NULL. */
void *fe_vq_get(struct fe_dev *fe, unsigned q, uint32_t *len);
/* Make queue q a queue without a callback, as virtio_blk makes its poll
 * queues (module parameter poll_queues; the cell polls them for io_uring
 * IOPOLL / hipri I/O) and virtio_ring treats them: VRING_AVAIL_F_NO_INTERRUPT
 * in avail->flags without event-idx; with it, used_event is never moved
 * (fe_vq_get leaves it), so the device interrupts at most once per 2^16
 * answers.  The owner polls fe_vq_get.  Before the queue's first request. */
void fe_vq_set_poll_queue(struct fe_dev *fe, unsigned q);

/* Wait for an interrupt (or timeout_ms).  Returns 1 after an interrupt, 0 on
 * timeout, -ENODEV when the backend left READY ("backend failed!"). */
int fe_wait(struct fe_dev *fe, int timeout_ms);

/* The watch fd (port->watch_fd[]) on which queue q's interrupt arrives, or
 * -1 when its vector is shared with another queue or the config. */
int fe_queue_watch(const struct fe_dev *fe, unsigned q);
/* Take the readiness of watch fd idx: 1 after an interrupt, 0 after none,
 * -ENODEV when the backend left READY. */
int fe_handle_watch(struct fe_dev *fe, unsigned idx);

/* Is the backend READY? */
bool fe_backend_ready(const struct fe_dev *fe);
