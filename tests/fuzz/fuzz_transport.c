/* Fuzz target: the transport (core/transport.c, transport_regs.c,
 * journal.c) on the fake port, driven by a hostile driver and a hostile
 * journal.
 *
 * The input picks the device (queues, their size, vectors, features,
 * config size, segment limit, polled queues, a journal or not) and then a
 * program of steps: register transactions (any code, any value), peer
 * state changes, kicks on any vector, descriptors, indirect tables and
 * avail entries, raw writes anywhere in the section, answers of held
 * requests, pause, flush, config changes, shutdown, link down, a busy-poll
 * spin over a queue (kicks off, looks, kicks on, what came run), and with a
 * journal a crash: the device dies, bytes of its journal are overwritten
 * (checksums fixed or not), and a new one takes over (vdev_adopt) or
 * starts afresh when that is refused.  An input may also begin with a take
 * over from a journal made entirely of input bytes.
 *
 * Oracles besides the sanitizers, after every step:
 *   - the R/W section has PROT_NONE pages on both sides;
 *   - the device writes only its header and the used rings of queues live
 *     at some moment of the step (shadow copy), never a device-readable
 *     buffer;
 *   - every request handed to the backend has a head below its ring size
 *     and buffers inside the driver's part of the section; with a journal
 *     no head is handed out twice while in flight;
 *   - every used entry the device publishes answers a request the backend
 *     answered, once (so the used index never runs ahead of what was
 *     popped), and no more than a ring's worth appear at once (unless the
 *     driver wrote into that used ring itself);
 *   - in-flight counts match what the backend holds;
 *   - a transaction processed while the device shows READY is acknowledged
 *     unless a quiesce holds it;
 * and at the end, once the backend has answered everything, no quiesce is
 * left pending and nothing is in flight (no hang).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/shm.h"
#include "core/tick.h"
#include "core/transport.h"
#include "tests/fake_port.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_transport.h"

struct ft ft;
static uint8_t *shadow;
static uv_loop_t loop;
static struct tick tk;

/* ---- the device's view, for the oracles ---------------------------------- */

static bool live(unsigned q)
{
	return ft.vd.q[q].enable && ft.vd.q[q].vq.ready;
}

/* Used entries published since the last look must each answer a request the
 * backend answered. */
static void check_used(unsigned q)
{
	const struct vq *vq = &ft.vd.q[q].vq;
	uint16_t now = shm_ld16(ft.rw, vq->used + 2), n = (uint16_t)(now - ft.seen_used[q]);
	/* More than a ring's worth at once only when the driver made heads
	 * available again while the device still had them (refill): then
	 * the last num are what the ring shows. */
	FZ_CHECK(n <= vq->num || ft.refill, "queue %u: %u used entries at once in a ring of %u",
		 q, n, vq->num);
	uint16_t from = n <= vq->num ? ft.seen_used[q] : (uint16_t)(now - vq->num);
	for (uint16_t i = from; i != now; i++) {
		uint32_t head = shm_ld32(ft.rw, vq->used + 4 + 8ull * (i & (vq->num - 1)));
		FZ_CHECK(head < vq->num && ft.answered[q][head] > 0,
			 "queue %u: used entry %u names head %u, which was not answered", q, i, head);
		ft.answered[q][head]--;
	}
	ft.seen_used[q] = now;
}

/* The used rings of the queues live now are the device's to write until
 * the step ends. */
static void note_live(void)
{
	for (unsigned q = 0; q < ft.vd.nq; q++) {
		const struct vq *vq = &ft.vd.q[q].vq;
		if (!live(q))
			continue;
		unsigned i = 0;
		while (i < ft.nrings && (ft.ring_at[i] != vq->used || ft.ring_num[i] != vq->num))
			i++;
		if (i < ft.nrings)
			continue;
		FZ_CHECK(ft.nrings < FT_MAX_RINGS, "more than %u used rings in one step",
			 FT_MAX_RINGS);
		ft.ring_at[ft.nrings] = vq->used;
		ft.ring_num[ft.nrings++] = vq->num;
	}
}

void ft_step_begin(void)
{
	for (unsigned q = 0; q < ft.vd.nq; q++)
		ft.was_live[q] = live(q);
	ft.nrings = 0;
	note_live();
}

