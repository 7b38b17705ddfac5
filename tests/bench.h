/* virtio-ivshmem-bench's parts (tests/bench.c says what it does): the
 * latency histogram and small helpers, the options, and the run's state --
 * devices (each a front-end with its request slots and buffers),
 * queues (a stream of requests with its own results) and workers (the
 * threads: each drives a contiguous share of the devices' queues, as a
 * guest's CPUs each drive their blk-mq queues; bench_worker.c).
 */
#pragma once
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "tests/frontend/fe_blk.h"

#define MAX_DEVS        64
#define MAX_THREADS     256
#define POLL_MS         100         /* how long a worker waits: how often it looks at the stop flag */
#define HANG_MS         10000       /* no completion for this long with requests in flight: fail */
#define MAX_UPGRADES    4096

/* ---- log-linear latency histogram (nanoseconds) ------------------------ */

/* Values below 2^SUB_BITS get a bucket each; above, every power of two is
 * split into 2^SUB_BITS linear buckets (relative error < 1/32). */
#define SUB_BITS        5
#define SUB             (1u << SUB_BITS)
#define HIST_BUCKETS    ((64 - SUB_BITS + 1) * SUB)

struct hist {
	uint64_t count;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - SUB_BITS;
	return ((msb - SUB_BITS + 1) << SUB_BITS) | (unsigned)((v >> shift) & (SUB - 1));
}

/* Midpoint of bucket i. */
static inline double hist_value(unsigned i)
{
	if (i < SUB)
		return i;
	unsigned group = i >> SUB_BITS;         /* >= 1 */
	unsigned shift = group - 1;
	uint64_t lo = ((uint64_t)SUB | (i & (SUB - 1))) << shift;
	return (double)lo + ((double)((uint64_t)1 << shift) - 1) / 2;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
}

static inline void hist_merge(struct hist *dst, const struct hist *src)
{
	dst->count += src->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

/* Percentile p (0..100) in nanoseconds; 0 for an empty histogram. */
static inline double hist_pct(const struct hist *h, double p)
{
	if (!h->count)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- helpers ----------------------------------------------------------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* wyrand: one multiply per number, passes BigCrush, 64-bit state. */
static inline uint64_t rnd_next(uint64_t *s)
{
	*s += 0xa0761d6478bd642full;
	__uint128_t t = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbull);
	return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias is negligible here). */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((__uint128_t)rnd_next(s) * n) >> 64);
}

/* ---- the run ----------------------------------------------------------- */

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

struct opts {
	const char *sockets[MAX_DEVS];
	unsigned ndevs;
	enum rw_mode rw;
	unsigned rwmixread;         /* percent */
	uint32_t bs;
	unsigned iodepth;
	unsigned queues;
	unsigned threads;           /* workers; 0: one per device */
	unsigned runtime;           /* seconds */
	uint64_t size;              /* 0: whole disk */
	bool quiet;
	const char *control;        /* the daemon's control socket (for --upgrade-every) */
	unsigned upgrade_every;     /* ms; 0: no upgrades */
	bool no_copy;               /* no bounce copies (fe_blk.no_copy) */
	pid_t daemon_pid;           /* whose cost to report; 0: none */
	bool hipri;                 /* poll queues: no interrupts, the workers spin */
	bool wake_cost;             /* --wake-cost: measure the machine, no devices */
	unsigned wake_work_us;
};

struct queue;

struct slot {
	struct fe_blk_req req;
	struct queue *q;
	struct slot *next_free;
	bool is_write;
};

/* One queue of a device: its requests and results, owned by one worker. */
struct queue {
	struct dev *d;
	unsigned idx;
	struct slot *free;          /* slots not in flight */
	unsigned inflight;
	uint64_t seq_start, seq_end, seq_next;  /* sequential stream (byte offsets) */
	uint64_t rng;
	bool measuring;
	/* progress, read by the main thread (relaxed atomics) */
	uint64_t ios_live, bytes_live;
	/* results (the worker's until it is joined) */
	struct hist lat[2];         /* [is_write] */
	uint64_t ios[2], bytes[2];
	uint64_t errors, err_first_status;
	uint64_t completed;         /* every answer, drain and errors included: what the cost covers */
	uint64_t t_start, t_end;
	/* --upgrade-every: the longest completion gap within each upgrade's window */
	uint64_t last_done_ns;
	uint64_t *pause_ns;         /* [MAX_UPGRADES] */
};

struct dev {
	unsigned idx;
	const char *socket;
	const struct opts *o;
	struct fe_blk *blk;
	struct queue *qs;           /* [o->queues] */
	struct slot *slots;
	uint8_t *bufs;
	uint64_t region;            /* bytes used, multiple of bs */
	uint64_t nblocks;           /* region / bs */
	bool split;                 /* its queues are on more than one worker */
	char msg[256];
};

/* A thread and the queues it drives (a contiguous share of all of them). */
struct worker {
	pthread_t thread;
	const struct opts *o;
	struct queue **qs;
	unsigned nq;
	struct pollfd *pfd;         /* the interrupts (and link sockets) it waits on */
	struct dev **pfd_dev;
	unsigned *pfd_idx;          /* the watch index in pfd_dev's port */
	unsigned npfd;
	uint64_t polls;
	uint64_t t_end;             /* atomic: set when it stops */
	int fatal;                  /* negative errno when the run broke */
	char msg[300];
};

extern int g_stop;              /* atomic: stop submitting */
extern int g_upgrade;           /* atomic: the upgrade whose window is open, or -1 */

/* Connect device d (its socket, the options) and set its queues up; the
 * reason for a failure in d->msg. */
int dev_setup(struct dev *d);
void dev_free(struct dev *d);

/* Share the devices' queues among n workers (contiguous, so one per device
 * when n is the number of devices) and find what each waits on.  A device
 * split between workers needs a vector per queue.  -EINVAL with the reason
 * in err. */
int workers_plan(struct worker *w, unsigned n, struct dev *devs, const struct opts *o,
		 char *err, size_t err_len);
void workers_free(struct worker *w, unsigned n);

/* The worker's thread: waits on barrier, then keeps iodepth requests in
 * flight on each of its queues until g_stop, then drains. */
void *worker_thread(void *arg);
extern pthread_barrier_t g_barrier;
