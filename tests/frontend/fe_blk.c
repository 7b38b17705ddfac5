#include "tests/frontend/fe_blk.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/virtio_blk.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"

#define ALL_FEATURES (VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | \
		      VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | \
		      VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_MQ) | \
		      VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | \
		      VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | \
		      VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | \
		      VIRTIO_BIT(VIRTIO_F_ORDER_PLATFORM))

static uint32_t cfg32(struct fe_blk *blk, uint32_t off)
{
	uint32_t v = 0;
	fe_read_config(blk->fe, off, &v, 4);
	return le32toh(v);
}

int fe_blk_open(const char *path, uint64_t want, unsigned queues, uint16_t qsize, int wait_ms,
		struct fe_blk **ret, char *err, size_t err_len)
{
	struct fe_dev *fe;
	int r = fe_open(path, wait_ms, &fe, err, err_len);
	return r < 0 ? r : fe_blk_attach(fe, want, queues, qsize, ret, err, err_len);
}

int fe_blk_attach(struct fe_dev *fe, uint64_t want, unsigned queues, uint16_t qsize,
		  struct fe_blk **ret, char *err, size_t err_len)
{
	struct fe_blk *blk = calloc(1, sizeof(*blk));
	if (!blk) {
		fe_close(fe);
		return -ENOMEM;
	}
	blk->fe = fe;
	int r;
	if (blk->fe->device_id != 2) {
		snprintf(err, err_len, "link carries virtio device %u, not a block device",
			 blk->fe->device_id);
		fe_close(blk->fe);
		free(blk);
		return -EPROTO;
	}
	r = fe_init(blk->fe, want ? want : ALL_FEATURES, queues, qsize, err, err_len);
	if (r < 0) {
		fe_close(blk->fe);
		free(blk);
		return r;
	}
	uint64_t cap = 0;
	fe_read_config(blk->fe, VBLK_CFG_CAPACITY, &cap, 8);
	blk->capacity = le64toh(cap);
	blk->size_max = cfg32(blk, VBLK_CFG_SIZE_MAX);
	blk->seg_max = cfg32(blk, VBLK_CFG_SEG_MAX);
	blk->blk_size = cfg32(blk, VBLK_CFG_BLK_SIZE);
	blk->max_discard_seg = cfg32(blk, VBLK_CFG_MAX_DISCARD_SEG);
	uint16_t nq = 0;
	fe_read_config(blk->fe, VBLK_CFG_NUM_QUEUES, &nq, 2);
	blk->num_queues = le16toh(nq);
	*ret = blk;
	return 0;
}

static void release(struct fe_blk *blk, struct fe_blk_req *req);

static void abandon(void *token, void *arg)
{
	struct fe_blk *blk = arg;
	struct fe_blk_req *req = token;
	release(blk, req);
	blk->inflight--;
	req->status = -1;       /* never answered: the device was reset */
	if (req->done)
		req->done(req);
}

int fe_blk_reset(struct fe_blk *blk, unsigned queues, uint16_t qsize, char *err, size_t err_len)
{
	int r = fe_reset(blk->fe, abandon, blk);
	if (r < 0) {
		snprintf(err, err_len, "the reset was not acknowledged: %s", strerror(-r));
		return r;
	}
	return fe_init(blk->fe, ALL_FEATURES, queues, qsize, err, err_len);
}

void fe_blk_close(struct fe_blk *blk)
{
	if (!blk)
		return;
	fe_close(blk->fe);
	free(blk);
}