void ft_step_end(bool processed)
{
	note_live();
	uv_run(&loop, UV_RUN_NOWAIT);
	note_live();
	fake_port_clear_log(ft.fp);
	struct vdev *vd = &ft.vd;
	unsigned inflight = 0;
	for (unsigned q = 0; q < vd->nq; q++) {
		FZ_CHECK(vd->q[q].inflight == ft.nheld[q], "queue %u: %u in flight, backend holds %u",
			 q, vd->q[q].inflight, ft.nheld[q]);
		inflight += ft.nheld[q];
		if (!ft.was_live[q] && live(q)) {
			ft.seen_used[q] = ft.adopted ? ft.seen_used[q] : 0;
			ft.tampered[q] = false;
		}
		if (live(q) && !ft.tampered[q])
			check_used(q);
		else if (ft.was_live[q])
			memset(ft.answered[q], 0, sizeof(ft.answered[q]));   /* that ring is gone */
	}
	/* What the device may write: the used rings it had in this step
	 * (a queue taken over and then dropped when the device sees that the
	 * peer left had its ring for part of the step only). */
	for (unsigned i = 0; i < ft.nrings; i++)
		memcpy(shadow + ft.ring_at[i], ft.rw + ft.ring_at[i], vq_used_bytes(ft.ring_num[i]));
	ft.adopted = false;
	FZ_CHECK(vd->inflight == inflight, "%u in flight, backend holds %u", vd->inflight, inflight);
	FZ_CHECK(!vd->txn_held || vd->stopping, "a transaction held without a quiesce");
	memcpy(shadow, ft.rw, vd->hdr_size);
	FZ_CHECK(memcmp(shadow, ft.rw, FT_RW) == 0,
		 "the device wrote outside its header and used rings");
	if (processed && (vd->phase == VDEV_WAIT_PEER_READY || vd->phase == VDEV_RUNNING) &&
	    !vd->txn_held)
		FZ_CHECK(shm_ld32(ft.rw, VI_WRITE_TRANSACTION) == 0, "transaction 0x%x left pending",
			 shm_ld32(ft.rw, VI_WRITE_TRANSACTION));
}

/* The driver's stores: the section and its shadow alike. */
void ft_write(uint64_t off, const void *src, size_t n)
{
	if (off > FT_RW || n > FT_RW - off)
		return;
	for (unsigned q = 0; q < ft.vd.nq; q++) {
		const struct vq *vq = &ft.vd.q[q].vq;
		if (live(q) && off < vq->used + vq_used_bytes(vq->num) && vq->used < off + n)
			ft.tampered[q] = true;
	}
	memcpy(ft.rw + off, src, n);
	memcpy(shadow + off, src, n);
}

/* ---- the backend --------------------------------------------------------- */

static uint64_t be_features(void *be)
{
	return ft.features;
}

static void be_get_config(void *be, uint8_t *cfg)
{
	for (size_t i = 0; i < ft.cfg_size; i++)
		cfg[i] = (uint8_t)(0x30 + i);
}

static void check_req(const struct vreq *req)
{
	const struct vdev_queue *q = &ft.vd.q[req->queue];
	FZ_CHECK(req->head < q->vq.num, "queue %u: head %u in a ring of %u", req->queue, req->head,
		 q->vq.num);
	uint64_t in = 0;
	for (unsigned i = 0; i < req->n_out + req->n_in; i++) {
		const uint8_t *b = req->iov[i].iov_base;
		size_t len = req->iov[i].iov_len;
		FZ_CHECK(b >= ft.rw + ft.vd.hdr_size && b <= ft.rw + FT_RW &&
			 len <= (size_t)(ft.rw + FT_RW - b),
			 "buffer %u at %td+%zu outside the driver's part", i, b - ft.rw, len);
		if (i >= req->n_out)
			in += len;
	}
	FZ_CHECK(in == req->in_bytes, "in_bytes %llu, buffers %llu",
		 (unsigned long long)req->in_bytes, (unsigned long long)in);
	if (ft.vd.journal)
		for (unsigned i = 0; i < ft.nheld[req->queue]; i++)
			FZ_CHECK(ft.held[req->queue][i]->head != req->head,
				 "queue %u: head %u handed out twice", req->queue, req->head);
}

/* Answer held request i of queue q: fill its writable buffers (as a
 * backend does) with up to len bytes. */
void ft_answer(unsigned q, unsigned i, uint32_t len)
{
	note_live();
	struct vreq *req = ft.held[q][i];
	ft.held[q][i] = ft.held[q][--ft.nheld[q]];
	uint32_t left = len;
	for (unsigned k = req->n_out; k < req->n_out + req->n_in && left; k++) {
		size_t n = req->iov[k].iov_len < left ? req->iov[k].iov_len : left;
		uint64_t off = (uint64_t)((uint8_t *)req->iov[k].iov_base - ft.rw);
		memset(ft.rw + off, 0x5a, n);
		memset(shadow + off, 0x5a, n);
		left -= (uint32_t)n;
	}
	ft.answered[q][req->head]++;
	vdev_complete(req, len);
}

