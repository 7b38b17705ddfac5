#include "daemon/device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/log.h"
#include "core/port_sim.h"
#include "core/port_uio.h"
#include "core/virtio_ivshmem.h"

#define SIM_HANDSHAKE_MS 5000

static void watch_cb(uv_poll_t *h, int status, int events)
{
	struct device_watch *w = h->data;
	struct device *dev = w->dev;
	struct vdev *vd = dev->vd;
	int vector;
	int r = ivshm_port_handle(dev->port, w->idx, &vector);
	if (r < 0) {
		vdev_link_down(vd);
		for (unsigned i = 0; i < dev->nwatch; i++)
			uv_poll_stop(&dev->watch[i].poll);
		return;
	}
	if (r == 0)
		return;
	/* Interrupts are not latched: re-arm before looking at memory. */
	ivshm_port_rearm(dev->port);
	vdev_process(vd, vector);
}

static uint16_t device_id(const struct cfg_device *cfg)
{
	return cfg->type == DEV_BLOCK ? VIRTIO_ID_BLOCK : VIRTIO_ID_CONSOLE;
}

static int open_port(struct device *dev, const struct cfg_device *cfg,
		     const struct cfg_daemon *dcfg, uv_loop_t *loop, char *err, size_t err_len)
{
	char dev_path[PATH_MAX];
	int r, fd;
	switch (cfg->link.kind) {
	case LINK_PCI:
		r = port_uio_resolve_pci(cfg->link.target, dcfg->sysfs_root, dcfg->dev_root,
					 dev_path, sizeof(dev_path), err, err_len);
		if (r < 0)
			return r;
		return port_uio_open(dev_path, dcfg->sysfs_root, &dev->port, err, err_len);
	case LINK_UIO:
		return port_uio_open(cfg->link.target, dcfg->sysfs_root, &dev->port, err, err_len);
	case LINK_SIM_CONNECT:
		return port_sim_connect(cfg->link.target, SIM_HANDSHAKE_MS, &dev->port, err, err_len);
	case LINK_SIM_HOST: {
		struct sim_link_params lp = {
			.shm_size = cfg->link.shm_size,
			.max_peers = 2,
			.vectors = cfg->link.vectors ? cfg->link.vectors
				 : 1 + (cfg->type == DEV_BLOCK ? cfg->queues : 2),
			.protocol = IVSHM_PROTO_VIRTIO_FRONT | device_id(cfg),
		};
		if (lp.vectors > 64)
			lp.vectors = 64;
		r = sim_link_create(loop, cfg->link.target, &lp, &dev->link, err, err_len);
		if (r < 0)
			return r;
		r = sim_link_connect_local(dev->link, &fd);
		if (r < 0) {
			snprintf(err, err_len, "cannot join the hosted link: %s", strerror(-r));
			return r;
		}
		return port_sim_open_fd(fd, cfg->link.target, SIM_HANDSHAKE_MS, &dev->port,
					err, err_len);
	}
	default:
		snprintf(err, err_len, "no link configured");
		return -EINVAL;
	}
}

static int open_block(struct device *dev, const struct cfg_device *cfg, struct io_engine *eng,
		      char *why, size_t why_len)
{
	struct blk_params bp = {
		.name = cfg->name,
		.image = cfg->image,
		.read_only = cfg->read_only,
		.queues = cfg->queues,
		.queue_size = (uint16_t)cfg->queue_size,
		.seg_max = cfg->seg_max,
		.blk_size = cfg->block_size,
	};
	snprintf(bp.serial, sizeof(bp.serial), "%s", cfg->serial);
	int r = blk_open(&bp, dev->port, eng, &dev->blk, why, why_len);
	if (r < 0)
		return r;
	dev->vd = blk_vdev(dev->blk);
	log_info("%s: serving %s (%llu sectors%s) on %s, %u queue(s) of %u, %u vector(s)",
		 cfg->name, cfg->image, (unsigned long long)blk_capacity(dev->blk),
		 cfg->read_only ? ", read-only" : "", dev->port->name, cfg->queues,
		 cfg->queue_size, dev->port->vectors);
	return 0;
}

