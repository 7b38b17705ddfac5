/* Churn and soak, end to end against the real daemon:
 *
 *  - resets and reconnects: one disk is reset (status 0) with reads in
 *    flight on both its queues (on two worker threads: its second queue is
 *    served on the other worker's loop, core/transport.h lanes), then disconnected and connected again with reads in flight,
 *    VIVD_CHURN times each (default 1000), while another disk keeps serving
 *    verified random I/O (tests/load.h); afterwards no fd, no request slot
 *    and no memory is left over in the daemon, and the churned disk still
 *    reads what its image holds;
 *  - soak: 8 disks (four of them with two queues, one on each worker) and
 *    4 consoles on 2 worker threads under mixed load,
 *    control commands and SIGHUPs, for VIVD_SOAK_SECS (default 30): the
 *    daemon's fd count and resident memory, sampled every second, stay flat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "ctl/client.h"
#include "tests/harness.h"
#include "tests/load.h"

#define MiB (1u << 20)
#define CHURN_DEPTH 16

struct fixture {
	struct daemon_proc d;
	char ctl[400];
	struct load load;
	struct load cons[4];
	struct fe_blk *blk[8];
	struct fe_console *con[4];
	int con_sock[4];
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	for (int i = 0; i < 4; i++)
		fx->con_sock[i] = -1;
	*state = fx;
	return harness_mkdir(&fx->d) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	load_free(&fx->load);
	for (int i = 0; i < 8; i++)
		fe_blk_close(fx->blk[i]);
	for (int i = 0; i < 4; i++) {
		fe_console_close(fx->con[i]);
		if (fx->con_sock[i] >= 0)
			close(fx->con_sock[i]);
	}
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

static unsigned env_or(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	return v && atoi(v) > 0 ? (unsigned)atoi(v) : dflt;
}

/* The daemon's open fds and resident memory (KiB). */
/* How much the daemon's RSS may grow once warm. ThreadSanitizer keeps a
 * history trace per thread and shadow cells for every word touched, and grows
 * both for minutes (2 MiB in 11 s of the soak), so under it the figure is
 * printed but only a gross leak fails. */
#ifdef __SANITIZE_THREAD__
#define RSS_SLACK_KIB 32768
#else
#define RSS_SLACK_KIB 2048
#endif

static void usage_of(pid_t pid, unsigned *fds, unsigned long *rss_kib)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", (int)pid);
	FILE *f = popen(cmd, "r");
	*fds = 0;
	if (f) {
		if (fscanf(f, "%u", fds) != 1)
			*fds = 0;
		pclose(f);
	}
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	*rss_kib = 0;
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", rss_kib) == 1)
			break;
	if (f)
		fclose(f);
}

static struct fe_blk *connect_blk(struct fixture *fx, const char *sock, unsigned queues)
{
	struct fe_blk *blk = NULL;
	char err[256];
	if (fe_blk_open(path(fx, sock, 1), 0, queues, 64, 5000, &blk, err, sizeof(err)) < 0)
		fail_msg("connecting to %s: %s", sock, err);
	return blk;
}

/* ---- resets and reconnects ------------------------------------------------- */

struct churn_req {
	struct fe_blk_req r;
	bool busy;
	uint8_t buf[4096];
};

static unsigned churn_bad;

static void churn_done(struct fe_blk_req *r)
{
	struct churn_req *c = r->arg;
	c->busy = false;
	/* answered OK, or never answered because of the reset/close */
	if (r->status != VIRTIO_BLK_S_OK && r->status != -1)
		churn_bad++;
}

