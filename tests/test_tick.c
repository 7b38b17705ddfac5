/* End-of-iteration work (core/tick.c) on a real libuv loop: order, items
 * deferred while the pass runs, items that ask to run again, and the one
 * more run of such an item when a later (final) item defers it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "core/tick.h"

struct item {
	struct tick_item it;
	unsigned runs;
	unsigned again;             /* return true this many more times */
	struct tick *t;
	struct item *defer;         /* defer this one when run */
	unsigned defer_times;
	unsigned name;              /* test_order's record */
};

static bool item_run(struct tick_item *it)
{
	struct item *x = (struct item *)it;
	x->runs++;
	if (x->defer && x->defer_times) {
		x->defer_times--;
		tick_defer(x->t, &x->defer->it);
	}
	if (x->again) {
		x->again--;
		return true;
	}
	return false;
}

static void run_once(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_NOWAIT);
}

static void close_tick(uv_loop_t *loop, struct tick *t)
{
	tick_close(t);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* An item that asked to run again next iteration runs once more in this
 * pass when a final item (the io engine's submit, with answers it reaped)
 * defers it, and only once per pass, however often it is deferred. */
static void test_again_rerun_once(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct tick t;
	tick_init(&t, &loop);
	struct item a = { .it = { .run = item_run }, .again = 100, .t = &t };
	struct item f = { .it = { .run = item_run, .final = true }, .t = &t, .defer = &a,
			  .defer_times = 3 };
	tick_defer(&t, &a.it);
	tick_defer(&t, &f.it);
	run_once(&loop);
	/* a ran, asked for the next iteration; f deferred it: once more */
	assert_int_equal(a.runs, 2);
	assert_int_equal(f.runs, 1);
	/* next iteration: a runs (it asked to), f not deferred, no rerun */
	run_once(&loop);
	assert_int_equal(a.runs, 3);
	/* an item deferring itself while it runs waits for the next iteration */
	struct item self = { .it = { .run = item_run }, .t = &t, .defer_times = 5 };
	self.defer = &self;
	tick_defer(&t, &self.it);
	run_once(&loop);
	assert_int_equal(self.runs, 1);
	run_once(&loop);
	assert_int_equal(self.runs, 2);
	a.again = 0;
	self.defer_times = 0;
	for (int i = 0; i < 4; i++)
		run_once(&loop);
	unsigned ra = a.runs, rs = self.runs;
	run_once(&loop);
	assert_int_equal(a.runs, ra);           /* nothing left: nothing runs */
	assert_int_equal(self.runs, rs);
	close_tick(&loop, &t);
}

/* Deferred items run in order, ordinary before final ones; one deferred
 * while the pass runs joins it. */
static unsigned order[8], norder;

static bool order_run(struct tick_item *it)
{
	order[norder++] = ((struct item *)it)->name;
	return item_run(it);
}

static void test_order(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct tick t;
	tick_init(&t, &loop);
	struct item c = { .it = { .run = order_run }, .name = 3 };
	struct item f = { .it = { .run = order_run, .final = true }, .name = 9 };
	struct item a = { .it = { .run = order_run }, .name = 1, .t = &t, .defer = &c,
			  .defer_times = 1 };
	struct item b = { .it = { .run = order_run }, .name = 2 };
	tick_defer(&t, &f.it);
	tick_defer(&t, &a.it);
	tick_defer(&t, &b.it);
	tick_defer(&t, &a.it);          /* once however often deferred */
	run_once(&loop);
	assert_int_equal(norder, 4);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 3);
	assert_int_equal(order[3], 9);
	close_tick(&loop, &t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_again_rerun_once),
		cmocka_unit_test(test_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