static bool data_is_writable(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

static void release(struct fe_blk *blk, struct fe_blk_req *req)
{
	struct fe_dev *fe = blk->fe;
	fe_free(fe, req->hdr_off, VIRTIO_BLK_OUTHDR_SIZE);
	if (req->len)
		fe_free(fe, req->data_alloc, (uint64_t)req->len + req->misalign);
	fe_free(fe, req->st_off, 1);
}

int fe_blk_submit(struct fe_blk *blk, unsigned q, struct fe_blk_req *req)
{
	struct fe_dev *fe = blk->fe;
	req->hdr_off = fe_alloc(fe, VIRTIO_BLK_OUTHDR_SIZE);
	uint64_t alloc_len = (uint64_t)req->len + req->misalign;
	req->data_alloc = !req->len ? 0 : blk->no_copy ? fe_alloc_nozero(fe, alloc_len)
						     : fe_alloc(fe, alloc_len);
	req->data_off = req->data_alloc == UINT64_MAX ? UINT64_MAX : req->data_alloc + req->misalign;
	req->st_off = fe_alloc(fe, 1);
	if (req->hdr_off == UINT64_MAX || req->data_off == UINT64_MAX || req->st_off == UINT64_MAX) {
		if (req->hdr_off != UINT64_MAX)
			fe_free(fe, req->hdr_off, VIRTIO_BLK_OUTHDR_SIZE);
		if (req->len && req->data_alloc != UINT64_MAX)
			fe_free(fe, req->data_alloc, alloc_len);
		if (req->st_off != UINT64_MAX)
			fe_free(fe, req->st_off, 1);
		return -ENOSPC;
	}
	uint8_t *hdr = fe_ptr(fe, req->hdr_off);
	uint32_t type = htole32(req->type);
	uint64_t sector = htole64(req->sector);
	memcpy(hdr, &type, 4);
	memset(hdr + 4, 0, 4);
	memcpy(hdr + 8, &sector, 8);
	bool wr = data_is_writable(req->type);
	if (req->len && !wr && !blk->no_copy)
		memcpy(fe_ptr(fe, req->data_off), req->buf, req->len);
	*(uint8_t *)fe_ptr(fe, req->st_off) = 0xff;
	struct fe_sg sg[4];
	unsigned n = 0;
	sg[n++] = (struct fe_sg){ req->hdr_off, VIRTIO_BLK_OUTHDR_SIZE, false };
	if (req->len && req->split && req->split < req->len) {
		sg[n++] = (struct fe_sg){ req->data_off, req->split, wr };
		sg[n++] = (struct fe_sg){ req->data_off + req->split, req->len - req->split, wr };
	} else if (req->len) {
		sg[n++] = (struct fe_sg){ req->data_off, req->len, wr };
	}
	sg[n++] = (struct fe_sg){ req->st_off, 1, true };
	int r = fe_vq_add(fe, q, sg, n, req);
	if (r < 0) {
		release(blk, req);
		return r;
	}
	__atomic_fetch_add(&blk->inflight, 1, __ATOMIC_RELAXED);
	return 0;
}

void fe_blk_kick(struct fe_blk *blk, unsigned q)
{
	fe_vq_kick(blk->fe, q);
}

int fe_blk_reap_queue(struct fe_blk *blk, unsigned q)
{
	struct fe_dev *fe = blk->fe;
	int n = 0;
	uint32_t len;
	struct fe_blk_req *req;
	while ((req = fe_vq_get(fe, q, &len))) {
		req->used_len = len;
		req->status = len ? *(volatile uint8_t *)fe_ptr(fe, req->st_off) : -1;
		if (req->status == 0xff)
			req->status = -1;   /* never written */
		if (data_is_writable(req->type) && req->len && !blk->no_copy)
			memcpy(req->buf, fe_ptr(fe, req->data_off), req->len);
		release(blk, req);
		__atomic_fetch_sub(&blk->inflight, 1, __ATOMIC_RELAXED);
		n++;
		if (req->done)
			req->done(req);
	}
	return n;
}

static int reap(struct fe_blk *blk)
{
	int n = 0;
	for (unsigned q = 0; q < blk->fe->nq; q++)
		n += fe_blk_reap_queue(blk, q);
	return n;
}

int fe_blk_poll(struct fe_blk *blk, int timeout_ms)
{
	int n = reap(blk);
	if (n)
		return n;
	int r = fe_wait(blk->fe, timeout_ms);
	if (r < 0)
		return r;
	n = reap(blk);
	if (n && r == 0 && timeout_ms > 0) {
		/* Answers without an interrupt: one still on its way is fine
		 * (the device notifies right after publishing), none at all
		 * would hang the Linux driver. */
		if (fe_wait(blk->fe, 200) == 0)
			blk->fe->lost_interrupts++;
	}
	return n ? n : (r == 0 ? -ETIMEDOUT : 0);
}

int fe_blk_io(struct fe_blk *blk, unsigned q, uint32_t type, uint64_t sector, void *buf,
	      uint32_t len)
{
	struct fe_blk_req req = { .type = type, .sector = sector, .buf = buf, .len = len,
				  .status = -2 };
	int r = fe_blk_submit(blk, q, &req);
	if (r < 0)
		return r;
	fe_blk_kick(blk, q);
	if (blk->fe->vq[q].poll_queue) {
		/* No interrupt comes: look at the used ring until the answer is
		 * there, as the cell's task polls for io_uring IOPOLL. */
		uint64_t end = fe_now_ms() + 10000;
		while (req.status == -2) {
			if (blk->fe->violations)
				return -EPROTO;
			if (!fe_backend_ready(blk->fe))
				return -ENODEV;
			fe_blk_reap_queue(blk, q);
			if (req.status == -2 && fe_now_ms() > end)
				return -ETIMEDOUT;
		}
		return req.status;
	}
	for (int tries = 0; req.status == -2; tries++) {
		if (blk->fe->violations)
			return -EPROTO;     /* the device answered something else: it never ends */
		r = fe_blk_poll(blk, 1000);
		if (r == -ETIMEDOUT && tries < 10)
			continue;
		if (r < 0)
			return r;
	}
	return req.status;
}
