#include "backends/blk.h"

#include <ctype.h>
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

#include "backends/blk_cmd.h"
#include "backends/virtio_blk.h"
#include "core/container_of.h"
#include "core/dma_pool.h"
#include "core/le.h"
#include "core/iov.h"
#include "core/log.h"
#include "core/shm.h"

#define MAX_RANGE_SECTORS (UINT32_MAX >> 9)

/* The per-request area of a transport slot (vdev_backend_ops.req_size). */
struct blk_io {
	struct io_op op;
	struct blk_dev *dev;
	struct blk_cmd cmd;
	uint64_t done;              /* bytes transferred so far (short I/O) */
	unsigned pending;           /* SQEs in flight */
	bool zero_range;            /* its write-zeroes SQEs used FALLOC_FL_ZERO_RANGE */
	bool retry;                 /* resubmit the ranges without ZERO_RANGE */
	int status;
	uint32_t used_len;          /* data bytes written for the driver */
};

struct blk_dev {
	struct vdev vdev;
	struct blk_params p;
	struct io_engine *eng;
	int fd;                     /* -1 when the medium is ejected or null */
	bool null_medium;           /* "null:SIZE": no file, every request done at once */
	char image[4096];
	unsigned generation;        /* bumped when the medium changes */
	bool is_bdev;
	bool no_zero_range;         /* the file system lacks FALLOC_FL_ZERO_RANGE */
	struct blk_limits lim;
	uint32_t size_max;
	struct vdev_backend_ops ops;
	struct blk_stats stats;
	uint64_t logged_errors;
};

static const char *cmd_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN: return "read";
	case VIRTIO_BLK_T_OUT: return "write";
	case VIRTIO_BLK_T_FLUSH: return "flush";
	case VIRTIO_BLK_T_DISCARD: return "discard";
	case VIRTIO_BLK_T_WRITE_ZEROES: return "write-zeroes";
	default: return "request";
	}
}

/* Answer the request: status byte, then the transport's used entry (the
 * status byte counts as written, and read data when it succeeded). */
static void finish(struct blk_io *io, int status)
{
	uint32_t written = 0;
	if (io->cmd.status) {
		shm_st8(io->cmd.status, 0, (uint8_t)status);
		written = 1 + (status == VIRTIO_BLK_S_OK ? io->used_len : 0);
	}
	vdev_complete(vreq_of_priv(io), written);
}

static void io_failed(struct blk_dev *dev, struct blk_io *io, int res)
{
	dev->stats.errors[io->cmd.type == VIRTIO_BLK_T_IN ? 0 : 1]++;
	if (dev->logged_errors++ < 10)
		log_err("%s: I/O error on %s at sector %llu: %s", dev->p.name, cmd_name(io->cmd.type),
			(unsigned long long)io->cmd.sector, strerror(-res));
}

static bool submit_rw(struct blk_dev *dev, struct blk_io *io);
static bool submit_ranges(struct blk_dev *dev, struct blk_io *io);

static void op_done(struct io_op *op, int res)
{
	struct blk_io *io = container_of(op, struct blk_io, op);
	struct blk_dev *dev = io->dev;
	uint32_t type = io->cmd.type;
	io->pending--;
	if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT) {
		if (res == -EAGAIN || res == -EINTR) {
			res = 0;    /* retry the same range */
		} else if (res > 0) {
			io->done += (uint64_t)res;
			io->cmd.ndata = iov_skip(&io->cmd.data, io->cmd.ndata, (uint64_t)res);
		} else if (res == 0) {
			res = -ENODATA;   /* the file ended under us */
		}
		if (res >= 0 && io->done < io->cmd.data_len) {
			if (submit_rw(dev, io))
				return;     /* the rest of a short transfer */
			res = -EIO;
		}
		if (res < 0) {
			io_failed(dev, io, res);
			io->status = VIRTIO_BLK_S_IOERR;
		}
	} else if (res == -EOPNOTSUPP && type == VIRTIO_BLK_T_DISCARD) {
		/* Discard is a hint: a file system without hole punching keeps
		 * the data, which the virtio spec allows. */
	} else if (res == -EOPNOTSUPP && type == VIRTIO_BLK_T_WRITE_ZEROES && io->zero_range) {
		/* e.g. tmpfs: every range of this request is redone with punch +
		 * allocate once all its SQEs are back, and so are later ones. */
		dev->no_zero_range = true;
		io->retry = true;
	} else if (res < 0) {
		io_failed(dev, io, res);
		io->status = VIRTIO_BLK_S_IOERR;
	}
	if (io->pending)
		return;
	if (io->retry && io->status == VIRTIO_BLK_S_OK) {
		io->retry = false;
		if (submit_ranges(dev, io))
			return;
		io->status = VIRTIO_BLK_S_IOERR;
		if (io->pending)
			return;
	}
	finish(io, io->status);
}

/* Queue n operations (a chain when n > 1) for the request. */
static bool queue_ops(struct blk_dev *dev, struct blk_io *io, const struct io_req *req,
		      unsigned n)
{
	if (io_engine_queue(dev->eng, &io->op, req, n) < 0)
		return false;
	io->pending += n;
	return true;
}

