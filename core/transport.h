/* The virtio-over-IVSHMEM device side ("vdev"): one virtio device on one
 * IVSHMEM link.  See docs/protocol.md §2 for the wire.
 *
 * It owns the transport header, the rings and the life of every request:
 *
 *   port interrupt -> vdev_process(): link state, the write transaction,
 *     then for each kicked queue: pop validated chains into preallocated
 *     request slots -> ops->submit(req)
 *   backend, now or later -> vdev_complete(req, written): used entry
 *     recorded, slot freed
 *   end of the loop iteration (core/tick.h) -> used rings published, at
 *     most one interrupt per queue, starved queues popped again, and every
 *     life-cycle transition finished (reset, queue disable, peer gone,
 *     shutdown) once the requests it waits for are answered
 *
 * A backend is its features, its config space, submit, and optionally
 * cancel (for requests it would hold indefinitely, like a console waiting
 * for input), driver_ok and reset; it never touches a ring.
 *
 * Life cycle: publish RESET, wait for the peer to reset, write the header,
 * publish READY, wait for the peer to be READY, serve.  When the peer leaves
 * READY (driver unbound, cell reset or destroyed) it quiesces, writes a fresh
 * header and stays READY for the next driver: the Linux driver still resets
 * the device and disables its queues through transactions after writing its
 * own STATE 0, and spins on each one while we show READY.  So every
 * transaction is answered whenever we show READY, whatever the peer's state.
 * Features: VERSION_1 and ACCESS_PLATFORM are required.  A driver that
 * breaks the rules gets DEVICE_NEEDS_RESET and a config interrupt; the
 * device then serves nothing until it is reset.
 *
 * Quiescing: a reset (status 0), a queue disable, the peer leaving and
 * shutdown are acknowledged (or carried out) only once no request of the
 * queues concerned is left with the backend, so nothing writes into shared
 * memory afterwards.  The transition starts in vdev_process() (or
 * vdev_shutdown()), the backend is asked to cancel what it holds, and it is
 * finished from the tick: never from inside vdev_complete().  Meanwhile the
 * driver spins on its transaction.  Answers that arrive while a reset or
 * the peer's departure is pending are not written (the driver has dropped
 * those rings); answers during a queue disable or a shutdown are published
 * before the transition completes.
 *
 * Threads: everything here runs on the thread of the loop given at init
 * (the device's "home"), except the queues placed on other loops with
 * vdev_place_queue() ("lanes", core/transport_lane.c): the home keeps the
 * control path (state, transactions, features, reset, queue set-up), and
 * hands a queue that is ready to be served over to its lane by message;
 * from then on only the lane's thread touches the queue's ring, requests,
 * counters and journal entries, until the home asks for it back and the
 * lane, once none of its requests is left with the backend, hands it back.
 * The home forwards the driver's kicks to the lane by message; the lane
 * rings the driver itself (core/port.h, bells).  One value crosses threads
 * outside messages: the device's answer epoch, which the home moves on when
 * answers must no longer be written (a reset, the peer leaving, a broken
 * driver) and a lane checks before it publishes.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "core/journal.h"
#include "core/port.h"
#include "core/busypoll.h"
#include "core/tick.h"
#include "core/virtio_ivshmem.h"
#include "core/virtqueue.h"

#define VDEV_MAX_CONFIG 256    /* bytes of device config space */

struct vdev;
struct vdev_lane;
struct mailbox;

/* One request: a validated descriptor chain of one queue.  The transport
 * owns it from pop to vdev_complete(); the backend reads and writes its
 * buffers in between (readable ones only read: they are the driver's). */
struct vreq {
	struct vdev *vd;
	uint16_t queue;
	uint16_t head;           /* descriptor head, echoed in the used entry */
	unsigned n_out;          /* device-readable buffers: iov[0 .. n_out) */
	unsigned n_in;           /* device-writable buffers: iov[n_out .. n_out + n_in) */
	uint64_t in_bytes;       /* total writable length */
	struct iovec *iov;
	void *ctx;               /* the backend's context of the loop serving the queue
				  * (vdev_place), NULL on the device's own loop */
	uint64_t t_pop;          /* private: CLOCK_MONOTONIC ns of its pop pass (latency) */
	struct vreq *next_free;  /* private */
	/* The backend's area (ops->req_size bytes) follows, aligned. */
	max_align_t priv[];
};

static inline void *vreq_priv(struct vreq *r)
{
	return r->priv;
}

static inline struct vreq *vreq_of_priv(void *priv)
{
	return (struct vreq *)((char *)priv - offsetof(struct vreq, priv));
}

