/* cache = none end to end (backends/blk.h): the real daemon serving an
 * image in /var/tmp opened O_DIRECT, driven by the userspace front-end.
 *
 *  - aligned requests go straight to the image, requests whose data is
 *    misplaced or split at odd lengths are bounced: the data read back and
 *    the image file agree with what was written, and stats count bounces
 *    for exactly the unaligned ones (text, JSON);
 *  - no double caching: what the cell wrote and read is not in the root
 *    cell's page cache (mincore), and an acknowledged write is in the file
 *    as a direct read of it sees it;
 *  - more unaligned requests in flight than a queue has slots, some
 *    larger than a slot: all complete, correct, some having waited;
 *  - two queues on threads = 2: each queue bounces through its own slots
 *    and the per-queue counters add up to the disk's.
 *
 * Skipped (with the reason) where /var/tmp takes no O_DIRECT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "ctl/client.h"
#include "tests/frontend/fe_blk.h"
#include "tests/harness.h"

#define MiB (1u << 20)
#define IMG_SIZE (16 * MiB)

struct fixture {
	struct daemon_proc d;
	char ctl[400];
	char img[400];
	struct fe_blk *blk;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fe_blk_close(fx->blk);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

/* The image out of the page cache, as after a reboot. */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

/* Pages of [off, off+len) of the file in the page cache. */
static unsigned cached_pages(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
	assert_true(m != MAP_FAILED);
	size_t pages = (len + 4095) / 4096;
	unsigned char *vec = calloc(pages, 1);
	assert_int_equal(mincore(m, len, vec), 0);
	unsigned n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(m, len);
	close(fd);
	return n;
}

/* A direct read of the file: what is in it, not in the page cache. */
static void read_direct(const char *path, uint64_t off, void *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	assert_true(fd >= 0);
	size_t alen = (len + 4095) & ~(size_t)4095;
	void *b = aligned_alloc(4096, alen);
	uint64_t aoff = off & ~4095ull;
	size_t skip = (size_t)(off - aoff);
	size_t span = (skip + len + 4095) & ~(size_t)4095;
	void *c = aligned_alloc(4096, span);
	assert_int_equal(pread(fd, c, span, (off_t)aoff), (ssize_t)span);
	memcpy(out, (uint8_t *)c + skip, len);
	free(b);
	free(c);
	close(fd);
}

static void start(struct fixture *fx, unsigned threads, unsigned queues, const char *extra)
{
	char conf[2048];
	assert_int_equal(harness_mkdir(&fx->d), 0);
	snprintf(fx->img, sizeof(fx->img), "%s/a.img", fx->d.dir);
	assert_int_equal(harness_image(fx->img, IMG_SIZE, 31), 0);
	int fd = open(fx->img, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		print_message("skipped: %s takes no O_DIRECT (%s)\n", fx->d.dir, strerror(errno));
		skip();
	}
	close(fd);
	drop_cache(fx->img);
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\nthreads = %u\n"
		 "[block a]\nsim = %s/a.sock\nimage = %s\nqueues = %u\nqueue-size = 64\n"
		 "shm-size = 16M\ncache = none\n%s",
		 fx->ctl, threads, fx->d.dir, fx->img, queues, extra ? extra : "");
	assert_int_equal(harness_start(&fx->d, conf, 1, NULL), 0);
	assert_true(harness_log_has(&fx->d, "cache none (O_DIRECT; aligned: memory to "));
	char err[256];
	char sock[400];
	snprintf(sock, sizeof(sock), "%s/a.sock", fx->d.dir);
	if (fe_blk_open(sock, 0, queues, 64, 5000, &fx->blk, err, sizeof(err)) < 0)
		fail_msg("connecting: %s", err);
}

static const char *ctl(struct fixture *fx, const char *cmd)
{
	return harness_ctl(fx->ctl, cmd);
}

/* The number after "key": in text, from the first occurrence on. */
static unsigned long long json_num(const char *text, const char *key)
{
	unsigned long long v = 0;
	if (!harness_json_num(text, key, &v))
		fail_msg("no %s in %s", key, text);
	return v;
}

struct bounced { unsigned long long rd, rd_bytes, wr, wr_bytes, waits; };

/* The disk's bounce counters (JSON), from `from` on (a queue's entry, or
 * the whole answer for the disk's sums, which come first). */
