/* Busy polling (core/busypoll.c): the adaptation rule, and on a real libuv
 * loop that a spin serves work no file descriptor announced, that a due
 * timer is not held up, that an idle loop spins less and less, that a
 * removed source is never looked at, and that the driver's kicks are off
 * exactly while the loop spins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core/busypoll.h"

#define US 1000ull
#define MS 1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_adapt(void **state)
{
	(void)state;
	uint64_t max = 50 * US;
	/* slept less than the maximum: grow from 4 us, doubling, capped */
	assert_int_equal(busypoll_adapt(0, max, 10 * US), BUSYPOLL_START_NS);
	assert_int_equal(busypoll_adapt(4 * US, max, 10 * US), 8 * US);
	assert_int_equal(busypoll_adapt(32 * US, max, 40 * US), max);
	assert_int_equal(busypoll_adapt(max, max, 49 * US), max);
	/* within the window (caught, or would have been): unchanged */
	assert_int_equal(busypoll_adapt(16 * US, max, 16 * US), 16 * US);
	assert_int_equal(busypoll_adapt(16 * US, max, 1), 16 * US);
	/* slept longer than the maximum: halve, under 4 us nothing */
	assert_int_equal(busypoll_adapt(max, max, 10 * MS), max / 2);
	assert_int_equal(busypoll_adapt(6 * US, max, 10 * MS), 0);
	assert_int_equal(busypoll_adapt(0, max, 10 * MS), 0);
	/* an idle loop stops spinning after a few sleeps */
	uint64_t w = max;
	unsigned sleeps = 0;
	while (w && sleeps < 100) {
		w = busypoll_adapt(w, max, 1000 * MS);
		sleeps++;
	}
	assert_int_equal(w, 0);
	assert_true(sleeps <= 4);
}

/* ---- on a loop ---------------------------------------------------------------- */

struct src {
	struct busypoll_source s;
	int flag;           /* atomic: set by another thread */
	unsigned runs;
	unsigned looked;
};

static bool src_ready(struct busypoll_source *s)
{
	struct src *x = (struct src *)s;
	x->looked++;
	return __atomic_load_n(&x->flag, __ATOMIC_ACQUIRE) != 0;
}

static bool src_run(struct busypoll_source *s)
{
	struct src *x = (struct src *)s;
	x->runs++;
	__atomic_store_n(&x->flag, 0, __ATOMIC_RELEASE);
	return true;
}

