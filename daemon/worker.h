/* Worker loops ("threads = N").
 *
 * Each worker owns a libuv loop, a tick (core/tick.h), an I/O engine
 * (core/io_engine.h: io_uring or a pool of threads that only run syscalls
 * it hands them) and the devices assigned to it: all their state is touched only from that
 * worker's thread.  With one worker (the default) it runs on the main loop
 * and no thread is created.  The main thread (signals, control socket)
 * reaches a device only by message (core/mailbox.h): worker_call() runs a
 * function on the worker and brings its answer back to the main loop; a
 * worker that has stopped answers "gone" (-ESHUTDOWN) at once.  Nothing of
 * a device is read from another thread; nothing blocks waiting for one.
 *
 * A block device's queues may be spread over several workers (its "loops",
 * daemon/device.h): the device's home worker keeps its control path and
 * hands queues to the others' loops by message (core/transport.h, lanes).
 * A worker therefore also hosts guests: devices homed elsewhere with queues
 * here.  Stopping is in two steps for that: every worker stops its own
 * devices (worker_shutdown; each takes its queues back from the others'
 * loops, which go on running), and only once all have done so do the
 * workers end their loops (worker_end).
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "core/busypoll.h"
#include "core/io_engine.h"
#include "core/tick.h"
#include "daemon/device.h"
#include "daemon/fdstore.h"
#include "core/mailbox.h"

struct worker {
	unsigned index;
	uv_loop_t own_loop;
	uv_loop_t *loop;            /* own_loop, or the main loop when not threaded */
	bool threaded;
	bool started;
	uv_thread_t thread;
	uv_sem_t held;              /* worker_hold/worker_release */
	struct tick tick;
	struct busypoll busypoll;   /* tick.busypoll points here when it spins */
	struct io_engine eng;
	bool eng_ok;
	struct vdev_place place;    /* this loop, for the devices' queues */
	struct mailbox mb;          /* requests for this worker */
	struct mailbox *main_mb;    /* answers go to the main loop */
	uv_timer_t teardown;
	struct fdstore *store;      /* main thread's; only named in mails */
	uv_check_t store_check;
	struct device **devs;
	unsigned ndevs, running;
	struct device **guests;     /* homed elsewhere, with queues served here */
	unsigned nguests;
	bool stopping;
	void (*stopped)(void *arg, int status);     /* its devices have stopped */
	void *stopped_arg;
	void (*ended)(void *arg, int status);       /* its loop has ended */
	void *ended_arg;
};

/* Prepare a worker; threaded: give it its own loop (started by
 * worker_start), else use main_loop.  io_kind: the engine asked for;
 * io_entries: io_uring size; busy_poll_ns: the longest spin before the
 * loop sleeps (core/busypoll.h), 0 for none.  Returns a negative errno when the engine
 * cannot be set up (the worker is usable for teardown all the same); the
 * caller logs which engine serves (w->eng.kind, w->eng.uring_err). */
int worker_init(struct worker *w, unsigned index, bool threaded, uv_loop_t *main_loop,
		struct mailbox *main_mb, enum io_engine_kind io_kind, unsigned io_entries,
		uint64_t busy_poll_ns);
int worker_add(struct worker *w, struct device *dev);
/* Before worker_start: dev (another worker's) has queues served here. */
int worker_host(struct worker *w, struct device *dev);
/* Before worker_start: keep store (daemon/fdstore.h) up to date with every
 * device's hand-over set: checked at the end of every loop iteration, a
 * snapshot posted to the main loop when it changed. */
void worker_keep_store(struct worker *w, struct fdstore *store);

/* Start the thread (no-op when not threaded). */
int worker_start(struct worker *w);

/* Main thread: run fn(arg) on the worker's thread, then done(arg, 0) on the
 * main loop; done(arg, -ESHUTDOWN) there instead when the worker has
 * stopped.  Returns 0, and then done is called exactly once, never from
 * inside this call; or -ENOMEM, and then neither fn nor done runs. */
int worker_call(struct worker *w, void (*fn)(void *arg), void (*done)(void *arg, int status),
		void *arg);

/* Main thread: like worker_call, but once fn has run the worker's thread
 * does nothing more (no callback, no I/O completion) until
 * worker_release(): for a hand-over, whose snapshot must not change before
 * the process is replaced.  A worker without its own thread runs on the
 * main loop: it holds still as long as the main thread does not return to
 * the loop. */
int worker_hold(struct worker *w, void (*fn)(void *arg), void (*done)(void *arg, int status),
		void *arg);
void worker_release(struct worker *w);

/* Main thread: stop every device of the worker (in-flight requests
 * answered, queues back from other loops); then done(arg, 0) on the main
 * loop.  The loop goes on, serving other devices' queues, until worker_end. */
void worker_shutdown(struct worker *w, void (*done)(void *arg, int status), void *arg);

/* Main thread, once every worker's shutdown is done: close the devices,
 * end the loop; then done(arg, 0) on the main loop. */
void worker_end(struct worker *w, void (*done)(void *arg, int status), void *arg);

/* Main thread, after the shutdown finished: wait for the thread and free
 * what is left. */
void worker_join(struct worker *w);
