/* End-to-end tests: the real daemon serving disks over software IVSHMEM
 * links, driven by the userspace front-end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "core/virtqueue.h"
#include "tests/frontend/fe_blk.h"
#include "tests/frontend/fe_console.h"
#include "tests/harness.h"

#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;
	char conf[4096];
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

/* Two disks, disk0 seeded with data, disk1 zero; extra lines per disk. */
static void start_two(struct fixture *fx, const char *extra0, const char *extra1)
{
	assert_int_equal(harness_mkdir(&fx->d), 0);
	assert_int_equal(harness_image(path(fx, "a.img", 0), 16 * MiB, 7), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 8 * MiB, 0), 0);
	snprintf(fx->conf, sizeof(fx->conf),
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s/a.img\nserial = SERIAL-0\n%s\n"
		 "[block disk1]\nsim = %s/disk1.sock\nimage = %s/b.img\n%s\n",
		 fx->d.dir, fx->d.dir, extra0, fx->d.dir, fx->d.dir, extra1);
	assert_int_equal(harness_start(&fx->d, fx->conf, 2, NULL), 0);
}

static struct fe_blk *connect_disk(struct fixture *fx, const char *sock, uint64_t want)
{
	struct fe_blk *blk = NULL;
	char err[256];
	int r = fe_blk_open(path(fx, sock, 1), want, 1, 64, 5000, &blk, err, sizeof(err));
	if (r < 0)
		fail_msg("connecting to %s: %s", sock, err);
	return blk;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return 0;
}

/* Random data at queue depth 16 on two disks at once, then both read back
 * through the device and compared with the image files on the host. */
struct io_ctx { unsigned done, errors; };

static void count_done(struct fe_blk_req *r)
{
	struct io_ctx *c = r->arg;
	c->done++;
	if (r->status != VIRTIO_BLK_S_OK)
		c->errors++;
}

static void test_two_disks_random_data(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b[2] = { connect_disk(fx, "disk0.sock", 0), connect_disk(fx, "disk1.sock", 0) };
	enum { NREQ = 256, BS = 16384 };
	uint8_t *data[2], *back[2];
	struct fe_blk_req *reqs = calloc(2 * NREQ, sizeof(*reqs));
	struct io_ctx ctx = { 0 };
	for (int k = 0; k < 2; k++) {
		data[k] = malloc(NREQ * BS);
		back[k] = calloc(1, NREQ * BS);
		harness_fill(data[k], NREQ * BS, 100 + k);
	}
	/* Interleave submissions on both disks, keeping 16 in flight on each. */
	unsigned next[2] = { 0, 0 };
	while (ctx.done < 2 * NREQ) {
		for (int k = 0; k < 2; k++) {
			while (next[k] < NREQ && b[k]->inflight < 16) {
				struct fe_blk_req *r = &reqs[k * NREQ + next[k]];
				/* A scattered order: block i goes to slot (i*37)%NREQ. */
				unsigned slot = (next[k] * 37) % NREQ;
				*r = (struct fe_blk_req){ .type = VIRTIO_BLK_T_OUT, .sector = slot * (BS / 512),
							  .buf = data[k] + slot * BS, .len = BS,
							  .done = count_done, .arg = &ctx };
				assert_int_equal(fe_blk_submit(b[k], 0, r), 0);
				next[k]++;
			}
			fe_blk_kick(b[k], 0);
			int n = fe_blk_poll(b[k], 0);
			assert_true(n >= 0 || n == -ETIMEDOUT);
		}
	}
	assert_int_equal(ctx.errors, 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(fe_blk_io(b[k], 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
		for (unsigned i = 0; i < NREQ; i += 64)
			assert_int_equal(fe_blk_io(b[k], 0, VIRTIO_BLK_T_IN, i * (BS / 512),
						   back[k] + i * BS, 64 * BS), VIRTIO_BLK_S_OK);
		assert_memory_equal(back[k], data[k], NREQ * BS);
		uint8_t *file = malloc(NREQ * BS);
		assert_int_equal(harness_read_file(path(fx, k ? "b.img" : "a.img", 2), 0, file,
						   NREQ * BS), 0);
		assert_memory_equal(file, data[k], NREQ * BS);
		free(file);
		free(data[k]);
		free(back[k]);
		fe_blk_close(b[k]);
	}
	free(reqs);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* The image's own data is visible, GET_ID returns the serial, capacity is right. */
static void test_read_existing_and_get_id(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	assert_int_equal(b->capacity, 16 * MiB / 512);
	uint8_t buf[8192], file[8192];
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 2048, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 2048 * 512, file, sizeof(file)), 0);
	assert_memory_equal(buf, file, sizeof(buf));
	char id[20];
	memset(id, 'x', sizeof(id));
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), VIRTIO_BLK_S_OK);
	assert_memory_equal(id, "SERIAL-0\0\0\0\0\0\0\0\0\0\0\0", 20);
	fe_blk_close(b);
	/* Default serial is the device name. */
	b = connect_disk(fx, "disk1.sock", 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), VIRTIO_BLK_S_OK);
	assert_string_equal(id, "disk1");
	fe_blk_close(b);
}

