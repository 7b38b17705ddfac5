#include "tests/frontend/fe.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/port_sim.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "core/virtqueue.h"

bool fe_backend_ready(const struct fe_dev *fe)
{
	return ivshm_port_peer_state(fe->port) == VIRTIO_STATE_READY;
}

uint8_t fe_status(const struct fe_dev *fe)
{
	return (uint8_t)shm_ld32(fe->rw, VI_DEVICE_STATUS);
}

static uint64_t pool_alloc(struct fe_dev *fe, size_t size, bool zero)
{
	pthread_mutex_lock(&fe->pool_lock);
	uint64_t off = dma_pool_alloc(&fe->pool, size);
	pthread_mutex_unlock(&fe->pool_lock);
	if (off != DMA_POOL_FULL && zero)
		memset(fe->rw + off, 0, size);
	return off == DMA_POOL_FULL ? UINT64_MAX : off;
}

uint64_t fe_alloc(struct fe_dev *fe, size_t size)
{
	return pool_alloc(fe, size, true);
}

uint64_t fe_alloc_nozero(struct fe_dev *fe, size_t size)
{
	return pool_alloc(fe, size, false);
}

void fe_free(struct fe_dev *fe, uint64_t off, size_t size)
{
	pthread_mutex_lock(&fe->pool_lock);
	dma_pool_free(&fe->pool, off, size);
	pthread_mutex_unlock(&fe->pool_lock);
}

static int wait_ack(struct fe_dev *fe)
{
	uint64_t deadline = fe_now_ms() + (uint64_t)fe->timeout_ms;
	for (unsigned spins = 0;; spins++) {
		if (shm_ld32_acquire(fe->rw, VI_WRITE_TRANSACTION) == 0)
			return 0;
		if (!fe_backend_ready(fe))
			return -ENODEV;     /* Linux: "backend failed!" */
		if ((spins & 255) == 255) {
			if (fe_now_ms() > deadline)
				return -ETIMEDOUT;
			sched_yield();
		}
	}
}

int fe_sync(struct fe_dev *fe)
{
	return wait_ack(fe);
}

int fe_reg_write(struct fe_dev *fe, uint32_t off, uint64_t val, unsigned size)
{
	int r = wait_ack(fe);
	if (r < 0)
		return r;
	switch (size) {
	case 1: shm_st8(fe->rw, off, (uint8_t)val); break;
	case 2: shm_st16(fe->rw, off, (uint16_t)val); break;
	case 4: shm_st32(fe->rw, off, (uint32_t)val); break;
	default: shm_st64(fe->rw, off, val); break;
	}
	shm_wmb();
	shm_st32(fe->rw, VI_WRITE_TRANSACTION, off);
	shm_wmb();
	ivshm_port_notify(fe->port, 0);
	return 0;
}

int fe_read_config(struct fe_dev *fe, uint32_t off, void *buf, size_t len)
{
	uint64_t deadline = fe_now_ms() + (uint64_t)fe->timeout_ms;
	for (;;) {
		uint32_t gen = shm_ld32_acquire(fe->rw, VI_CONFIG_GENERATION);
		if (!(gen & 1)) {
			memcpy(buf, fe->rw + VI_CONFIG + off, len);
			shm_rmb();
			if (shm_ld32(fe->rw, VI_CONFIG_GENERATION) == gen)
				return 0;
		}
		if (!fe_backend_ready(fe))
			return -ENODEV;
		if (fe_now_ms() > deadline)
			return -ETIMEDOUT;
	}
}

static void got_interrupt(struct fe_dev *fe)
{
	__atomic_fetch_add(&fe->interrupts, 1, __ATOMIC_RELAXED);
	/* Shared/single-vector modes rely on the flags; clear them always. */
	shm_st8(fe->rw, VI_QUEUE_EVENT, 0);
	shm_st8(fe->rw, VI_CONFIG_EVENT, 0);
	shm_mb();
}