static struct bounced bounced_in(const char *from)
{
	const char *b = strstr(from, "\"bounced\":");
	if (!b)
		fail_msg("no bounced in %s", from);
	const char *r = strstr(b, "\"read\":"), *w = strstr(b, "\"write\":");
	return (struct bounced){ json_num(r, "requests"), json_num(r, "bytes"),
				 json_num(w, "requests"), json_num(w, "bytes"), json_num(b, "waits") };
}

static void wait_all(struct fe_blk *blk, struct fe_blk_req *reqs, unsigned n)
{
	for (int tries = 0; tries < 200; tries++) {
		unsigned left = 0;
		for (unsigned i = 0; i < n; i++)
			left += reqs[i].status == -2;
		if (!left)
			return;
		int r = fe_blk_poll(blk, 100);
		if (r < 0 && r != -ETIMEDOUT)
			fail_msg("poll: %s", strerror(-r));
	}
	fail_msg("requests not answered");
}

/* One request, data placed as asked; its status. */
static int io(struct fe_blk *blk, unsigned q, uint32_t type, uint64_t sector, void *buf,
	      uint32_t len, uint32_t misalign, uint32_t split)
{
	struct fe_blk_req req = { .type = type, .sector = sector, .buf = buf, .len = len,
				  .status = -2, .misalign = misalign, .split = split };
	assert_int_equal(fe_blk_submit(blk, q, &req), 0);
	fe_blk_kick(blk, q);
	wait_all(blk, &req, 1);
	return req.status;
}

/* The alignments of the device's log line ("aligned: memory to M,
 * offsets and lengths to O bytes"). */
