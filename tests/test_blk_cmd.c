/* virtio-blk request parsing and checking (backends/blk_req.c): layouts,
 * range and alignment checks, discard / write-zeroes segments, iov helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "backends/blk_cmd.h"
#include "core/iov.h"

#define CAP 1000ull     /* capacity in sectors */

static uint8_t mem[4][8192];    /* buffers standing in for shared memory */
static struct blk_cmd req;

static struct blk_limits lim(void)
{
	return (struct blk_limits){ .capacity = CAP, .blk_size = 512, .read_only = false,
				    .max_segments = 4, .max_range_sectors = 256 };
}

static void put_hdr(uint8_t *p, uint32_t type, uint64_t sector)
{
	uint32_t t = htole32(type), z = 0;
	uint64_t s = htole64(sector);
	memcpy(p, &t, 4);
	memcpy(p + 4, &z, 4);
	memcpy(p + 8, &s, 8);
}

static void put_seg(uint8_t *p, uint64_t sector, uint32_t num, uint32_t flags)
{
	uint64_t s = htole64(sector);
	uint32_t n = htole32(num), f = htole32(flags);
	memcpy(p, &s, 8);
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &f, 4);
}

static int setup(void **state)
{
	memset(mem, 0xee, sizeof(mem));
	memset(&req, 0xcc, sizeof(req));
	return 0;
}

/* The classic three-descriptor layout: header | data | status. */
static int parse3(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
		  struct iovec *iov)
{
	put_hdr(mem[0], type, sector);
	iov[0] = (struct iovec){ mem[0], 16 };
	iov[1] = (struct iovec){ mem[1], data_len };
	iov[2] = (struct iovec){ mem[2], 1 };
	if (data_writable)
		return blk_cmd_parse(iov, 1, 2, &req);
	return blk_cmd_parse(iov, 2, 1, &req);
}

static int rw(uint32_t type, uint64_t sector, uint32_t len, const struct blk_limits *l)
{
	struct iovec iov[3];
	assert_int_equal(parse3(type, sector, len, type == VIRTIO_BLK_T_IN, iov), VIRTIO_BLK_S_OK);
	return blk_cmd_check(&req, l);
}

/* ---------------------------------------------------------------- parse */

static void test_parse_classic_read(void **state)
{
	struct iovec iov[3];
	assert_int_equal(parse3(VIRTIO_BLK_T_IN, 7, 1024, true, iov), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_IN);
	assert_int_equal(req.sector, 7);
	assert_ptr_equal(req.status, mem[2]);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
	assert_int_equal(req.data[0].iov_len, 1024);
	assert_int_equal(req.data_len, 1024);
	assert_int_equal(req.nranges, 0);
}

static void test_parse_classic_write(void **state)
{
	struct iovec iov[3];
	assert_int_equal(parse3(VIRTIO_BLK_T_OUT, 0x123456789aull, 512, false, iov), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_OUT);
	assert_int_equal(req.sector, 0x123456789aull);
	assert_ptr_equal(req.status, mem[2]);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
	assert_int_equal(req.data_len, 512);
}

static void test_parse_header_split(void **state)
{
	/* header over three descriptors (5 + 3 + 8), then data */
	put_hdr(mem[0], VIRTIO_BLK_T_OUT, 42);
	memcpy(mem[1], mem[0] + 5, 3);
	memcpy(mem[2], mem[0] + 8, 8);
	struct iovec iov[5] = {
		{ mem[0], 5 }, { mem[1], 3 }, { mem[2], 8 }, { mem[3], 1024 }, { mem[3] + 4096, 1 },
	};
	assert_int_equal(blk_cmd_parse(iov, 4, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_OUT);
	assert_int_equal(req.sector, 42);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[3]);
	assert_int_equal(req.data_len, 1024);
	assert_ptr_equal(req.status, mem[3] + 4096);

	/* header split in the middle of a descriptor that also carries data */
	setup(NULL);
	put_hdr(mem[0] + 100, VIRTIO_BLK_T_OUT, 9);
	memcpy(mem[1], mem[0] + 100 + 10, 6);
	struct iovec iov2[3] = { { mem[0] + 100, 10 }, { mem[1], 6 + 512 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov2, 2, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.sector, 9);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[1] + 6);
	assert_int_equal(req.data[0].iov_len, 512);
	assert_int_equal(req.data_len, 512);
}

