/* An IVSHMEM v2 link as seen by one peer ("port").
 *
 * Two implementations share this interface: port_uio (a /dev/uioN bound to
 * uio_ivshmem, on Jailhouse) and port_sim (the software link of sim_link.h).
 * A port gives access to the shared regions, lets its owner ring the other
 * peer, publish its own state and read the peer's, and exposes file
 * descriptors that become readable when an interrupt arrives.
 *
 * Interrupt semantics follow the device (docs/protocol.md §1): delivery is gated
 * by INT_CONTROL and not latched.  The owner must call ivshm_port_rearm()
 * after each wakeup and before rescanning shared memory.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/handover.h"
#include "core/ivshmem.h"
#include "core/shm.h"

#define IVSHM_PORT_MAX_WATCH   65     /* sim: link socket + up to 64 vectors */
#define IVSHM_VECTOR_UNKNOWN   (-1)   /* uio folds all vectors into one event */

struct ivshm_port;

struct ivshm_port_ops {
	void (*set_int_control)(struct ivshm_port *p, bool enable);
	void (*doorbell)(struct ivshm_port *p, uint32_t peer, uint32_t vector);
	void (*set_state)(struct ivshm_port *p, uint32_t state);
	/* See ivshm_port_handle(). */
	int (*handle)(struct ivshm_port *p, unsigned watch_idx, int *vector);
	void (*destroy)(struct ivshm_port *p);
	/* See ivshm_port_export(). */
	int (*export)(struct ivshm_port *p, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap);
};

struct ivshm_port {
	const struct ivshm_port_ops *ops;
	char name[96];                       /* "uio:/dev/uio0", "sim:/run/x.sock" */
	uint32_t id;                         /* own peer ID */
	uint32_t peer_id;                    /* the other peer (!id) */
	uint32_t max_peers;
	uint32_t vectors;                    /* interrupt vectors per peer, >= 1 */
	uint16_t protocol;                   /* as seen by this peer (role bits set) */
	const void *state_table;             /* u32 per peer, read-only for us */
	size_t state_table_size;
	uint8_t *rw;                         /* read/write section */
	size_t rw_size;
	int watch_fd[IVSHM_PORT_MAX_WATCH];  /* poll these for POLLIN */
	unsigned n_watch;
	/* Changes whenever what ivshm_port_export() names changes (a peer's
	 * interrupt fds came or went): its owner re-exports. */
	unsigned generation;
};

/* Consume the readiness of watch_fd[watch_idx].  Returns 1 when an interrupt
 * was delivered and stores its vector (or IVSHM_VECTOR_UNKNOWN) in *vector,
 * 0 when nothing was delivered (spurious wakeup, or INT_CONTROL was off), or
 * a negative errno when the link is gone for good (-ECONNRESET). */
static inline int ivshm_port_handle(struct ivshm_port *p, unsigned watch_idx, int *vector)
{
	return p->ops->handle(p, watch_idx, vector);
}

/* Re-enable interrupt delivery (one-shot mode clears it on each delivery),
 * then a full barrier: the caller rescans shared memory next, and those
 * loads must not be satisfied before the re-enable is done (store to load
 * ordering needs a full fence, on x86 too).  Otherwise an event the peer
 * posts in between is neither delivered (INT_CONTROL still off) nor seen
 * by the rescan (stale loads), and is lost. */
static inline void ivshm_port_rearm(struct ivshm_port *p)
{
	p->ops->set_int_control(p, true);
	shm_mb();
}

static inline void ivshm_port_set_int_control(struct ivshm_port *p, bool enable)
{
	p->ops->set_int_control(p, enable);
}

/* Ring the other peer.  Stores made before are visible to it first: the
 * doorbell is a store to a register (uio: MMIO the hypervisor turns into
 * the peer's interrupt; sim: an eventfd write), and the peer reads our
 * memory as soon as the interrupt arrives.  A release fence (arm64 DMB ISH,
 * which also orders a Device-memory store after Normal ones for the inner
 * shareable domain the peer's CPUs are in; x86 keeps stores in order). */
static inline void ivshm_port_notify(struct ivshm_port *p, uint32_t vector)
{
	shm_wmb();
	p->ops->doorbell(p, p->peer_id, vector);
}

/* Publish our state.  A full barrier first: the peer acts on the new state
 * by reading what we wrote for it (READY: the whole header), and loads we
 * made for the old state are done before it can change what they read. */
static inline void ivshm_port_set_state(struct ivshm_port *p, uint32_t state)
{
	shm_mb();
	p->ops->set_state(p, state);
}

/* The peer's state, with acquire: what it wrote before publishing that
 * state is read after it. */
static inline uint32_t ivshm_port_peer_state(const struct ivshm_port *p)
{
	return shm_ld32_acquire(p->state_table, (uint64_t)p->peer_id * 4);
}

static inline uint32_t ivshm_port_own_state(const struct ivshm_port *p)
{
	return shm_ld32_acquire(p->state_table, (uint64_t)p->id * 4);
}

void ivshm_port_destroy(struct ivshm_port *p);

/* What a new process needs to take this port over: its fds added to h as
 * "prefix/...", and whatever else into blob (up to cap bytes).  Returns the
 * blob's length or a negative errno.  The fds stay the port's (a failed
 * hand-over goes on serving).  Each kind has its adopt function. */
static inline int ivshm_port_export(struct ivshm_port *p, const char *prefix,
				    struct handover *h, uint8_t *blob, size_t cap)
{
	return p->ops->export(p, prefix, h, blob, cap);
}

/* Checks common to both implementations once a port is mapped: two peers,
 * IDs in range, state table large enough.  Returns 0 or -EPROTO. */
int ivshm_port_check_virtio(const struct ivshm_port *p, char *why, size_t why_len);

/* Is this link the virtio back-end of device_id (protocol 0xc000 | id)?  The
 * same rule for every kind of link: the protocol comes from the device (PCI
 * class through uio, the INIT message on a software link).  Returns 0 or
 * -EPROTO with the reason in why. */
int ivshm_port_check_role(const struct ivshm_port *p, uint16_t device_id, char *why,
			  size_t why_len);
