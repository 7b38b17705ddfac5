#include "backends/blk_cmd.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "core/iov.h"
#include "core/le.h"

int blk_cmd_parse(struct iovec *iov, unsigned n_out, unsigned n_in, struct blk_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	/* The status byte: the last byte of the last writable buffer. */
	struct iovec *in = iov + n_out;
	while (n_in && in[n_in - 1].iov_len == 0)
		n_in--;
	if (n_in == 0)
		return -EINVAL;
	struct iovec *last = &in[n_in - 1];
	cmd->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	last->iov_len--;
	if (last->iov_len == 0)
		n_in--;

	uint8_t hdr[VIRTIO_BLK_OUTHDR_SIZE];
	if (iov_to_buf(iov, n_out, hdr, sizeof(hdr)) < sizeof(hdr))
		return VIRTIO_BLK_S_IOERR;
	cmd->type = le32(hdr, 0);
	cmd->sector = le64(hdr, 8);

	struct iovec *out = iov;
	unsigned nout = iov_skip(&out, n_out, sizeof(hdr));
	uint64_t out_len = iov_len(out, nout), in_len = iov_len(in, n_in);
	switch (cmd->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		/* Data the device writes: readable bytes past the header would
		 * be data in the wrong direction. */
		if (out_len)
			return VIRTIO_BLK_S_IOERR;
		cmd->data = in;
		cmd->ndata = n_in;
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (in_len)
			return VIRTIO_BLK_S_IOERR;
		cmd->data = out;
		cmd->ndata = nout;
		break;
	default:
		cmd->data = NULL;
		cmd->ndata = 0;
		break;
	}
	cmd->data_len = iov_len(cmd->data, cmd->ndata);
	return VIRTIO_BLK_S_OK;
}

/* Is [sector, sector+count) inside the disk and aligned to its blocks? */
static bool range_ok(uint64_t sector, uint64_t count, const struct blk_limits *lim)
{
	uint64_t per_block = lim->blk_size / VIRTIO_BLK_SECTOR_SIZE;
	if (sector > lim->capacity || count > lim->capacity - sector)
		return false;
	return (sector % per_block) == 0 && (count % per_block) == 0;
}

static int check_ranges(struct blk_cmd *req, const struct blk_limits *lim)
{
	if (req->data_len == 0 || req->data_len % VIRTIO_BLK_SEGMENT_SIZE)
		return VIRTIO_BLK_S_IOERR;
	uint64_t n = req->data_len / VIRTIO_BLK_SEGMENT_SIZE;
	if (n > lim->max_segments || n > BLK_MAX_SEGMENTS)
		return VIRTIO_BLK_S_UNSUPP;
	uint8_t raw[BLK_MAX_SEGMENTS * VIRTIO_BLK_SEGMENT_SIZE];
	iov_to_buf(req->data, req->ndata, raw, req->data_len);
	uint32_t allowed = req->type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WZ_FLAG_UNMAP : 0;
	for (uint64_t i = 0; i < n; i++) {
		struct blk_range *r = &req->ranges[i];
		const uint8_t *s = raw + i * VIRTIO_BLK_SEGMENT_SIZE;
		r->sector = le64(s, 0);
		r->num_sectors = le32(s, 8);
		r->flags = le32(s, 12);
		if (r->flags & ~allowed)
			return VIRTIO_BLK_S_UNSUPP;
		if (r->num_sectors > lim->max_range_sectors || !range_ok(r->sector, r->num_sectors, lim))
			return VIRTIO_BLK_S_IOERR;
	}
	req->nranges = (unsigned)n;
	return VIRTIO_BLK_S_OK;
}

int blk_cmd_check(struct blk_cmd *req, const struct blk_limits *lim)
{
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (req->type == VIRTIO_BLK_T_OUT && lim->read_only)
			return VIRTIO_BLK_S_IOERR;
		if (req->data_len % VIRTIO_BLK_SECTOR_SIZE)
			return VIRTIO_BLK_S_IOERR;
		if (!range_ok(req->sector, req->data_len / VIRTIO_BLK_SECTOR_SIZE, lim))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (lim->read_only)
			return VIRTIO_BLK_S_IOERR;
		return check_ranges(req, lim);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}
