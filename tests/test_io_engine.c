/* The I/O engine (core/io_engine.h), both flavours against the same
 * expectations: data written through it is read back through it and from
 * the file; flushes, hole punching and chains; the errors and short counts
 * the syscalls give; one hand-over per loop iteration; completions on the
 * loop's thread; and AUTO falling back to the threads where io_uring_setup
 * is refused (a seccomp filter), while URING refuses to start there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/io_engine.h"
#include "core/tick.h"
#include "tests/no_io_uring.h"

#define BS 16384
#define NOPS 64

struct rec {
	struct io_op op;
	int res[4];
	unsigned n;
	pthread_t thread;           /* the thread each completion ran on */
	bool wrong_thread;
};

struct env {
	uv_loop_t loop;
	struct tick tick;
	uv_timer_t wake;            /* lets a hung engine fail the test, not hang it */
	struct io_engine eng;
	char path[256];
	int fd;
	unsigned completed;
	int order[8];               /* which op completed, in order (chains) */
	unsigned norder;
};

static struct env *cur;

static void done_cb(struct io_op *op, int res)
{
	struct rec *r = (struct rec *)op;
	if (!pthread_equal(pthread_self(), r->thread))
		r->wrong_thread = true;
	if (r->n < 4)
		r->res[r->n] = res;
	r->n++;
	cur->completed++;
}

static void rec_init(struct rec *r)
{
	*r = (struct rec){ .op.complete = done_cb, .thread = pthread_self() };
}

static void wake_cb(uv_timer_t *t)
{
}

static void run_until(struct env *v, unsigned completed)
{
	for (int i = 0; v->completed < completed && i < 400; i++)
		uv_run(&v->loop, UV_RUN_ONCE);
	assert_int_equal(v->completed, completed);
}

/* An engine of kind on a fresh loop and a 1 MiB file; false if the kind
 * cannot be had here (io_uring refused: skip). */
static bool env_open(struct env *v, enum io_engine_kind kind)
{
	memset(v, 0, sizeof(*v));
	cur = v;
	uv_loop_init(&v->loop);
	tick_init(&v->tick, &v->loop);
	uv_timer_init(&v->loop, &v->wake);
	uv_timer_start(&v->wake, wake_cb, 25, 25);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(v->path, sizeof(v->path), "%s/io_engine-XXXXXX", tmp);
	v->fd = mkstemp(v->path);
	assert_true(v->fd >= 0);
	assert_int_equal(ftruncate(v->fd, 1 << 20), 0);
	struct io_engine_params p = { .kind = kind, .entries = 64, .same_thread = true };
	int r = io_engine_init(&v->eng, &v->tick, &p);
	if (r < 0 && kind == IO_ENGINE_URING && (r == -ENOSYS || r == -EPERM))
		return false;
	assert_int_equal(r, 0);
	assert_int_equal(v->eng.kind, kind == IO_ENGINE_AUTO ? v->eng.kind : kind);
	return true;
}

static void env_close(struct env *v)
{
	assert_int_equal(v->eng.inflight, 0);
	io_engine_close(&v->eng);
	tick_close(&v->tick);
	uv_close((uv_handle_t *)&v->wake, NULL);
	uv_run(&v->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&v->loop), 0);
	close(v->fd);
	unlink(v->path);
}

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static int queue1(struct env *v, struct rec *r, struct io_req rq)
{
	return io_engine_queue(&v->eng, &r->op, &rq, 1);
}

/* 64 writes of two segments each, queued in one iteration and handed over
 * at once; read back through the engine (one segment each) and from the
 * file. */
static void rw_roundtrip(enum io_engine_kind kind)
{
	struct env v;
	if (!env_open(&v, kind))
		skip();
	uint8_t *data = malloc(NOPS * BS), *back = calloc(1, NOPS * BS);
	fill(data, NOPS * BS, 3);
	struct rec recs[NOPS];
	struct iovec iov[NOPS][2];
	for (unsigned i = 0; i < NOPS; i++) {
		unsigned slot = (i * 37) % NOPS;      /* scattered offsets */
		iov[i][0] = (struct iovec){ data + slot * BS, 512 };
		iov[i][1] = (struct iovec){ data + slot * BS + 512, BS - 512 };
		rec_init(&recs[i]);
		assert_int_equal(queue1(&v, &recs[i], (struct io_req){ .opcode = IO_WRITEV,
				 .fd = v.fd, .iov = iov[i], .niov = 2, .off = (uint64_t)slot * BS }), 0);
	}
	assert_int_equal(v.eng.batches, 0);       /* nothing before the iteration ends */
	run_until(&v, NOPS);
	assert_int_equal(v.eng.batches, 1);
	for (unsigned i = 0; i < NOPS; i++) {
		assert_int_equal(recs[i].n, 1);
		assert_int_equal(recs[i].res[0], BS);
		assert_false(recs[i].wrong_thread);
		iov[i][0] = (struct iovec){ back + i * BS, BS };
		rec_init(&recs[i]);
		assert_int_equal(queue1(&v, &recs[i], (struct io_req){ .opcode = IO_READV,
				 .fd = v.fd, .iov = iov[i], .niov = 1, .off = (uint64_t)i * BS }), 0);
	}
	run_until(&v, 2 * NOPS);
	for (unsigned i = 0; i < NOPS; i++)
		assert_int_equal(recs[i].res[0], BS);
	assert_memory_equal(back, data, NOPS * BS);
	memset(back, 0, NOPS * BS);
	assert_int_equal(pread(v.fd, back, NOPS * BS, 0), NOPS * BS);
	assert_memory_equal(back, data, NOPS * BS);
	assert_int_equal(v.eng.completions, 2 * NOPS);
	free(data);
	free(back);
	env_close(&v);
}

