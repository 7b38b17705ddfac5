/* A configured device in the running daemon: its link (port, and the sim
 * link it hosts if any), its backend and vdev, and the loop watchers that
 * feed interrupts into the vdev.  It lives on one worker's thread
 * (daemon/worker.h); other threads reach it only by message.
 */
#pragma once
#include <uv.h>

#include "backends/blk.h"
#include "backends/console.h"
#include "config/config.h"
#include "core/handover.h"
#include "core/io_engine.h"
#include "core/journal.h"
#include "core/tick.h"
#include "core/port.h"
#include "core/sim_link.h"

struct device;

struct device_watch {
	uv_poll_t poll;
	struct device *dev;
	unsigned idx;
};

struct worker;

struct device {
	const struct cfg_device *cfg;
	struct worker *worker;          /* whose thread owns it */
	bool open_ok;                   /* opened (the main thread's to read) */
	struct sim_link *link;          /* hosted software link, or NULL */
	struct ivshm_port *port;
	struct blk_dev *blk;            /* one of blk and con, by cfg->type */
	struct console_dev *con;
	struct vdev *vd;
	struct journal journal;         /* fd -1: none */
	struct device_watch *watch;
	unsigned nwatch;
	struct device_gen {             /* what changes when the fds do (device_handover_gen) */
		unsigned link, port, con, blk;
	} stored_gen;                   /* as last sent to the fd store */
	bool stored;                    /* stored_gen is valid */
	void (*on_stopped)(struct device *dev);
};

/* Open the link and the image, start serving on the loop of tick (the
 * worker's).  h (or NULL): fds a previous process handed over; a uio node
 * that one kept open is used from there, never opened twice (its old file's
 * last close would reset the link).  Negative errno and the reason (naming
 * the device) in err. */
int device_open(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		struct tick *tick, struct io_engine *eng, struct handover *h, char *err,
		size_t err_len);

/* device_open() from what a previous process handed over (h: its fds,
 * named "<device>/..."): the link, the endpoint and the cell's session go on
 * as they were (core/transport.h vdev_adopt).  Returns 0 when adopted, 1
 * when the hand-over could not be trusted and the device was opened afresh
 * instead (the cell sees its back-end reset; the reason is logged), or a
 * negative errno when it cannot be opened at all. */
int device_adopt(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		 struct tick *tick, struct io_engine *eng, struct handover *h, char *err,
		 size_t err_len);

/* What a new process needs to take the device over: fds into h, the rest
 * into the journal.  0 or a negative errno (the device serves on either
 * way). */
int device_export(struct device *dev, struct handover *h);

/* Right before a hand-over (paused, the loop not to run again): pending
 * console output into the backlog, recorded answers published. */
void device_settle(struct device *dev);

/* Changes whenever what device_export() names changes (peers, clients,
 * medium): the supervisor's copy must be brought up to date. */
struct device_gen device_handover_gen(const struct device *dev);

/* device_export() with copies of the fds (close-on-exec, the caller's to
 * close): for another thread to send while this one goes on.  On failure
 * what was added to h is still the caller's. */
int device_snapshot(struct device *dev, struct handover *h);

/* Stop or go on taking new requests (in-flight ones go on). */
void device_pause(struct device *dev, bool pause);
/* Requests in flight that will finish on their own (block I/O). */
unsigned device_inflight(const struct device *dev);

/* Answer what is in flight, publish RESET on the link, then on_stopped(dev)
 * from the loop. */
void device_stop(struct device *dev, void (*on_stopped)(struct device *dev));

/* SIGHUP: reopen log endpoints (consoles). */
void device_reopen(struct device *dev);

/* Release everything (after device_stop completed, or after a failed open);
 * the loop must run on to close the watchers. */
void device_close(struct device *dev);
