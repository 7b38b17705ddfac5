/* End-to-end: the daemon's I/O engine.  Without io_uring (a seccomp filter
 * answers io_uring_setup with ENOSYS) "auto" serves with the threads and
 * logs why, "io_uring" refuses to start with the reason; a write the file
 * system cannot take (full tmpfs: a short write, then ENOSPC) reaches the
 * cell as IOERR while every acknowledged write is in the image; an image
 * in memory (tmpfs) served on the loop's thread.  Runs with
 * the rest of suite e2e once per engine (tests/harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "tests/frontend/fe_blk.h"
#include "tests/harness.h"
#include "tests/load.h"

#define KiB 1024u
#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;
	char conf[2048];
	char small[400];            /* a tmpfs mount of 1 MiB, or "" */
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	*state = fx;
	return fx && harness_mkdir(&fx->d) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	harness_stop(&fx->d);
	if (fx->small[0])
		umount2(fx->small, MNT_DETACH);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

static struct fe_blk *connect_disk(struct fixture *fx)
{
	struct fe_blk *blk = NULL;
	char err[256];
	if (fe_blk_open(path(fx, "disk0.sock", 1), 0, 1, 64, 5000, &blk, err, sizeof(err)) < 0)
		fail_msg("connecting: %s", err);
	return blk;
}

static void one_disk(struct fixture *fx, const char *image, const char *daemon_keys)
{
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = none\n%s\n[block disk0]\nsim = %s/disk0.sock\n"
		 "image = %s\n", daemon_keys, fx->d.dir, image);
}

/* Data written through the device reads back and is in the file. */
static void roundtrip(struct fixture *fx, struct fe_blk *b, uint64_t sector, uint32_t len,
		      unsigned seed)
{
	uint8_t *data = malloc(len), *back = calloc(1, len);
	harness_fill(data, len, seed);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, sector, data, len), VIRTIO_BLK_S_OK);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, sector, back, len), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, len);
	memset(back, 0, len);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), sector * 512, back, len), 0);
	assert_memory_equal(back, data, len);
	free(data);
	free(back);
}

static void test_no_io_uring_auto(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(harness_image(path(fx, "a.img", 0), 4 * MiB, 3), 0);
	one_disk(fx, path(fx, "a.img", 0), "io-engine = auto");
	fx->d.no_io_uring = true;
	int status = 0;
	if (harness_start(&fx->d, fx->conf, 1, &status) < 0 && status == 77)
		skip();
	assert_int_equal(fx->d.pid > 0, 1);
	assert_true(harness_log_has(&fx->d, "worker 0: io engine threads (up to 4 threads): "
				    "io_uring cannot be set up: Function not implemented"));
	assert_true(harness_log_has(&fx->d, "2 vector(s), io engine threads"));
	struct fe_blk *b = connect_disk(fx);
	roundtrip(fx, b, 8, 64 * KiB, 11);
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

static void test_no_io_uring_refused(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(harness_image(path(fx, "a.img", 0), 4 * MiB, 3), 0);
	one_disk(fx, path(fx, "a.img", 0), "io-engine = io_uring");
	fx->d.no_io_uring = true;
	int status = 0;
	assert_int_equal(harness_start(&fx->d, fx->conf, 1, &status), -1);
	if (status == 77)
		skip();
	assert_int_equal(status, 1);
	assert_true(harness_log_has(&fx->d, "cannot set up io_uring: Function not implemented "
				    "(is kernel.io_uring_disabled set? io-engine = auto or threads "
				    "does without io_uring)"));
}

/* A 1 MiB tmpfs under a 4 MiB sparse image: writes past what it holds
 * fail.  Needs a mount namespace of our own (root); skipped without. */
static bool mount_small(struct fixture *fx)
{
	snprintf(fx->small, sizeof(fx->small), "%s/small", fx->d.dir);
	if (mkdir(fx->small, 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("vivt-small", fx->small, "tmpfs", 0, "size=1M") < 0) {
		fx->small[0] = '\0';
		return false;
	}
	return true;
}

/* n 4 KiB reads one after the other (queue depth 1, as a cell that waits
 * for each answer): how many of them the front-end had to kick for. */
static uint64_t kicks_for_reads(struct fe_blk *b, unsigned n)
{
	uint8_t buf[4096];
	uint64_t before = b->fe->vq[0].kicks;
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 8 * (i % 64), buf, sizeof(buf)),
				 VIRTIO_BLK_S_OK);
	return b->fe->vq[0].kicks - before;
}