/* fdatasync; a punched hole reads as zeroes; a chain (punch, then
 * allocate) completes in order, each operation once. */
static void sync_and_fallocate(enum io_engine_kind kind)
{
	struct env v;
	if (!env_open(&v, kind))
		skip();
	uint8_t buf[BS];
	fill(buf, BS, 9);
	assert_int_equal(pwrite(v.fd, buf, BS, 0), BS);
	assert_int_equal(pwrite(v.fd, buf, BS, BS), BS);
	struct rec sync, punch, chain;
	rec_init(&sync);
	rec_init(&punch);
	rec_init(&chain);
	assert_int_equal(queue1(&v, &sync, (struct io_req){ .opcode = IO_FDATASYNC, .fd = v.fd }),
			 0);
	assert_int_equal(queue1(&v, &punch, (struct io_req){ .opcode = IO_FALLOCATE, .fd = v.fd,
			 .mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, .off = 4096,
			 .len = 8192 }), 0);
	struct io_req two[2] = {
		{ .opcode = IO_FALLOCATE, .fd = v.fd, .mode = FALLOC_FL_PUNCH_HOLE |
		  FALLOC_FL_KEEP_SIZE, .off = BS, .len = BS },
		{ .opcode = IO_FALLOCATE, .fd = v.fd, .mode = FALLOC_FL_KEEP_SIZE, .off = BS,
		  .len = BS },
	};
	assert_int_equal(io_engine_queue(&v.eng, &chain.op, two, 2), 0);
	run_until(&v, 4);
	assert_int_equal(sync.n, 1);
	assert_int_equal(sync.res[0], 0);
	assert_int_equal(punch.res[0], 0);
	assert_int_equal(chain.n, 2);
	assert_int_equal(chain.res[0], 0);
	assert_int_equal(chain.res[1], 0);
	uint8_t back[2 * BS], want[2 * BS];
	memcpy(want, buf, BS);
	memset(want + 4096, 0, 8192);
	memset(want + BS, 0, BS);
	assert_int_equal(pread(v.fd, back, sizeof(back), 0), sizeof(back));
	assert_memory_equal(back, want, sizeof(back));
	env_close(&v);
}

/* What the syscalls say comes back unchanged: the caller's error paths see
 * the same on either engine. */
