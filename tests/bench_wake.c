/* virtio-ivshmem-bench --wake-cost: see bench_wake.h. */
#include "tests/bench_wake.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/bench.h"

#define GIVE_UP_NS      1000000ull      /* responder: yield after 1 ms without a request */
#define WAIT_MS         1000            /* requester: an answer this late ends the phase */

struct pair {
	int efd;
	unsigned work_ns;
	uint64_t req;                   /* the requester's sequence number; ~0: stop */
};

static void *responder(void *arg)
{
	struct pair *p = arg;
	uint64_t seen = 0;
	for (;;) {
		uint64_t r, idle_from = now_ns();
		while ((r = __atomic_load_n(&p->req, __ATOMIC_ACQUIRE)) == seen) {
			if (now_ns() - idle_from > GIVE_UP_NS) {
				sched_yield();
				idle_from = now_ns();
			}
		}
		if (r == ~0ull)
			return NULL;
		seen = r;
		uint64_t t = now_ns();
		while (now_ns() - t < p->work_ns)
			;
		uint64_t one = 1;
		if (write(p->efd, &one, sizeof(one)) != sizeof(one))
			return NULL;            /* cannot happen with a counter below 2^64-1 */
	}
}

/* The answer to the request just published: spin on the eventfd (awake),
 * or look once and then sleep in poll() as the bench's worker does. */
static int answer(int efd, bool spin)
{
	uint64_t v, t0 = now_ns();
	if (read(efd, &v, sizeof(v)) == sizeof(v))
		return 0;
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	while (read(efd, &v, sizeof(v)) != sizeof(v)) {
		if (spin) {
			uint64_t waited = now_ns() - t0;
			if (waited > (uint64_t)WAIT_MS * 1000000)
				return -ETIMEDOUT;
			if (waited > GIVE_UP_NS)
				sched_yield();  /* one CPU: let the responder run */
			continue;
		}
		int n = poll(&pfd, 1, WAIT_MS);
		if (n == 0 || (n < 0 && errno != EINTR))
			return n ? -errno : -ETIMEDOUT;
	}
	return 0;
}

static uint64_t thread_vcsw(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_THREAD, &ru) == 0 ? (uint64_t)ru.ru_nvcsw : 0;
}

/* One phase: requests for runtime_ns, each answered after work_ns; the
 * requester's voluntary context switches meanwhile in *vcsw (if asked). */
static int phase(unsigned work_ns, bool spin, uint64_t runtime_ns, struct hist *h,
		 uint64_t *vcsw)
{
	struct pair p = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .work_ns = work_ns };
	if (p.efd < 0)
		return -errno;
	pthread_t t;
	int r = pthread_create(&t, NULL, responder, &p);
	if (r) {
		close(p.efd);
		return -r;
	}
	uint64_t end = now_ns() + runtime_ns, seq = 0, cs0 = thread_vcsw();
	r = 0;
	while (r == 0 && now_ns() < end) {
		uint64_t t0 = now_ns();
		__atomic_store_n(&p.req, ++seq, __ATOMIC_RELEASE);
		if ((r = answer(p.efd, spin)) == 0)
			hist_add(h, now_ns() - t0);
	}
	if (vcsw)
		*vcsw = thread_vcsw() - cs0;
	__atomic_store_n(&p.req, ~0ull, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	close(p.efd);
	return r;
}

int wake_cost_measure(unsigned work_ns, unsigned runtime_ms, struct wake_cost *out)
{
	/* The histograms are large (~16 KiB each): not on the stack. */
	struct hist *h = calloc(2, sizeof(*h));
	if (!h)
		return -ENOMEM;
	uint64_t half = (uint64_t)runtime_ms * 1000000ull / 2, cs_slept = 0;
	int r = phase(0, true, half, &h[0], NULL);
	if (!r)
		r = phase(work_ns, false, half, &h[1], &cs_slept);
	if (!r && (!h[0].count || !h[1].count))
		r = -ETIMEDOUT;
	if (!r) {
		*out = (struct wake_cost){
			.awake_p50_us = hist_pct(&h[0], 50) / 1e3,
			.awake_p99_us = hist_pct(&h[0], 99) / 1e3,
			.slept_p50_us = hist_pct(&h[1], 50) / 1e3,
			.slept_p99_us = hist_pct(&h[1], 99) / 1e3,
			.slept_share = (double)cs_slept / (double)h[1].count,
			.requests = h[0].count + h[1].count,
		};
		out->wake_us = out->slept_p50_us - work_ns / 1e3 - out->awake_p50_us;
	}
	free(h);
	return r;
}

int wake_cost_report(unsigned work_us, unsigned runtime_s)
{
	struct wake_cost w;
	int r = wake_cost_measure(work_us * 1000, runtime_s * 1000, &w);
	if (r < 0) {
		fprintf(stderr, "--wake-cost: %s\n", strerror(-r));
		return 1;
	}
	printf("wake cost: a thread that waits for an eventfd written by a thread spinning\n"
	       "on another CPU, %llu requests in %u s:\n"
	       "  waiting awake, answered at once:  p50 %6.1f us  p99 %6.1f us\n"
	       "  in poll(), answered after %3u us: p50 %6.1f us  p99 %6.1f us  (%.2f sleeps "
	       "per request)\n"
	       "  sleeping added %.1f us at the median\n",
	       (unsigned long long)w.requests, runtime_s, w.awake_p50_us, w.awake_p99_us,
	       work_us, w.slept_p50_us, w.slept_p99_us, w.slept_share, w.wake_us);
	printf("RESULT wake_us=%.2f awake_p50_us=%.2f awake_p99_us=%.2f slept_p50_us=%.2f "
	       "slept_p99_us=%.2f slept_share=%.3f work_us=%u requests=%llu\n", w.wake_us,
	       w.awake_p50_us, w.awake_p99_us, w.slept_p50_us, w.slept_p99_us, w.slept_share,
	       work_us, (unsigned long long)w.requests);
	return 0;
}
