/* Metrics end to end: the real daemon, the userspace front-end, and the
 * real virtio-ivshmemctl (stats --json, stats --openmetrics, top).
 *
 * Each test gets a daemon of its own (two disks, a with two queues, and a
 * console), so every count starts at zero: the latency histogram counts
 * exactly the requests made, the OpenMetrics answer equals the JSON one
 * (checked by tests/om_check.py with prometheus_client's parser; skipped
 * without it), and top prints what a known load does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/transport.h"
#include "tests/frontend/fe_blk.h"
#include "tests/frontend/fe_console.h"
#include "tests/harness.h"

#ifndef CTL_PATH
#error "CTL_PATH must point at the virtio-ivshmemctl binary"
#endif
#ifndef OM_PYTHON
#define OM_PYTHON ""
#endif

#define DISK_SIZE (4u << 20)

static struct daemon_proc d;
static char ctl_sock[400];

static int setup_with(const char *daemon_keys)
{
	if (harness_mkdir(&d) < 0)
		return -1;
	harness_image(harness_path(&d, "a.img", 0), DISK_SIZE, 1);
	harness_image(harness_path(&d, "b.img", 0), DISK_SIZE, 2);
	snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", d.dir);
	char conf[2048];
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\n%s"
		 "[block a]\nsim = %s/a.sock\nimage = %s/a.img\nqueues = 2\n"
		 "[block b]\nsim = %s/b.sock\nimage = %s/b.img\n"
		 "[console c]\nsim = %s/c.sock\nendpoint = log\npath = %s/c.log\n",
		 ctl_sock, daemon_keys, d.dir, d.dir, d.dir, d.dir, d.dir, d.dir);
	return harness_start(&d, conf, 3, NULL);
}

static int setup(void **state)
{
	return setup_with("");
}

/* Loops that spin up to 1 ms before they sleep. */
static int setup_spin(void **state)
{
	return setup_with("busy-poll-us = 1000\n");
}

