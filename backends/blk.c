#include "backends/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/blk_req.h"
#include "backends/virtio_blk.h"
#include "server/dma_pool.h"
#include "server/log.h"
#include "server/shm.h"

#define BLK_MAX_IOV      (1024 + 2)       /* an indirect table's worth */
#define MAX_RANGE_SECTORS (UINT32_MAX >> 9)

struct blk_queue;

struct blk_req {
	struct io_op op;            /* first: the engine hands us back op */
	struct blk_queue *bq;
	uint16_t head;
	uint32_t used_len;
	struct blk_request r;
	uint64_t done;              /* bytes transferred so far (short I/O) */
	unsigned pending;           /* SQEs in flight */
	bool retry;                 /* resubmit the ranges with the fallback */
	int status;
	struct iovec iov[BLK_MAX_IOV];
};

struct blk_queue {
	struct blk_dev *dev;
	unsigned idx;
	struct blk_req *reqs;
	struct blk_req **free;
	unsigned nfree;
	bool starved;               /* stopped popping for want of a slot */
	struct io_flush_item flush;
};

struct blk_dev {
	struct vdev vdev;
	struct blk_params p;
	struct io_engine *eng;
	int fd;                     /* -1 when the medium is ejected */
	char image[4096];
	bool is_bdev;
	bool no_zero_range;         /* the file system lacks FALLOC_FL_ZERO_RANGE */
	struct blk_limits lim;
	uint32_t size_max;
	unsigned inflight;
	struct blk_queue *q;
	struct blk_stats stats;
	uint64_t logged_errors;
};

static void queue_notify(void *be, unsigned qi);

static void release(struct blk_req *req)
{
	struct blk_queue *bq = req->bq;
	bq->free[bq->nfree++] = req;
}

/* Finish a request: status byte, used entry, slot back. */
static void complete(struct blk_req *req, int status)
{
	struct blk_queue *bq = req->bq;
	struct blk_dev *dev = bq->dev;
	struct vq *vq = vdev_vq_complete(&dev->vdev, bq->idx);
	/* A reset or a departed peer: nothing more may be written. */
	if (vq) {
		uint32_t len = 1;
		if (req->r.status)
			shm_st8(req->r.status, 0, (uint8_t)status);
		if (status == VIRTIO_BLK_S_OK)
			len += req->used_len;
		if (!req->r.status)
			len = 0;
		vq_push(vq, req->head, len);
		io_engine_defer(dev->eng, &bq->flush);
	}
	release(req);
	if (bq->starved)
		io_engine_defer(dev->eng, &bq->flush);
}

static void io_failed(struct blk_dev *dev, struct blk_req *req, int res)
{
	int dir = req->r.type == VIRTIO_BLK_T_IN ? 0 : 1;
	dev->stats.errors[dir]++;
	if (dev->logged_errors++ < 10)
		log_err("%s: I/O error on %s at sector %llu: %s", dev->p.name,
			req->r.type == VIRTIO_BLK_T_IN ? "read" : req->r.type == VIRTIO_BLK_T_OUT ?
			"write" : "flush/discard", (unsigned long long)req->r.sector, strerror(-res));
}

static bool submit_rw(struct blk_dev *dev, struct blk_req *req);
static bool submit_ranges(struct blk_dev *dev, struct blk_req *req);