/* Out of range and misaligned requests fail with IOERR and leave the file alone;
 * an unknown request type gets UNSUPP. */
static void test_out_of_range(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	uint8_t *before = malloc(16 * MiB), *after = malloc(16 * MiB);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 0, before, 16 * MiB), 0);
	uint8_t buf[4096];
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, b->capacity - 4, buf, 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, b->capacity, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, UINT64_MAX - 1, buf, 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 0, buf, 100), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, b->capacity, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, 0x55, 0, buf, 512), VIRTIO_BLK_S_UNSUPP);
	/* The last sector is still fine. */
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, b->capacity - 1, buf, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(harness_stop(&fx->d), 0);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 0, after, 16 * MiB), 0);
	assert_memory_equal(before, after, 16 * MiB);
	struct stat st;
	assert_int_equal(stat(path(fx, "a.img", 2), &st), 0);
	assert_int_equal(st.st_size, 16 * MiB);
	free(before);
	free(after);
	fe_blk_close(b);
}

static void write_segment(uint8_t *seg, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t s = htole64(sector);
	uint32_t nn = htole32(n), f = htole32(flags);
	memcpy(seg, &s, 8);
	memcpy(seg + 8, &nn, 4);
	memcpy(seg + 12, &f, 4);
}

/* DISCARD and WRITE_ZEROES (with and without UNMAP) read back as zeroes,
 * in the device and in the file; neighbouring data is untouched. */
static void test_discard_write_zeroes(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	assert_true(b->fe->features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_true(b->fe->features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	uint8_t seg[32];
	/* Two ranges in one write-zeroes request: 8..15 and 64..71, no unmap. */
	write_segment(seg, 8, 8, 0);
	write_segment(seg + 16, 64, 8, VIRTIO_BLK_WZ_FLAG_UNMAP);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 32), VIRTIO_BLK_S_OK);
	/* Discard 1 MiB at 4 MiB (page aligned, so a hole can be punched). */
	write_segment(seg, 8192, 2048, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_OK);
	uint8_t zero[4096] = { 0 }, got[4096], orig[512];
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 8, got, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(got, zero, 4096);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 64, got, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(got, zero, 4096);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 8 * 512, got, 4096), 0);
	assert_memory_equal(got, zero, 4096);
	/* Sector 7 and 16 keep the original pattern. */
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 16, got, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 16 * 512, orig, 512), 0);
	assert_memory_equal(got, orig, 512);
	assert_memory_not_equal(got, zero, 512);
	/* Unknown flags and ranges beyond the disk are refused. */
	write_segment(seg, 8, 8, 0x80);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16), VIRTIO_BLK_S_UNSUPP);
	write_segment(seg, b->capacity - 1, 2, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_IOERR);
	fe_blk_close(b);
}

