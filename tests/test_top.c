/* virtio-ivshmemctl top's arithmetic and its reader of the daemon's
 * OpenMetrics answer (ctl/top.h, ctl/om_read.h), on answers written here:
 * exact rates and percentiles from two answers, counters that go back,
 * and answers that are malformed or too large. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/om_read.h"
#include "ctl/top.h"

#define P "virtio_ivshmemd_"

/* A disk's samples as the daemon writes them: one queue's histogram over
 * the bounds 1, 2, 4 us and +Inf (cumulative counts c0..c3). */
static void disk(char *buf, size_t len, const char *name, unsigned queue, unsigned long long rd,
		 unsigned long long wr, unsigned long long rbytes, unsigned long long wbytes,
		 unsigned inflight, const unsigned long long c[4])
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n,
		 P "blk_requests_total{device=\"%s\",direction=\"read\"} %llu\n"
		 P "blk_requests_total{device=\"%s\",direction=\"write\"} %llu\n"
		 P "blk_bytes_total{device=\"%s\",direction=\"read\"} %llu\n"
		 P "blk_bytes_total{device=\"%s\",direction=\"write\"} %llu\n"
		 P "blk_inflight{device=\"%s\"} %u\n"
		 P "queue_latency_seconds_bucket{device=\"%s\",queue=\"%u\",le=\"1e-06\"} %llu\n"
		 P "queue_latency_seconds_bucket{device=\"%s\",queue=\"%u\",le=\"2e-06\"} %llu\n"
		 P "queue_latency_seconds_bucket{device=\"%s\",queue=\"%u\",le=\"4e-06\"} %llu\n"
		 P "queue_latency_seconds_bucket{device=\"%s\",queue=\"%u\",le=\"+Inf\"} %llu\n",
		 name, rd, name, wr, name, rbytes, name, wbytes, name, inflight, name, queue, c[0],
		 name, queue, c[1], name, queue, c[2], name, queue, c[3]);
}

static int read_ok(const char *body, struct om_snap *s)
{
	char err[256] = "";
	int r = om_read(body, s, err, sizeof(err));
	if (r < 0)
		print_error("%s\n", err);
	return r;
}

/* Queues of a disk are added up; comments, other families and consoles
 * are read past. */
static void test_read(void **state)
{
	char body[8192] = "# TYPE " P "queue_kicks counter\n# HELP x y\n"
			  P "queue_kicks_total{device=\"d\",queue=\"0\"} 5\n"
			  P "console_bytes_total{device=\"hvc0\",direction=\"to_cell\"} 7\n";
	disk(body, sizeof(body), "d", 0, 10, 20, 4096, 8192, 3,
	     (const unsigned long long[]){ 1, 2, 3, 4 });
	disk(body, sizeof(body), "d", 1, 10, 20, 4096, 8192, 3,
	     (const unsigned long long[]){ 0, 5, 5, 6 });
	strcat(body, "# EOF\n");
	struct om_snap s = { 0 };
	assert_int_equal(read_ok(body, &s), 0);
	assert_int_equal(s.n, 1);       /* the console has no sample top reads */
	const struct om_dev *d = om_find(&s, "d");
	assert_non_null(d);
	assert_true(d->blk);
	assert_int_equal(d->reqs[0], 10);
	assert_int_equal(d->reqs[1], 20);
	assert_int_equal(d->bytes[0], 4096);
	assert_int_equal(d->bytes[1], 8192);
	assert_int_equal(d->inflight, 3);
	assert_int_equal(d->nle, 4);
	assert_true(d->le[0] == 1e-6 && d->le[1] == 2e-6 && d->le[2] == 4e-6 && isinf(d->le[3]));
	assert_int_equal(d->cum[0], 1);
	assert_int_equal(d->cum[1], 7);
	assert_int_equal(d->cum[2], 8);
	assert_int_equal(d->cum[3], 10);
	assert_null(om_find(&s, "hvc0"));
	om_snap_free(&s);
}

