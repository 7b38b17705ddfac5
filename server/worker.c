#include "server/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"

static void wake_cb(uv_async_t *h)
{
	struct worker *w = h->data;
	uv_mutex_lock(&w->lock);
	void (*fn)(void *) = w->call_fn;
	void *arg = w->call_arg;
	w->call_fn = NULL;
	uv_mutex_unlock(&w->lock);
	if (!fn)
		return;
	fn(arg);
	uv_mutex_lock(&w->lock);
	w->call_done = true;
	uv_cond_signal(&w->cond);
	uv_mutex_unlock(&w->lock);
}

int worker_init(struct worker *w, unsigned index, bool threaded, uv_loop_t *main_loop,
		unsigned io_entries)
{
	memset(w, 0, sizeof(*w));
	w->index = index;
	w->threaded = threaded;
	if (threaded) {
		int r = uv_loop_init(&w->own_loop);
		if (r < 0)
			return r;
		w->loop = &w->own_loop;
	} else {
		w->loop = main_loop;
	}
	uv_mutex_init(&w->lock);
	uv_cond_init(&w->cond);
	uv_async_init(w->loop, &w->wake, wake_cb);
	w->wake.data = w;
	uv_timer_init(w->loop, &w->teardown);
	w->teardown.data = w;
	return io_engine_init(&w->eng, w->loop, io_entries, !threaded);
}

int worker_add(struct worker *w, struct device *dev)
{
	struct device **n = realloc(w->devs, (w->ndevs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->devs = n;
	w->devs[w->ndevs++] = dev;
	return 0;
}

static void thread_main(void *arg)
{
	struct worker *w = arg;
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

void worker_call(struct worker *w, void (*fn)(void *arg), void *arg)
{
	if (!w->threaded || !w->started) {
		fn(arg);
		return;
	}
	uv_mutex_lock(&w->lock);
	w->call_fn = fn;
	w->call_arg = arg;
	w->call_done = false;
	uv_async_send(&w->wake);
	while (!w->call_done)
		uv_cond_wait(&w->cond, &w->lock);
	uv_mutex_unlock(&w->lock);
}

static void teardown_cb(uv_timer_t *t)
{
	struct worker *w = t->data;
	for (unsigned i = 0; i < w->ndevs; i++)
		device_close(w->devs[i]);
	io_engine_close(&w->eng);
	uv_close((uv_handle_t *)&w->teardown, NULL);
	uv_close((uv_handle_t *)&w->wake, NULL);
	if (w->on_done)
		w->on_done(w);
}

static void device_stopped(struct device *dev)
{
	struct worker *w = dev->data;
	/* We may be deep inside an I/O completion: tear down from the loop. */
	if (--w->running == 0)
		uv_timer_start(&w->teardown, teardown_cb, 0, 0);
}

struct shutdown_arg {
	struct worker *w;
	void (*on_done)(struct worker *w);
};

static void do_shutdown(void *arg)
{
	struct worker *w = arg;
	w->running = w->ndevs;
	if (w->ndevs == 0) {
		uv_timer_start(&w->teardown, teardown_cb, 0, 0);
		return;
	}
	for (unsigned i = 0; i < w->ndevs; i++)
		device_stop(w->devs[i], device_stopped);
}

void worker_shutdown(struct worker *w, void (*on_done)(struct worker *w))
{
	w->on_done = on_done;
	worker_call(w, do_shutdown, w);
}

void worker_join(struct worker *w)
{
	if (w->threaded && w->started) {
		uv_thread_join(&w->thread);
		uv_loop_close(&w->own_loop);
	}
	uv_mutex_destroy(&w->lock);
	uv_cond_destroy(&w->cond);
	free(w->devs);
	w->devs = NULL;
}
