#include "daemon/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/container_of.h"
#include "core/log.h"

/* ---- calls ------------------------------------------------------------- */

struct call {
	struct mail to_worker, to_main;
	struct worker *w;
	void (*fn)(void *arg);
	void (*done)(void *arg, int status);
	void *arg;
	int status;
	bool hold;              /* worker_hold: block the thread afterwards */
};

static void call_answered(struct mail *m, bool gone)
{
	struct call *c = container_of(m, struct call, to_main);
	c->done(c->arg, gone ? -ESHUTDOWN : c->status);
	free(c);
}

static void answer(struct call *c, int status)
{
	c->status = status;
	if (mailbox_post(c->w->main_mb, &c->to_main) < 0) {
		/* The main loop is gone: nobody left to tell. */
		free(c);
	}
}

static void call_run(struct mail *m, bool gone)
{
	struct call *c = container_of(m, struct call, to_worker);
	struct worker *w = c->w;
	bool hold = c->hold && !gone;
	if (!gone)
		c->fn(c->arg);
	answer(c, gone ? -ESHUTDOWN : 0);
	/* Nothing of this thread runs until released (or the process is
	 * replaced): what fn captured stays as it was. */
	if (hold)
		uv_sem_wait(&w->held);
}

static struct call *call_new(struct worker *w, void (*fn)(void *arg),
			     void (*done)(void *arg, int status), void *arg)
{
	struct call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->w = w;
	c->fn = fn;
	c->done = done;
	c->arg = arg;
	c->to_worker.run = call_run;
	c->to_main.run = call_answered;
	return c;
}

int worker_call(struct worker *w, void (*fn)(void *arg), void (*done)(void *arg, int status),
		void *arg)
{
	struct call *c = call_new(w, fn, done, arg);
	if (!c) {
		log_err("worker %u: out of memory for a call", w->index);
		return -ENOMEM;     /* done will not be called: the caller's contract */
	}
	if (mailbox_post(&w->mb, &c->to_worker) < 0)
		answer(c, -ESHUTDOWN);      /* stopped: "gone", through the main loop */
	return 0;
}

int worker_hold(struct worker *w, void (*fn)(void *arg), void (*done)(void *arg, int status),
		void *arg)
{
	struct call *c = call_new(w, fn, done, arg);
	if (!c) {
		log_err("worker %u: out of memory for a call", w->index);
		return -ENOMEM;
	}
	c->hold = w->threaded;
	if (mailbox_post(&w->mb, &c->to_worker) < 0)
		answer(c, -ESHUTDOWN);
	return 0;
}

void worker_release(struct worker *w)
{
	if (w->threaded)
		uv_sem_post(&w->held);
}

/* ---- life ---------------------------------------------------------------- */

int worker_init(struct worker *w, unsigned index, bool threaded, uv_loop_t *main_loop,
		struct mailbox *main_mb, enum io_engine_kind io_kind, unsigned io_entries,
		uint64_t busy_poll_ns)
{
	memset(w, 0, sizeof(*w));
	w->index = index;
	w->threaded = threaded;
	w->main_mb = main_mb;
	if (threaded) {
		int r = uv_loop_init(&w->own_loop);
		if (r < 0)
			return r;
		r = uv_sem_init(&w->held, 0);
		if (r < 0)
			return r;
		w->loop = &w->own_loop;
	} else {
		w->loop = main_loop;
	}
	tick_init(&w->tick, w->loop);
	busypoll_init(&w->busypoll, w->loop, busy_poll_ns);
	if (busy_poll_ns)
		w->tick.busypoll = &w->busypoll;
	int r = mailbox_init(&w->mb, w->loop);
	if (r < 0)
		return r;
	uv_timer_init(w->loop, &w->teardown);
	w->teardown.data = w;
	struct io_engine_params ep = {
		.kind = io_kind,
		.entries = io_entries,
		.same_thread = !threaded,
	};
	r = io_engine_init(&w->eng, &w->tick, &ep);
	w->eng_ok = r == 0;
	w->place = (struct vdev_place){ .tick = &w->tick, .mb = &w->mb, .ctx = &w->eng };
	return r;
}

