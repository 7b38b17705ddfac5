/* Lanes: a device's queues served on other loops (see transport.h).
 *
 * A queue placed on another loop belongs to the home while it is not
 * served, and to its lane from `start` until the lane sends it `back`:
 *
 *   home                                  lane (the other loop's thread)
 *   queue ready to serve:  start  ---->   serves it: pops, submits, answers,
 *   driver kicks:          kick   ---->     publishes, rings the driver
 *   stop, pause, reset:    stop   ---->   pops no more; once no request of
 *                                         it is left with the backend:
 *   owner HOME again       <----  back    (its answers published)
 *   broken ring            <----  fault   (pops no more; the home decides)
 *
 * Each queue's start, stop, back and fault mails are posted at most once
 * per cycle, and a cycle's mails have all run before the next cycle's are
 * posted (start N+1 follows back N, which the lane sends only after it ran
 * start N and stop N; fault N goes before back N in the same mailbox), so
 * a mail is never posted while it is still queued.  Kicks are coalesced:
 * one mail per lane and a mask of queues.
 *
 * Answers: a lane publishes only while the device's epoch is the one its
 * start carried; the home moves the epoch on when answers must no longer
 * be written (transport.h).  That is a check, not a wait: the home finishes
 * a reset only once every lane handed its queues back.
 */
#include "core/transport_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/container_of.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "core/shm.h"

struct lane_queue {
	struct vdev_lane *lane;
	unsigned qi;
	struct mail start, stop, back, fault;
	/* from the home, in start */
	uint32_t epoch;
	bool replay;
	struct ivshm_bell bell;     /* made and released by the home, rung by the lane */
	/* to the home, in fault */
	int err;
	/* the lane's own */
	bool live, recalled, faulted;
	struct busypoll_source spin;    /* on the lane's loop while live */
};

struct vdev_lane {
	struct vdev *vd;
	struct vdev_place place;
	struct tick_item tick_item;     /* on place.tick */
	struct lane_queue *lq;          /* indexed by queue; those of other loops unused */
	bool in_tick;
	struct mail kick;
	uint64_t kick_mask;             /* atomic: queues kicked since the last kick mail ran */
	int kick_queued;                /* atomic: the kick mail is posted and has not run */
};

static struct lane_queue *lq_of(struct vdev_lane *l, unsigned qi)
{
	return &l->lq[qi];
}

static void post(struct vdev_lane *l, struct mailbox *mb, struct mail *m, const char *what)
{
	/* Only a loop that stopped refuses mail, and loops stop only once no
	 * device is served (daemon/worker.c): a lost one is a bug to see. */
	if (mailbox_post(mb, m) < 0)
		log_err("%s: %s mail refused: the loop has stopped", l->vd->name, what);
}

/* ---- on the lane's thread --------------------------------------------------- */

bool vdev_lane_serves(const struct vdev_lane *l, unsigned qi)
{
	const struct lane_queue *lq = &l->lq[qi];
	return lq->live && !lq->recalled && !lq->faulted;
}

bool vdev_lane_answers(const struct vdev_lane *l, unsigned qi)
{
	const struct lane_queue *lq = &l->lq[qi];
	return lq->live && !lq->faulted &&
	       __atomic_load_n(&l->vd->epoch, __ATOMIC_ACQUIRE) == lq->epoch;
}

bool vdev_lane_in_tick(const struct vdev_lane *l)
{
	return l->in_tick;
}

void vdev_lane_defer(struct vdev_lane *l)
{
	tick_defer(l->place.tick, &l->tick_item);
}

void vdev_lane_notify(struct vdev_lane *l, unsigned qi)
{
	/* As vdev_notify_driver: the flag first, for shared vectors. */
	shm_st8(l->vd->port->rw, VI_QUEUE_EVENT, 1);
	shm_mb();
	ivshm_bell_ring(&l->lq[qi].bell);
}

void vdev_lane_fault(struct vdev_lane *l, unsigned qi, int err)
{
	struct lane_queue *lq = lq_of(l, qi);
	if (lq->faulted)
		return;
	lq->faulted = true;
	lq->err = err;
	post(l, l->vd->home_mb, &lq->fault, "fault");
}

static void pop(struct vdev_lane *l, unsigned qi)
{
	if (vdev_pop_queue(l->vd, qi)) {
		l->vd->q[qi].starved = true;
		vdev_lane_defer(l);
	}
}

/* Busy polling (core/busypoll.h) of a queue this lane serves. */
static bool spin_ready(struct busypoll_source *s)
{
	struct lane_queue *lq = container_of(s, struct lane_queue, spin);
	struct vdev_queue *q = &lq->lane->vd->q[lq->qi];
	return q->free && !q->starved && vdev_lane_serves(lq->lane, lq->qi) &&
	       vq_has_work(&q->vq);
}

static bool spin_run(struct busypoll_source *s)
{
	struct lane_queue *lq = container_of(s, struct lane_queue, spin);
	struct vdev_queue *q = &lq->lane->vd->q[lq->qi];
	uint64_t before = q->stats.requests;
	pop(lq->lane, lq->qi);
	return vdev_count_polled(q, before);
}

