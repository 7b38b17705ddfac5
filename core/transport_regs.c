/* The transport header and the register-write transactions
 * (docs/protocol.md §2).  Every value the driver wrote is read once with
 * shm_ld*() and checked before it is used. */
#include "core/transport_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/shm.h"

#define REQUIRED_FEATURES  (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM))

void vdev_notify_driver(struct vdev *vd, unsigned flag_offset, uint16_t vector)
{
	/* The flag first: with shared or single vectors the driver's handler
	 * looks at it to know what happened. */
	shm_st8(vd->port->rw, flag_offset, 1);
	shm_mb();
	ivshm_port_notify(vd->port, vector);
}

void vdev_write_config(struct vdev *vd)
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

/* Show queue_sel in the window at 0x20..0x3f. */
void vdev_load_window(struct vdev *vd)
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

void vdev_reset_state(struct vdev *vd)
{
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		q->size = q->max_size;
		q->driver_vector = 0;
		q->enable = 0;
		q->desc = q->driver = q->device = 0;
		q->starved = q->dirty = q->irq_pending = false;
		memset(&q->vq, 0, sizeof(q->vq));
		vdev_journal_reset_queue(vd, i);
	}
	vd->guest_features = 0;
	vd->dev_feat_sel = vd->drv_feat_sel = vd->queue_sel = 0;
	vd->status = 0;
	vd->broken = false;
	if (vd->ops->reset)
		vd->ops->reset(vd->be);
}

/* Fresh header for a new peer session.  revision and size are stored first
 * and never pass through zero: a driver probing while we rewrite (a rebind
 * right after an unbind) reads either the old or the new value, both valid. */
void vdev_write_header(struct vdev *vd)
{
	uint8_t *rw = vd->port->rw;
	vdev_reset_state(vd);
	shm_st32(rw, VI_REVISION, VI_HEADER_REVISION);
	shm_st32(rw, VI_SIZE, vd->hdr_size);
	for (uint32_t off = VI_WRITE_TRANSACTION; off < vd->hdr_size; off += 4)
		shm_st32(rw, off, 0);
	shm_st32(rw, VI_DEVICE_FEATURES, (uint32_t)vd->host_features);
	vdev_load_window(vd);
	vdev_write_config(vd);
}

void vdev_mark_broken(struct vdev *vd)
{
	if (vd->broken)
		return;
	vd->broken = true;
	vd->stats.protocol_errors++;
	/* Nothing more is answered; lanes give their queues back. */
	vdev_lanes_recall(vd, -1, true);
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	shm_st32(vd->port->rw, VI_DEVICE_STATUS, vd->status);
	vdev_journal_save(vd);
	vdev_notify_driver(vd, VI_CONFIG_EVENT, 0);
}

void vdev_ack_transaction(struct vdev *vd)
{
	/* What the transaction changed is in the journal before the driver
	 * may go on: a new process finds either the transaction pending (and
	 * applies it again: every handler is idempotent) or its effect. */
	vdev_journal_save(vd);
	/* Everything the transaction changed is visible before the driver
	 * may go on. */
	shm_mb();
	shm_st32(vd->port->rw, VI_WRITE_TRANSACTION, 0);
	vd->stats.transactions++;
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
		vdev_mark_broken(vd);
		return;
	}
	q->enable = 1;
	vdev_journal_reset_queue(vd, idx);
	vdev_scan_queue(vd, idx);
}

static void set_status(struct vdev *vd, uint8_t v)
{
	uint8_t old = vd->status;
	bool was_live = vdev_driver_live(vd);
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
	/* DRIVER_OK dropped without a reset: the home stops popping and
	 * answering at once (queue_open, queue_answerable); so do the lanes. */
	if (was_live && !vdev_driver_live(vd))
		vdev_lanes_recall(vd, -1, true);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
			log_warn("%s: DRIVER_OK without accepted features", vd->name);
			vdev_mark_broken(vd);
			return;
		}
		log_info("%s: driver ready (features 0x%llx)", vd->name,
			 (unsigned long long)vd->guest_features);
		if (vd->ops->driver_ok)
			vd->ops->driver_ok(vd->be);
		/* Buffers the driver made available before DRIVER_OK. */
		for (unsigned i = 0; i < vd->nq; i++)
			if (vd->q[i].enable)
				vdev_scan_queue(vd, i);
	}
}

/* Handle one transaction.  Returns false when it must wait for a quiesce
 * (write_transaction then stays set until the tick finishes it). */
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
		vdev_load_window(vd);
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
			vdev_begin_stop(vd, STOP_QUEUE_DISABLE, vd->queue_sel);
			return false;   /* acknowledged from the tick */
		}
		break;
	}
	case VI_DEVICE_STATUS: {
		uint8_t v = (uint8_t)shm_ld32(rw, VI_DEVICE_STATUS);
		if (v == 0) {
			vd->stats.resets++;
			vdev_begin_stop(vd, STOP_RESET, 0);
			return false;   /* acknowledged from the tick */
		}
		set_status(vd, v);
		break;
	}
	default:
		if (txn >= VI_CONFIG && txn < VI_CONFIG + vd->config_size) {
			/* No writable config field is offered: put ours back. */
			vdev_write_config(vd);
		} else {
			vd->stats.protocol_errors++;
			log_debug("%s: unknown write transaction 0x%x ignored", vd->name, txn);
		}
		break;
	}
	return true;
}

void vdev_process_transaction(struct vdev *vd)
{
	if (vd->txn_held)
		return;     /* answered when the quiesce it waits for is done */
	uint32_t txn = shm_ld32_acquire(vd->port->rw, VI_WRITE_TRANSACTION);
	if (txn == 0)
		return;
	if (handle_transaction(vd, txn))
		vdev_ack_transaction(vd);
	else
		vd->txn_held = true;
}
