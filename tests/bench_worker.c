/* virtio-ivshmem-bench: the devices and the worker threads (bench.h). */
#include "tests/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/virtio_ivshmem.h"

int g_stop;
int g_upgrade = -1;
pthread_barrier_t g_barrier;

/* ---- requests ---------------------------------------------------------- */

static void req_done(struct fe_blk_req *req)
{
	struct slot *s = req->arg;
	struct queue *q = s->q;
	q->inflight--;
	s->next_free = q->free;
	q->free = s;
	q->completed++;
	if (req->status != 0) {
		if (!q->errors)
			q->err_first_status = (uint64_t)(int64_t)req->status;
		q->errors++;
		return;
	}
	if (!q->measuring)
		return;
	uint64_t t = now_ns();
	int u = __atomic_load_n(&g_upgrade, __ATOMIC_ACQUIRE);
	if (u >= 0 && q->pause_ns && q->last_done_ns && t - q->last_done_ns > q->pause_ns[u])
		q->pause_ns[u] = t - q->last_done_ns;
	q->last_done_ns = t;
	hist_add(&q->lat[s->is_write], t - req->t_submit);
	q->ios[s->is_write]++;
	q->bytes[s->is_write] += req->len;
	__atomic_store_n(&q->ios_live, q->ios[0] + q->ios[1], __ATOMIC_RELAXED);
	__atomic_store_n(&q->bytes_live, q->bytes[0] + q->bytes[1], __ATOMIC_RELAXED);
}

/* Fill in the next request of queue q. */
static void prep(struct queue *q, struct slot *s)
{
	const struct opts *o = q->d->o;
	uint64_t off;
	bool wr;
	switch (o->rw) {
	case RW_READ:
	case RW_WRITE:
		off = q->seq_next;
		q->seq_next += o->bs;
		if (q->seq_next + o->bs > q->seq_end)
			q->seq_next = q->seq_start;
		wr = o->rw == RW_WRITE;
		break;
	default:
		off = rnd_below(&q->rng, q->d->nblocks) * o->bs;
		wr = o->rw == RW_RANDWRITE ||
		     (o->rw == RW_RANDRW && rnd_below(&q->rng, 100) >= o->rwmixread);
		break;
	}
	s->is_write = wr;
	s->req.type = wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	s->req.sector = off / 512;
	s->req.status = -2;
	s->req.t_submit = now_ns();
}

/* ---- devices ----------------------------------------------------------- */

static int dev_check(struct dev *d)
{
	const struct opts *o = d->o;
	struct fe_blk *blk = d->blk;
	uint64_t f = blk->fe->features;
	uint64_t disk = blk->capacity * 512;
	if (f & VIRTIO_BIT(VIRTIO_BLK_F_MQ) ? blk->num_queues < o->queues : o->queues > 1) {
		snprintf(d->msg, sizeof(d->msg), "the device has %u queue(s), --queues %u asked",
			 f & VIRTIO_BIT(VIRTIO_BLK_F_MQ) ? blk->num_queues : 1, o->queues);
		return -EINVAL;
	}
	if ((f & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX)) && blk->size_max && o->bs > blk->size_max) {
		snprintf(d->msg, sizeof(d->msg),
			 "--bs %u exceeds the device's size_max %u (raise shm-size)", o->bs,
			 blk->size_max);
		return -EINVAL;
	}
	if ((f & VIRTIO_BIT(VIRTIO_BLK_F_RO)) && o->rw != RW_READ && o->rw != RW_RANDREAD) {
		snprintf(d->msg, sizeof(d->msg), "the device is read-only");
		return -EROFS;
	}
	uint64_t region = o->size ? o->size : disk;
	if (region > disk) {
		snprintf(d->msg, sizeof(d->msg), "--size %" PRIu64 " exceeds the disk (%" PRIu64
			 " bytes)", region, disk);
		return -EINVAL;
	}
	d->nblocks = region / o->bs;
	d->region = d->nblocks * o->bs;
	if (d->nblocks < o->queues) {
		snprintf(d->msg, sizeof(d->msg), "the region (%" PRIu64 " bytes) holds fewer than "
			 "%u blocks of %u", region, o->queues, o->bs);
		return -EINVAL;
	}
	return 0;
}

