/* The transport's life cycle, queues and requests (see transport.h). */
#include "core/transport_int.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/container_of.h"
#include "core/log.h"
#include "core/shm.h"

#define TRANSPORT_FEATURES (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | \
			    VIRTIO_BIT(VIRTIO_F_ORDER_PLATFORM) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | \
			    VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
/* A polled queue's interrupt is decided this long after publishing. */
#define POLLED_IRQ_DELAY_MS 1

static void process_state(struct vdev *vd);

const char *vdev_phase_name(const struct vdev *vd)
{
	if (vd->phase == VDEV_RUNNING) {
		if (vd->broken)
			return "broken";
		return vd->status & VIRTIO_STATUS_DRIVER_OK ? "running" : "negotiating";
	}
	return vd->phase == VDEV_STOPPED ? "stopped" : "waiting for peer";
}

bool vdev_driver_live(const struct vdev *vd)
{
	return vd->phase == VDEV_RUNNING && !vd->broken && (vd->status & VIRTIO_STATUS_DRIVER_OK);
}

/* Is queue q to be served, as the home sees it? */
static bool queue_open(const struct vdev *vd, const struct vdev_queue *q)
{
	return vdev_driver_live(vd) && !vd->stopping && !vd->paused && q->enable && q->vq.ready;
}

/* May requests be popped from queue q now, on the thread serving it? */
static bool queue_served(const struct vdev *vd, const struct vdev_queue *q)
{
	return q->lane ? vdev_lane_serves(q->lane, (unsigned)(q - vd->q)) : queue_open(vd, q);
}

void vdev_pause_for(struct vdev *vd, unsigned why, bool pause)
{
	unsigned was = vd->paused;
	vd->paused = pause ? was | why : was & ~why;
	if (!was && vd->paused)
		vdev_lanes_recall(vd, -1, false);
	if (was && !vd->paused)
		for (unsigned i = 0; i < vd->nq; i++)
			vdev_scan_queue(vd, i);
}

/* May answers for queue q be written?  Not after a reset or the peer's
 * departure began (the driver dropped those rings); yes while the queue is
 * being disabled or the daemon shuts down (the driver waits for them).  A
 * lane's: while the epoch it was handed the queue in lasts. */
static bool queue_answerable(const struct vdev *vd, const struct vdev_queue *q)
{
	if (q->lane)
		return vdev_lane_answers(q->lane, (unsigned)(q - vd->q));
	return vdev_driver_live(vd) && q->enable && q->vq.ready &&
	       (vd->stopping == STOP_NONE || vd->stopping == STOP_QUEUE_DISABLE ||
		vd->stopping == STOP_SHUTDOWN);
}

/* Run the tick of the thread serving q at the end of this iteration. */
static void defer_queue(struct vdev *vd, struct vdev_queue *q)
{
	if (q->lane)
		vdev_lane_defer(q->lane);
	else
		tick_defer(vd->tick, &vd->tick_item);
}

unsigned vdev_busy(const struct vdev *vd)
{
	return vd->inflight + vdev_lanes_out(vd, -1);
}

/* The vector the driver kicks queue q on, from what the link really has:
 * one per queue when there are enough, else a shared one, else 0 (a single
 * vector, e.g. INTx). */
static uint16_t choose_device_vector(const struct vdev *vd, unsigned q)
{
	uint32_t v = vd->port->vectors;
	if (v >= 1 + vd->nq)
		return (uint16_t)(1 + q);
	return v >= 2 ? 1 : 0;
}

/* ---- requests ----------------------------------------------------------- */

