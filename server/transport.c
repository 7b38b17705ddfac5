#include "server/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "server/shm.h"

#define TRANSPORT_FEATURES (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | \
			    VIRTIO_BIT(VIRTIO_F_ORDER_PLATFORM) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | \
			    VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define REQUIRED_FEATURES  (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM))

static void process_state(struct vdev *vd);
static void begin_stop(struct vdev *vd, enum vdev_stop_reason why);

const char *vdev_phase_name(const struct vdev *vd)
{
	if (vd->phase == VDEV_RUNNING) {
		if (vd->broken)
			return "broken";
		return vd->status & VIRTIO_STATUS_DRIVER_OK ? "running" : "negotiating";
	}
	return vd->phase == VDEV_STOPPED ? "stopped" : "waiting for peer";
}

/* Pick the vector the driver kicks queue q on, from what the link really
 * has: one per queue when there are enough, else a shared one, else 0
 * (a single vector, e.g. INTx). */
static uint16_t choose_device_vector(const struct vdev *vd, unsigned q)
{
	uint32_t v = vd->port->vectors;
	if (v >= 1 + vd->nq)
		return (uint16_t)(1 + q);
	return v >= 2 ? 1 : 0;
}

int vdev_init(struct vdev *vd, const char *name, struct ivshm_port *port, uint32_t device_id,
	      const struct vdev_backend_ops *ops, void *be, size_t config_size,
	      unsigned nq, uint16_t queue_size)
{
	memset(vd, 0, sizeof(*vd));
	snprintf(vd->name, sizeof(vd->name), "%s", name);
	vd->port = port;
	vd->ops = ops;
	vd->be = be;
	vd->device_id = device_id;
	vd->config_size = config_size;
	vd->hdr_size = vdev_header_size(config_size);
	if (vd->hdr_size > port->rw_size / 2 || nq == 0 || nq > 0xffff ||
	    config_size > VDEV_MAX_CONFIG)
		return -EINVAL;
	vd->nq = nq;
	vd->q = calloc(nq, sizeof(*vd->q));
	if (!vd->q)
		return -ENOMEM;
	for (unsigned i = 0; i < nq; i++) {
		vd->q[i].max_size = queue_size;
		vd->q[i].device_vector = choose_device_vector(vd, i);
	}
	vd->phase = VDEV_STOPPED;
	return 0;
}

void vdev_destroy(struct vdev *vd)
{
	free(vd->q);
	vd->q = NULL;
}

struct vq *vdev_vq(struct vdev *vd, unsigned q)
{
	if (vd->phase != VDEV_RUNNING || vd->stopping || vd->broken ||
	    !(vd->status & VIRTIO_STATUS_DRIVER_OK) || q >= vd->nq || !vd->q[q].vq.ready)
		return NULL;
	return &vd->q[q].vq;
}

struct vq *vdev_vq_complete(struct vdev *vd, unsigned q)
{
	/* During shutdown and a queue disable the rings stay valid until the
	 * transaction is acknowledged: answers still go out. */
	if ((vd->stopping == STOP_SHUTDOWN || vd->stopping == STOP_QUEUE_DISABLE) &&
	    vd->phase == VDEV_RUNNING && !vd->broken &&
	    (vd->status & VIRTIO_STATUS_DRIVER_OK) && q < vd->nq && vd->q[q].vq.ready)
		return &vd->q[q].vq;
	return vdev_vq(vd, q);
}

static void notify_driver(struct vdev *vd, unsigned offset_flag, uint16_t vector)
{
	shm_st8(vd->port->rw, offset_flag, 1);
	shm_mb();
	ivshm_port_notify(vd->port, vector);
}

void vdev_flush_used(struct vdev *vd, unsigned q)
{
	vdev_publish_used(vd, q);
	vdev_interrupt_used(vd, q);
}

void vdev_publish_used(struct vdev *vd, unsigned q)
{
	struct vq *vq = vdev_vq_complete(vd, q);
	if (vq)
		vq_publish_idx(vq);
}

void vdev_interrupt_used(struct vdev *vd, unsigned q)
{
	struct vq *vq = vdev_vq_complete(vd, q);
	if (vq && vq_want_interrupt(vq)) {
		vd->q[q].interrupts++;
		notify_driver(vd, VI_QUEUE_EVENT, vd->q[q].driver_vector);
	}
}

