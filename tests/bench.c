/* virtio-ivshmem-bench: an fio-like load generator for virtio-blk devices
 * served by virtio-ivshmemd, driven through the userspace front-end
 * (tests/frontend) over software IVSHMEM links.
 *
 * One thread per device (each device has its own front-end, which is
 * single-threaded); each thread keeps --iodepth requests in flight on each of
 * its --queues queues, submits in batches (one kick per queue per batch) and
 * reaps completions through fe_blk_poll().  Latency is measured from just
 * before fe_blk_submit() to the completion callback, i.e. it includes the
 * bounce copies, like fio's completion latency includes the page-cache copy.
 *
 * The front-end bounces data as the cell's driver does (fe_blk.h): a
 * cleared bounce buffer per request, the data copied in for a write and out
 * for a read.  --no-copy leaves out the clearing and both copies (the
 * buffers are still taken from the pool and freed, the header, status and
 * descriptors still written), so what remains of the bench's cost is the
 * transport's and the daemon's figures stand alone.
 *
 * Output: a progress line per second (unless --quiet), then per device and in
 * total IOPS, MB/s (10^6 bytes), p50/p99 latency, kicks and interrupts per
 * request; the cost per request (tests/bench_cost.h says what each figure
 * counts) of the bench and, with --daemon-pid, of the daemon: CPU time,
 * voluntary and involuntary context switches, read/write-family system
 * calls; and last a machine-readable line
 *   RESULT iops=<n> mbps=<n> p50_us=<n> p99_us=<n> requests=<n>
 *          bench_cpu_us=<n> bench_usr_us=<n> bench_sys_us=<n> bench_vcsw=<n>
 *          bench_ivcsw=<n> bench_syscr=<n> bench_syscw=<n> [daemon_cpu_us=<n>
 *          daemon_usr_us=<n> daemon_sys_us=<n> daemon_vcsw=<n> daemon_ivcsw=<n>
 *          daemon_syscr=<n> daemon_syscw=<n> daemon_wrk_cpu_us=<n>
 *          daemon_wrk_threads=<n>]
 * (the cost figures per request; one line, wrapped here).
 *
 * With --upgrade-every MS and --control SOCKET, a thread asks the daemon for
 * "upgrade" every MS milliseconds (after a second of load) and the pause
 * each one caused is measured as the load sees it: the longest time between
 * two completions of a device while the upgrade was under way (from just
 * before the request to 100 ms after its answer), the largest over the
 * devices.  Reported, with the daemon's own figure from its answer, as
 *   UPGRADES n=<n> pause_p50_ms=<n> pause_p99_ms=<n> pause_max_ms=<n>
 *            daemon_p50_ms=<n> daemon_p99_ms=<n>
 * Exit status: 0 when every request succeeded, 1 when any failed or a device
 * broke, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/virtio_ivshmem.h"
#include "ctl/client.h"
#include "tests/bench_cost.h"
#include "tests/frontend/fe_blk.h"

#define MAX_DEVS        64
#define POLL_MS         100         /* fe_blk_poll timeout: how often we look at the stop flag */
#define HANG_MS         10000       /* no completion for this long with requests in flight: fail */
#define MAX_UPGRADES    4096
#define UPGRADE_TAIL_MS 100         /* an upgrade's window goes on this long after its answer */
#define SAMPLE_MS       200         /* how often the daemon's threads are read (bench_cost.h) */

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

static unsigned hist_index(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - SUB_BITS;
	return ((msb - SUB_BITS + 1) << SUB_BITS) | (unsigned)((v >> shift) & (SUB - 1));
}

/* Midpoint of bucket i. */
static double hist_value(unsigned i)
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

static void hist_merge(struct hist *dst, const struct hist *src)
{
	dst->count += src->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

/* Percentile p (0..100) in nanoseconds; 0 for an empty histogram. */
static double hist_pct(const struct hist *h, double p)
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

static uint64_t now_ns(void)
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

/* "4k", "128K", "1M", "1G", "512", "4KiB": powers of 1024. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static bool parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- the run ----------------------------------------------------------- */

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };
static const char *const rw_names[] = { "read", "write", "randread", "randwrite", "randrw" };

struct opts {
	const char *sockets[MAX_DEVS];
	unsigned ndevs;
	enum rw_mode rw;
	unsigned rwmixread;         /* percent */
	uint32_t bs;
	unsigned iodepth;
	unsigned queues;
	unsigned runtime;           /* seconds */
	uint64_t size;              /* 0: whole disk */
	bool quiet;
	const char *control;        /* the daemon's control socket (for --upgrade-every) */
	unsigned upgrade_every;     /* ms; 0: no upgrades */
	bool no_copy;               /* no bounce copies (fe_blk.no_copy) */
	pid_t daemon_pid;           /* whose cost to report; 0: none */
};

struct dev;

struct slot {
	struct fe_blk_req req;
	struct queue *q;
	struct slot *next_free;
	bool is_write;
};

