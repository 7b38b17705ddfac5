/* A disk's queues spread over worker threads ("lanes", core/transport.h),
 * end to end: the real daemon with threads = 2 and two-queue disks, whose
 * second queue is served on the other worker's loop.
 *
 *  - verified random I/O on both queues of two disks at once, and the
 *    counters put together from both threads agree with what the front-end
 *    did, request for request;
 *  - a change of medium and a resize while the cell drives both queues:
 *    answered requests read the old medium, later ones the new one;
 *  - a broken ring on the queue served away from home marks the device
 *    DEVICE_NEEDS_RESET like any other, and the disk serves after a reset.
 *
 * Resets and reconnects with requests in flight on both queues, hand-overs
 * and crashes under load run in test_soak, test_upgrade and test_crash,
 * whose disks have two queues on two threads too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "ctl/client.h"
#include "tests/frontend/fe_blk.h"
#include "tests/harness.h"
#include "tests/load.h"

#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;
	char ctl[400];
	struct load load;
	bool has_load;
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	if (fx->has_load)
		load_free(&fx->load);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

/* threads = 2; disk a (16 MiB) and b (8 MiB) with two queues, b read-only
 * when asked. */
static void start(struct fixture *fx, bool b_read_only)
{
	char conf[2048];
	assert_int_equal(harness_mkdir(&fx->d), 0);
	assert_int_equal(harness_image(path(fx, "a.img", 0), 16 * MiB, 11), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 8 * MiB, 12), 0);
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\nthreads = 2\n"
		 "[block a]\nsim = %s/a.sock\nimage = %s/a.img\nqueues = 2\nqueue-size = 64\n"
		 "[block b]\nsim = %s/b.sock\nimage = %s/b.img\nqueues = 2\nqueue-size = 64\n%s",
		 fx->ctl, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir,
		 b_read_only ? "read-only = yes\n" : "");
	assert_int_equal(harness_start(&fx->d, conf, 2, NULL), 0);
	assert_true(harness_log_has(&fx->d, "2 queue(s) of 64 on 2 worker(s)"));
}

