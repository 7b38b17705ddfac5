/* The virtio-over-IVSHMEM device side ("vdev"): one virtio device on one
 * IVSHMEM link.
 *
 * It owns the transport header in the R/W section and runs the life cycle:
 * publish RESET, wait for the peer to reset, write the header, publish
 * READY, wait for the peer to be READY, serve.  When the peer leaves READY
 * (driver unbound, cell reset or destroyed) it quiesces, writes a fresh
 * header and stays READY for the next driver: the Linux driver still resets
 * the device and disables its queues through transactions after writing its
 * own STATE 0, and spins on each one while we show READY.  So every
 * transaction is answered whenever we show READY, whatever the peer's state
 * (see docs/protocol.md, "Life cycle").  It handles every register write
 * transaction, negotiates features (VERSION_1 and
 * ACCESS_PLATFORM are required), keeps a window per queue behind queue_sel,
 * sets up validated virtqueues and signals the driver (event flag, then
 * doorbell).  A driver that breaks the rules gets DEVICE_NEEDS_RESET and a
 * config interrupt; the device then serves nothing until it is reset.
 *
 * Quiescing: a device reset (status 0), a queue disable or the peer leaving
 * must not be acknowledged while the backend still has I/O in flight that
 * could write into shared memory.  The vdev stops handing out queues
 * (vdev_vq() returns NULL), asks the backend how much is in flight, and
 * finishes the transition when the backend reports idle through
 * vdev_backend_idle().  The driver spins on write_transaction meanwhile.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/port.h"
#include "server/virtio_ivshmem.h"
#include "server/virtqueue.h"

#define VDEV_MAX_CONFIG 256    /* bytes of device config space */

struct vdev;

struct vdev_backend_ops {
	/* Features the device offers (transport bits are added by the vdev). */
	uint64_t (*features)(void *be);
	/* Fill the device config space (vdev->config_size bytes). */
	void (*get_config)(void *be, uint8_t *cfg);
	/* DRIVER_OK was set: the queues are live. Optional. */
	void (*driver_ok)(void *be);
	/* The driver kicked (or may have kicked) queue q. */
	void (*queue_notify)(void *be, unsigned q);
	/* Requests submitted and not completed yet. */
	unsigned (*inflight)(void *be);
	/* The device is reset and idle: drop per-queue state. Optional. */
	void (*reset)(void *be);
	/* The driver disabled queue q (the backend is idle): forget anything
	 * held from its ring. Optional. */
	void (*queue_disabled)(void *be, unsigned q);
};

enum vdev_phase {
	VDEV_WAIT_PEER_RESET,   /* our state RESET, waiting for the peer's */
	VDEV_WAIT_PEER_READY,   /* header written, our state READY: transactions served */
	VDEV_RUNNING,           /* peer READY too: transactions and queues served */
	VDEV_STOPPED,           /* shut down, or the link is gone */
};

enum vdev_stop_reason { STOP_NONE, STOP_RESET, STOP_QUEUE_DISABLE, STOP_PEER_LEFT, STOP_SHUTDOWN };

struct vdev_queue {
	uint16_t max_size;
	uint16_t device_vector;     /* the driver kicks us on this vector */
	uint16_t size;
	uint16_t driver_vector;     /* we interrupt the driver on this vector */
	uint16_t enable;
	uint64_t desc, driver, device;
	struct vq vq;
	/* Statistics, always on. */
	uint64_t kicks, interrupts;
};

struct vdev_stats {
	uint64_t transactions;
	uint64_t resets;
	uint64_t peer_sessions;
	uint64_t protocol_errors;
};

struct vdev {
	char name[64];
	struct ivshm_port *port;
	const struct vdev_backend_ops *ops;
	void *be;
	uint32_t device_id;
	size_t config_size;
	uint32_t hdr_size;

	enum vdev_phase phase;
	enum vdev_stop_reason stopping;     /* quiesce in progress */
	uint32_t pending_txn;               /* transaction held until idle */
	void (*on_stopped)(struct vdev *vd); /* shutdown finished */
	void *owner;                        /* for on_stopped */

	uint64_t host_features;
	uint64_t guest_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint8_t status;
	bool broken;
	uint32_t config_gen;

	unsigned nq;
	struct vdev_queue *q;
	struct vdev_stats stats;
};

/* Bytes of the transport header with config_size bytes of device config:
 * what the header's `size` field says, and what the driver's DMA pool
 * reserves at its start (server/dma_pool.h). */
static inline uint32_t vdev_header_size(size_t config_size)
{
	return (uint32_t)((VI_CONFIG + config_size + 3) & ~(size_t)3);
}

/* Prepare a device on port with nq queues of at most queue_size entries.
 * Returns -EINVAL when the link cannot carry the header. */
int vdev_init(struct vdev *vd, const char *name, struct ivshm_port *port, uint32_t device_id,
	      const struct vdev_backend_ops *ops, void *be, size_t config_size,
	      unsigned nq, uint16_t queue_size);
void vdev_destroy(struct vdev *vd);

/* Publish RESET and start the life cycle. */
void vdev_start(struct vdev *vd);

/* An interrupt arrived on vector (IVSHM_VECTOR_UNKNOWN: could be any).  The
 * caller has already re-armed INT_CONTROL. */
void vdev_process(struct vdev *vd, int vector);

/* The link is gone for good (sim host died). */
void vdev_link_down(struct vdev *vd);

/* Stop serving: quiesce, publish RESET, then call on_stopped. */
void vdev_shutdown(struct vdev *vd, void (*on_stopped)(struct vdev *vd));

/* The live ring of queue q, or NULL when the queue may not be touched now
 * (not enabled, device not DRIVER_OK, broken, or quiescing). */
struct vq *vdev_vq(struct vdev *vd, unsigned q);

/* The ring to complete a request on: like vdev_vq(), but also while the
 * daemon shuts down (the driver is still there and gets its answers);
 * NULL after a reset or when the peer left, when nothing may be written. */
struct vq *vdev_vq_complete(struct vdev *vd, unsigned q);

/* Backend: in-flight I/O reached zero. */
void vdev_backend_idle(struct vdev *vd);

/* Backend: publish used entries of queue q and interrupt if wanted. */
void vdev_flush_used(struct vdev *vd, unsigned q);

/* The same in two steps, for a queue whose driver polls for completions
 * (virtio_console's transmit queue: hvc spins until its buffer is used):
 * publish now, and decide on the interrupt a little later, when the driver
 * has usually taken the entries already.  An interrupt for entries already
 * taken finds nothing to do; 100,000 of them make Linux disable the IRQ
 * ("nobody cared"), which on a shared or INTx vector silences the whole
 * device. */
void vdev_publish_used(struct vdev *vd, unsigned q);
void vdev_interrupt_used(struct vdev *vd, unsigned q);

/* The driver broke the rules on queue q (err from vq_pop): needs reset. */
void vdev_fail(struct vdev *vd, unsigned q, int err);

/* The config space changed (e.g. capacity): re-publish it and tell the driver. */
void vdev_config_changed(struct vdev *vd);

static inline bool vdev_has(const struct vdev *vd, unsigned bit)
{
	return vd->guest_features & VIRTIO_BIT(bit);
}

const char *vdev_phase_name(const struct vdev *vd);