struct queue {
	struct dev *d;
	unsigned idx;
	struct slot *free;          /* slots not in flight */
	unsigned inflight;
	uint64_t seq_start, seq_end, seq_next;  /* sequential stream (byte offsets) */
};

struct dev {
	unsigned idx;
	const char *socket;
	const struct opts *o;
	pthread_t thread;
	struct fe_blk *blk;
	struct queue *qs;
	struct slot *slots;
	uint8_t *bufs;
	uint64_t region;            /* bytes used, multiple of bs */
	uint64_t nblocks;           /* region / bs */
	uint64_t rng;
	bool measuring;
	/* progress, read by the main thread (relaxed atomics) */
	uint64_t ios_live, bytes_live;
	/* results (owned by the thread until it is joined) */
	struct hist lat[2];         /* [is_write] */
	uint64_t ios[2], bytes[2];
	uint64_t errors, err_first_status;
	uint64_t completed;         /* every answer, drain and errors included: what the cost covers */
	uint64_t t_start, t_end;
	uint64_t kicks, interrupts, polls;
	bool open_ok;
	int fatal;                  /* negative errno when the run broke */
	char msg[256];
	/* --upgrade-every: the longest completion gap within each upgrade's window */
	uint64_t last_done_ns;
	uint64_t *pause_ns;         /* [MAX_UPGRADES] */
};

static int g_stop;              /* atomic: stop submitting */
static int g_upgrade = -1;      /* atomic: the upgrade whose window is open, or -1 */
static int g_abort;             /* atomic: a device failed to open, do not start */
static pthread_barrier_t g_barrier;

static void on_signal(int sig)
{
	(void)sig;
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
}

static void req_done(struct fe_blk_req *req)
{
	struct slot *s = req->arg;
	struct queue *q = s->q;
	struct dev *d = q->d;
	q->inflight--;
	s->next_free = q->free;
	q->free = s;
	d->completed++;
	if (req->status != 0) {
		if (!d->errors)
			d->err_first_status = (uint64_t)(int64_t)req->status;
		d->errors++;
		return;
	}
	if (!d->measuring)
		return;
	uint64_t t = now_ns();
	int u = __atomic_load_n(&g_upgrade, __ATOMIC_ACQUIRE);
	if (u >= 0 && d->pause_ns && d->last_done_ns && t - d->last_done_ns > d->pause_ns[u])
		d->pause_ns[u] = t - d->last_done_ns;
	d->last_done_ns = t;
	uint64_t lat = t - req->t_submit;
	hist_add(&d->lat[s->is_write], lat);
	d->ios[s->is_write]++;
	d->bytes[s->is_write] += req->len;
	__atomic_store_n(&d->ios_live, d->ios[0] + d->ios[1], __ATOMIC_RELAXED);
	__atomic_store_n(&d->bytes_live, d->bytes[0] + d->bytes[1], __ATOMIC_RELAXED);
}

/* Fill in the next request of queue q. */
static void prep(struct dev *d, struct queue *q, struct slot *s)
{
	const struct opts *o = d->o;
	uint64_t off;
	bool wr;
	switch (o->rw) {
	case RW_READ:
	case RW_WRITE:
		off = q->seq_next;
		q->seq_next += o->bs;
		if (q->seq_next + o->bs > q->seq_end)
			q->seq_next = q->seq_start;
		wr = o->rw == RW_WRITE;
		break;
	default:
		off = rnd_below(&d->rng, d->nblocks) * o->bs;
		wr = o->rw == RW_RANDWRITE ||
		     (o->rw == RW_RANDRW && rnd_below(&d->rng, 100) >= o->rwmixread);
		break;
	}
	s->is_write = wr;
	s->req.type = wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	s->req.sector = off / 512;
	s->req.status = -2;
	s->req.t_submit = now_ns();
}

static uint64_t sum_kicks(const struct dev *d)
{
	uint64_t k = 0;
	for (unsigned i = 0; i < d->blk->fe->nq; i++)
		k += d->blk->fe->vq[i].kicks;
	return k;
}

static unsigned total_inflight(const struct dev *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < d->o->queues; i++)
		n += d->qs[i].inflight;
	return n;
}

