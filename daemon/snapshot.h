/* A copy of one device's counters for the control commands (stats in
 * text, JSON and OpenMetrics).
 *
 * snapshot_take() runs on the device's worker thread (worker_call) and
 * copies everything a rendering needs; the main thread then renders from
 * the copy and never reads the device's fields (daemon/worker.h).  The
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
	struct blk_stats blk;
	unsigned blk_inflight;
	bool is_con;
	struct console_stats con;
	bool con_attached;
};

/* The device's worker thread: fill s from s->dev (set by the caller). */
void snapshot_take(struct dev_snapshot *s);
void snapshot_free(struct dev_snapshot *s);