static void test_parse_any_layout_header_and_data(void **state)
{
	/* write: header + data in one readable descriptor */
	put_hdr(mem[0], VIRTIO_BLK_T_OUT, 3);
	struct iovec iov[2] = { { mem[0], 16 + 1536 }, { mem[1], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 1, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.sector, 3);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[0] + 16);
	assert_int_equal(req.data_len, 1536);
	assert_int_equal(blk_cmd_check(&req, &(struct blk_limits){ .capacity = CAP, .blk_size = 512 }),
			 VIRTIO_BLK_S_OK);

	/* read: data + status in one writable descriptor */
	setup(NULL);
	put_hdr(mem[0], VIRTIO_BLK_T_IN, 0);
	struct iovec iov2[2] = { { mem[0], 16 }, { mem[1], 4096 + 1 } };
	assert_int_equal(blk_cmd_parse(iov2, 1, 1, &req), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.status, mem[1] + 4096);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
	assert_int_equal(req.data[0].iov_len, 4096);
	assert_int_equal(req.data_len, 4096);
}

static void test_parse_status_last_byte_of_larger_buffer(void **state)
{
	put_hdr(mem[0], VIRTIO_BLK_T_IN, 0);
	struct iovec iov[4] = { { mem[0], 16 }, { mem[1], 512 }, { mem[2], 700 }, { mem[3], 0 } };
	/* trailing empty writable buffer is not the status buffer */
	assert_int_equal(blk_cmd_parse(iov, 1, 3, &req), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.status, mem[2] + 699);
	assert_int_equal(req.data_len, 512 + 699);
	assert_int_equal(req.ndata, 2);
	/* 1211 bytes is not a whole number of sectors */
	struct blk_limits l = lim();
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_IOERR);
}

static void test_parse_no_writable_byte(void **state)
{
	put_hdr(mem[0], VIRTIO_BLK_T_OUT, 0);
	struct iovec iov[3] = { { mem[0], 16 }, { mem[1], 512 }, { mem[2], 0 } };
	assert_int_equal(blk_cmd_parse(iov, 2, 0, &req), -EINVAL);
	assert_int_equal(blk_cmd_parse(iov, 2, 1, &req), -EINVAL);   /* only an empty writable one */
	assert_null(req.status);
	/* a flush with no writable byte at all */
	put_hdr(mem[0], VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(blk_cmd_parse(iov, 1, 0, &req), -EINVAL);
	/* no descriptors */
	assert_int_equal(blk_cmd_parse(iov, 0, 0, &req), -EINVAL);
}

static void test_parse_short_header(void **state)
{
	put_hdr(mem[0], VIRTIO_BLK_T_IN, 0);
	struct iovec iov[3] = { { mem[0], 15 }, { mem[1], 512 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 1, 2, &req), VIRTIO_BLK_S_IOERR);
	/* the status byte is known, so the error can be reported */
	assert_ptr_equal(req.status, mem[2]);
	/* no readable bytes at all (blk_parse trims the status byte in place:
	 * rebuild the list) */
	struct iovec iov1[2] = { { mem[1], 512 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov1, 0, 2, &req), VIRTIO_BLK_S_IOERR);
	assert_ptr_equal(req.status, mem[2]);
	/* header in pieces that add up to less than 16 */
	struct iovec iov2[3] = { { mem[0], 8 }, { mem[0] + 8, 4 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov2, 2, 1, &req), VIRTIO_BLK_S_IOERR);
}

static void test_parse_flush_and_get_id(void **state)
{
	put_hdr(mem[0], VIRTIO_BLK_T_FLUSH, 0);
	struct iovec iov[2] = { { mem[0], 16 }, { mem[1], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 1, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_FLUSH);
	assert_int_equal(req.ndata, 0);
	assert_int_equal(req.data_len, 0);
	struct blk_limits l = lim();
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_OK);
	l.read_only = true;
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_OK);

	setup(NULL);
	put_hdr(mem[0], VIRTIO_BLK_T_GET_ID, 0);
	struct iovec iov2[2] = { { mem[0], 16 }, { mem[1], VIRTIO_BLK_ID_BYTES + 1 } };
	assert_int_equal(blk_cmd_parse(iov2, 1, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_GET_ID);
	assert_int_equal(req.ndata, 1);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
	assert_int_equal(req.data_len, VIRTIO_BLK_ID_BYTES);
	assert_ptr_equal(req.status, mem[1] + VIRTIO_BLK_ID_BYTES);
	l = lim();
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_OK);
}