/* Put reads in flight on every free slot and kick. */
static void churn_fill(struct fe_blk *blk, struct churn_req *reqs, unsigned *seq)
{
	for (unsigned i = 0; i < CHURN_DEPTH; i++) {
		struct churn_req *c = &reqs[i];
		if (c->busy)
			continue;
		c->r = (struct fe_blk_req){ .type = VIRTIO_BLK_T_IN,
					    .sector = (uint64_t)((*seq)++ % 2048) * 8,
					    .buf = c->buf, .len = sizeof(c->buf),
					    .done = churn_done, .arg = c };
		if (fe_blk_submit(blk, i % 2, &c->r) < 0)
			break;
		c->busy = true;
	}
	fe_blk_kick(blk, 0);
	fe_blk_kick(blk, 1);
}

static void test_resets_and_reconnects(void **state)
{
	struct fixture *fx = *state;
	char conf[2048], err[256];
	assert_int_equal(harness_image(path(fx, "a.img", 0), 16 * MiB, 31), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 8 * MiB, 32), 0);
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\nthreads = 2\n"
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s/a.img\nqueues = 2\n"
		 "[block disk1]\nsim = %s/disk1.sock\nimage = %s/b.img\nqueues = 2\n",
		 fx->ctl, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir);
	assert_int_equal(harness_start(&fx->d, conf, 2, NULL), 0);
	/* each disk's second queue is served on the other worker */
	assert_true(harness_log_has(&fx->d, "on 2 worker(s)"));
	fx->blk[0] = connect_blk(fx, "disk0.sock", 2);
	load_init(&fx->load, 32, 5);
	assert_int_equal(load_add_disk(&fx->load, fx->blk[0], 2, path(fx, "a.img", 0)), 0);
	struct load *l = &fx->load;
	struct churn_req *reqs = calloc(CHURN_DEPTH, sizeof(*reqs));
	unsigned n = env_or("VIVD_CHURN", 1000), seq = 0, fds0 = 0, fds1;
	unsigned long rss0 = 0, rss1;
	churn_bad = 0;
	fx->blk[1] = connect_blk(fx, "disk1.sock", 2);
	for (unsigned i = 0; i < 2 * n && !l->failed; i++) {
		if (i == 50)
			usage_of(fx->d.pid, &fds0, &rss0);      /* after a warm-up */
		churn_fill(fx->blk[1], reqs, &seq);
		load_run(l, 1);
		if (i < n) {
			if (fe_blk_reset(fx->blk[1], 2, 64, err, sizeof(err)) < 0)
				fail_msg("reset %u: %s", i + 1, err);
		} else {
			fe_blk_close(fx->blk[1]);       /* the requests in flight die with it */
			for (unsigned k = 0; k < CHURN_DEPTH; k++)
				reqs[k].busy = false;
			fx->blk[1] = connect_blk(fx, "disk1.sock", 2);
		}
	}
	if (l->failed)
		fail_msg("disk0 during the churn: %s", l->err);
	assert_int_equal(churn_bad, 0);
	/* what the churned disk reads is still its image */
	uint8_t *img = malloc(MiB), *got = malloc(MiB);
	assert_int_equal(harness_read_file(path(fx, "b.img", 0), 0, img, MiB), 0);
	for (unsigned off = 0; off < MiB; off += 65536)
		assert_int_equal(fe_blk_io(fx->blk[1], 0, VIRTIO_BLK_T_IN, off / 512, got + off,
					   65536), VIRTIO_BLK_S_OK);
	assert_memory_equal(img, got, MiB);
	free(img);
	free(got);
	if (load_drain(l, 10000) < 0 || load_verify(l) < 0)
		fail_msg("disk0: %s", l->err);
	/* nothing left over: fds and memory (counted before any control client
	 * connects), request slots */
	usage_of(fx->d.pid, &fds1, &rss1);
	char *body = NULL;
	assert_int_equal(ctl_request(fx->ctl, "json stats disk1", 5000, &body, err, sizeof(err)), 0);
	assert_non_null(strstr(body, "\"inflight\":0"));
	free(body);
	printf("%u resets and %u reconnects with %u reads in flight: daemon fds %u -> %u, "
	       "RSS %lu -> %lu KiB\n", n, n, CHURN_DEPTH, fds0, fds1, rss0, rss1);
	assert_int_equal(fds1, fds0);
	assert_true(rss1 < rss0 + RSS_SLACK_KIB);
	assert_int_equal(harness_stop(&fx->d), 0);
	free(reqs);
}

