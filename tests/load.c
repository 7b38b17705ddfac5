#include "tests/load.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/virtio_blk.h"

struct load_req {
	struct fe_blk_req r;
	struct load *l;
	struct load_disk *d;
	unsigned slot;
	bool busy;
	uint8_t buf[LOAD_SLOT];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct load *l)
{
	/* xorshift64* */
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return l->rng * 0x2545F4914F6CDD1Dull;
}

static void failf(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct load *l, const char *fmt, ...)
{
	if (l->failed)
		return;
	l->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
}

/* The console streams: byte p of direction dir. */
static uint8_t stream_byte(uint64_t p, unsigned dir)
{
	uint32_t rec = (uint32_t)(p / 8) & 0xffffff;
	switch (p % 8) {
	case 0: return 0xc3;
	case 1: case 2: case 3: return (uint8_t)(rec >> (8 * (p % 8 - 1)));
	case 4: case 5: case 6: return (uint8_t)(~rec >> (8 * (p % 8 - 4)));
	default: return (uint8_t)(0x40 + dir);
	}
}

/* The record number in r[8], or -1 when it is not a record of dir. */
static int64_t record_of(const uint8_t *r, unsigned dir)
{
	uint32_t a = r[1] | (uint32_t)r[2] << 8 | (uint32_t)r[3] << 16;
	uint32_t b = r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16;
	if (r[0] != 0xc3 || r[7] != 0x40 + dir || (a ^ b) != 0xffffff)
		return -1;
	return a;
}

static void stream_gen(const struct load_stream *st, unsigned dir, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(st->sent + i, dir);
}

/* Received bytes of one direction, checked record by record. */
static void stream_take(struct load *l, struct load_stream *st, unsigned dir, const uint8_t *buf,
			size_t n, const char *what)
{
	for (size_t i = 0; i < n && !l->failed; i++) {
		st->part[st->npart++] = buf[i];
		if (st->npart < 8)
			continue;
		int64_t rec = record_of(st->part, dir);
		if (rec < 0) {
			if (!l->con.tolerant) {
				failf(l, "console %s: bytes at record %llu are no record", what,
				      (unsigned long long)st->next);
				return;
			}
			st->garbage++;
			memmove(st->part, st->part + 1, 7);
			st->npart = 7;
			continue;
		}
		st->npart = 0;
		/* the full record number: the one nearest to what is due */
		int32_t delta = (int32_t)(((uint32_t)rec - (uint32_t)st->next) << 8) >> 8;
		uint64_t full = st->next + (uint64_t)(int64_t)delta;
		if (full == st->next) {
			st->next++;
			st->replay_next = 0;        /* a replay, if any, has caught up */
			continue;
		}
		if (!l->con.tolerant) {
			failf(l, "console %s: record %llu where %llu was due", what,
			      (unsigned long long)full, (unsigned long long)st->next);
			return;
		}
		if (full > st->next) {
			/* lost: a gap, which must never be filled later */
			if (st->ngaps < LOAD_MAX_GAPS)
				st->gaps[st->ngaps++] = (struct load_gap){ st->next, full };
			st->missing += full - st->next;
			st->next = full + 1;
			st->replay_next = 0;
			continue;
		}
		/* sent again: a run from an earlier record up to what was last
		 * seen, in order; a record from a gap, or out of the run, is a
		 * reordering */
		bool in_gap = false;
		for (unsigned g = 0; g < st->ngaps; g++)
			in_gap |= full >= st->gaps[g].from && full < st->gaps[g].to;
		if (in_gap || (st->replay_next && full != st->replay_next)) {
			failf(l, "console %s: record %llu came after %llu (reordered)", what,
			      (unsigned long long)full, (unsigned long long)st->next - 1);
			return;
		}
		st->repeated++;
		st->replay_next = full + 1 < st->next ? full + 1 : 0;
	}
}