/* Data in the wrong direction is an IOERR, and nothing points the device
 * at a readable buffer to write into (regression: an IN whose data buffer
 * the driver made device-readable "succeeded" with no data). */
static void test_parse_wrong_direction(void **state)
{
	struct iovec iov[3];
	/* IN with the data buffer device-readable */
	assert_int_equal(parse3(VIRTIO_BLK_T_IN, 0, 512, false, iov), VIRTIO_BLK_S_IOERR);
	assert_ptr_equal(req.status, mem[2]);           /* the status still goes out */
	/* GET_ID the same */
	assert_int_equal(parse3(VIRTIO_BLK_T_GET_ID, 0, 20, false, iov), VIRTIO_BLK_S_IOERR);
	/* OUT, DISCARD, WRITE_ZEROES with device-writable data */
	assert_int_equal(parse3(VIRTIO_BLK_T_OUT, 0, 512, true, iov), VIRTIO_BLK_S_IOERR);
	assert_int_equal(parse3(VIRTIO_BLK_T_DISCARD, 0, 16, true, iov), VIRTIO_BLK_S_IOERR);
	assert_int_equal(parse3(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, true, iov), VIRTIO_BLK_S_IOERR);
	/* the header and data in one readable buffer, for an IN: wrong too */
	put_hdr(mem[0], VIRTIO_BLK_T_IN, 0);
	iov[0] = (struct iovec){ mem[0], 16 + 512 };
	iov[1] = (struct iovec){ mem[2], 1 };
	assert_int_equal(blk_cmd_parse(iov, 1, 1, &req), VIRTIO_BLK_S_IOERR);
	/* the right way round still works, data exactly where it belongs */
	assert_int_equal(parse3(VIRTIO_BLK_T_IN, 0, 512, true, iov), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
	assert_int_equal(parse3(VIRTIO_BLK_T_OUT, 0, 512, false, iov), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.data[0].iov_base, mem[1]);
}

static void test_unknown_type(void **state)
{
	struct blk_limits l = lim();
	uint32_t types[] = { 2, 3, 5, 7, 9, 10, 12, 14, 0x80000000u, 0x80000001u, 0xffffffffu };
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct iovec iov[3];
		assert_int_equal(parse3(types[i], 0, 512, false, iov), VIRTIO_BLK_S_OK);
		assert_int_equal(req.type, types[i]);
		assert_int_equal(req.ndata, 0);
		assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_UNSUPP);
	}
}

/* ---------------------------------------------------------------- IN / OUT checks */

static void test_rw_ranges(void **state)
{
	struct blk_limits l = lim();
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 512, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 0, 512, &l), VIRTIO_BLK_S_OK);
	/* last sector */
	assert_int_equal(rw(VIRTIO_BLK_T_IN, CAP - 1, 512, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, CAP - 1, 512, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, CAP - 2, 1024, &l), VIRTIO_BLK_S_OK);
	/* one past */
	assert_int_equal(rw(VIRTIO_BLK_T_IN, CAP, 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, CAP, 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, CAP - 1, 1024, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, CAP + 1000, 512, &l), VIRTIO_BLK_S_IOERR);
	/* sector + length overflowing 64 bits */
	assert_int_equal(rw(VIRTIO_BLK_T_IN, UINT64_MAX, 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, UINT64_MAX - 1, 1024, &l), VIRTIO_BLK_S_IOERR);
	l.capacity = UINT64_MAX;
	assert_int_equal(rw(VIRTIO_BLK_T_IN, UINT64_MAX - 1, 1024, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, UINT64_MAX - 2, 1024, &l), VIRTIO_BLK_S_OK);
}

static void test_rw_length_not_sector_multiple(void **state)
{
	struct blk_limits l = lim();
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 511, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 513, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 0, 1, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 0, 4095, &l), VIRTIO_BLK_S_IOERR);
	/* in several buffers whose sum is a multiple: fine */
	put_hdr(mem[0], VIRTIO_BLK_T_OUT, 0);
	struct iovec iov[4] = { { mem[0], 16 }, { mem[1], 100 }, { mem[2], 412 }, { mem[3], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 3, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, 512);
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_OK);
}