static void write_config(struct vdev *vd)
{
	uint8_t cfg[VDEV_MAX_CONFIG];
	memset(cfg, 0, sizeof(cfg));
	vd->ops->get_config(vd->be, cfg);
	/* Generation odd while the bytes change, so the driver retries. */
	shm_st32(vd->port->rw, VI_CONFIG_GENERATION, vd->config_gen + 1);
	shm_wmb();
	for (size_t i = 0; i < vd->config_size; i++)
		shm_st8(vd->port->rw, VI_CONFIG + i, cfg[i]);
	shm_wmb();
	vd->config_gen += 2;
	shm_st32(vd->port->rw, VI_CONFIG_GENERATION, vd->config_gen);
}

void vdev_config_changed(struct vdev *vd)
{
	if (vd->phase == VDEV_STOPPED)
		return;
	write_config(vd);
	if (vd->phase == VDEV_RUNNING && (vd->status & VIRTIO_STATUS_DRIVER_OK))
		notify_driver(vd, VI_CONFIG_EVENT, 0);
}

/* Show queue sel in the window at 0x20..0x3f. */
static void load_window(struct vdev *vd)
{
	uint8_t *rw = vd->port->rw;
	if (vd->queue_sel >= vd->nq) {
		/* No such queue: the driver sees size 0 and stops there. */
		for (unsigned off = VI_QUEUE_SIZE; off < VI_CONFIG_EVENT; off += 4)
			shm_st32(rw, off, 0);
		return;
	}
	struct vdev_queue *q = &vd->q[vd->queue_sel];
	shm_st16(rw, VI_QUEUE_SIZE, q->size);
	shm_st16(rw, VI_QUEUE_DEVICE_VECTOR, q->device_vector);
	shm_st16(rw, VI_QUEUE_DRIVER_VECTOR, q->driver_vector);
	shm_st16(rw, VI_QUEUE_ENABLE, q->enable);
	shm_st64(rw, VI_QUEUE_DESC, q->desc);
	shm_st64(rw, VI_QUEUE_DRIVER, q->driver);
	shm_st64(rw, VI_QUEUE_DEVICE, q->device);
}

static void reset_device_state(struct vdev *vd)
{
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		q->size = q->max_size;
		q->driver_vector = 0;
		q->enable = 0;
		q->desc = q->driver = q->device = 0;
		memset(&q->vq, 0, sizeof(q->vq));
	}
	vd->guest_features = 0;
	vd->dev_feat_sel = vd->drv_feat_sel = vd->queue_sel = 0;
	vd->status = 0;
	vd->broken = false;
	if (vd->ops->reset)
		vd->ops->reset(vd->be);
}

/* Fresh header for a new peer session.  revision and size are stored
 * first and never pass through zero: a driver probing while we rewrite
 * (a rebind right after an unbind) reads either the old or the new value,
 * both valid. */
static void write_header(struct vdev *vd)
{
	uint8_t *rw = vd->port->rw;
	reset_device_state(vd);
	shm_st32(rw, VI_REVISION, VI_HEADER_REVISION);
	shm_st32(rw, VI_SIZE, vd->hdr_size);
	for (uint32_t off = VI_WRITE_TRANSACTION; off < vd->hdr_size; off += 4)
		shm_st32(rw, off, 0);
	shm_st32(rw, VI_DEVICE_FEATURES, (uint32_t)vd->host_features);
	load_window(vd);
	write_config(vd);
}

static void mark_broken(struct vdev *vd)
{
	if (vd->broken)
		return;
	vd->broken = true;
	vd->stats.protocol_errors++;
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	shm_st32(vd->port->rw, VI_DEVICE_STATUS, vd->status);
	notify_driver(vd, VI_CONFIG_EVENT, 0);
}

void vdev_fail(struct vdev *vd, unsigned q, int err)
{
	if (vd->broken)
		return;
	const char *why = err == -EOVERFLOW ? "avail index ran ahead of the ring"
			: err == -ERANGE ? "index or buffer out of range"
			: err == -ELOOP ? "descriptor chain loops"
			: err == -EMLINK ? "nested indirect table"
			: err == -ENOBUFS ? "too many buffers in one request"
			: err == -EINVAL ? "malformed descriptor chain" : strerror(-err);
	log_warn("%s: driver broke the ring protocol on queue %u (%s); device needs reset",
		 vd->name, q, why);
	mark_broken(vd);
}

