/* Software IVSHMEM v2 link host: the equivalent of QEMU's ivshmem2-server.
 *
 * It owns the shared memory (a memfd whose size is a power of two: 4 KiB
 * state table, R/W section, one output section per peer; sealed against
 * resizing and further seals, since every peer gets it) and one eventfd per
 * peer and vector, and hands them to peers over a unix socket with the
 * protocol of sim_proto.h.  Peer IDs are the lowest free ones; a peer leaves
 * on EOF or any data from it, and then its state entry is zeroed and the
 * others get PEER_GONE.
 *
 * The daemon hosts one link per device that names a `sim` socket, and takes
 * its own peer slot through sim_link_connect_local() (a socketpair), so the
 * front-end can connect directly to the daemon.  The standalone program
 * ivshmem-sim-server hosts links for setups that want a separate process.
 */
#pragma once
#include <stdint.h>
#include <uv.h>

#include "core/handover.h"

struct sim_link_params {
	/* The whole shared memory: 4 KiB state table, R/W section, output
	 * sections.  Rounded up to a power of two, as ivshmem2-server does:
	 * an IVSHMEM v2 device maps it as one PCI BAR, and BAR sizes are
	 * powers of two (QEMU's device aborts otherwise).  The R/W section
	 * gets what the state table and the output sections leave. */
	uint64_t shm_size;
	uint64_t output_size;    /* per-peer output section, may be 0 */
	uint32_t max_peers;      /* 2..SIM_MAX_PEERS */
	uint32_t vectors;        /* 1..SIM_MAX_VECTORS */
	uint16_t protocol;       /* e.g. 0x8002; role bit 14 is set for peer 0 */
};

struct sim_link;

/* Create the link and listen on path (an existing socket file is replaced).
 * On failure returns a negative errno with the reason in err. */
int sim_link_create(uv_loop_t *loop, const char *path, const struct sim_link_params *params,
		    struct sim_link **ret, char *err, size_t err_len);

/* Add an in-process peer: returns the client end of a socketpair on which
 * the INIT/EVENT_FD sequence is already queued (feed it to port_sim). */
int sim_link_connect_local(struct sim_link *link, int *client_fd);

/* Size of the R/W section peers see. */
uint64_t sim_link_rw_size(const struct sim_link *link);

/* Number of peers connected now. */
unsigned sim_link_peers(const struct sim_link *link);

/* What a new process needs to host this link on (see core/handover.h):
 * its fds in h as "prefix/...", the rest in blob; returns the blob's length
 * or a negative errno.  The fds stay the link's. */
int sim_link_export(struct sim_link *link, const char *prefix, struct handover *h,
		    uint8_t *blob, size_t cap);

/* Host the link another process exported, peers and all (the peers notice
 * nothing: their sockets and eventfds never closed). */
int sim_link_adopt(uv_loop_t *loop, const char *path, const uint8_t *blob, size_t len,
		   struct handover *h, const char *prefix, struct sim_link **ret, char *err,
		   size_t err_len);

/* Stop listening, drop every peer and free the link once libuv has closed
 * its handles (the loop must run on). */
/* Tell peer `to` again who is on the link: for every other slot "gone",
 * then the eventfds of those present, as when they joined.  After a
 * take-over, for the daemon's own peer, whose view may be older or newer
 * than what the store kept (a peer that left and another that joined
 * while the old process died). */
void sim_link_reannounce(struct sim_link *l, uint32_t to);

/* Changes whenever the set of fds sim_link_export() names changes (a peer
 * joined or left): what a supervisor keeps must be brought up to date. */
unsigned sim_link_generation(const struct sim_link *l);

void sim_link_destroy(struct sim_link *link);