static void *set_later(void *arg)
{
	usleep(2000);
	__atomic_store_n(&((struct src *)arg)->flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void timer_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* A loop with a busy poller whose window is already at max, and a timer
 * that marks `fired`. */
struct rig {
	uv_loop_t loop;
	struct busypoll bp;
	uv_timer_t t;
	bool fired;
};

static void rig_open(struct rig *r, uint64_t max)
{
	uv_loop_init(&r->loop);
	busypoll_init(&r->bp, &r->loop, max);
	r->bp.window_ns = max;
	uv_timer_init(&r->loop, &r->t);
	r->fired = false;
	r->t.data = &r->fired;
}

/* Start the timer and let the loop poll once.  libuv says 0 for the poll
 * timeout until the loop has polled once with its watchers registered
 * (uv_backend_timeout: "need to call uv_run to update the backend fd
 * state"); the busy poller spins only when the loop is really about to
 * sleep, so a fresh loop runs one round first (without spinning). */
static void rig_arm(struct rig *r, uint64_t ms, uint64_t repeat_ms)
{
	uv_timer_start(&r->t, timer_cb, ms, repeat_ms);
	uv_run(&r->loop, UV_RUN_NOWAIT);
}

static void rig_close(struct rig *r)
{
	busypoll_close(&r->bp);
	uv_close((uv_handle_t *)&r->t, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* Work that shows up while the loop spins is served in that iteration;
 * without spinning the same iteration sleeps until the timer. */
static void run_once_with(uint64_t max, bool expect_hit)
{
	struct rig r;
	rig_open(&r, max);
	struct src x = { .s = { .ready = src_ready, .run = src_run } };
	busypoll_add(&r.bp, &x.s);
	rig_arm(&r, 300, 0);
	pthread_t th;
	pthread_create(&th, NULL, set_later, &x);
	uint64_t t0 = now_ns();
	uv_run(&r.loop, UV_RUN_ONCE);
	uint64_t took = now_ns() - t0;
	pthread_join(th, NULL);
	if (expect_hit) {
		assert_int_equal(x.runs, 1);
		assert_false(r.fired);
		assert_true(took < 250 * MS);
		assert_int_equal(r.bp.stats.spins, 1);
		assert_int_equal(r.bp.stats.hits, 1);
		assert_true(r.bp.stats.spun_ns >= 1 * MS);   /* the flag came after 2 ms */
	} else {
		assert_int_equal(x.runs, 0);
		assert_true(r.fired);
		assert_int_equal(r.bp.stats.hits, 0);
	}
	rig_close(&r);
}

static void test_spin_serves(void **state)
{
	(void)state;
	run_once_with(100 * MS, true);
}

static void test_no_spin_sleeps(void **state)
{
	(void)state;
	run_once_with(0, false);
}

/* A timer due before the window ends runs when it is due: the spin is cut
 * short, and the poll after it does not wait the timer's whole timeout
 * again (libuv's clock is brought forward past the spin). */
static void test_timer_not_held(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 2000 * MS);
	struct src x = { .s = { .ready = src_ready, .run = src_run } };
	busypoll_add(&r.bp, &x.s);
	rig_arm(&r, 200, 0);
	uint64_t t0 = now_ns();
	uv_run(&r.loop, UV_RUN_ONCE);
	uint64_t took = now_ns() - t0;
	assert_true(r.fired);
	assert_true(took >= 150 * MS);          /* it did spin until then */
	assert_true(took < 300 * MS);           /* not 200 ms more */
	assert_true(x.looked > 0);
	assert_int_equal(x.runs, 0);
	rig_close(&r);
}

static void test_idle_shrinks(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 1 * MS);
	struct src x = { .s = { .ready = src_ready, .run = src_run } };
	busypoll_add(&r.bp, &x.s);
	rig_arm(&r, 10, 10);                    /* sleeps of ~10 ms: idle */
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(r.bp.window_ns, 500 * US);
	for (int i = 0; i < 10 && r.bp.window_ns; i++)
		uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(r.bp.window_ns, 0);
	/* no window, no spin: the source is no longer looked at */
	unsigned looked = x.looked;
	uint64_t spins = r.bp.stats.spins;
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(x.looked, looked);
	assert_int_equal(r.bp.stats.spins, spins);
	rig_close(&r);
}

static void test_removed_not_looked_at(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 5 * MS);
	struct src a = { .s = { .ready = src_ready, .run = src_run } };
	struct src b = a;
	busypoll_add(&r.bp, &a.s);
	busypoll_add(&r.bp, &b.s);
	busypoll_add(&r.bp, &b.s);      /* twice: once in the list */
	busypoll_remove(&r.bp, &a.s);
	busypoll_remove(&r.bp, &a.s);
	a.flag = b.flag = 1;
	rig_arm(&r, 1000, 0);
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(a.looked, 0);
	assert_int_equal(a.runs, 0);
	assert_int_equal(b.runs, 1);
	assert_false(r.fired);
	rig_close(&r);
}

static bool take_nothing(struct busypoll_source *s)
{
	((struct src *)s)->runs++;
	return false;
}

/* A source that looks ready but takes nothing (a driver moving its index
 * back and forth) is no hit: the loop spins its window out and sleeps. */
static void test_no_progress_no_hit(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 5 * MS);
	struct src x = { .s = { .ready = src_ready, .run = take_nothing }, .flag = 1 };
	busypoll_add(&r.bp, &x.s);
	rig_arm(&r, 50, 0);
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_true(r.fired);
	assert_true(x.runs > 1);
	assert_int_equal(r.bp.stats.spins, 1);
	assert_int_equal(r.bp.stats.hits, 0);
	assert_true(r.bp.stats.spun_ns >= 5 * MS);
	rig_close(&r);
}

static bool in_flight(struct busypoll_source *s)
{
	(void)s;
	return true;
}

/* I/O in flight (a source's waits()): the loop sleeps at once, leaving the
 * CPU to whoever does that I/O; its completion wakes the loop. */
static void test_no_spin_while_io_in_flight(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 100 * MS);
	struct src x = { .s = { .ready = src_ready, .run = src_run } };
	struct busypoll_source io = { .waits = in_flight };
	busypoll_add(&r.bp, &x.s);
	busypoll_add(&r.bp, &io);
	x.flag = 1;
	rig_arm(&r, 20, 0);
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_true(r.fired);
	assert_int_equal(x.looked, 0);
	assert_int_equal(x.runs, 0);
	assert_int_equal(r.bp.stats.spins, 0);
	/* once nothing is in flight, it spins again */
	busypoll_remove(&r.bp, &io);
	uv_timer_start(&r.t, timer_cb, 1000, 0);
	r.fired = false;
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(x.runs, 1);
	assert_false(r.fired);
	rig_close(&r);
}

/* ---- kicks off while spinning ---------------------------------------------- */

struct quiet_src {
	struct src x;
	bool kicks_on;              /* as the driver would see it */
	unsigned quiets, arms;
	unsigned looked_with_kicks; /* ready() while kicks were on */
	bool arrive;                /* arm() reports work that came meanwhile */
	struct busypoll *bp;
	struct busypoll_source *victim;  /* run() removes it */
};

static bool q_ready(struct busypoll_source *s)
{
	struct quiet_src *q = (struct quiet_src *)s;
	q->looked_with_kicks += q->kicks_on;
	return src_ready(s);
}

static bool q_run(struct busypoll_source *s)
{
	struct quiet_src *q = (struct quiet_src *)s;
	if (q->victim)
		busypoll_remove(q->bp, q->victim);
	return src_run(s);
}

