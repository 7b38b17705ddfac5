/* Internal to the software-link fuzz target: fuzz_sim.c (a hostile link
 * host against port_sim, and take-overs from hostile descriptions) and
 * fuzz_sim_link.c (hostile peers against sim_link and the daemon's own
 * port on it). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/port.h"
#include "tests/fuzz/fuzz.h"

/* A file descriptor of a kind the input picks: none (-1), shared memory
 * of a size the input picks, an eventfd, a pipe, /dev/null, a socket. */
int fs_make_fd(struct fz *f);
/* A memfd of size bytes (that may be sealed), or -1. */
int fs_memfd(uint64_t size);
/* Send len bytes with fds[0..nfd) attached; the fds stay the caller's. */
void fs_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfd);

/* What the daemon does with a port, whatever it is: interrupts, state,
 * doorbells, and loads and stores at both ends of its memory. */
void fs_use_port(struct ivshm_port *p, struct fz *f);

void fs_link_run(struct fz *f, uv_loop_t *loop, const char *path);
void fs_link_adopt(struct fz *f, uv_loop_t *loop, const char *path);
