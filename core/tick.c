#include "core/tick.h"

#include <stddef.h>

static void append(struct tick *t, struct tick_item *it)
{
	it->next = NULL;
	if (t->tail)
		t->tail->next = it;
	else
		t->head = it;
	t->tail = it;
}

static void idle_cb(uv_idle_t *h)
{
	(void)h;
}

static void run_item(struct tick *t, struct tick_item *it)
{
	it->queued = false;
	t->current = it;
	bool again = it->run(it);
	t->current = NULL;
	if (again && !it->queued) {
		it->queued = true;
		it->next = t->again;
		t->again = it;
	}
}

/* One pass over the list: ordinary items first (including those deferred
 * meanwhile), final ones after them. */
static void run_pass(struct tick *t)
{
	struct tick_item *finals = NULL, **finals_tail = &finals;
	for (;;) {
		struct tick_item *it = t->head;
		if (!it) {
			if (!finals)
				break;
			/* Final items may defer ordinary ones again (rare):
			 * those run in the next round of this loop. */
			t->head = finals;
			t->tail = NULL;
			for (struct tick_item *f = finals; f; f = f->next)
				t->tail = f;
			finals = NULL;
			finals_tail = &finals;
			while ((it = t->head)) {
				t->head = it->next;
				if (!t->head)
					t->tail = NULL;
				run_item(t, it);
			}
			continue;
		}
		t->head = it->next;
		if (!t->head)
			t->tail = NULL;
		if (it->final) {
			it->next = NULL;
			*finals_tail = it;
			finals_tail = &it->next;
			continue;
		}
		run_item(t, it);
	}
}

static void check_cb(uv_check_t *h)
{
	struct tick *t = h->data;
	t->running = true;
	/* What the iteration's callbacks counted; the pops of this pass
	 * count towards the next one. */
	t->busy_last = t->busy;
	t->busy = 0;
	t->iterations++;
	/* Items carried over from the last iteration go first. */
	struct tick_item *again = t->again;
	t->again = NULL;
	while (again) {
		struct tick_item *it = again;
		again = it->next;
		append(t, it);
	}
	run_pass(t);
	t->running = false;
	if (t->again)
		uv_idle_start(&t->idle, idle_cb);
	else
		uv_idle_stop(&t->idle);
}

void tick_init(struct tick *t, uv_loop_t *loop)
{
	*t = (struct tick){ .loop = loop };
	uv_check_init(loop, &t->check);
	t->check.data = t;
	uv_check_start(&t->check, check_cb);
	uv_idle_init(loop, &t->idle);
	t->idle.data = t;
}

/* Is it waiting for the next iteration (on t->again)? */
static bool on_again(const struct tick *t, const struct tick_item *it)
{
	for (const struct tick_item *p = t->again; p; p = p->next)
		if (p == it)
			return true;
	return false;
}

static void unlink_from(struct tick_item **head, struct tick_item **tail, struct tick_item *it);

void tick_defer(struct tick *t, struct tick_item *it)
{
	if (t->closed)
		return;
	if (it->queued) {
		/* Asked to run again next iteration and deferred by another
		 * item of this pass: once more now (at most once per pass, so
		 * two items cannot keep a pass going). */
		if (t->running && it != t->current && it->rerun != t->iterations &&
		    on_again(t, it)) {
			unlink_from(&t->again, NULL, it);
			it->rerun = t->iterations;
			append(t, it);
		}
		return;
	}
	it->queued = true;
	if (it == t->current) {
		/* Deferring itself while it runs: next iteration, or an item
		 * fed by a busy peer would never let the pass end. */
		it->next = t->again;
		t->again = it;
		return;
	}
	append(t, it);
	/* From a poll callback the check phase of this iteration runs it
	 * anyway (and stops the idle handle again before the next poll, so
	 * this costs nothing); from a timer callback or before uv_run, the
	 * active idle handle keeps the next poll from blocking until then. */
	if (!t->running)
		uv_idle_start(&t->idle, idle_cb);
}

static void unlink_from(struct tick_item **head, struct tick_item **tail, struct tick_item *it)
{
	struct tick_item *prev = NULL;
	for (struct tick_item *p = *head; p; prev = p, p = p->next) {
		if (p != it)
			continue;
		if (prev)
			prev->next = p->next;
		else
			*head = p->next;
		if (tail && *tail == p)
			*tail = prev;
		return;
	}
}

void tick_cancel(struct tick *t, struct tick_item *it)
{
	if (!it->queued)
		return;
	unlink_from(&t->head, &t->tail, it);
	unlink_from(&t->again, NULL, it);
	it->queued = false;
	it->next = NULL;
}

void tick_close(struct tick *t)
{
	if (t->closed)
		return;
	t->closed = true;
	uv_close((uv_handle_t *)&t->check, NULL);
	uv_close((uv_handle_t *)&t->idle, NULL);
}
