/* Per-loop block I/O engine: io_uring, or a small pool of threads.
 *
 * Both flavours keep one contract, so a backend cannot tell them apart:
 *
 *  - io_engine_queue() takes operations during a loop iteration; a final
 *    tick item (core/tick.h) hands every operation queued in the iteration
 *    over at once at its end, after the transport and the backends have
 *    queued theirs (io_uring: one io_uring_submit; threads: one hand-over to
 *    the pool under one lock).
 *  - Each operation is one syscall on the caller's fd and buffers (no copy:
 *    they may point straight into shared memory); its result is what the
 *    syscall returns: bytes transferred (possibly short) or a negative errno.
 *    A short transfer is the caller's to resubmit.
 *  - Completions wake the loop through an eventfd and are reaped in one go;
 *    each runs its operation's complete() on the loop's thread, never inside
 *    io_engine_queue(), and it must not block.  complete() may queue more.
 *  - An operation on a file in memory (io_req.in_memory: tmpfs, ramfs) is
 *    made at once on the loop's thread, its complete() kept for the end of
 *    the iteration like the others: the syscall only copies, and handing it
 *    to a worker thread (io_uring would, as such files have no
 *    non-blocking path) costs two wake-ups more than the copy.
 *  - io_uring: what io_uring_submit completed at once (a page-cache hit) is
 *    reaped right after it, once per iteration, not after another wake-up.
 *  - Operations queued together as a chain run one after another, each
 *    starting when the previous one has completed whatever its result (the
 *    io_uring hard link); otherwise no order between operations is kept.
 *
 * The threads flavour: pool threads only run syscalls on what a message hands
 * them and post the message back; everything else (the devices, the
 * requests, this struct) belongs to the loop's thread.  It serves where
 * io_uring cannot be set up (kernel.io_uring_disabled, seccomp, an old
 * kernel, qemu-user) and on request.  See core/io_engine_threads.c.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "core/busypoll.h"
#include "core/tick.h"

enum io_engine_kind {
	IO_ENGINE_AUTO,         /* io_uring when it can be set up, else threads */
	IO_ENGINE_URING,
	IO_ENGINE_THREADS,
};

enum io_opcode {
	IO_READV,               /* preadv(fd, iov, niov, off) */
	IO_WRITEV,              /* pwritev(fd, iov, niov, off) */
	IO_FDATASYNC,           /* fdatasync(fd) */
	IO_FALLOCATE,           /* fallocate(fd, mode, off, len) */
};

/* One operation, described by value: the engine copies what it needs. */
struct io_req {
	enum io_opcode opcode;
	int fd;
	/* READV/WRITEV: the iovec array and the buffers it names belong to the
	 * engine until complete() runs: the caller leaves them alone. */
	const struct iovec *iov;
	unsigned niov;
	uint64_t off;           /* READV, WRITEV, FALLOCATE */
	uint64_t len;           /* FALLOCATE */
	int mode;               /* FALLOCATE */
	/* The fd's data lives in memory (tmpfs, ramfs): the syscall only
	 * copies and never waits for a device.  Made at once on the loop's
	 * thread (complete() still runs at the end of the iteration) instead
	 * of by a worker thread: io_uring hands such files to one, as they
	 * have no non-blocking read, and the pool would too. */
	bool in_memory;
};

struct io_done {
	struct io_op *op;
	int res;
};

struct io_op {
	/* res: bytes transferred or a negative errno, as the syscall says. */
	void (*complete)(struct io_op *op, int res);
};

struct io_engine_params {
	enum io_engine_kind kind;
	unsigned entries;       /* io_uring SQ size (a power of two) */
	bool same_thread;       /* io_uring used only by the creating thread: lets the
				 * kernel skip cross-thread work (not for worker threads) */
	unsigned threads;       /* threads flavour: most pool threads (0: 4) */
};

struct io_uring_flavour;
struct io_pool;

struct io_engine {
	struct tick *tick;
	enum io_engine_kind kind;   /* the one serving: URING or THREADS */
	int uring_err;              /* AUTO chose threads: why io_uring failed (-errno) */
	unsigned max_threads;       /* threads flavour */
	struct io_uring_flavour *uring;
	struct io_pool *pool;
	int efd;                    /* completions are signalled here */
	uv_poll_t efd_poll;
	struct tick_item submit;
	unsigned inflight;          /* queued and not completed */
	bool initialised;
	uint64_t batches, ops, completions;   /* hand-overs, operations, completions */
	uint64_t inline_reaps;      /* io_uring: reaps right after a submit */
	uint64_t now_ops;           /* in memory: made at once */
	struct io_done *done;       /* theirs, until the end of the iteration */
	unsigned ndone, done_cap;
	uint64_t inline_reaped;     /* the tick iteration of the last one */
	struct busypoll_source spin;    /* tells the loop's busy poller about I/O in flight */
};

/* Set the engine up on tick's loop.  AUTO falls back to threads on any
 * io_uring failure (and says why in uring_err); URING fails instead.
 * Negative errno: io_uring disabled or filtered gives -ENOSYS or -EPERM. */
int io_engine_init(struct io_engine *e, struct tick *tick, const struct io_engine_params *p);

/* Queue n operations for op (n > 1: a chain, in order); complete() runs
 * once per operation.  All or none: -EAGAIN when the engine cannot take
 * them now (io_uring SQ full even after submitting), -ENOMEM. */
int io_engine_queue(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n);

/* "io_uring" or "threads" (the kind serving), or for a kind asked for. */
const char *io_engine_kind_name(enum io_engine_kind kind);

/* Close: stop the pool, close the uv handle (the loop must run on to
 * finish it) and the ring.  Nothing may be in flight. */
void io_engine_close(struct io_engine *e);
