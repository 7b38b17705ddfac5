/* The null disk (image = null:SIZE, backends/blk.h) end to end: answered
 * at once with the right status and used length, data left untouched,
 * requests checked as on a real disk; the front-end's bounce buffers as the
 * driver's (cleared, copied, first fit); the medium through change and an
 * upgrade; and the benchmark running on it with --no-copy and with a thread
 * per queue.  Behaviour only: what anything costs is the benchmark's
 * business (scripts/bench). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/virtio_ivshmem.h"
#include "ctl/client.h"
#include "tests/frontend/fe_blk.h"
#include "tests/harness.h"

#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;
	char ctl[400];
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	*state = fx;
	if (!fx || harness_mkdir(&fx->d) < 0)
		return -1;
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	char conf[2048];
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\n"
		 "[block n]\nsim = %s/n.sock\nimage = null:16M\nqueues = 2\n"
		 "[block ro]\nsim = %s/ro.sock\nimage = null:8M\nread-only = yes\n",
		 fx->ctl, fx->d.dir, fx->d.dir);
	return harness_start(&fx->d, conf, 2, NULL);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int st = harness_stop(&fx->d);
	harness_cleanup(&fx->d);
	free(fx);
	return st == 0 ? 0 : -1;
}

static struct fe_blk *connect_disk(struct fixture *fx, const char *sock, unsigned queues)
{
	struct fe_blk *blk = NULL;
	char err[256];
	int r = fe_blk_open(path(fx, sock, 1), 0, queues, 128, 5000, &blk, err, sizeof(err));
	if (r < 0)
		fail_msg("connecting to %s: %s", sock, err);
	return blk;
}

static void wait_done(struct fe_blk *b, const struct fe_blk_req *req)
{
	for (int tries = 0; req->status == -2 && tries < 50; tries++) {
		int r = fe_blk_poll(b, 100);
		assert_true(r >= 0 || r == -ETIMEDOUT);
	}
	assert_int_not_equal(req->status, -2);
}

static void write_segment(uint8_t *seg, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t s = htole64(sector);
	uint32_t nn = htole32(n), f = htole32(flags);
	memcpy(seg, &s, 8);
	memcpy(seg + 8, &nn, 4);
	memcpy(seg + 12, &f, 4);
}

/* Every kind of request answered OK; a read's used length counts its data
 * (and the status byte), a write's the status byte only. */
static void test_answers(void **state)
{
	struct fixture *fx = *state;
	struct fe_blk *b = connect_disk(fx, "n.sock", 2);
	assert_int_equal(b->capacity, 16 * MiB / 512);
	assert_int_equal(b->num_queues, 2);
	uint8_t buf[8192], seg[16];
	memset(buf, 0x3c, sizeof(buf));
	struct fe_blk_req rd = { .type = VIRTIO_BLK_T_IN, .sector = b->capacity - 16, .buf = buf,
				 .len = 8192, .status = -2 };
	assert_int_equal(fe_blk_submit(b, 1, &rd), 0);
	fe_blk_kick(b, 1);
	wait_done(b, &rd);
	assert_int_equal(rd.status, VIRTIO_BLK_S_OK);
	assert_int_equal(rd.used_len, 8192 + 1);
	struct fe_blk_req wr = { .type = VIRTIO_BLK_T_OUT, .sector = 0, .buf = buf, .len = 4096,
				 .status = -2 };
	assert_int_equal(fe_blk_submit(b, 0, &wr), 0);
	fe_blk_kick(b, 0);
	wait_done(b, &wr);
	assert_int_equal(wr.status, VIRTIO_BLK_S_OK);
	assert_int_equal(wr.used_len, 1);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	write_segment(seg, 8, 8, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_OK);
	write_segment(seg, 8, 8, VIRTIO_BLK_WZ_FLAG_UNMAP);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16), VIRTIO_BLK_S_OK);
	char id[VIRTIO_BLK_ID_BYTES] = "";
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), VIRTIO_BLK_S_OK);
	assert_string_equal(id, "n");
	fe_blk_close(b);
}

/* Reads leave the driver's buffer as mapped: no byte of shared memory is
 * written but the status.  (--no-copy keeps the front-end from clearing it,
 * so what is there is what we put.) */
static void test_data_untouched(void **state)
{
	struct fixture *fx = *state;
	struct fe_blk *b = connect_disk(fx, "n.sock", 1);
	b->no_copy = true;
	uint8_t buf[4096];
	struct fe_blk_req rd = { .type = VIRTIO_BLK_T_IN, .sector = 64, .buf = buf, .len = 4096,
				 .status = -2 };
	assert_int_equal(fe_blk_submit(b, 0, &rd), 0);
	uint8_t *shm = fe_ptr(b->fe, rd.data_off);
	memset(shm, 0xa5, 4096);
	fe_blk_kick(b, 0);
	wait_done(b, &rd);
	assert_int_equal(rd.status, VIRTIO_BLK_S_OK);
	assert_int_equal(rd.used_len, 4096 + 1);
	for (unsigned i = 0; i < 4096; i++)
		if (shm[i] != 0xa5)
			fail_msg("byte %u of the read buffer was written (0x%02x)", i, shm[i]);
	fe_blk_close(b);
}

/* The front-end bounces as the cell's driver does (fe_blk.h): a write's
 * data is in its bounce buffer at submit, a read's buffer was cleared at map
 * and is copied out at completion (the null disk writes nothing, so the
 * caller gets the zeroes), and the next request takes the lowest chunks
 * again while one in flight pushes the next one up. */