static bool spin_quiet(struct busypoll_source *s)
{
	struct lane_queue *lq = container_of(s, struct lane_queue, spin);
	if (!vdev_lane_serves(lq->lane, lq->qi))
		return false;
	vq_notify_off(&lq->lane->vd->q[lq->qi].vq);
	return true;
}

static bool spin_arm(struct busypoll_source *s)
{
	struct lane_queue *lq = container_of(s, struct lane_queue, spin);
	return vq_notify_on(&lq->lane->vd->q[lq->qi].vq);
}

static void start_run(struct mail *m, bool gone)
{
	struct lane_queue *lq = container_of(m, struct lane_queue, start);
	if (gone)
		return;
	lq->live = true;
	lq->recalled = lq->faulted = false;
	lq->spin.ready = spin_ready;
	lq->spin.run = spin_run;
	lq->spin.quiet = spin_quiet;
	lq->spin.arm = spin_arm;
	if (lq->lane->place.tick->busypoll)
		busypoll_add(lq->lane->place.tick->busypoll, &lq->spin);
	if (lq->replay)
		vdev_replay_queue(lq->lane->vd, lq->qi);
	pop(lq->lane, lq->qi);
}

static void kick_run(struct mail *m, bool gone)
{
	struct vdev_lane *l = container_of(m, struct vdev_lane, kick);
	/* Cleared before the mask is taken: a kick after this posts again. */
	__atomic_store_n(&l->kick_queued, 0, __ATOMIC_SEQ_CST);
	uint64_t mask = __atomic_exchange_n(&l->kick_mask, 0, __ATOMIC_SEQ_CST);
	if (gone)
		return;
	for (unsigned i = 0; mask; i++, mask >>= 1) {
		if (!(mask & 1) || !vdev_lane_serves(l, i))
			continue;
		l->vd->q[i].stats.kicks++;
		pop(l, i);
	}
}

static void stop_run(struct mail *m, bool gone)
{
	struct lane_queue *lq = container_of(m, struct lane_queue, stop);
	if (gone)
		return;
	lq->recalled = true;
	vdev_lane_defer(lq->lane);
}

/* End of the lane loop's iteration: as the home's tick (transport.c) for
 * the queues served here, and hand back those asked for once idle. */
static bool lane_tick(struct tick_item *it)
{
	struct vdev_lane *l = container_of(it, struct vdev_lane, tick_item);
	struct vdev *vd = l->vd;
	bool again = false;
	l->in_tick = true;
	for (unsigned i = 0; i < vd->nq; i++)
		if (vd->q[i].lane == l && l->lq[i].live && vd->q[i].dirty)
			vdev_publish(vd, i);
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		/* not live: the home's again, whose fields it writes */
		if (q->lane != l || !l->lq[i].live || !q->starved || !q->free)
			continue;
		if (!vdev_popped_this_iteration(l->place.tick, q))
			q->starved = vdev_lane_serves(l, i) && vdev_pop_queue(vd, i);
		again |= q->starved;
	}
	for (unsigned i = 0; i < vd->nq; i++)
		if (vd->q[i].lane == l && l->lq[i].live && vd->q[i].dirty)
			vdev_publish(vd, i);
	l->in_tick = false;
	/* Handed back last: once the home has every queue back it may free
	 * the device, this lane with it, at any moment, so nothing of them is
	 * touched after the last post. */
	uint64_t back = 0;
	for (unsigned i = 0; i < vd->nq; i++) {
		struct lane_queue *lq = &l->lq[i];
		if (vd->q[i].lane == l && lq->live && lq->recalled && vd->q[i].inflight == 0) {
			lq->live = false;
			if (l->place.tick->busypoll)
				busypoll_remove(l->place.tick->busypoll, &lq->spin);
			vd->q[i].starved = false;
			back |= 1ull << i;
		}
	}
	struct mailbox *home = vd->home_mb;
	struct lane_queue *lq = l->lq;
	for (unsigned i = 0; back; i++, back >>= 1)
		if (back & 1)
			post(l, home, &lq[i].back, "hand-back");
	return again;
}

/* ---- on the home's thread --------------------------------------------------- */

static void back_run(struct mail *m, bool gone)
{
	struct lane_queue *lq = container_of(m, struct lane_queue, back);
	struct vdev *vd = lq->lane->vd;
	vd->q[lq->qi].owner = VDEV_Q_HOME;
	ivshm_bell_release(&lq->bell);
	if (gone)
		return;
	/* A stop waiting for it finishes from the tick; if the queue is to
	 * be served again (a pause ended meanwhile), it goes out again. */
	tick_defer(vd->tick, &vd->tick_item);
	vdev_scan_queue(vd, lq->qi);
}

static void fault_run(struct mail *m, bool gone)
{
	struct lane_queue *lq = container_of(m, struct lane_queue, fault);
	if (!gone)
		vdev_fail_ring(lq->lane->vd, lq->qi, lq->err);
}