void load_init(struct load *l, unsigned qd, uint64_t seed)
{
	memset(l, 0, sizeof(*l));
	l->qd = qd;
	l->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	l->con.sock = -1;
}

int load_add_disk(struct load *l, struct fe_blk *blk, unsigned queues, const char *image)
{
	if (l->ndisks == LOAD_MAX_DISKS)
		return -ENOSPC;
	struct load_disk *d = &l->disk[l->ndisks];
	memset(d, 0, sizeof(*d));
	d->blk = blk;
	d->queues = queues;
	d->size = blk->capacity * 512;
	d->nslots = (unsigned)(d->size / LOAD_SLOT);
	d->model = malloc(d->size);
	d->busy = calloc(d->nslots ? d->nslots : 1, 1);
	d->reqs = calloc(l->qd, sizeof(*d->reqs));
	if (!d->model || !d->busy || !d->reqs)
		return -ENOMEM;
	int fd = open(image, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, d->model, d->size, 0);
	close(fd);
	if (n != (ssize_t)d->size)
		return -EIO;
	l->ndisks++;
	return 0;
}

void load_add_console(struct load *l, struct fe_console *con, int sock)
{
	l->con.con = con;
	l->con.sock = sock;
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
	l->has_con = true;
}

/* ---- disks -------------------------------------------------------------- */

static void req_done(struct fe_blk_req *r)
{
	struct load_req *q = r->arg;
	struct load *l = q->l;
	struct load_disk *d = q->d;
	q->busy = false;
	d->inflight--;
	l->last_completion_ns = now_ns();
	if (q->slot != UINT32_MAX)
		d->busy[q->slot] = 0;
	if (r->status != VIRTIO_BLK_S_OK) {
		failf(l, "disk %ld: request type %u at sector %llu (%u bytes) ended with status %d",
		      (long)(d - l->disk), r->type, (unsigned long long)r->sector, r->len, r->status);
		return;
	}
	uint64_t off = r->sector * 512;
	switch (r->type) {
	case VIRTIO_BLK_T_OUT:
		memcpy(d->model + off, q->buf, r->len);     /* acknowledged: it is there */
		d->writes++;
		d->bytes += r->len;
		break;
	case VIRTIO_BLK_T_IN:
		if (memcmp(d->model + off, q->buf, r->len) != 0)
			failf(l, "disk %ld: read of %u bytes at sector %llu differs from what was "
			      "written", (long)(d - l->disk), r->len, (unsigned long long)r->sector);
		d->reads++;
		d->bytes += r->len;
		break;
	default:
		d->flushes++;
	}
}

static void fill(struct load *l, struct load_disk *d)
{
	bool kicked[16] = { false };
	for (unsigned i = 0; i < l->qd && !l->stopping; i++) {
		struct load_req *q = &d->reqs[i];
		if (q->busy)
			continue;
		uint64_t x = rnd(l);
		unsigned kind = (unsigned)(x % 20);
		memset(&q->r, 0, sizeof(q->r));
		q->l = l;
		q->d = d;
		q->slot = UINT32_MAX;
		if (kind == 0) {
			q->r.type = VIRTIO_BLK_T_FLUSH;
		} else {
			unsigned slot = (unsigned)((x >> 8) % d->nslots);
			if (d->busy[slot])
				continue;
			unsigned sectors = 1 + (unsigned)((x >> 32) % (LOAD_SLOT / 512));
			unsigned start = (unsigned)((x >> 48) % (LOAD_SLOT / 512 - sectors + 1));
			q->slot = slot;
			q->r.sector = (uint64_t)slot * (LOAD_SLOT / 512) + start;
			q->r.len = sectors * 512;
			q->r.buf = q->buf;
			if (kind < 10) {
				q->r.type = VIRTIO_BLK_T_OUT;
				for (unsigned k = 0; k < q->r.len; k += 8) {
					uint64_t v = rnd(l);
					memcpy(q->buf + k, &v, 8);
				}
			} else {
				q->r.type = VIRTIO_BLK_T_IN;
			}
		}
		q->r.done = req_done;
		q->r.arg = q;
		unsigned qi = (unsigned)(x >> 40) % d->queues;
		if (fe_blk_submit(d->blk, qi, &q->r) < 0)
			break;      /* ring or bounce pool full: later */
		if (q->slot != UINT32_MAX)
			d->busy[q->slot] = 1;
		q->busy = true;
		if (d->inflight++ == 0) {
			d->last_irq_ns = now_ns();
			if (l->last_completion_ns == 0)
				l->last_completion_ns = d->last_irq_ns;
		}
		kicked[qi & 15] = true;
	}
	for (unsigned qi = 0; qi < d->queues && qi < 16; qi++)
		if (kicked[qi])
			fe_blk_kick(d->blk, qi);
}