static void test_rw_block_size_alignment(void **state)
{
	struct blk_limits l = lim();
	l.blk_size = 4096;
	l.capacity = 1024;      /* 128 blocks */
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 4096, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 8, 8192, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 1024 - 8, 4096, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 1, 4096, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 4, 4096, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 0, 4096 + 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 1024, 4096, &l), VIRTIO_BLK_S_IOERR);
}

static void test_rw_read_only(void **state)
{
	struct blk_limits l = lim();
	l.read_only = true;
	assert_int_equal(rw(VIRTIO_BLK_T_OUT, 0, 512, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(VIRTIO_BLK_T_IN, 0, 512, &l), VIRTIO_BLK_S_OK);
}

/* ---------------------------------------------------------------- DISCARD / WRITE_ZEROES */

/* header, then the segments in one readable buffer (or split), then status */
static int ranges_req(uint32_t type, unsigned nseg, const uint64_t *sector, const uint32_t *num,
		      const uint32_t *flags, uint32_t extra_bytes, const struct blk_limits *l)
{
	put_hdr(mem[0], type, 0);
	for (unsigned i = 0; i < nseg; i++)
		put_seg(mem[1] + 16 * i, sector[i], num[i], flags[i]);
	struct iovec iov[3] = { { mem[0], 16 }, { mem[1], 16 * nseg + extra_bytes }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 2, 1, &req), VIRTIO_BLK_S_OK);
	return blk_cmd_check(&req, l);
}

static void test_ranges_parsed(void **state)
{
	struct blk_limits l = lim();
	uint64_t s[3] = { 0, 100, CAP - 8 };
	uint32_t n[3] = { 8, 256, 8 };
	uint32_t f[3] = { 0, 0, 0 };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 3, s, n, f, 0, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(req.nranges, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(req.ranges[i].sector, s[i]);
		assert_int_equal(req.ranges[i].num_sectors, n[i]);
		assert_int_equal(req.ranges[i].flags, 0);
	}
	uint32_t fu[3] = { VIRTIO_BLK_WZ_FLAG_UNMAP, 0, VIRTIO_BLK_WZ_FLAG_UNMAP };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 3, s, n, fu, 0, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(req.nranges, 3);
	assert_int_equal(req.ranges[0].flags, VIRTIO_BLK_WZ_FLAG_UNMAP);
	assert_int_equal(req.ranges[1].flags, 0);
	assert_int_equal(req.ranges[2].sector, CAP - 8);
}

static void test_ranges_split_across_buffers(void **state)
{
	/* header and the first half of a segment in one buffer, rest in the next */
	put_hdr(mem[0], VIRTIO_BLK_T_WRITE_ZEROES, 0);
	put_seg(mem[0] + 16, 0x1234, 77, VIRTIO_BLK_WZ_FLAG_UNMAP);
	memcpy(mem[1], mem[0] + 16 + 5, 11);
	struct iovec iov[3] = { { mem[0], 16 + 5 }, { mem[1], 11 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 2, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, 16);
	struct blk_limits l = lim();
	l.capacity = 0x10000;
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(req.nranges, 1);
	assert_int_equal(req.ranges[0].sector, 0x1234);
	assert_int_equal(req.ranges[0].num_sectors, 77);
	assert_int_equal(req.ranges[0].flags, VIRTIO_BLK_WZ_FLAG_UNMAP);
}

static void test_ranges_too_many_segments(void **state)
{
	struct blk_limits l = lim();       /* max_segments 4 */
	uint64_t s[BLK_MAX_SEGMENTS + 1] = { 0 };
	uint32_t n[BLK_MAX_SEGMENTS + 1], f[BLK_MAX_SEGMENTS + 1] = { 0 };
	for (unsigned i = 0; i <= BLK_MAX_SEGMENTS; i++)
		n[i] = 1;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 4, s, n, f, 0, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 5, s, n, f, 0, &l), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 5, s, n, f, 0, &l), VIRTIO_BLK_S_UNSUPP);
	/* the compile-time cap holds even when the limit claims more */
	l.max_segments = 1000;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, BLK_MAX_SEGMENTS, s, n, f, 0, &l), VIRTIO_BLK_S_OK);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, BLK_MAX_SEGMENTS + 1, s, n, f, 0, &l),
			 VIRTIO_BLK_S_UNSUPP);
	/* a huge segment count (data far beyond the private buffer) */
	put_hdr(mem[0], VIRTIO_BLK_T_DISCARD, 0);
	struct iovec iov[3] = { { mem[0], 16 }, { mem[1], 8192 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 2, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_UNSUPP);
}

