/* End-to-end: the daemon's I/O engine.  Without io_uring (a seccomp filter
 * answers io_uring_setup with ENOSYS) "auto" serves with the threads and
 * logs why, "io_uring" refuses to start with the reason; a write the file
 * system cannot take (full tmpfs: a short write, then ENOSPC) reaches the
 * cell as IOERR while every acknowledged write is in the image.  Runs with
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_io_uring_auto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_io_uring_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fails_when_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