int fe_wait(struct fe_dev *fe, int timeout_ms)
{
	struct pollfd pfd[IVSHM_PORT_MAX_WATCH];
	struct ivshm_port *p = fe->port;
	for (unsigned i = 0; i < p->n_watch; i++) {
		pfd[i].fd = p->watch_fd[i];
		pfd[i].events = POLLIN;
	}
	if (!fe_backend_ready(fe)) {
		fe->gone_why = 1;
		return -ENODEV;
	}
	int n = poll(pfd, p->n_watch, timeout_ms);
	if (n <= 0)
		return n < 0 && errno != EINTR ? -errno : 0;
	int got = 0;
	for (unsigned i = 0; i < p->n_watch; i++) {
		int vector;
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int r = ivshm_port_handle(p, i, &vector);
		if (r < 0) {
			fe->gone_why = 2;
			return -ENODEV;
		}
		got |= r;
	}
	if (got)
		got_interrupt(fe);
	if (!fe_backend_ready(fe))
		fe->gone_why = 3;
	return fe_backend_ready(fe) ? 1 : -ENODEV;
}

int fe_queue_watch(const struct fe_dev *fe, unsigned q)
{
	uint32_t v = fe->port->vectors;
	/* a vector of its own: 1 + q (setup_queue); watch 0 is the link socket */
	return q < fe->nq && v >= 1 + fe->nq && fe->vq[q].driver_vector == 1 + q
	       ? 1 + (int)fe->vq[q].driver_vector : -1;
}

int fe_handle_watch(struct fe_dev *fe, unsigned idx)
{
	int vector;
	if (idx >= fe->port->n_watch)
		return -EINVAL;
	int r = ivshm_port_handle(fe->port, idx, &vector);
	if (r < 0)
		return -ENODEV;
	if (r)
		got_interrupt(fe);
	return fe_backend_ready(fe) ? r : -ENODEV;
}

int fe_open(const char *path, int wait_ms, struct fe_dev **ret, char *err, size_t err_len)
{
	struct fe_dev *fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->timeout_ms = 10000;
	pthread_mutex_init(&fe->pool_lock, NULL);
	int r = port_sim_connect(path, 5000, &fe->port, err, err_len);
	if (r < 0) {
		pthread_mutex_destroy(&fe->pool_lock);
		free(fe);
		return r;
	}
	struct ivshm_port *p = fe->port;
	if ((p->protocol & IVSHM_PROTO_VIRTIO_ROLE_MASK) != IVSHM_PROTO_VIRTIO_FRONT) {
		snprintf(err, err_len, "link gives us protocol 0x%04x, not a virtio front-end",
			 p->protocol);
		r = -EPROTO;
		goto fail;
	}
	fe->device_id = p->protocol & IVSHM_PROTO_VIRTIO_DEVID_MASK;
	fe->rw = p->rw;
	fe->rw_size = p->rw_size;
	ivshm_port_set_int_control(p, true);
	uint64_t deadline = fe_now_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
	while (!fe_backend_ready(fe)) {
		int left = (int)(deadline - fe_now_ms());
		if (wait_ms <= 0 || fe_now_ms() >= deadline) {
			snprintf(err, err_len, "backend not ready");
			r = -ENODEV;
			goto fail;
		}
		struct pollfd pfd = { .fd = p->watch_fd[1], .events = POLLIN };
		if (poll(&pfd, 1, left > 50 ? 50 : left) > 0) {
			int v;
			ivshm_port_handle(p, 1, &v);
		}
	}
	ivshm_port_set_int_control(p, false);   /* Linux enables it after find_vqs */
	uint32_t rev = shm_ld32(fe->rw, VI_REVISION);
	fe->hdr_size = shm_ld32(fe->rw, VI_SIZE);
	if (rev < 1 || fe->hdr_size < VI_CONFIG || fe->hdr_size > fe->rw_size / 2) {
		snprintf(err, err_len, "invalid header (revision %u, size %u)", rev, fe->hdr_size);
		r = -EPROTO;
		goto fail;
	}
	r = dma_pool_init(&fe->pool, fe->rw_size, fe->hdr_size);
	if (r < 0)
		goto fail;
	ivshm_port_set_state(p, VIRTIO_STATE_READY);
	*ret = fe;
	return 0;
fail:
	ivshm_port_destroy(fe->port);
	pthread_mutex_destroy(&fe->pool_lock);
	free(fe);
	return r;
}

