/* A verified workload through the userspace front-end, for the tests that
 * replace the daemon under load (upgrade, kill): random reads and writes at
 * a queue depth on some disks, and a byte stream both ways through a
 * console.
 *
 * Every disk has a model of its contents.  It is divided into slots; a
 * request owns its slot while in flight, so the model is exact: a write
 * goes into the model when the device acknowledges it, a read is compared
 * with the model when it completes.  A console stream is a sequence of
 * 8-byte records numbered from 0 (magic, number, its complement,
 * direction), so the receiver can tell each record apart: strictly, every
 * record arrives once and in order; tolerantly (after a crash the daemon may
 * send console bytes again, and lose input it had read), a run of records
 * may come again (from an earlier record up to the last one seen, in
 * order) and records may go missing (never to come later), with garbage
 * bytes where a run starts inside a record; anything else is a reordering
 * and fails.  Any error status, mismatch, a
 * used id not in flight (fe.h violations), or a back-end that stops being
 * READY ends the load with the first error kept in err.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/frontend/fe_blk.h"
#include "tests/frontend/fe_console.h"

#define LOAD_MAX_DISKS 8
#define LOAD_SLOT      (64u << 10)
/* A disk with requests in flight and no interrupt for this long fails (as
 * the Linux driver reaps only on interrupts, so do we). */
#define LOAD_STALL_MS  5000

struct load_req;

struct load_disk {
	struct fe_blk *blk;
	unsigned queues;
	uint8_t *model;             /* what the disk holds, as acknowledged */
	uint64_t size;
	unsigned nslots;
	uint8_t *busy;              /* slot owned by a request in flight */
	struct load_req *reqs;      /* qd of them */
	unsigned inflight;
	uint64_t reads, writes, flushes, bytes;
	bool irq;                   /* its interrupt fds fired in the last wait */
	uint64_t last_irq_ns;       /* or when it became busy */
};

#define LOAD_MAX_GAPS 4096

struct load_gap { uint64_t from, to; };     /* records [from, to) never came */

struct load_stream {           /* one direction */
	uint64_t sent;              /* bytes */
	uint64_t next;              /* the record expected next */
	uint64_t replay_next;       /* in a run sent again: the record due next (0: none) */
	struct load_gap gaps[LOAD_MAX_GAPS];
	unsigned ngaps;
	uint8_t part[8];            /* an incomplete record received */
	unsigned npart;
	uint64_t repeated, missing, garbage;    /* records, records, bytes */
};

struct load_console {
	struct fe_console *con;     /* the cell's side */
	int sock;                   /* the endpoint's side (a connected client) */
	struct load_stream to_cell, from_cell;
	bool tolerant;
};

struct load {
	unsigned qd;                /* per disk */
	uint64_t rng;
	struct load_disk disk[LOAD_MAX_DISKS];
	unsigned ndisks;
	struct load_console con;
	bool has_con;
	bool stopping;              /* submit nothing more */
	bool failed;
	char err[512];
	uint64_t max_gap_ns;        /* longest time without a completion while busy */
	uint64_t last_completion_ns;
};

void load_init(struct load *l, unsigned qd, uint64_t seed);
/* A disk: its model starts as the image file's contents (read from path). */
int load_add_disk(struct load *l, struct fe_blk *blk, unsigned queues, const char *image);
/* A console: the front-end and a client socket connected to its endpoint. */
void load_add_console(struct load *l, struct fe_console *con, int sock);

/* Keep the queues full and check what completes, for up to timeout_ms.
 * Returns 0, or -1 once the load failed (l->err). */
int load_run(struct load *l, int timeout_ms);
/* Stop submitting and wait for everything in flight (and the console
 * streams to arrive).  -1 on failure or timeout. */
int load_drain(struct load *l, int timeout_ms);
/* Read every disk back whole and compare with the model. */
int load_verify(struct load *l);
void load_free(struct load *l);