static int dev_setup(struct dev *d)
{
	const struct opts *o = d->o;
	char err[256] = "";
	unsigned want = o->iodepth * 3;     /* room for direct chains too */
	unsigned qsize = 2;
	while (qsize < want && qsize < 32768)
		qsize <<= 1;
	int r = fe_blk_open(d->socket, 0, o->queues, (uint16_t)qsize, 5000, &d->blk, err,
			    sizeof(err));
	if (r < 0) {
		snprintf(d->msg, sizeof(d->msg), "%s", err[0] ? err : strerror(-r));
		return r;
	}
	struct fe_blk *blk = d->blk;
	blk->no_copy = o->no_copy;
	uint64_t f = blk->fe->features;
	uint64_t disk = blk->capacity * 512;
	if (f & VIRTIO_BIT(VIRTIO_BLK_F_MQ) ? blk->num_queues < o->queues : o->queues > 1) {
		snprintf(d->msg, sizeof(d->msg), "the device has %u queue(s), --queues %u asked",
			 f & VIRTIO_BIT(VIRTIO_BLK_F_MQ) ? blk->num_queues : 1, o->queues);
		return -EINVAL;
	}
	if ((f & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX)) && blk->size_max && o->bs > blk->size_max) {
		snprintf(d->msg, sizeof(d->msg),
			 "--bs %u exceeds the device's size_max %u (raise shm-size)", o->bs,
			 blk->size_max);
		return -EINVAL;
	}
	if ((f & VIRTIO_BIT(VIRTIO_BLK_F_RO)) && o->rw != RW_READ && o->rw != RW_RANDREAD) {
		snprintf(d->msg, sizeof(d->msg), "the device is read-only");
		return -EROFS;
	}
	uint64_t region = o->size ? o->size : disk;
	if (region > disk) {
		snprintf(d->msg, sizeof(d->msg), "--size %" PRIu64 " exceeds the disk (%" PRIu64
			 " bytes)", region, disk);
		return -EINVAL;
	}
	d->nblocks = region / o->bs;
	d->region = d->nblocks * o->bs;
	if (d->nblocks < o->queues) {
		snprintf(d->msg, sizeof(d->msg), "the region (%" PRIu64 " bytes) holds fewer than "
			 "%u blocks of %u", region, o->queues, o->bs);
		return -EINVAL;
	}
	unsigned nslots = o->queues * o->iodepth;
	d->qs = calloc(o->queues, sizeof(*d->qs));
	d->slots = calloc(nslots, sizeof(*d->slots));
	d->bufs = aligned_alloc(4096, ((size_t)nslots * o->bs + 4095) & ~(size_t)4095);
	if (!d->qs || !d->slots || !d->bufs) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return -ENOMEM;
	}
	d->rng = 0x9e3779b97f4a7c15ull * (d->idx + 1) ^ (uint64_t)getpid() << 17 ^ now_ns();
	/* Written data: random, so nothing downstream can take shortcuts. */
	uint64_t fill = d->rng;
	for (size_t i = 0; i + 8 <= (size_t)nslots * o->bs; i += 8) {
		uint64_t v = rnd_next(&fill);
		memcpy(d->bufs + i, &v, 8);
	}
	/* Sequential streams: queue i walks its own slice, like fio jobs with
	 * offset_increment = size / numjobs. */
	uint64_t slice = d->nblocks / o->queues * o->bs;
	for (unsigned i = 0; i < o->queues; i++) {
		struct queue *q = &d->qs[i];
		q->d = d;
		q->idx = i;
		q->seq_start = q->seq_next = slice * i;
		q->seq_end = q->seq_start + slice;
		for (unsigned k = 0; k < o->iodepth; k++) {
			struct slot *s = &d->slots[i * o->iodepth + k];
			s->q = q;
			s->req.buf = d->bufs + (size_t)(i * o->iodepth + k) * o->bs;
			s->req.len = o->bs;
			s->req.done = req_done;
			s->req.arg = s;
			s->next_free = q->free;
			q->free = s;
		}
	}
	return 0;
}

/* Submit on every queue until full, one kick per queue.  Returns how many
 * were submitted, or a negative errno. */
static int fill_queues(struct dev *d)
{
	int total = 0;
	for (unsigned i = 0; i < d->o->queues; i++) {
		struct queue *q = &d->qs[i];
		int n = 0;
		while (q->free) {
			struct slot *s = q->free;
			prep(d, q, s);
			int r = fe_blk_submit(d->blk, i, &s->req);
			if (r == -ENOSPC) {
				/* Ring or shared pool full: reap completions first.  If
				 * sequential, take the offset back. */
				if (d->o->rw == RW_READ || d->o->rw == RW_WRITE)
					q->seq_next = s->req.sector * 512;
				break;
			}
			if (r < 0)
				return r;
			q->free = s->next_free;
			q->inflight++;
			n++;
		}
		if (n)
			fe_blk_kick(d->blk, i);
		total += n;
	}
	return total;
}

