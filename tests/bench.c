/* virtio-ivshmem-bench: an fio-like load generator for virtio-blk devices
 * served by virtio-ivshmemd, driven through the userspace front-end
 * (tests/frontend) over software IVSHMEM links.
 *
 * Each device's --queues queues keep --iodepth requests in flight each.
 * --threads N workers share the queues of all devices (contiguous shares,
 * bench_worker.c): by default one per device; one per queue models a guest
 * whose CPUs each drive their own blk-mq queue, like fio's numjobs.  A
 * worker submits in batches (each request published as it is added, one
 * kick decision per queue per batch, as Linux's virtio_ring), then takes what
 * has completed, or waits for an interrupt on its queues' vectors.  Latency
 * is measured from just before fe_blk_submit() to the completion callback,
 * i.e. it includes the bounce copies, like fio's completion latency
 * includes the page-cache copy.
 *
 * With --hipri the queues are poll queues (fe_vq_set_poll_queue): the driver
 * wants no interrupts and the workers poll the used rings instead of
 * waiting, as a cell does whose virtio_blk has poll_queues, for io_uring
 * IOPOLL (fio --hipri); its latency then has no wake-up of the cell in it.
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
 * two completions of a queue while the upgrade was under way (from just
 * before the request to 100 ms after its answer), the largest over the
 * queues.  Reported, with the daemon's own figure from its answer, as
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
#include "tests/bench.h"
#include "tests/bench_cost.h"
#include "tests/bench_wake.h"

#define UPGRADE_TAIL_MS 100         /* an upgrade's window goes on this long after its answer */
#define SAMPLE_MS       200         /* how often the daemon's threads are read (bench_cost.h) */

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

static const char *const rw_names[] = { "read", "write", "randread", "randwrite", "randrw" };

