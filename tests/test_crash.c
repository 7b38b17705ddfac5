/* The daemon killed, end to end: under a stand-in for systemd
 * (tests/supervisor.h: the fd store, Restart=always) the daemon is SIGKILLed
 * at random moments while the userspace front-end drives two disks at queue
 * depth 32 and a console stream (tests/load.h).  The front-end must see no
 * error and no reset, no used id twice, and every acknowledged write read
 * back; console bytes may repeat or (input read just before the kill) go
 * missing, never reorder.  A third disk is connected, negotiated, read and
 * left over and over meanwhile, so that kills also land in the middle of
 * transactions and of peers joining and leaving.  Then what must not be trusted: a journal with a
 * field corrupted, a config changed while the daemon was down; each resets
 * that link only, with the reason in the log.  And a kill at the moment the
 * cell's kicks are off (the loop was spinning): the next process answers
 * what came without a doorbell.  VIVD_KILLS sets how many kills (default
 * 100). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/journal.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "tests/harness.h"
#include "tests/load.h"
#include "tests/supervisor.h"

#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;       /* the test dir (the supervisor runs the daemon) */
	struct supervisor *sup;
	char conf[4096];
	struct fe_blk *blk[2];
	struct fe_console *con;
	int con_sock;
	struct load load;
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	fx->con_sock = -1;
	*state = fx;
	return harness_mkdir(&fx->d) == 0 ? 0 : -1;
}

static void disconnect(struct fixture *fx)
{
	for (int i = 0; i < 2; i++) {
		fe_blk_close(fx->blk[i]);
		fx->blk[i] = NULL;
	}
	fe_console_close(fx->con);
	fx->con = NULL;
	if (fx->con_sock >= 0)
		close(fx->con_sock);
	fx->con_sock = -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	load_free(&fx->load);
	disconnect(fx);
	sup_free(fx->sup);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

static bool log_has(struct fixture *fx, const char *text)
{
	return harness_log_has(&fx->d, text);
}

static void write_conf(struct fixture *fx, const char *image0)
{
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = none\nlog-level = debug\n"
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s\nqueues = 2\n"
		 "[block disk1]\nsim = %s/disk1.sock\nimage = %s/b.img\nqueues = 2\n"
		 "[block churn]\nsim = %s/churn.sock\nimage = %s/b.img\nread-only = yes\n"
		 "[console con0]\nsim = %s/con0.sock\nendpoint = socket\npath = %s/con0-ep.sock\n"
		 "backlog = 256K\n"
		 /* a pty nobody has open (its master reports a hang-up: the
		  * supervisor must not drop it) on a link no cell uses yet */
		 "[console con1]\nsim = %s/con1.sock\nendpoint = pty\npath = %s/con1.pty\n",
		 fx->d.dir, image0, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir,
		 fx->d.dir, fx->d.dir);
	assert_true(harness_write_conf(fx->d.conf, fx->conf) >= 0);
}