int dev_setup(struct dev *d)
{
	const struct opts *o = d->o;
	char err[256] = "";
	unsigned want = o->iodepth * 3;     /* room for direct chains too */
	unsigned qsize = 2;
	while (qsize < want && qsize < 32768)
		qsize <<= 1;
	int r = fe_blk_open(d->socket, 0, o->queues, (uint16_t)qsize, 5000, &d->blk, err,
			    sizeof(err));
	if (r < 0) {
		snprintf(d->msg, sizeof(d->msg), "%s", err[0] ? err : strerror(-r));
		return r;
	}
	d->blk->no_copy = o->no_copy;
	d->blk->fe->publish_each = true;        /* as the cell's virtio_ring */
	for (unsigned i = 0; o->hipri && i < o->queues; i++)
		fe_vq_set_poll_queue(d->blk->fe, i);
	if ((r = dev_check(d)) < 0)
		return r;
	unsigned nslots = o->queues * o->iodepth;
	d->qs = calloc(o->queues, sizeof(*d->qs));
	d->slots = calloc(nslots, sizeof(*d->slots));
	d->bufs = aligned_alloc(4096, ((size_t)nslots * o->bs + 4095) & ~(size_t)4095);
	if (!d->qs || !d->slots || !d->bufs) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return -ENOMEM;
	}
	uint64_t seed = 0x9e3779b97f4a7c15ull * (d->idx + 1) ^ (uint64_t)getpid() << 17 ^ now_ns();
	/* Written data: random, so nothing downstream can take shortcuts. */
	uint64_t fill = seed;
	for (size_t i = 0; i + 8 <= (size_t)nslots * o->bs; i += 8) {
		uint64_t v = rnd_next(&fill);
		memcpy(d->bufs + i, &v, 8);
	}
	/* Sequential streams: queue i walks its own slice, like fio jobs with
	 * offset_increment = size / numjobs. */
	uint64_t slice = d->nblocks / o->queues * o->bs;
	for (unsigned i = 0; i < o->queues; i++) {
		struct queue *q = &d->qs[i];
		q->d = d;
		q->idx = i;
		q->rng = seed ^ (0xbf58476d1ce4e5b9ull * (i + 1));
		q->seq_start = q->seq_next = slice * i;
		q->seq_end = q->seq_start + slice;
		for (unsigned k = 0; k < o->iodepth; k++) {
			struct slot *s = &d->slots[i * o->iodepth + k];
			s->q = q;
			s->req.buf = d->bufs + (size_t)(i * o->iodepth + k) * o->bs;
			s->req.len = o->bs;
			s->req.done = req_done;
			s->req.arg = s;
			s->next_free = q->free;
			q->free = s;
		}
		if (o->upgrade_every && !(q->pause_ns = calloc(MAX_UPGRADES, sizeof(uint64_t)))) {
			snprintf(d->msg, sizeof(d->msg), "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

void dev_free(struct dev *d)
{
	fe_blk_close(d->blk);
	for (unsigned i = 0; d->qs && i < d->o->queues; i++)
		free(d->qs[i].pause_ns);
	free(d->qs);
	free(d->slots);
	free(d->bufs);
}

/* ---- workers ----------------------------------------------------------- */

static int watch(struct worker *w, struct dev *d, int idx)
{
	for (unsigned i = 0; i < w->npfd; i++)
		if (w->pfd_dev[i] == d && w->pfd_idx[i] == (unsigned)idx)
			return 0;
	w->pfd[w->npfd] = (struct pollfd){ .fd = d->blk->fe->port->watch_fd[idx],
					   .events = POLLIN };
	w->pfd_dev[w->npfd] = d;
	w->pfd_idx[w->npfd++] = (unsigned)idx;
	return 0;
}

int workers_plan(struct worker *w, unsigned n, struct dev *devs, const struct opts *o,
		 char *err, size_t err_len)
{
	unsigned total = o->ndevs * o->queues;
	for (unsigned k = 0; k < n; k++) {
		w[k].o = o;
		w[k].qs = calloc(total, sizeof(*w[k].qs));
		w[k].pfd = calloc(total + 2 * o->ndevs + IVSHM_PORT_MAX_WATCH, sizeof(*w[k].pfd));
		w[k].pfd_dev = calloc(total + 2 * o->ndevs + IVSHM_PORT_MAX_WATCH,
				      sizeof(*w[k].pfd_dev));
		w[k].pfd_idx = calloc(total + 2 * o->ndevs + IVSHM_PORT_MAX_WATCH,
				      sizeof(*w[k].pfd_idx));
		if (!w[k].qs || !w[k].pfd || !w[k].pfd_dev || !w[k].pfd_idx) {
			snprintf(err, err_len, "out of memory");
			return -ENOMEM;
		}
	}
	/* Contiguous shares: queue i of all goes to worker i * n / total. */
	for (unsigned i = 0; i < total; i++) {
		struct dev *d = &devs[i / o->queues];
		unsigned k = (unsigned)((uint64_t)i * n / total);
		w[k].qs[w[k].nq++] = &d->qs[i % o->queues];
		unsigned first = (unsigned)((uint64_t)(d->idx * o->queues) * n / total);
		unsigned last = (unsigned)((uint64_t)(d->idx * o->queues + o->queues - 1) * n / total);
		d->split = first != last;
	}
	for (unsigned k = 0; k < n; k++) {
		for (unsigned j = 0; j < w[k].nq; j++) {
			struct queue *q = w[k].qs[j];
			struct fe_dev *fe = q->d->blk->fe;
			if (!q->d->split) {
				/* the whole device: every vector and the link socket */
				for (unsigned idx = 0; idx < fe->port->n_watch; idx++)
					watch(&w[k], q->d, (int)idx);
				continue;
			}
			int idx = fe_queue_watch(fe, q->idx);
			if (idx < 0) {
				snprintf(err, err_len, "%s: its queues are on several threads, which "
					 "needs a vector per queue (the link has %u for %u queues)",
					 q->d->socket, fe->port->vectors, o->queues);
				return -EINVAL;
			}
			watch(&w[k], q->d, idx);
			if (q->idx == 0) {
				watch(&w[k], q->d, 0);      /* the link socket: peers leaving */
				watch(&w[k], q->d, 1);      /* vector 0: the config */
			}
		}
	}
	return 0;
}

void workers_free(struct worker *w, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		free(w[k].qs);
		free(w[k].pfd);
		free(w[k].pfd_dev);
		free(w[k].pfd_idx);
	}
}

static unsigned inflight(const struct worker *w)
{
	unsigned n = 0;
	for (unsigned j = 0; j < w->nq; j++)
		n += w->qs[j]->inflight;
	return n;
}

/* Submit on each queue until full, one kick per queue.  Returns how many
 * were submitted, or a negative errno. */
static int fill(struct worker *w)
{
	int total = 0;
	for (unsigned j = 0; j < w->nq; j++) {
		struct queue *q = w->qs[j];
		struct fe_blk *blk = q->d->blk;
		int n = 0;
		while (q->free) {
			struct slot *s = q->free;
			prep(q, s);
			int r = fe_blk_submit(blk, q->idx, &s->req);
			if (r == -ENOSPC) {
				/* Ring or shared pool full: reap completions first.  If
				 * sequential, take the offset back. */
				if (w->o->rw == RW_READ || w->o->rw == RW_WRITE)
					q->seq_next = s->req.sector * 512;
				break;
			}
			if (r < 0)
				return r;
			q->free = s->next_free;
			q->inflight++;
			n++;
		}
		if (n)
			fe_blk_kick(blk, q->idx);
		total += n;
	}
	return total;
}

static int reap(struct worker *w)
{
	int n = 0;
	for (unsigned j = 0; j < w->nq; j++)
		n += fe_blk_reap_queue(w->qs[j]->d->blk, w->qs[j]->idx);
	return n;
}

static bool backends_ready(struct worker *w)
{
	for (unsigned i = 0; i < w->npfd; i++)
		if (!fe_backend_ready(w->pfd_dev[i]->blk->fe))
			return false;
	return true;
}

/* Wait up to timeout_ms for the watched fds (the link, the vectors) and
 * take what they brought: how many were ready, -ENODEV when the link
 * closed or the backend left READY, -EINTR. */
static int take_watches(struct worker *w, int timeout_ms)
{
	int r = poll(w->pfd, w->npfd, timeout_ms);
	if (r < 0)
		return -errno;
	for (unsigned i = 0; r > 0 && i < w->npfd; i++) {
		if (!(w->pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (fe_handle_watch(w->pfd_dev[i]->blk->fe, w->pfd_idx[i]) < 0)
			return -ENODEV;
	}
	return r;
}

/* --hipri: the cell polls its poll queues (blk-mq's poll for io_uring
 * IOPOLL) instead of sleeping.  Every so often it looks at the backend's
 * state and takes the doorbells, as the wait would: interrupts the daemon
 * raised all the same are counted, and a link that closed is seen. */
static int spin_reap(struct worker *w, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;
	for (unsigned k = 1;; k++) {
		int n = reap(w);
		if (n)
			return n;
		if (k % 1024 == 0) {
			if (!backends_ready(w) || take_watches(w, 0) == -ENODEV)
				return -ENODEV;
			if (now_ns() > end)
				return -ETIMEDOUT;
		}
	}
}

/* What has completed; if nothing, wait up to timeout_ms for an interrupt
 * and take what it brought.  -ETIMEDOUT, -ENODEV (a backend left READY). */
static int wait_reap(struct worker *w, int timeout_ms)
{
	if (w->o->hipri)
		return spin_reap(w, timeout_ms);
	int n = reap(w);
	if (n)
		return n;
	if (!backends_ready(w))
		return -ENODEV;
	int r = take_watches(w, timeout_ms);
	if (r == -EINTR)
		return 0;
	if (r < 0)
		return r;
	if (r == 0)
		return -ETIMEDOUT;
	return reap(w);
}

static void fail(struct worker *w, int r, const char *what)
{
	w->fatal = r;
	snprintf(w->msg, sizeof(w->msg), "%s", what);
}

static void drain(struct worker *w)
{
	uint64_t deadline = now_ns() + (uint64_t)HANG_MS * 1000000;
	while (inflight(w) && now_ns() < deadline) {
		int r = wait_reap(w, POLL_MS);
		if (r < 0 && r != -ETIMEDOUT)
			break;
	}
	if (inflight(w)) {
		w->fatal = -ETIMEDOUT;
		snprintf(w->msg, sizeof(w->msg), "%u request(s) never completed", inflight(w));
	}
}

void *worker_thread(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&g_barrier);      /* every worker planned, the cost watched */
	uint64_t t = now_ns();
	for (unsigned j = 0; j < w->nq; j++) {
		w->qs[j]->measuring = true;
		w->qs[j]->t_start = t;
	}
	uint64_t idle_ms = 0;
	char msg[200];
	while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED)) {
		int r = fill(w);
		if (r < 0) {
			snprintf(msg, sizeof(msg), "submit failed: %s", strerror(-r));
			fail(w, r, msg);
			break;
		}
		if (inflight(w) == 0) {
			snprintf(msg, sizeof(msg), "cannot submit a single %u-byte request: shared "
				 "memory pool or ring too small", w->o->bs);
			fail(w, -ENOSPC, msg);
			break;
		}
		w->polls++;
		r = wait_reap(w, POLL_MS);
		if (r == -ETIMEDOUT) {
			idle_ms += POLL_MS;
			if (idle_ms >= HANG_MS) {
				snprintf(msg, sizeof(msg), "no completion for %u s with %u request(s) "
					 "in flight", HANG_MS / 1000, inflight(w));
				fail(w, -ETIMEDOUT, msg);
				break;
			}
		} else if (r < 0) {
			fail(w, r, r == -ENODEV ? "backend failed (left READY)" : strerror(-r));
			break;
		} else {
			idle_ms = 0;
		}
	}
	t = now_ns();
	for (unsigned j = 0; j < w->nq; j++) {
		w->qs[j]->measuring = false;
		w->qs[j]->t_end = t;
	}
	__atomic_store_n(&w->t_end, t, __ATOMIC_RELEASE);
	/* Drain: let in-flight requests finish before the links go away. */
	if (!w->fatal)
		drain(w);
	return NULL;
}
