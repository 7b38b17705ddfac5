/* virtio-ivshmemctl top: a live view of the disks, like `iostat -x 1`.
 *
 * Every interval it asks the daemon for `openmetrics stats` (ctl/om_read.h
 * reads it) and prints, for each disk, what happened since the previous
 * answer: reads and writes per second, MB/s each way (10^6 bytes), the
 * 50th and 99th percentile of the request latency from the difference of
 * the two latency histograms (every queue's, every request type; linear
 * inside a bucket, as Prometheus' histogram_quantile does: the buckets are
 * powers of two, so the figure is within a factor of two), and the
 * requests in flight at the end.  One header, then one line per disk per
 * interval with the time of day first; plain text, flushed after every
 * interval, so a pipe or a file gets it as it comes.  Counters that went
 * back (the daemon restarted) count from zero; a disk that was not in the
 * previous answer waits for the next one.
 */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "ctl/om_read.h"

struct top_row {
	const char *name;               /* the device's, in cur */
	double rps, wps;                /* requests per second */
	double rmbs, wmbs;              /* 10^6 bytes per second */
	double p50_us, p99_us;          /* -1: no request answered in the interval */
	uint64_t inflight;
};

/* Quantile q (0..1) of the requests between two cumulative histograms
 * with the same bounds (le ascending, the last +Inf), in seconds; -1 when
 * none.  Past the last finite bound: that bound. */
double top_quantile(const double *le, const uint64_t *prev, const uint64_t *cur, unsigned n,
		    double q);

/* The rows for the disks of cur that are in prev too, dt seconds apart;
 * rows has room for cur->n.  Returns how many. */
unsigned top_rows(const struct om_snap *prev, const struct om_snap *cur, double dt,
		  struct top_row *rows);

void top_print_header(FILE *f);
void top_print_row(FILE *f, const char *clock, const struct top_row *r);

/* The loop: ask `sock` (for device `only`, or every disk when NULL) every
 * interval seconds and print to out, count times (0: until SIGINT, which
 * ends it normally).  0, or a negative errno with the reason in err. */
int top_run(const char *sock, const char *only, unsigned long count, double interval,
	    FILE *out, char *err, size_t err_len);