static void reap(struct load *l, struct load_disk *d)
{
	int r = fe_blk_poll(d->blk, 0);
	if (r == -ENODEV)
		failf(l, "disk %ld: the back-end is gone (%s)", (long)(d - l->disk),
		      d->blk->fe->gone_why == 2 ? "the link closed" : "no longer READY: a reset");
	else if (r < 0 && r != -ETIMEDOUT)
		failf(l, "disk %ld: %s", (long)(d - l->disk), strerror(-r));
	struct fe_dev *fe = d->blk->fe;
	if (fe->violations)
		failf(l, "disk %ld: the device answered a request not in flight (queue %u, used "
		      "entry %u names head %u)", (long)(d - l->disk), fe->violation_queue,
		      fe->violation_pos, fe->violation_id);
}

/* ---- console ------------------------------------------------------------ */

static void console_step(struct load *l)
{
	struct load_console *c = &l->con;
	uint8_t buf[4096];
	/* endpoint -> cell */
	if (!l->stopping) {
		stream_gen(&c->to_cell, 0, buf, sizeof(buf));
		ssize_t w = send(c->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			c->to_cell.sent += (uint64_t)w;
		else if (w < 0 && errno != EAGAIN)
			failf(l, "console: the endpoint socket: %s", strerror(errno));
	}
	int r = fe_console_poll(c->con, 0);
	if (r == -ENODEV)
		failf(l, "console: the back-end is no longer READY (a reset)");
	if (c->con->fe->violations)
		failf(l, "console: the device answered a request not in flight");
	size_t got;
	while ((got = fe_console_recv(c->con, buf, sizeof(buf))) > 0)
		stream_take(l, &c->to_cell, 0, buf, got, "to the cell");
	/* cell -> endpoint */
	if (!l->stopping && c->con->tx_inflight < 8) {
		stream_gen(&c->from_cell, 1, buf, 1500);
		c->from_cell.sent += fe_console_send(c->con, buf, 1500);
	}
	ssize_t n;
	while ((n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		stream_take(l, &c->from_cell, 1, buf, (size_t)n, "from the cell");
	if (n == 0)
		failf(l, "console: the endpoint closed the connection");
	else if (errno != EAGAIN)
		failf(l, "console: the endpoint socket: %s", strerror(errno));
}

/* ---- running ------------------------------------------------------------ */

static bool busy(const struct load *l)
{
	for (unsigned i = 0; i < l->ndisks; i++)
		if (l->disk[i].inflight)
			return true;
	return false;
}

/* Wait for any interrupt or console input, at most ms; note which disks
 * got an interrupt. */
static void wait_any(struct load *l, int ms)
{
	struct pollfd p[64];
	unsigned n = 0, first[LOAD_MAX_DISKS + 1];
	for (unsigned i = 0; i < l->ndisks; i++) {
		struct ivshm_port *port = l->disk[i].blk->fe->port;
		first[i] = n;
		for (unsigned k = 0; k < port->n_watch && n < 63; k++)
			p[n++] = (struct pollfd){ port->watch_fd[k], POLLIN, 0 };
	}
	first[l->ndisks] = n;
	if (l->has_con) {
		struct ivshm_port *port = l->con.con->fe->port;
		for (unsigned k = 0; k < port->n_watch && n < 62; k++)
			p[n++] = (struct pollfd){ port->watch_fd[k], POLLIN, 0 };
		p[n++] = (struct pollfd){ l->con.sock, POLLIN, 0 };
	}
	poll(p, n, ms);
	uint64_t t = now_ns();
	for (unsigned i = 0; i < l->ndisks; i++) {
		struct load_disk *d = &l->disk[i];
		d->irq = false;
		for (unsigned k = first[i]; k < first[i + 1]; k++)
			d->irq |= (p[k].revents & POLLIN) != 0;
		if (d->irq)
			d->last_irq_ns = t;
	}
}

static void step(struct load *l)
{
	for (unsigned i = 0; i < l->ndisks; i++)
		fill(l, &l->disk[i]);
	wait_any(l, 2);
	uint64_t t = now_ns();
	for (unsigned i = 0; i < l->ndisks; i++) {
		struct load_disk *d = &l->disk[i];
		/* like the Linux driver: completions are taken on an interrupt */
		if (d->irq)
			reap(l, d);
		else if (d->inflight && t - d->last_irq_ns > LOAD_STALL_MS * 1000000ull)
			failf(l, "disk %u: %u request(s) in flight and no interrupt for %d ms", i,
			      d->inflight, LOAD_STALL_MS);
	}
	if (l->has_con)
		console_step(l);
	t = now_ns();
	if (busy(l) && l->last_completion_ns && t - l->last_completion_ns > l->max_gap_ns)
		l->max_gap_ns = t - l->last_completion_ns;
}

int load_run(struct load *l, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (!l->failed && now_ns() < end)
		step(l);
	return l->failed ? -1 : 0;
}

/* Every record sent has arrived (the last one, when some may be missing). */
static bool stream_settled(const struct load_stream *st)
{
	return st->next == st->sent / 8;
}

static bool console_settled(const struct load *l)
{
	const struct load_console *c = &l->con;
	return !l->has_con || (stream_settled(&c->to_cell) && stream_settled(&c->from_cell) &&
			       c->con->tx_inflight == 0);
}

int load_drain(struct load *l, int timeout_ms)
{
	l->stopping = true;
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (!l->failed && (busy(l) || !console_settled(l))) {
		if (now_ns() >= end) {
			failf(l, "drain: requests or console bytes still outstanding after %d ms",
			      timeout_ms);
			break;
		}
		step(l);
	}
	l->stopping = false;
	return l->failed ? -1 : 0;
}

int load_verify(struct load *l)
{
	uint8_t *buf = malloc(LOAD_SLOT);
	if (!buf)
		return -1;
	for (unsigned i = 0; i < l->ndisks && !l->failed; i++) {
		struct load_disk *d = &l->disk[i];
		for (uint64_t off = 0; off < d->size; off += LOAD_SLOT) {
			uint32_t len = (uint32_t)(d->size - off < LOAD_SLOT ? d->size - off : LOAD_SLOT);
			int r = fe_blk_io(d->blk, 0, VIRTIO_BLK_T_IN, off / 512, buf, len);
			reap(l, d);
			if (l->failed)
				break;
			if (r != VIRTIO_BLK_S_OK) {
				failf(l, "verify: disk %u: read at %llu: status %d", i,
				      (unsigned long long)off, r);
				break;
			}
			if (memcmp(buf, d->model + off, len) != 0) {
				failf(l, "verify: disk %u: the 64 KiB at %llu differ from the model", i,
				      (unsigned long long)off);
				break;
			}
		}
	}
	free(buf);
	return l->failed ? -1 : 0;
}

void load_free(struct load *l)
{
	for (unsigned i = 0; i < l->ndisks; i++) {
		free(l->disk[i].model);
		free(l->disk[i].busy);
		free(l->disk[i].reqs);
	}
	l->ndisks = 0;
}