static int teardown(void **state)
{
	int st = harness_stop(&d);
	harness_cleanup(&d);
	return st == 0 ? 0 : -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct fe_blk *disk(const char *name, unsigned queues)
{
	struct fe_blk *b;
	char err[256];
	if (fe_blk_open(harness_path(&d, name, 0), 0, queues, 32, 5000, &b, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return b;
}

/* Start virtio-ivshmemctl -s SOCK args...; its stdout comes out of *out_fd
 * (non-blocking), its stderr goes to the daemon's test directory. */
static pid_t ctl_start(const char *const *args, int *out_fd)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[16] = { CTL_PATH, "-s", ctl_sock };
		unsigned n = 3;
		for (; *args && n < 15; args++)
			argv[n++] = *args;
		argv[n] = NULL;
		dup2(p[1], 1);
		int e = open(harness_path(&d, "ctl.err", 0), O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (e >= 0)
			dup2(e, 2);
		close(p[0]);
		execv(CTL_PATH, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*out_fd = p[0];
	return pid;
}

/* Append what fd has now to buf (len bytes, kept NUL-terminated). */
static void take_output(int fd, char *buf, size_t len, size_t *got)
{
	for (;;) {
		ssize_t n = read(fd, buf + *got, len - 1 - *got);
		if (n <= 0)
			break;
		*got += (size_t)n;
		buf[*got] = '\0';
	}
}

/* Run virtio-ivshmemctl to the end; its exit status, its stdout in out. */
static int ctl(char *out, size_t len, const char *const *args)
{
	int fd, st;
	size_t got = 0;
	out[0] = '\0';
	pid_t pid = ctl_start(args, &fd);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 100);
		take_output(fd, out, len, &got);
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
	}
	take_output(fd, out, len, &got);
	close(fd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the JSON answer, read as far as these tests need ------------------ */

/* Device name's object in a `stats --json` answer. */
static const char *json_device(const char *js, const char *name)
{
	char key[80];
	snprintf(key, sizeof(key), "{\"name\":\"%s\"", name);
	const char *p = strstr(js, key);
	if (!p)
		fail_msg("no device %s in %s", name, js);
	return p;
}

static const char *json_queue(const char *js, const char *name, unsigned q)
{
	char key[40];
	snprintf(key, sizeof(key), "{\"index\":%u,", q);
	const char *p = strstr(json_device(js, name), key);
	assert_non_null(p);
	return p;
}

/* The number after "key": at or after p. */
static uint64_t json_num(const char *p, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *v = strstr(p, k);
	if (!v)
		fail_msg("no %s in %.200s", key, p);
	return strtoull(v + strlen(k), NULL, 10);
}

/* A queue's latency buckets (VDEV_LAT_BUCKETS of them into b, if not
 * NULL), added up; *nbuckets: how many there were. */
static uint64_t json_buckets(const char *queue, unsigned *nbuckets, uint64_t *b)
{
	const char *p = strstr(queue, "\"buckets\":[");
	assert_non_null(p);
	p += strlen("\"buckets\":[");
	uint64_t sum = 0;
	unsigned n = 0;
	while (*p != ']') {
		char *end;
		uint64_t v = strtoull(p, &end, 10);
		assert_true(end != p);
		if (b && n < VDEV_LAT_BUCKETS)
			b[n] = v;
		sum += v;
		n++;
		p = *end == ',' ? end + 1 : end;
	}
	*nbuckets = n;
	return sum;
}

static uint64_t json_bucket_sum(const char *queue, unsigned *nbuckets)
{
	return json_buckets(queue, nbuckets, NULL);
}

/* ---- tests -------------------------------------------------------------- */

/* After requests of known number on each queue, each queue's histogram
 * counts exactly those, its buckets add up to it, its latencies add up to
 * no more than the time they took one after the other, and the high-water
 * mark is the burst the driver made. */
static void test_histogram_counts_requests(void **state)
{
	static char out[1 << 16];
	struct fe_blk *b = disk("a.sock", 2);
	uint8_t buf[4][4096], id[20];
	/* queue 0: a burst of 4 reads, published with one kick */
	struct fe_blk_req r[4];
	for (unsigned i = 0; i < 4; i++) {
		r[i] = (struct fe_blk_req){ .type = VIRTIO_BLK_T_IN, .sector = i * 8, .buf = buf[i],
					    .len = 4096, .status = -2 };
		assert_int_equal(fe_blk_submit(b, 0, &r[i]), 0);
	}
	fe_blk_kick(b, 0);
	for (unsigned i = 0; i < 4; i++)
		while (r[i].status == -2)
			assert_true(fe_blk_poll(b, 5000) >= 0);
	/* then one after the other: 3 writes on queue 0, 2 reads, a GET_ID
	 * and a read past the end on queue 1 */
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, 64 + i * 8, buf[i], 4096), 0);
	assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_IN, 0, buf[0], 4096), 0);
	assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_IN, 8, buf[0], 4096), 0);
	assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), 0);
	assert_int_equal(fe_blk_io(b, 1, VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf[0], 512),
			 VIRTIO_BLK_S_IOERR);
	uint64_t elapsed = now_ns() - t0;

	assert_int_equal(ctl(out, sizeof(out), (const char *[]){ "--json", "stats", NULL }), 0);
	char le[64];
	snprintf(le, sizeof(le), "{\"latency_le_ns\":[%llu,%llu,", 1ull << VDEV_LAT_SHIFT,
		 2ull << VDEV_LAT_SHIFT);
	assert_non_null(strstr(out, le));
	const char *q0 = json_queue(out, "a", 0), *q1 = json_queue(out, "a", 1);
	unsigned nb;
	assert_int_equal(json_num(q0, "requests"), 7);
	assert_int_equal(json_num(q0, "count"), 7);
	assert_int_equal(json_bucket_sum(q0, &nb), 7);
	assert_int_equal(nb, VDEV_LAT_BUCKETS);
	assert_int_equal(json_num(q0, "inflight_max"), 4);
	assert_int_equal(json_num(q0, "inflight"), 0);
	assert_int_equal(json_num(q1, "requests"), 4);
	assert_int_equal(json_num(q1, "count"), 4);
	assert_int_equal(json_bucket_sum(q1, &nb), 4);
	assert_int_equal(json_num(q1, "inflight_max"), 1);
	uint64_t sum1 = json_num(q1, "sum_ns");
	assert_true(sum1 > 0 && sum1 <= elapsed);
	/* the other disk saw nothing */
	const char *idle = json_queue(out, "b", 0);
	assert_int_equal(json_num(idle, "count"), 0);
	assert_int_equal(json_bucket_sum(idle, &nb), 0);
	assert_int_equal(json_num(idle, "sum_ns"), 0);
	/* the text form has the same numbers */
	assert_int_equal(ctl(out, sizeof(out), (const char *[]){ "stats", "a", NULL }), 0);
	assert_non_null(strstr(out, "  queue 0: 7 requests, "));
	assert_non_null(strstr(out, ", 0 in flight (at most 4), latency "));
	assert_non_null(strstr(out, "  queue 1: 4 requests, "));
	fe_blk_close(b);
}