/* The latency clock (vdev_queue_stats): vDSO, no system call. */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A request was taken up: count it (the slot's fields are set). */
static void took(struct vdev *vd, struct vdev_queue *q, struct vreq *req, uint64_t t)
{
	req->t_pop = t;
	q->inflight++;
	if (!q->lane)
		vd->inflight++;
	q->stats.requests++;
	if (q->inflight > q->stats.inflight_max)
		q->stats.inflight_max = q->inflight;
}

void vdev_fail_ring(struct vdev *vd, unsigned q, int err)
{
	if (vd->broken)
		return;
	const char *why = err == -EOVERFLOW ? "avail index ran ahead of the ring"
			: err == -ERANGE ? "index or buffer out of range"
			: err == -ELOOP ? "descriptor chain loops"
			: err == -EMLINK ? "nested indirect table"
			: err == -ENOBUFS ? "too many buffers in one request"
			: err == -EINVAL ? "malformed descriptor chain"
			: err == -EBUSY ? "a descriptor made available again while in use"
			: strerror(-err);
	log_warn("%s: driver broke the ring protocol on queue %u (%s); device needs reset",
		 vd->name, q, why);
	vdev_mark_broken(vd);
}

/* The driver broke the rules on queue qi: the home decides (a lane tells it). */
static void fail_ring(struct vdev *vd, unsigned qi, int err)
{
	if (vd->q[qi].lane)
		vdev_lane_fault(vd->q[qi].lane, qi, err);
	else
		vdev_fail_ring(vd, qi, err);
}

/* Pop and submit what queue qi has: a chunk (VDEV_POP_CHUNK requests or
 * VDEV_POP_CHUNK_BYTES of buffers) when the loop serves this queue alone,
 * twice the ring when it served several in the last iteration (see
 * VDEV_POP_CHUNK).  Returns true when work is left that must
 * wait: no free slot, or the budget is spent. */
bool vdev_pop_queue(struct vdev *vd, unsigned qi)
{
	struct vdev_queue *q = &vd->q[qi];
	struct tick *tick = vdev_queue_tick(vd, q);
	bool chunked = tick->busy_last <= 1;
	unsigned budget = chunked ? VDEV_POP_CHUNK : 2u * q->vq.num;
	uint64_t bytes = 0;             /* of the requests popped: the chunk's size */
	bool counted = false;
	unsigned cap = vd->ops->max_segments ? vd->ops->max_segments : q->max_size;
	/* One clock read per pass, not per request: the time the pass spends
	 * submitting the requests before one is time that one waited here.
	 * (One the driver adds during the pass is charged from its start;
	 * the budget bounds how long ago that is.) */
	uint64_t t = 0;
	while (queue_served(vd, q)) {
		if (!q->free)
			return true;
		if (budget-- == 0 || (chunked && bytes >= VDEV_POP_CHUNK_BYTES))
			return true;
		struct vreq *req = q->free;
		struct vq_elem e;
		int r = vq_pop(&q->vq, &e, req->iov, cap);
		if (r < 0) {
			fail_ring(vd, qi, r);
			return false;
		}
		if (r == 0) {
			if (vq_enable_notify(&q->vq))
				continue;   /* more arrived while we asked for a kick */
			return false;
		}
		if (vd->journal) {
			/* Taken: from here on a new process executes it again
			 * (core/journal.h).  A head made available twice while
			 * in flight would be counted once. */
			uint32_t *flag = &journal_inflight(vd->journal, qi)[e.head];
			if (*flag) {
				fail_ring(vd, qi, -EBUSY);
				return false;
			}
			*flag = JOURNAL_TAKEN | (uint16_t)(q->vq.last_avail - 1);
			journal_order();
		}
		if (!counted) {
			tick_count_busy(tick, &q->busy_mark);
			q->popped_in = tick_iteration(tick);
			counted = true;
		}
		q->free = req->next_free;
		req->head = e.head;
		req->n_out = e.n_out;
		req->n_in = e.n_in;
		req->in_bytes = e.in_bytes;
		bytes += e.in_bytes + e.out_bytes;
		if (!t)
			t = now_ns();
		took(vd, q, req, t);
		vd->ops->submit(vd->be, req);
	}
	return false;
}

void vdev_scan_queue(struct vdev *vd, unsigned qi)
{
	if (vd->q[qi].lane) {
		if (queue_open(vd, &vd->q[qi]))
			vdev_lane_go(vd, qi);
		return;
	}
	if (vdev_pop_queue(vd, qi)) {
		vd->q[qi].starved = true;
		tick_defer(vd->tick, &vd->tick_item);
	}
}

/* Busy polling (core/busypoll.h) of a queue served at home: what its kick
 * would do, for the driver's requests that arrive while the loop spins.
 * A starved queue is the tick's: it pops the next chunk in the next
 * iteration, after this one's answers. */
static bool spin_ready(struct busypoll_source *s)
{
	struct vdev_queue *q = container_of(s, struct vdev_queue, spin);
	return !q->lane && q->free && !q->starved && queue_open(q->vd, q) &&
	       vq_has_work(&q->vq);
}

static bool spin_run(struct busypoll_source *s)
{
	struct vdev_queue *q = container_of(s, struct vdev_queue, spin);
	uint64_t before = q->stats.requests;
	vdev_scan_queue(q->vd, (unsigned)(q - q->vd->q));
	return vdev_count_polled(q, before);
}

/* While the loop spins it watches the ring: the driver need not kick. */
static bool spin_quiet(struct busypoll_source *s)
{
	struct vdev_queue *q = container_of(s, struct vdev_queue, spin);
	if (q->lane || !queue_open(q->vd, q))
		return false;
	vq_notify_off(&q->vq);
	return true;
}

static bool spin_arm(struct busypoll_source *s)
{
	struct vdev_queue *q = container_of(s, struct vdev_queue, spin);
	return vq_notify_on(&q->vq);
}

void vdev_complete(struct vreq *req, uint32_t written)
{
	struct vdev *vd = req->vd;
	struct vdev_queue *q = &vd->q[req->queue];
	uint64_t ns = now_ns() - req->t_pop;
	q->stats.lat[vdev_lat_bucket(ns)]++;
	q->stats.lat_sum_ns += ns;
	if (queue_answerable(vd, q)) {
		/* A backend never reports more than the driver gave it room for. */
		if (written > req->in_bytes)
			written = (uint32_t)req->in_bytes;
		vq_push(&q->vq, req->head, written);
		q->dirty = true;
		if (vd->journal)
			q->batch[q->nbatch++] = req->head;
	} else if (vd->journal) {
		/* Never published: done as far as anyone will know. */
		journal_inflight(vd->journal, req->queue)[req->head] = 0;
	}
	req->next_free = q->free;
	q->free = req;
	q->inflight--;
	if (!q->lane)
		vd->inflight--;
	/* From inside its own tick (answered at once while it pops) the tick
	 * publishes it before it ends. */
	if (!(q->lane ? vdev_lane_in_tick(q->lane) : vd->in_tick))
		defer_queue(vd, q);
}

/* ---- interrupts --------------------------------------------------------- */

static void interrupt_if_wanted(struct vdev *vd, unsigned qi)
{
	struct vdev_queue *q = &vd->q[qi];
	if (queue_answerable(vd, q) && vq_want_interrupt(&q->vq)) {
		q->stats.interrupts++;
		if (q->lane)
			vdev_lane_notify(q->lane, qi);
		else
			vdev_notify_driver(vd, VI_QUEUE_EVENT, q->driver_vector);
	}
}

static void irq_timer_cb(uv_timer_t *t)
{
	struct vdev *vd = t->data;
	for (unsigned i = 0; i < vd->nq; i++) {
		if (!vd->q[i].irq_pending)
			continue;
		vd->q[i].irq_pending = false;
		interrupt_if_wanted(vd, i);
	}
}

/* Make a queue's answers visible; at most one interrupt for all of them. */
/* The journal's side of publishing (order: core/journal.h).  visible:
 * used->idx was stored; else the answers were dropped (a reset or the peer
 * leaving began) and the ring still shows the old index, which `published`
 * must keep saying, or a new process would find it ahead of the ring. */
static void journal_published(struct vdev *vd, unsigned qi, bool visible)
{
	struct vdev_queue *q = &vd->q[qi];
	if (!vd->journal)
		return;
	journal_order();
	uint32_t *flags = journal_inflight(vd->journal, qi);
	for (unsigned i = 0; i < q->nbatch; i++)
		flags[q->batch[i]] = 0;
	q->nbatch = 0;
	journal_order();
	if (visible)
		vd->journal->published[qi] = q->vq.used_idx;
	journal_order();
}

void vdev_publish(struct vdev *vd, unsigned qi)
{
	struct vdev_queue *q = &vd->q[qi];
	q->dirty = false;
	if (!queue_answerable(vd, q)) {
		journal_published(vd, qi, false);   /* these will never be visible */
		return;
	}
	vq_publish_idx(&q->vq);
	journal_published(vd, qi, true);
	if (!q->polled) {
		interrupt_if_wanted(vd, qi);
		return;
	}
	/* A polling driver takes the entries itself: an interrupt sent now
	 * would find nothing, and Linux disables an IRQ after 100,000 such
	 * (docs/protocol.md §4).  Decide when it has had the time. */
	q->irq_pending = true;
	if (vd->irq_timer && !uv_is_active((uv_handle_t *)vd->irq_timer))
		uv_timer_start(vd->irq_timer, irq_timer_cb, POLLED_IRQ_DELAY_MS, 0);
}

void vdev_flush(struct vdev *vd)
{
	for (unsigned i = 0; i < vd->nq; i++)
		if (!vd->q[i].lane && vd->q[i].dirty)
			vdev_publish(vd, i);
}

/* ---- life cycle --------------------------------------------------------- */

/* Requests (and lanes' queues) the pending stop still waits for. */
static unsigned stop_waits_for(const struct vdev *vd)
{
	if (vd->stopping == STOP_QUEUE_DISABLE) {
		if (vd->stop_queue >= vd->nq)
			return 0;
		const struct vdev_queue *q = &vd->q[vd->stop_queue];
		return q->lane ? vdev_lanes_out(vd, (int)vd->stop_queue) : q->inflight;
	}
	return vdev_busy(vd);
}

static void finish_stop(struct vdev *vd)
{
	enum vdev_stop_reason why = vd->stopping;
	vd->stopping = STOP_NONE;
	switch (why) {
	case STOP_QUEUE_DISABLE: {
		struct vdev_queue *q = &vd->q[vd->stop_queue];
		q->enable = 0;
		q->vq.ready = false;
		q->starved = q->irq_pending = false;
		vd->txn_held = false;
		vdev_ack_transaction(vd);
		/* The other queues were not popped meanwhile. */
		for (unsigned i = 0; i < vd->nq; i++)
			vdev_scan_queue(vd, i);
		break;
	}
	case STOP_RESET:
		vdev_reset_state(vd);
		vdev_load_window(vd);
		shm_st8(vd->port->rw, VI_CONFIG_EVENT, 0);
		shm_st8(vd->port->rw, VI_QUEUE_EVENT, 0);
		shm_st32(vd->port->rw, VI_DEVICE_FEATURES, (uint32_t)vd->host_features);
		vd->txn_held = false;
		vdev_ack_transaction(vd);
		break;
	case STOP_PEER_LEFT:
		/* We stay READY: the Linux driver writes its STATE 0 first on
		 * remove and then still resets the device and disables each
		 * queue through transactions, spinning on each one for as long
		 * as we show READY.  A fresh header answers them all (a pending
		 * one is cleared with it) and is what the next driver finds. */
		vdev_write_header(vd);
		vd->txn_held = false;
		vd->phase = VDEV_WAIT_PEER_READY;
		vdev_journal_save(vd);
		log_info("%s: peer left; waiting for a new one", vd->name);
		process_state(vd);
		break;
	case STOP_SHUTDOWN:
		if (vd->phase != VDEV_STOPPED) {
			vdev_reset_state(vd);
			vd->phase = VDEV_STOPPED;
			vdev_journal_save(vd);
			ivshm_port_set_state(vd->port, VIRTIO_STATE_RESET);
		}
		vd->txn_held = false;
		if (vd->on_stopped)
			vd->on_stopped(vd, vd->on_stopped_arg);
		break;
	case STOP_NONE:
		break;
	}
}

void vdev_begin_stop(struct vdev *vd, enum vdev_stop_reason why, unsigned queue)
{
	/* A stronger reason takes over a pending weaker one. */
	if (vd->stopping && why <= vd->stopping)
		return;
	vd->stopping = why;
	vd->stop_queue = queue;
	/* After a reset began or the peer left, the driver has dropped the
	 * rings: lanes must not write answers into them any more. */
	vdev_lanes_recall(vd, why == STOP_QUEUE_DISABLE ? (int)queue : -1,
			  why == STOP_RESET || why == STOP_PEER_LEFT);
	if (vd->ops->cancel) {
		for (unsigned i = 0; i < vd->nq; i++)
			if (vd->q[i].inflight && (why != STOP_QUEUE_DISABLE || i == queue))
				vd->ops->cancel(vd->be, i);
	}
	tick_defer(vd->tick, &vd->tick_item);
}

/* End of the loop iteration: publish, go on with starved queues, and finish
 * a stop whose requests are all answered. */
static bool tick_run(struct tick_item *it)
{
	struct vdev *vd = container_of(it, struct vdev, tick_item);
	bool again = false;
	vd->in_tick = true;
	for (unsigned i = 0; i < vd->nq; i++)
		if (!vd->q[i].lane && vd->q[i].dirty)
			vdev_publish(vd, i);
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		if (q->lane || !q->starved || !q->free)
			continue;
		/* One chunk per iteration: the next after this one's answers. */
		if (!vdev_popped_this_iteration(vd->tick, q))
			q->starved = vdev_pop_queue(vd, i);
		again |= q->starved;
	}
	/* What the pops answered at once goes out in this iteration too. */
	for (unsigned i = 0; i < vd->nq; i++)
		if (!vd->q[i].lane && vd->q[i].dirty)
			vdev_publish(vd, i);
	vd->in_tick = false;
	if (vd->stopping && stop_waits_for(vd) == 0)
		finish_stop(vd);
	return again;
}