static void aligned_from_log(struct fixture *fx, unsigned *mem, unsigned *off)
{
	char text[16384] = "";
	FILE *f = fopen(fx->d.log, "r");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *p = strstr(text, "aligned: memory to ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "aligned: memory to %u, offsets and lengths to %u", mem, off), 2);
	assert_true(*mem >= 1 && *off >= 1);
}

/* Does a request of len bytes at sector, its data misplaced by mis bytes
 * from a page boundary and split after split bytes (0: one segment), go
 * through a bounce slot? */
static bool bounces(unsigned mem_align, unsigned off_align, uint64_t sector, uint32_t len,
		    uint32_t mis, uint32_t split)
{
	uint32_t seg1 = split ? split : len, seg2 = len - seg1;
	return mis % mem_align || sector * 512 % off_align || seg1 % off_align ||
	       (seg2 && ((mis + seg1) % mem_align || seg2 % off_align));
}

static void test_aligned_and_unaligned(void **state)
{
	struct fixture *fx = *state;
	start(fx, 1, 1, NULL);
	struct fe_blk *b = fx->blk;
	enum { N = 5 };
	/* sector, length, misalign, split: the first two aligned */
	static const struct { uint64_t sector; uint32_t len, mis, split; } w[N] = {
		{ 8, 8192, 0, 0 },
		{ 64, 4096, 0, 2048 },          /* two segments, both of whole blocks */
		{ 128, 4096, 8, 0 },            /* misplaced by 8 bytes */
		{ 256, 8192, 0, 1000 },         /* two segments of odd lengths */
		{ 512, 3 * 512, 100, 700 },     /* both */
	};
	/* Which ones bounce follows from the alignment the daemon found and
	 * logged (statx's on a kernel that has it; st_blksize, 4096 for both,
	 * where it does not, e.g. under qemu-user): the buffers are placed
	 * from a page boundary, misplaced by mis, split after split bytes. */
	unsigned mem_align = 0, off_align = 0;
	aligned_from_log(fx, &mem_align, &off_align);
	/* The block size offered is raised to the offset alignment: a request
	 * of part of a block is refused then (IOERR), bounced or not. */
	uint32_t bs = b->blk_size ? b->blk_size : 512;
	bool bounced[N], valid[N];
	unsigned nvalid = 0, nbounced = 0;
	for (unsigned i = 0; i < N; i++) {
		valid[i] = w[i].len % bs == 0 && w[i].sector * 512 % bs == 0;
		bounced[i] = bounces(mem_align, off_align, w[i].sector, w[i].len, w[i].mis,
				     w[i].split);
		nvalid += valid[i];
		nbounced += valid[i] && bounced[i];
	}
	/* what the test is for: both kinds, whatever the alignment */
	assert_false(bounced[0]);
	assert_true(nbounced >= 2);
	uint8_t *buf = malloc(8192), *back = malloc(8192), *file = malloc(8192);
	unsigned long long want_wr = 0, want_wr_bytes = 0, want_rd = 0, want_rd_bytes = 0;
	for (unsigned i = 0; i < N; i++) {
		harness_fill(buf, w[i].len, 100 + i);
		int st = io(b, 0, VIRTIO_BLK_T_OUT, w[i].sector, buf, w[i].len, w[i].mis, w[i].split);
		if (!valid[i]) {
			assert_int_equal(st, VIRTIO_BLK_S_IOERR);
			continue;
		}
		if (st != VIRTIO_BLK_S_OK)
			fail_msg("write %u (%u bytes at sector %llu, misplaced by %u, split at %u): "
				 "status %d", i, w[i].len, (unsigned long long)w[i].sector, w[i].mis,
				 w[i].split, st);
		if (bounced[i])
			want_wr++, want_wr_bytes += w[i].len;
		struct bounced got = bounced_in(ctl(fx, "json stats a"));
		assert_int_equal(got.wr, want_wr);
		assert_int_equal(got.wr_bytes, want_wr_bytes);
		assert_int_equal(got.rd, 0);
	}
	/* Read each back placed the other way: aligned writes through bounced
	 * reads and the other way round. */
	for (unsigned i = 0; i < N; i++) {
		harness_fill(buf, w[i].len, 100 + i);
		memset(back, 0xee, w[i].len);
		uint32_t mis = bounced[i] ? 0 : 24;
		uint32_t split = bounced[i] ? 0 : 1536 + 4;
		int st = io(b, 0, VIRTIO_BLK_T_IN, w[i].sector, back, w[i].len, mis, split);
		if (!valid[i]) {
			assert_int_equal(st, VIRTIO_BLK_S_IOERR);
			continue;
		}
		assert_int_equal(st, VIRTIO_BLK_S_OK);
		if (memcmp(back, buf, w[i].len))
			fail_msg("request %u: the data read back differs", i);
		if (bounces(mem_align, off_align, w[i].sector, w[i].len, mis, split))
			want_rd++, want_rd_bytes += w[i].len;
		read_direct(fx->img, w[i].sector * 512, file, w[i].len);
		if (memcmp(file, buf, w[i].len))
			fail_msg("request %u: the image file differs", i);
	}
	const char *js = ctl(fx, "json stats a");
	struct bounced got = bounced_in(js);
	assert_int_equal(got.rd, want_rd);
	assert_int_equal(got.rd_bytes, want_rd_bytes);
	assert_int_equal(got.wr, want_wr);
	assert_int_equal(json_num(strstr(js, "\"read\":"), "requests"), nvalid);
	assert_int_equal(json_num(strstr(js, "\"write\":"), "requests"), nvalid);
	assert_non_null(strstr(js, "\"cache\":\"none\""));
	const char *text = ctl(fx, "stats a");
	char line[160];
	snprintf(line, sizeof(line), "cache none, bounced: %llu reads (%llu bytes), %llu writes "
		 "(%llu bytes)", want_rd, want_rd_bytes, want_wr, want_wr_bytes);
	if (!strstr(text, line))
		fail_msg("no \"%s\" in:\n%s", line, text);
	/* The rest of the image is untouched. */
	uint8_t *orig = malloc(IMG_SIZE), *now = malloc(IMG_SIZE);
	assert_int_equal(harness_read_file(fx->img, 0, now, IMG_SIZE), 0);
	for (uint64_t off = 0; off < IMG_SIZE; off += MiB)   /* what harness_image wrote */
		harness_fill(orig + off, MiB, 31 + off);
	for (unsigned i = 0; i < N; i++)
		if (valid[i])
			memcpy(orig + w[i].sector * 512, now + w[i].sector * 512, w[i].len);
	assert_memory_equal(orig, now, IMG_SIZE);
	free(orig);
	free(now);
	free(buf);
	free(back);
	free(file);
}

/* What the cell writes and reads with cache = none does not stay in the
 * root cell's page cache, and an acknowledged write (no flush) is in the
 * file as a direct read sees it. */
static void test_no_double_caching(void **state)
{
	struct fixture *fx = *state;
	start(fx, 1, 1, NULL);
	struct fe_blk *b = fx->blk;
	const uint64_t off = 4 * MiB;
	const uint32_t len = 64 * 1024;
	uint8_t *buf = malloc(len), *back = malloc(len);
	assert_int_equal(cached_pages(fx->img, off, 2 * MiB), 0);
	for (unsigned i = 0; i < 16; i++) {
		harness_fill(buf, len, 500 + i);
		/* half aligned, half bounced: neither goes through the page cache */
		assert_int_equal(io(b, 0, VIRTIO_BLK_T_OUT, (off + (uint64_t)i * len) / 512, buf, len,
				    i % 2 ? 8 : 0, 0), VIRTIO_BLK_S_OK);
	}
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(io(b, 0, VIRTIO_BLK_T_IN, (off + (uint64_t)i * len) / 512, back, len,
				    i % 2 ? 0 : 8, 0), VIRTIO_BLK_S_OK);
	unsigned cached = cached_pages(fx->img, off, 16 * len);
	printf("pages of the 1 MiB written and read in the page cache: %u\n", cached);
	assert_int_equal(cached, 0);
	for (unsigned i = 0; i < 16; i++) {
		harness_fill(buf, len, 500 + i);
		read_direct(fx->img, off + (uint64_t)i * len, back, len);
		if (memcmp(back, buf, len))
			fail_msg("write %u acknowledged but not in the file", i);
	}
	/* And after the daemon stopped, read as any file. */
	assert_int_equal(harness_stop(&fx->d), 0);
	for (unsigned i = 0; i < 16; i++) {
		harness_fill(buf, len, 500 + i);
		assert_int_equal(harness_read_file(fx->img, off + (uint64_t)i * len, back, len), 0);
		assert_memory_equal(back, buf, len);
	}
	free(buf);
	free(back);
}

/* nreq unaligned writes of len bytes on queue q at once, then reads of
 * them at once, verified; base: first sector. */
static void burst(struct fe_blk *b, unsigned q, uint64_t base, unsigned nreq, uint32_t len,
		  uint64_t seed)
{
	struct fe_blk_req *reqs = calloc(nreq, sizeof(*reqs));
	uint8_t *bufs = malloc((size_t)nreq * len);
	for (unsigned i = 0; i < nreq; i++) {
		harness_fill(bufs + (size_t)i * len, len, seed + i);
		reqs[i] = (struct fe_blk_req){ .type = VIRTIO_BLK_T_OUT,
					       .sector = base + (uint64_t)i * (len / 512),
					       .buf = bufs + (size_t)i * len, .len = len, .status = -2,
					       .misalign = 8 + 8 * (i % 7), .split = i % 3 ? 0 : 1000 };
		assert_int_equal(fe_blk_submit(b, q, &reqs[i]), 0);
	}
	fe_blk_kick(b, q);
	wait_all(b, reqs, nreq);
	for (unsigned i = 0; i < nreq; i++)
		assert_int_equal(reqs[i].status, VIRTIO_BLK_S_OK);
	memset(bufs, 0, (size_t)nreq * len);
	for (unsigned i = 0; i < nreq; i++) {
		reqs[i].type = VIRTIO_BLK_T_IN;
		reqs[i].status = -2;
		reqs[i].misalign = 4 + 16 * (i % 5);
		assert_int_equal(fe_blk_submit(b, q, &reqs[i]), 0);
	}
	fe_blk_kick(b, q);
	wait_all(b, reqs, nreq);
	uint8_t *want = malloc(len);
	for (unsigned i = 0; i < nreq; i++) {
		assert_int_equal(reqs[i].status, VIRTIO_BLK_S_OK);
		harness_fill(want, len, seed + i);
		if (memcmp(want, bufs + (size_t)i * len, len))
			fail_msg("queue %u request %u: the data read back differs", q, i);
	}
	free(want);
	free(bufs);
	free(reqs);
}

/* 40 unaligned requests at once on a queue of 8 slots, half of them of
 * 160 KiB, more than a slot (64 KiB here): every one completes, right, and
 * some waited for a slot. */
static void test_slots_exhausted(void **state)
{
	struct fixture *fx = *state;
	start(fx, 1, 1, NULL);
	burst(fx->blk, 0, 0, 20, 16 * 1024, 700);
	burst(fx->blk, 0, 2048, 20, 160 * 1024, 800);
	struct bounced got = bounced_in(ctl(fx, "json stats a"));
	printf("bounced %llu reads, %llu writes; %llu waited for a slot\n", got.rd, got.wr,
	       got.waits);
	assert_int_equal(got.rd, 40);
	assert_int_equal(got.wr, 40);
	assert_int_equal(got.wr_bytes, 20ull * 16 * 1024 + 20ull * 160 * 1024);
	assert_true(got.waits > 0);
	uint8_t *want = malloc(160 * 1024), *file = malloc(160 * 1024);
	for (unsigned i = 0; i < 20; i++) {
		harness_fill(want, 160 * 1024, 800 + i);
		read_direct(fx->img, (2048 + (uint64_t)i * 320) * 512, file, 160 * 1024);
		if (memcmp(want, file, 160 * 1024))
			fail_msg("request %u of 160 KiB: the image file differs", i);
	}
	free(want);
	free(file);
}

/* threads = 2, two queues: queue 1 is served on the other worker with
 * slots of its own; both bounce at once, the counters per queue add up. */
static void test_two_queues_two_threads(void **state)
{
	struct fixture *fx = *state;
	start(fx, 2, 2, NULL);
	assert_true(harness_log_has(&fx->d, "2 queue(s) of 64 on 2 worker(s)"));
	burst(fx->blk, 0, 0, 24, 16 * 1024, 900);
	burst(fx->blk, 1, 4096, 24, 16 * 1024, 950);
	const char *js = ctl(fx, "json stats a");
	struct bounced all = bounced_in(js);
	const char *q0 = strstr(js, "{\"index\":0,"), *q1 = strstr(js, "{\"index\":1,");
	assert_non_null(q0);
	assert_non_null(q1);
	struct bounced b0 = bounced_in(q0), b1 = bounced_in(q1);
	printf("queue 0: %llu/%llu bounced, %llu waits; queue 1: %llu/%llu, %llu waits\n", b0.rd,
	       b0.wr, b0.waits, b1.rd, b1.wr, b1.waits);
	assert_int_equal(b0.wr, 24);
	assert_int_equal(b1.wr, 24);
	assert_int_equal(b0.rd, 24);
	assert_int_equal(b1.rd, 24);
	assert_int_equal(all.wr, b0.wr + b1.wr);
	assert_int_equal(all.rd_bytes, b0.rd_bytes + b1.rd_bytes);
	assert_int_equal(all.waits, b0.waits + b1.waits);
	uint8_t *want = malloc(16 * 1024), *file = malloc(16 * 1024);
	for (unsigned i = 0; i < 24; i++) {
		harness_fill(want, 16 * 1024, 950 + i);
		read_direct(fx->img, (4096 + (uint64_t)i * 32) * 512, file, 16 * 1024);
		assert_memory_equal(want, file, 16 * 1024);
	}
	free(want);
	free(file);
}

/* Flush, discard and write-zeroes are unaffected by cache = none. */
static void test_flush_discard_zeroes(void **state)
{
	struct fixture *fx = *state;
	start(fx, 1, 1, NULL);
	struct fe_blk *b = fx->blk;
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	uint8_t seg[16] = { 0 };
	uint64_t s = 64;
	uint32_t n = 16;
	memcpy(seg, &s, 8);
	memcpy(seg + 8, &n, 4);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16), VIRTIO_BLK_S_OK);
	uint8_t back[8192], zero[8192] = { 0 };
	read_direct(fx->img, 64 * 512, back, 8192);
	assert_memory_equal(back, zero, 8192);
	s = 1024;
	memcpy(seg, &s, 8);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_OK);
	struct bounced got = bounced_in(ctl(fx, "json stats a"));
	assert_int_equal(got.rd + got.wr, 0);
}

int main(void)
{
	/* the images on a disk file system (tmpfs may take no O_DIRECT) */
	setenv("TMPDIR", "/var/tmp", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_aligned_and_unaligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_double_caching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_queues_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_discard_zeroes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
