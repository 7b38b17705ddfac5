#include "daemon/device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/container_of.h"
#include "core/le.h"
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

/* An fd of the uio node dev_path that a previous process handed over and
 * nothing took (the device was renamed, or could not be taken over), or -1.
 * Opening the node a second time and letting the old file be closed would
 * make uio_ivshmem reset the link under us. */
static int handed_uio_fd(struct handover *h, const char *dev_path)
{
	for (unsigned i = 0; h && i < h->n; i++) {
		struct handover_fd *f = &h->fds[i];
		if (!f->taken && port_uio_same_node(f->fd, dev_path)) {
			f->taken = true;
			return f->fd;
		}
	}
	return -1;
}

static int open_uio(struct device *dev, const char *dev_path, const struct cfg_daemon *dcfg,
		    struct handover *h, char *err, size_t err_len)
{
	int fd = handed_uio_fd(h, dev_path);
	if (fd >= 0)
		return port_uio_adopt(dev_path, dcfg->sysfs_root, fd, &dev->port, err, err_len);
	return port_uio_open(dev_path, dcfg->sysfs_root, &dev->port, err, err_len);
}

static int open_port(struct device *dev, const struct cfg_device *cfg,
		     const struct cfg_daemon *dcfg, uv_loop_t *loop, struct handover *h, char *err,
		     size_t err_len)
{
	char dev_path[PATH_MAX];
	int r, fd;
	switch (cfg->link.kind) {
	case LINK_PCI:
		r = port_uio_resolve_pci(cfg->link.target, dcfg->sysfs_root, dcfg->dev_root,
					 dev_path, sizeof(dev_path), err, err_len);
		if (r < 0)
			return r;
		return open_uio(dev, dev_path, dcfg, h, err, err_len);
	case LINK_UIO:
		return open_uio(dev, cfg->link.target, dcfg, h, err, err_len);
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

/* image: the medium a previous process served (NULL: the configured one). */
static int open_block(struct device *dev, const struct cfg_device *cfg, struct io_engine *eng,
		      const uint8_t *image, char *why, size_t why_len)
{
	struct blk_params bp = {
		.name = cfg->name,
		.image = image ? (const char *)image : cfg->image,
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
	log_info("%s: serving %s (%llu sectors%s) on %s, %u queue(s) of %u, %u vector(s), "
		 "io engine %s", cfg->name, cfg->image, (unsigned long long)blk_capacity(dev->blk),
		 cfg->read_only ? ", read-only" : "", dev->port->name, cfg->queues,
		 cfg->queue_size, dev->port->vectors, io_engine_kind_name(eng->kind));
	return 0;
}

static int open_console(struct device *dev, const struct cfg_device *cfg, struct tick *tick,
			struct handover *h, const char *prefix, const uint8_t *blob, size_t len,
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
	int r = h ? console_adopt(&cp, dev->port, tick, h, prefix, blob, len, &dev->con, why,
				  why_len)
		  : console_open(&cp, dev->port, tick, &dev->con, why, why_len);
	if (r < 0)
		return r;
	dev->vd = console_vdev(dev->con);
	log_info("%s: console on %s%s%s, link %s, queues of %u, %u vector(s)", cfg->name,
		 cfg_endpoint_name(cfg->endpoint), cfg->ep_path[0] ? " " : "", cfg->ep_path,
		 dev->port->name, dev->vd->q[0].max_size, dev->port->vectors);
	return 0;
}

/* What the device serves: a journal made for another one is not trusted. */
static uint64_t identity(const struct cfg_device *cfg)
{
	char num[256];
	uint64_t h = journal_hash(0, cfg->name);
	snprintf(num, sizeof(num), "%d %d %s %llu %u %d %s %u %u %u %u %u %d %llu %u %u",
		 cfg->type, cfg->link.kind, cfg->link.target,
		 (unsigned long long)cfg->link.shm_size, cfg->link.vectors, cfg->read_only,
		 cfg->serial, cfg->queues, cfg->queue_size, cfg->seg_max, cfg->block_size,
		 0, cfg->endpoint, (unsigned long long)cfg->backlog, cfg->cols, cfg->rows);
	h = journal_hash(h, num);
	h = journal_hash(h, cfg->image);
	return journal_hash(h, cfg->ep_path);
}

/* The watchers outlive the device while they close (the device may be
 * opened again meanwhile): they are counted and freed on their own. */
struct watch_set {
	unsigned closing;
	struct device_watch w[];
};

static int watch_port(struct device *dev, uv_loop_t *loop, char *why, size_t why_len)
{
	struct watch_set *set = calloc(1, sizeof(*set) + dev->port->n_watch * sizeof(set->w[0]));
	if (!set) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	dev->watch = set->w;
	for (unsigned i = 0; i < dev->port->n_watch; i++) {
		struct device_watch *w = &dev->watch[i];
		w->dev = dev;
		w->idx = i;
		int r = uv_poll_init(loop, &w->poll, dev->port->watch_fd[i]);
		if (r < 0) {
			snprintf(why, why_len, "cannot watch %s for interrupts: %s",
				 dev->port->name, uv_strerror(r));
			return r;
		}
		w->poll.data = w;
		dev->nwatch++;
		uv_poll_start(&w->poll, UV_READABLE, watch_cb);
	}
	return 0;
}

/* The journal: a new one, unless one was adopted. */
static int journal_for(struct device *dev, const struct cfg_device *cfg, char *why,
		       size_t why_len)
{
	struct vdev *vd = dev->vd;
	if (dev->journal.fd < 0) {
		char name[96];
		snprintf(name, sizeof(name), "vivd-journal-%s", cfg->name);
		int r = journal_create(&dev->journal, name, identity(cfg), vd->nq, vd->q[0].max_size);
		if (r < 0) {
			snprintf(why, why_len, "cannot create the device's journal: %s", strerror(-r));
			return r;
		}
	}
	vdev_set_journal(vd, &dev->journal);
	return 0;
}

int device_open(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		struct tick *tick, struct io_engine *eng, struct handover *h, char *err,
		size_t err_len)
{
	char why[512] = "";
	uv_loop_t *loop = tick->loop;
	dev->cfg = cfg;
	dev->journal.fd = -1;
	int r = open_port(dev, cfg, dcfg, loop, h, why, sizeof(why));
	if (r == 0)
		r = ivshm_port_check_role(dev->port, device_id(cfg), why, sizeof(why));
	if (r == 0)
		r = cfg->type == DEV_BLOCK ? open_block(dev, cfg, eng, NULL, why, sizeof(why))
					   : open_console(dev, cfg, tick, NULL, NULL, NULL, 0,
							  why, sizeof(why));
	if (r == 0 && dcfg->journal)
		r = journal_for(dev, cfg, why, sizeof(why));
	if (r == 0)
		r = watch_port(dev, loop, why, sizeof(why));
	if (r < 0) {
		snprintf(err, err_len, "[%s %s]: %s", cfg_dev_type_name(cfg->type), cfg->name, why);
		return r;
	}
	vdev_start(dev->vd);
	return 0;
}

/* ---- hand-over -------------------------------------------------------- */

/* The journal's blob: the link kind, then three length-prefixed parts:
 * the port's, the hosted link's, the backend's. */
struct blob {
	uint8_t buf[JOURNAL_BLOB_SIZE];
	uint32_t len;
};

static int blob_part(struct blob *b, int (*fill)(void *ctx, uint8_t *dst, size_t cap),
		     void *ctx)
{
	if (b->len + 4 > sizeof(b->buf))
		return -ENOSPC;
	int n = fill ? fill(ctx, b->buf + b->len + 4, sizeof(b->buf) - b->len - 4) : 0;
	if (n < 0)
		return n;
	put_le32(b->buf, b->len, (uint32_t)n);
	b->len += 4 + (uint32_t)n;
	return 0;
}

/* The next part of a loaded blob: its bytes and length. */
static const uint8_t *blob_next(const struct blob *b, uint32_t *pos, uint32_t *len)
{
	if (*pos + 4 > b->len)
		return NULL;
	uint32_t n = le32(b->buf, *pos);
	if (n > b->len - *pos - 4)
		return NULL;
	const uint8_t *p = b->buf + *pos + 4;
	*pos += 4 + n;
	*len = n;
	return p;
}

struct export_ctx {
	struct device *dev;
	struct handover *h;
	char prefix[96];
};

static int fill_port(void *c, uint8_t *dst, size_t cap)
{
	struct export_ctx *x = c;
	return ivshm_port_export(x->dev->port, x->prefix, x->h, dst, cap);
}

static int fill_link(void *c, uint8_t *dst, size_t cap)
{
	struct export_ctx *x = c;
	return x->dev->link ? sim_link_export(x->dev->link, x->prefix, x->h, dst, cap) : 0;
}

static int fill_backend(void *c, uint8_t *dst, size_t cap)
{
	struct export_ctx *x = c;
	if (x->dev->con)
		return console_export(x->dev->con, x->prefix, x->h, dst, cap);
	/* a block device: the medium it serves now (change/eject) */
	const char *img = blk_image(x->dev->blk);
	size_t n = strlen(img) + 1;
	if (n > cap)
		return -ENOSPC;
	memcpy(dst, img, n);
	return (int)n;
}

/* The fourth part: the aliases the set got from position first on, as
 * "name\0target\0" pairs. */
static int fill_aliases(struct blob *b, const struct handover *h, unsigned first_alias)
{
	uint32_t start = b->len;
	if (b->len + 4 > sizeof(b->buf))
		return -ENOSPC;
	b->len += 4;
	for (unsigned i = first_alias; i < h->nalias; i++) {
		size_t n = strlen(h->aliases[i].name) + 1, t = strlen(h->aliases[i].target) + 1;
		if (b->len + n + t > sizeof(b->buf))
			return -ENOSPC;
		memcpy(b->buf + b->len, h->aliases[i].name, n);
		memcpy(b->buf + b->len + n, h->aliases[i].target, t);
		b->len += (uint32_t)(n + t);
	}
	put_le32(b->buf, start, b->len - start - 4);
	return 0;
}

/* Register the aliases of a loaded blob's fourth part. */
static int load_aliases(struct handover *h, const uint8_t *p, uint32_t len)
{
	uint32_t pos = 0;
	while (pos < len) {
		const char *name = (const char *)p + pos;
		size_t n = strnlen(name, len - pos);
		if (pos + n + 1 >= len)
			return -EBADMSG;
		const char *target = name + n + 1;
		size_t t = strnlen(target, len - pos - n - 1);
		if (pos + n + 1 + t + 1 > len)
			return -EBADMSG;
		int r = handover_alias(h, name, target);
		if (r < 0)
			return r;
		log_debug("handed over: %s is %s", name, target);
		pos += (uint32_t)(n + 1 + t + 1);
	}
	return 0;
}

int device_export(struct device *dev, struct handover *h)
{
	if (!dev->open_ok || !dev->vd || dev->journal.fd < 0)
		return -ENODEV;
	struct blob b = { .len = 4 };
	struct export_ctx x = { .dev = dev, .h = h };
	unsigned first = h->n, first_alias = h->nalias;
	put_le32(b.buf, 0, (uint32_t)dev->cfg->link.kind);
	int r;
	snprintf(x.prefix, sizeof(x.prefix), "%s/port", dev->cfg->name);
	if ((r = blob_part(&b, fill_port, &x)) < 0)
		return r;
	snprintf(x.prefix, sizeof(x.prefix), "%s/link", dev->cfg->name);
	if ((r = blob_part(&b, fill_link, &x)) < 0)
		return r;
	snprintf(x.prefix, sizeof(x.prefix), "%s/ep", dev->cfg->name);
	if ((r = blob_part(&b, fill_backend, &x)) < 0)
		return r;
	snprintf(x.prefix, sizeof(x.prefix), "%s/journal", dev->cfg->name);
	if ((r = handover_add(h, x.prefix, dev->journal.fd)) < 0)
		return r;
	/* one name per open file (a supervisor keeps each once) */
	if ((r = handover_dedupe(h, first)) < 0 || (r = fill_aliases(&b, h, first_alias)) < 0)
		return r;
	journal_save_blob(&dev->journal, b.buf, b.len);
	return 0;
}

struct device_gen device_handover_gen(const struct device *dev)
{
	return (struct device_gen){ .link = sim_link_generation(dev->link),
				    .port = dev->port ? dev->port->generation : 0,
				    .con = console_generation(dev->con),
				    .blk = blk_generation(dev->blk) };
}

int device_snapshot(struct device *dev, struct handover *h)
{
	struct handover mine = { 0 };
	int r = device_export(dev, &mine);
	for (unsigned i = 0; r == 0 && i < mine.n; i++) {
		int fd = fcntl(mine.fds[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			r = -errno;
			break;
		}
		r = handover_add(h, mine.fds[i].name, fd);
		if (r < 0)
			close(fd);
	}
	handover_free(&mine);
	return r;
}

/* A loaded blob's parts. */
struct parts {
	const uint8_t *port, *link, *ep, *aliases;
	uint32_t port_len, link_len, ep_len, aliases_len;
};

/* The link, from the handed-over fds. */
static int adopt_port(struct device *dev, const struct cfg_device *cfg,
		      const struct cfg_daemon *dcfg, uv_loop_t *loop, struct handover *h,
		      const struct parts *pt, char *why, size_t why_len)
{
	char prefix[96], dev_path[PATH_MAX];
	const uint8_t *pb = pt->port, *lb = pt->link;
	uint32_t plen = pt->port_len, llen = pt->link_len;
	snprintf(prefix, sizeof(prefix), "%s/port", cfg->name);
	int r, fd;
	switch (cfg->link.kind) {
	case LINK_PCI:
		r = port_uio_resolve_pci(cfg->link.target, dcfg->sysfs_root, dcfg->dev_root,
					 dev_path, sizeof(dev_path), why, why_len);
		if (r < 0)
			return r;
		/* fall through */
	case LINK_UIO:
		snprintf(prefix, sizeof(prefix), "%s/port/uio", cfg->name);
		fd = handover_take(h, prefix);
		if (fd < 0) {
			snprintf(why, why_len, "no %s handed over", prefix);
			return -ENOENT;
		}
		return port_uio_adopt(cfg->link.kind == LINK_UIO ? cfg->link.target : dev_path,
				      dcfg->sysfs_root, fd, &dev->port, why, why_len);
	case LINK_SIM_CONNECT:
		return port_sim_adopt(cfg->link.target, pb, plen, h, prefix, &dev->port, why,
				      why_len);
	case LINK_SIM_HOST: {
		char lprefix[96];
		snprintf(lprefix, sizeof(lprefix), "%s/link", cfg->name);
		r = sim_link_adopt(loop, cfg->link.target, lb, llen, h, lprefix, &dev->link, why,
				   why_len);
		if (r < 0)
			return r;
		r = port_sim_adopt(cfg->link.target, pb, plen, h, prefix, &dev->port, why,
				   why_len);
		/* our peer's view of the others, from the link itself */
		if (r == 0)
			sim_link_reannounce(dev->link, dev->port->id);
		return r;
	}
	default:
		snprintf(why, why_len, "no link configured");
		return -EINVAL;
	}
}

/* Close what was handed over for this device and nobody took. */
static void drop_handed(struct handover *h, const char *name)
{
	size_t n = strlen(name);
	for (unsigned i = 0; i < h->n; i++) {
		struct handover_fd *f = &h->fds[i];
		if (!f->taken && strncmp(f->name, name, n) == 0 && f->name[n] == '/') {
			close(f->fd);
			f->taken = true;
		}
	}
}

static int adopt(struct device *dev, const struct cfg_device *cfg,
		 const struct cfg_daemon *dcfg, struct tick *tick, struct io_engine *eng,
		 struct handover *h, char *why, size_t why_len)
{
	char name[96];
	snprintf(name, sizeof(name), "%s/journal", cfg->name);
	int fd = handover_take(h, name);
	if (fd < 0) {
		snprintf(why, why_len, "no journal handed over");
		return -ENOENT;
	}
	/* The journal's own queue size sizes its mapping: journal_attach
	 * bounds it; it is compared with the device once that is open. */
	unsigned nq = cfg->type == DEV_BLOCK ? cfg->queues : 2;
	struct journal_hdr peek;
	if (pread(fd, &peek, sizeof(peek), 0) != (ssize_t)sizeof(peek)) {
		close(fd);
		snprintf(why, why_len, "the journal cannot be read");
		return -EBADMSG;
	}
	int r = journal_attach(&dev->journal, fd, identity(cfg), nq, peek.qmax, why, why_len);
	if (r < 0)
		return r;
	struct blob b;
	if (journal_load_blob(&dev->journal, b.buf, sizeof(b.buf), &b.len) < 0 || b.len < 4) {
		snprintf(why, why_len, "the journal's link description fails its checksum");
		return -EBADMSG;
	}
	uint32_t pos = 4;
	struct parts pt;
	pt.port = blob_next(&b, &pos, &pt.port_len);
	pt.link = blob_next(&b, &pos, &pt.link_len);
	pt.ep = blob_next(&b, &pos, &pt.ep_len);
	pt.aliases = blob_next(&b, &pos, &pt.aliases_len);
	if (!pt.port || !pt.link || !pt.ep || !pt.aliases ||
	    le32(b.buf, 0) != (uint32_t)cfg->link.kind ||
	    load_aliases(h, pt.aliases, pt.aliases_len) < 0) {
		snprintf(why, why_len, "the journal does not describe a %s link",
			 cfg_link_kind_name(cfg->link.kind));
		return -EBADMSG;
	}
	if (cfg->type == DEV_BLOCK &&
	    (pt.ep_len < 2 || strnlen((const char *)pt.ep, pt.ep_len) != pt.ep_len - 1)) {
		snprintf(why, why_len, "the journal names no medium (an ejected one is not taken "
			 "over)");
		return -EBADMSG;
	}
	r = adopt_port(dev, cfg, dcfg, tick->loop, h, &pt, why, why_len);
	if (r == 0)
		r = ivshm_port_check_role(dev->port, device_id(cfg), why, why_len);
	if (r == 0) {
		snprintf(name, sizeof(name), "%s/ep", cfg->name);
		r = cfg->type == DEV_BLOCK ? open_block(dev, cfg, eng, pt.ep, why, why_len)
					   : open_console(dev, cfg, tick, h, name, pt.ep, pt.ep_len,
							  why, why_len);
	}
	if (r == 0 && dev->vd->q[0].max_size != dev->journal.qmax) {
		snprintf(why, why_len, "the journal has queues of %u, the device %u",
			 dev->journal.qmax, dev->vd->q[0].max_size);
		r = -ESTALE;
	}
	if (r == 0)
		r = journal_for(dev, cfg, why, why_len);
	if (r == 0)
		r = watch_port(dev, tick->loop, why, why_len);
	if (r == 0)
		r = vdev_adopt(dev->vd, why, why_len);
	return r;
}

int device_adopt(struct device *dev, const struct cfg_device *cfg, const struct cfg_daemon *dcfg,
		 struct tick *tick, struct io_engine *eng, struct handover *h, char *err,
		 size_t err_len)
{
	char why[512] = "";
	dev->cfg = cfg;
	dev->journal.fd = -1;
	int r = adopt(dev, cfg, dcfg, tick, eng, h, why, sizeof(why));
	if (r == 0)
		return 0;
	/* Not trusted: the cell sees its back-end reset, as after a restart
	 * without hand-over, and nothing half-adopted stays. */
	log_warn("%s: cannot take the device over (%s); its link is reset", cfg->name, why);
	if (dev->vd && dev->nwatch > 0) {
		/* adopted all but the session: a clean new session on the same link */
		vdev_start(dev->vd);
		return 1;
	}
	/* A uio file this process took must stay open across the reopen (the
	 * reopen takes it from h again): its last close resets the link. */
	struct handover keep = { 0 };
	if (dev->port)
		ivshm_port_export(dev->port, cfg->name, &keep, NULL, 0);
	int uio = -1;
	for (unsigned i = 0; i < keep.n && uio < 0; i++)
		if (strstr(keep.fds[i].name, "/uio"))
			uio = fcntl(keep.fds[i].fd, F_DUPFD_CLOEXEC, 3);
	handover_free(&keep);
	device_close(dev);
	drop_handed(h, cfg->name);
	if (uio >= 0 && handover_add(h, "reopen/uio", uio) < 0)
		close(uio);
	*dev = (struct device){ .worker = dev->worker };
	r = device_open(dev, cfg, dcfg, tick, eng, h, err, err_len);
	return r < 0 ? r : 1;
}

void device_settle(struct device *dev)
{
	if (dev->con)
		console_settle(dev->con);
	if (dev->vd)
		vdev_flush(dev->vd);
}

void device_pause(struct device *dev, bool pause)
{
	if (dev->vd)
		vdev_pause(dev->vd, pause);
}

unsigned device_inflight(const struct device *dev)
{
	/* A console holds the cell's receive buffers until there is input:
	 * only block requests finish on their own. */
	return dev->blk ? blk_inflight(dev->blk) : 0;
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
	struct watch_set *set = container_of(w - w->idx, struct watch_set, w[0]);
	if (--set->closing == 0)
		free(set);
}

void device_close(struct device *dev)
{
	if (dev->watch) {
		struct watch_set *set = container_of(dev->watch, struct watch_set, w[0]);
		set->closing = dev->nwatch;
		for (unsigned i = 0; i < dev->nwatch; i++)
			uv_close((uv_handle_t *)&dev->watch[i].poll, watch_closed);
		if (dev->nwatch == 0)
			free(set);
	}
	dev->watch = NULL;
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
	journal_close(&dev->journal);
}

void device_reopen(struct device *dev)
{
	if (dev->con)
		console_reopen(dev->con);
}
