#include "core/busypoll.h"

#include <stddef.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

uint64_t busypoll_adapt(uint64_t window, uint64_t max, uint64_t slept_ns)
{
	if (slept_ns <= window)
		return window;              /* caught it, or would have */
	if (slept_ns > max)             /* idle: spin less, down to not at all */
		return window / 2 < BUSYPOLL_START_NS ? 0 : window / 2;
	uint64_t w = window ? window * 2 : BUSYPOLL_START_NS;
	return w > max ? max : w;
}

/* A hit is work taken, not a source that looked ready: a driver that
 * moves its index back and forth must not keep the loop from sleeping. */
static bool run_ready(struct busypoll *bp)
{
	bool hit = false;
	for (struct busypoll_source *s = bp->head; s; s = s->next)
		if (s->ready && s->ready(s) && s->run(s))
			hit = true;
	return hit;
}

static void quiet_all(struct busypoll *bp)
{
	for (struct busypoll_source *s = bp->head; s; s = s->next)
		if (s->quiet && s->arm && !s->quieted)
			s->quieted = s->quiet(s);
}

/* Kicks on again everywhere, then run what came without one.  arm() leaves
 * the list alone; run() may add or remove sources, so each run starts the
 * walk again (each run clears one flag: at most one walk per source). */
static bool arm_all(struct busypoll *bp)
{
	for (struct busypoll_source *s = bp->head; s; s = s->next)
		if (s->quieted) {
			s->quieted = false;
			s->arrived = s->arm(s);
		}
	bool hit = false;
again:
	for (struct busypoll_source *s = bp->head; s; s = s->next)
		if (s->arrived) {
			s->arrived = false;
			if ((!s->ready || s->ready(s)) && s->run(s))
				hit = true;
			goto again;
		}
	return hit;
}

static bool io_in_flight(struct busypoll *bp)
{
	for (struct busypoll_source *s = bp->head; s; s = s->next)
		if (s->waits && s->waits(s))
			return true;
	return false;
}

static void idle_cb(uv_idle_t *h)
{
	(void)h;
}

/* Right before the loop would sleep in epoll. */
static void prepare_cb(uv_prepare_t *h)
{
	struct busypoll *bp = h->data;
	bp->sleep_from = 0;
	/* 0: the poll will not block (idle handles such as the tick's,
	 * pending callbacks), or libuv has watcher changes to register first
	 * (a uv_poll started or stopped in this iteration): then the loop may
	 * sleep after all, unspun and not counted - spinning there could
	 * hold up an iteration that was never going to wait. */
	int timeout_ms = bp->max_ns && bp->head ? uv_backend_timeout(bp->loop) : 0;
	if (timeout_ms == 0)
		return;
	if (io_in_flight(bp))
		return;                     /* its completion wakes the loop */
	uint64_t t0 = now_ns();
	uint64_t window = bp->window_ns;
	/* A timer due sooner is not kept waiting. */
	if (timeout_ms > 0 && (uint64_t)timeout_ms * 1000000u < window)
		window = (uint64_t)timeout_ms * 1000000u;
	if (window) {
		bp->stats.spins++;
		quiet_all(bp);
		uint64_t t = t0;
		bool hit;
		while (!(hit = run_ready(bp)) && (t = now_ns()) - t0 < window)
			cpu_relax();
		bp->stats.spun_ns += t - t0;
		/* Kicks on before anything else runs: the next iteration may
		 * sleep without a spin (I/O in flight). */
		if (arm_all(bp))
			hit = true;
		if (hit) {
			bp->stats.hits++;
			/* Its answers go out from this iteration's check phase:
			 * the poll must not block before that. */
			uv_idle_start(&bp->idle, idle_cb);
			return;
		}
		/* libuv takes the poll's timeout from the time it read at the
		 * start of the iteration: without this a timer would be late
		 * by the spin. */
		uv_update_time(bp->loop);
	}
	bp->sleep_from = t0;
}

static void check_cb(uv_check_t *h)
{
	struct busypoll *bp = h->data;
	uv_idle_stop(&bp->idle);
	if (bp->sleep_from)
		bp->window_ns = busypoll_adapt(bp->window_ns, bp->max_ns, now_ns() - bp->sleep_from);
	bp->sleep_from = 0;
}

void busypoll_init(struct busypoll *bp, uv_loop_t *loop, uint64_t max_ns)
{
	*bp = (struct busypoll){ .loop = loop, .max_ns = max_ns };
	uv_prepare_init(loop, &bp->prepare);
	bp->prepare.data = bp;
	uv_check_init(loop, &bp->check);
	bp->check.data = bp;
	uv_idle_init(loop, &bp->idle);
	bp->idle.data = bp;
	/* Handles that never keep the loop alive on their own. */
	uv_prepare_start(&bp->prepare, prepare_cb);
	uv_unref((uv_handle_t *)&bp->prepare);
	uv_check_start(&bp->check, check_cb);
	uv_unref((uv_handle_t *)&bp->check);
	uv_unref((uv_handle_t *)&bp->idle);
}

void busypoll_add(struct busypoll *bp, struct busypoll_source *s)
{
	if (s->added || bp->closed)
		return;
	s->added = true;
	s->next = bp->head;
	bp->head = s;
}

void busypoll_remove(struct busypoll *bp, struct busypoll_source *s)
{
	if (!s->added)
		return;
	/* Its owner still has the ring: kicks on for whoever serves it next,
	 * who scans it when it takes it over (what came while they were off
	 * announces itself to nobody; a lane's hand-back rescans). */
	if (s->quieted)
		s->arm(s);
	s->quieted = s->arrived = false;
	for (struct busypoll_source **p = &bp->head; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	s->added = false;
	s->next = NULL;
}

void busypoll_close(struct busypoll *bp)
{
	if (bp->closed)
		return;
	bp->closed = true;
	bp->head = NULL;
	uv_close((uv_handle_t *)&bp->prepare, NULL);
	uv_close((uv_handle_t *)&bp->check, NULL);
	uv_close((uv_handle_t *)&bp->idle, NULL);
}
