/* The journal of one device: what a new process needs to take it over
 * without the cell noticing (after an upgrade, a crash or a kill).
 *
 * It lives in a memfd that outlives the process (handed to the next one by
 * exec, or kept in systemd's file-descriptor store), mapped shared, written
 * with plain stores: a process that dies loses no store it executed, so
 * only the order of the stores matters, never a flush.  Four parts:
 *
 *   identity   magic, version, size, queue geometry, and an identity hash of
 *              what the device serves (its config): a new process that
 *              finds a different identity does not trust the rest
 *   transport  the negotiated state (status, features, selectors, queue
 *              addresses, sizes, vectors, enables), written after every
 *              transaction is applied and before it is acknowledged; two
 *              copies, each with a checksum, the newer named by a sequence
 *              number stored last, so a process that dies in the middle of
 *              writing one leaves the other intact
 *   queues     per queue: `published`, the used index last made visible to
 *              the driver, and one word per descriptor head: while the
 *              request is popped and not yet published, JOURNAL_TAKEN | the
 *              avail position it was popped from (so that requests are
 *              executed again in the order the driver made them available:
 *              a console's output must not be reordered), else 0
 *   blob       4 KiB that the owner of the link (the daemon's wiring) uses
 *              for link parameters, with a checksum; two copies like the
 *              transport state (the newer named by a sequence number stored
 *              last), since it is rewritten whenever the fds change
 *
 * The order of ring and journal writes (the contract the transport keeps,
 * see core/transport.c):
 *   pop:      the chain is validated, then inflight[head] = TAKEN | pos,
 *             then the request goes to the backend.  That store is the
 *             moment a request is taken: before it, a new process pops it
 *             again; after it, a new process executes it again.
 *   answer:   the used ring slot is written (not visible yet).
 *   publish:  used->idx = N (release), then inflight[h] = 0 for every head
 *             of the batch, then published = N.
 * Recovery, per queue, with U = used->idx as the ring shows it and P =
 * published: the heads in used slots [P, U) were published (a process that
 * died between its used->idx store and the journal's is covered); every
 * other head with inflight set was taken and not answered, and is executed
 * again, oldest avail position first (block reads, writes, flushes, discards and write-zeroes are
 * idempotent; console bytes may repeat); the next avail entry to pop is
 * U + that count, since each popped chain gets exactly one used entry.  So
 * no request is lost (taken ones are replayed, untaken ones popped again)
 * and none is answered twice (published ones are known, unpublished answers
 * are redone at U).  A driver that makes a head available again while it
 * is in flight breaks the device (the count would be wrong).
 *
 * The journal is checked like any other memory a peer could have written:
 * every field is range-checked before it is used.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_MAGIC       0x4a445649u     /* "IVDJ" */
#ifndef JOURNAL_VERSION         /* the tests build a daemon with another, to play an */
#define JOURNAL_VERSION     1   /* incompatible one (tests/meson.build) */
#endif
#define JOURNAL_BLOB_SIZE   4096
#define JOURNAL_MAX_QUEUES  64
#define JOURNAL_TAKEN       0x10000u    /* | avail position: in flight */

struct journal_queue {          /* a queue's negotiated state */
	uint16_t size, driver_vector, enable, pad;
	uint64_t desc, driver, device;
};

struct journal_transport {      /* one copy of the transport state */
	uint64_t seq;               /* newer copy: higher seq */
	uint64_t guest_features, host_features;
	uint32_t phase, status, dev_feat_sel, drv_feat_sel, queue_sel, config_gen;
	uint32_t broken, nq;
	struct journal_queue q[JOURNAL_MAX_QUEUES];
	uint32_t crc;               /* over everything above */
	uint32_t pad;
};

struct journal_hdr {
	uint32_t magic, version;
	uint64_t size;              /* of the whole mapping */
	uint64_t identity;          /* what the device serves (the owner's hash) */
	uint32_t nq, qmax;          /* queues, slots per queue */
	uint32_t crc;               /* over the fields above */
	uint32_t pad;
	uint32_t blob_len[2], blob_crc[2];
	uint64_t blob_seq;          /* the newest complete blob copy (stored last) */
	struct journal_transport t[2];
	uint64_t seq;               /* the newest complete copy of t[] (stored last) */
};

struct journal {
	int fd;                     /* the memfd, -1 when none */
	size_t size;
	struct journal_hdr *hdr;
	uint16_t *published;        /* [nq] */
	uint32_t *inflight;         /* [nq * qmax] */
	uint8_t *blob;              /* 2 x JOURNAL_BLOB_SIZE */
	unsigned nq, qmax;
};

/* A fresh journal (memfd named name) for nq queues of qmax slots.  0 or a
 * negative errno. */
int journal_create(struct journal *j, const char *name, uint64_t identity, unsigned nq,
		   unsigned qmax);

/* Map the journal another process left in fd (taken over: closed with the
 * journal).  nq and qmax come from the config; out of range (above
 * JOURNAL_MAX_QUEUES or 32768) is refused before anything is mapped.
 * Returns 0 when its identity, geometry and checksums hold, else a negative
 * errno with the reason in why: -EBADMSG (corrupt), -ESTALE (made for
 * another config). */
int journal_attach(struct journal *j, int fd, uint64_t identity, unsigned nq, unsigned qmax,
		   char *why, size_t why_len);

void journal_close(struct journal *j);

/* Transport state: store a new copy (the older one is overwritten, then
 * named newest); load the newest valid copy (-EBADMSG if none). */
void journal_save_transport(struct journal *j, const struct journal_transport *t);
int journal_load_transport(const struct journal *j, struct journal_transport *t);

/* The owner's blob: store len bytes (into the copy that is not the newest,
 * then named newest); load the newest valid copy (-EBADMSG if none). */
void journal_save_blob(struct journal *j, const void *data, uint32_t len);
int journal_load_blob(const struct journal *j, void *data, uint32_t cap, uint32_t *len);

static inline uint32_t *journal_inflight(struct journal *j, unsigned q)
{
	return j->inflight + (size_t)q * j->qmax;
}

/* Plain stores into a mapping that outlives us: they must happen, in
 * program order; a compiler barrier keeps the compiler from reordering or
 * dropping them (the CPU executes them in order for the same process, and a
 * dying process loses none it executed). */
static inline void journal_order(void)
{
	__asm__ __volatile__("" ::: "memory");
}

/* CRC-32C of len bytes (also used by owners for identities). */
uint32_t journal_crc(const void *data, size_t len);
/* FNV-1a 64 of a string, for identities. */
uint64_t journal_hash(uint64_t h, const char *s);