static void be_submit(void *be, struct vreq *req)
{
	note_live();
	check_req(req);
	if (ft.refill && !ft.draining)
		ft_repost(req->queue, req->head);
	FZ_CHECK(ft.nheld[req->queue] < FT_MAX_QS, "more requests than slots");
	ft.held[req->queue][ft.nheld[req->queue]++] = req;
	if (ft.answer_at_once)
		ft_answer(req->queue, ft.nheld[req->queue] - 1, ft.at_once_len);
}

static void be_cancel(void *be, unsigned q)
{
	while (ft.cancel_answers && ft.nheld[q])
		ft_answer(q, 0, 0);
}

static void on_stopped(struct vdev *vd, void *arg)
{
	ft.stopped = true;
}

static struct vdev_backend_ops be_ops = {
	.req_size = 8,
	.features = be_features,
	.get_config = be_get_config,
	.submit = be_submit,
	.cancel = be_cancel,
};

void ft_shutdown(void)
{
	vdev_shutdown(&ft.vd, on_stopped, NULL);
}

/* ---- life of the device -------------------------------------------------- */

void ft_init_vdev(void)
{
	be_ops.max_segments = ft.max_segments;
	be_ops.polled_queues = ft.polled;
	if (vdev_init(&ft.vd, "fuzz", &ft.fp->port, &tk, VIRTIO_ID_BLOCK, &be_ops, NULL,
		      ft.cfg_size, ft.nq, ft.qmax) < 0)
		abort();
}

/* The process dies; the journal and the link stay.  A new one attaches the
 * journal (its bytes possibly overwritten meanwhile: mut_cb) and takes the
 * device over, or starts it afresh as the daemon does when that fails. */
void ft_crash(void (*mut_cb)(uint8_t *journal, size_t size, void *arg), void *arg)
{
	char why[256];
	int fd = ft.vd.journal ? dup(ft.jr.fd) : -1;
	memset(ft.nheld, 0, sizeof(ft.nheld));      /* gone with the process */
	vdev_destroy(&ft.vd);
	if (ft.vd.journal)
		journal_close(&ft.jr);
	uv_run(&loop, UV_RUN_NOWAIT);
	ft_init_vdev();
	if (fd >= 0) {
		struct stat st;
		uint8_t *m = fstat(fd, &st) < 0 ? MAP_FAILED :
			     mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				  fd, 0);
		if (m != MAP_FAILED) {
			mut_cb(m, (size_t)st.st_size, arg);
			munmap(m, (size_t)st.st_size);
		}
	}
	int r = fd >= 0 ? journal_attach(&ft.jr, fd, 42, ft.nq, ft.qmax, why, sizeof(why)) : -1;
	if (r < 0 && journal_create(&ft.jr, "fuzz", 42, ft.nq, ft.qmax) < 0)
		abort();
	vdev_set_journal(&ft.vd, &ft.jr);
	memset(ft.answered, 0, sizeof(ft.answered));
	memset(ft.tampered, 0, sizeof(ft.tampered));
	for (unsigned q = 0; q < ft.nq; q++)
		ft.seen_used[q] = shm_ld16(ft.rw, ft.vd.q[q].vq.used + 2);
	if (r == 0 && vdev_adopt(&ft.vd, why, sizeof(why)) == 0) {
		for (unsigned q = 0; q < ft.nq; q++)
			if (live(q))
				ft.seen_used[q] = shm_ld16(ft.rw, ft.vd.q[q].vq.used + 2);
		ft.adopted = true;
		note_live();
		return;
	}
	vdev_start(&ft.vd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ft.rw) {
		fz_quiet();
		ft.rw = fz_map_guarded(FT_RW);
		shadow = malloc(FT_RW);
		uv_loop_init(&loop);
		tick_init(&tk, &loop);
	}
	struct fz f = { data, size };
	uint8_t *rw = ft.rw;
	memset(&ft, 0, sizeof(ft));
	ft.rw = rw;
	memset(rw, 0, FT_RW);
	memset(shadow, 0, FT_RW);
	ft_program(&f);
	/* Everything held is answered (and the driver stops making heads
	 * available again): every quiesce must finish now. */
	ft.draining = true;
	for (int round = 0; round < 16; round++) {
		ft_step_begin();
		for (unsigned q = 0; q < ft.vd.nq; q++)
			while (ft.nheld[q])
				ft_answer(q, 0, 1);
		ft_step_end(false);
	}
	FZ_CHECK(ft.vd.inflight == 0 && !ft.vd.stopping && !ft.vd.txn_held,
		 "nothing in flight, yet %u in flight, stop %d pending, transaction held %d",
		 ft.vd.inflight, ft.vd.stopping, ft.vd.txn_held);
	vdev_destroy(&ft.vd);
	if (ft.vd.journal)
		journal_close(&ft.jr);
	fake_port_free(ft.fp);
	uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
