/* A copy of one device's counters for the control commands (stats in
 * text, JSON and OpenMetrics).
 *
 * snapshot_take() runs on the device's worker thread (worker_call), then on
 * the worker of each of its other loops in turn (a block device's queues
 * spread over threads, daemon/device.h), each copying what its thread
 * keeps; snapshot_sum() on the main thread adds the queues up.  The main
 * thread renders from the copy and never reads the device's fields
 * (daemon/worker.h).  The
 * counters are those of the transport (core/transport.h: per device and per
 * queue, with the latency histogram) and of the backend (backends/blk.h,
 * backends/console.h), all kept by that one thread without locks.
 */
#pragma once
#include <stdbool.h>

#include "backends/blk.h"
#include "backends/console.h"
#include "core/transport.h"
#include "daemon/device.h"

struct queue_snapshot {
	struct vdev_queue_stats st;
	unsigned inflight;
	struct blk_stats blk;       /* block devices: this queue's */
};

struct dev_snapshot {
	const struct device *dev;   /* its cfg (constant) is the main thread's to read */
	/* 0: copied; -ESHUTDOWN: the worker had stopped ("gone"), -ENOMEM:
	 * no room for the copy; nothing below is set then. */
	int status;
	const char *state;          /* vdev_phase_name(): a constant string */
	struct vdev_stats vs;
	unsigned nq;
	struct queue_snapshot *q;   /* nq of them */
	bool is_blk;
	struct blk_stats blk;       /* the queues' sum (snapshot_sum) */
	unsigned blk_inflight;
	bool is_con;
	struct console_stats con;
	bool con_attached;
};

/* On the device's home thread (tick: its loop's): fill s from s->dev (set
 * by the caller) with the device's own state and the queues served there. */
void snapshot_take(struct dev_snapshot *s, const struct tick *tick);
/* Then on the thread of each other loop of the device: the queues served
 * on it (nothing when the home's call failed). */
void snapshot_take_queues(struct dev_snapshot *s, const struct tick *tick);
/* Main thread, once every loop's call is back: the device-wide sums. */
void snapshot_sum(struct dev_snapshot *s);
void snapshot_free(struct dev_snapshot *s);