static void *dev_thread(void *arg)
{
	struct dev *d = arg;
	d->open_ok = dev_setup(d) == 0;
	pthread_barrier_wait(&g_barrier);      /* every device is set up (or failed) */
	pthread_barrier_wait(&g_barrier);      /* the main thread has decided: go or abort */
	if (__atomic_load_n(&g_abort, __ATOMIC_ACQUIRE) || !d->open_ok)
		return NULL;
	d->measuring = true;
	d->t_start = now_ns();
	uint64_t idle_ms = 0;
	while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED)) {
		int r = fill_queues(d);
		if (r < 0) {
			d->fatal = r;
			snprintf(d->msg, sizeof(d->msg), "submit failed: %s", strerror(-r));
			break;
		}
		if (total_inflight(d) == 0) {
			d->fatal = -ENOSPC;
			snprintf(d->msg, sizeof(d->msg), "cannot submit a single %u-byte request: "
				 "shared memory pool or ring too small", d->o->bs);
			break;
		}
		d->polls++;
		r = fe_blk_poll(d->blk, POLL_MS);
		if (r == -ETIMEDOUT) {
			idle_ms += POLL_MS;
			if (idle_ms >= HANG_MS) {
				d->fatal = -ETIMEDOUT;
				snprintf(d->msg, sizeof(d->msg), "no completion for %u s with %u "
					 "request(s) in flight", HANG_MS / 1000, total_inflight(d));
				break;
			}
		} else if (r < 0) {
			d->fatal = r;
			snprintf(d->msg, sizeof(d->msg), "%s", r == -ENODEV ?
				 "backend failed (left READY)" : strerror(-r));
			break;
		} else {
			idle_ms = 0;
		}
	}
	d->measuring = false;
	__atomic_store_n(&d->t_end, now_ns(), __ATOMIC_RELEASE);
	d->kicks = sum_kicks(d);
	d->interrupts = d->blk->fe->interrupts;
	/* Drain: let in-flight requests finish before the link goes away. */
	if (!d->fatal) {
		uint64_t deadline = now_ns() + (uint64_t)HANG_MS * 1000000;
		while (total_inflight(d) && now_ns() < deadline) {
			int r = fe_blk_poll(d->blk, POLL_MS);
			if (r < 0 && r != -ETIMEDOUT)
				break;
		}
		if (total_inflight(d)) {
			d->fatal = -ETIMEDOUT;
			snprintf(d->msg, sizeof(d->msg), "%u request(s) never completed",
				 total_inflight(d));
		}
	}
	return NULL;
}

/* ---- upgrades ---------------------------------------------------------- */