/* Two disks and a console under the supervisor, the front-end on all. */
static void start(struct fixture *fx)
{
	char err[256];
	assert_int_equal(harness_image(path(fx, "a.img", 0), 16 * MiB, 21), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 8 * MiB, 22), 0);
	write_conf(fx, path(fx, "a.img", 0));
	if (sup_start(&fx->sup, DAEMON_PATH, fx->d.conf, fx->d.log, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	if (sup_wait_ready(fx->sup, 0, 20000) < 0)
		fail_msg("the daemon did not become ready");
	if (!harness_engine_logged(&fx->d))
		fail_msg("the daemon does not say it uses io engine %s", harness_io_engine());
	for (int i = 0; i < 2; i++) {
		char sock[32];
		snprintf(sock, sizeof(sock), "disk%d.sock", i);
		if (fe_blk_open(path(fx, sock, 1), 0, 2, 64, 5000, &fx->blk[i], err, sizeof(err)) < 0)
			fail_msg("connecting to %s: %s", sock, err);
	}
	if (fe_console_open(path(fx, "con0.sock", 1), 64, 32, 4096, 5000, &fx->con, err,
			    sizeof(err)) < 0)
		fail_msg("connecting to the console: %s", err);
	fx->con_sock = harness_unix_connect(path(fx, "con0-ep.sock", 1));
	assert_true(fx->con_sock >= 0);
	load_init(&fx->load, 32, 7);
	assert_int_equal(load_add_disk(&fx->load, fx->blk[0], 2, path(fx, "a.img", 0)), 0);
	assert_int_equal(load_add_disk(&fx->load, fx->blk[1], 2, path(fx, "b.img", 0)), 0);
	load_add_console(&fx->load, fx->con, fx->con_sock);
	fx->load.con.tolerant = true;
}

static unsigned kills_wanted(void)
{
	const char *v = getenv("VIVD_KILLS");
	return v && atoi(v) > 0 ? (unsigned)atoi(v) : 100;
}

/* Sessions on the churn disk, from a thread of their own while the kills
 * go on: connect, negotiate, read and leave, which must not fail whatever
 * the kills do, with one exception: a peer whose connection the daemon
 * accepted less than a loop iteration before the kill, before its fds
 * reached the store, is dropped with the dead process (as by a link server
 * that dies; docs/handover.md).  That shows as the link socket closed. */
struct churn {
	struct fixture *fx;
	pthread_t thread;
	int stop;                   /* atomic */
	unsigned sessions, refused, dropped;
	int negotiating;            /* atomic: in fe_init, its transactions */
	unsigned kills_in_negotiation;
	double max_ms;
	uint64_t lost_interrupts;
	char err[300];
};

static double ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Did the link host close our connection? */
static bool link_dropped(struct fe_dev *fe)
{
	char c;
	return recv(fe->port->watch_fd[0], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	char err[256];
	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED) && !c->err[0]) {
		double t0 = ms_now();
		struct fe_dev *fe;
		if (fe_open(path(c->fx, "churn.sock", 2), 0, &fe, err, sizeof(err)) < 0) {
			c->refused++;
			usleep(5000);
			continue;
		}
		/* fe_blk_attach closes fe on failure: look before */
		struct fe_blk *blk = calloc(1, sizeof(*blk));
		blk->fe = fe;
		__atomic_store_n(&c->negotiating, 1, __ATOMIC_RELAXED);
		int r = fe_init(fe, 0x1330006266ull, 1, 16, err, sizeof(err));
		__atomic_store_n(&c->negotiating, 0, __ATOMIC_RELAXED);
		if (r < 0) {
			bool dropped = link_dropped(fe);
			fe_blk_close(blk);
			if (dropped) {
				c->dropped++;
				continue;
			}
			snprintf(c->err, sizeof(c->err), "session %u: negotiating: %s",
				 c->sessions + 1, err);
			break;
		}
		uint8_t buf[4096];
		r = fe_blk_io(blk, 0, VIRTIO_BLK_T_IN, 8, buf, sizeof(buf));
		c->lost_interrupts += fe->lost_interrupts;
		bool dropped = r != VIRTIO_BLK_S_OK && link_dropped(fe);
		fe_blk_close(blk);
		if (dropped) {
			c->dropped++;
			continue;
		}
		if (r != VIRTIO_BLK_S_OK) {
			snprintf(c->err, sizeof(c->err), "session %u: read: %d", c->sessions + 1, r);
			break;
		}
		c->sessions++;
		if (ms_now() - t0 > c->max_ms)
			c->max_ms = ms_now() - t0;
	}
	return NULL;
}

/* Run the load until the daemon of the latest start is ready. */
static void load_until_ready(struct fixture *fx)
{
	struct load *l = &fx->load;
	for (int i = 0; i < 4000 && !l->failed; i++) {
		if (sup_wait_ready(fx->sup, sup_starts(fx->sup) - 1, 0) == 0)
			return;
		load_run(l, 5);
	}
	if (!l->failed)
		fail_msg("the restarted daemon did not become ready");
}