/* Requests one after the other, each sent soon after the last answer: a
 * loop that spins up to 1 ms (setup_spin) is watching the ring when most of
 * them come, takes them with kicks off and counts them busy-polled. */
static void test_busy_polled_requests(void **state)
{
	static char out[1 << 16];
	struct fe_blk *b = disk("b.sock", 1);
	uint8_t buf[4096];
	enum { N = 200 };
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 8 * (i % 32), buf, sizeof(buf)), 0);
	assert_int_equal(ctl(out, sizeof(out), (const char *[]){ "--json", "stats", NULL }), 0);
	const char *q = json_queue(out, "b", 0);
	uint64_t polled = json_num(q, "busy_polled"), kicks = json_num(q, "kicks");
	assert_int_equal(json_num(q, "requests"), N);
	assert_true(polled > N / 4);            /* here 200 */
	char line[128];
	snprintf(line, sizeof(line), "  queue 0: %d requests, %llu kicks, %llu busy-polled, ", N,
		 (unsigned long long)kicks, (unsigned long long)polled);
	assert_int_equal(ctl(out, sizeof(out), (const char *[]){ "stats", "b", NULL }), 0);
	assert_non_null(strstr(out, line));
	fe_blk_close(b);
}

static int run_check(const char *om, const char *js)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' >> '%s' 2>&1", OM_PYTHON, OM_CHECK, om, js,
		 harness_path(&d, "om_check.out", 0));
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* `stats --openmetrics` parses as OpenMetrics and every value in it is
 * the JSON answer's; and the check does catch a value that differs. */