struct upgrader {
	const struct opts *o;
	pthread_t thread;
	unsigned done;
	double daemon_ms[MAX_UPGRADES];
	int failed;
	char msg[1024];
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void *upgrade_thread(void *arg)
{
	struct upgrader *u = arg;
	sleep_ms(1000);
	while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED) && u->done < MAX_UPGRADES) {
		char *body = NULL, err[1024];
		__atomic_store_n(&g_upgrade, (int)u->done, __ATOMIC_RELEASE);
		int r = ctl_request(u->o->control, "upgrade", 30000, &body, err, sizeof(err));
		if (r < 0) {
			snprintf(u->msg, sizeof(u->msg), "upgrade %u: %s", u->done + 1, err);
			u->failed = 1;
			__atomic_store_n(&g_upgrade, -1, __ATOMIC_RELEASE);
			break;
		}
		const char *p = strstr(body, " ms paused");
		while (p && p > body && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9')))
			p--;
		u->daemon_ms[u->done] = p ? strtod(p, NULL) : 0;
		free(body);
		sleep_ms(UPGRADE_TAIL_MS);
		__atomic_store_n(&g_upgrade, -1, __ATOMIC_RELEASE);
		u->done++;
		sleep_ms(u->o->upgrade_every);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile of n sorted values (nearest rank). */
static double pct(const double *v, unsigned n, double p)
{
	if (!n)
		return 0;
	unsigned k = (unsigned)(p / 100.0 * n + 0.999999);
	return v[k ? k - 1 : 0];
}

static void report_upgrades(const struct upgrader *u, const struct dev *devs, unsigned ndevs)
{
	static double fe[MAX_UPGRADES], dm[MAX_UPGRADES];
	for (unsigned i = 0; i < u->done; i++) {
		uint64_t m = 0;
		for (unsigned k = 0; k < ndevs; k++)
			if (devs[k].pause_ns[i] > m)
				m = devs[k].pause_ns[i];
		fe[i] = (double)m / 1e6;
		dm[i] = u->daemon_ms[i];
	}
	qsort(fe, u->done, sizeof(double), cmp_double);
	qsort(dm, u->done, sizeof(double), cmp_double);
	printf("UPGRADES n=%u pause_p50_ms=%.2f pause_p99_ms=%.2f pause_max_ms=%.2f "
	       "daemon_p50_ms=%.2f daemon_p99_ms=%.2f\n", u->done, pct(fe, u->done, 50),
	       pct(fe, u->done, 99), u->done ? fe[u->done - 1] : 0, pct(dm, u->done, 50),
	       pct(dm, u->done, 99));
	if (u->failed)
		printf("UPGRADE FAILED: %s\n", u->msg);
}

/* ---- reporting --------------------------------------------------------- */

static double secs(const struct dev *d)
{
	return d->t_end > d->t_start ? (double)(d->t_end - d->t_start) / 1e9 : 0;
}

static const char *status_name(int64_t st)
{
	switch (st) {
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case -1: return "no status written";
	default: return "unknown";
	}
}

static void print_line(const char *label, uint64_t ios, uint64_t bytes, double sec,
		       const struct hist *h)
{
	printf("  %-6s %10.0f IOPS %9.1f MB/s   lat p50 %8.1f us  p99 %8.1f us  (%" PRIu64
	       " ios)\n", label, sec > 0 ? (double)ios / sec : 0,
	       sec > 0 ? (double)bytes / sec / 1e6 : 0, hist_pct(h, 50) / 1e3,
	       hist_pct(h, 99) / 1e3, ios);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtio-ivshmem-bench --socket PATH [--socket PATH...] [OPTIONS]\n"
		"Drive virtio-blk devices served by virtio-ivshmemd over software IVSHMEM links.\n\n"
		"  --socket PATH     link socket of a device (repeat for more devices)\n"
		"  --rw MODE         read | write | randread | randwrite | randrw (default randread)\n"
		"  --rwmixread PCT   reads in percent for randrw (default 50)\n"
		"  --bs SIZE         request size, a multiple of 512, K/M suffix (default 4K)\n"
		"  --iodepth N       requests in flight per queue (default 32)\n"
		"  --queues N        queues per device, each with its own depth (default 1)\n"
		"  --runtime SEC     duration (default 10)\n"
		"  --size BYTES      region of each disk to use (default: the whole disk)\n"
		"  --quiet           no progress lines\n"
		"  --control PATH    the daemon's control socket, for --upgrade-every\n"
		"  --upgrade-every MS  ask the daemon to upgrade (to itself) every MS ms and\n"
		"                    report the pauses the load saw\n"
		"  --no-copy         no bounce copies: data buffers are taken from the shared\n"
		"                    pool as usual but not cleared, filled or copied back\n"
		"  --daemon-pid PID  also report the daemon's cost per request (CPU, context\n"
		"                    switches, system calls, its io_uring workers)\n"
		"  -h, --help        this help\n\n"
		"Ends with: RESULT iops=<n> mbps=<n> p50_us=<n> p99_us=<n> requests=<n> and the\n"
		"cost per request (bench_cpu_us=..., daemon_cpu_us=...)\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "rw", required_argument, NULL, 'r' },
		{ "rwmixread", required_argument, NULL, 'm' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'd' },
		{ "queues", required_argument, NULL, 'q' },
		{ "runtime", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "control", required_argument, NULL, 'C' },
		{ "upgrade-every", required_argument, NULL, 'U' },
		{ "no-copy", no_argument, NULL, 'N' },
		{ "daemon-pid", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	*o = (struct opts){ .rw = RW_RANDREAD, .rwmixread = 50, .bs = 4096, .iodepth = 32,
			    .queues = 1, .runtime = 10 };
	int c;
	unsigned long u;
	uint64_t sz;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->ndevs == MAX_DEVS) {
				fprintf(stderr, "at most %d devices\n", MAX_DEVS);
				return -1;
			}
			o->sockets[o->ndevs++] = optarg;
			break;
		case 'r': {
			unsigned i;
			for (i = 0; i < sizeof(rw_names) / sizeof(rw_names[0]); i++)
				if (strcmp(optarg, rw_names[i]) == 0)
					break;
			if (i == sizeof(rw_names) / sizeof(rw_names[0])) {
				fprintf(stderr, "--rw: unknown mode '%s'\n", optarg);
				return -1;
			}
			o->rw = (enum rw_mode)i;
			break;
		}
		case 'm':
			if (!parse_num(optarg, 0, 100, &u)) {
				fprintf(stderr, "--rwmixread: a percentage from 0 to 100\n");
				return -1;
			}
			o->rwmixread = (unsigned)u;
			break;
		case 'b':
			if (!parse_size(optarg, &sz) || sz == 0 || sz % 512 || sz > (64u << 20)) {
				fprintf(stderr, "--bs: a multiple of 512 up to 64M (got '%s')\n",
					optarg);
				return -1;
			}
			o->bs = (uint32_t)sz;
			break;
		case 'd':
			if (!parse_num(optarg, 1, 16384, &u)) {
				fprintf(stderr, "--iodepth: a number from 1 to 16384\n");
				return -1;
			}
			o->iodepth = (unsigned)u;
			break;
		case 'q':
			if (!parse_num(optarg, 1, 64, &u)) {
				fprintf(stderr, "--queues: a number from 1 to 64\n");
				return -1;
			}
			o->queues = (unsigned)u;
			break;
		case 't':
			if (!parse_num(optarg, 1, 86400, &u)) {
				fprintf(stderr, "--runtime: seconds, from 1 to 86400\n");
				return -1;
			}
			o->runtime = (unsigned)u;
			break;
		case 'S':
			if (!parse_size(optarg, &sz) || sz == 0) {
				fprintf(stderr, "--size: a size in bytes, K/M/G suffix (got '%s')\n",
					optarg);
				return -1;
			}
			o->size = sz;
			break;
		case 'Q':
			o->quiet = true;
			break;
		case 'C':
			o->control = optarg;
			break;
		case 'U':
			if (!parse_num(optarg, 1, 3600000, &u)) {
				fprintf(stderr, "--upgrade-every: milliseconds, from 1\n");
				return -1;
			}
			o->upgrade_every = (unsigned)u;
			break;
		case 'N':
			o->no_copy = true;
			break;
		case 'P':
			if (!parse_num(optarg, 1, INT32_MAX, &u)) {
				fprintf(stderr, "--daemon-pid: a process id\n");
				return -1;
			}
			o->daemon_pid = (pid_t)u;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || o->ndevs == 0) {
		if (o->ndevs == 0)
			fprintf(stderr, "at least one --socket is needed\n");
		return -1;
	}
	if (o->upgrade_every && !o->control) {
		fprintf(stderr, "--upgrade-every needs --control\n");
		return -1;
	}
	if (o->size && o->size < o->bs) {
		fprintf(stderr, "--size is smaller than --bs\n");
		return -1;
	}
	return 0;
}

static void free_devs(struct dev *devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		fe_blk_close(devs[i].blk);
		free(devs[i].qs);
		free(devs[i].slots);
		free(devs[i].bufs);
		free(devs[i].pause_ns);
	}
	free(devs);
}

