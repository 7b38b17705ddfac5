#include "backends/blk_req.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

uint64_t iov_to_buf(const struct iovec *iov, unsigned n, void *dst, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy((uint8_t *)dst + done, iov[i].iov_base, c);
		done += c;
	}
	return done;
}

uint64_t iov_from_buf(const struct iovec *iov, unsigned n, const void *src, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, (const uint8_t *)src + done, c);
		done += c;
	}
	return done;
}

unsigned iov_skip(struct iovec **piov, unsigned n, uint64_t bytes)
{
	struct iovec *iov = *piov;
	while (n && bytes) {
		if (bytes < iov->iov_len) {
			iov->iov_base = (uint8_t *)iov->iov_base + bytes;
			iov->iov_len -= bytes;
			break;
		}
		bytes -= iov->iov_len;
		iov++;
		n--;
	}
	*piov = iov;
	return n;
}

static uint64_t iov_len(const struct iovec *iov, unsigned n)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

int blk_parse(struct iovec *iov, unsigned n_out, unsigned n_in, struct blk_request *req)
{
	memset(req, 0, sizeof(*req));
	/* The status byte: the last byte of the last writable buffer. */
	struct iovec *in = iov + n_out;
	while (n_in && in[n_in - 1].iov_len == 0)
		n_in--;
	if (n_in == 0)
		return -EINVAL;
	struct iovec *last = &in[n_in - 1];
	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	last->iov_len--;
	if (last->iov_len == 0)
		n_in--;

	uint8_t hdr[VIRTIO_BLK_OUTHDR_SIZE];
	if (iov_to_buf(iov, n_out, hdr, sizeof(hdr)) < sizeof(hdr))
		return VIRTIO_BLK_S_IOERR;
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	req->type = le32toh(type);
	req->sector = le64toh(sector);

	struct iovec *out = iov;
	unsigned nout = iov_skip(&out, n_out, sizeof(hdr));
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		req->data = in;
		req->ndata = n_in;
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		req->data = out;
		req->ndata = nout;
		break;
	default:
		req->data = NULL;
		req->ndata = 0;
		break;
	}
	req->data_len = iov_len(req->data, req->ndata);
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

static int check_ranges(struct blk_request *req, const struct blk_limits *lim)
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
		uint64_t sector;
		uint32_t num, flags;
		memcpy(&sector, s, 8);
		memcpy(&num, s + 8, 4);
		memcpy(&flags, s + 12, 4);
		r->sector = le64toh(sector);
		r->num_sectors = le32toh(num);
		r->flags = le32toh(flags);
		if (r->flags & ~allowed)
			return VIRTIO_BLK_S_UNSUPP;
		if (r->num_sectors > lim->max_range_sectors || !range_ok(r->sector, r->num_sectors, lim))
			return VIRTIO_BLK_S_IOERR;
	}
	req->nranges = (unsigned)n;
	return VIRTIO_BLK_S_OK;
}

int blk_check(struct blk_request *req, const struct blk_limits *lim)
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