/* busy-poll-us: verified I/O with the loops spinning (the default) and
 * with spinning off (no busy poller on the loops at all), both logged.
 * Without spinning every request at queue depth 1 needs its kick; with a
 * window far longer than the front-end takes to send the next one, the
 * loop is watching the ring when it comes and has kicks turned off. */
static void test_busy_poll_on_and_off(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(harness_image(path(fx, "a.img", 0), 4 * MiB, 3), 0);
	static const struct { const char *keys, *log; } v[] = {
		{ "", "busy polling: up to 50 us before a worker loop sleeps" },
		{ "busy-poll-us = 0", "busy polling: off" },
		{ "busy-poll-us = 1000", "busy polling: up to 1000 us before a worker loop sleeps" },
	};
	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		one_disk(fx, path(fx, "a.img", 0), v[i].keys);
		assert_int_equal(harness_start(&fx->d, fx->conf, 1, NULL), 0);
		assert_true(harness_log_has(&fx->d, v[i].log));
		struct fe_blk *b = connect_disk(fx);
		roundtrip(fx, b, 32, 16 * KiB, 20 + i);
		enum { N = 400 };
		uint64_t kicks = kicks_for_reads(b, N);
		if (i == 1)
			assert_int_equal(kicks, N);
		if (i == 2)     /* here 0-2 of 400; a loaded machine misses some */
			assert_true(kicks < 3 * N / 4);
		fe_blk_close(b);
		assert_int_equal(harness_stop(&fx->d), 0);
	}
}

static void test_write_fails_when_full(void **state)
{
	struct fixture *fx = *state;
	if (!mount_small(fx))
		skip();
	char img[480];
	snprintf(img, sizeof(img), "%s/a.img", fx->small);
	assert_int_equal(harness_image(img, 4 * MiB, 0), 0);   /* sparse: takes nothing */
	one_disk(fx, img, "");
	assert_int_equal(harness_start(&fx->d, fx->conf, 1, NULL), 0);
	struct fe_blk *b = connect_disk(fx);
	enum { CHUNK = 128 * KiB, NCHUNK = 24 };     /* 3 MiB into 1 MiB of room */
	uint8_t *data = malloc(NCHUNK * CHUNK);
	harness_fill(data, NCHUNK * CHUNK, 5);
	int st[NCHUNK];
	unsigned ok = 0, ioerr = 0;
	for (unsigned i = 0; i < NCHUNK; i++) {
		st[i] = fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, (uint64_t)i * CHUNK / 512,
				  data + i * CHUNK, CHUNK);
		ok += st[i] == VIRTIO_BLK_S_OK;
		ioerr += st[i] == VIRTIO_BLK_S_IOERR;
	}
	/* Some fit, the rest fail, nothing else is answered. */
	assert_true(ok >= 1 && ioerr >= 1);
	assert_int_equal(ok + ioerr, NCHUNK);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	/* Every acknowledged chunk reads back, through the device and the file. */
	uint8_t *back = malloc(CHUNK);
	for (unsigned i = 0; i < NCHUNK; i++) {
		if (st[i] != VIRTIO_BLK_S_OK)
			continue;
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, (uint64_t)i * CHUNK / 512, back,
					   CHUNK), VIRTIO_BLK_S_OK);
		assert_memory_equal(back, data + i * CHUNK, CHUNK);
		assert_int_equal(harness_read_file(img, (uint64_t)i * CHUNK, back, CHUNK), 0);
		assert_memory_equal(back, data + i * CHUNK, CHUNK);
	}
	assert_true(harness_log_has(&fx->d, "disk0: I/O error on write at sector "));
	assert_true(harness_log_has(&fx->d, "No space left on device"));
	fe_blk_close(b);
	free(data);
	free(back);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* An image in memory (tmpfs): its I/O is made on the loop's own thread
 * (core/io_engine.h in_memory); verified random I/O on two queues over
 * two threads, and the image file holds what was acknowledged. */