void vdev_lane_go(struct vdev *vd, unsigned qi)
{
	struct vdev_queue *q = &vd->q[qi];
	struct vdev_lane *l = q->lane;
	struct lane_queue *lq = lq_of(l, qi);
	switch (q->owner) {
	case VDEV_Q_HOME: {
		int r = ivshm_port_bell(vd->port, q->driver_vector, &lq->bell);
		if (r < 0) {
			log_err("%s: queue %u: no doorbell for its lane: %s; device needs reset",
				vd->name, qi, strerror(-r));
			vdev_mark_broken(vd);
			return;
		}
		lq->epoch = __atomic_load_n(&vd->epoch, __ATOMIC_RELAXED);
		lq->replay = q->replay;
		q->replay = false;
		q->owner = VDEV_Q_LANE;
		post(l, l->place.mb, &lq->start, "start");
		return;
	}
	case VDEV_Q_LANE:
		__atomic_fetch_or(&l->kick_mask, 1ull << qi, __ATOMIC_SEQ_CST);
		if (!__atomic_exchange_n(&l->kick_queued, 1, __ATOMIC_SEQ_CST))
			post(l, l->place.mb, &l->kick, "kick");
		return;
	case VDEV_Q_RECALLED:
		return;     /* back_run looks again */
	}
}

void vdev_lanes_recall(struct vdev *vd, int only, bool revoke)
{
	if (revoke)
		__atomic_fetch_add(&vd->epoch, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		if (!q->lane || q->owner != VDEV_Q_LANE || (only >= 0 && (unsigned)only != i))
			continue;
		q->owner = VDEV_Q_RECALLED;
		post(q->lane, q->lane->place.mb, &q->lane->lq[i].stop, "stop");
	}
}

unsigned vdev_lanes_out(const struct vdev *vd, int only)
{
	unsigned n = 0;
	for (unsigned i = 0; i < vd->nq; i++)
		n += vd->q[i].lane && vd->q[i].owner != VDEV_Q_HOME &&
		     (only < 0 || (unsigned)only == i);
	return n;
}

static struct vdev_lane *lane_for(struct vdev *vd, const struct vdev_place *place)
{
	for (unsigned i = 0; i < vd->nlanes; i++)
		if (vd->lanes[i].place.tick == place->tick)
			return &vd->lanes[i];
	/* At most one lane per queue: the array never moves. */
	if (!vd->lanes) {
		vd->lanes = calloc(vd->nq, sizeof(*vd->lanes));
		if (!vd->lanes)
			return NULL;
	}
	struct vdev_lane *l = &vd->lanes[vd->nlanes];
	l->lq = calloc(vd->nq, sizeof(*l->lq));
	if (!l->lq)
		return NULL;
	vd->nlanes++;
	l->vd = vd;
	l->place = *place;
	l->tick_item.run = lane_tick;
	l->kick.run = kick_run;
	for (unsigned i = 0; i < vd->nq; i++) {
		struct lane_queue *lq = &l->lq[i];
		lq->lane = l;
		lq->qi = i;
		lq->bell.fd = -1;
		lq->start.run = start_run;
		lq->stop.run = stop_run;
		lq->back.run = back_run;
		lq->fault.run = fault_run;
	}
	return l;
}

int vdev_place_queue(struct vdev *vd, unsigned qi, const struct vdev_place *home,
		     const struct vdev_place *place)
{
	if (qi >= vd->nq || qi >= VDEV_LANE_MAX_QUEUES || home->tick != vd->tick)
		return -EINVAL;
	vd->home_mb = home->mb;
	struct vdev_queue *q = &vd->q[qi];
	struct vdev_lane *l = NULL;
	if (place->tick != vd->tick) {
		if (vd->ops->cancel || q->polled || !place->mb || !vd->home_mb)
			return -EINVAL;
		l = lane_for(vd, place);
		if (!l)
			return -ENOMEM;
	}
	q->lane = l;
	q->owner = VDEV_Q_HOME;
	vdev_set_queue_ctx(vd, qi, place->ctx);
	return 0;
}

struct tick *vdev_queue_tick(const struct vdev *vd, const struct vdev_queue *q)
{
	return q->lane ? q->lane->place.tick : vd->tick;
}

bool vdev_queue_on(const struct vdev *vd, unsigned qi, const struct tick *tick)
{
	return vdev_queue_tick(vd, &vd->q[qi]) == tick;
}

void vdev_flush_place(struct vdev *vd, const struct tick *tick)
{
	for (unsigned i = 0; i < vd->nq; i++) {
		struct vdev_queue *q = &vd->q[i];
		if (q->lane && q->lane->place.tick == tick && q->lane->lq[i].live && q->dirty)
			vdev_publish(vd, i);
	}
}

void vdev_lanes_free(struct vdev *vd)
{
	for (unsigned i = 0; i < vd->nlanes; i++) {
		struct vdev_lane *l = &vd->lanes[i];
		for (unsigned k = 0; k < vd->nq; k++)
			ivshm_bell_release(&l->lq[k].bell);
		free(l->lq);
	}
	free(vd->lanes);
	vd->lanes = NULL;
	vd->nlanes = 0;
}