static struct fe_blk *connect_disk(struct fixture *fx, const char *sock)
{
	struct fe_blk *blk = NULL;
	char err[256];
	if (fe_blk_open(path(fx, sock, 1), 0, 2, 64, 5000, &blk, err, sizeof(err)) < 0)
		fail_msg("connecting to %s: %s", sock, err);
	return blk;
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

static void test_spread_verified(void **state)
{
	struct fixture *fx = *state;
	start(fx, false);
	struct fe_blk *a = connect_disk(fx, "a.sock"), *b = connect_disk(fx, "b.sock");
	load_init(&fx->load, 32, 21);
	fx->has_load = true;
	assert_int_equal(load_add_disk(&fx->load, a, 2, path(fx, "a.img", 0)), 0);
	assert_int_equal(load_add_disk(&fx->load, b, 2, path(fx, "b.img", 0)), 0);
	if (load_run(&fx->load, 2000) < 0 || load_drain(&fx->load, 10000) < 0)
		fail_msg("%s", fx->load.err);
	/* Counted before the verification reads: the front-end's numbers. */
	const struct load_disk *la = &fx->load.disk[0];
	const char *s = ctl(fx, "json stats a");
	const char *rd = strstr(s, "\"read\":"), *wr = strstr(s, "\"write\":");
	const char *q0 = strstr(s, "{\"index\":0,"), *q1 = strstr(s, "{\"index\":1,");
	assert_non_null(rd);
	assert_non_null(wr);
	assert_non_null(q0);
	assert_non_null(q1);
	unsigned long long reads = json_num(rd, "requests");
	unsigned long long writes = json_num(wr, "requests");
	unsigned long long flushes = json_num(s, "flushes");
	unsigned long long on0 = json_num(q0, "requests"), on1 = json_num(q1, "requests");
	printf("disk a: %llu reads, %llu writes, %llu flushes; queue 0 %llu, queue 1 %llu "
	       "requests\n", reads, writes, flushes, on0, on1);
	assert_int_equal(reads, la->reads);
	assert_int_equal(writes, la->writes);
	assert_int_equal(flushes, la->flushes);
	assert_int_equal(on0 + on1, reads + writes + flushes + json_num(s, "get_ids"));
	/* both threads served: each queue took a fair share */
	assert_true(on0 > (on0 + on1) / 5);
	assert_true(on1 > (on0 + on1) / 5);
	assert_int_equal(json_num(s, "inflight"), 0);
	if (load_verify(&fx->load) < 0)
		fail_msg("%s", fx->load.err);
	/* and the image files hold what the front-end wrote */
	uint8_t *img = malloc(16 * MiB);
	assert_non_null(img);
	assert_int_equal(harness_read_file(path(fx, "a.img", 0), 0, img, 16 * MiB), 0);
	assert_memory_equal(img, la->model, 16 * MiB);
	free(img);
	fe_blk_close(a);
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

struct pending {
	struct fe_blk_req r;
	uint8_t buf[4096];
	bool done;
};

static void mark_done(struct fe_blk_req *r)
{
	((struct pending *)r->arg)->done = true;
}

/* Reads in flight on both queues when the command comes: it waits for
 * them (they read the old medium), and later reads see the new one. */
static void test_change_while_driven(void **state)
{
	struct fixture *fx = *state;
	start(fx, true);
	assert_int_equal(harness_image(path(fx, "c.img", 0), 4 * MiB, 13), 0);
	struct fe_blk *b = connect_disk(fx, "b.sock");
	uint8_t old[4096], new[4096], got[4096];
	assert_int_equal(harness_read_file(path(fx, "b.img", 0), 4096, old, 4096), 0);
	assert_int_equal(harness_read_file(path(fx, "c.img", 0), 4096, new, 4096), 0);
	for (int round = 0; round < 6; round++) {
		struct pending p[16] = { 0 };
		for (unsigned i = 0; i < 16; i++) {
			p[i].r = (struct fe_blk_req){ .type = VIRTIO_BLK_T_IN, .sector = 8,
						      .buf = p[i].buf, .len = 4096,
						      .done = mark_done, .arg = &p[i] };
			assert_int_equal(fe_blk_submit(b, i % 2, &p[i].r), 0);
		}
		fe_blk_kick(b, 0);
		fe_blk_kick(b, 1);
		char cmd[600];
		bool to_c = round % 2 == 0;
		snprintf(cmd, sizeof(cmd), "change b %s", path(fx, to_c ? "c.img" : "b.img", 0));
		char want[100];
		snprintf(want, sizeof(want), "b: medium changed, capacity %u sectors",
			 (to_c ? 4 : 8) * MiB / 512);
		assert_string_equal(ctl(fx, cmd), want);
		for (int k = 0; k < 200; k++) {
			bool all = true;
			for (unsigned i = 0; i < 16; i++)
				all &= p[i].done;
			if (all)
				break;
			fe_blk_poll(b, 50);
		}
		for (unsigned i = 0; i < 16; i++) {
			assert_true(p[i].done);
			assert_int_equal(p[i].r.status, VIRTIO_BLK_S_OK);
			assert_memory_equal(p[i].buf, to_c ? old : new, 4096);
		}
		for (unsigned q = 0; q < 2; q++) {
			assert_int_equal(fe_blk_io(b, q, VIRTIO_BLK_T_IN, 8, got, 4096),
					 VIRTIO_BLK_S_OK);
			assert_memory_equal(got, to_c ? new : old, 4096);
		}
	}
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* A resize while both queues run: the new sectors are served on both. */
static void test_resize_while_driven(void **state)
{
	struct fixture *fx = *state;
	start(fx, false);
	struct fe_blk *a = connect_disk(fx, "a.sock");
	load_init(&fx->load, 16, 22);
	fx->has_load = true;
	assert_int_equal(load_add_disk(&fx->load, a, 2, path(fx, "a.img", 0)), 0);
	uint8_t buf[4096];
	const uint64_t old_end = 16 * MiB / 512;
	/* past the end: refused */
	assert_int_equal(fe_blk_io(a, 1, VIRTIO_BLK_T_IN, old_end, buf, 4096), VIRTIO_BLK_S_IOERR);
	if (load_run(&fx->load, 300) < 0)
		fail_msg("%s", fx->load.err);
	assert_int_equal(truncate(path(fx, "a.img", 0), 32 * MiB), 0);
	assert_string_equal(ctl(fx, "resize a"), "a: capacity 65536 sectors");
	if (load_run(&fx->load, 300) < 0 || load_drain(&fx->load, 10000) < 0 ||
	    load_verify(&fx->load) < 0)
		fail_msg("%s", fx->load.err);
	for (unsigned q = 0; q < 2; q++) {
		harness_fill(buf, sizeof(buf), 30 + q);
		assert_int_equal(fe_blk_io(a, q, VIRTIO_BLK_T_OUT, old_end + 8 * q, buf, 4096),
				 VIRTIO_BLK_S_OK);
	}
	uint8_t back[4096];
	for (unsigned q = 0; q < 2; q++) {
		harness_fill(buf, sizeof(buf), 30 + q);
		assert_int_equal(harness_read_file(path(fx, "a.img", 0), 16 * MiB + 4096 * q, back,
						   4096), 0);
		assert_memory_equal(back, buf, 4096);
	}
	fe_blk_close(a);
	assert_int_equal(harness_stop(&fx->d), 0);
}

static bool wait_needs_reset(struct fe_dev *fe)
{
	for (int i = 0; i < 300; i++) {
		if (fe_status(fe) & VIRTIO_STATUS_NEEDS_RESET)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* A head out of range on queue 1 (served away from home): the device
 * needs a reset, disk b serves verified I/O all along, and after the
 * front-end's reset disk a serves on both queues again. */
static void test_broken_ring_away_from_home(void **state)
{
	struct fixture *fx = *state;
	start(fx, false);
	struct fe_blk *b = connect_disk(fx, "b.sock");
	load_init(&fx->load, 16, 23);
	fx->has_load = true;
	assert_int_equal(load_add_disk(&fx->load, b, 2, path(fx, "b.img", 0)), 0);
	char err[256];
	struct fe_blk *a = connect_disk(fx, "a.sock");
	for (int round = 0; round < 3; round++) {
		struct fe_vq *vq = &a->fe->vq[1];
		shm_st16(a->fe->rw, vq->avail + 4 + 2ull * (vq->avail_idx & (vq->num - 1)),
			 (uint16_t)(vq->num + 5));
		vq->avail_idx++;
		fe_vq_kick(a->fe, 1);
		ivshm_port_notify(a->fe->port, vq->device_vector);
		assert_true(wait_needs_reset(a->fe));
		if (load_run(&fx->load, 200) < 0)
			fail_msg("disk b: %s", fx->load.err);
		assert_int_equal(fe_blk_reset(a, 2, 64, err, sizeof(err)), 0);
		uint8_t buf[4096], back[4096];
		for (unsigned q = 0; q < 2; q++) {
			harness_fill(buf, sizeof(buf), 40 + q + 2 * (unsigned)round);
			assert_int_equal(fe_blk_io(a, q, VIRTIO_BLK_T_OUT, 64 * q, buf, 4096),
					 VIRTIO_BLK_S_OK);
			assert_int_equal(fe_blk_io(a, 1 - q, VIRTIO_BLK_T_IN, 64 * q, back, 4096),
					 VIRTIO_BLK_S_OK);
			assert_memory_equal(buf, back, 4096);
		}
	}
	assert_true(harness_log_has(&fx->d, "a: driver broke the ring protocol on queue 1"));
	if (load_drain(&fx->load, 10000) < 0 || load_verify(&fx->load) < 0)
		fail_msg("disk b: %s", fx->load.err);
	fe_blk_close(a);
	fe_blk_close(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spread_verified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_while_driven, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize_while_driven, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring_away_from_home, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