static int setup_queue(struct fe_dev *fe, unsigned i, uint16_t qsize, char *err, size_t err_len)
{
	struct fe_vq *vq = &fe->vq[i];
	int r = fe_reg_write(fe, VI_QUEUE_SEL, i, 4);
	if (r == 0)
		r = fe_sync(fe);
	if (r < 0)
		return r;
	uint16_t max = shm_ld16(fe->rw, VI_QUEUE_SIZE);
	if (shm_ld16(fe->rw, VI_QUEUE_ENABLE) || max == 0) {
		snprintf(err, err_len, "queue %u unavailable (size %u)", i, max);
		return -ENOENT;
	}
	uint16_t num = qsize < max ? qsize : max;
	vq->num = num;
	vq->device_vector = shm_ld16(fe->rw, VI_QUEUE_DEVICE_VECTOR);
	uint32_t v = fe->port->vectors;
	vq->driver_vector = v >= 1 + fe->nq ? (uint16_t)(1 + i) : v >= 2 ? 1 : 0;
	uint64_t used_at = (vq_desc_bytes(num) + vq_avail_bytes(num) + 63) & ~63ull;
	size_t total = used_at + vq_used_bytes(num);
	vq->ring_off = fe_alloc(fe, total);
	if (vq->ring_off == UINT64_MAX) {
		snprintf(err, err_len, "shared memory is full");
		return -ENOMEM;
	}
	vq->desc = vq->ring_off;
	vq->avail = vq->ring_off + vq_desc_bytes(num);
	vq->used = vq->ring_off + used_at;
	vq->next = calloc(num, sizeof(*vq->next));
	vq->chain_len = calloc(num, sizeof(*vq->chain_len));
	vq->indirect = calloc(num, sizeof(*vq->indirect));
	vq->indirect_len = calloc(num, sizeof(*vq->indirect_len));
	vq->token = calloc(num, sizeof(*vq->token));
	if (!vq->next || !vq->chain_len || !vq->indirect || !vq->indirect_len || !vq->token)
		return -ENOMEM;
	for (uint16_t k = 0; k < num; k++) {
		vq->next[k] = (uint16_t)(k + 1);
		vq->indirect[k] = UINT64_MAX;
	}
	vq->num_free = num;
	if ((r = fe_reg_write(fe, VI_QUEUE_SIZE, num, 2)) ||
	    (r = fe_reg_write(fe, VI_QUEUE_DRIVER_VECTOR, vq->driver_vector, 2)) ||
	    (r = fe_reg_write(fe, VI_QUEUE_DESC, vq->desc, 8)) ||
	    (r = fe_reg_write(fe, VI_QUEUE_DRIVER, vq->avail, 8)) ||
	    (r = fe_reg_write(fe, VI_QUEUE_DEVICE, vq->used, 8)) ||
	    (r = fe_reg_write(fe, VI_QUEUE_ENABLE, 1, 2)))
		return r;
	return 0;
}

