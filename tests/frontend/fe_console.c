#include "tests/frontend/fe_console.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/console.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"

#define WANT_FEATURES (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | \
		       VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | \
		       VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define MAX_SEGS 16

struct tx_chain {
	unsigned n;
	uint64_t off[MAX_SEGS];
	uint32_t len[MAX_SEGS];
};

static int post_rx(struct fe_console *c, struct fe_con_rxbuf *b)
{
	struct fe_sg sg = { .off = b->off, .len = c->rx_size, .write = true };
	int r = fe_vq_add(c->fe, VCON_RX_QUEUE, &sg, 1, b);
	if (r == 0)
		b->posted = true;
	return r;
}

static void read_size(struct fe_console *c)
{
	uint16_t v[2] = { 0, 0 };
	c->config_gen = shm_ld32_acquire(c->fe->rw, VI_CONFIG_GENERATION);
	fe_read_config(c->fe, VCON_CFG_COLS, v, sizeof(v));
	c->cols = le16toh(v[0]);
	c->rows = le16toh(v[1]);
}

int fe_console_open(const char *path, uint16_t qsize, unsigned nrx, uint32_t rx_size,
		    int wait_ms, struct fe_console **ret, char *err, size_t err_len)
{
	struct fe_console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = fe_open(path, wait_ms, &c->fe, err, err_len);
	if (r < 0) {
		free(c);
		return r;
	}
	if (c->fe->device_id != VIRTIO_ID_CONSOLE) {
		snprintf(err, err_len, "link carries virtio device %u, not a console",
			 c->fe->device_id);
		r = -EPROTO;
		goto fail;
	}
	r = fe_init(c->fe, WANT_FEATURES, 2, qsize, err, err_len);
	if (r < 0)
		goto fail;
	read_size(c);
	c->tx_segs = 1;
	c->tx_seg = 4096;
	c->rx_size = rx_size ? rx_size : 4096;
	if (nrx > c->fe->vq[VCON_RX_QUEUE].num)
		nrx = c->fe->vq[VCON_RX_QUEUE].num;
	c->nrx = nrx;
	c->rx = calloc(nrx ? nrx : 1, sizeof(*c->rx));
	if (!c->rx) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nrx; i++) {
		c->rx[i].off = fe_alloc(c->fe, c->rx_size);
		if (c->rx[i].off == UINT64_MAX) {
			snprintf(err, err_len, "shared memory is full (receive buffers)");
			r = -ENOMEM;
			goto fail;
		}
		post_rx(c, &c->rx[i]);
	}
	fe_vq_kick(c->fe, VCON_RX_QUEUE);
	*ret = c;
	return 0;
fail:
	fe_close(c->fe);
	free(c->rx);
	free(c);
	return r;
}

void fe_console_close(struct fe_console *c)
{
	if (!c)
		return;
	/* Chains the device never completed (it was stalled, or we leave). */
	struct fe_vq *tx = &c->fe->vq[VCON_TX_QUEUE];
	for (unsigned i = 0; tx->token && i < tx->num; i++)
		if (tx->token[i])
			free(tx->token[i]);
	fe_close(c->fe);
	free(c->rx);
	free(c->in);
	free(c);
}

static void free_chain(struct fe_console *c, struct tx_chain *ch)
{
	for (unsigned i = 0; i < ch->n; i++)
		fe_free(c->fe, ch->off[i], ch->len[i]);
	free(ch);
}

size_t fe_console_send(struct fe_console *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;
	unsigned segs = c->tx_segs < 1 ? 1 : c->tx_segs > MAX_SEGS ? MAX_SEGS : c->tx_segs;
	uint32_t seg = c->tx_seg ? c->tx_seg : 4096;
	bool queued = false;
	while (done < len) {
		struct tx_chain *ch = calloc(1, sizeof(*ch));
		if (!ch)
			break;
		struct fe_sg sg[MAX_SEGS];
		size_t at = done;
		while (ch->n < segs && at < len) {
			uint32_t n = (uint32_t)(len - at < seg ? len - at : seg);
			uint64_t off = fe_alloc(c->fe, n);
			if (off == UINT64_MAX)
				break;
			memcpy(fe_ptr(c->fe, off), p + at, n);
			ch->off[ch->n] = off;
			ch->len[ch->n] = n;
			sg[ch->n] = (struct fe_sg){ .off = off, .len = n, .write = false };
			ch->n++;
			at += n;
		}
		if (ch->n == 0 || fe_vq_add(c->fe, VCON_TX_QUEUE, sg, ch->n, ch) < 0) {
			free_chain(c, ch);
			break;
		}
		c->tx_inflight++;
		c->tx_chains++;
		c->tx_bytes += at - done;
		done = at;
		queued = true;
	}
	if (queued)
		fe_vq_kick(c->fe, VCON_TX_QUEUE);
	return done;
}