static bool features_acceptable(struct vdev *vd)
{
	uint64_t g = vd->guest_features;
	return (g & ~vd->host_features) == 0 && (g & REQUIRED_FEATURES) == REQUIRED_FEATURES;
}

static void enable_queue(struct vdev *vd, struct vdev_queue *q, unsigned idx)
{
	/* Rings live in the driver's part of the section, after the header. */
	int r = vq_setup(&q->vq, vd->port->rw, vd->hdr_size, vd->port->rw_size, q->size,
			 q->max_size, q->desc, q->driver, q->device,
			 vdev_has(vd, VIRTIO_F_EVENT_IDX), vdev_has(vd, VIRTIO_F_INDIRECT_DESC));
	if (r < 0) {
		log_warn("%s: driver enabled queue %u with an invalid ring (size %u, desc 0x%llx, "
			 "driver 0x%llx, device 0x%llx); device needs reset", vd->name, idx, q->size,
			 (unsigned long long)q->desc, (unsigned long long)q->driver,
			 (unsigned long long)q->device);
		mark_broken(vd);
		return;
	}
	q->enable = 1;
}

static void set_status(struct vdev *vd, uint8_t v)
{
	uint8_t old = vd->status;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_acceptable(vd)) {
		log_warn("%s: driver features 0x%llx refused (VERSION_1 and ACCESS_PLATFORM are "
			 "required, nothing beyond 0x%llx)", vd->name,
			 (unsigned long long)vd->guest_features, (unsigned long long)vd->host_features);
		v &= ~VIRTIO_STATUS_FEATURES_OK;
		shm_st32(vd->port->rw, VI_DEVICE_STATUS, v);
	}
	vd->status = v | (vd->broken ? VIRTIO_STATUS_NEEDS_RESET : 0);
	/* The driver's store may have wiped NEEDS_RESET or kept a refused bit. */
	if (vd->status != v)
		shm_st32(vd->port->rw, VI_DEVICE_STATUS, vd->status);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
			log_warn("%s: DRIVER_OK without accepted features", vd->name);
			mark_broken(vd);
			return;
		}
		log_info("%s: driver ready (features 0x%llx)", vd->name,
			 (unsigned long long)vd->guest_features);
		if (vd->ops->driver_ok)
			vd->ops->driver_ok(vd->be);
	}
}

/* Handle one transaction.  Returns false when it must wait for quiescing
 * (write_transaction then stays set). */
