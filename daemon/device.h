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
#include "core/io_engine.h"
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
	struct device_watch *watch;
	unsigned nwatch;
	unsigned open_handles;
	void (*on_stopped)(struct device *dev);
};

/* Open the link and the image, start serving on the loop of tick (the
 * worker's).  Negative errno and the reason (naming the device) in err. */
int device_open(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		struct tick *tick, struct io_engine *eng, char *err, size_t err_len);

/* Answer what is in flight, publish RESET on the link, then on_stopped(dev)
 * from the loop. */
void device_stop(struct device *dev, void (*on_stopped)(struct device *dev));

/* SIGHUP: reopen log endpoints (consoles). */
void device_reopen(struct device *dev);

/* Release everything (after device_stop completed, or after a failed open);
 * the loop must run on to close the watchers. */
void device_close(struct device *dev);