static void append_in(struct fe_console *c, const uint8_t *src, size_t n)
{
	if (n == 0)
		return;
	if (c->in_len + n > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 65536;
		while (cap < c->in_len + n)
			cap *= 2;
		uint8_t *in = realloc(c->in, cap);
		if (!in)
			abort();
		c->in = in;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, src, n);
	c->in_len += n;
}

static int reap(struct fe_console *c)
{
	int n = 0;
	uint32_t len;
	struct fe_con_rxbuf *b;
	bool reposted = false;
	while ((b = fe_vq_get(c->fe, VCON_RX_QUEUE, &len))) {
		b->posted = false;
		if (len > c->rx_size)
			len = c->rx_size;   /* a lying device: the test sees garbage */
		if (len == 0)
			c->rx_empty++;
		append_in(c, fe_ptr(c->fe, b->off), len);
		c->rx_bytes += len;
		c->rx_chains++;
		if (!c->rx_paused && post_rx(c, b) == 0)
			reposted = true;
		n++;
	}
	if (reposted)
		fe_vq_kick(c->fe, VCON_RX_QUEUE);
	struct tx_chain *ch;
	while ((ch = fe_vq_get(c->fe, VCON_TX_QUEUE, &len))) {
		if (len != 0)
			c->tx_bad_len++;
		free_chain(c, ch);
		c->tx_inflight--;
		n++;
	}
	return n;
}

int fe_console_poll(struct fe_console *c, int timeout_ms)
{
	int n = reap(c);
	if (n || timeout_ms <= 0)
		return n;
	int r = fe_wait(c->fe, timeout_ms);
	if (r < 0)
		return r;
	return reap(c);
}

size_t fe_console_recv(struct fe_console *c, void *buf, size_t len)
{
	size_t n = len < c->in_len ? len : c->in_len;
	if (n == 0)
		return 0;
	memcpy(buf, c->in, n);
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
	return n;
}

int fe_console_write_all(struct fe_console *c, const void *buf, size_t len, int timeout_ms)
{
	const uint8_t *p = buf;
	size_t off = 0;
	uint64_t last = fe_now_ms();
	while (off < len) {
		size_t n = fe_console_send(c, p + off, len - off);
		off += n;
		if (n)
			last = fe_now_ms();
		if (off == len)
			break;
		int r = fe_console_poll(c, 50);
		if (r < 0)
			return r;
		if (fe_now_ms() - last > (uint64_t)timeout_ms)
			return -ETIMEDOUT;
	}
	return 0;
}

int fe_console_read_exact(struct fe_console *c, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t last = fe_now_ms();
	for (;;) {
		size_t n = fe_console_recv(c, p + got, len - got);
		got += n;
		if (n)
			last = fe_now_ms();
		if (got == len)
			return 0;
		int r = fe_console_poll(c, 50);
		if (r < 0)
			return r;
		if (fe_now_ms() - last > (uint64_t)timeout_ms)
			return -ETIMEDOUT;
	}
}

int fe_console_drain(struct fe_console *c, int timeout_ms)
{
	uint64_t deadline = fe_now_ms() + (uint64_t)timeout_ms;
	while (c->tx_inflight) {
		int r = fe_console_poll(c, 50);
		if (r < 0)
			return r;
		if (fe_now_ms() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

void fe_console_rx_pause(struct fe_console *c, bool pause)
{
	c->rx_paused = pause;
	if (pause)
		return;
	bool any = false;
	for (unsigned i = 0; i < c->nrx; i++)
		if (!c->rx[i].posted && post_rx(c, &c->rx[i]) == 0)
			any = true;
	if (any)
		fe_vq_kick(c->fe, VCON_RX_QUEUE);
}

unsigned fe_console_rx_posted(const struct fe_console *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->nrx; i++)
		n += c->rx[i].posted;
	return n;
}

bool fe_console_config_update(struct fe_console *c)
{
	uint32_t gen = shm_ld32_acquire(c->fe->rw, VI_CONFIG_GENERATION);
	if (gen == c->config_gen)
		return false;
	read_size(c);
	c->config_changes++;
	return true;
}