/* The first WRITE_ZEROES on a file system without FALLOC_FL_ZERO_RANGE
 * (tmpfs) with more than one range: answered OK once the fallback (punch,
 * then allocate) has zeroed every range.  Regression: answered IOERR, and
 * logged as "flush/discard". */
static void test_write_zeroes_fallback_tmpfs(void **state)
{
	struct fixture *fx = *state;
	const char *old = getenv("TMPDIR");
	setenv("TMPDIR", "/dev/shm", 1);
	start_two(fx, "", "");
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	uint8_t seg[48];
	write_segment(seg, 8, 8, 0);
	write_segment(seg + 16, 64, 8, 0);
	write_segment(seg + 32, 128, 16, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 48), VIRTIO_BLK_S_OK);
	uint8_t zero[8192] = { 0 }, got[8192];
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 8 * 512, got, 4096), 0);
	assert_memory_equal(got, zero, 4096);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 64 * 512, got, 4096), 0);
	assert_memory_equal(got, zero, 4096);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 128 * 512, got, 8192), 0);
	assert_memory_equal(got, zero, 8192);
	/* and later ones go the fallback way at once */
	write_segment(seg, 256, 8, 0);
	write_segment(seg + 16, 512, 8, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 32), VIRTIO_BLK_S_OK);
	assert_false(harness_log_has(&fx->d, "I/O error"));
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* A read-only disk: RO offered, reads work, writes and zeroing fail, file untouched. */
static void test_read_only(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "read-only = yes", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	assert_true(b->fe->features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	uint8_t buf[4096], file[4096], before[4096];
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 0, before, 4096), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096), VIRTIO_BLK_S_IOERR);
	uint8_t seg[16];
	write_segment(seg, 0, 8, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, before, 4096);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 0, file, 4096), 0);
	assert_memory_equal(file, before, 4096);
	fe_blk_close(b);
}

/* A device reset with 32 requests in flight: once the reset is acknowledged,
 * the daemon writes nothing more into the rings or buffers; afterwards the
 * driver can set the device up again and it works. */
static void test_reset_with_inflight(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	struct fe_dev *fe = b->fe;
	enum { N = 32, BS = 65536 };
	struct fe_blk_req reqs[N];
	uint8_t *bufs = malloc(N * BS);
	for (int i = 0; i < N; i++) {
		reqs[i] = (struct fe_blk_req){ .type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
					       .sector = (uint64_t)i * (BS / 512), .buf = bufs + i * BS,
					       .len = BS };
		assert_int_equal(fe_blk_submit(b, 0, &reqs[i]), 0);
	}
	fe_blk_kick(b, 0);
	assert_int_equal(fe_reg_write(fe, VI_DEVICE_STATUS, 0, 4), 0);
	assert_int_equal(fe_sync(fe), 0);
	/* Acknowledged: snapshot the whole R/W section and watch it stay still. */
	uint8_t *snap = malloc(fe->rw_size);
	memcpy(snap, fe->rw, fe->rw_size);
	usleep(200 * 1000);
	assert_memory_equal(snap, fe->rw, fe->rw_size);
	free(snap);
	free(bufs);
	/* The device is usable again after a fresh setup (new driver instance). */
	fe_blk_close(b);
	b = connect_disk(fx, "disk0.sock", 0);
	uint8_t buf[4096], want[4096];
	harness_fill(want, sizeof(want), 42);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 100, want, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 100, buf, 4096), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, want, 4096);
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* The front-end disconnects (its state drops to RESET) and a new one
 * connects: it sees the data the first one wrote. */
