/* IVSHMEM link port on the software device (sim_link.h), from a peer's side.
 *
 * It reproduces the device semantics of docs/protocol.md §1 in the peer's
 * process: a doorbell writes the target's eventfd for that vector (whatever
 * file the link host sent for it, made non-blocking: a doorbell never
 * blocks); a STATE write updates the state table and, if the value changed,
 * rings vector 0 of every other peer; an interrupt is delivered only while
 * INT_CONTROL is on (no latching) and one-shot mode clears it on delivery;
 * PEER_GONE from the link raises our own vector 0.  Watch fd 0 is the link
 * socket, watch fd 1+v is the eventfd of own vector v, so the owner knows
 * which vector fired.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/port.h"

/* Connect to a link host listening on path and complete the handshake
 * (bounded by timeout_ms).  Negative errno and a reason in err on failure. */
int port_sim_connect(const char *path, int timeout_ms, struct ivshm_port **ret,
		     char *err, size_t err_len);

/* Same over an already connected socket (takes ownership of sock). */
int port_sim_open_fd(int sock, const char *name, int timeout_ms, struct ivshm_port **ret,
		     char *err, size_t err_len);

/* Take over a port another process exported (ivshm_port_export) under
 * prefix in h, with the blob it wrote.  The blob is checked like a
 * handshake (ivshm_port_check_virtio): -EBADMSG otherwise.  Negative errno
 * and the reason in err; fds taken from h are closed on failure. */
int port_sim_adopt(const char *name, const uint8_t *blob, size_t len, struct handover *h,
		   const char *prefix, struct ivshm_port **ret, char *err, size_t err_len);

/* One-shot interrupt mode (Privileged Control bit 0); off by default. */
void port_sim_set_oneshot(struct ivshm_port *p, bool oneshot);