static void test_kills_under_load(void **state)
{
	struct fixture *fx = *state;
	start(fx);
	struct load *l = &fx->load;
	if (load_run(l, 300) < 0)
		fail_msg("before any kill: %s", l->err);
	unsigned kills = kills_wanted(), hits = 0;
	struct churn churn = { .fx = fx };
	assert_int_equal(pthread_create(&churn.thread, NULL, churn_thread, &churn), 0);
	srand(1234);
	for (unsigned k = 0; k < kills && !l->failed; k++) {
		/* three in four kills hit a daemon that is serving; the rest one
		 * that may still be starting up and taking the devices over */
		if (k % 4 != 3)
			load_until_ready(fx);
		load_run(l, 2 + rand() % 40);
		if (k % 3 == 1) {
			/* aim at the churn session's transactions */
			for (int i = 0; i < 100 && !__atomic_load_n(&churn.negotiating,
								       __ATOMIC_RELAXED); i++)
				load_run(l, 1);
			churn.kills_in_negotiation += (unsigned)__atomic_load_n(&churn.negotiating,
										 __ATOMIC_RELAXED);
		}
		/* a process to kill: one that may be starting, never the dead one */
		if (sup_wait_alive(fx->sup, 20000) < 0)
			fail_msg("no daemon was started again after kill %u", k);
		hits += sup_kill(fx->sup, SIGKILL) >= 0;
	}
	__atomic_store_n(&churn.stop, 1, __ATOMIC_RELAXED);
	pthread_join(churn.thread, NULL);
	if (churn.err[0])
		fail_msg("churn: %s", churn.err);
	if (!l->failed)
		load_until_ready(fx);
	if (l->failed)
		fail_msg("after %u start(s): %s", sup_starts(fx->sup), l->err);
	if (load_run(l, 300) < 0 || load_drain(l, 20000) < 0 || load_verify(l) < 0)
		fail_msg("after %u kills: %s", kills, l->err);
	assert_int_equal(sup_starts(fx->sup), hits + 1);
	assert_int_equal(hits, kills);
	printf("%u kills (%u hit a running daemon): %llu reads, %llu writes, %llu flushes; console to the cell %llu records "
	       "(%llu repeated, %llu missing), from the cell %llu (%llu repeated, %llu missing), "
	       "%llu garbage bytes; %u fds stored\n", kills, hits,
	       (unsigned long long)(l->disk[0].reads + l->disk[1].reads),
	       (unsigned long long)(l->disk[0].writes + l->disk[1].writes),
	       (unsigned long long)(l->disk[0].flushes + l->disk[1].flushes),
	       (unsigned long long)l->con.to_cell.next, (unsigned long long)l->con.to_cell.repeated,
	       (unsigned long long)l->con.to_cell.missing,
	       (unsigned long long)l->con.from_cell.next,
	       (unsigned long long)l->con.from_cell.repeated,
	       (unsigned long long)l->con.from_cell.missing,
	       (unsigned long long)(l->con.to_cell.garbage + l->con.from_cell.garbage),
	       sup_stored(fx->sup));
	printf("churn: %u sessions (the longest %.0f ms), %u kills during their negotiation, %u "
	       "connections refused and %u dropped by a kill\n", churn.sessions, churn.max_ms,
	       churn.kills_in_negotiation, churn.refused, churn.dropped);
	assert_true(churn.kills_in_negotiation >= kills / 10);
	/* a third of the kills aim at a session that has just connected: some
	 * of those find its fds not yet in the store */
	assert_true(churn.dropped <= kills / 5);
	/* a read answered with no interrupt at all */
	assert_int_equal(churn.lost_interrupts, 0);
	assert_false(log_has(fx, "cannot take the device over"));
	assert_false(log_has(fx, "is gone; device stopped"));
	assert_false(log_has(fx, "broke the ring protocol"));
	assert_int_equal(sup_rejected(fx->sup), 0);
	assert_int_equal(sup_unexpected(fx->sup), 0);
	assert_false(log_has(fx, "Sanitizer"));
	assert_false(log_has(fx, "runtime error"));
	/* the stream went on through every kill; at most a partial record of
	 * garbage where a run sent again starts, once per kill */
	assert_true(l->con.to_cell.next > 0 && l->con.from_cell.next > 0);
	assert_true(l->con.to_cell.garbage + l->con.from_cell.garbage <= 8 * (uint64_t)kills);
	assert_int_equal(sup_stop(fx->sup), 0);
	for (int i = 0; i < 2; i++) {
		struct load_disk *d = &l->disk[i];
		uint8_t *img = malloc(d->size);
		assert_int_equal(harness_read_file(path(fx, i ? "b.img" : "a.img", 0), 0, img,
						   d->size), 0);
		assert_memory_equal(img, d->model, d->size);
		free(img);
	}
}

/* ---- killed while spinning ------------------------------------------------ */

/* What the ring tells the driver about kicks (event-idx): avail_event. */
static uint16_t avail_event(struct fe_blk *b)
{
	const struct fe_vq *vq = &b->fe->vq[0];
	return shm_ld16(b->fe->rw, vq->used + 4 + 8ull * vq->num);
}