static void process_state(struct vdev *vd)
{
	uint32_t peer = ivshm_port_peer_state(vd->port);
	switch (vd->phase) {
	case VDEV_WAIT_PEER_RESET:
		if (peer != VIRTIO_STATE_RESET)
			return;
		vdev_write_header(vd);
		vd->phase = VDEV_WAIT_PEER_READY;
		vdev_journal_save(vd);
		ivshm_port_set_state(vd->port, VIRTIO_STATE_READY);
		log_debug("%s: header written, waiting for the peer", vd->name);
		/* fall through */
	case VDEV_WAIT_PEER_READY:
		if (ivshm_port_peer_state(vd->port) != VIRTIO_STATE_READY)
			return;
		vd->phase = VDEV_RUNNING;
		vdev_journal_save(vd);
		vd->stats.peer_sessions++;
		log_info("%s: peer connected on %s", vd->name, vd->port->name);
		/* The driver may have set DRIVER_OK and kicked before we saw its
		 * STATE change (we read the state before the transaction). */
		for (unsigned i = 0; i < vd->nq; i++)
			vdev_scan_queue(vd, i);
		return;
	case VDEV_RUNNING:
		if (peer != VIRTIO_STATE_READY)
			vdev_begin_stop(vd, STOP_PEER_LEFT, 0);
		return;
	case VDEV_STOPPED:
		return;
	}
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
		vdev_process_transaction(vd);
		if (vd->phase != VDEV_RUNNING)
			return;
	}
	/* Through uio (vector unknown) or on vector 0 every queue may have
	 * been kicked; else only the queues kicked on this vector. */
	for (unsigned i = 0; i < vd->nq; i++) {
		if (vector > 0 && vd->q[i].device_vector != vector)
			continue;
		if (!queue_open(vd, &vd->q[i]))
			continue;
		if (!vd->q[i].lane)
			vd->q[i].stats.kicks++;     /* a lane counts its own */
		vdev_scan_queue(vd, i);
	}
}