static void test_reconnect(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	uint8_t want[8192], got[8192];
	harness_fill(want, sizeof(want), 9);
	for (int round = 0; round < 3; round++) {
		struct fe_blk *b = connect_disk(fx, "disk1.sock", 0);
		if (round > 0) {
			assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, got, sizeof(got)), 0);
			assert_memory_equal(got, want, sizeof(got));
		}
		want[0] = (uint8_t)round;
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 0, want, sizeof(want)), 0);
		fe_blk_close(b);
	}
	assert_true(harness_log_has(&fx->d, "disk1: peer left"));
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* Without event-idx and indirect descriptors, and with several queues. */
static void test_plain_ring_multiqueue(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "queues = 4\nqueue-size = 16", "");
	struct fe_blk *b = NULL;
	char err[256];
	uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) |
			VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	assert_int_equal(fe_blk_open(path(fx, "disk0.sock", 1), want, 4, 16, 5000, &b, err,
				     sizeof(err)), 0);
	assert_int_equal(b->num_queues, 4);
	assert_false(b->fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	/* Each queue kicks on its own device vector: 1 + q (5 vectors). */
	for (unsigned q = 0; q < 4; q++)
		assert_int_equal(b->fe->vq[q].device_vector, 1 + q);
	uint8_t buf[4096], back[4096];
	for (unsigned q = 0; q < 4; q++) {
		harness_fill(buf, sizeof(buf), q);
		assert_int_equal(fe_blk_io(b, q, VIRTIO_BLK_T_OUT, q * 8, buf, 4096), 0);
		assert_int_equal(fe_blk_io(b, q, VIRTIO_BLK_T_IN, q * 8, back, 4096), 0);
		assert_memory_equal(buf, back, 4096);
	}
	fe_blk_close(b);
}

/* 1 if queue q's vector was rung since the last look (an eventfd adds
 * doorbells up: several between two looks count once). */
static unsigned rung(struct fe_dev *fe, unsigned q)
{
	int idx = fe_queue_watch(fe, q);
	assert_true(idx > 0);
	struct pollfd p = { .fd = fe->port->watch_fd[idx], .events = POLLIN };
	return poll(&p, 1, 0) == 1 && fe_handle_watch(fe, (unsigned)idx) == 1;
}

/* A poll queue, as virtio_blk makes them (poll_queues=, for io_uring
 * IOPOLL in the cell): the driver asks for no interrupts on it and polls
 * the used ring.  Written data reads back through it and is in the image;
 * the daemon rings the queue's vector once (event-idx: used_event stays
 * 0, so only the first answer crosses it) or never (a plain ring:
 * VRING_AVAIL_F_NO_INTERRUPT), where it would ring for any of the 433
 * answers that the driver had not seen yet; queue 0 beside it keeps its
 * interrupts. */
static void test_poll_queue(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "queues = 2", "");
	uint64_t plain = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) |
			 VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	for (int event_idx = 1; event_idx >= 0; event_idx--) {
		struct fe_blk *b = NULL;
		char err[256];
		assert_int_equal(fe_blk_open(path(fx, "disk0.sock", 1), event_idx ? 0 : plain, 2, 64,
					     5000, &b, err, sizeof(err)), 0);
		assert_int_equal(!!(b->fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)), event_idx);
		fe_vq_set_poll_queue(b->fe, 1);
		enum { N = 32, READS = 400 };
		static uint8_t data[N * 4096], back[4096];
		harness_fill(data, sizeof(data), 40 + event_idx);
		unsigned rings = 0;
		for (unsigned i = 0; i < N; i++) {
			assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_OUT, 8 * i, data + i * 4096, 4096),
					 VIRTIO_BLK_S_OK);
			rings += rung(b->fe, 1);
		}
		assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
		for (unsigned i = 0; i < READS; i++) {
			unsigned k = (i * 7) % N;
			assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_IN, 8 * k, back, 4096),
					 VIRTIO_BLK_S_OK);
			assert_memory_equal(back, data + k * 4096, 4096);
			rings += rung(b->fe, 1);
		}
		usleep(20 * 1000);
		rings += rung(b->fe, 1);
		assert_int_equal(rings, (unsigned)event_idx);
		/* Queue 0 is an ordinary one: answered, with its interrupt. */
		uint64_t irqs = b->fe->interrupts;
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, back, 4096), VIRTIO_BLK_S_OK);
		assert_memory_equal(back, data, 4096);
		assert_true(b->fe->interrupts > irqs);
		assert_int_equal(b->fe->lost_interrupts, 0);
		fe_blk_close(b);
		assert_int_equal(harness_read_file(path(fx, "a.img", 2), 0, back, 4096), 0);
		assert_memory_equal(back, data, 4096);
	}
}