int fe_init(struct fe_dev *fe, uint64_t want, unsigned nq, uint16_t qsize,
	    char *err, size_t err_len)
{
	int r;
	snprintf(err, err_len, "backend failed during setup");
	if ((r = fe_reg_write(fe, VI_DEVICE_STATUS, 0, 4)) ||
	    (r = fe_reg_write(fe, VI_DEVICE_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 4)) ||
	    (r = fe_reg_write(fe, VI_DEVICE_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
			      VIRTIO_STATUS_DRIVER, 4)))
		return r;
	uint32_t words[2];
	for (int sel = 1; sel >= 0; sel--) {
		if ((r = fe_reg_write(fe, VI_DEVICE_FEATURES_SEL, (uint32_t)sel, 4)) ||
		    (r = fe_sync(fe)))
			return r;
		words[sel] = shm_ld32(fe->rw, VI_DEVICE_FEATURES);
	}
	uint64_t offered = (uint64_t)words[1] << 32 | words[0];
	fe->features = offered & want;
	if (!(fe->features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		snprintf(err, err_len, "device does not offer VERSION_1");
		return -EINVAL;
	}
	if ((r = fe_reg_write(fe, VI_DRIVER_FEATURES_SEL, 1, 4)) ||
	    (r = fe_reg_write(fe, VI_DRIVER_FEATURES, fe->features >> 32, 4)) ||
	    (r = fe_reg_write(fe, VI_DRIVER_FEATURES_SEL, 0, 4)) ||
	    (r = fe_reg_write(fe, VI_DRIVER_FEATURES, (uint32_t)fe->features, 4)) ||
	    (r = fe_reg_write(fe, VI_DEVICE_STATUS, 0x0b, 4)) || (r = fe_sync(fe)))
		return r;
	if (!(fe_status(fe) & VIRTIO_STATUS_FEATURES_OK)) {
		snprintf(err, err_len, "device refused features 0x%llx",
			 (unsigned long long)fe->features);
		return -EINVAL;
	}
	fe->nq = nq;
	fe->vq = calloc(nq, sizeof(*fe->vq));
	if (!fe->vq)
		return -ENOMEM;
	for (unsigned i = 0; i < nq; i++)
		if ((r = setup_queue(fe, i, qsize, err, err_len)) < 0)
			return r;
	ivshm_port_set_int_control(fe->port, true);
	if ((r = fe_reg_write(fe, VI_DEVICE_STATUS, 0x0f, 4)) || (r = fe_sync(fe)))
		return r;
	return 0;
}

/* What setup_queue took from the pool for vq's rings. */
static size_t ring_bytes(uint16_t num)
{
	uint64_t used_at = (vq_desc_bytes(num) + vq_avail_bytes(num) + 63) & ~63ull;
	return used_at + vq_used_bytes(num);
}

int fe_reset(struct fe_dev *fe, void (*abandoned)(void *token, void *arg), void *arg)
{
	int r = fe_reg_write(fe, VI_DEVICE_STATUS, 0, 4);
	if (r == 0)
		r = fe_sync(fe);
	if (r < 0)
		return r;
	/* Acknowledged: the device answered what it had and touches the rings
	 * no more.  The queues go, like the Linux driver's del_vqs. */
	for (unsigned i = 0; fe->vq && i < fe->nq; i++) {
		struct fe_vq *vq = &fe->vq[i];
		for (unsigned h = 0; h < vq->num; h++) {
			if (vq->token[h] && abandoned)
				abandoned(vq->token[h], arg);
			if (vq->indirect[h] != UINT64_MAX)
				fe_free(fe, vq->indirect[h], vq->indirect_len[h]);
		}
		fe_free(fe, vq->ring_off, ring_bytes(vq->num));
		free(vq->next);
		free(vq->chain_len);
		free(vq->indirect);
		free(vq->indirect_len);
		free(vq->token);
	}
	free(fe->vq);
	fe->vq = NULL;
	fe->nq = 0;
	return 0;
}

void fe_close(struct fe_dev *fe)
{
	if (!fe)
		return;
	ivshm_port_set_state(fe->port, VIRTIO_STATE_RESET);
	ivshm_port_set_int_control(fe->port, false);
	ivshm_port_destroy(fe->port);
	for (unsigned i = 0; fe->vq && i < fe->nq; i++) {
		free(fe->vq[i].next);
		free(fe->vq[i].chain_len);
		free(fe->vq[i].indirect);
		free(fe->vq[i].indirect_len);
		free(fe->vq[i].token);
	}
	free(fe->vq);
	dma_pool_destroy(&fe->pool);
	pthread_mutex_destroy(&fe->pool_lock);
	free(fe);
}

static void write_desc(struct fe_dev *fe, uint64_t table, unsigned i, const struct fe_sg *sg,
		       bool more, uint16_t next)
{
	uint64_t d = table + 16ull * i;
	shm_st64(fe->rw, d, sg->off);
	shm_st32(fe->rw, d + 8, sg->len);
	shm_st16(fe->rw, d + 12, (uint16_t)((more ? VRING_DESC_F_NEXT : 0) |
					    (sg->write ? VRING_DESC_F_WRITE : 0)));
	shm_st16(fe->rw, d + 14, next);
}

int fe_vq_add(struct fe_dev *fe, unsigned q, const struct fe_sg *sg, unsigned n, void *token)
{
	struct fe_vq *vq = &fe->vq[q];
	bool indirect = (fe->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) && n > 1;
	unsigned need = indirect ? 1 : n;
	if (n == 0 || vq->num_free < need)
		return -ENOSPC;
	uint16_t head = vq->free_head;
	if (indirect) {
		uint64_t table = fe_alloc(fe, 16ull * n);
		if (table == UINT64_MAX)
			return -ENOSPC;
		for (unsigned i = 0; i < n; i++)
			write_desc(fe, table, i, &sg[i], i + 1 < n, (uint16_t)(i + 1));
		struct fe_sg ind = { .off = table, .len = 16 * n };
		write_desc(fe, vq->desc, head, &ind, false, 0);
		shm_st16(fe->rw, vq->desc + 16ull * head + 12, VRING_DESC_F_INDIRECT);
		vq->indirect[head] = table;
		vq->indirect_len[head] = 16 * n;
		vq->free_head = vq->next[head];
	} else {
		uint16_t i = head;
		for (unsigned k = 0; k < n; k++) {
			uint16_t nx = vq->next[i];
			write_desc(fe, vq->desc, i, &sg[k], k + 1 < n, nx);
			if (k + 1 < n)
				i = nx;
			else
				vq->free_head = nx;
		}
	}
	vq->chain_len[head] = (uint16_t)need;
	vq->num_free -= need;
	vq->token[head] = token;
	shm_st16(fe->rw, vq->avail + 4 + 2ull * (vq->avail_idx & (vq->num - 1)), head);
	vq->avail_idx++;
	if (fe->publish_each)
		shm_st16_release(fe->rw, vq->avail + 2, vq->avail_idx);
	return 0;
}

void fe_vq_kick(struct fe_dev *fe, unsigned q)
{
	struct fe_vq *vq = &fe->vq[q];
	uint16_t old = vq->kicked_idx, now = vq->avail_idx;
	if (old == now)
		return;
	shm_wmb();
	shm_st16_release(fe->rw, vq->avail + 2, now);
	vq->kicked_idx = now;
	shm_mb();
	bool kick;
	if (fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) {
		uint16_t ev = shm_ld16(fe->rw, vq->used + 4 + 8ull * vq->num);
		kick = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	} else {
		kick = !(shm_ld16(fe->rw, vq->used) & 1);
	}
	if (kick) {
		vq->kicks++;
		ivshm_port_notify(fe->port, vq->device_vector);
	}
}

void fe_vq_set_poll_queue(struct fe_dev *fe, unsigned q)
{
	struct fe_vq *vq = &fe->vq[q];
	vq->poll_queue = true;
	if (!(fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)))
		shm_st16(fe->rw, vq->avail, VRING_AVAIL_F_NO_INTERRUPT);
	shm_mb();
}

