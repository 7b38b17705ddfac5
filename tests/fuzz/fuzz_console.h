/* Internal to the console fuzz target: fuzz_console.c (the device, its
 * socket client, the program) and fuzz_console_drv.c (a virtio-console
 * driver on the fake port, with the oracles on what comes back).
 *
 * The driver behaves like a real one so that the streams can be checked
 * exactly: descriptors are taken from a free list and given back when
 * their chain shows up in the used ring, descriptor d of queue q always
 * points into its own slot of the section (buffers never overlap), and a
 * chain in flight is never rewritten. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backends/console.h"
#include "tests/fake_port.h"
#include "tests/fuzz/fuzz.h"

#define FC_RW        (16 * 4096)    /* the section: room for queues of 8 */
#define FC_USED      0x7000         /* the part the driver uses; the rest is PROT_NONE */
#define FC_QN        16             /* descriptors per queue at most */
#define FC_SLOT      0x200          /* bytes of buffer per descriptor */
#define FC_MAX_DESC  4              /* per chain */
#define FC_STREAM    (64 * 1024)

struct fc_chain {
	bool busy;
	unsigned ndesc;
	uint8_t desc[FC_MAX_DESC];
	uint16_t len[FC_MAX_DESC];
	bool writable[FC_MAX_DESC];
	size_t tx_bytes;            /* transmit: readable bytes */
};

struct fc_queue {
	uint16_t num;
	uint16_t avail_idx, seen_used;
	bool desc_busy[FC_QN];
	struct fc_chain chain[FC_QN];   /* by head */
};

struct fc {
	uint8_t *rw;
	uv_loop_t *loop;
	struct fake_port *fp;
	struct console_dev *dev;
	bool up;                    /* queues set up and DRIVER_OK */
	struct fc_queue q[2];
	bool may_write[2][FC_QN];   /* slot was posted device-writable in the receive queue */
	int client;                 /* the socket client, -1 when none */
	/* Streams: client -> cell and cell -> client. */
	uint8_t sent[FC_STREAM];
	size_t nsent, rx_pos;       /* rx_pos: where the next receive chunk must start, at least */
	uint8_t posted[FC_STREAM];
	size_t nposted, tx_answered;
	uint8_t recv[FC_STREAM];
	size_t nrecv;
	/* Nothing was lost on the way (no reset, disable, peer leaving,
	 * broken ring, client going): the streams must then match exactly. */
	bool pristine;
};

extern struct fc fc;

/* The driver: register transactions, bring-up, chains, and the check of
 * what the used rings return (called after every step). */
void fc_reg(uint32_t off, uint64_t v, unsigned width);
void fc_peer(uint32_t state);
void fc_bringup(uint16_t size);
void fc_post(unsigned q, struct fz *f);
void fc_write(uint64_t off, const void *src, size_t n);
void fc_check_used(void);
void fc_forget_queue(unsigned q);
uint8_t *fc_shadow(void);