/* Post one raw chain on queue 0 of a connected front-end. */
static void post_raw(struct fe_dev *fe, uint16_t head)
{
	struct fe_vq *vq = &fe->vq[0];
	shm_st16(fe->rw, vq->avail + 4 + 2ull * (vq->avail_idx & (vq->num - 1)), head);
	vq->avail_idx++;
	vq->kicked_idx = vq->avail_idx - 1;
	fe_vq_kick(fe, 0);
	ivshm_port_notify(fe->port, vq->device_vector);
}

static bool wait_needs_reset(struct fe_dev *fe)
{
	for (int i = 0; i < 200; i++) {
		if (fe_status(fe) & VIRTIO_STATUS_NEEDS_RESET)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* A hostile front-end on disk0 posts malformed rings; disk0 is marked
 * DEVICE_NEEDS_RESET each time, the daemon lives on, and disk1 keeps serving
 * correct data all along. */
static void test_hostile_frontend(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *good = connect_disk(fx, "disk1.sock", 0);
	uint8_t want[4096], got[4096];
	/* Each attack: the setup of a malformed chain in the descriptor table. */
	for (int attack = 0; attack < 5; attack++) {
		struct fe_blk *evil = connect_disk(fx, "disk0.sock", 0);
		struct fe_dev *fe = evil->fe;
		struct fe_vq *vq = &fe->vq[0];
		uint64_t d = vq->desc;
		uint16_t head = 0;
		switch (attack) {
		case 0:         /* head index beyond the ring */
			head = vq->num + 3;
			break;
		case 1:         /* a descriptor chain that loops back on itself */
			shm_st64(fe->rw, d, vq->ring_off + 4096);
			shm_st32(fe->rw, d + 8, 16);
			shm_st16(fe->rw, d + 12, VRING_DESC_F_NEXT);
			shm_st16(fe->rw, d + 14, 0);
			break;
		case 2:         /* a buffer reaching beyond the shared memory */
			shm_st64(fe->rw, d, fe->rw_size - 8);
			shm_st32(fe->rw, d + 8, 4096);
			shm_st16(fe->rw, d + 12, VRING_DESC_F_WRITE);
			break;
		case 3:         /* a buffer wrapping the 64-bit address space */
			shm_st64(fe->rw, d, UINT64_MAX - 100);
			shm_st32(fe->rw, d + 8, 4096);
			shm_st16(fe->rw, d + 12, 0);
			break;
		case 4:         /* the avail index jumps far ahead of the ring */
			shm_st16(fe->rw, vq->avail + 2, vq->avail_idx + 1000);
			ivshm_port_notify(fe->port, vq->device_vector);
			break;
		}
		if (attack != 4)
			post_raw(fe, head);
		assert_true(wait_needs_reset(fe));
		/* Meanwhile the other disk serves correct data. */
		harness_fill(want, sizeof(want), 1000 + attack);
		assert_int_equal(fe_blk_io(good, 0, VIRTIO_BLK_T_OUT, attack * 8, want, 4096), 0);
		assert_int_equal(fe_blk_io(good, 0, VIRTIO_BLK_T_IN, attack * 8, got, 4096), 0);
		assert_memory_equal(got, want, 4096);
		fe_blk_close(evil);
	}
	/* After all that, a well-behaved driver gets disk0 back. */
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, got, 4096), VIRTIO_BLK_S_OK);
	fe_blk_close(b);
	fe_blk_close(good);
	assert_true(harness_log_has(&fx->d, "driver broke the ring protocol"));
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* A hosted link is as big as shm-size says, a power of two (an IVSHMEM v2
 * device maps it as one PCI BAR, and QEMU's device aborts on anything
 * else); the R/W section is what the 4 KiB state table leaves.  Before the
 * fix the link was 4 KiB + shm-size (0x401000 by default). */
static void test_hosted_link_is_power_of_two(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "shm-size = 256K");
	struct fe_blk *b0 = connect_disk(fx, "disk0.sock", 0);
	struct fe_blk *b1 = connect_disk(fx, "disk1.sock", 0);
	assert_int_equal(b0->fe->rw_size, (4u << 20) - 4096);
	assert_int_equal(b1->fe->rw_size, (256u << 10) - 4096);
	fe_blk_close(b0);
	fe_blk_close(b1);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* threads = 2: SIGHUP shortly after SIGTERM, while one worker has already
 * stopped (idle disk) and the other still finishes a FLUSH of a large dirty
 * page cache.  Regression: the main thread blocked forever calling into the
 * loop that had ended; now the stopped worker answers "gone". */
static void test_hup_after_term_threads(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(harness_mkdir(&fx->d), 0);
	assert_int_equal(harness_image(path(fx, "a.img", 0), 1 * MiB, 0), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 256 * MiB, 0), 0);
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\nthreads = 2\n[block idle]\nsim = %s/idle.sock\nimage = %s/a.img\n"
		 "[block busy]\nsim = %s/busy.sock\nimage = %s/b.img\nshm-size = 16M\n",
		 fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir);
	assert_int_equal(harness_start(&fx->d, fx->conf, 2, NULL), 0);
	struct fe_blk *b = connect_disk(fx, "busy.sock", 0);
	enum { BS = 1 << 20, DEPTH = 4, TOTAL = 256 };
	uint8_t *data = malloc((size_t)DEPTH * BS);
	harness_fill(data, (size_t)DEPTH * BS, 77);
	struct fe_blk_req reqs[DEPTH + 1];
	struct io_ctx ctx = { 0 };
	for (unsigned sent = 0; sent < TOTAL;) {
		for (unsigned k = 0; k < DEPTH && sent < TOTAL; k++, sent++) {
			reqs[k] = (struct fe_blk_req){ .type = VIRTIO_BLK_T_OUT,
						       .sector = (uint64_t)sent * (BS / 512),
						       .buf = data + (size_t)k * BS, .len = BS,
						       .done = count_done, .arg = &ctx };
			assert_int_equal(fe_blk_submit(b, 0, &reqs[k]), 0);
		}
		fe_blk_kick(b, 0);
		while (b->inflight)
			assert_true(fe_blk_poll(b, 5000) >= 0);
	}
	assert_int_equal(ctx.errors, 0);
	/* 256 MiB dirty: the FLUSH takes a while on a real disk. */
	reqs[DEPTH] = (struct fe_blk_req){ .type = VIRTIO_BLK_T_FLUSH, .status = -2 };
	assert_int_equal(fe_blk_submit(b, 0, &reqs[DEPTH]), 0);
	fe_blk_kick(b, 0);
	usleep(5000);
	kill(fx->d.pid, SIGTERM);
	usleep(20000);              /* the idle worker has stopped by now */
	kill(fx->d.pid, SIGHUP);
	int status = harness_stop(&fx->d);
	assert_int_equal(status, 0);
	assert_true(harness_log_has(&fx->d, "all devices stopped"));
	free(data);
	fe_blk_close(b);
}

