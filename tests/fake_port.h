/* A fake IVSHMEM port for unit tests: no device, no sockets.
 *
 * The state table and the R/W section are plain malloc'd memory.  The ops
 * record what the code under test does: every doorbell (target peer, vector,
 * and the config_event / queue_event bytes of the virtio header at the moment
 * of ringing), every INT_CONTROL write and every state change.  set_state
 * writes the own entry of the state table like the device does; the test
 * plays the other peer by writing its entry with fake_port_set_peer_state().
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/port.h"

#define FAKE_PORT_MAX_LOG 256

struct fake_doorbell {
	uint32_t peer;
	uint32_t vector;
	uint8_t config_event;       /* rw[0x40] when the doorbell was rung */
	uint8_t queue_event;        /* rw[0x41] when the doorbell was rung */
};

struct fake_port {
	struct ivshm_port port;     /* first: &fp->port is what the code sees */
	uint32_t *state_table;      /* max_peers entries, little-endian */
	struct fake_doorbell doorbells[FAKE_PORT_MAX_LOG];
	unsigned n_doorbells;
	unsigned bell_rings[64];    /* per vector, rung through bells from any thread (atomic) */
	bool int_control;
	unsigned n_int_control;
	uint32_t states[FAKE_PORT_MAX_LOG];  /* every set_state value, in order */
	unsigned n_states;
	unsigned n_destroy;
	bool rw_owned;              /* fake_port_free() frees rw */
};

/* Own ID id (peer = !id), vectors interrupt vectors, an R/W section of
 * rw_size bytes filled with fill. */
struct fake_port *fake_port_new(uint32_t id, uint32_t vectors, size_t rw_size, uint8_t fill);
/* The same over an R/W section the caller owns and keeps (e.g. one mapped
 * with guard pages around it); its contents are left as they are. */
struct fake_port *fake_port_new_at(uint32_t id, uint32_t vectors, uint8_t *rw, size_t rw_size);
void fake_port_free(struct fake_port *fp);

void fake_port_set_peer_state(struct fake_port *fp, uint32_t state);
uint32_t fake_port_own_state(const struct fake_port *fp);

/* Forget the recorded doorbells and states. */
void fake_port_clear_log(struct fake_port *fp);