/* ---- cost per request (bench_cost.h) ---------------------------------- */

static double per(double v, uint64_t n)
{
	return n ? v / (double)n : 0;
}

static void print_cost_line(const char *who, const struct cost *c, uint64_t n, double wall)
{
	double cpu = c->usr_s + c->sys_s;
	printf("  %-7s cpu %7.2f us (usr %.2f, sys %.2f; %3.0f%% of a core)  ctx switches vol "
	       "%.3f invol %.3f", who, per(cpu * 1e6, n), per(c->usr_s * 1e6, n),
	       per(c->sys_s * 1e6, n), wall > 0 ? cpu / wall * 100 : 0, per((double)c->vcsw, n),
	       per((double)c->ivcsw, n));
	if (c->have_io)
		printf("  syscalls r %.3f w %.3f", per((double)c->syscr, n), per((double)c->syscw, n));
	printf("\n");
}

static void print_cost(const struct cost *self, const struct cost *dmn, uint64_t n, double wall)
{
	printf("cost per request (%" PRIu64 " requests, %.2f s):\n", n, wall);
	print_cost_line("bench", self, n, wall);
	if (!dmn)
		return;
	print_cost_line("daemon", dmn, n, wall);
	printf("          of which io_uring workers: cpu %.2f us, ctx switches vol %.3f invol %.3f "
	       "(%u thread(s) seen)\n", per(dmn->wrk_s * 1e6, n), per((double)dmn->wrk_vcsw, n),
	       per((double)dmn->wrk_ivcsw, n), dmn->wrk_threads);
	printf("  (syscalls: read/write-family calls, /proc/PID/io syscr/syscw: eventfd doorbells "
	       "and interrupts; io_uring_enter, poll and epoll_wait are not counted)\n");
}

static void print_cost_kv(const char *who, const struct cost *c, uint64_t n, bool workers)
{
	printf(" %s_cpu_us=%.3f %s_usr_us=%.3f %s_sys_us=%.3f %s_vcsw=%.4f %s_ivcsw=%.4f", who,
	       per((c->usr_s + c->sys_s) * 1e6, n), who, per(c->usr_s * 1e6, n), who,
	       per(c->sys_s * 1e6, n), who, per((double)c->vcsw, n), who, per((double)c->ivcsw, n));
	if (c->have_io)
		printf(" %s_syscr=%.4f %s_syscw=%.4f", who, per((double)c->syscr, n), who,
		       per((double)c->syscw, n));
	if (workers)
		printf(" %s_wrk_cpu_us=%.3f %s_wrk_threads=%u", who, per(c->wrk_s * 1e6, n), who,
		       c->wrk_threads);
}

