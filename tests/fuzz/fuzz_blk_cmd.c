/* Fuzz target: virtio-blk request parsing and checking (backends/blk_cmd.c),
 * discard and write-zeroes ranges included.
 *
 * Input: the device limits (capacity, block size, read-only, ranges per
 * request, sectors per range), then the chain as the virtqueue hands it
 * over: readable and writable buffer counts, each buffer an offset and a
 * length inside a guarded 2-page region (the virtqueue has checked that
 * much), then the region's bytes (header, ranges, data).
 *
 * Oracles besides the sanitizers:
 *   - the region has PROT_NONE pages on both sides, and the parser writes
 *     nothing into it (it only reads);
 *   - the status byte is the last byte of the last non-empty writable
 *     buffer, and the data stops before it in that buffer;
 *   - data lies in writable buffers for IN and GET_ID (all of them but the
 *     status byte), in readable ones for OUT, DISCARD and WRITE_ZEROES (all
 *     of them but the 16-byte header), none for the other types, and adds
 *     up to data_len;
 *   - an accepted read or write is whole sectors, aligned to the block
 *     size, inside the capacity, and a write is refused on a read-only
 *     disk; accepted ranges are as many as the data holds, within the
 *     limits, inside the capacity, aligned, with allowed flags only.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/blk_cmd.h"
#include "core/le.h"
#include "tests/fuzz/fuzz.h"

#define REGION   (2 * 4096)
#define MAX_BUFS 24

static uint8_t *r, *copy;

/* Is [p, p + len) inside one of bufs[0..n)? */
static bool inside(const uint8_t *p, size_t len, const struct iovec *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *b = bufs[i].iov_base;
		if (p >= b && len <= bufs[i].iov_len && (size_t)(p - b) <= bufs[i].iov_len - len)
			return true;
	}
	return false;
}

static void check_aligned(uint64_t sector, uint64_t count, const struct blk_limits *lim)
{
	uint64_t per_block = lim->blk_size / 512;
	FZ_CHECK(sector <= lim->capacity && count <= lim->capacity - sector,
		 "sectors %llu+%llu accepted on a disk of %llu", (unsigned long long)sector,
		 (unsigned long long)count, (unsigned long long)lim->capacity);
	FZ_CHECK(sector % per_block == 0 && count % per_block == 0,
		 "sectors %llu+%llu accepted with blocks of %u", (unsigned long long)sector,
		 (unsigned long long)count, lim->blk_size);
}