static void op_done(struct io_op *op, int res)
{
	struct blk_req *req = (struct blk_req *)op;
	struct blk_dev *dev = req->bq->dev;
	req->pending--;
	if (req->r.type == VIRTIO_BLK_T_IN || req->r.type == VIRTIO_BLK_T_OUT) {
		if (res == -EAGAIN || res == -EINTR) {
			res = 0;    /* retry the same range */
		} else if (res > 0) {
			req->done += (uint64_t)res;
			req->r.ndata = iov_skip(&req->r.data, req->r.ndata, (uint64_t)res);
		} else if (res == 0) {
			res = -ENODATA;   /* the file ended under us */
		}
		if (res >= 0 && req->done < req->r.data_len &&
		    vdev_vq_complete(&dev->vdev, req->bq->idx)) {
			if (submit_rw(dev, req))
				return;     /* the rest of a short transfer */
			res = -EIO;
		}
		if (res < 0) {
			io_failed(dev, req, res);
			req->status = VIRTIO_BLK_S_IOERR;
		}
	} else if (res == -EOPNOTSUPP && req->r.type == VIRTIO_BLK_T_DISCARD) {
		/* Discard is a hint: a file system without hole punching keeps
		 * the data, which the virtio spec allows. */
	} else if (res == -EOPNOTSUPP && req->r.type == VIRTIO_BLK_T_WRITE_ZEROES &&
		   !dev->no_zero_range) {
		dev->no_zero_range = true;  /* e.g. tmpfs: redo with punch + allocate */
		req->retry = true;
	} else if (res < 0) {
		io_failed(dev, req, res);
		req->status = VIRTIO_BLK_S_IOERR;
	}
	if (req->pending)
		return;
	if (req->retry) {
		req->retry = false;
		if (submit_ranges(dev, req))
			return;
		req->status = VIRTIO_BLK_S_IOERR;
		if (req->pending)
			return;
	}
	dev->inflight--;
	complete(req, req->status);
	if (dev->inflight == 0)
		vdev_backend_idle(&dev->vdev);
}

static struct io_uring_sqe *get_sqe(struct blk_dev *dev, struct blk_req *req)
{
	struct io_uring_sqe *sqe = io_engine_sqe(dev->eng, &req->op);
	if (sqe)
		req->pending++;
	return sqe;
}

/* (Re)submit the part of a read or write not transferred yet: r.data has
 * already been advanced past what is done. */
static bool submit_rw(struct blk_dev *dev, struct blk_req *req)
{
	struct io_uring_sqe *sqe = get_sqe(dev, req);
	if (!sqe)
		return false;
	uint64_t off = req->r.sector * VIRTIO_BLK_SECTOR_SIZE + req->done;
	bool in = req->r.type == VIRTIO_BLK_T_IN;
	/* One segment (the common case): skip the kernel's iovec import. */
	if (req->r.ndata == 1 && in)
		io_uring_prep_read(sqe, dev->fd, req->r.data[0].iov_base,
				   (unsigned)req->r.data[0].iov_len, off);
	else if (req->r.ndata == 1)
		io_uring_prep_write(sqe, dev->fd, req->r.data[0].iov_base,
				    (unsigned)req->r.data[0].iov_len, off);
	else if (in)
		io_uring_prep_readv(sqe, dev->fd, req->r.data, req->r.ndata, off);
	else
		io_uring_prep_writev(sqe, dev->fd, req->r.data, req->r.ndata, off);
	return true;
}

static int fallocate_mode(struct blk_dev *dev, uint32_t type, uint32_t flags)
{
	if (type == VIRTIO_BLK_T_DISCARD)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE |
		       (dev->is_bdev ? FALLOC_FL_NO_HIDE_STALE : 0);
	/* Write zeroes: unmapping is allowed when the driver says so. */
	if (flags & VIRTIO_BLK_WZ_FLAG_UNMAP)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

static bool submit_ranges(struct blk_dev *dev, struct blk_req *req)
{
	for (unsigned i = 0; i < req->r.nranges; i++) {
		const struct blk_range *rg = &req->r.ranges[i];
		if (rg->num_sectors == 0)
			continue;
		uint64_t off = rg->sector * VIRTIO_BLK_SECTOR_SIZE;
		uint64_t len = (uint64_t)rg->num_sectors * VIRTIO_BLK_SECTOR_SIZE;
		int mode = fallocate_mode(dev, req->r.type, rg->flags);
		bool fallback = (mode & FALLOC_FL_ZERO_RANGE) && dev->no_zero_range;
		struct io_uring_sqe *sqe = get_sqe(dev, req);
		if (!sqe)
			return false;
		if (!fallback) {
			io_uring_prep_fallocate(sqe, dev->fd, mode, off, len);
			continue;
		}
		/* Zeroes that stay allocated: punch the range, then allocate it. */
		io_uring_prep_fallocate(sqe, dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					off, len);
		sqe->flags |= IOSQE_IO_HARDLINK;
		sqe = get_sqe(dev, req);
		if (!sqe)
			return false;
		io_uring_prep_fallocate(sqe, dev->fd, FALLOC_FL_KEEP_SIZE, off, len);
	}
	return true;
}

static void answer_get_id(struct blk_dev *dev, struct blk_req *req)
{
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };
	memcpy(id, dev->p.serial, strnlen(dev->p.serial, sizeof(id)));
	uint64_t n = req->r.data_len < sizeof(id) ? req->r.data_len : sizeof(id);
	req->used_len = (uint32_t)iov_from_buf(req->r.data, req->r.ndata, id, n);
}