static int read_bad(const char *body)
{
	struct om_snap s = { 0 };
	char err[256] = "";
	int r = om_read(body, &s, err, sizeof(err));
	if (r == 0)
		fail_msg("not refused: %s", body);
	assert_int_equal(s.n, 0);       /* nothing kept from a bad answer */
	if (r < 0)
		assert_non_null(strstr(err, "line "));
	return r;
}

/* The answer is the daemon's: checked line by line, bounded. */
static void test_read_rejects(void **state)
{
	static const char *const bad[] = {
		P "blk_inflight{device=\"d\"}\n",                       /* no value */
		P "blk_inflight{device=\"d\"} \n",
		P "blk_inflight{device=\"d\"} x\n",
		P "blk_inflight{device=\"d\"} -1\n",
		P "blk_inflight{device=\"d\"} 1.5\n",
		P "blk_inflight{device=\"d\"} NaN\n",
		P "blk_inflight{device=\"d\"} 1e20\n",
		P "blk_inflight 3\n",                                   /* no device */
		P "blk_inflight{device=d} 3\n",                         /* unquoted */
		P "blk_inflight{device=\"d\\x\"} 3\n",                  /* bad escape */
		P "blk_inflight{device=\"d\",device=\"e\"} 3\n",
		P "blk_inflight{device=\"d\" 3\n",                      /* unclosed */
		P "blk_inflight{device=\"d\",} 3\n",
		P "blk_requests_total{device=\"d\",direction=\"up\"} 3\n",
		P "blk_requests_total{device=\"d\"} 3\n",
		P "queue_latency_seconds_bucket{device=\"d\",queue=\"0\"} 3\n",
		P "queue_latency_seconds_bucket{device=\"d\",le=\"soon\"} 3\n",
		P "queue_latency_seconds_bucket{device=\"d\",le=\"-1\"} 3\n",
		"{device=\"d\"} 3\n",                                   /* no name */
		"9lives 3\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (read_bad(bad[i]) != -EBADMSG)
			fail_msg("not refused: %s", bad[i]);
	}
	/* a device name longer than any the daemon allows */
	char line[400];
	snprintf(line, sizeof(line), P "blk_inflight{device=\"%0100d\"} 1\n", 0);
	assert_int_equal(read_bad(line), -EBADMSG);
	/* a line longer than any the daemon writes */
	char *big = malloc(3000);
	memset(big, 'a', 2999);
	big[2999] = '\0';
	assert_int_equal(read_bad(big), -EBADMSG);
	/* too many devices, too many bounds */
	size_t cap = 64 * (OM_MAX_DEVS + 1) + 1, n = 0;
	char *many = malloc(cap);
	for (unsigned i = 0; i <= OM_MAX_DEVS; i++)
		n += (size_t)snprintf(many + n, cap - n, P "blk_inflight{device=\"d%u\"} 1\n", i);
	assert_int_equal(read_bad(many), -E2BIG);
	n = 0;
	for (unsigned i = 0; i <= OM_MAX_LE; i++)
		n += (size_t)snprintf(many + n, cap - n,
				      P "queue_latency_seconds_bucket{device=\"d\",le=\"%u\"} 1\n", i);
	assert_int_equal(read_bad(many), -E2BIG);
	free(many);
	free(big);
	/* what top need not read may be anything well formed */
	struct om_snap s = { 0 };
	assert_int_equal(read_ok("", &s), 0);
	assert_int_equal(read_ok("# EOF\nother_metric{a=\"\\\"\\n\\\\\"} 1.5e3 123\n", &s), 0);
	assert_int_equal(s.n, 0);
}

/* Percentiles from the difference of two histograms, linear inside the
 * bucket. */