static uint64_t host_features(struct vdev *vd)
{
	return (vd->ops->features(vd->be) & ~TRANSPORT_FEATURES) | TRANSPORT_FEATURES;
}

void vdev_start(struct vdev *vd)
{
	vd->host_features = host_features(vd);
	vd->phase = VDEV_WAIT_PEER_RESET;
	vdev_reset_state(vd);
	vdev_journal_save(vd);
	ivshm_port_set_state(vd->port, VIRTIO_STATE_RESET);
	ivshm_port_rearm(vd->port);
	process_state(vd);
}

void vdev_link_down(struct vdev *vd)
{
	if (vd->phase == VDEV_STOPPED)
		return;
	log_err("%s: link %s is gone; device stopped", vd->name, vd->port->name);
	vd->phase = VDEV_STOPPED;
	vdev_lanes_recall(vd, -1, true);
	/* A stop in progress can only end in shutdown now. */
	if (vd->stopping != STOP_SHUTDOWN)
		vd->stopping = STOP_NONE;
	vd->txn_held = false;
	if (vd->ops->cancel)
		for (unsigned i = 0; i < vd->nq; i++)
			if (vd->q[i].inflight)
				vd->ops->cancel(vd->be, i);
}

void vdev_shutdown(struct vdev *vd, void (*on_stopped)(struct vdev *vd, void *arg), void *arg)
{
	vd->on_stopped = on_stopped;
	vd->on_stopped_arg = arg;
	vdev_begin_stop(vd, STOP_SHUTDOWN, 0);
}