static bool handle_transaction(struct vdev *vd, uint32_t txn)
{
	uint8_t *rw = vd->port->rw;
	struct vdev_queue *q = vd->queue_sel < vd->nq ? &vd->q[vd->queue_sel] : NULL;
	bool q_writable = q && !q->enable;

	switch (txn) {
	case VI_DEVICE_FEATURES_SEL:
		vd->dev_feat_sel = shm_ld32(rw, VI_DEVICE_FEATURES_SEL);
		shm_st32(rw, VI_DEVICE_FEATURES, vd->dev_feat_sel == 0 ? (uint32_t)vd->host_features
				: vd->dev_feat_sel == 1 ? (uint32_t)(vd->host_features >> 32) : 0);
		break;
	case VI_DRIVER_FEATURES: {
		uint64_t word = shm_ld32(rw, VI_DRIVER_FEATURES);
		if (vd->status & VIRTIO_STATUS_FEATURES_OK)
			break;      /* too late to change features */
		if (vd->drv_feat_sel == 0)
			vd->guest_features = (vd->guest_features & ~0xffffffffull) | word;
		else if (vd->drv_feat_sel == 1)
			vd->guest_features = (vd->guest_features & 0xffffffffull) | word << 32;
		break;
	}
	case VI_DRIVER_FEATURES_SEL:
		vd->drv_feat_sel = shm_ld32(rw, VI_DRIVER_FEATURES_SEL);
		break;
	case VI_QUEUE_SEL:
		vd->queue_sel = shm_ld32(rw, VI_QUEUE_SEL);
		load_window(vd);
		break;
	case VI_QUEUE_SIZE:
		if (q_writable)
			q->size = shm_ld16(rw, VI_QUEUE_SIZE);
		break;
	case VI_QUEUE_DRIVER_VECTOR:
		if (q_writable)
			q->driver_vector = shm_ld16(rw, VI_QUEUE_DRIVER_VECTOR);
		break;
	case VI_QUEUE_DESC:
		if (q_writable)
			q->desc = shm_ld64(rw, VI_QUEUE_DESC);
		break;
	case VI_QUEUE_DRIVER:
		if (q_writable)
			q->driver = shm_ld64(rw, VI_QUEUE_DRIVER);
		break;
	case VI_QUEUE_DEVICE:
		if (q_writable)
			q->device = shm_ld64(rw, VI_QUEUE_DEVICE);
		break;
	case VI_QUEUE_ENABLE: {
		uint16_t en = shm_ld16(rw, VI_QUEUE_ENABLE);
		if (!q)
			break;
		if (en && !q->enable) {
			enable_queue(vd, q, vd->queue_sel);
		} else if (!en && q->enable) {
			if (vd->ops->inflight(vd->be)) {
				begin_stop(vd, STOP_QUEUE_DISABLE);
				return false;   /* acknowledged by finish_stop */
			}
			q->enable = 0;
			q->vq.ready = false;
			if (vd->ops->queue_disabled)
				vd->ops->queue_disabled(vd->be, vd->queue_sel);
		}
		break;
	}
	case VI_DEVICE_STATUS: {
		uint8_t v = (uint8_t)shm_ld32(rw, VI_DEVICE_STATUS);
		if (v == 0) {
			vd->stats.resets++;
			begin_stop(vd, STOP_RESET);
			return false;   /* acknowledged by finish_stop, now or when idle */
		}
		set_status(vd, v);
		break;
	}
	default:
		if (txn >= VI_CONFIG && txn < VI_CONFIG + vd->config_size) {
			/* No writable config field is offered: put ours back. */
			write_config(vd);
		} else {
			vd->stats.protocol_errors++;
			log_debug("%s: unknown write transaction 0x%x ignored", vd->name, txn);
		}
		break;
	}
	return true;
}

static void ack_transaction(struct vdev *vd)
{
	shm_mb();
	shm_st32(vd->port->rw, VI_WRITE_TRANSACTION, 0);
	vd->stats.transactions++;
}

static void process_transaction(struct vdev *vd)
{
	if (vd->stopping)
		return;     /* the pending one is acknowledged when idle */
	uint32_t txn = shm_ld32_acquire(vd->port->rw, VI_WRITE_TRANSACTION);
	if (txn == 0)
		return;
	if (handle_transaction(vd, txn))
		ack_transaction(vd);
	else if (vd->stopping)
		vd->pending_txn = txn;
}

static void kick_queues(struct vdev *vd, int vector)
{
	for (unsigned i = 0; i < vd->nq; i++) {
		if (vector > 0 && vd->q[i].device_vector != vector)
			continue;
		if (!vdev_vq(vd, i))
			continue;
		vd->q[i].kicks++;
		vd->ops->queue_notify(vd->be, i);
	}
}

/* Everything that needs the backend idle is finished here. */
static void finish_stop(struct vdev *vd)
{
	enum vdev_stop_reason why = vd->stopping;
	vd->stopping = STOP_NONE;
	switch (why) {
	case STOP_RESET:
		reset_device_state(vd);
		load_window(vd);
		shm_st8(vd->port->rw, VI_CONFIG_EVENT, 0);
		shm_st8(vd->port->rw, VI_QUEUE_EVENT, 0);
		shm_st32(vd->port->rw, VI_DEVICE_FEATURES, (uint32_t)vd->host_features);
		vd->pending_txn = 0;
		ack_transaction(vd);
		break;
	case STOP_QUEUE_DISABLE:
		if (vd->queue_sel < vd->nq) {
			vd->q[vd->queue_sel].enable = 0;
			vd->q[vd->queue_sel].vq.ready = false;
			if (vd->ops->queue_disabled)
				vd->ops->queue_disabled(vd->be, vd->queue_sel);
		}
		vd->pending_txn = 0;
		ack_transaction(vd);
		kick_queues(vd, -1);
		break;
	case STOP_PEER_LEFT:
		/* We stay READY: the Linux driver writes its STATE 0 first on
		 * remove and then still resets the device and disables each
		 * queue through transactions, spinning on each one for as long
		 * as we show READY.  A fresh header answers them all (a pending
		 * one is cleared with it) and is what the next driver finds. */
		write_header(vd);
		vd->pending_txn = 0;
		vd->phase = VDEV_WAIT_PEER_READY;
		log_info("%s: peer left; waiting for a new one", vd->name);
		process_state(vd);
		break;
	case STOP_SHUTDOWN:
		/* The last completions are pushed but not yet published. */
		for (unsigned i = 0; i < vd->nq; i++)
			vdev_flush_used(vd, i);
		reset_device_state(vd);
		vd->phase = VDEV_STOPPED;
		ivshm_port_set_state(vd->port, VIRTIO_STATE_RESET);
		if (vd->on_stopped)
			vd->on_stopped(vd);
		break;
	case STOP_NONE:
		break;
	}
}

