/* Internal to the transport (transport.c, transport_regs.c): not a contract
 * for anything else. */
#pragma once
#include "core/transport.h"

/* transport_regs.c: the header and the register-write transactions. */
void vdev_reset_state(struct vdev *vd);
void vdev_write_header(struct vdev *vd);
void vdev_load_window(struct vdev *vd);
void vdev_write_config(struct vdev *vd);
void vdev_mark_broken(struct vdev *vd);
void vdev_notify_driver(struct vdev *vd, unsigned flag_offset, uint16_t vector);
/* Handle the pending transaction, if any, unless a quiesce holds it. */
void vdev_process_transaction(struct vdev *vd);
void vdev_ack_transaction(struct vdev *vd);

/* transport.c: the journal (no-ops without one). */
void vdev_journal_save(struct vdev *vd);
void vdev_journal_reset_queue(struct vdev *vd, unsigned q);

/* transport.c: used by the transaction handlers. */
/* Start quiescing for why (queue: for STOP_QUEUE_DISABLE).  A stronger
 * reason takes over a pending weaker one.  Finished from the tick. */
void vdev_begin_stop(struct vdev *vd, enum vdev_stop_reason why, unsigned queue);
/* Queue q may have new requests (enabled, DRIVER_OK): pop them if it is
 * served now. */
void vdev_scan_queue(struct vdev *vd, unsigned q);

/* transport.c: the request path, also run by lanes on their thread. */
bool vdev_pop_queue(struct vdev *vd, unsigned qi);     /* true: work left (starved) */
void vdev_publish(struct vdev *vd, unsigned qi);
void vdev_replay_queue(struct vdev *vd, unsigned qi);
void vdev_fail_ring(struct vdev *vd, unsigned qi, int err);
void vdev_set_queue_ctx(struct vdev *vd, unsigned qi, void *ctx);

/* transport_lane.c, the lane's thread: see there. */
bool vdev_lane_serves(const struct vdev_lane *l, unsigned qi);
bool vdev_lane_answers(const struct vdev_lane *l, unsigned qi);
bool vdev_lane_in_tick(const struct vdev_lane *l);
void vdev_lane_defer(struct vdev_lane *l);
void vdev_lane_notify(struct vdev_lane *l, unsigned qi);
void vdev_lane_fault(struct vdev_lane *l, unsigned qi, int err);

/* The tick of the loop serving queue q: its lane's, else the device's. */
struct tick *vdev_queue_tick(const struct vdev *vd, const struct vdev_queue *q);

/* Was queue q popped in the current iteration of the loop whose tick this
 * is (its callbacks or this tick's pass)?  Its next chunk waits for the
 * next iteration, after this one's answers are out. */
static inline bool vdev_popped_this_iteration(const struct tick *t, const struct vdev_queue *q)
{
	return q->popped_in == tick_iteration(t);
}

/* After a busy-poll source's run (core/busypoll.h) popped queue q, whose
 * request count was `before`: what it took counts as busy-polled.  True
 * if it took any (a hit). */
static inline bool vdev_count_polled(struct vdev_queue *q, uint64_t before)
{
	q->stats.busy_polled += q->stats.requests - before;
	return q->stats.requests != before;
}

/* transport_lane.c, the home's thread. */
/* Queue qi (a lane's) is open for serving: hand it over, or kick it. */
void vdev_lane_go(struct vdev *vd, unsigned qi);
/* Ask lanes for their queues back (only: that one, -1: all); revoke:
 * their answers are no longer to be written. */
void vdev_lanes_recall(struct vdev *vd, int only, bool revoke);
/* Lane queues (only: that one, -1: all) not handed back. */
unsigned vdev_lanes_out(const struct vdev *vd, int only);
void vdev_lanes_free(struct vdev *vd);