static void test_frontend_bounce(void **state)
{
	struct fixture *fx = *state;
	struct fe_blk *b = connect_disk(fx, "n.sock", 1);
	uint8_t buf[4096], zero[4096] = { 0 };
	memset(buf, 0x77, sizeof(buf));
	struct fe_blk_req wr = { .type = VIRTIO_BLK_T_OUT, .buf = buf, .len = 4096, .status = -2 };
	assert_int_equal(fe_blk_submit(b, 0, &wr), 0);
	assert_memory_equal(fe_ptr(b->fe, wr.data_off), buf, 4096);
	struct fe_blk_req wr2 = wr;
	assert_int_equal(fe_blk_submit(b, 0, &wr2), 0);
	assert_true(wr2.data_off > wr.data_off);
	fe_blk_kick(b, 0);
	wait_done(b, &wr);
	wait_done(b, &wr2);
	struct fe_blk_req rd = { .type = VIRTIO_BLK_T_IN, .buf = buf, .len = 4096, .status = -2 };
	assert_int_equal(fe_blk_submit(b, 0, &rd), 0);
	assert_int_equal(rd.data_off, wr.data_off);     /* first fit: the lowest again */
	assert_int_equal(rd.hdr_off, wr.hdr_off);
	fe_blk_kick(b, 0);
	wait_done(b, &rd);
	assert_int_equal(rd.status, VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, zero, 4096);
	fe_blk_close(b);
}

/* Checked as on a real disk: out of range, misaligned, unknown, read-only. */
static void test_rejects(void **state)
{
	struct fixture *fx = *state;
	struct fe_blk *b = connect_disk(fx, "n.sock", 1);
	uint8_t buf[4096] = { 0 }, seg[16];
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, b->capacity, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, b->capacity - 4, buf, 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, UINT64_MAX - 1, buf, 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, buf, 100), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, 0x55, 0, buf, 512), VIRTIO_BLK_S_UNSUPP);
	write_segment(seg, b->capacity - 1, 2, 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, b->capacity - 1, buf, 512),
			 VIRTIO_BLK_S_OK);
	fe_blk_close(b);

	struct fe_blk *ro = connect_disk(fx, "ro.sock", 1);
	assert_true(ro->fe->features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	assert_int_equal(ro->capacity, 8 * MiB / 512);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096), VIRTIO_BLK_S_IOERR);
	write_segment(seg, 0, 8, 0);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_DISCARD, 0, seg, 16), VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), VIRTIO_BLK_S_OK);
	fe_blk_close(ro);
}

static const char *ctl(struct fixture *fx, const char *cmd)
{
	return harness_ctl(fx->ctl, cmd);
}

/* The medium by name: a null disk swapped for a file and back, resize
 * keeps its size, and an upgrade takes it over with the session going on. */
static void test_change_and_upgrade(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(harness_image(path(fx, "f.img", 0), 2 * MiB, 9), 0);
	struct fe_blk *ro = connect_disk(fx, "ro.sock", 1);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "change ro %s", path(fx, "f.img", 0));
	assert_string_equal(ctl(fx, cmd), "ro: medium changed, capacity 4096 sectors");
	assert_string_equal(ctl(fx, "change ro null:4M"), "ro: medium changed, capacity 8192 "
			    "sectors");
	assert_string_equal(ctl(fx, "change ro null:4000"), "image null:4000: the null disk needs "
			    "a size in bytes, a multiple of 512, like null:1G");
	assert_string_equal(ctl(fx, "resize ro"), "ro: capacity 8192 sectors");
	assert_non_null(strstr(ctl(fx, "list"), "null:4M"));
	uint8_t buf[512];
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 8191, buf, 512), VIRTIO_BLK_S_OK);
	assert_non_null(strstr(ctl(fx, "upgrade"), ": 2 device(s) taken over, 0 started afresh"));
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 8191, buf, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 8192, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_non_null(strstr(ctl(fx, "list"), "null:4M"));
	assert_false(harness_log_has(&fx->d, "cannot take the device over"));
	fe_blk_close(ro);
}

/* Run the benchmark for a second with args; its output into out. */
static void run_bench(struct fixture *fx, const char *const *args, char *out, size_t len)
{
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)fx->d.pid);
	const char *argv[32] = { "virtio-ivshmem-bench", "--socket", path(fx, "n.sock", 0),
				 "--runtime", "1", "--quiet", "--daemon-pid", pid };
	unsigned n = 8;
	for (unsigned i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t child = fork();
	if (child == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		execv(BENCH_PATH, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < len && (r = read(pipefd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(pipefd[0]);
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the bench failed:\n%s", out);
	const char *res = strstr(out, "\nRESULT iops=");
	assert_non_null(res);
	assert_non_null(strstr(res, " daemon_cpu_us="));
	assert_non_null(strstr(res, " daemon_syscr="));
	assert_non_null(strstr(res, " bench_vcsw="));
	assert_null(strstr(out, "ERRORS"));
}

/* The benchmark runs on the null disk with --no-copy and reports the
 * daemon's cost; and with a thread per queue. */
static void test_bench(void **state)
{
	struct fixture *fx = *state;
	static char out[8192];
	static const char *const no_copy[] = { "--iodepth", "8", "--no-copy", NULL };
	run_bench(fx, no_copy, out, sizeof(out));
	assert_non_null(strstr(out, "1 thread(s), 1s, no bounce copies (--no-copy)"));
	static const char *const threads[] = { "--queues", "2", "--threads", "2", "--rw", "randrw",
					       NULL };
	run_bench(fx, threads, out, sizeof(out));
	assert_non_null(strstr(out, "2 queue(s) x iodepth 32 per device, 2 thread(s)"));
	assert_non_null(strstr(out, "  read "));
	assert_non_null(strstr(out, "  write "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frontend_bounce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_and_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
