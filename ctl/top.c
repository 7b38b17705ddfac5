#include "ctl/top.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/client.h"

#define TIMEOUT_MS 10000

double top_quantile(const double *le, const uint64_t *prev, const uint64_t *cur, unsigned n,
		    double q)
{
	if (n == 0 || cur[n - 1] <= prev[n - 1])
		return -1;
	double rank = q * (double)(cur[n - 1] - prev[n - 1]);
	double lower = 0, below = 0;
	for (unsigned i = 0; i < n; i++) {
		double c = (double)(cur[i] - prev[i]);
		if (c >= rank && c > below) {
			if (isinf(le[i]))
				return lower;   /* past the last bound: that bound */
			return lower + (le[i] - lower) * (rank - below) / (c - below);
		}
		if (!isinf(le[i]))
			lower = le[i];
		below = c > below ? c : below;
	}
	return lower;
}

static uint64_t delta(uint64_t prev, uint64_t cur)
{
	return cur >= prev ? cur - prev : cur;     /* went back: counted from zero */
}

/* May d's histogram be compared with p's: the same bounds, no count gone
 * back? */
static bool same_histogram(const struct om_dev *p, const struct om_dev *d)
{
	if (p->nle != d->nle || memcmp(p->le, d->le, d->nle * sizeof(d->le[0])) != 0)
		return false;
	for (unsigned i = 0; i < d->nle; i++)
		if (d->cum[i] < p->cum[i])
			return false;
	return true;
}

unsigned top_rows(const struct om_snap *prev, const struct om_snap *cur, double dt,
		  struct top_row *rows)
{
	static const uint64_t zero[OM_MAX_LE];
	unsigned k = 0;
	for (unsigned i = 0; i < cur->n; i++) {
		const struct om_dev *d = &cur->dev[i];
		const struct om_dev *p = om_find(prev, d->name);
		if (!d->blk || !p || !p->blk)
			continue;
		struct top_row *r = &rows[k++];
		r->name = d->name;
		r->rps = (double)delta(p->reqs[0], d->reqs[0]) / dt;
		r->wps = (double)delta(p->reqs[1], d->reqs[1]) / dt;
		r->rmbs = (double)delta(p->bytes[0], d->bytes[0]) / dt / 1e6;
		r->wmbs = (double)delta(p->bytes[1], d->bytes[1]) / dt / 1e6;
		const uint64_t *before = same_histogram(p, d) ? p->cum : zero;
		double p50 = top_quantile(d->le, before, d->cum, d->nle, 0.50);
		double p99 = top_quantile(d->le, before, d->cum, d->nle, 0.99);
		r->p50_us = p50 < 0 ? -1 : p50 * 1e6;
		r->p99_us = p99 < 0 ? -1 : p99 * 1e6;
		r->inflight = d->inflight;
	}
	return k;
}

void top_print_header(FILE *f)
{
	fprintf(f, "%-8s %-16s %10s %10s %9s %9s %9s %9s %8s\n", "TIME", "DEVICE", "r/s", "w/s",
		"rMB/s", "wMB/s", "p50(us)", "p99(us)", "inflight");
}

static void us(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", v);
}

void top_print_row(FILE *f, const char *clock, const struct top_row *r)
{
	char p50[32], p99[32];
	us(p50, sizeof(p50), r->p50_us);
	us(p99, sizeof(p99), r->p99_us);
	fprintf(f, "%-8s %-16s %10.1f %10.1f %9.2f %9.2f %9s %9s %8llu\n", clock, r->name, r->rps,
		r->wps, r->rmbs, r->wmbs, p50, p99, (unsigned long long)r->inflight);
}

/* ---- the loop ---------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until the monotonic time `until`; false when SIGINT came. */
static bool sleep_until(double until)
{
	for (;;) {
		if (interrupted)
			return false;
		double left = until - now_s();
		if (left <= 0)
			return true;
		struct timespec ts = { (time_t)left, (long)((left - floor(left)) * 1e9) };
		nanosleep(&ts, NULL);   /* EINTR: look at the flag */
	}
}

static int fetch(const char *sock, const char *cmd, struct om_snap *s, double *t, char *err,
		 size_t err_len)
{
	char *body;
	int r = ctl_request(sock, cmd, TIMEOUT_MS, &body, err, err_len);
	*t = now_s();
	if (r < 0)
		return r;
	r = om_read(body, s, err, err_len);
	free(body);
	return r;
}

static bool any_disk(const struct om_snap *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->dev[i].blk)
			return true;
	return false;
}

static int loop(const char *sock, const char *cmd, unsigned long count, double interval,
		FILE *out, struct om_snap *prev, struct om_snap *cur, char *err, size_t err_len)
{
	double t_prev, t_cur;
	int r = fetch(sock, cmd, prev, &t_prev, err, err_len);
	if (r < 0)
		return r;
	if (!any_disk(prev)) {
		snprintf(err, err_len, "no disk to show (top shows block devices)");
		return -ENODEV;
	}
	top_print_header(out);
	fflush(out);
	double start = t_prev;
	for (unsigned long i = 0; count == 0 || i < count; i++) {
		if (!sleep_until(start + (double)(i + 1) * interval))
			break;
		r = fetch(sock, cmd, cur, &t_cur, err, err_len);
		if (r < 0)
			return r;
		struct top_row *rows = calloc(cur->n ? cur->n : 1, sizeof(*rows));
		if (!rows) {
			snprintf(err, err_len, "out of memory");
			return -ENOMEM;
		}
		unsigned n = top_rows(prev, cur, t_cur - t_prev, rows);
		char clock[16];
		time_t wall = time(NULL);
		struct tm tm;
		strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&wall, &tm));
		for (unsigned k = 0; k < n; k++)
			top_print_row(out, clock, &rows[k]);
		fflush(out);
		free(rows);
		struct om_snap t = *prev;
		*prev = *cur;
		*cur = t;
		t_prev = t_cur;
	}
	return 0;
}

int top_run(const char *sock, const char *only, unsigned long count, double interval,
	    FILE *out, char *err, size_t err_len)
{
	char cmd[160];
	if (only && strlen(only) > 100) {
		snprintf(err, err_len, "device name too long");
		return -EINVAL;
	}
	snprintf(cmd, sizeof(cmd), "openmetrics stats%s%s", only ? " " : "", only ? only : "");
	/* SIGINT ends the view after the line it is at, with status 0. */
	struct sigaction sa = { .sa_handler = on_sigint }, old;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old);
	struct om_snap prev = { 0 }, cur = { 0 };
	int r = loop(sock, cmd, count, interval, out, &prev, &cur, err, err_len);
	om_snap_free(&prev);
	om_snap_free(&cur);
	sigaction(SIGINT, &old, NULL);
	return r;
}