static void test_quantile(void **state)
{
	const double le[4] = { 1e-6, 2e-6, 4e-6, INFINITY };
	const uint64_t zero[4] = { 0 };
	const uint64_t a[4] = { 0, 100, 100, 100 };
	assert_true(fabs(top_quantile(le, zero, a, 4, 0.50) - 1.5e-6) < 1e-15);
	assert_true(fabs(top_quantile(le, zero, a, 4, 0.99) - 1.99e-6) < 1e-15);
	const uint64_t p[4] = { 0, 50, 50, 50 }, c[4] = { 0, 150, 250, 250 };
	assert_true(fabs(top_quantile(le, p, c, 4, 0.50) - 2e-6) < 1e-15);
	assert_true(fabs(top_quantile(le, p, c, 4, 0.99) - 3.96e-6) < 1e-15);
	/* in the first bucket: from 0 */
	const uint64_t f[4] = { 10, 10, 10, 10 };
	assert_true(fabs(top_quantile(le, zero, f, 4, 0.50) - 0.5e-6) < 1e-15);
	/* nothing answered meanwhile */
	assert_true(top_quantile(le, c, c, 4, 0.5) == -1);
	/* all past the last bound: that bound */
	const uint64_t inf[4] = { 0, 0, 0, 7 };
	assert_true(top_quantile(le, zero, inf, 4, 0.5) == 4e-6);
}

static void two(struct om_snap *prev, struct om_snap *cur, const char *a, const char *b)
{
	assert_int_equal(read_ok(a, prev), 0);
	assert_int_equal(read_ok(b, cur), 0);
}

/* Rates over the interval, per disk; a disk new in the second answer,
 * counters gone back. */
static void test_rows(void **state)
{
	char a[4096] = "", b[4096] = "";
	disk(a, sizeof(a), "d", 0, 100, 7, 409600, 28672, 0,
	     (const unsigned long long[]){ 0, 50, 50, 50 });
	disk(a, sizeof(a), "r", 0, 900, 900, 900000, 900000, 0,
	     (const unsigned long long[]){ 5, 5, 5, 5 });
	disk(b, sizeof(b), "d", 0, 300, 7, 1228800, 28672, 2,
	     (const unsigned long long[]){ 0, 150, 250, 250 });
	disk(b, sizeof(b), "r", 0, 10, 20, 40960, 81920, 1,
	     (const unsigned long long[]){ 1, 2, 2, 2 });
	disk(b, sizeof(b), "new", 0, 1, 1, 1, 1, 0, (const unsigned long long[]){ 1, 1, 1, 1 });
	struct om_snap prev = { 0 }, cur = { 0 };
	two(&prev, &cur, a, b);
	struct top_row rows[3];
	assert_int_equal(top_rows(&prev, &cur, 2.0, rows), 2);
	assert_string_equal(rows[0].name, "d");
	assert_true(rows[0].rps == 100 && rows[0].wps == 0);
	assert_true(fabs(rows[0].rmbs - 0.4096) < 1e-12 && rows[0].wmbs == 0);
	assert_true(fabs(rows[0].p50_us - 2.0) < 1e-9);
	assert_true(fabs(rows[0].p99_us - 3.96) < 1e-9);
	assert_int_equal(rows[0].inflight, 2);
	/* r's counters went back (the daemon restarted): counted from zero */
	assert_string_equal(rows[1].name, "r");
	assert_true(rows[1].rps == 5 && rows[1].wps == 10);
	assert_true(fabs(rows[1].rmbs - 0.02048) < 1e-12 && fabs(rows[1].wmbs - 0.04096) < 1e-12);
	assert_true(fabs(rows[1].p50_us - 1.0) < 1e-9);     /* from cur alone: 1 of 2 under 1 us */
	assert_int_equal(rows[1].inflight, 1);
	/* an idle interval */
	assert_int_equal(top_rows(&cur, &cur, 1.0, rows), 3);
	assert_true(rows[0].rps == 0 && rows[0].p50_us == -1 && rows[0].p99_us == -1);
	om_snap_free(&prev);
	om_snap_free(&cur);
}

static void test_print(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	top_print_header(f);
	struct top_row r = { "disk0", 12.25, 0, 0.05, 0, 2.0, 3.96, 2 };
	top_print_row(f, "12:00:01", &r);
	r.p50_us = r.p99_us = -1;
	top_print_row(f, "12:00:02", &r);
	fclose(f);
	assert_string_equal(buf,
		"TIME     DEVICE                  r/s        w/s     rMB/s     wMB/s   p50(us)   p99(us) inflight\n"
		"12:00:01 disk0                  12.2        0.0      0.05      0.00       2.0       4.0        2\n"
		"12:00:02 disk0                  12.2        0.0      0.05      0.00         -         -        2\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_read_rejects),
		cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