int worker_add(struct worker *w, struct device *dev)
{
	struct device **n = realloc(w->devs, (w->ndevs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->devs = n;
	w->devs[w->ndevs++] = dev;
	dev->worker = w;
	return 0;
}

int worker_host(struct worker *w, struct device *dev)
{
	struct device **n = realloc(w->guests, (w->nguests + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->guests = n;
	w->guests[w->nguests++] = dev;
	return 0;
}

/* ---- the fd store ---------------------------------------------------------- */

static void store_check_cb(uv_check_t *c)
{
	struct worker *w = c->data;
	for (unsigned i = 0; i < w->ndevs; i++) {
		struct device *dev = w->devs[i];
		struct device_gen gen = device_handover_gen(dev);
		if (!dev->vd || (dev->stored && memcmp(&gen, &dev->stored_gen, sizeof(gen)) == 0))
			continue;
		struct fdstore_mail *m = fdstore_mail_new(w->store, dev->cfg->name);
		if (!m)
			continue;           /* the next iteration tries again */
		int r = device_snapshot(dev, &m->h);
		if (r < 0) {
			/* tried again at the next change (logged once per change) */
			log_warn("%s: cannot describe it for the fd store: %s", dev->cfg->name,
				 strerror(-r));
			m->m.run(&m->m, true);      /* frees it and its fds */
		} else if (mailbox_post(w->main_mb, &m->m) < 0) {
			m->m.run(&m->m, true);
		}
		dev->stored_gen = gen;
		dev->stored = true;
	}
}

void worker_keep_store(struct worker *w, struct fdstore *store)
{
	w->store = store;
	uv_check_init(w->loop, &w->store_check);
	w->store_check.data = w;
	uv_check_start(&w->store_check, store_check_cb);
	/* every device is sent once to begin with */
	for (unsigned i = 0; i < w->ndevs; i++)
		w->devs[i]->stored = false;
}

static void thread_main(void *arg)
{
	struct worker *w = arg;
	/* Signals are the main loop's (uv_signal): never delivered here. */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	uv_run(w->loop, UV_RUN_DEFAULT);
}

int worker_start(struct worker *w)
{
	if (!w->threaded || w->started)
		return 0;
	int r = uv_thread_create(&w->thread, thread_main, w);
	w->started = r == 0;
	return r;
}

struct stop_note {
	struct mail m;
	void (*done)(void *arg, int status);
	void *arg;
};

static void stop_noted(struct mail *m, bool gone)
{
	struct stop_note *n = container_of(m, struct stop_note, m);
	n->done(n->arg, 0);
	free(n);
}

static void note_main(struct worker *w, void (*done)(void *arg, int status), void *arg)
{
	struct stop_note *n = malloc(sizeof(*n));
	if (!n) {
		log_err("worker %u: out of memory to report its stop", w->index);
		return;
	}
	n->m.run = stop_noted;
	n->done = done;
	n->arg = arg;
	if (mailbox_post(w->main_mb, &n->m) < 0)
		free(n);
}

/* From the loop, once every worker's devices have stopped: close
 * everything the loop holds, so the loop (and the thread) ends, and tell
 * the main loop. */
static void teardown_cb(uv_timer_t *t)
{
	struct worker *w = t->data;
	for (unsigned i = 0; i < w->ndevs; i++)
		device_close(w->devs[i]);
	if (w->eng_ok)
		io_engine_close(&w->eng);
	tick_close(&w->tick);
	w->tick.busypoll = NULL;
	busypoll_close(&w->busypoll);
	uv_close((uv_handle_t *)&w->teardown, NULL);
	if (w->store)
		uv_close((uv_handle_t *)&w->store_check, NULL);
	mailbox_close(&w->mb);
	note_main(w, w->ended, w->ended_arg);
}

static void device_stopped(struct device *dev)
{
	struct worker *w = dev->worker;
	if (--w->running == 0)
		note_main(w, w->stopped, w->stopped_arg);
}

struct shutdown_req {
	struct worker *w;
	void (*done)(void *arg, int status);
	void *arg;
};

/* On the worker's thread: what to tell, and to whom, travels in the
 * message and is the worker's own from here on. */
static void do_shutdown(void *arg)
{
	struct shutdown_req *req = arg;
	struct worker *w = req->w;
	if (w->stopping)
		return;
	w->stopping = true;
	if (w->store)
		uv_check_stop(&w->store_check);     /* stopping devices are not kept */
	w->stopped = req->done;
	w->stopped_arg = req->arg;
	w->running = w->ndevs;
	if (w->ndevs == 0) {
		note_main(w, w->stopped, w->stopped_arg);
		return;
	}
	for (unsigned i = 0; i < w->ndevs; i++)
		device_stop(w->devs[i], device_stopped);
}

static void shutdown_posted(void *arg, int status)
{
	struct shutdown_req *req = arg;
	/* Gone before the request arrived: it has nothing left to stop. */
	if (status == -ESHUTDOWN)
		req->done(req->arg, 0);
	free(req);
}

void worker_shutdown(struct worker *w, void (*done)(void *arg, int status), void *arg)
{
	struct shutdown_req *req = malloc(sizeof(*req));
	if (!req) {
		log_err("worker %u: out of memory to stop it", w->index);
		return;
	}
	*req = (struct shutdown_req){ .w = w, .done = done, .arg = arg };
	if (worker_call(w, do_shutdown, shutdown_posted, req) < 0)
		free(req);
}

static void do_end(void *arg)
{
	struct shutdown_req *req = arg;
	struct worker *w = req->w;
	w->ended = req->done;
	w->ended_arg = req->arg;
	uv_timer_start(&w->teardown, teardown_cb, 0, 0);
}

void worker_end(struct worker *w, void (*done)(void *arg, int status), void *arg)
{
	struct shutdown_req *req = malloc(sizeof(*req));
	if (!req) {
		log_err("worker %u: out of memory to end it", w->index);
		return;
	}
	*req = (struct shutdown_req){ .w = w, .done = done, .arg = arg };
	if (worker_call(w, do_end, shutdown_posted, req) < 0)
		free(req);
}

void worker_join(struct worker *w)
{
	if (w->threaded && w->started) {
		uv_thread_join(&w->thread);
		uv_loop_close(&w->own_loop);
		uv_sem_destroy(&w->held);
	}
	mailbox_destroy(&w->mb);
	free(w->devs);
	w->devs = NULL;
	free(w->guests);
	w->guests = NULL;
}