void vdev_config_changed(struct vdev *vd)
{
	if (vd->phase == VDEV_STOPPED || vd->phase == VDEV_WAIT_PEER_RESET)
		return;
	vdev_write_config(vd);
	if (vdev_driver_live(vd))
		vdev_notify_driver(vd, VI_CONFIG_EVENT, 0);
}

/* ---- journal and take-over --------------------------------------------- */

void vdev_set_journal(struct vdev *vd, struct journal *j)
{
	vd->journal = j;
}

void vdev_journal_save(struct vdev *vd)
{
	if (!vd->journal)
		return;
	struct journal_transport t = {
		.guest_features = vd->guest_features, .host_features = vd->host_features,
		.phase = vd->phase, .status = vd->status, .dev_feat_sel = vd->dev_feat_sel,
		.drv_feat_sel = vd->drv_feat_sel, .queue_sel = vd->queue_sel,
		.config_gen = vd->config_gen, .broken = vd->broken, .nq = vd->nq,
	};
	for (unsigned i = 0; i < vd->nq; i++) {
		const struct vdev_queue *q = &vd->q[i];
		t.q[i] = (struct journal_queue){ .size = q->size, .driver_vector = q->driver_vector,
						 .enable = q->enable, .desc = q->desc,
						 .driver = q->driver, .device = q->device };
	}
	journal_save_transport(vd->journal, &t);
}

