#include "daemon/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void snapshot_take(struct dev_snapshot *s)
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
	for (unsigned i = 0; i < vd->nq; i++) {
		s->q[i].st = vd->q[i].stats;
		s->q[i].inflight = vd->q[i].inflight;
	}
	s->is_blk = d->blk != NULL;
	if (d->blk) {
		s->blk = *blk_stats(d->blk);
		s->blk_inflight = blk_inflight(d->blk);
	}
	s->is_con = d->con != NULL;
	if (d->con) {
		s->con = *console_stats(d->con);
		s->con_attached = console_attached(d->con);
	}
}

void snapshot_free(struct dev_snapshot *s)
{
	free(s->q);
	s->q = NULL;
	s->nq = 0;
}