static void test_openmetrics_equals_json(void **state)
{
	if (!OM_PYTHON[0])
		skip();     /* python3-prometheus-client is missing (README.md) */
	static char om[1 << 17], js[1 << 17];
	struct fe_blk *a = disk("a.sock", 2), *b = disk("b.sock", 1);
	uint8_t buf[8192];
	harness_fill(buf, sizeof(buf), 9);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(fe_blk_io(a, i % 2, VIRTIO_BLK_T_OUT, i * 16, buf, 8192), 0);
	assert_int_equal(fe_blk_io(a, 1, VIRTIO_BLK_T_IN, 0, buf, 4096), 0);
	assert_int_equal(fe_blk_io(a, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf, 512),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(fe_blk_io(a, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, buf, 512), 0);
	struct fe_console *c;
	char err[256];
	if (fe_console_open(harness_path(&d, "c.sock", 0), 16, 4, 4096, 5000, &c, err,
			    sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(fe_console_write_all(c, "hello, log\n", 11, 5000), 0);
	/* a polled queue's interrupt is decided a millisecond after the
	 * answer: let everything settle before the two answers */
	usleep(100000);
	assert_int_equal(ctl(js, sizeof(js), (const char *[]){ "--json", "stats", NULL }), 0);
	assert_int_equal(ctl(om, sizeof(om), (const char *[]){ "stats", "--openmetrics", NULL }), 0);
	assert_int_equal(json_num(json_device(js, "c"), "from_cell_bytes"), 11);
	const char *om_path = harness_path(&d, "stats.om", 1), *js_path = harness_path(&d, "stats.json", 2);
	write_file(om_path, om);
	write_file(js_path, js);
	if (run_check(om_path, js_path) != 0)
		fail_msg("om_check: see %s", harness_path(&d, "om_check.out", 0));
	/* one request more in the OpenMetrics text: refused */
	const char *key = "virtio_ivshmemd_blk_requests_total{device=\"a\",direction=\"write\"} 5\n";
	char *at = strstr(om, key);
	assert_non_null(at);
	at[strlen(key) - 2] = '6';
	write_file(om_path, om);
	assert_int_equal(run_check(om_path, js_path), 1);
	fe_console_close(c);
	fe_blk_close(a);
	fe_blk_close(b);
}

/* A read load at depth 4 on disk b; its requests' longest latency as the
 * front-end saw it. */
struct load {
	struct fe_blk *blk;
	struct fe_blk_req req[4];
	uint8_t buf[4][4096];
	uint64_t done, max_ns, seed;
};

static void load_done(struct fe_blk_req *r)
{
	struct load *l = r->arg;
	assert_int_equal(r->status, VIRTIO_BLK_S_OK);
	uint64_t ns = now_ns() - r->t_submit;
	if (ns > l->max_ns)
		l->max_ns = ns;
	l->done++;
	r->status = -2;
}

static void load_fill(struct load *l)
{
	bool kick = false;
	for (unsigned i = 0; i < 4; i++) {
		struct fe_blk_req *r = &l->req[i];
		if (r->status == -3)
			continue;   /* in flight */
		l->seed = l->seed * 6364136223846793005ull + 1442695040888963407ull;
		*r = (struct fe_blk_req){ .type = VIRTIO_BLK_T_IN, .buf = l->buf[i], .len = 4096,
					  .sector = (l->seed >> 33) % (DISK_SIZE / 4096) * 8,
					  .status = -3, .done = load_done, .arg = l,
					  .t_submit = now_ns() };
		assert_int_equal(fe_blk_submit(l->blk, 0, r), 0);
		kick = true;
	}
	if (kick)
		fe_blk_kick(l->blk, 0);
}

struct row {
	char time[16], dev[32], p50[16], p99[16];
	double rps, wps, rmbs, wmbs;
	unsigned long long inflight;
};

/* `top -n 2` under a known load: one header, a line per disk and
 * interval; on the loaded disk reads only, 4 KiB each, at most 4 in
 * flight, latencies no longer than the front-end saw and a rate the
 * load's own count agrees with (within a factor of three, for a noisy
 * machine); the idle disk all zero with no latency. */
static void test_top_under_load(void **state)
{
	static char out[1 << 14];
	struct load l = { .blk = disk("b.sock", 1), .seed = 5 };
	for (unsigned i = 0; i < 4; i++)
		l.req[i].status = -2;
	load_fill(&l);
	int fd, st;
	size_t got = 0;
	uint64_t t0 = now_ns(), done0 = l.done;
	pid_t pid = ctl_start((const char *[]){ "top", "-n", "2", "-i", "0.5", NULL }, &fd);
	for (;;) {
		int r = fe_blk_poll(l.blk, 20);
		assert_true(r >= 0 || r == -ETIMEDOUT);
		load_fill(&l);
		take_output(fd, out, sizeof(out), &got);
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		assert_true(now_ns() - t0 < 30000000000ull);
	}
	double secs = (double)(now_ns() - t0) / 1e9, load_rate = (double)(l.done - done0) / secs;
	take_output(fd, out, sizeof(out), &got);
	close(fd);
	while (l.blk->inflight)
		assert_true(fe_blk_poll(l.blk, 5000) >= 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	char *save, *line = strtok_r(out, "\n", &save);
	assert_non_null(line);
	assert_string_equal(line, "TIME     DEVICE                  r/s        w/s     rMB/s     wMB/s"
			    "   p50(us)   p99(us) inflight");
	struct row rows[8];
	unsigned n = 0;
	while ((line = strtok_r(NULL, "\n", &save))) {
		assert_true(n < 8);
		struct row *r = &rows[n++];
		if (sscanf(line, "%15s %31s %lf %lf %lf %lf %15s %15s %llu", r->time, r->dev, &r->rps,
			   &r->wps, &r->rmbs, &r->wmbs, r->p50, r->p99, &r->inflight) != 9)
			fail_msg("not a row: %s", line);
		assert_int_equal(strlen(r->time), 8);
		assert_true(r->time[2] == ':' && r->time[5] == ':');
	}
	assert_int_equal(n, 4);     /* a and b, twice; not the console */
	double sum_rps = 0;
	for (unsigned i = 0; i < n; i++) {
		struct row *r = &rows[i];
		if (strcmp(r->dev, "a") == 0) {
			assert_true(r->rps == 0 && r->wps == 0 && r->rmbs == 0 && r->wmbs == 0);
			assert_string_equal(r->p50, "-");
			assert_string_equal(r->p99, "-");
			assert_int_equal(r->inflight, 0);
			continue;
		}
		assert_string_equal(r->dev, "b");
		assert_true(r->rps > 0);
		assert_true(r->wps == 0 && r->wmbs == 0);
		/* 4096 bytes a read, to the precision printed */
		assert_true(r->rmbs - r->rps * 4096 / 1e6 < 0.006 &&
			    r->rps * 4096 / 1e6 - r->rmbs < 0.006);
		double p50 = atof(r->p50), p99 = atof(r->p99);
		assert_true(p50 > 0 && p50 <= p99);
		/* a bucket's bound is at most twice what fell in it, and the
		 * daemon's part of a request is inside the front-end's */
		assert_true(p99 <= 2.0 * (double)l.max_ns / 1e3 + 0.1);
		assert_true(r->inflight <= 4);
		sum_rps += r->rps;
	}
	double top_rate = sum_rps / 2;
	if (!(top_rate > load_rate / 3 && top_rate < load_rate * 3))
		fail_msg("top says %.1f reads/s, the load made %.1f/s", top_rate, load_rate);
	/* The intervals' requests are some of all the disk had: their
	 * percentiles lie between the lower bound of the daemon's lowest
	 * bucket with a count and the upper bound of its highest one. */
	static char js[1 << 16];
	assert_int_equal(ctl(js, sizeof(js), (const char *[]){ "--json", "stats", "b", NULL }), 0);
	uint64_t b[VDEV_LAT_BUCKETS];
	unsigned nb, lo = VDEV_LAT_BUCKETS, hi = 0;
	json_buckets(json_queue(js, "b", 0), &nb, b);
	assert_int_equal(nb, VDEV_LAT_BUCKETS);
	for (unsigned i = 0; i < VDEV_LAT_BUCKETS; i++) {
		if (b[i] && lo == VDEV_LAT_BUCKETS)
			lo = i;
		if (b[i])
			hi = i;
	}
	assert_true(lo < VDEV_LAT_BUCKETS);
	double lo_us = lo ? (double)vdev_lat_bound_ns(lo - 1) / 1e3 : 0;
	double hi_us = hi + 1 < VDEV_LAT_BUCKETS ? (double)vdev_lat_bound_ns(hi) / 1e3 : 1e300;
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(rows[i].dev, "b") != 0)
			continue;
		double p50 = atof(rows[i].p50), p99 = atof(rows[i].p99);
		if (!(p50 >= lo_us - 0.05 && p99 <= hi_us + 0.05))
			fail_msg("top: p50 %.1f us, p99 %.1f us; the daemon's requests took %.1f to "
				 "%.1f us", p50, p99, lo_us, hi_us);
	}
	fe_blk_close(l.blk);
	/* the console alone is no disk: refused */
	assert_int_equal(ctl(out, sizeof(out), (const char *[]){ "top", "-n", "1", "c", NULL }), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_histogram_counts_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_polled_requests, setup_spin, teardown),
		cmocka_unit_test_setup_teardown(test_openmetrics_equals_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_under_load, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