void vdev_journal_reset_queue(struct vdev *vd, unsigned qi)
{
	if (!vd->journal)
		return;
	memset(journal_inflight(vd->journal, qi), 0, vd->journal->qmax * sizeof(uint32_t));
	vd->q[qi].nbatch = 0;
	journal_order();
	vd->journal->published[qi] = 0;
	journal_order();
}

/* The heads the journal has taken on queue qi, oldest avail position
 * first, into heads[] (num entries of room); last_avail: the position after
 * the newest.  A request may stay in flight while thousands of others pass
 * it, so the age of a position is anything from 1 to 65535; two heads with
 * one position, or one at last_avail, are corrupt (-EBADMSG).  Returns how
 * many. */
struct aged { uint16_t age, head; };

static int older_first(const void *a, const void *b)
{
	return (int)((const struct aged *)b)->age - (int)((const struct aged *)a)->age;
}

static int taken_in_order(const uint32_t *flags, uint16_t num, uint16_t last_avail,
			  uint16_t *heads)
{
	struct aged *v = malloc((size_t)num * sizeof(*v));
	if (!v)
		return -ENOMEM;
	int n = 0;
	for (unsigned h = 0; h < num; h++)
		if (flags[h])
			v[n++] = (struct aged){ (uint16_t)(last_avail - (uint16_t)flags[h]),
						(uint16_t)h };
	qsort(v, (size_t)n, sizeof(*v), older_first);
	int r = n;
	for (int i = 0; i < n; i++) {
		if (v[i].age == 0 || (i && v[i].age == v[i - 1].age))
			r = -EBADMSG;
		heads[i] = v[i].head;
	}
	free(v);
	return r;
}

/* Queue qi as the journal left it: which requests were taken and not
 * answered (executed again) and where popping goes on (core/journal.h). */
static int adopt_queue(struct vdev *vd, unsigned qi, char *why, size_t why_len)
{
	struct vdev_queue *q = &vd->q[qi];
	struct journal *j = vd->journal;
	uint32_t *flags = journal_inflight(j, qi);
	uint16_t num = q->vq.num, pub = j->published[qi], used = q->vq.used_idx;
	if ((uint16_t)(used - pub) > num) {
		snprintf(why, why_len, "queue %u: the ring's used index %u is not within %u of the "
			 "journal's %u", qi, used, num, pub);
		return -EBADMSG;
	}
	for (unsigned h = num; h < j->qmax; h++)
		if (flags[h]) {
			snprintf(why, why_len, "queue %u: head %u in flight in a ring of %u", qi, h, num);
			return -EBADMSG;
		}
	for (uint16_t i = pub; i != used; i++) {
		uint16_t head = vq_used_head(&q->vq, i);
		if (head >= num) {
			snprintf(why, why_len, "queue %u: used entry %u names head %u", qi, i, head);
			return -EBADMSG;
		}
		flags[head] = 0;        /* published before the old process died */
	}
	unsigned taken = 0;
	for (unsigned h = 0; h < num; h++)
		taken += flags[h] != 0;
	uint16_t *heads = malloc((size_t)num * sizeof(*heads));
	int r = heads ? taken_in_order(flags, num, (uint16_t)(used + taken), heads) : -ENOMEM;
	free(heads);
	if (r < 0) {
		snprintf(why, why_len, r == -ENOMEM ? "out of memory" :
			 "queue %u: the journal's in-flight positions are not %u distinct ones "
			 "before %u", qi, taken, (uint16_t)(used + taken));
		return r;
	}
	j->published[qi] = used;
	q->vq.last_avail = (uint16_t)(used + taken);
	return 0;
}

/* Execute again what the journal says was taken and not answered, in the
 * order the driver made it available. */
void vdev_replay_queue(struct vdev *vd, unsigned qi)
{
	struct vdev_queue *q = &vd->q[qi];
	uint16_t num = q->vq.num;
	uint16_t *heads = malloc((size_t)num * sizeof(*heads));
	int n = heads ? taken_in_order(journal_inflight(vd->journal, qi), num, q->vq.last_avail,
				       heads) : -ENOMEM;
	if (n < 0) {
		free(heads);
		fail_ring(vd, qi, n);
		return;
	}
	unsigned cap = vd->ops->max_segments ? vd->ops->max_segments : q->max_size;
	uint64_t t = now_ns();
	for (int k = 0; k < n; k++) {
		struct vreq *req = q->free;
		struct vq_elem e;
		int r = req ? vq_chain(&q->vq, heads[k], &e, req->iov, cap) : -ENOBUFS;
		if (r < 0) {
			fail_ring(vd, qi, r);
			break;
		}
		q->free = req->next_free;
		req->head = e.head;
		req->n_out = e.n_out;
		req->n_in = e.n_in;
		req->in_bytes = e.in_bytes;
		took(vd, q, req, t);
		vd->ops->submit(vd->be, req);
	}
	free(heads);
}