static void test_image_in_memory(void **state)
{
	struct fixture *fx = *state;
	char img[300];
	snprintf(img, sizeof(img), "/dev/shm/vivd-e2e-%d.img", (int)getpid());
	if (harness_image(img, 8 * MiB, 3) < 0)
		skip();
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = none\nthreads = 2\n[block disk0]\nsim = %s/disk0.sock\n"
		 "image = %s\nqueues = 2\n", fx->d.dir, img);
	assert_int_equal(harness_start(&fx->d, fx->conf, 1, NULL), 0);
	assert_true(harness_log_has(&fx->d, "(image in memory: I/O made on the loop's thread)"));
	struct fe_blk *b = NULL;
	char err[256];
	if (fe_blk_open(path(fx, "disk0.sock", 1), 0, 2, 64, 5000, &b, err, sizeof(err)) < 0)
		fail_msg("connecting: %s", err);
	struct load l;
	load_init(&l, 16, 9);
	assert_int_equal(load_add_disk(&l, b, 2, img), 0);
	if (load_run(&l, 1000) < 0 || load_drain(&l, 10000) < 0 || load_verify(&l) < 0)
		fail_msg("%s", l.err);
	assert_true(l.disk[0].writes > 100 && l.disk[0].reads > 100);
	uint8_t *file = malloc(8 * MiB);
	assert_int_equal(harness_read_file(img, 0, file, 8 * MiB), 0);
	assert_memory_equal(file, l.disk[0].model, 8 * MiB);
	free(file);
	load_free(&l);
	fe_blk_close(b);
	unlink(img);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* A block device is never taken for an image in memory (its node is on
 * devtmpfs, which statfs calls tmpfs): its I/O goes to the engine, and data
 * round-trips.  Needs root and a free loop device; skipped otherwise. */
static void test_block_device_not_in_memory(void **state)
{
	struct fixture *fx = *state;
	char file[300], dev[64] = "", cmd[700];
	snprintf(file, sizeof(file), "/var/tmp/vivd-e2e-loop-%d.img", (int)getpid());
	if (geteuid() != 0 || access("/dev/loop-control", R_OK | W_OK) != 0 ||
	    harness_image(file, 8 * MiB, 4) < 0)
		skip();
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", file);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(dev, sizeof(dev), p) || strncmp(dev, "/dev/loop", 9) != 0) {
		if (p)
			pclose(p);
		unlink(file);
		skip();
	}
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	one_disk(fx, dev, "");
	int r = harness_start(&fx->d, fx->conf, 1, NULL);
	bool in_memory = harness_log_has(&fx->d, "image in memory");
	uint8_t data[8192], back[8192];
	int wst = -1, rst = -1;
	if (r == 0) {
		struct fe_blk *b = connect_disk(fx);
		harness_fill(data, sizeof(data), 6);
		wst = fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 64, data, sizeof(data));
		rst = fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 64, back, sizeof(back));
		fe_blk_close(b);
		r = harness_stop(&fx->d);
	}
	snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
	if (system(cmd) != 0)
		fprintf(stderr, "could not detach %s\n", dev);
	unlink(file);
	assert_int_equal(r, 0);
	assert_false(in_memory);
	assert_int_equal(wst, VIRTIO_BLK_S_OK);
	assert_int_equal(rst, VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, sizeof(data));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_io_uring_auto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_io_uring_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_poll_on_and_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fails_when_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_device_not_in_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