/* Killed while its loop spun, the daemon leaves the cell's kicks turned off
 * (core/busypoll.h): a request the driver publishes then rings no doorbell.
 * The process that takes the rings over finds it by itself and answers it,
 * and kicks work again after. */
static void test_killed_while_spinning(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	assert_int_equal(harness_image(path(fx, "a.img", 0), 4 * MiB, 24), 0);
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = none\nbusy-poll-us = 1000\n"
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s\n",
		 fx->d.dir, path(fx, "a.img", 0));
	assert_true(harness_write_conf(fx->d.conf, fx->conf) >= 0);
	if (sup_start(&fx->sup, DAEMON_PATH, fx->d.conf, fx->d.log, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	if (sup_wait_ready(fx->sup, 0, 20000) < 0)
		fail_msg("the daemon did not become ready");
	if (fe_blk_open(path(fx, "disk0.sock", 1), 0, 1, 64, 5000, &fx->blk[0], err,
			sizeof(err)) < 0)
		fail_msg("connecting: %s", err);
	struct fe_blk *b = fx->blk[0];
	struct fe_vq *vq = &b->fe->vq[0];
	assert_true(b->fe->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	uint8_t buf[4096], want[4096];
	/* Reads one after the other until the daemon is caught spinning with
	 * kicks off right after an answer, then killed there; a kill that
	 * lands after it turned them back on is tried again.  The next read
	 * follows within 0.2 ms, well inside the 1 ms window, so the loop's
	 * sleeps stay short and its window wide (a longer wait would make it
	 * shrink: core/busypoll.h). */
	bool caught = false;
	unsigned attempt = 0, reads = 0;
	for (; attempt < 20 && !caught; attempt++) {
		sup_hold_restart(fx->sup, true);
		bool killed = false;
		for (unsigned i = 0; i < 2000 && !killed; i++, reads++) {
			assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 8 * (i % 64), buf,
						   sizeof(buf)), VIRTIO_BLK_S_OK);
			uint16_t off = (uint16_t)(vq->avail_idx + 0x8000u);
			double t0 = ms_now();
			while (ms_now() - t0 < 0.2 && avail_event(b) != off)
				;
			if (avail_event(b) == off) {
				sup_kill(fx->sup, SIGKILL);
				killed = true;
			}
		}
		if (!killed)
			continue;       /* still running: go on reading */
		for (int i = 0; i < 500 && sup_pid(fx->sup); i++)
			usleep(10000);
		assert_int_equal(sup_pid(fx->sup), 0);
		caught = avail_event(b) == (uint16_t)(vq->avail_idx + 0x8000u);
		sup_hold_restart(fx->sup, false);
		if (!caught) {      /* it turned kicks back on before it died */
			assert_int_equal(sup_restart(fx->sup), 0);
			if (sup_wait_ready(fx->sup, sup_starts(fx->sup) - 1, 20000) < 0)
				fail_msg("the restarted daemon did not become ready");
		}
	}
	if (!caught)
		fail_msg("the daemon was never caught spinning with kicks off");
	printf("killed while spinning with kicks off (attempt %u, after %u reads)\n", attempt,
	       reads);
	/* Dead with kicks off: the driver publishes and, as the ring says,
	 * does not kick. */
	uint64_t kicks = vq->kicks;
	struct fe_blk_req req = { .type = VIRTIO_BLK_T_IN, .sector = 24, .buf = buf,
				  .len = sizeof(buf), .status = -2 };
	memset(buf, 0, sizeof(buf));
	assert_int_equal(fe_blk_submit(b, 0, &req), 0);
	fe_blk_kick(b, 0);
	assert_int_equal(vq->kicks, kicks);
	/* The next process takes the ring over and answers it unasked (it does
	 * not spin: its own spin would find the request as well). */
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = none\nbusy-poll-us = 0\n"
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s\n",
		 fx->d.dir, path(fx, "a.img", 0));
	assert_true(harness_write_conf(fx->d.conf, fx->conf) >= 0);
	unsigned starts = sup_starts(fx->sup);
	assert_int_equal(sup_restart(fx->sup), 0);
	if (sup_wait_ready(fx->sup, starts, 20000) < 0)
		fail_msg("the restarted daemon did not become ready");
	for (int i = 0; i < 500 && req.status == -2; i++)
		assert_int_not_equal(fe_blk_poll(b, 10), -ENODEV);     /* not reset */
	assert_int_equal(req.status, VIRTIO_BLK_S_OK);
	assert_int_equal(harness_read_file(path(fx, "a.img", 2), 24 * 512, want, sizeof(want)), 0);
	assert_memory_equal(buf, want, sizeof(want));
	assert_true(log_has(fx, "disk0: taken over"));
	/* and kicks are back: requests after a pause long enough for the
	 * loop to have stopped spinning are answered */
	for (int i = 0; i < 3; i++) {
		usleep(20000);
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 8, buf, sizeof(buf)),
				 VIRTIO_BLK_S_OK);
	}
	assert_true(vq->kicks > kicks);
	assert_int_equal(sup_unexpected(fx->sup), 0);
}