int vdev_adopt(struct vdev *vd, char *why, size_t why_len)
{
	struct journal_transport t;
	if (!vd->journal) {
		snprintf(why, why_len, "no journal");
		return -ENOENT;
	}
	if (journal_load_transport(vd->journal, &t) < 0) {
		snprintf(why, why_len, "the journal's transport state fails its checksums");
		return -EBADMSG;
	}
	uint64_t hf = host_features(vd);
	if (t.host_features != hf || (t.guest_features & ~hf) || t.nq != vd->nq) {
		snprintf(why, why_len, "the device now offers features 0x%llx, the journal says "
			 "0x%llx (guest 0x%llx)", (unsigned long long)hf,
			 (unsigned long long)t.host_features, (unsigned long long)t.guest_features);
		return -ESTALE;
	}
	if (t.phase == VDEV_WAIT_PEER_RESET) {
		/* Nothing negotiated yet (no cell there, or one that has not
		 * reset): go on waiting, as a fresh start would, without showing
		 * the link a new RESET. */
		if (ivshm_port_own_state(vd->port) != VIRTIO_STATE_RESET) {
			snprintf(why, why_len, "the link no longer shows us RESET");
			return -ESTALE;
		}
		vd->host_features = hf;
		vd->phase = VDEV_WAIT_PEER_RESET;
		vdev_reset_state(vd);
		vdev_journal_save(vd);
		log_info("%s: taken over on %s (%s)", vd->name, vd->port->name, vdev_phase_name(vd));
		ivshm_port_rearm(vd->port);
		process_state(vd);
		return 0;
	}
	if (t.phase != VDEV_WAIT_PEER_READY && t.phase != VDEV_RUNNING) {
		snprintf(why, why_len, "the device was not serving (phase %u)", t.phase);
		return -ENOENT;
	}
	/* Our state must still be READY: a link that was reset meanwhile
	 * (the peer saw us go) is not the one the journal describes. */
	if (ivshm_port_own_state(vd->port) != VIRTIO_STATE_READY) {
		snprintf(why, why_len, "the link no longer shows us READY");
		return -ESTALE;
	}
	vd->host_features = hf;
	vd->guest_features = t.guest_features;
	vd->status = (uint8_t)t.status;
	vd->dev_feat_sel = t.dev_feat_sel;
	vd->drv_feat_sel = t.drv_feat_sel;
	vd->queue_sel = t.queue_sel;
	vd->config_gen = t.config_gen & ~1u;
	vd->broken = t.broken != 0;
	vd->phase = (enum vdev_phase)t.phase;
	bool live = vdev_driver_live(vd);
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		const struct journal_queue *jq = &t.q[i];
		q->size = jq->size;
		q->driver_vector = jq->driver_vector;
		q->desc = jq->desc;
		q->driver = jq->driver;
		q->device = jq->device;
		q->enable = 0;
		if (!jq->enable)
			continue;
		int r = vq_adopt(&q->vq, vd->port->rw, vd->hdr_size, vd->port->rw_size, q->size,
				 q->max_size, q->desc, q->driver, q->device,
				 vdev_has(vd, VIRTIO_F_EVENT_IDX), vdev_has(vd, VIRTIO_F_INDIRECT_DESC));
		if (r == 0 && live)
			r = adopt_queue(vd, i, why, why_len);
		else if (r < 0)
			snprintf(why, why_len, "queue %u: the journal's ring fails the checks", i);
		if (r < 0) {
			vdev_reset_state(vd);
			vd->phase = VDEV_STOPPED;
			return r < 0 && r != -EBADMSG ? -EBADMSG : r;
		}
		q->enable = 1;
	}
	log_info("%s: taken over on %s (%s)", vd->name, vd->port->name, vdev_phase_name(vd));
	vdev_journal_save(vd);
	ivshm_port_rearm(vd->port);
	for (unsigned i = 0; live && i < vd->nq; i++) {
		if (!vd->q[i].enable)
			continue;
		if (vd->q[i].lane) {
			/* by the lane, handed the queue now: before a pending
			 * transaction (a queue disable, a reset) waits for it */
			vd->q[i].replay = true;
			vdev_lane_go(vd, i);
		} else {
			vdev_replay_queue(vd, i);
		}
	}
	/* Whatever happened while nobody served: state, a pending transaction,
	 * kicks (interrupts are not latched). */
	vdev_process(vd, IVSHM_VECTOR_UNKNOWN);
	for (unsigned i = 0; live && i < vd->nq; i++)
		if (vd->q[i].enable)
			vdev_notify_driver(vd, VI_QUEUE_EVENT, vd->q[i].driver_vector);
	return 0;
}

