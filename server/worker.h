/* Worker loops ("threads = N").
 *
 * Each worker owns a libuv loop and an io_uring, and the devices assigned to
 * it: all their state is touched only from that worker's thread.  With one
 * worker (the default) it runs on the main loop and no thread is created.
 * The main thread (signals, control socket) reaches a device only through
 * worker_call(), which runs a function on the device's worker and waits for
 * it; nothing else is shared between loops but the read-only config.
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "server/device.h"
#include "server/io_engine.h"

struct worker {
	unsigned index;
	uv_loop_t own_loop;
	uv_loop_t *loop;            /* own_loop, or the main loop when not threaded */
	bool threaded;
	bool started;
	uv_thread_t thread;
	struct io_engine eng;
	uv_async_t wake;            /* a call is waiting */
	uv_timer_t teardown;
	uv_mutex_t lock;
	uv_cond_t cond;
	void (*call_fn)(void *arg);
	void *call_arg;
	bool call_done;
	struct device **devs;
	unsigned ndevs, running;
	void (*on_done)(struct worker *w);  /* called on the worker's thread */
	void *owner;
};

/* Prepare a worker; threaded: give it its own loop (started by
 * worker_start), else use main_loop.  io_entries: io_uring size. */
int worker_init(struct worker *w, unsigned index, bool threaded, uv_loop_t *main_loop,
		unsigned io_entries);
int worker_add(struct worker *w, struct device *dev);
/* Start the thread (no-op when not threaded). */
int worker_start(struct worker *w);
/* Run fn(arg) on the worker and wait for it. */
void worker_call(struct worker *w, void (*fn)(void *arg), void *arg);
/* Stop every device (in-flight I/O finished), close them, end the loop;
 * on_done runs on the worker's thread when it is all over. */
void worker_shutdown(struct worker *w, void (*on_done)(struct worker *w));
/* Wait for the thread and free what is left (main thread, after shutdown). */
void worker_join(struct worker *w);