/* (Re)submit the part of a read or write not transferred yet: cmd.data has
 * already been advanced past what is done. */
static bool submit_rw(struct blk_dev *dev, struct blk_io *io)
{
	struct io_req rq = {
		.opcode = io->cmd.type == VIRTIO_BLK_T_IN ? IO_READV : IO_WRITEV,
		.fd = dev->fd,
		.iov = io->cmd.data,
		.niov = io->cmd.ndata,
		.off = io->cmd.sector * VIRTIO_BLK_SECTOR_SIZE + io->done,
	};
	return queue_ops(dev, io, &rq, 1);
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

static bool submit_ranges(struct blk_dev *dev, struct blk_io *io)
{
	io->zero_range = false;
	for (unsigned i = 0; i < io->cmd.nranges; i++) {
		const struct blk_range *rg = &io->cmd.ranges[i];
		if (rg->num_sectors == 0)
			continue;
		struct io_req rq = {
			.opcode = IO_FALLOCATE,
			.fd = dev->fd,
			.off = rg->sector * VIRTIO_BLK_SECTOR_SIZE,
			.len = (uint64_t)rg->num_sectors * VIRTIO_BLK_SECTOR_SIZE,
			.mode = fallocate_mode(dev, io->cmd.type, rg->flags),
		};
		bool fallback = (rq.mode & FALLOC_FL_ZERO_RANGE) && dev->no_zero_range;
		if (!fallback) {
			io->zero_range |= (rq.mode & FALLOC_FL_ZERO_RANGE) != 0;
			if (!queue_ops(dev, io, &rq, 1))
				return false;
			continue;
		}
		/* Zeroes that stay allocated: punch the range, then allocate it
		 * (a chain: the allocation starts once the punch is done). */
		struct io_req chain[2] = { rq, rq };
		chain[0].mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		chain[1].mode = FALLOC_FL_KEEP_SIZE;
		if (!queue_ops(dev, io, chain, 2))
			return false;
	}
	return true;
}

static void answer_get_id(struct blk_dev *dev, struct blk_io *io)
{
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };
	memcpy(id, dev->p.serial, strnlen(dev->p.serial, sizeof(id)));
	uint64_t n = io->cmd.data_len < sizeof(id) ? io->cmd.data_len : sizeof(id);
	io->used_len = (uint32_t)iov_from_buf(io->cmd.data, io->cmd.ndata, id, n);
}