static void start(struct blk_dev *dev, struct blk_req *req, unsigned n_out, unsigned n_in)
{
	req->op.complete = op_done;
	req->done = 0;
	req->pending = 0;
	req->used_len = 0;
	req->status = VIRTIO_BLK_S_OK;
	int st = blk_parse(req->iov, n_out, n_in, &req->r);
	if (st < 0) {
		complete(req, 0);      /* nowhere to put a status: empty used entry */
		return;
	}
	if (st == VIRTIO_BLK_S_OK)
		st = blk_check(&req->r, &dev->lim);
	int dir = req->r.type == VIRTIO_BLK_T_IN ? 0 : 1;
	if (st != VIRTIO_BLK_S_OK) {
		if (st == VIRTIO_BLK_S_UNSUPP)
			dev->stats.unsupported++;
		else
			dev->stats.errors[dir]++;
		complete(req, st);
		return;
	}
	bool ok = true;
	switch (req->r.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		dev->stats.reqs[dir]++;
		dev->stats.bytes[dir] += req->r.data_len;
		if (req->r.type == VIRTIO_BLK_T_IN)
			req->used_len = (uint32_t)req->r.data_len;
		if (req->r.data_len == 0) {
			complete(req, VIRTIO_BLK_S_OK);
			return;
		}
		ok = submit_rw(dev, req);
		break;
	case VIRTIO_BLK_T_FLUSH: {
		dev->stats.flushes++;
		if (dev->fd < 0) {
			complete(req, VIRTIO_BLK_S_OK);
			return;
		}
		struct io_uring_sqe *sqe = get_sqe(dev, req);
		ok = sqe != NULL;
		if (ok)
			io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	case VIRTIO_BLK_T_GET_ID:
		dev->stats.get_ids++;
		answer_get_id(dev, req);
		complete(req, VIRTIO_BLK_S_OK);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (req->r.type == VIRTIO_BLK_T_DISCARD)
			dev->stats.discards++;
		else
			dev->stats.write_zeroes++;
		ok = submit_ranges(dev, req);
		break;
	}
	if (req->pending) {
		dev->inflight++;
		if (!ok)
			req->status = VIRTIO_BLK_S_IOERR;   /* finish when the rest lands */
		return;
	}
	complete(req, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
}

static void queue_notify(void *be, unsigned qi)
{
	struct blk_dev *dev = be;
	struct blk_queue *bq = &dev->q[qi];
	/* Bounded: a driver that keeps refilling cannot hold us here forever. */
	unsigned budget = 2u * dev->p.queue_size;
	while (budget--) {
		struct vq *vq = vdev_vq(&dev->vdev, qi);
		if (!vq)
			return;
		if (bq->nfree == 0) {
			bq->starved = true;
			return;
		}
		struct blk_req *req = bq->free[--bq->nfree];
		struct vq_elem e;
		int r = vq_pop(vq, &e, req->iov, BLK_MAX_IOV);
		if (r <= 0) {
			release(req);
			if (r < 0) {
				vdev_fail(&dev->vdev, qi, r);
				return;
			}
			if (vq_enable_notify(vq))
				continue;
			return;
		}
		req->head = e.head;
		start(dev, req, e.n_out, e.n_in);
	}
	/* Out of budget with work left: come back next iteration. */
	io_engine_defer(dev->eng, &bq->flush);
	bq->starved = true;
}

static bool queue_flush(struct io_flush_item *it)
{
	struct blk_queue *bq = (struct blk_queue *)((char *)it - offsetof(struct blk_queue, flush));
	vdev_flush_used(&bq->dev->vdev, bq->idx);
	if (bq->starved && bq->nfree) {
		bq->starved = false;
		queue_notify(bq->dev, bq->idx);
		vdev_flush_used(&bq->dev->vdev, bq->idx);
	}
	return false;
}

static uint64_t blk_features(void *be)
{
	struct blk_dev *dev = be;
	uint64_t f = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
		     VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	if (dev->p.read_only)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (dev->p.queues > 1)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	return f;
}

static void put16(uint8_t *b, unsigned off, uint16_t v) { v = htole16(v); memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, unsigned off, uint32_t v) { v = htole32(v); memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, unsigned off, uint64_t v) { v = htole64(v); memcpy(b + off, &v, 8); }

static void blk_get_config(void *be, uint8_t *cfg)
{
	struct blk_dev *dev = be;
	uint32_t per_block = dev->lim.blk_size / VIRTIO_BLK_SECTOR_SIZE;
	put64(cfg, VBLK_CFG_CAPACITY, dev->lim.capacity);
	put32(cfg, VBLK_CFG_SIZE_MAX, dev->size_max);
	put32(cfg, VBLK_CFG_SEG_MAX, dev->p.seg_max);
	put32(cfg, VBLK_CFG_BLK_SIZE, dev->lim.blk_size);
	put16(cfg, VBLK_CFG_NUM_QUEUES, (uint16_t)dev->p.queues);
	put32(cfg, VBLK_CFG_MAX_DISCARD_SECTORS, dev->lim.max_range_sectors);
	put32(cfg, VBLK_CFG_MAX_DISCARD_SEG, dev->lim.max_segments);
	put32(cfg, VBLK_CFG_DISCARD_ALIGN, per_block);
	put32(cfg, VBLK_CFG_MAX_WZ_SECTORS, dev->lim.max_range_sectors);
	put32(cfg, VBLK_CFG_MAX_WZ_SEG, dev->lim.max_segments);
	cfg[VBLK_CFG_WZ_MAY_UNMAP] = 1;
}

static unsigned ops_inflight(void *be)
{
	return ((struct blk_dev *)be)->inflight;
}

static void blk_reset(void *be)
{
	struct blk_dev *dev = be;
	for (unsigned i = 0; i < dev->p.queues; i++)
		dev->q[i].starved = false;
}

static const struct vdev_backend_ops blk_ops = {
	.features = blk_features,
	.get_config = blk_get_config,
	.queue_notify = queue_notify,
	.inflight = ops_inflight,
	.reset = blk_reset,
};

uint32_t blk_seg_max(uint64_t rw_size, uint32_t want)
{
	if (want)
		return want;
	uint64_t pages = rw_size / 4 / 4096;
	return pages >= 126 ? 126 : pages ? (uint32_t)pages : 1;
}

uint32_t blk_size_max(uint64_t rw_size, uint32_t seg_max)
{
	/* The driver bounces every request through the R/W section: keep the
	 * largest request (seg_max * size_max) to a quarter of it. */
	uint64_t seg = rw_size / 4 / (seg_max ? seg_max : 1);
	seg &= ~4095ull;
	return seg < 4096 ? 4096 : seg > (1u << 20) ? (1u << 20) : (uint32_t)seg;
}

int blk_layout_check(uint64_t rw_size, unsigned queues, uint16_t queue_size, uint32_t seg_max,
		     char *why, size_t why_len)
{
	struct dma_pool pool;
	seg_max = blk_seg_max(rw_size, seg_max);
	uint32_t size_max = blk_size_max(rw_size, seg_max);
	int r = dma_pool_init(&pool, rw_size, vdev_header_size(VBLK_CFG_SIZE));
	if (r < 0) {
		snprintf(why, why_len, "the link's R/W section (%llu bytes) cannot hold the header",
			 (unsigned long long)rw_size);
		return -ENOSPC;
	}
	bool ok = true;
	for (unsigned q = 0; ok && q < queues; q++)
		ok = dma_pool_alloc(&pool, dma_vring_bytes(queue_size)) != DMA_POOL_FULL;
	uint64_t rings = (uint64_t)pool.used * dma_pool_chunk(&pool);
	ok = ok && dma_pool_alloc(&pool, 16) != DMA_POOL_FULL &&
	     dma_pool_alloc(&pool, 16ull * (seg_max + 2)) != DMA_POOL_FULL &&
	     dma_pool_alloc(&pool, 1) != DMA_POOL_FULL;
	for (uint32_t i = 0; ok && i < seg_max; i++)
		ok = dma_pool_alloc(&pool, size_max) != DMA_POOL_FULL;
	dma_pool_destroy(&pool);
	if (ok)
		return 0;
	uint64_t req = 16ull * (seg_max + 2) + 2 * 64 + (uint64_t)seg_max * size_max;
	snprintf(why, why_len, "the cell's driver cannot work in the link's R/W section of %llu KiB: "
		 "%u ring(s) of %u entries take %llu KiB and one largest request (seg-max %u x "
		 "size-max %u KiB) needs %llu KiB more; lower queues, queue-size or seg-max, or give "
		 "the link more memory", (unsigned long long)(rw_size >> 10), queues, queue_size,
		 (unsigned long long)(rings >> 10), seg_max, size_max >> 10,
		 (unsigned long long)((req + 1023) >> 10));
	return -ENOSPC;
}

static int image_size(struct blk_dev *dev, uint64_t *bytes)
{
	struct stat st;
	if (fstat(dev->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(dev->fd, BLKGETSIZE64, bytes) < 0)
			return -errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static int open_image(struct blk_dev *dev, char *err, size_t err_len)
{
	snprintf(dev->image, sizeof(dev->image), "%s", dev->p.image);
	dev->fd = open(dev->p.image, (dev->p.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dev->fd < 0) {
		int e = -errno;
		snprintf(err, err_len, "cannot open image %s%s: %s", dev->p.image,
			 dev->p.read_only ? "" : " for writing", strerror(errno));
		return e;
	}
	struct stat st;
	if (fstat(dev->fd, &st) < 0)
		return -errno;
	dev->is_bdev = S_ISBLK(st.st_mode);
	uint64_t bytes;
	int r = image_size(dev, &bytes);
	if (r < 0) {
		snprintf(err, err_len, "image %s: not a regular file or block device", dev->p.image);
		return r;
	}
	uint32_t bs = dev->p.blk_size;
	if (!bs) {
		int ssz = 512;
		if (dev->is_bdev && ioctl(dev->fd, BLKSSZGET, &ssz) < 0)
			ssz = 512;
		bs = (uint32_t)ssz;
	}
	if (bs < 512 || (bs & (bs - 1)) || bs > 65536) {
		snprintf(err, err_len, "image %s: bad block size %u", dev->p.image, bs);
		return -EINVAL;
	}
	dev->lim.blk_size = bs;
	dev->lim.capacity = bytes / bs * (bs / VIRTIO_BLK_SECTOR_SIZE);
	if (bytes % bs)
		log_warn("%s: image size %llu is not a multiple of %u; the tail is not visible",
			 dev->p.name, (unsigned long long)bytes, bs);
	return 0;
}

int blk_open(const struct blk_params *params, struct ivshm_port *port, struct io_engine *eng,
	     struct blk_dev **ret, char *err, size_t err_len)
{
	struct blk_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->p = *params;
	dev->eng = eng;
	dev->fd = -1;
	int r = open_image(dev, err, err_len);
	if (r < 0)
		goto fail;
	dev->lim.read_only = params->read_only;
	dev->lim.max_segments = BLK_MAX_SEGMENTS;
	dev->lim.max_range_sectors = MAX_RANGE_SECTORS & ~(dev->lim.blk_size / 512 - 1);
	dev->p.seg_max = blk_seg_max(port->rw_size, params->seg_max);
	dev->size_max = blk_size_max(port->rw_size, dev->p.seg_max);
	r = blk_layout_check(port->rw_size, params->queues, params->queue_size, params->seg_max,
			     err, err_len);
	if (r < 0)
		goto fail;

	dev->q = calloc(params->queues, sizeof(*dev->q));
	if (!dev->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < params->queues; i++) {
		struct blk_queue *bq = &dev->q[i];
		bq->dev = dev;
		bq->idx = i;
		bq->flush.flush = queue_flush;
		bq->reqs = calloc(params->queue_size, sizeof(*bq->reqs));
		bq->free = calloc(params->queue_size, sizeof(*bq->free));
		if (!bq->reqs || !bq->free) {
			r = -ENOMEM;
			goto fail;
		}
		for (unsigned k = 0; k < params->queue_size; k++) {
			bq->reqs[k].bq = bq;
			bq->free[bq->nfree++] = &bq->reqs[k];
		}
	}
	r = vdev_init(&dev->vdev, params->name, port, VIRTIO_ID_BLOCK, &blk_ops, dev,
		      VBLK_CFG_SIZE, params->queues, params->queue_size);
	if (r < 0) {
		snprintf(err, err_len, "link %s is too small for the device header", port->name);
		goto fail;
	}
	*ret = dev;
	return 0;
fail:
	blk_close(dev);
	return r;
}

struct vdev *blk_vdev(struct blk_dev *dev)
{
	return &dev->vdev;
}

const struct blk_stats *blk_stats(const struct blk_dev *dev)
{
	return &dev->stats;
}

uint64_t blk_capacity(const struct blk_dev *dev)
{
	return dev->lim.capacity;
}

int blk_resize(struct blk_dev *dev)
{
	uint64_t bytes;
	if (dev->fd < 0)
		return -ENOMEDIUM;
	int r = image_size(dev, &bytes);
	if (r < 0)
		return r;
	uint32_t bs = dev->lim.blk_size;
	dev->lim.capacity = bytes / bs * (bs / VIRTIO_BLK_SECTOR_SIZE);
	vdev_config_changed(&dev->vdev);
	return 0;
}

const char *blk_image(const struct blk_dev *dev)
{
	return dev->fd >= 0 ? dev->image : "";
}

bool blk_read_only(const struct blk_dev *dev)
{
	return dev->p.read_only;
}

unsigned blk_inflight(const struct blk_dev *dev)
{
	return dev->inflight;
}

unsigned blk_queue_inflight(const struct blk_dev *dev, unsigned q)
{
	return q < dev->p.queues ? dev->p.queue_size - dev->q[q].nfree : 0;
}

int blk_change(struct blk_dev *dev, const char *image, char *err, size_t err_len)
{
	struct vdev *vd = &dev->vdev;
	bool in_use = vd->phase == VDEV_RUNNING && (vd->status & VIRTIO_STATUS_DRIVER_OK);
	if (in_use && !dev->p.read_only) {
		snprintf(err, err_len, "%s is a writable disk in use by the cell; swapping it under "
			 "a mounted file system would corrupt it (stop the cell first, or serve it "
			 "read-only)", dev->p.name);
		return -EBUSY;
	}
	if (dev->inflight) {
		snprintf(err, err_len, "%s has I/O in flight; try again", dev->p.name);
		return -EBUSY;
	}
	int fd = -1;
	if (image) {
		fd = open(image, (dev->p.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			int e = -errno;
			snprintf(err, err_len, "cannot open image %s%s: %s", image,
				 dev->p.read_only ? "" : " for writing", strerror(errno));
			return e;
		}
	}
	int old = dev->fd;
	dev->fd = fd;
	uint64_t bytes = 0;
	int r = fd >= 0 ? image_size(dev, &bytes) : 0;
	if (r < 0) {
		dev->fd = old;
		close(fd);
		snprintf(err, err_len, "image %s: not a regular file or block device", image);
		return r;
	}
	if (old >= 0) {
		if (!dev->p.read_only)
			fdatasync(old);
		close(old);
	}
	snprintf(dev->image, sizeof(dev->image), "%s", image ? image : "");
	uint32_t bs = dev->lim.blk_size;
	dev->lim.capacity = bytes / bs * (bs / VIRTIO_BLK_SECTOR_SIZE);
	vdev_config_changed(vd);
	log_info("%s: medium %s%s (%llu sectors)", dev->p.name, image ? "changed to " : "ejected",
		 image ? image : "", (unsigned long long)dev->lim.capacity);
	return 0;
}

void blk_close(struct blk_dev *dev)
{
	if (!dev)
		return;
	if (dev->fd >= 0 && !dev->p.read_only)
		fdatasync(dev->fd);   /* acknowledged writes reach the disk before exit */
	if (dev->q) {
		for (unsigned i = 0; i < dev->p.queues; i++) {
			free(dev->q[i].reqs);
			free(dev->q[i].free);
		}
		free(dev->q);
	}
	vdev_destroy(&dev->vdev);
	if (dev->fd >= 0)
		close(dev->fd);
	free(dev);
}