void *fe_vq_get(struct fe_dev *fe, unsigned q, uint32_t *len)
{
	struct fe_vq *vq = &fe->vq[q];
	uint16_t used_idx = shm_ld16_acquire(fe->rw, vq->used + 2);
	if (used_idx == vq->last_used)
		return NULL;
	uint64_t e = vq->used + 4 + 8ull * (vq->last_used & (vq->num - 1));
	uint32_t id = shm_ld32(fe->rw, e);
	*len = shm_ld32(fe->rw, e + 4);
	if (id >= vq->num || !vq->token[id]) {
		/* A misbehaving device (an id not in flight: answered twice, or
		 * made up): counted, and the tests see it as a hang. */
		if (!fe->violations++) {
			fe->violation_queue = q;
			fe->violation_id = id;
			fe->violation_pos = vq->last_used;
		}
		return NULL;
	}
	void *token = vq->token[id];
	vq->token[id] = NULL;
	/* Return the chain to the free list. */
	uint16_t last = (uint16_t)id;
	for (unsigned k = 1; k < vq->chain_len[id]; k++)
		last = vq->next[last];      /* our private links, not the ring's */
	vq->next[last] = vq->free_head;
	vq->free_head = (uint16_t)id;
	vq->num_free += vq->chain_len[id];
	if (vq->indirect[id] != UINT64_MAX) {
		fe_free(fe, vq->indirect[id], vq->indirect_len[id]);
		vq->indirect[id] = UINT64_MAX;
	}
	vq->last_used++;
	if (!vq->poll_queue && (fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX))) {
		shm_st16(fe->rw, vq->avail + 4 + 2ull * vq->num, vq->last_used);
		/* used_event must be visible before the next load of used->idx
		 * (store, then load: only a full barrier orders them, on x86 as
		 * well).  Without it the device may publish, read the old
		 * used_event and not interrupt while we read the old index and
		 * go to sleep: a lost wakeup (Linux: virtio_store_mb there). */
		shm_mb();
	}
	return token;
}