/* ---- what is not trusted ------------------------------------------------ */

/* Kill the daemon and keep it down; let f change what it left; restart;
 * then disk0 must have been reset (its front-end sees the back-end leave)
 * and disk1 taken over (its load goes on). */
static void kill_change_restart(struct fixture *fx, void (*f)(struct fixture *fx, void *arg),
				void *arg, const char *expect_log)
{
	struct load *l = &fx->load;
	if (load_run(l, 200) < 0 || load_drain(l, 10000) < 0)
		fail_msg("before the kill: %s", l->err);
	sup_hold_restart(fx->sup, true);
	sup_kill(fx->sup, SIGKILL);
	for (int i = 0; i < 500 && sup_pid(fx->sup); i++)
		usleep(10000);
	assert_int_equal(sup_pid(fx->sup), 0);
	f(fx, arg);
	sup_hold_restart(fx->sup, false);
	assert_int_equal(sup_restart(fx->sup), 0);
	if (sup_wait_ready(fx->sup, 1, 20000) < 0)
		fail_msg("the restarted daemon did not become ready");
	if (!log_has(fx, expect_log))
		fail_msg("the log does not say \"%s\"", expect_log);
	/* disk0 was reset: its front-end sees it */
	int r = 0;
	for (int i = 0; i < 100 && r != -ENODEV; i++)
		r = fe_blk_poll(fx->blk[0], 10);
	assert_int_equal(r, -ENODEV);
	/* disk1 and the console were taken over: nothing for them changed */
	struct load l1;
	load_init(&l1, 32, 99);
	l1.disk[0] = l->disk[1];
	l1.ndisks = 1;
	l1.con = l->con;
	l1.has_con = true;
	if (load_run(&l1, 300) < 0 || load_drain(&l1, 10000) < 0 || load_verify(&l1) < 0)
		fail_msg("disk1 after the restart: %s", l1.err);
	l->disk[1] = l1.disk[0];
	assert_false(log_has(fx, "disk1: cannot take the device over"));
	assert_false(log_has(fx, "con0: cannot take the device over"));
}

/* A field of disk0's journal, changed while the daemon is down. */
struct corruption {
	const char *what;
	void (*apply)(struct journal_hdr *h, uint8_t *base, size_t size);
	const char *log;
};

static void c_magic(struct journal_hdr *h, uint8_t *b, size_t n) { h->magic ^= 0x100; }
static void c_version(struct journal_hdr *h, uint8_t *b, size_t n) { h->version = 7; }
/* Checksummed again after the change: the content's own check must catch it. */
static void c_identity(struct journal_hdr *h, uint8_t *b, size_t n)
{
	h->identity ^= 1;
	h->crc = journal_crc(h, offsetof(struct journal_hdr, crc));
}

/* queue 0's ring moved out of the shared memory, in the newest transport
 * copy, checksummed again */
static void c_ring(struct journal_hdr *h, uint8_t *b, size_t n)
{
	struct journal_transport *t = &h->t[h->seq & 1];
	t->q[0].desc = 0xfffffff000ull;
	t->crc = journal_crc(t, offsetof(struct journal_transport, crc));
}