static bool q_quiet(struct busypoll_source *s)
{
	struct quiet_src *q = (struct quiet_src *)s;
	assert_true(q->kicks_on);
	q->kicks_on = false;
	q->quiets++;
	return true;
}

static bool q_arm(struct busypoll_source *s)
{
	struct quiet_src *q = (struct quiet_src *)s;
	assert_false(q->kicks_on);
	q->kicks_on = true;
	q->arms++;
	if (!q->arrive)
		return false;
	/* work the spin missed: published right before kicks came back on */
	q->arrive = false;
	__atomic_store_n(&q->x.flag, 1, __ATOMIC_RELEASE);
	return true;
}

static void quiet_init(struct quiet_src *q, struct busypoll *bp)
{
	*q = (struct quiet_src){ .kicks_on = true, .bp = bp };
	q->x.s = (struct busypoll_source){ .ready = q_ready, .run = q_run,
					   .quiet = q_quiet, .arm = q_arm };
}

/* The driver need not kick while the loop watches its ring: kicks go off
 * when the spin starts and are back on before the loop sleeps. */
static void test_kicks_off_while_spinning(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 2 * MS);
	struct quiet_src q;
	quiet_init(&q, &r.bp);
	busypoll_add(&r.bp, &q.x.s);
	rig_arm(&r, 50, 0);
	uv_run(&r.loop, UV_RUN_ONCE);           /* spins 2 ms, sleeps until the timer */
	assert_true(r.fired);
	assert_true(q.x.looked > 0);
	assert_int_equal(q.looked_with_kicks, 0);
	assert_int_equal(q.quiets, 1);
	assert_int_equal(q.arms, 1);
	assert_true(q.kicks_on);
	/* a hit: kicks are back on all the same (the next iteration may
	 * sleep without spinning) */
	pthread_t th;
	pthread_create(&th, NULL, set_later, &q.x);
	r.fired = false;
	r.bp.max_ns = r.bp.window_ns = 100 * MS;
	uv_timer_start(&r.t, timer_cb, 300, 0);
	uv_run(&r.loop, UV_RUN_ONCE);
	pthread_join(th, NULL);
	assert_int_equal(q.x.runs, 1);
	assert_false(r.fired);
	assert_int_equal(q.quiets, 2);
	assert_int_equal(q.arms, 2);
	assert_true(q.kicks_on);
	/* no spin (I/O in flight), no quiet */
	struct busypoll_source io = { .waits = in_flight };
	busypoll_add(&r.bp, &io);
	uv_timer_start(&r.t, timer_cb, 5, 0);
	while (!r.fired)
		uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(q.quiets, 2);
	busypoll_remove(&r.bp, &io);
	rig_close(&r);
}

/* Work published after the spin's last look and before kicks were back on
 * announces itself to nobody: it is run there, and the loop does not sleep
 * on it. */
static void test_arrival_at_arm_is_run(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 1 * MS);
	struct quiet_src q;
	quiet_init(&q, &r.bp);
	q.arrive = true;
	busypoll_add(&r.bp, &q.x.s);
	rig_arm(&r, 1000, 0);
	uint64_t t0 = now_ns();
	uv_run(&r.loop, UV_RUN_ONCE);
	uint64_t took = now_ns() - t0;
	assert_int_equal(q.x.runs, 1);
	assert_int_equal(r.bp.stats.hits, 1);
	assert_false(r.fired);
	assert_true(took < 500 * MS);
	rig_close(&r);
}

/* A source removed while its kicks are off gets them back on its way out,
 * even when another source's run() removes it mid-way. */
static void test_removed_while_quiet_is_armed(void **state)
{
	(void)state;
	struct rig r;
	rig_open(&r, 1 * MS);
	struct quiet_src a, b;
	quiet_init(&a, &r.bp);
	quiet_init(&b, &r.bp);
	busypoll_add(&r.bp, &a.x.s);
	busypoll_add(&r.bp, &b.x.s);            /* b first in the list */
	b.victim = &a.x.s;
	b.x.flag = 1;
	rig_arm(&r, 1000, 0);
	uv_run(&r.loop, UV_RUN_ONCE);
	assert_int_equal(b.x.runs, 1);
	assert_false(a.x.s.added);
	assert_true(a.kicks_on);
	assert_true(b.kicks_on);
	assert_int_equal(a.arms, 1);
	assert_int_equal(b.arms, 1);
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapt),
		cmocka_unit_test(test_spin_serves),
		cmocka_unit_test(test_no_spin_sleeps),
		cmocka_unit_test(test_timer_not_held),
		cmocka_unit_test(test_idle_shrinks),
		cmocka_unit_test(test_removed_not_looked_at),
		cmocka_unit_test(test_no_spin_while_io_in_flight),
		cmocka_unit_test(test_no_progress_no_hit),
		cmocka_unit_test(test_kicks_off_while_spinning),
		cmocka_unit_test(test_arrival_at_arm_is_run),
		cmocka_unit_test(test_removed_while_quiet_is_armed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
