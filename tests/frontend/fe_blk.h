/* virtio-blk client on top of the userspace front-end (fe.h): synchronous
 * requests, and asynchronous ones at any queue depth with a completion
 * callback.
 *
 * Data is bounced through the R/W section as the Linux driver's DMA ops do
 * for virtio_blk: at submit, in the order virtqueue_add_split maps them,
 * the header, the data (one segment: buf is taken as physically
 * contiguous), the status byte and then the indirect table each get a
 * cleared bounce buffer, first fit; a write's data is copied in.  At
 * completion (detach_buf_split, in the interrupt) a read's data and the
 * status are copied out and every buffer is freed, so the next request
 * reuses the lowest chunks again. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "tests/frontend/fe.h"

struct fe_blk_req {
	uint32_t type;          /* VIRTIO_BLK_T_* */
	uint64_t sector;
	void *buf;              /* data (IN: filled on completion) */
	uint32_t len;
	int status;             /* VIRTIO_BLK_S_*, or -1 when the device gave none */
	uint32_t used_len;
	void (*done)(struct fe_blk_req *req);
	void *arg;
	uint64_t t_submit;      /* for the benchmark */
	/* Tests of the device's alignment handling (0 and 0: as the driver
	 * places data): the data starts misalign bytes into its bounce buffer,
	 * and goes in two segments, the first split bytes long, when 0 < split
	 * < len. */
	uint32_t misalign;
	uint32_t split;
	/* private */
	uint64_t hdr_off, data_off, st_off;
	uint64_t data_alloc;    /* where its bounce buffer starts */
};

struct fe_blk {
	struct fe_dev *fe;
	uint64_t capacity;      /* sectors */
	uint32_t size_max, seg_max, blk_size, num_queues;
	uint32_t max_discard_seg;
	unsigned inflight;      /* atomic */
	/* The benchmark's --no-copy: data buffers are placed as usual but not
	 * cleared at map, not filled from buf (writes) and not copied back
	 * into buf (reads).  The header, status byte and indirect table are
	 * written as always: they are the request. */
	bool no_copy;
};

/* want: feature bits the client accepts (0: everything we implement). */
int fe_blk_open(const char *path, uint64_t want, unsigned queues, uint16_t qsize, int wait_ms,
		struct fe_blk **ret, char *err, size_t err_len);
/* The second half of fe_blk_open: negotiate on a connected front-end (fe_open)
 * and set the queues up (the transactions).  fe is the client's from then
 * on, closed on failure. */
int fe_blk_attach(struct fe_dev *fe, uint64_t want, unsigned queues, uint16_t qsize,
		  struct fe_blk **ret, char *err, size_t err_len);
void fe_blk_close(struct fe_blk *blk);
/* Reset the device with requests in flight and set it up again (as the
 * Linux driver does on a reset): the requests in flight complete with
 * status -1 (never answered). */
int fe_blk_reset(struct fe_blk *blk, unsigned queues, uint16_t qsize, char *err, size_t err_len);

/* Queue a request on queue q (kick with fe_blk_kick). -ENOSPC: ring or pool full. */
int fe_blk_submit(struct fe_blk *blk, unsigned q, struct fe_blk_req *req);
void fe_blk_kick(struct fe_blk *blk, unsigned q);

/* Reap completions on every queue, waiting up to timeout_ms for the first.
 * Returns how many completed, or -ENODEV / -ETIMEDOUT. */
int fe_blk_poll(struct fe_blk *blk, int timeout_ms);
/* Reap what queue q has completed, without waiting (for a thread of its
 * own that waits on fe_queue_watch()).  Returns how many. */
int fe_blk_reap_queue(struct fe_blk *blk, unsigned q);

/* Synchronous request; returns the virtio status or a negative errno.  On
 * a poll queue (fe_vq_set_poll_queue) it polls the used ring instead of
 * waiting for an interrupt, and leaves the vectors' doorbells alone. */
int fe_blk_io(struct fe_blk *blk, unsigned q, uint32_t type, uint64_t sector, void *buf,
	      uint32_t len);
