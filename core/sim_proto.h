/* Wire protocol of the software IVSHMEM link: the ivshmem2-server protocol of
 * docs/protocol.md §1 ("Software links").  A unix stream socket; each message starts with
 * {u32 type, u32 len} (little-endian, len = whole message) and carries at most
 * one file descriptor as SCM_RIGHTS.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/le.h"

#define SIM_PROTOCOL_VERSION   2

#define SIM_MSG_INIT           0   /* + shared-memory fd */
#define SIM_MSG_EVENT_FD       1   /* + eventfd of (peer, vector) */
#define SIM_MSG_PEER_GONE      2

#define SIM_INIT_LEN           40
#define SIM_EVENT_FD_LEN       16
#define SIM_PEER_GONE_LEN      12
#define SIM_MSG_MAX_LEN        4096

#define SIM_STATE_TABLE_SIZE   4096
#define SIM_MAX_VECTORS        64
#define SIM_MAX_PEERS          16
#define SIM_MAX_SHM_SIZE       (1ull << 32)

struct sim_init {
	uint32_t version, compatible_version, id, max_peers, vectors, protocol;
	uint64_t output_section_size;
};

/* Send one message (len bytes at msg) with an optional fd (-1: none). */
int sim_send(int sock, const void *msg, size_t len, int fd);

/* Receive one whole message into buf (at least SIM_INIT_LEN bytes; longer
 * messages are truncated to buf_len after being read completely).  *fd gets
 * the attached descriptor or -1.  timeout_ms bounds the wait for the rest of
 * a message once its first byte is there, and the wait for the first byte
 * when the socket is blocking-style (timeout_ms >= 0 and block set).
 * Returns the message length, -EAGAIN when no message is waiting (block
 * false), -ECONNRESET on EOF, or another negative errno. */
int sim_recv(int sock, uint8_t *buf, size_t buf_len, int *fd, int timeout_ms, int block);