/* ---- set-up ------------------------------------------------------------- */

static size_t slot_stride(const struct vdev_backend_ops *ops)
{
	size_t a = alignof(max_align_t);
	return (sizeof(struct vreq) + ops->req_size + a - 1) / a * a;
}

static void timer_closed(uv_handle_t *h)
{
	free(h);
}

int vdev_init(struct vdev *vd, const char *name, struct ivshm_port *port, struct tick *tick,
	      uint32_t device_id, const struct vdev_backend_ops *ops, void *be,
	      size_t config_size, unsigned nq, uint16_t queue_size)
{
	memset(vd, 0, sizeof(*vd));
	snprintf(vd->name, sizeof(vd->name), "%s", name);
	vd->port = port;
	vd->tick = tick;
	vd->ops = ops;
	vd->be = be;
	vd->device_id = device_id;
	vd->config_size = config_size;
	vd->hdr_size = vdev_header_size(config_size);
	vd->phase = VDEV_STOPPED;
	vd->tick_item.run = tick_run;
	if (vd->hdr_size > port->rw_size / 2 || nq == 0 || nq > 64 || queue_size == 0 ||
	    (queue_size & (queue_size - 1)) || queue_size > VQ_MAX_SIZE ||
	    config_size > VDEV_MAX_CONFIG)
		return -EINVAL;
	vd->nq = nq;
	vd->q = calloc(nq, sizeof(*vd->q));
	/* Every request slot up front: a queue never allocates while serving. */
	unsigned cap = ops->max_segments ? ops->max_segments : queue_size;
	size_t stride = slot_stride(ops), per_slot = stride + (size_t)cap * sizeof(struct iovec);
	vd->slots = calloc((size_t)nq * queue_size, per_slot + sizeof(uint16_t));
	vd->irq_timer = malloc(sizeof(*vd->irq_timer));
	if (!vd->q || !vd->slots || !vd->irq_timer) {
		free(vd->irq_timer);
		vd->irq_timer = NULL;
		vdev_destroy(vd);
		return -ENOMEM;
	}
	uv_timer_init(tick->loop, vd->irq_timer);
	vd->irq_timer->data = vd;
	uint8_t *base = vd->slots;
	struct iovec *iovs = (struct iovec *)(base + (size_t)nq * queue_size * stride);
	uint16_t *batches = (uint16_t *)(iovs + (size_t)nq * queue_size * cap);
	for (unsigned i = 0; i < nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		q->max_size = queue_size;
		q->device_vector = choose_device_vector(vd, i);
		q->polled = i < 64 && (ops->polled_queues >> i & 1);
		q->batch = batches + (size_t)i * queue_size;
		q->vd = vd;
		q->spin = (struct busypoll_source){ .ready = spin_ready, .run = spin_run,
						    .quiet = spin_quiet, .arm = spin_arm };
		if (tick->busypoll)
			busypoll_add(tick->busypoll, &q->spin);
		for (unsigned k = queue_size; k-- > 0;) {
			size_t n = (size_t)i * queue_size + k;
			struct vreq *r = (struct vreq *)(base + n * stride);
			r->vd = vd;
			r->queue = (uint16_t)i;
			r->iov = iovs + n * cap;
			r->next_free = q->free;
			q->free = r;
		}
	}
	return 0;
}

void vdev_set_queue_ctx(struct vdev *vd, unsigned qi, void *ctx)
{
	size_t stride = slot_stride(vd->ops);
	uint16_t n = vd->q[qi].max_size;
	for (unsigned k = 0; k < n; k++)
		((struct vreq *)((uint8_t *)vd->slots + ((size_t)qi * n + k) * stride))->ctx = ctx;
}

void vdev_destroy(struct vdev *vd)
{
	vdev_lanes_free(vd);
	if (vd->tick)
		tick_cancel(vd->tick, &vd->tick_item);
	for (unsigned i = 0; vd->q && vd->tick && vd->tick->busypoll && i < vd->nq; i++)
		busypoll_remove(vd->tick->busypoll, &vd->q[i].spin);
	if (vd->irq_timer) {
		vd->irq_timer->data = NULL;
		uv_close((uv_handle_t *)vd->irq_timer, timer_closed);
		vd->irq_timer = NULL;
	}
	free(vd->q);
	vd->q = NULL;
	free(vd->slots);
	vd->slots = NULL;
}