struct vdev_backend_ops {
	size_t req_size;            /* backend bytes per request slot */
	/* Most buffers one chain may have (the slot's iov capacity); longer
	 * chains break the device.  0: the queue size. */
	unsigned max_segments;
	/* Queues whose driver polls for completions (bit q): their interrupt
	 * is decided a little after publishing (see vdev_init). */
	uint64_t polled_queues;
	/* Features the device offers (transport bits are added by the vdev). */
	uint64_t (*features)(void *be);
	/* Fill the device config space (config_size bytes). */
	void (*get_config)(void *be, uint8_t *cfg);
	/* Start req.  Answer it exactly once with vdev_complete(), now or
	 * later, on this thread. */
	void (*submit)(void *be, struct vreq *req);
	/* Optional: queue q is being quiesced: answer at once every request
	 * of it held that would not finish on its own. */
	void (*cancel)(void *be, unsigned q);
	/* Optional: DRIVER_OK was set: the queues are live. */
	void (*driver_ok)(void *be);
	/* Optional: the device was reset (no request left): drop per-device
	 * state. */
	void (*reset)(void *be);
};

enum vdev_phase {
	VDEV_WAIT_PEER_RESET,   /* our state RESET, waiting for the peer's */
	VDEV_WAIT_PEER_READY,   /* header written, our state READY: transactions served */
	VDEV_RUNNING,           /* peer READY too: transactions and queues served */
	VDEV_STOPPED,           /* shut down, or the link is gone */
};

enum vdev_stop_reason { STOP_NONE, STOP_QUEUE_DISABLE, STOP_RESET, STOP_PEER_LEFT,
			STOP_SHUTDOWN };

/* Request latency: from the pop pass that took a request up (core/transport.c
 * says why the pass) to its vdev_complete(), in log2 buckets of nanoseconds.
 * Bucket 0 counts latencies up to 2^VDEV_LAT_SHIFT ns, bucket i > 0 those in
 * (2^(VDEV_LAT_SHIFT+i-1), 2^(VDEV_LAT_SHIFT+i)], the last bucket everything
 * above the bound of the one before: 1.024 us to 68.7 s, then +Inf. */
#define VDEV_LAT_SHIFT    10
#define VDEV_LAT_BUCKETS  28

static inline unsigned vdev_lat_bucket(uint64_t ns)
{
	if (ns <= (1ull << VDEV_LAT_SHIFT))
		return 0;
	unsigned i = 64u - (unsigned)__builtin_clzll(ns - 1) - VDEV_LAT_SHIFT;
	return i < VDEV_LAT_BUCKETS ? i : VDEV_LAT_BUCKETS - 1;
}

/* The upper bound of bucket i < VDEV_LAT_BUCKETS - 1 (the last has none). */
static inline uint64_t vdev_lat_bound_ns(unsigned i)
{
	return 1ull << (VDEV_LAT_SHIFT + i);
}

/* Counters of one queue since the process started (a reset keeps them).
 * Written only by the device's thread; others get copies (daemon/worker.h). */
struct vdev_queue_stats {
	uint64_t kicks, interrupts, requests;
	uint64_t busy_polled;       /* requests a spinning loop took, kicks off (core/busypoll.h) */
	unsigned inflight_max;      /* high-water mark of requests with the backend */
	uint64_t lat[VDEV_LAT_BUCKETS];     /* answered requests by latency */
	uint64_t lat_sum_ns;                /* and their latencies added up */
};

/* Requests popped from one queue per loop iteration while the loop serves
 * that queue alone; the rest are popped in the next iteration, which runs
 * without sleeping.  Small on purpose: the answers of those that completed
 * at once (page-cache hits, in-memory images, the null disk) are published
 * at the end of the iteration, so the driver takes them and refills while
 * we pop the rest - the two sides work in parallel instead of in turns.
 * Measured on an ext4 image in page cache, 4 KiB QD 32, one queue: 123-217k
 * IOPS popping everything at once (the driver waited for all 32 answers, we
 * for its 32 new requests), 379k in chunks of 8, 401k of 4, 135-192k of 16
 * (the driver still took all 32 in one go); 8 costs fewer io_uring_enter
 * and epoll_wait calls per request than 4.  A loop that served several
 * queues in its last iteration already works on one while the others'
 * drivers work: there, the chunks only added iterations, interrupts and
 * CPU (8 disks on 2 loops: 12-25% fewer IOPS), so its queues are popped up
 * to twice their size per iteration, which still bounds how long a driver
 * that keeps refilling holds the loop.
 *
 * A chunk also ends once its requests' buffers reach VDEV_POP_CHUNK_BYTES:
 * at 128 KiB QD 8 the 8 requests were one chunk and the sides took turns
 * again (14-19k IOPS); 2 per chunk gave 34k (1 per chunk 32k), and 64 KiB
 * QD 8 went from 36-39k to 64k.  Requests of 32 KiB and less are not
 * affected. */