static int open_console(struct device *dev, const struct cfg_device *cfg, struct tick *tick,
			char *why, size_t why_len)
{
	static const enum console_endpoint eps[] = {
		[EP_PTY] = CONSOLE_PTY, [EP_SOCKET] = CONSOLE_SOCKET,
		[EP_LOG] = CONSOLE_LOG, [EP_STDIO] = CONSOLE_STDIO,
	};
	struct console_params cp = {
		.name = cfg->name,
		.endpoint = eps[cfg->endpoint],
		.path = cfg->ep_path,
		.backlog = cfg->backlog,
		.cols = (uint16_t)cfg->cols,
		.rows = (uint16_t)cfg->rows,
		.queue_size = (uint16_t)cfg->queue_size,
	};
	int r = console_open(&cp, dev->port, tick, &dev->con, why, why_len);
	if (r < 0)
		return r;
	dev->vd = console_vdev(dev->con);
	log_info("%s: console on %s%s%s, link %s, queues of %u, %u vector(s)", cfg->name,
		 cfg_endpoint_name(cfg->endpoint), cfg->ep_path[0] ? " " : "", cfg->ep_path,
		 dev->port->name, dev->vd->q[0].max_size, dev->port->vectors);
	return 0;
}

int device_open(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		struct tick *tick, struct io_engine *eng, char *err, size_t err_len)
{
	char why[512] = "";
	uv_loop_t *loop = tick->loop;
	dev->cfg = cfg;
	int r = open_port(dev, cfg, dcfg, loop, why, sizeof(why));
	if (r == 0)
		r = ivshm_port_check_role(dev->port, device_id(cfg), why, sizeof(why));
	if (r == 0)
		r = cfg->type == DEV_BLOCK ? open_block(dev, cfg, eng, why, sizeof(why))
					   : open_console(dev, cfg, tick, why, sizeof(why));
	if (r < 0)
		goto fail;
	dev->watch = calloc(dev->port->n_watch, sizeof(*dev->watch));
	if (!dev->watch) {
		r = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < dev->port->n_watch; i++) {
		struct device_watch *w = &dev->watch[i];
		w->dev = dev;
		w->idx = i;
		r = uv_poll_init(loop, &w->poll, dev->port->watch_fd[i]);
		if (r < 0) {
			snprintf(why, sizeof(why), "cannot watch %s for interrupts: %s",
				 dev->port->name, uv_strerror(r));
			goto fail;
		}
		w->poll.data = w;
		dev->nwatch++;
		uv_poll_start(&w->poll, UV_READABLE, watch_cb);
	}
	vdev_start(dev->vd);
	return 0;
fail:
	snprintf(err, err_len, "[%s %s]: %s", cfg_dev_type_name(cfg->type), cfg->name, why);
	return r;
}

static void vdev_stopped(struct vdev *vd, void *arg)
{
	struct device *dev = arg;
	if (dev->on_stopped)
		dev->on_stopped(dev);
}

void device_stop(struct device *dev, void (*on_stopped)(struct device *dev))
{
	dev->on_stopped = on_stopped;
	if (dev->vd)
		vdev_shutdown(dev->vd, vdev_stopped, dev);
	else if (on_stopped)
		on_stopped(dev);
}

static void watch_closed(uv_handle_t *h)
{
	struct device_watch *w = h->data;
	struct device *dev = w->dev;
	if (--dev->open_handles == 0) {
		free(dev->watch);
		dev->watch = NULL;
	}
}

void device_close(struct device *dev)
{
	for (unsigned i = 0; i < dev->nwatch; i++) {
		dev->open_handles++;
		uv_close((uv_handle_t *)&dev->watch[i].poll, watch_closed);
	}
	if (dev->nwatch == 0) {
		free(dev->watch);
		dev->watch = NULL;
	}
	dev->nwatch = 0;
	blk_close(dev->blk);
	dev->blk = NULL;
	console_close(dev->con);
	dev->con = NULL;
	dev->vd = NULL;
	ivshm_port_destroy(dev->port);
	dev->port = NULL;
	sim_link_destroy(dev->link);
	dev->link = NULL;
}

void device_reopen(struct device *dev)
{
	if (dev->con)
		console_reopen(dev->con);
}