static void on_signal(int sig)
{
	(void)sig;
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
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

static void report_upgrades(const struct upgrader *u, const struct dev *devs,
			    const struct opts *o)
{
	static double fe[MAX_UPGRADES], dm[MAX_UPGRADES];
	for (unsigned i = 0; i < u->done; i++) {
		uint64_t m = 0;
		for (unsigned k = 0; k < o->ndevs; k++)
			for (unsigned q = 0; q < o->queues; q++)
				if (devs[k].qs[q].pause_ns[i] > m)
					m = devs[k].qs[q].pause_ns[i];
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

/* A device's results: the sum of its queues'. */
struct agg {
	struct hist lat[2], all;
	uint64_t ios[2], bytes[2], errors, err_first_status, completed, kicks;
	uint64_t t_start, t_end;
};

static void dev_sum(const struct dev *d, struct agg *a)
{
	memset(a, 0, sizeof(*a));
	for (unsigned i = 0; i < d->o->queues; i++) {
		const struct queue *q = &d->qs[i];
		for (int w = 0; w < 2; w++) {
			hist_merge(&a->lat[w], &q->lat[w]);
			hist_merge(&a->all, &q->lat[w]);
			a->ios[w] += q->ios[w];
			a->bytes[w] += q->bytes[w];
		}
		if (!a->errors && q->errors)
			a->err_first_status = q->err_first_status;
		a->errors += q->errors;
		a->completed += q->completed;
		a->kicks += d->blk->fe->vq[i].kicks;
		if (!a->t_start || q->t_start < a->t_start)
			a->t_start = q->t_start;
		if (q->t_end > a->t_end)
			a->t_end = q->t_end;
	}
}

static double secs(const struct agg *a)
{
	return a->t_end > a->t_start ? (double)(a->t_end - a->t_start) / 1e9 : 0;
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
		"  --threads N       workers sharing the queues of all devices (default: one\n"
		"                    per device; one per queue is like fio's numjobs)\n"
		"  --runtime SEC     duration (default 10)\n"
		"  --size BYTES      region of each disk to use (default: the whole disk)\n"
		"  --quiet           no progress lines\n"
		"  --control PATH    the daemon's control socket, for --upgrade-every\n"
		"  --upgrade-every MS  ask the daemon to upgrade (to itself) every MS ms and\n"
		"                    report the pauses the load saw\n"
		"  --no-copy         no bounce copies: data buffers are taken from the shared\n"
		"                    pool as usual but not cleared, filled or copied back\n"
		"  --hipri           poll queues, as a cell with virtio_blk poll_queues and\n"
		"                    io_uring IOPOLL (fio --hipri): no interrupts, the\n"
		"                    workers poll the used rings instead of sleeping\n"
		"  --daemon-pid PID  also report the daemon's cost per request (CPU, context\n"
		"                    switches, system calls, its io_uring workers)\n"
		"  --wake-cost       no devices: measure what waking a thread asleep in poll()\n"
		"                    costs this machine (tests/bench_wake.h), for --runtime\n"
		"  --wake-work-us N  --wake-cost's answer delay, longer than it takes to fall\n"
		"                    asleep (default 5)\n"
		"  -h, --help        this help\n\n"
		"Ends with: RESULT iops=<n> mbps=<n> p50_us=<n> p99_us=<n> requests=<n> and the\n"
		"cost per request (bench_cpu_us=..., daemon_cpu_us=...); --wake-cost with\n"
		"RESULT wake_us=<n> awake_p50_us=<n> slept_p50_us=<n> slept_share=<n> ...\n");
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
		{ "threads", required_argument, NULL, 'T' },
		{ "runtime", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "control", required_argument, NULL, 'C' },
		{ "upgrade-every", required_argument, NULL, 'U' },
		{ "no-copy", no_argument, NULL, 'N' },
		{ "daemon-pid", required_argument, NULL, 'P' },
		{ "hipri", no_argument, NULL, 'H' },
		{ "wake-cost", no_argument, NULL, 'W' },
		{ "wake-work-us", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	*o = (struct opts){ .rw = RW_RANDREAD, .rwmixread = 50, .bs = 4096, .iodepth = 32,
			    .queues = 1, .runtime = 10, .wake_work_us = 5 };
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
		case 'T':
			if (!parse_num(optarg, 1, MAX_THREADS, &u)) {
				fprintf(stderr, "--threads: a number from 1 to %d\n", MAX_THREADS);
				return -1;
			}
			o->threads = (unsigned)u;
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
		case 'H':
			o->hipri = true;
			break;
		case 'W':
			o->wake_cost = true;
			break;
		case 'w':
			if (!parse_num(optarg, 1, 1000, &u)) {
				fprintf(stderr, "--wake-work-us: microseconds, from 1 to 1000\n");
				return -1;
			}
			o->wake_work_us = (unsigned)u;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (o->wake_cost) {
		if (o->ndevs)
			fprintf(stderr, "--wake-cost drives no device: no --socket\n");
		return optind == argc && o->ndevs == 0 ? 0 : -1;
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
	if (o->threads > o->ndevs * o->queues) {
		fprintf(stderr, "--threads %u: more than the %u queue(s) to drive\n", o->threads,
			o->ndevs * o->queues);
		return -1;
	}
	if (o->size && o->size < o->bs) {
		fprintf(stderr, "--size is smaller than --bs\n");
		return -1;
	}
	return 0;
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

static void free_all(struct dev *devs, struct worker *ws, unsigned nw, const struct opts *o)
{
	for (unsigned i = 0; i < o->ndevs; i++)
		dev_free(&devs[i]);
	workers_free(ws, nw);
	free(devs);
	free(ws);
}

static void print_devices(const struct dev *devs, const struct opts *o, unsigned nw)
{
	printf("%u device(s), %s", o->ndevs, rw_names[o->rw]);
	if (o->rw == RW_RANDRW)
		printf(" (rwmixread %u%%)", o->rwmixread);
	printf(", bs %u, %u queue(s) x iodepth %u per device, %u thread(s), %us%s%s\n", o->bs,
	       o->queues, o->iodepth, nw, o->runtime,
	       o->no_copy ? ", no bounce copies (--no-copy)" : "",
	       o->hipri ? ", poll queues (--hipri)" : "");
	for (unsigned i = 0; i < o->ndevs; i++) {
		const struct fe_blk *b = devs[i].blk;
		const struct fe_vq *vq = &b->fe->vq[0];
		bool ind = b->fe->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
		printf("  dev%u %s: %" PRIu64 " MiB (using %" PRIu64 " MiB), ring %u%s, "
		       "shm %zu KiB%s%s\n", i, devs[i].socket, b->capacity / 2048,
		       devs[i].region >> 20, vq->num, ind ? " (indirect)" : "",
		       b->fe->rw_size >> 10,
		       b->fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX) ? ", event-idx" : "",
		       vq->num < o->iodepth * (ind ? 1 : 3) ? " [ring smaller than iodepth]" : "");
	}
}

/* One line per second until the runtime is over or every worker gave up;
 * the daemon's threads are read in between (bench_cost.h). */
static void run_clock(const struct dev *devs, const struct worker *ws, unsigned nw,
		      const struct opts *o, struct cost_watch *dmn_w)
{
	uint64_t t0 = now_ns(), last_ios = 0, last_bytes = 0, last_t = t0, last_sample = t0;
	uint64_t last_dev[MAX_DEVS] = { 0 };
	bool alive = true;
	for (unsigned sec = 1; sec <= o->runtime && alive &&
	     !__atomic_load_n(&g_stop, __ATOMIC_RELAXED); sec++) {
		uint64_t target = t0 + (uint64_t)sec * 1000000000ull;
		for (uint64_t t; (t = now_ns()) < target;) {
			if (__atomic_load_n(&g_stop, __ATOMIC_RELAXED))
				break;
			alive = false;
			for (unsigned k = 0; k < nw; k++)
				alive |= !__atomic_load_n(&ws[k].t_end, __ATOMIC_ACQUIRE);
			if (!alive)
				break;      /* every worker gave up */
			if (t - last_sample >= SAMPLE_MS * 1000000ull) {
				cost_watch_sample(dmn_w);
				last_sample = t;
			}
			uint64_t left = target - t;
			struct timespec ts = { 0, (long)(left > 50000000 ? 50000000 : left) };
			nanosleep(&ts, NULL);
		}
		if (o->quiet || __atomic_load_n(&g_stop, __ATOMIC_RELAXED))
			continue;       /* no line for an interrupted second */
		uint64_t t = now_ns(), ios = 0, bytes = 0;
		char per_dev[512] = "";
		size_t pl = 0;
		for (unsigned i = 0; i < o->ndevs; i++) {
			uint64_t di = 0;
			for (unsigned q = 0; q < o->queues; q++) {
				di += __atomic_load_n(&devs[i].qs[q].ios_live, __ATOMIC_RELAXED);
				bytes += __atomic_load_n(&devs[i].qs[q].bytes_live, __ATOMIC_RELAXED);
			}
			ios += di;
			if (o->ndevs > 1 && pl < sizeof(per_dev) - 40)
				pl += (size_t)snprintf(per_dev + pl, sizeof(per_dev) - pl, " dev%u=%.0f",
						       i, (double)(di - last_dev[i]) /
						       ((double)(t - last_t) / 1e9));
			last_dev[i] = di;
		}
		double dt = (double)(t - last_t) / 1e9;
		printf("[%3us] %10.0f IOPS %9.1f MB/s%s\n", sec, (double)(ios - last_ios) / dt,
		       (double)(bytes - last_bytes) / dt / 1e6, per_dev);
		last_ios = ios;
		last_bytes = bytes;
		last_t = t;
	}
}

/* Per device and in total; returns 1 when a request failed or a worker broke. */
static int report(const struct dev *devs, const struct worker *ws, unsigned nw,
		  const struct opts *o, const struct cost *self_c, const struct cost *dmn_c,
		  double wall, const struct upgrader *up)
{
	static struct agg a;
	static struct hist tot_lat;
	uint64_t tot_ios[2] = { 0, 0 }, tot_bytes[2] = { 0, 0 }, tot_err = 0;
	uint64_t tot_kicks = 0, tot_irqs = 0, tot_polls = 0, tot_done = 0;
	double tot_iops = 0, tot_bps = 0;
	int failed = 0;
	printf("\n");
	for (unsigned i = 0; i < o->ndevs; i++) {
		const struct dev *d = &devs[i];
		dev_sum(d, &a);
		double s = secs(&a);
		uint64_t ios = a.ios[0] + a.ios[1], bytes = a.bytes[0] + a.bytes[1];
		uint64_t irqs = __atomic_load_n(&d->blk->fe->interrupts, __ATOMIC_RELAXED);
		hist_merge(&tot_lat, &a.all);
		printf("dev%u %s: %.2f s\n", i, d->socket, s);
		if (a.ios[0] && a.ios[1]) {
			print_line("read", a.ios[0], a.bytes[0], s, &a.lat[0]);
			print_line("write", a.ios[1], a.bytes[1], s, &a.lat[1]);
		}
		print_line(a.ios[1] && !a.ios[0] ? "write" : a.ios[0] && !a.ios[1] ? "read" : "all",
			   ios, bytes, s, &a.all);
		uint64_t n = a.completed ? a.completed : 1;
		printf("  kicks/request %.3f  interrupts/request %.3f  errors %" PRIu64 "\n",
		       (double)a.kicks / (double)n, (double)irqs / (double)n, a.errors);
		if (a.errors)
			printf("  first error: status %" PRId64 " (%s)\n", (int64_t)a.err_first_status,
			       status_name((int64_t)a.err_first_status));
		for (int w = 0; w < 2; w++) {
			tot_ios[w] += a.ios[w];
			tot_bytes[w] += a.bytes[w];
		}
		tot_err += a.errors;
		tot_kicks += a.kicks;
		tot_irqs += irqs;
		tot_done += a.completed;
		if (s > 0) {
			tot_iops += (double)ios / s;
			tot_bps += (double)bytes / s;
		}
	}
	for (unsigned k = 0; k < nw; k++) {
		tot_polls += ws[k].polls;
		if (ws[k].fatal) {
			printf("thread %u (%u queue(s), the first of dev%u): FAILED: %s\n", k, ws[k].nq,
			       ws[k].nq ? ws[k].qs[0]->d->idx : 0, ws[k].msg);
			failed = 1;
		}
	}
	uint64_t ios = tot_ios[0] + tot_ios[1], n = tot_done ? tot_done : 1;
	double p50 = hist_pct(&tot_lat, 50) / 1e3, p99 = hist_pct(&tot_lat, 99) / 1e3;
	printf("total: %.0f IOPS, %.1f MB/s, lat p50 %.1f us, p99 %.1f us, %" PRIu64 " ios "
	       "(%" PRIu64 " reads, %" PRIu64 " writes), errors %" PRIu64 "\n", tot_iops,
	       tot_bps / 1e6, p50, p99, ios, tot_ios[0], tot_ios[1], tot_err);
	printf("total: kicks/request %.3f  interrupts/request %.3f  polls/request %.3f\n",
	       (double)tot_kicks / (double)n, (double)tot_irqs / (double)n,
	       (double)tot_polls / (double)n);
	print_cost(self_c, dmn_c, tot_done, wall);
	if (tot_err)
		printf("ERRORS: %" PRIu64 " request(s) failed\n", tot_err);
	if (o->upgrade_every)
		report_upgrades(up, devs, o);
	printf("RESULT iops=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f requests=%" PRIu64, tot_iops,
	       tot_bps / 1e6, p50, p99, tot_done);
	print_cost_kv("bench", self_c, tot_done, false);
	if (dmn_c)
		print_cost_kv("daemon", dmn_c, tot_done, true);
	printf("\n");
	return failed || tot_err ? 1 : 0;
}

/* Open every device, share their queues among the workers, start watching
 * the costs.  1 (with the reason printed) when the run cannot start. */
static int prepare(struct dev *devs, struct worker *ws, unsigned nw, const struct opts *o,
		   struct cost_watch **self_w, struct cost_watch **dmn_w)
{
	int rc = 0;
	for (unsigned i = 0; i < o->ndevs; i++) {
		devs[i].idx = i;
		devs[i].socket = o->sockets[i];
		devs[i].o = o;
		if (dev_setup(&devs[i]) < 0) {
			fprintf(stderr, "%s: %s\n", devs[i].socket, devs[i].msg);
			rc = 1;
		}
	}
	char err[512];
	if (!rc && workers_plan(ws, nw, devs, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		rc = 1;
	}
	/* The cost covers the run from here (the sessions are set up) to the
	 * last answer of the drain. */
	if (!rc && o->daemon_pid && !(*dmn_w = cost_watch_start(o->daemon_pid))) {
		fprintf(stderr, "--daemon-pid %d: cannot read /proc/%d: %s\n", (int)o->daemon_pid,
			(int)o->daemon_pid, strerror(errno));
		rc = 1;
	}
	if (!rc && !(*self_w = cost_watch_start(0))) {
		fprintf(stderr, "cannot read /proc/self: %s\n", strerror(errno));
		rc = 1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	static struct opts o;
	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.wake_cost)
		return wake_cost_report(o.wake_work_us, o.runtime);
	unsigned nw = o.threads ? o.threads : o.ndevs;
	struct dev *devs = calloc(o.ndevs, sizeof(*devs));
	struct worker *ws = calloc(nw, sizeof(*ws));
	if (!devs || !ws) {
		perror("calloc");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct cost_watch *self_w = NULL, *dmn_w = NULL;
	if (prepare(devs, ws, nw, &o, &self_w, &dmn_w)) {
		struct cost c;
		if (dmn_w)
			cost_watch_end(dmn_w, &c);
		free_all(devs, ws, nw, &o);
		return 1;
	}
	print_devices(devs, &o, nw);
	pthread_barrier_init(&g_barrier, NULL, nw + 1);
	for (unsigned k = 0; k < nw; k++) {
		int r = pthread_create(&ws[k].thread, NULL, worker_thread, &ws[k]);
		if (r) {
			fprintf(stderr, "pthread_create: %s\n", strerror(r));
			return 1;       /* threads already started wait at the barrier: just exit */
		}
	}
	static struct upgrader up;
	up.o = &o;
	if (o.upgrade_every && pthread_create(&up.thread, NULL, upgrade_thread, &up) != 0) {
		perror("pthread_create");
		return 1;
	}
	pthread_barrier_wait(&g_barrier);       /* go */
	uint64_t t0 = now_ns();
	run_clock(devs, ws, nw, &o, dmn_w);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
	if (o.upgrade_every)
		pthread_join(up.thread, NULL);
	for (unsigned k = 0; k < nw; k++)
		pthread_join(ws[k].thread, NULL);
	struct cost self_c, dmn_c;
	int dmn_r = dmn_w ? cost_watch_end(dmn_w, &dmn_c) : -ENOENT;
	cost_watch_end(self_w, &self_c);
	double wall = (double)(now_ns() - t0) / 1e9;
	if (o.daemon_pid && dmn_r < 0)
		printf("daemon cost: /proc/%d could not be read at the end: %s\n", (int)o.daemon_pid,
		       strerror(-dmn_r));
	int failed = report(devs, ws, nw, &o, &self_c, dmn_r == 0 ? &dmn_c : NULL, wall, &up);
	free_all(devs, ws, nw, &o);
	pthread_barrier_destroy(&g_barrier);
	return failed || up.failed ? 1 : 0;
}