int main(int argc, char **argv)
{
	static struct opts o;
	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct dev *devs = calloc(o.ndevs, sizeof(*devs));
	if (!devs) {
		perror("calloc");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (unsigned i = 0; o.upgrade_every && i < o.ndevs; i++)
		if (!(devs[i].pause_ns = calloc(MAX_UPGRADES, sizeof(uint64_t)))) {
			perror("calloc");
			return 1;
		}
	pthread_barrier_init(&g_barrier, NULL, o.ndevs + 1);
	unsigned started = 0;
	for (unsigned i = 0; i < o.ndevs; i++) {
		devs[i].idx = i;
		devs[i].socket = o.sockets[i];
		devs[i].o = &o;
		int r = pthread_create(&devs[i].thread, NULL, dev_thread, &devs[i]);
		if (r) {
			fprintf(stderr, "pthread_create: %s\n", strerror(r));
			return 1;       /* threads already started wait at the barrier: just exit */
		}
		started++;
	}
	pthread_barrier_wait(&g_barrier);
	bool all_ok = true;
	for (unsigned i = 0; i < o.ndevs; i++) {
		if (!devs[i].open_ok) {
			fprintf(stderr, "%s: %s\n", devs[i].socket, devs[i].msg);
			all_ok = false;
		}
	}
	/* The cost covers the run from here (the sessions are set up) to the
	 * last answer of the drain. */
	struct cost_watch *self_w = NULL, *dmn_w = NULL;
	if (all_ok && o.daemon_pid && !(dmn_w = cost_watch_start(o.daemon_pid))) {
		fprintf(stderr, "--daemon-pid %d: cannot read /proc/%d: %s\n", (int)o.daemon_pid,
			(int)o.daemon_pid, strerror(errno));
		all_ok = false;
	}
	if (all_ok && !(self_w = cost_watch_start(0))) {
		fprintf(stderr, "cannot read /proc/self: %s\n", strerror(errno));
		all_ok = false;
	}
	if (!all_ok)
		__atomic_store_n(&g_abort, 1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&g_barrier);
	if (!all_ok) {
		for (unsigned i = 0; i < started; i++)
			pthread_join(devs[i].thread, NULL);
		free_devs(devs, o.ndevs);
		pthread_barrier_destroy(&g_barrier);
		return 1;
	}

	printf("%u device(s), %s", o.ndevs, rw_names[o.rw]);
	if (o.rw == RW_RANDRW)
		printf(" (rwmixread %u%%)", o.rwmixread);
	printf(", bs %u, %u queue(s) x iodepth %u per device, %us%s\n", o.bs, o.queues, o.iodepth,
	       o.runtime, o.no_copy ? ", no bounce copies (--no-copy)" : "");
	for (unsigned i = 0; i < o.ndevs; i++) {
		const struct fe_blk *b = devs[i].blk;
		const struct fe_vq *vq = &b->fe->vq[0];
		bool ind = b->fe->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
		printf("  dev%u %s: %" PRIu64 " MiB (using %" PRIu64 " MiB), ring %u%s, "
		       "shm %zu KiB%s%s\n", i, devs[i].socket, b->capacity / 2048,
		       devs[i].region >> 20, vq->num, ind ? " (indirect)" : "",
		       b->fe->rw_size >> 10,
		       b->fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX) ? ", event-idx" : "",
		       vq->num < o.iodepth * (ind ? 1 : 3) ? " [ring smaller than iodepth]" : "");
	}

	static struct upgrader up;
	up.o = &o;
	if (o.upgrade_every && pthread_create(&up.thread, NULL, upgrade_thread, &up) != 0) {
		perror("pthread_create");
		return 1;
	}
	uint64_t t0 = now_ns();
	uint64_t last_ios = 0, last_bytes = 0, last_t = t0, last_sample = t0;
	uint64_t last_dev[MAX_DEVS] = { 0 };
	bool alive = true;
	for (unsigned sec = 1; sec <= o.runtime && alive &&
	     !__atomic_load_n(&g_stop, __ATOMIC_RELAXED); sec++) {
		uint64_t target = t0 + (uint64_t)sec * 1000000000ull;
		for (uint64_t t; (t = now_ns()) < target;) {
			if (__atomic_load_n(&g_stop, __ATOMIC_RELAXED))
				break;
			alive = false;
			for (unsigned i = 0; i < o.ndevs; i++)
				alive |= !__atomic_load_n(&devs[i].t_end, __ATOMIC_ACQUIRE);
			if (!alive)
				break;      /* every device thread gave up */
			if (t - last_sample >= SAMPLE_MS * 1000000ull) {
				cost_watch_sample(dmn_w);
				last_sample = t;
			}
			uint64_t left = target - t;
			struct timespec ts = { 0, (long)(left > 50000000 ? 50000000 : left) };
			nanosleep(&ts, NULL);
		}
		if (o.quiet || __atomic_load_n(&g_stop, __ATOMIC_RELAXED))
			continue;       /* no line for an interrupted second */
		uint64_t t = now_ns(), ios = 0, bytes = 0;
		char per[512] = "";
		size_t pl = 0;
		for (unsigned i = 0; i < o.ndevs; i++) {
			uint64_t di = __atomic_load_n(&devs[i].ios_live, __ATOMIC_RELAXED);
			ios += di;
			bytes += __atomic_load_n(&devs[i].bytes_live, __ATOMIC_RELAXED);
			if (o.ndevs > 1 && pl < sizeof(per) - 40)
				pl += (size_t)snprintf(per + pl, sizeof(per) - pl, " dev%u=%.0f", i,
						       (double)(di - last_dev[i]) /
						       ((double)(t - last_t) / 1e9));
			last_dev[i] = di;
		}
		double dt = (double)(t - last_t) / 1e9;
		printf("[%3us] %10.0f IOPS %9.1f MB/s%s\n", sec, (double)(ios - last_ios) / dt,
		       (double)(bytes - last_bytes) / dt / 1e6, per);
		last_ios = ios;
		last_bytes = bytes;
		last_t = t;
	}
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
	if (o.upgrade_every)
		pthread_join(up.thread, NULL);
	for (unsigned i = 0; i < o.ndevs; i++)
		pthread_join(devs[i].thread, NULL);
	struct cost self_c, dmn_c;
	int dmn_r = dmn_w ? cost_watch_end(dmn_w, &dmn_c) : -ENOENT;
	cost_watch_end(self_w, &self_c);
	double wall = (double)(now_ns() - t0) / 1e9;

	static struct hist tot_lat;
	uint64_t tot_ios[2] = { 0, 0 }, tot_bytes[2] = { 0, 0 }, tot_err = 0;
	uint64_t tot_kicks = 0, tot_irqs = 0, tot_polls = 0, tot_done = 0;
	double tot_iops = 0, tot_bps = 0;
	int failed = 0;
	printf("\n");
	for (unsigned i = 0; i < o.ndevs; i++) {
		struct dev *d = &devs[i];
		double s = secs(d);
		uint64_t ios = d->ios[0] + d->ios[1], bytes = d->bytes[0] + d->bytes[1];
		static struct hist all;
		memset(&all, 0, sizeof(all));
		hist_merge(&all, &d->lat[0]);
		hist_merge(&all, &d->lat[1]);
		hist_merge(&tot_lat, &all);
		printf("dev%u %s: %.2f s\n", i, d->socket, s);
		if (d->ios[0] && d->ios[1]) {
			print_line("read", d->ios[0], d->bytes[0], s, &d->lat[0]);
			print_line("write", d->ios[1], d->bytes[1], s, &d->lat[1]);
		}
		print_line(d->ios[1] && !d->ios[0] ? "write" : d->ios[0] && !d->ios[1] ? "read" : "all",
			   ios, bytes, s, &all);
		uint64_t n = ios + d->errors ? ios + d->errors : 1;
		printf("  kicks/request %.3f  interrupts/request %.3f  polls/request %.3f  "
		       "errors %" PRIu64 "\n", (double)d->kicks / (double)n,
		       (double)d->interrupts / (double)n, (double)d->polls / (double)n, d->errors);
		if (d->errors)
			printf("  first error: status %" PRId64 " (%s)\n", (int64_t)d->err_first_status,
			       status_name((int64_t)d->err_first_status));
		if (d->fatal) {
			printf("  FAILED: %s\n", d->msg);
			failed = 1;
		}
		for (int w = 0; w < 2; w++) {
			tot_ios[w] += d->ios[w];
			tot_bytes[w] += d->bytes[w];
		}
		tot_err += d->errors;
		tot_kicks += d->kicks;
		tot_irqs += d->interrupts;
		tot_polls += d->polls;
		tot_done += d->completed;
		if (s > 0) {
			tot_iops += (double)ios / s;
			tot_bps += (double)bytes / s;
		}
	}
	uint64_t ios = tot_ios[0] + tot_ios[1], n = ios + tot_err ? ios + tot_err : 1;
	double p50 = hist_pct(&tot_lat, 50) / 1e3, p99 = hist_pct(&tot_lat, 99) / 1e3;
	printf("total: %.0f IOPS, %.1f MB/s, lat p50 %.1f us, p99 %.1f us, %" PRIu64 " ios "
	       "(%" PRIu64 " reads, %" PRIu64 " writes), errors %" PRIu64 "\n", tot_iops,
	       tot_bps / 1e6, p50, p99, ios, tot_ios[0], tot_ios[1], tot_err);
	printf("total: kicks/request %.3f  interrupts/request %.3f  polls/request %.3f\n",
	       (double)tot_kicks / (double)n, (double)tot_irqs / (double)n,
	       (double)tot_polls / (double)n);
	print_cost(&self_c, dmn_r == 0 ? &dmn_c : NULL, tot_done, wall);
	if (o.daemon_pid && dmn_r < 0)
		printf("daemon cost: /proc/%d could not be read at the end: %s\n", (int)o.daemon_pid,
		       strerror(-dmn_r));
	if (tot_err)
		printf("ERRORS: %" PRIu64 " request(s) failed\n", tot_err);
	if (o.upgrade_every)
		report_upgrades(&up, devs, o.ndevs);
	printf("RESULT iops=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f requests=%" PRIu64, tot_iops,
	       tot_bps / 1e6, p50, p99, tot_done);
	print_cost_kv("bench", &self_c, tot_done, false);
	if (dmn_r == 0)
		print_cost_kv("daemon", &dmn_c, tot_done, true);
	printf("\n");
	free_devs(devs, o.ndevs);
	pthread_barrier_destroy(&g_barrier);
	return failed || tot_err || up.failed ? 1 : 0;
}
