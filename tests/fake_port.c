#include "tests/fake_port.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/virtio_ivshmem.h"

static struct fake_port *fp_of(struct ivshm_port *p)
{
	return (struct fake_port *)p;
}

static void fake_set_int_control(struct ivshm_port *p, bool enable)
{
	struct fake_port *fp = fp_of(p);
	fp->int_control = enable;
	fp->n_int_control++;
}

static void fake_doorbell(struct ivshm_port *p, uint32_t peer, uint32_t vector)
{
	struct fake_port *fp = fp_of(p);
	if (fp->n_doorbells >= FAKE_PORT_MAX_LOG)
		abort();
	struct fake_doorbell *d = &fp->doorbells[fp->n_doorbells++];
	d->peer = peer;
	d->vector = vector;
	d->config_event = p->rw[VI_CONFIG_EVENT];
	d->queue_event = p->rw[VI_QUEUE_EVENT];
}

static void fake_bell_ring(const struct ivshm_bell *b)
{
	struct fake_port *fp = b->ctx;
	__atomic_fetch_add(&fp->bell_rings[b->value], 1, __ATOMIC_RELAXED);
}

static int fake_bell(struct ivshm_port *p, uint32_t vector, struct ivshm_bell *b)
{
	*b = (struct ivshm_bell){ .ring = fake_bell_ring, .fd = -1, .ctx = fp_of(p),
				  .value = vector < 64 ? vector : 63 };
	return 0;
}

static void fake_set_state(struct ivshm_port *p, uint32_t state)
{
	struct fake_port *fp = fp_of(p);
	if (fp->n_states >= FAKE_PORT_MAX_LOG)
		abort();
	fp->states[fp->n_states++] = state;
	__atomic_store_n(&fp->state_table[p->id], htole32(state), __ATOMIC_RELEASE);
}

static int fake_handle(struct ivshm_port *p, unsigned watch_idx, int *vector)
{
	return 0;
}

static void fake_destroy(struct ivshm_port *p)
{
	fp_of(p)->n_destroy++;
}

static const struct ivshm_port_ops fake_ops = {
	.set_int_control = fake_set_int_control,
	.doorbell = fake_doorbell,
	.bell = fake_bell,
	.set_state = fake_set_state,
	.handle = fake_handle,
	.destroy = fake_destroy,
};

struct fake_port *fake_port_new_at(uint32_t id, uint32_t vectors, uint8_t *rw, size_t rw_size)
{
	struct fake_port *fp = calloc(1, sizeof(*fp));
	if (!fp)
		return NULL;
	fp->port.ops = &fake_ops;
	strcpy(fp->port.name, "fake:test");
	fp->port.id = id;
	fp->port.peer_id = !id;
	fp->port.max_peers = 2;
	fp->port.vectors = vectors;
	fp->port.protocol = 0xc000 | VIRTIO_ID_BLOCK;
	fp->port.state_table_size = 4096;
	fp->state_table = calloc(1, 4096);
	fp->port.state_table = fp->state_table;
	fp->port.rw_size = rw_size;
	fp->port.rw = rw;
	fp->port.n_watch = 0;
	if (!fp->state_table) {
		fake_port_free(fp);
		return NULL;
	}
	return fp;
}

struct fake_port *fake_port_new(uint32_t id, uint32_t vectors, size_t rw_size, uint8_t fill)
{
	uint8_t *rw = malloc(rw_size);
	struct fake_port *fp = rw ? fake_port_new_at(id, vectors, rw, rw_size) : NULL;
	if (!fp) {
		free(rw);
		return NULL;
	}
	fp->rw_owned = true;
	memset(rw, fill, rw_size);
	return fp;
}

void fake_port_free(struct fake_port *fp)
{
	if (!fp)
		return;
	free(fp->state_table);
	if (fp->rw_owned)
		free(fp->port.rw);
	free(fp);
}

void fake_port_set_peer_state(struct fake_port *fp, uint32_t state)
{
	__atomic_store_n(&fp->state_table[fp->port.peer_id], htole32(state), __ATOMIC_RELEASE);
}

uint32_t fake_port_own_state(const struct fake_port *fp)
{
	return le32toh(__atomic_load_n(&fp->state_table[fp->port.id], __ATOMIC_ACQUIRE));
}

void fake_port_clear_log(struct fake_port *fp)
{
	fp->n_doorbells = 0;
	fp->n_states = 0;
}