static void test_ranges_flags(void **state)
{
	struct blk_limits l = lim();
	uint64_t s[2] = { 0, 8 };
	uint32_t n[2] = { 8, 8 };
	uint32_t unmap[2] = { 0, VIRTIO_BLK_WZ_FLAG_UNMAP };
	uint32_t unknown[2] = { 0, 2 };
	uint32_t high[2] = { 0x80000000u, 0 };
	/* UNMAP only for write-zeroes */
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 2, s, n, unmap, 0, &l), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 2, s, n, unmap, 0, &l), VIRTIO_BLK_S_OK);
	/* unknown flags */
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 2, s, n, unknown, 0, &l), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 2, s, n, unknown, 0, &l), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 2, s, n, high, 0, &l), VIRTIO_BLK_S_UNSUPP);
	uint32_t both[2] = { VIRTIO_BLK_WZ_FLAG_UNMAP | 4, 0 };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 2, s, n, both, 0, &l), VIRTIO_BLK_S_UNSUPP);
}

static void test_ranges_out_of_capacity(void **state)
{
	struct blk_limits l = lim();
	uint32_t f[1] = { 0 };
	uint64_t s[1];
	uint32_t n[1];
	s[0] = CAP - 8; n[0] = 8;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_OK);
	s[0] = CAP - 8; n[0] = 9;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	s[0] = CAP; n[0] = 1;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	s[0] = UINT64_MAX; n[0] = 2;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	/* a bad range after a good one fails the whole request */
	uint64_t s2[2] = { 0, CAP };
	uint32_t n2[2] = { 1, 1 }, f2[2] = { 0, 0 };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 2, s2, n2, f2, 0, &l), VIRTIO_BLK_S_IOERR);
	/* more sectors than max_range_sectors in one range */
	s[0] = 0; n[0] = 257;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	/* block-size alignment applies to ranges too */
	l.blk_size = 4096;
	s[0] = 8; n[0] = 8;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_OK);
	s[0] = 4; n[0] = 8;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	s[0] = 8; n[0] = 4;
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
}

static void test_ranges_read_only(void **state)
{
	struct blk_limits l = lim();
	l.read_only = true;
	uint64_t s[1] = { 0 };
	uint32_t n[1] = { 8 }, f[1] = { 0 };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
}

static void test_ranges_bad_length(void **state)
{
	struct blk_limits l = lim();
	uint64_t s[1] = { 0 };
	uint32_t n[1] = { 8 }, f[1] = { 0 };
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 1, s, n, f, 1, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1, s, n, f, 15, &l), VIRTIO_BLK_S_IOERR);
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 0, s, n, f, 8, &l), VIRTIO_BLK_S_IOERR);
	/* no segment at all */
	assert_int_equal(ranges_req(VIRTIO_BLK_T_DISCARD, 0, s, n, f, 0, &l), VIRTIO_BLK_S_IOERR);
	put_hdr(mem[0], VIRTIO_BLK_T_WRITE_ZEROES, 0);
	struct iovec iov[2] = { { mem[0], 16 }, { mem[2], 1 } };
	assert_int_equal(blk_cmd_parse(iov, 1, 1, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_cmd_check(&req, &l), VIRTIO_BLK_S_IOERR);
}

/* ---------------------------------------------------------------- iov helpers */

