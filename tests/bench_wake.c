/* virtio-ivshmem-bench --wake-cost: see bench_wake.h. */
#include "tests/bench_wake.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
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

/* One phase: requests for runtime_ns, each answered after work_ns. */
static int phase(unsigned work_ns, uint64_t runtime_ns, struct hist *h, uint64_t *slept)
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
	uint64_t end = now_ns() + runtime_ns, seq = 0, v;
	r = 0;
	while (now_ns() < end) {
		uint64_t t0 = now_ns();
		__atomic_store_n(&p.req, ++seq, __ATOMIC_RELEASE);
		/* As the bench's worker: look once, then sleep until the interrupt. */
		if (read(p.efd, &v, sizeof(v)) != sizeof(v)) {
			(*slept)++;
			struct pollfd pfd = { .fd = p.efd, .events = POLLIN };
			while (read(p.efd, &v, sizeof(v)) != sizeof(v)) {
				int n = poll(&pfd, 1, WAIT_MS);
				if (n == 0 || (n < 0 && errno != EINTR)) {
					r = n ? -errno : -ETIMEDOUT;
					goto out;
				}
			}
		}
		hist_add(h, now_ns() - t0);
	}
out:
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
	uint64_t half = (uint64_t)runtime_ms * 1000000ull / 2, awake_slept = 0, slept = 0;
	int r = phase(0, half, &h[0], &awake_slept);
	if (!r)
		r = phase(work_ns, half, &h[1], &slept);
	if (!r && (!h[0].count || !h[1].count))
		r = -ETIMEDOUT;
	if (!r) {
		*out = (struct wake_cost){
			.awake_p50_us = hist_pct(&h[0], 50) / 1e3,
			.awake_p99_us = hist_pct(&h[0], 99) / 1e3,
			.slept_p50_us = hist_pct(&h[1], 50) / 1e3,
			.slept_p99_us = hist_pct(&h[1], 99) / 1e3,
			.slept_share = (double)slept / (double)h[1].count,
			.requests = h[0].count + h[1].count,
		};
		out->wake_us = out->slept_p50_us - work_ns / 1e3 - out->awake_p50_us;
	}
	free(h);
	return r;
}