/* ---- soak ------------------------------------------------------------------ */

struct poker {
	struct fixture *fx;
	pthread_t thread;
	int stop;                   /* atomic */
	int hold, held;             /* atomic: pause between commands (fds are counted then) */
	unsigned commands, hups;
	int failed;                 /* atomic; err is read after the join */
	char err[300];
};

/* Control commands every 50 ms and a SIGHUP every 500 ms. */
static void *poke(void *arg)
{
	struct poker *p = arg;
	/* resize of a disk whose queues are on both workers: they come home
	 * and go out again, under load */
	static const char *const cmds[] = { "list", "stats", "json stats", "json list",
					    "stats disk3", "resize disk1" };
	const unsigned ncmds = sizeof(cmds) / sizeof(cmds[0]);
	for (unsigned i = 0; !__atomic_load_n(&p->stop, __ATOMIC_RELAXED); i++) {
		char *body = NULL, err[256];
		while (__atomic_load_n(&p->hold, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
			__atomic_store_n(&p->held, 1, __ATOMIC_RELEASE);
			usleep(1000);
		}
		__atomic_store_n(&p->held, 0, __ATOMIC_RELEASE);
		if (ctl_request(p->fx->ctl, cmds[i % ncmds], 5000, &body, err, sizeof(err)) < 0) {
			snprintf(p->err, sizeof(p->err), "%s: %s", cmds[i % ncmds], err);
			__atomic_store_n(&p->failed, 1, __ATOMIC_RELEASE);
			break;
		}
		free(body);
		p->commands++;
		if (i % 10 == 9) {
			kill(p->fx->d.pid, SIGHUP);
			p->hups++;
		}
		usleep(50000);
	}
	return NULL;
}

static void test_soak(void **state)
{
	struct fixture *fx = *state;
	char conf[8192], err[256];
	size_t len = 0;
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	len += (size_t)snprintf(conf + len, sizeof(conf) - len,
				"[daemon]\ncontrol-socket = %s\nthreads = 2\n", fx->ctl);
	for (int i = 0; i < 8; i++) {
		char img[32];
		snprintf(img, sizeof(img), "d%d.img", i);
		assert_int_equal(harness_image(path(fx, img, 0), 4 * MiB, 40 + (uint64_t)i), 0);
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
					"[block disk%d]\nsim = %s/disk%d.sock\nimage = %s/%s\n"
					"queues = %d\n", i, fx->d.dir, i, fx->d.dir, img, 1 + i % 2);
	}
	for (int i = 0; i < 4; i++)
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
					"[console con%d]\nsim = %s/con%d.sock\nendpoint = socket\n"
					"path = %s/con%d-ep.sock\nbacklog = 64K\n",
					i, fx->d.dir, i, fx->d.dir, i);
	assert_int_equal(harness_start(&fx->d, conf, 12, NULL), 0);
	load_init(&fx->load, 8, 77);
	for (int i = 0; i < 8; i++) {
		char sock[32], img[32];
		snprintf(sock, sizeof(sock), "disk%d.sock", i);
		snprintf(img, sizeof(img), "d%d.img", i);
		/* odd disks have two queues, one served on each worker */
		fx->blk[i] = connect_blk(fx, sock, 1 + i % 2);
		assert_int_equal(load_add_disk(&fx->load, fx->blk[i], 1 + i % 2, path(fx, img, 0)),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		char sock[32], ep[32];
		snprintf(sock, sizeof(sock), "con%d.sock", i);
		snprintf(ep, sizeof(ep), "con%d-ep.sock", i);
		if (fe_console_open(path(fx, sock, 1), 32, 16, 4096, 5000, &fx->con[i], err,
				    sizeof(err)) < 0)
			fail_msg("console %d: %s", i, err);
		fx->con_sock[i] = harness_unix_connect(path(fx, ep, 1));
		assert_true(fx->con_sock[i] >= 0);
		load_init(&fx->cons[i], 1, 90 + (uint64_t)i);
		load_add_console(&fx->cons[i], fx->con[i], fx->con_sock[i]);
	}
	struct poker pk = { .fx = fx };
	assert_int_equal(pthread_create(&pk.thread, NULL, poke, &pk), 0);
	unsigned secs = env_or("VIVD_SOAK_SECS", 30), fds0 = 0, fds;
	unsigned long rss0 = 0, rss, rss_max = 0;
	bool failed = false;
	for (unsigned s = 0; s < secs && !failed; s++) {
		time_t end = time(NULL) + 1;
		while (time(NULL) < end && !failed) {
			failed |= load_run(&fx->load, 5) < 0;
			for (int i = 0; i < 4 && !failed; i++)
				failed |= load_run(&fx->cons[i], 2) < 0;
		}
		/* no control client connected while the fds are counted */
		__atomic_store_n(&pk.hold, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&pk.held, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&pk.failed, __ATOMIC_ACQUIRE))
			usleep(1000);
		usleep(20000);      /* the daemon has closed the last one */
		usage_of(fx->d.pid, &fds, &rss);
		__atomic_store_n(&pk.hold, 0, __ATOMIC_RELEASE);
		if (s == 4) {
			fds0 = fds;
			rss0 = rss;
		}
		if (s >= 4) {
			if (fds != fds0)
				fail_msg("second %u: the daemon has %u fds, %u at second 4", s, fds, fds0);
			if (rss > rss_max)
				rss_max = rss;
		}
	}
	__atomic_store_n(&pk.stop, 1, __ATOMIC_RELAXED);
	pthread_join(pk.thread, NULL);
	if (fx->load.failed)
		fail_msg("disks: %s", fx->load.err);
	for (int i = 0; i < 4; i++)
		if (fx->cons[i].failed)
			fail_msg("console %d: %s", i, fx->cons[i].err);
	if (pk.err[0])
		fail_msg("control: %s", pk.err);
	if (load_drain(&fx->load, 20000) < 0 || load_verify(&fx->load) < 0)
		fail_msg("disks: %s", fx->load.err);
	for (int i = 0; i < 4; i++)
		if (load_drain(&fx->cons[i], 20000) < 0)
			fail_msg("console %d: %s", i, fx->cons[i].err);
	printf("soak %u s: %llu reads, %llu writes on 8 disks, %u control commands, %u SIGHUPs; "
	       "daemon fds %u throughout, RSS %lu KiB at 4 s, at most %lu KiB\n", secs,
	       (unsigned long long)(fx->load.disk[0].reads + fx->load.disk[7].reads),
	       (unsigned long long)(fx->load.disk[0].writes + fx->load.disk[7].writes),
	       pk.commands, pk.hups, fds0, rss0, rss_max);
	assert_true(rss_max < rss0 + RSS_SLACK_KIB);
	assert_true(pk.commands > secs);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* ASan parks freed blocks in a quarantine (256 MiB, plus 1 MiB per thread)
 * before reusing them, so under ASan the daemon's RSS climbs for minutes
 * whether or not it leaks, and the flat-memory checks above would measure the
 * quarantine (5 MiB of growth in 30 s even at 4 MiB). Without it a freed block
 * stays poisoned until reused, which still catches most late uses;
 * LeakSanitizer at the daemon's exit catches what is lost, these checks what
 * is kept. */
static void no_quarantine(void)
{
#if defined(__SANITIZE_ADDRESS__)
	const char *old = getenv("ASAN_OPTIONS");
	char opts[512];
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0", old ? old : "",
		 old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
#endif
}

int main(void)
{
	no_quarantine();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resets_and_reconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soak, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