#define VDEV_POP_CHUNK 8
#define VDEV_POP_CHUNK_BYTES (256u << 10)

/* Who serves a queue placed on another loop, as the home sees it. */
enum vdev_owner {
	VDEV_Q_HOME,            /* the home has it (not served) */
	VDEV_Q_LANE,            /* handed to its lane */
	VDEV_Q_RECALLED,        /* asked back, not yet handed back */
};

/* A loop that can serve queues: a worker's tick, its mailbox and the
 * backend's context there (vreq.ctx: blk's io engine of that loop). */
struct vdev_place {
	struct tick *tick;
	struct mailbox *mb;
	void *ctx;
};

struct vdev_queue {
	uint16_t max_size;
	uint16_t device_vector;     /* the driver kicks us on this vector */
	uint16_t size;
	uint16_t driver_vector;     /* we interrupt the driver on this vector */
	uint16_t enable;
	uint64_t desc, driver, device;
	struct vq vq;
	/* Requests of this queue. */
	struct vreq *free;          /* free slots */
	unsigned inflight;          /* with the backend */
	bool starved;               /* stopped popping for want of a slot or budget */
	bool dirty;                 /* used entries recorded, not yet published */
	bool polled;                /* interrupt decided late (ops->polled_queues) */
	bool irq_pending;           /* a late decision is due */
	struct vdev_lane *lane;     /* NULL: served on the device's loop */
	enum vdev_owner owner;      /* lane queues: the home's view */
	bool replay;                /* lane queues: execute the journal's requests first */
	uint16_t *batch;            /* heads answered since the last publish (journal) */
	unsigned nbatch;
	struct vdev_queue_stats stats;
	struct vdev *vd;
	struct busypoll_source spin;    /* while served at home, on the home's loop */
	uint64_t busy_mark;             /* tick_count_busy, on the serving loop's tick */
	uint64_t popped_in;             /* tick_iteration() of its last pop there */
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
	struct tick *tick;
	uint32_t device_id;
	size_t config_size;
	uint32_t hdr_size;

	enum vdev_phase phase;
	enum vdev_stop_reason stopping;     /* quiesce in progress */
	unsigned stop_queue;                /* STOP_QUEUE_DISABLE: which */
	bool txn_held;                      /* the driver's transaction waits for the quiesce */
	void (*on_stopped)(struct vdev *vd, void *arg);
	void *on_stopped_arg;

	uint64_t host_features;
	uint64_t guest_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint8_t status;
	bool broken;
	uint32_t config_gen;

	unsigned nq;
	struct vdev_queue *q;
	unsigned inflight;                  /* over all queues */
	struct tick_item tick_item;
	bool in_tick;                       /* tick_run() is running */
	unsigned paused;                    /* vdev_pause_reason bits: nothing new is popped */
	uv_timer_t *irq_timer;              /* late interrupt decisions (own allocation:
					     * it outlives the vdev while libuv closes it) */
	void *slots;                        /* one allocation for every request slot */
	struct journal *journal;            /* NULL: none kept */
	struct vdev_lane *lanes;            /* one per other loop serving queues */
	unsigned nlanes;
	uint32_t epoch;                     /* atomic: answers of lanes valid while unchanged */
	struct mailbox *home_mb;            /* mail to this thread (from lanes) */
	struct vdev_stats stats;
};

/* Bytes of the transport header with config_size bytes of device config:
 * what the header's `size` field says, and what the driver's DMA pool
 * reserves at its start (core/dma_pool.h). */
static inline uint32_t vdev_header_size(size_t config_size)
{
	return (uint32_t)((VI_CONFIG + config_size + 3) & ~(size_t)3);
}

/* Prepare a device on port with nq queues of at most queue_size entries
 * and their request slots, on the loop of tick.  Queues in
 * ops->polled_queues get their used entries published at once and their
 * interrupt decided a millisecond later, by the event-idx rule: a driver
 * that polls (virtio_console's hvc path) has taken them by then and wants
 * none.  Returns -EINVAL when the link cannot carry the header, -ENOMEM. */