static void errors_and_short_counts(enum io_engine_kind kind)
{
	struct env v;
	if (!env_open(&v, kind))
		skip();
	int ro = open(v.path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	uint8_t buf[BS];
	fill(buf, BS, 1);
	struct iovec iov = { buf, BS };
	struct rec wr_ro, past_end, straddle, bad_fd;
	rec_init(&wr_ro);
	rec_init(&past_end);
	rec_init(&straddle);
	rec_init(&bad_fd);
	assert_int_equal(queue1(&v, &wr_ro, (struct io_req){ .opcode = IO_WRITEV, .fd = ro,
			 .iov = &iov, .niov = 1 }), 0);
	assert_int_equal(queue1(&v, &past_end, (struct io_req){ .opcode = IO_READV, .fd = v.fd,
			 .iov = &iov, .niov = 1, .off = 2 << 20 }), 0);
	assert_int_equal(queue1(&v, &straddle, (struct io_req){ .opcode = IO_READV, .fd = v.fd,
			 .iov = &iov, .niov = 1, .off = (1 << 20) - 1000 }), 0);
	assert_int_equal(queue1(&v, &bad_fd, (struct io_req){ .opcode = IO_FDATASYNC, .fd = -1 }),
			 0);
	run_until(&v, 4);
	assert_int_equal(wr_ro.res[0], -EBADF);
	assert_int_equal(past_end.res[0], 0);
	assert_int_equal(straddle.res[0], 1000);
	assert_int_equal(bad_fd.res[0], -EBADF);
	close(ro);
	env_close(&v);
}

/* Completions that queue more (as a short transfer's remainder does): each
 * round is handed over in its own iteration, and nothing is lost. */
static int rounds_left;
static struct env *chain_env;
static uint8_t chain_buf[512];
static struct iovec chain_iov = { chain_buf, sizeof(chain_buf) };

static void requeue_cb(struct io_op *op, int res)
{
	chain_env->completed++;
	assert_int_equal(res, 512);
	if (--rounds_left > 0)
		assert_int_equal(io_engine_queue(&chain_env->eng, op, &(struct io_req){
				 .opcode = IO_WRITEV, .fd = chain_env->fd, .iov = &chain_iov,
				 .niov = 1, .off = 512u * (unsigned)rounds_left }, 1), 0);
}

static void queue_from_completion(enum io_engine_kind kind)
{
	struct env v;
	if (!env_open(&v, kind))
		skip();
	chain_env = &v;
	rounds_left = 100;
	struct io_op op = { .complete = requeue_cb };
	assert_int_equal(io_engine_queue(&v.eng, &op, &(struct io_req){ .opcode = IO_WRITEV,
			 .fd = v.fd, .iov = &chain_iov, .niov = 1 }, 1), 0);
	run_until(&v, 100);
	assert_int_equal(rounds_left, 0);
	assert_int_equal(v.eng.batches, 100);
	env_close(&v);
}

static void test_rw_uring(void **s) { rw_roundtrip(IO_ENGINE_URING); }
static void test_rw_threads(void **s) { rw_roundtrip(IO_ENGINE_THREADS); }
static void test_sync_uring(void **s) { sync_and_fallocate(IO_ENGINE_URING); }
static void test_sync_threads(void **s) { sync_and_fallocate(IO_ENGINE_THREADS); }
static void test_errors_uring(void **s) { errors_and_short_counts(IO_ENGINE_URING); }
static void test_errors_threads(void **s) { errors_and_short_counts(IO_ENGINE_THREADS); }
static void test_requeue_uring(void **s) { queue_from_completion(IO_ENGINE_URING); }
static void test_requeue_threads(void **s) { queue_from_completion(IO_ENGINE_THREADS); }

/* The child of test_auto_falls_back, under the filter: no cmocka here (a
 * failed assertion would jump back into the parent's copy of the runner);
 * the exit status says which check failed. */
static int fallback_child(void)
{
	if (no_io_uring() < 0)
		return 77;
	uv_loop_t l;
	struct tick t;
	struct io_engine e;
	uv_loop_init(&l);
	tick_init(&t, &l);
	struct io_engine_params p = { .kind = IO_ENGINE_URING, .entries = 8 };
	if (io_engine_init(&e, &t, &p) != -ENOSYS)
		return 1;
	p.kind = IO_ENGINE_AUTO;
	if (io_engine_init(&e, &t, &p) != 0)
		return 2;
	if (e.kind != IO_ENGINE_THREADS || e.uring_err != -ENOSYS)
		return 3;
	char path[] = "/tmp/io_engine-fb-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 4;
	unlink(path);
	uint8_t buf[4096], back[4096];
	fill(buf, sizeof(buf), 5);
	struct iovec iov = { buf, sizeof(buf) };
	struct rec r;
	rec_init(&r);
	struct env v = { .completed = 0 };
	cur = &v;
	if (io_engine_queue(&e, &r.op, &(struct io_req){ .opcode = IO_WRITEV, .fd = fd,
			    .iov = &iov, .niov = 1, .off = 8192 }, 1) < 0)
		return 5;
	for (int i = 0; i < 1000 && !v.completed; i++)
		uv_run(&l, UV_RUN_ONCE);
	if (r.n != 1 || r.res[0] != 4096 || r.wrong_thread)
		return 6;
	if (pread(fd, back, sizeof(back), 8192) != 4096 || memcmp(buf, back, sizeof(buf)))
		return 7;
	io_engine_close(&e);
	tick_close(&t);
	uv_run(&l, UV_RUN_DEFAULT);
	uv_loop_close(&l);
	close(fd);
	return 0;
}

/* Where io_uring_setup is refused: AUTO serves with the threads and keeps
 * the reason, URING gives the error; data still goes through. */
static void test_auto_falls_back(void **s)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fallback_child());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rw_uring),
		cmocka_unit_test(test_rw_threads),
		cmocka_unit_test(test_sync_uring),
		cmocka_unit_test(test_sync_threads),
		cmocka_unit_test(test_errors_uring),
		cmocka_unit_test(test_errors_threads),
		cmocka_unit_test(test_requeue_uring),
		cmocka_unit_test(test_requeue_threads),
		cmocka_unit_test(test_auto_falls_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