/* The transport hands us a request: parse, check, start its I/O. */
static void blk_submit(void *be, struct vreq *req)
{
	struct blk_dev *dev = be;
	struct blk_io *io = vreq_priv(req);
	io->op.complete = op_done;
	io->dev = dev;
	io->done = 0;
	io->pending = 0;
	io->used_len = 0;
	io->retry = false;
	io->status = VIRTIO_BLK_S_OK;
	int st = blk_cmd_parse(req->iov, req->n_out, req->n_in, &io->cmd);
	if (st < 0) {
		vdev_complete(req, 0);      /* nowhere to put a status */
		return;
	}
	if (st == VIRTIO_BLK_S_OK)
		st = blk_cmd_check(&io->cmd, &dev->lim);
	int dir = io->cmd.type == VIRTIO_BLK_T_IN ? 0 : 1;
	if (st != VIRTIO_BLK_S_OK) {
		if (st == VIRTIO_BLK_S_UNSUPP)
			dev->stats.unsupported++;
		else
			dev->stats.errors[dir]++;
		finish(io, st);
		return;
	}
	bool ok = true;
	switch (io->cmd.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		dev->stats.reqs[dir]++;
		dev->stats.bytes[dir] += io->cmd.data_len;
		if (io->cmd.type == VIRTIO_BLK_T_IN)
			io->used_len = (uint32_t)io->cmd.data_len;
		if (io->cmd.data_len == 0 || dev->null_medium) {
			finish(io, VIRTIO_BLK_S_OK);
			return;
		}
		ok = submit_rw(dev, io);
		break;
	case VIRTIO_BLK_T_FLUSH: {
		dev->stats.flushes++;
		if (dev->fd < 0) {
			finish(io, VIRTIO_BLK_S_OK);
			return;
		}
		struct io_req rq = { .opcode = IO_FDATASYNC, .fd = dev->fd };
		ok = queue_ops(dev, io, &rq, 1);
		break;
	}
	case VIRTIO_BLK_T_GET_ID:
		dev->stats.get_ids++;
		answer_get_id(dev, io);
		finish(io, VIRTIO_BLK_S_OK);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (io->cmd.type == VIRTIO_BLK_T_DISCARD)
			dev->stats.discards++;
		else
			dev->stats.write_zeroes++;
		ok = dev->null_medium || submit_ranges(dev, io);
		break;
	}
	if (io->pending) {
		if (!ok)
			io->status = VIRTIO_BLK_S_IOERR;   /* finish when the rest lands */
		return;
	}
	finish(io, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
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


static void blk_get_config(void *be, uint8_t *cfg)
{
	struct blk_dev *dev = be;
	uint32_t per_block = dev->lim.blk_size / VIRTIO_BLK_SECTOR_SIZE;
	put_le64(cfg, VBLK_CFG_CAPACITY, dev->lim.capacity);
	put_le32(cfg, VBLK_CFG_SIZE_MAX, dev->size_max);
	put_le32(cfg, VBLK_CFG_SEG_MAX, dev->p.seg_max);
	put_le32(cfg, VBLK_CFG_BLK_SIZE, dev->lim.blk_size);
	put_le16(cfg, VBLK_CFG_NUM_QUEUES, (uint16_t)dev->p.queues);
	put_le32(cfg, VBLK_CFG_MAX_DISCARD_SECTORS, dev->lim.max_range_sectors);
	put_le32(cfg, VBLK_CFG_MAX_DISCARD_SEG, dev->lim.max_segments);
	put_le32(cfg, VBLK_CFG_DISCARD_ALIGN, per_block);
	put_le32(cfg, VBLK_CFG_MAX_WZ_SECTORS, dev->lim.max_range_sectors);
	put_le32(cfg, VBLK_CFG_MAX_WZ_SEG, dev->lim.max_segments);
	cfg[VBLK_CFG_WZ_MAY_UNMAP] = 1;
}

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

/* "null:SIZE" (blk.h): 1 and the size in bytes, 0 for any other name,
 * -EINVAL (the reason in err) for a null disk of a bad size.  The same
 * rules as the config's (config.c), which refuses a bad one first. */
static int null_size(const char *image, uint64_t *bytes, char *err, size_t err_len)
{
	static const char prefix[] = "null:";
	if (strncmp(image, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	const char *v = image + sizeof(prefix) - 1;
	char *end = NULL;
	unsigned long long x = 0;
	unsigned shift = 0;
	errno = 0;
	if (isdigit((unsigned char)*v))
		x = strtoull(v, &end, 0);
	if (end && (*end == 'K' || *end == 'k'))
		shift = 10, end++;
	else if (end && (*end == 'M' || *end == 'm'))
		shift = 20, end++;
	else if (end && (*end == 'G' || *end == 'g'))
		shift = 30, end++;
	if (!end || errno || *end || x == 0 || x > (UINT64_MAX >> shift) ||
	    (x << shift) % VIRTIO_BLK_SECTOR_SIZE) {
		snprintf(err, err_len, "image %s: the null disk needs a size in bytes, a multiple "
			 "of 512, like null:1G", image);
		return -EINVAL;
	}
	*bytes = (uint64_t)x << shift;
	return 1;
}

static int open_image(struct blk_dev *dev, char *err, size_t err_len)
{
	snprintf(dev->image, sizeof(dev->image), "%s", dev->p.image);
	uint64_t bytes;
	int r = null_size(dev->p.image, &bytes, err, err_len);
	if (r < 0)
		return r;
	dev->null_medium = r == 1;
	if (!dev->null_medium) {
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
		r = image_size(dev, &bytes);
		if (r < 0) {
			snprintf(err, err_len, "image %s: not a regular file or block device",
				 dev->p.image);
			return r;
		}
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

	dev->ops = (struct vdev_backend_ops){
		.req_size = sizeof(struct blk_io),
		/* header and status around seg_max data segments */
		.max_segments = dev->p.seg_max + 2,
		.features = blk_features,
		.get_config = blk_get_config,
		.submit = blk_submit,
	};
	r = vdev_init(&dev->vdev, params->name, port, eng->tick, VIRTIO_ID_BLOCK, &dev->ops, dev,
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
	if (dev->null_medium)
		return 0;       /* its size is its name */
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
	return dev->fd >= 0 || dev->null_medium ? dev->image : "";
}

unsigned blk_generation(const struct blk_dev *dev)
{
	return dev ? dev->generation : 0;
}

bool blk_read_only(const struct blk_dev *dev)
{
	return dev->p.read_only;
}

unsigned blk_inflight(const struct blk_dev *dev)
{
	return dev->vdev.inflight;
}

int blk_change(struct blk_dev *dev, const char *image, char *err, size_t err_len)
{
	struct vdev *vd = &dev->vdev;
	bool in_use = vdev_driver_live(vd);
	if (in_use && !dev->p.read_only) {
		snprintf(err, err_len, "%s is a writable disk in use by the cell; swapping it under "
			 "a mounted file system would corrupt it (stop the cell first, or serve it "
			 "read-only)", dev->p.name);
		return -EBUSY;
	}
	if (vd->inflight) {
		snprintf(err, err_len, "%s has I/O in flight; try again", dev->p.name);
		return -EBUSY;
	}
	uint64_t bytes = 0;
	int null = image ? null_size(image, &bytes, err, err_len) : 0;
	if (null < 0)
		return null;
	int fd = -1;
	if (image && !null) {
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
	dev->null_medium = null == 1;
	dev->generation++;
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
	vdev_destroy(&dev->vdev);
	if (dev->fd >= 0)
		close(dev->fd);
	free(dev);
}