/* the newest blob says another link kind, checksummed again */
static void c_link_kind(struct journal_hdr *h, uint8_t *b, size_t n)
{
	size_t off = (sizeof(*h) + 63) & ~(size_t)63;
	off += (sizeof(uint16_t) * h->nq + 63) & ~(size_t)63;
	off += ((size_t)h->nq * h->qmax * sizeof(uint32_t) + 63) & ~(size_t)63;
	unsigned k = (unsigned)(h->blob_seq & 1);
	uint8_t *blob = b + off + (size_t)k * JOURNAL_BLOB_SIZE;
	blob[0] ^= 0x40;
	h->blob_crc[k] = journal_crc(blob, h->blob_len[k]);
}
static void c_hdr_crc(struct journal_hdr *h, uint8_t *b, size_t n) { h->qmax ^= 2; }
static void c_transport(struct journal_hdr *h, uint8_t *b, size_t n)
{
	h->t[0].status ^= 0x40;
	h->t[1].status ^= 0x40;
}
static void c_blob(struct journal_hdr *h, uint8_t *b, size_t n)
{
	h->blob_crc[0] ^= 1;
	h->blob_crc[1] ^= 1;
}

/* the per-queue parts, found as the journal lays them out */
static void c_published(struct journal_hdr *h, uint8_t *b, size_t n)
{
	size_t off = (sizeof(*h) + 63) & ~(size_t)63;
	uint16_t *published = (uint16_t *)(b + off);
	published[0] += 1000;
}

static void c_inflight(struct journal_hdr *h, uint8_t *b, size_t n)
{
	size_t off = (sizeof(*h) + 63) & ~(size_t)63;
	off += (sizeof(uint16_t) * h->nq + 63) & ~(size_t)63;
	uint32_t *inflight = (uint32_t *)(b + off);
	inflight[3] = 0x20005;        /* neither 0 nor JOURNAL_TAKEN | position */
}

static void corrupt(struct fixture *fx, void *arg)
{
	const struct corruption *c = arg;
	int fd = sup_fd(fx->sup, "disk0/journal");
	assert_true(fd >= 0);
	off_t size = lseek(fd, 0, SEEK_END);
	uint8_t *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	c->apply((struct journal_hdr *)m, m, (size_t)size);
	munmap(m, (size_t)size);
	close(fd);
}

static const struct corruption corruptions[] = {
	{ "magic", c_magic, "disk0: cannot take the device over (the journal has magic "
	  "0x4a445749 version 1, not 0x4a445649 version 1); its link is reset" },
	{ "version", c_version, "disk0: cannot take the device over (the journal has magic "
	  "0x4a445649 version 7, not 0x4a445649 version 1); its link is reset" },
	{ "identity", c_identity, "disk0: cannot take the device over (the journal was made for "
	  "another configuration" },
	{ "ring", c_ring, "disk0: cannot take the device over (queue 0: the journal's ring fails "
	  "the checks); its link is reset" },
	{ "link kind", c_link_kind, "disk0: cannot take the device over (the journal does not "
	  "describe a sim link); its link is reset" },
	{ "header", c_hdr_crc, "disk0: cannot take the device over (the journal's header fails "
	  "its checksum); its link is reset" },
	{ "transport", c_transport, "disk0: cannot take the device over (the journal's transport "
	  "state fails its checksums); its link is reset" },
	{ "blob", c_blob, "disk0: cannot take the device over (the journal's link description "
	  "fails its checksum); its link is reset" },
	{ "published", c_published, "disk0: cannot take the device over (queue 0: the ring's "
	  "used index" },
	{ "inflight", c_inflight, "disk0: cannot take the device over (the journal's queue 0 has "
	  "a bad in-flight flag); its link is reset" },
};

static void test_corrupt_journal(void **state)
{
	struct fixture *fx = *state;
	for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
		if (i) {
			load_free(&fx->load);
			disconnect(fx);
			sup_free(fx->sup);
			fx->sup = NULL;
			harness_cleanup(&fx->d);
			assert_int_equal(harness_mkdir(&fx->d), 0);
		}
		start(fx);
		kill_change_restart(fx, corrupt, (void *)&corruptions[i], corruptions[i].log);
		printf("journal %s corrupted: disk0 reset, disk1 and con0 taken over\n",
		       corruptions[i].what);
	}
}

/* disk0 serves another image after the restart: not what its journal
 * describes. */
static void other_image(struct fixture *fx, void *arg)
{
	assert_int_equal(harness_image(path(fx, "c.img", 0), 16 * MiB, 23), 0);
	write_conf(fx, path(fx, "c.img", 0));
}

static void test_config_changed(void **state)
{
	struct fixture *fx = *state;
	start(fx);
	kill_change_restart(fx, other_image, NULL, "disk0: cannot take the device over (the "
			    "journal was made for another configuration");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kills_under_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_while_spinning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_changed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