static void check_accepted(const struct blk_cmd *cmd, const struct blk_limits *lim)
{
	switch (cmd->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		FZ_CHECK(cmd->type == VIRTIO_BLK_T_IN || !lim->read_only,
			 "a write on a read-only disk");
		FZ_CHECK(cmd->data_len % 512 == 0, "%llu bytes accepted",
			 (unsigned long long)cmd->data_len);
		check_aligned(cmd->sector, cmd->data_len / 512, lim);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		FZ_CHECK(!lim->read_only, "ranges on a read-only disk");
		FZ_CHECK(cmd->nranges > 0 && cmd->nranges <= lim->max_segments &&
			 cmd->nranges <= BLK_MAX_SEGMENTS && cmd->data_len == 16ull * cmd->nranges,
			 "%u ranges in %llu bytes, limit %u", cmd->nranges,
			 (unsigned long long)cmd->data_len, lim->max_segments);
		for (unsigned i = 0; i < cmd->nranges; i++) {
			const struct blk_range *g = &cmd->ranges[i];
			uint32_t allowed = cmd->type == VIRTIO_BLK_T_WRITE_ZEROES ? 1 : 0;
			FZ_CHECK(!(g->flags & ~allowed), "range flags 0x%x accepted", g->flags);
			FZ_CHECK(g->num_sectors <= lim->max_range_sectors,
				 "range of %u sectors, limit %u", g->num_sectors,
				 lim->max_range_sectors);
			check_aligned(g->sector, g->num_sectors, lim);
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		break;
	default:
		fz_fail(__FILE__, __LINE__, "known type", "type %u accepted", cmd->type);
	}
}

static void run(struct fz *f)
{
	/* One statement per field: the order in which an initializer list is
	 * evaluated is unspecified. */
	struct blk_limits lim;
	lim.capacity = fz_u8(f) < 32 ? fz_u64(f) : fz_u16(f);
	lim.blk_size = 512u << (fz_u8(f) % 8);
	lim.read_only = fz_u8(f) & 1;
	lim.max_segments = fz_u8(f) % 20;
	lim.max_range_sectors = fz_u8(f) < 32 ? fz_u32(f) : fz_u16(f);
	unsigned n_out = fz_u8(f) % (MAX_BUFS / 2), n_in = fz_u8(f) % (MAX_BUFS / 2);
	struct iovec iov[MAX_BUFS], orig[MAX_BUFS];
	for (unsigned i = 0; i < n_out + n_in; i++) {
		uint16_t off = fz_u16(f) % REGION;
		uint16_t len = fz_u16(f) % (REGION - off + 1);
		iov[i] = (struct iovec){ r + off, len };
	}
	memcpy(orig, iov, sizeof(iov));
	fz_bytes(f, r, REGION);
	memcpy(copy, r, REGION);

	struct blk_cmd cmd;
	int st = blk_cmd_parse(iov, n_out, n_in, &cmd);
	FZ_CHECK(memcmp(r, copy, REGION) == 0, "parsing wrote into the request");
	if (st < 0) {
		for (unsigned i = n_out; i < n_out + n_in; i++)
			FZ_CHECK(orig[i].iov_len == 0,
				 "no status byte, yet writable buffer %u has %zu", i, orig[i].iov_len);
		return;
	}
	/* The last byte of the last non-empty writable buffer. */
	unsigned last = n_out + n_in;
	while (orig[last - 1].iov_len == 0)
		last--;
	FZ_CHECK(cmd.status == (uint8_t *)orig[last - 1].iov_base + orig[last - 1].iov_len - 1,
		 "status byte at %td", cmd.status - r);
	if (st != VIRTIO_BLK_S_OK)
		return;
	bool to_device = cmd.type == VIRTIO_BLK_T_OUT || cmd.type == VIRTIO_BLK_T_DISCARD ||
			 cmd.type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t len = 0;
	for (unsigned i = 0; i < cmd.ndata; i++) {
		const uint8_t *p = cmd.data[i].iov_base;
		size_t n = cmd.data[i].iov_len;
		len += n;
		if (!n)
			continue;
		FZ_CHECK(to_device ? inside(p, n, orig, n_out) : inside(p, n, orig + n_out, n_in),
			 "data buffer %u (%td+%zu) in the wrong direction", i, p - r, n);
		/* The buffer the status came from is trimmed before it (other
		 * buffers may overlap it: the driver's business). */
		if (&cmd.data[i] == &iov[last - 1])
			FZ_CHECK(p + n <= cmd.status, "data buffer %u covers the status", i);
	}
	FZ_CHECK(len == cmd.data_len, "data_len %llu, buffers %llu",
		 (unsigned long long)cmd.data_len, (unsigned long long)len);
	/* The data is everything but the header (to the device) or the
	 * status byte (from it); no data for the other types. */
	uint64_t rd = 0, wr = 0;
	for (unsigned i = 0; i < n_out + n_in; i++)
		*(i < n_out ? &rd : &wr) += orig[i].iov_len;
	uint64_t want = to_device ? rd - 16 : cmd.type == VIRTIO_BLK_T_IN ||
		cmd.type == VIRTIO_BLK_T_GET_ID ? wr - 1 : 0;
	FZ_CHECK(cmd.data_len == want, "type %u: %llu bytes of data, %llu expected", cmd.type,
		 (unsigned long long)cmd.data_len, (unsigned long long)want);
	if (blk_cmd_check(&cmd, &lim) == VIRTIO_BLK_S_OK)
		check_accepted(&cmd, &lim);
	FZ_CHECK(memcmp(r, copy, REGION) == 0, "checking wrote into the request");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!r) {
		r = fz_map_guarded(REGION);
		copy = malloc(REGION);
		if (!copy)
			abort();
	}
	struct fz f = { data, size };
	run(&f);
	return 0;
}
