#include "daemon/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void take_queues(struct dev_snapshot *s, const struct tick *tick)
{
	const struct device *d = s->dev;
	const struct vdev *vd = d->vd;
	for (unsigned i = 0; i < s->nq; i++) {
		if (!vdev_queue_on(vd, i, tick))
			continue;
		s->q[i].st = vd->q[i].stats;
		s->q[i].inflight = vd->q[i].inflight;
		if (d->blk)
			blk_queue_stats(d->blk, i, &s->q[i].blk);
	}
}

void snapshot_take(struct dev_snapshot *s, const struct tick *tick)
{
	const struct device *d = s->dev;
	const struct vdev *vd = d->vd;
	s->q = calloc(vd->nq, sizeof(*s->q));
	if (!s->q) {
		s->status = -ENOMEM;
		return;
	}
	s->status = 0;
	s->state = vdev_phase_name(vd);
	s->vs = vd->stats;
	s->nq = vd->nq;
	s->is_blk = d->blk != NULL;
	s->is_con = d->con != NULL;
	if (d->con) {
		s->con = *console_stats(d->con);
		s->con_attached = console_attached(d->con);
	}
	take_queues(s, tick);
}

void snapshot_take_queues(struct dev_snapshot *s, const struct tick *tick)
{
	if (s->status == 0)
		take_queues(s, tick);
}

void snapshot_sum(struct dev_snapshot *s)
{
	if (s->status < 0 || !s->is_blk)
		return;
	s->blk = (struct blk_stats){ 0 };
	s->blk_inflight = 0;
	for (unsigned i = 0; i < s->nq; i++) {
		blk_stats_add(&s->blk, &s->q[i].blk);
		s->blk_inflight += s->q[i].inflight;
	}
}

void snapshot_free(struct dev_snapshot *s)
{
	free(s->q);
	s->q = NULL;
	s->nq = 0;
}