/* A link carries exactly two peers: a third is turned away. */
static void test_link_full(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	/* A second front-end cannot join a link that already has two peers. */
	struct fe_blk *b2 = NULL;
	char err[256];
	assert_true(fe_blk_open(path(fx, "disk0.sock", 1), 0, 1, 64, 0, &b2, err, sizeof(err)) < 0);
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* SIGTERM with 64 writes in flight: the daemon finishes them, answers the
 * driver, exits 0, and every write it acknowledged is in the image. */
static void test_sigterm_with_writes_in_flight(void **state)
{
	struct fixture *fx = *state;
	start_two(fx, "queue-size = 128\nshm-size = 16M", "");
	struct fe_blk *b = connect_disk(fx, "disk0.sock", 0);
	enum { N = 64, BS = 65536 };
	struct fe_blk_req reqs[N];
	uint8_t *data = malloc((size_t)N * BS);
	harness_fill(data, (size_t)N * BS, 4242);
	for (int i = 0; i < N; i++) {
		reqs[i] = (struct fe_blk_req){ .type = VIRTIO_BLK_T_OUT, .sector = (uint64_t)i * 128,
					       .buf = data + (size_t)i * BS, .len = BS, .status = -2 };
		assert_int_equal(fe_blk_submit(b, 0, &reqs[i]), 0);
	}
	fe_blk_kick(b, 0);
	/* Once the daemon has answered one, the rest were taken with it. */
	while (b->inflight == N)
		assert_true(fe_blk_poll(b, 2000) >= 0);
	kill(fx->d.pid, SIGTERM);
	/* Collect answers until the backend leaves READY. */
	while (b->inflight) {
		int r = fe_blk_poll(b, 2000);
		if (r == -ENODEV || r == -ETIMEDOUT)
			break;
	}
	/* Answers published just before the backend left READY. */
	while (b->inflight && fe_blk_poll(b, 0) > 0)
		;
	int status = harness_stop(&fx->d);
	assert_int_equal(status, 0);
	unsigned acked = 0;
	uint8_t *file = malloc(BS);
	for (int i = 0; i < N; i++) {
		/* Answered OK, or not answered at all (not taken before SIGTERM). */
		assert_true(reqs[i].status == VIRTIO_BLK_S_OK || reqs[i].status == -2);
		if (reqs[i].status != VIRTIO_BLK_S_OK)
			continue;
		acked++;
		assert_int_equal(harness_read_file(path(fx, "a.img", 2), (uint64_t)i * BS, file, BS), 0);
		assert_memory_equal(file, data + (size_t)i * BS, BS);
	}
	print_message("    %u of %d writes acknowledged before the daemon left\n", acked, N);
	assert_true(acked >= 1);
	assert_true(harness_log_has(&fx->d, "all devices stopped"));
	free(file);
	free(data);
	fe_blk_close(b);
}

/* Eight disks and four consoles in one daemon spread over two worker
 * threads, all driven at once (disks at queue depth 8, consoles streaming
 * into log files), every byte verified through the device, in the image
 * files and in the logs. */
static void test_many_devices_two_threads(void **state)
{
	struct fixture *fx = *state;
	enum { NDISK = 8, NCON = 4, NREQ = 64, BS = 8192, CON_BYTES = 256 * 1024 };
	assert_int_equal(harness_mkdir(&fx->d), 0);
	char *conf = fx->conf;
	size_t len = (size_t)snprintf(conf, sizeof(fx->conf), "[daemon]\nthreads = 2\ncontrol-socket = none\n");
	for (int k = 0; k < NDISK; k++) {
		char img[32];
		snprintf(img, sizeof(img), "d%d.img", k);
		assert_int_equal(harness_image(path(fx, img, 0), 4 * MiB, 0), 0);
		len += (size_t)snprintf(conf + len, sizeof(fx->conf) - len,
					"[block d%d]\nsim = %s/d%d.sock\nimage = %s/d%d.img\n", k,
					fx->d.dir, k, fx->d.dir, k);
	}
	for (int k = 0; k < NCON; k++)
		len += (size_t)snprintf(conf + len, sizeof(fx->conf) - len,
					"[console c%d]\nsim = %s/c%d.sock\nendpoint = log\n"
					"path = %s/c%d.log\n", k, fx->d.dir, k, fx->d.dir, k);
	assert_int_equal(harness_start(&fx->d, conf, NDISK + NCON, NULL), 0);
	assert_true(harness_log_has(&fx->d, "on worker threads"));
	struct fe_console *con[NCON];
	uint8_t *text[NCON];
	size_t sent[NCON];
	for (int k = 0; k < NCON; k++) {
		char err[256], sock[16];
		snprintf(sock, sizeof(sock), "c%d.sock", k);
		int r = fe_console_open(path(fx, sock, 1), 64, 8, 4096, 5000, &con[k], err,
					sizeof(err));
		if (r < 0)
			fail_msg("console %d: %s", k, err);
		text[k] = malloc(CON_BYTES);
		harness_fill(text[k], CON_BYTES, 900 + k);
		sent[k] = 0;
	}
	struct fe_blk *b[NDISK];
	uint8_t *data[NDISK];
	struct fe_blk_req *reqs = calloc(NDISK * NREQ, sizeof(*reqs));
	struct io_ctx ctx = { 0 };
	unsigned next[NDISK] = { 0 };
	for (int k = 0; k < NDISK; k++) {
		char sock[32];
		snprintf(sock, sizeof(sock), "d%d.sock", k);
		b[k] = connect_disk(fx, sock, 0);
		data[k] = malloc(NREQ * BS);
		harness_fill(data[k], NREQ * BS, 500 + k);
	}
	bool con_busy = true;
	while (ctx.done < NDISK * NREQ || con_busy) {
		con_busy = false;
		for (int k = 0; k < NCON; k++) {
			if (sent[k] < CON_BYTES) {
				size_t chunk = CON_BYTES - sent[k] < 3000 ? CON_BYTES - sent[k] : 3000;
				sent[k] += fe_console_send(con[k], text[k] + sent[k], chunk);
				con_busy = true;
			}
			fe_console_poll(con[k], 0);
		}
		for (int k = 0; k < NDISK; k++) {
			while (next[k] < NREQ && b[k]->inflight < 8) {
				struct fe_blk_req *r = &reqs[k * NREQ + next[k]];
				*r = (struct fe_blk_req){ .type = VIRTIO_BLK_T_OUT,
							  .sector = next[k] * (BS / 512),
							  .buf = data[k] + next[k] * BS, .len = BS,
							  .done = count_done, .arg = &ctx };
				assert_int_equal(fe_blk_submit(b[k], 0, r), 0);
				next[k]++;
			}
			fe_blk_kick(b[k], 0);
			int n = fe_blk_poll(b[k], 0);
			assert_true(n >= 0 || n == -ETIMEDOUT);
		}
	}
	assert_int_equal(ctx.errors, 0);
	uint8_t *back = malloc(NREQ * BS);
	for (int k = 0; k < NDISK; k++) {
		assert_int_equal(fe_blk_io(b[k], 0, VIRTIO_BLK_T_IN, 0, back, NREQ * BS), 0);
		assert_memory_equal(back, data[k], NREQ * BS);
		char img[32];
		snprintf(img, sizeof(img), "d%d.img", k);
		assert_int_equal(harness_read_file(path(fx, img, 2), 0, back, NREQ * BS), 0);
		assert_memory_equal(back, data[k], NREQ * BS);
		fe_blk_close(b[k]);
		free(data[k]);
	}
	free(back);
	free(reqs);
	for (int k = 0; k < NCON; k++) {
		assert_int_equal(fe_console_drain(con[k], 5000), 0);
		fe_console_close(con[k]);
	}
	assert_int_equal(harness_stop(&fx->d), 0);
	uint8_t *log = malloc(CON_BYTES);
	for (int k = 0; k < NCON; k++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d.log", k);
		assert_int_equal(harness_read_file(path(fx, name, 2), 0, log, CON_BYTES), 0);
		assert_memory_equal(log, text[k], CON_BYTES);
		free(text[k]);
	}
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_disks_random_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_existing_and_get_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes_fallback_tmpfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_with_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_ring_multiqueue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_frontend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosted_link_is_power_of_two, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hup_after_term_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_with_writes_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_devices_two_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