static void begin_stop(struct vdev *vd, enum vdev_stop_reason why)
{
	/* A stronger reason takes over a pending weaker one. */
	if (vd->stopping && why <= vd->stopping)
		return;
	vd->stopping = why;
	if (vd->ops->inflight(vd->be) == 0)
		finish_stop(vd);
}

void vdev_backend_idle(struct vdev *vd)
{
	if (vd->stopping && vd->ops->inflight(vd->be) == 0)
		finish_stop(vd);
}

static void process_state(struct vdev *vd)
{
	uint32_t peer = ivshm_port_peer_state(vd->port);
	switch (vd->phase) {
	case VDEV_WAIT_PEER_RESET:
		if (peer != VIRTIO_STATE_RESET)
			return;
		write_header(vd);
		vd->phase = VDEV_WAIT_PEER_READY;
		ivshm_port_set_state(vd->port, VIRTIO_STATE_READY);
		log_debug("%s: header written, waiting for the peer", vd->name);
		/* fall through */
	case VDEV_WAIT_PEER_READY:
		if (ivshm_port_peer_state(vd->port) != VIRTIO_STATE_READY)
			return;
		vd->phase = VDEV_RUNNING;
		vd->stats.peer_sessions++;
		log_info("%s: peer connected on %s", vd->name, vd->port->name);
		/* The driver may have set DRIVER_OK and kicked before we saw its
		 * STATE change (we read the state before the transaction). */
		kick_queues(vd, -1);
		return;
	case VDEV_RUNNING:
		if (peer != VIRTIO_STATE_READY)
			begin_stop(vd, STOP_PEER_LEFT);
		return;
	case VDEV_STOPPED:
		return;
	}
}

void vdev_start(struct vdev *vd)
{
	vd->host_features = (vd->ops->features(vd->be) & ~TRANSPORT_FEATURES) | TRANSPORT_FEATURES;
	vd->phase = VDEV_WAIT_PEER_RESET;
	reset_device_state(vd);
	ivshm_port_set_state(vd->port, VIRTIO_STATE_RESET);
	ivshm_port_rearm(vd->port);
	process_state(vd);
}

void vdev_process(struct vdev *vd, int vector)
{
	if (vd->phase == VDEV_STOPPED)
		return;
	if (vector <= 0) {
		process_state(vd);
		/* Once our header is out and we show READY, every transaction
		 * is answered whatever the peer's state: the driver spins on it
		 * with no timeout while we are READY. */
		if (vd->phase != VDEV_WAIT_PEER_READY && vd->phase != VDEV_RUNNING)
			return;
		process_transaction(vd);
		if (vd->phase != VDEV_RUNNING)
			return;
	}
	kick_queues(vd, vector);
}

void vdev_link_down(struct vdev *vd)
{
	if (vd->phase == VDEV_STOPPED)
		return;
	log_err("%s: link %s is gone; device stopped", vd->name, vd->port->name);
	vd->phase = VDEV_STOPPED;
	vd->stopping = STOP_NONE;
}

void vdev_shutdown(struct vdev *vd, void (*on_stopped)(struct vdev *vd))
{
	vd->on_stopped = on_stopped;
	if (vd->phase == VDEV_STOPPED) {
		if (on_stopped)
			on_stopped(vd);
		return;
	}
	if (vd->phase != VDEV_RUNNING)
		vd->phase = VDEV_RUNNING;   /* so the stop path runs uniformly */
	begin_stop(vd, STOP_SHUTDOWN);
}