static void test_iov_skip(void **state)
{
	uint8_t a[10], b[20], c[30];
	struct iovec v[4] = { { a, 10 }, { b, 20 }, { c, 30 }, { NULL, 0 } };
	struct iovec *p = v;
	/* nothing */
	assert_int_equal(iov_skip(&p, 3, 0), 3);
	assert_ptr_equal(p, v);
	assert_int_equal(v[0].iov_len, 10);
	/* inside the first */
	assert_int_equal(iov_skip(&p, 3, 4), 3);
	assert_ptr_equal(p, v);
	assert_ptr_equal(p[0].iov_base, a + 4);
	assert_int_equal(p[0].iov_len, 6);
	/* exactly the rest of the first: it is dropped */
	assert_int_equal(iov_skip(&p, 3, 6), 2);
	assert_ptr_equal(p, v + 1);
	assert_ptr_equal(p[0].iov_base, b);
	assert_int_equal(p[0].iov_len, 20);
	/* across a boundary */
	assert_int_equal(iov_skip(&p, 2, 25), 1);
	assert_ptr_equal(p, v + 2);
	assert_ptr_equal(p[0].iov_base, c + 5);
	assert_int_equal(p[0].iov_len, 25);
	/* more than what is left */
	assert_int_equal(iov_skip(&p, 1, 1000), 0);
	assert_ptr_equal(p, v + 3);
	/* empty list */
	assert_int_equal(iov_skip(&p, 0, 5), 0);
	/* leading empty buffers are stepped over */
	struct iovec w[3] = { { a, 0 }, { NULL, 0 }, { b, 20 } };
	p = w;
	assert_int_equal(iov_skip(&p, 3, 3), 1);
	assert_ptr_equal(p, w + 2);
	assert_ptr_equal(p[0].iov_base, b + 3);
	assert_int_equal(p[0].iov_len, 17);
	/* exactly all of it */
	struct iovec x[2] = { { a, 10 }, { b, 20 } };
	p = x;
	assert_int_equal(iov_skip(&p, 2, 30), 0);
	assert_ptr_equal(p, x + 2);
}

static void test_iov_to_from_buf(void **state)
{
	uint8_t a[3], b[0 + 1], c[5];
	struct iovec v[3] = { { a, 3 }, { b, 0 }, { c, 5 } };
	uint8_t src[16], dst[16];
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0x10 + i);
	/* scatter: more than fits -> only 8 */
	assert_int_equal(iov_from_buf(v, 3, src, 16), 8);
	assert_memory_equal(a, src, 3);
	assert_memory_equal(c, src + 3, 5);
	/* gather back */
	memset(dst, 0, sizeof(dst));
	assert_int_equal(iov_to_buf(v, 3, dst, 16), 8);
	assert_memory_equal(dst, src, 8);
	/* partial: stops inside the last buffer, does not write past len */
	memset(dst, 0xaa, sizeof(dst));
	assert_int_equal(iov_to_buf(v, 3, dst, 5), 5);
	assert_memory_equal(dst, src, 5);
	assert_int_equal(dst[5], 0xaa);
	/* partial scatter leaves the rest alone */
	memset(a, 0, 3);
	memset(c, 0, 5);
	assert_int_equal(iov_from_buf(v, 3, src, 4), 4);
	assert_memory_equal(a, src, 3);
	assert_int_equal(c[0], src[3]);
	assert_int_equal(c[1], 0);
	/* zero length, zero buffers */
	assert_int_equal(iov_to_buf(v, 3, dst, 0), 0);
	assert_int_equal(iov_from_buf(v, 3, src, 0), 0);
	assert_int_equal(iov_to_buf(v, 0, dst, 16), 0);
	assert_int_equal(iov_from_buf(NULL, 0, src, 16), 0);
	/* n limits how many buffers are used */
	assert_int_equal(iov_to_buf(v, 1, dst, 16), 3);
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_parse_classic_read),
		T(test_parse_classic_write),
		T(test_parse_header_split),
		T(test_parse_any_layout_header_and_data),
		T(test_parse_status_last_byte_of_larger_buffer),
		T(test_parse_no_writable_byte),
		T(test_parse_short_header),
		T(test_parse_flush_and_get_id),
		T(test_parse_wrong_direction),
		T(test_unknown_type),
		T(test_rw_ranges),
		T(test_rw_length_not_sector_multiple),
		T(test_rw_block_size_alignment),
		T(test_rw_read_only),
		T(test_ranges_parsed),
		T(test_ranges_split_across_buffers),
		T(test_ranges_too_many_segments),
		T(test_ranges_flags),
		T(test_ranges_out_of_capacity),
		T(test_ranges_read_only),
		T(test_ranges_bad_length),
		T(test_iov_skip),
		T(test_iov_to_from_buf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
