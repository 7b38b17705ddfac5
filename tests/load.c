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

/* The console streams: byte p of a direction. */
static uint8_t pattern(uint64_t p, unsigned dir)
{
	return (uint8_t)(p * 7 + (p >> 8) + dir * 101);
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
		if (d->inflight++ == 0 && l->last_completion_ns == 0)
			l->last_completion_ns = now_ns();
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
		failf(l, "disk %ld: the back-end is no longer READY (a reset)", (long)(d - l->disk));
	else if (r < 0 && r != -ETIMEDOUT)
		failf(l, "disk %ld: %s", (long)(d - l->disk), strerror(-r));
	if (d->blk->fe->violations)
		failf(l, "disk %ld: the device answered a request not in flight",
		      (long)(d - l->disk));
}

/* ---- console ------------------------------------------------------------ */

static void console_step(struct load *l)
{
	struct load_console *c = &l->con;
	uint8_t buf[4096];
	/* endpoint -> cell */
	uint64_t lim = c->limit ? c->limit : UINT64_MAX;
	if (!l->stopping && c->to_cell_sent < lim) {
		size_t n = sizeof(buf);
		if (c->to_cell_sent + n > lim)
			n = (size_t)(lim - c->to_cell_sent);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(c->to_cell_sent + i, 0);
		ssize_t w = send(c->sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			c->to_cell_sent += (uint64_t)w;
		else if (w < 0 && errno != EAGAIN)
			failf(l, "console: the endpoint socket: %s", strerror(errno));
	}
	int r = fe_console_poll(c->con, 0);
	if (r == -ENODEV)
		failf(l, "console: the back-end is no longer READY (a reset)");
	if (c->con->fe->violations)
		failf(l, "console: the device answered a request not in flight");
	size_t got;
	while ((got = fe_console_recv(c->con, buf, sizeof(buf))) > 0) {
		for (size_t i = 0; i < got; i++, c->to_cell_seen++)
			if (buf[i] != pattern(c->to_cell_seen, 0)) {
				failf(l, "console: byte %llu to the cell is 0x%02x, not 0x%02x",
				      (unsigned long long)c->to_cell_seen, buf[i],
				      pattern(c->to_cell_seen, 0));
				return;
			}
	}
	/* cell -> endpoint */
	if (!l->stopping && c->from_cell_sent < lim && c->con->tx_inflight < 8) {
		size_t n = 1500;
		if (c->from_cell_sent + n > lim)
			n = (size_t)(lim - c->from_cell_sent);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(c->from_cell_sent + i, 1);
		c->from_cell_sent += fe_console_send(c->con, buf, n);
	}
	ssize_t n;
	while ((n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t i = 0; i < n; i++, c->from_cell_seen++)
			if (buf[i] != pattern(c->from_cell_seen, 1)) {
				failf(l, "console: byte %llu from the cell is 0x%02x, not 0x%02x",
				      (unsigned long long)c->from_cell_seen, buf[i],
				      pattern(c->from_cell_seen, 1));
				return;
			}
	}
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

/* Wait for any interrupt or console input, at most ms. */
static void wait_any(struct load *l, int ms)
{
	struct pollfd p[64];
	unsigned n = 0;
	for (unsigned i = 0; i < l->ndisks; i++) {
		struct ivshm_port *port = l->disk[i].blk->fe->port;
		for (unsigned k = 0; k < port->n_watch && n < 63; k++)
			p[n++] = (struct pollfd){ port->watch_fd[k], POLLIN, 0 };
	}
	if (l->has_con) {
		struct ivshm_port *port = l->con.con->fe->port;
		for (unsigned k = 0; k < port->n_watch && n < 62; k++)
			p[n++] = (struct pollfd){ port->watch_fd[k], POLLIN, 0 };
		p[n++] = (struct pollfd){ l->con.sock, POLLIN, 0 };
	}
	poll(p, n, ms);
}

static void step(struct load *l)
{
	for (unsigned i = 0; i < l->ndisks; i++)
		fill(l, &l->disk[i]);
	wait_any(l, 2);
	for (unsigned i = 0; i < l->ndisks; i++)
		reap(l, &l->disk[i]);
	if (l->has_con)
		console_step(l);
	uint64_t t = now_ns();
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

static bool console_settled(const struct load *l)
{
	const struct load_console *c = &l->con;
	return !l->has_con || (c->to_cell_seen == c->to_cell_sent &&
			       c->from_cell_seen == c->from_cell_sent && c->con->tx_inflight == 0);
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