int vdev_init(struct vdev *vd, const char *name, struct ivshm_port *port, struct tick *tick,
	      uint32_t device_id, const struct vdev_backend_ops *ops, void *be,
	      size_t config_size, unsigned nq, uint16_t queue_size);
#define VDEV_LANE_MAX_QUEUES 64     /* the queues a lane can serve: 0..63 */

/* Serve queue q on the loop of place (before vdev_start or vdev_adopt);
 * home is the device's own loop (its tick the one given to vdev_init, its
 * mailbox where lanes answer).  place == home serves it there, any other
 * place makes it a lane's (see the top of this file); ctx goes to the queue's requests
 * (vreq.ctx).  Lanes only serve backends whose requests finish on their
 * own (no ops->cancel) and queues that are not polled, numbered below
 * VDEV_LANE_MAX_QUEUES: -EINVAL otherwise, -ENOMEM. */
int vdev_place_queue(struct vdev *vd, unsigned q, const struct vdev_place *home,
		     const struct vdev_place *place);

/* Is queue q served on the loop of tick (its own or a lane's)? */
bool vdev_queue_on(const struct vdev *vd, unsigned q, const struct tick *tick);

/* The thread of place: publish what the lanes there recorded (before a
 * hand-over, like vdev_flush for the home's queues). */
void vdev_flush_place(struct vdev *vd, const struct tick *tick);

/* Requests not yet answered, as far as the home can tell: its own, and
 * one for each queue a lane has not handed back. */
unsigned vdev_busy(const struct vdev *vd);

/* Free it (after it stopped; the loop must run on to close its timer). */
void vdev_destroy(struct vdev *vd);

/* Keep the device's journal in j (core/journal.h) from now on, so that
 * another process can take the device over; before vdev_start/vdev_adopt. */
void vdev_set_journal(struct vdev *vd, struct journal *j);

/* Publish RESET and start the life cycle. */
void vdev_start(struct vdev *vd);

/* Take over a device another process served, from its journal: no STATE
 * write, no reset, no header rewrite.  Requests it had taken and not
 * answered are executed again, the avail rings are scanned from where it
 * stopped, a transaction it left pending is answered, and every enabled
 * queue gets one interrupt (one it was about to send may be lost).
 * Returns 0, or a negative errno with the reason in why when the journal
 * or the link cannot be trusted (then nothing was touched: the caller
 * starts afresh with vdev_start). */
int vdev_adopt(struct vdev *vd, char *why, size_t why_len);

/* An interrupt arrived on vector (IVSHM_VECTOR_UNKNOWN: could be any).  The
 * caller has re-armed INT_CONTROL (ivshm_port_rearm) before. */
void vdev_process(struct vdev *vd, int vector);

/* The link is gone for good (the sim host died): stop at once. */
void vdev_link_down(struct vdev *vd);

/* Stop serving: answer what is in flight, publish RESET, then call
 * on_stopped(vd, arg) from the loop. */
void vdev_shutdown(struct vdev *vd, void (*on_stopped)(struct vdev *vd, void *arg), void *arg);

/* Answer req: a used entry of written bytes (the device-writable length
 * the backend filled).  Records only; publishing and any transition follow
 * at the end of the loop iteration.  The slot is free again on return. */
void vdev_complete(struct vreq *req, uint32_t written);

/* The config space changed (e.g. capacity): re-publish it and tell the driver. */
void vdev_config_changed(struct vdev *vd);

/* Stop (true) or go on (false) popping new requests, for a reason
 * (several may hold at once; popping goes on when none is left); those in
 * flight go on, transactions are answered, queues on other loops come home
 * (vdev_busy() falls to 0 once they have).  For a hand-over: fewer
 * requests left to execute again; for a change of medium: no request of a
 * lane uses the old one. */
enum vdev_pause_reason { VDEV_PAUSE_HANDOVER = 1, VDEV_PAUSE_MEDIUM = 2 };
void vdev_pause_for(struct vdev *vd, unsigned why, bool pause);
static inline void vdev_pause(struct vdev *vd, bool pause)
{
	vdev_pause_for(vd, VDEV_PAUSE_HANDOVER, pause);
}

/* Publish now what vdev_complete() recorded (before a hand-over: answers
 * left unpublished would be executed again by the next process). */
void vdev_flush(struct vdev *vd);

/* Is a driver using the device (DRIVER_OK, peer there, not broken)? */
bool vdev_driver_live(const struct vdev *vd);

static inline bool vdev_has(const struct vdev *vd, unsigned bit)
{
	return vd->guest_features & VIRTIO_BIT(bit);
}

const char *vdev_phase_name(const struct vdev *vd);
