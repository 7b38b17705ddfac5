/* Planned upgrades ("virtio-ivshmemctl upgrade"), end to end: the real
 * daemon replaces itself while the userspace front-end drives two disks at
 * queue depth 32 and a console stream both ways (tests/load.h), and the
 * front-end must see nothing but a pause: no error, no reset, no used id
 * twice, every acknowledged write read back, every console byte once and in
 * order.  VIVD_UPGRADES sets how many upgrades (default 100). */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/client.h"
#include "tests/harness.h"
#include "tests/load.h"

#define MiB (1u << 20)

struct fixture {
	struct daemon_proc d;
	char conf[4096];
	char ctl[400];
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

static int teardown(void **state)
{
	struct fixture *fx = *state;
	load_free(&fx->load);
	for (int i = 0; i < 2; i++)
		fe_blk_close(fx->blk[i]);
	fe_console_close(fx->con);
	if (fx->con_sock >= 0)
		close(fx->con_sock);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

/* Two disks and a console on hosted links, threads worker thread(s); the
 * front-end connected to all three, the test attached to the console's
 * socket endpoint. */
static void start(struct fixture *fx, unsigned threads, const char *extra)
{
	assert_int_equal(harness_image(path(fx, "a.img", 0), 16 * MiB, 11), 0);
	assert_int_equal(harness_image(path(fx, "b.img", 0), 8 * MiB, 12), 0);
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/control.sock", fx->d.dir);
	snprintf(fx->conf, sizeof(fx->conf),
		 "[daemon]\ncontrol-socket = %s\nthreads = %u\n%s\n"
		 "[block disk0]\nsim = %s/disk0.sock\nimage = %s/a.img\nqueues = 2\n"
		 "[block disk1]\nsim = %s/disk1.sock\nimage = %s/b.img\nqueues = 2\n"
		 "[console con0]\nsim = %s/con0.sock\nendpoint = socket\npath = %s/con0-ep.sock\n"
		 "backlog = 256K\n",
		 fx->ctl, threads, extra, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir, fx->d.dir,
		 fx->d.dir);
	if (harness_start(&fx->d, fx->conf, 3, NULL) != 0)
		fail_msg("daemon did not start; config:\n%s", fx->conf);
	char err[256];
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
	load_init(&fx->load, 32, 42);
	assert_int_equal(load_add_disk(&fx->load, fx->blk[0], 2, path(fx, "a.img", 0)), 0);
	assert_int_equal(load_add_disk(&fx->load, fx->blk[1], 2, path(fx, "b.img", 0)), 0);
	load_add_console(&fx->load, fx->con, fx->con_sock);
}

/* Upgrades run from a thread; the test's own thread keeps the load going. */
struct upgrader {
	const char *ctl;
	const char *exe;            /* NULL: the daemon's own */
	const char *expect;         /* in every answer */
	unsigned count, done;
	int rc;
	char err[1024];
	char last[1024];
	int finished;               /* atomic */
};

static void *upgrade_thread(void *arg)
{
	struct upgrader *u = arg;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "upgrade%s%s", u->exe ? " " : "", u->exe ? u->exe : "");
	for (u->done = 0; u->done < u->count; u->done++) {
		char *body = NULL;
		u->rc = ctl_request(u->ctl, cmd, 30000, &body, u->err, sizeof(u->err));
		if (u->rc < 0)
			break;
		snprintf(u->last, sizeof(u->last), "%s", body);
		free(body);
		if (u->expect && !strstr(u->last, u->expect)) {
			u->rc = -1;
			snprintf(u->err, sizeof(u->err), "answered \"%s\"", u->last);
			break;
		}
		usleep(20000);      /* let the load run between upgrades */
	}
	__atomic_store_n(&u->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static unsigned upgrades_wanted(void)
{
	const char *v = getenv("VIVD_UPGRADES");
	return v && atoi(v) > 0 ? (unsigned)atoi(v) : 100;
}

static pid_t pid_of(struct fixture *fx)
{
	return fx->d.pid;
}

/* Open fds of a process. */
static unsigned fd_count(pid_t pid)
{
	char dir[64], cmd[128];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(cmd, sizeof(cmd), "ls %s | wc -l", dir);
	FILE *f = popen(cmd, "r");
	unsigned n = 0;
	if (f) {
		if (fscanf(f, "%u", &n) != 1)
			n = 0;
		pclose(f);
	}
	return n;
}

/* expect_log: a line the daemon must have logged (NULL: none). */
static void upgrades_under_load(struct fixture *fx, unsigned threads, const char *extra,
				const char *expect_log)
{
	start(fx, threads, extra);
	pid_t pid = pid_of(fx);
	struct load *l = &fx->load;
	/* warm up: every device busy before the first upgrade */
	if (load_run(l, 300) < 0)
		fail_msg("before any upgrade: %s", l->err);
	unsigned fds = fd_count(pid);
	struct upgrader u = { .ctl = fx->ctl, .count = upgrades_wanted(),
			      .expect = "3 device(s) taken over, 0 started afresh" };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, upgrade_thread, &u), 0);
	while (!__atomic_load_n(&u.finished, __ATOMIC_ACQUIRE) && !l->failed)
		load_run(l, 50);
	if (l->failed)
		kill(pid, SIGKILL);     /* the upgrade thread's request ends too */
	pthread_join(t, NULL);
	if (l->failed)
		fail_msg("after %u upgrade(s): %s", u.done, l->err);
	if (u.rc < 0)
		fail_msg("upgrade %u failed: %s", u.done + 1, u.err);
	/* nothing leaks from one process image to the next */
	assert_int_equal(fd_count(pid), fds);
	if (load_run(l, 200) < 0 || load_drain(l, 10000) < 0 || load_verify(l) < 0)
		fail_msg("after %u upgrades: %s", u.done, l->err);
	/* the same process all along (execve), and still serving */
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(fx->d.pid, pid);
	printf("%u upgrades: %llu reads, %llu writes, %llu flushes; console %llu + %llu bytes; "
	       "longest completion gap %.1f ms\n", u.done,
	       (unsigned long long)(l->disk[0].reads + l->disk[1].reads),
	       (unsigned long long)(l->disk[0].writes + l->disk[1].writes),
	       (unsigned long long)(l->disk[0].flushes + l->disk[1].flushes),
	       (unsigned long long)l->con.to_cell.sent, (unsigned long long)l->con.from_cell.sent,
	       (double)l->max_gap_ns / 1e6);
	assert_true(l->con.to_cell.next > 0 && l->con.from_cell.next > 0);
	assert_false(harness_log_has(&fx->d, "cannot take the device over"));
	/* (a handful of upgrades may all find nothing in flight) */
	if (expect_log && u.done >= 10 && !harness_log_has(&fx->d, expect_log))
		fail_msg("the daemon never logged \"%s\"", expect_log);
	/* the images on the host hold what was acknowledged */
	assert_int_equal(harness_stop(&fx->d), 0);
	for (int i = 0; i < 2; i++) {
		struct load_disk *d = &l->disk[i];
		uint8_t *img = malloc(d->size);
		assert_int_equal(harness_read_file(path(fx, i ? "b.img" : "a.img", 0), 0, img,
						   d->size), 0);
		assert_memory_equal(img, d->model, d->size);
		free(img);
	}
}

static void test_upgrades_one_loop(void **state)
{
	upgrades_under_load(*state, 1, "", NULL);
}

static void test_upgrades_two_threads(void **state)
{
	upgrades_under_load(*state, 2, "", NULL);
}

/* No waiting for block requests: every upgrade hands requests over in
 * flight, and the new process executes them again (in avail order). */
static void test_upgrades_in_flight(void **state)
{
	upgrades_under_load(*state, 2, "upgrade-drain-ms = 0",
			    "still in flight after 0 ms; the new process executes them again");
}

/* One upgrade from the test's thread while the load goes on here. */
static void upgrade_once(struct fixture *fx, const char *exe, struct upgrader *u)
{
	*u = (struct upgrader){ .ctl = fx->ctl, .exe = exe, .count = 1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, upgrade_thread, u), 0);
	while (!__atomic_load_n(&u->finished, __ATOMIC_ACQUIRE) && !fx->load.failed)
		load_run(&fx->load, 20);
	pthread_join(t, NULL);
	if (fx->load.failed)
		fail_msg("%s", fx->load.err);
}

static void write_script(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
}

/* Executables that must not get the devices: each is refused with its
 * reason, and the cells see nothing of it. */
static void test_upgrade_refused(void **state)
{
	struct fixture *fx = *state;
	char text[1024];
	start(fx, 2, "");
	pid_t pid = pid_of(fx);
	if (load_run(&fx->load, 200) < 0)
		fail_msg("%s", fx->load.err);
	struct upgrader u;

	/* one that refuses the config */
	write_script(path(fx, "refuses.sh", 0),
		     "#!/bin/sh\necho 'line 3: this config is not for me' >&2\nexit 1\n");
	upgrade_once(fx, path(fx, "refuses.sh", 0), &u);
	assert_int_equal(u.rc, -EREMOTEIO);
	assert_non_null(strstr(u.err, "refuses.sh --check-handover"));
	assert_non_null(strstr(u.err, "refused it: line 3: this config is not for me"));

	/* one that names another journal version */
	upgrade_once(fx, DAEMON_JV2_PATH, &u);
	assert_int_equal(u.rc, -EREMOTEIO);
	assert_non_null(strstr(u.err, "does not take devices over from journal version 1 (it "
				      "says \"handover: journal versions 2\")"));

	/* one that passes the check but cannot read the journals once it runs:
	 * it executes the previous daemon again, which takes the devices back */
	snprintf(text, sizeof(text), "#!/bin/sh\nif [ \"$1\" = --check-handover ]; then exec %s "
		 "\"$@\"; fi\nexec %s \"$@\"\n", DAEMON_PATH, DAEMON_JV2_PATH);
	write_script(path(fx, "lies.sh", 0), text);
	upgrade_once(fx, path(fx, "lies.sh", 0), &u);
	assert_int_equal(u.rc, -EREMOTEIO);
	assert_non_null(strstr(u.err, "the new daemon cannot take the devices over: "));
	assert_non_null(strstr(u.err, "keeps a journal of version 1, it reads version 2; the "
				      "previous daemon"));
	assert_non_null(strstr(u.err, "took them back: 3 taken over, 0 started afresh"));
	assert_true(harness_log_has(&fx->d, "taking the previous daemon back"));

	/* and a good one still works afterwards */
	upgrade_once(fx, NULL, &u);
	if (u.rc < 0)
		fail_msg("%s", u.err);
	assert_non_null(strstr(u.last, "3 device(s) taken over, 0 started afresh"));
	if (load_run(&fx->load, 200) < 0 || load_drain(&fx->load, 10000) < 0 ||
	    load_verify(&fx->load) < 0)
		fail_msg("%s", fx->load.err);
	assert_int_equal(kill(pid, 0), 0);
	assert_false(harness_log_has(&fx->d, "cannot take the device over"));
}

/* SIGTERM while an upgrade is under way: it is given up, the asking client
 * told so, and the daemon stops as always (in-flight I/O answered, exit 0). */
static void test_sigterm_during_upgrade(void **state)
{
	struct fixture *fx = *state;
	start(fx, 2, "");
	char text[1024];
	snprintf(text, sizeof(text), "#!/bin/sh\nsleep 2\nexec %s \"$@\"\n", DAEMON_PATH);
	write_script(path(fx, "slow.sh", 0), text);
	struct upgrader u = { .ctl = fx->ctl, .exe = path(fx, "slow.sh", 0), .count = 1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, upgrade_thread, &u), 0);
	while (!harness_log_has(&fx->d, "upgrade: checking"))
		load_run(&fx->load, 20);
	kill(fx->d.pid, SIGTERM);
	while (!__atomic_load_n(&u.finished, __ATOMIC_ACQUIRE))
		load_run(&fx->load, 20);
	pthread_join(t, NULL);
	assert_int_equal(u.rc, -EREMOTEIO);
	assert_string_equal(u.err, "the daemon is shutting down");
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* SIGTERM again and again from the moment the daemon execs the new image:
 * the signals are held across the exec and handled by the new image once
 * it watches for them (a clean stop, status 0), never fatal meanwhile. */
static void test_sigterm_across_exec(void **state)
{
	struct fixture *fx = *state;
	start(fx, 2, "");
	struct upgrader u = { .ctl = fx->ctl, .count = 1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, upgrade_thread, &u), 0);
	while (!harness_log_has(&fx->d, "upgrade: handing"))
		load_run(&fx->load, 1);
	int st = 0;
	bool gone = false;
	for (int i = 0; i < 100000 && !gone; i++) {
		kill(fx->d.pid, SIGTERM);
		gone = waitpid(fx->d.pid, &st, WNOHANG) == fx->d.pid;
		usleep(100);
	}
	pthread_join(t, NULL);
	assert_true(gone);
	fx->d.pid = 0;
	if (!WIFEXITED(st))
		fail_msg("the daemon died of signal %d", WTERMSIG(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(harness_log_has(&fx->d, "all devices stopped"));
}

/* Without journals there is nothing to hand over: refused, nothing paused. */
static void test_upgrade_without_journal(void **state)
{
	struct fixture *fx = *state;
	start(fx, 1, "journal = no");
	struct upgrader u;
	upgrade_once(fx, NULL, &u);
	assert_int_equal(u.rc, -EREMOTEIO);
	assert_string_equal(u.err, "the config says journal = no: there is nothing to hand over");
	if (load_run(&fx->load, 100) < 0 || load_drain(&fx->load, 10000) < 0)
		fail_msg("%s", fx->load.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upgrades_one_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrades_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrades_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_without_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_during_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_across_exec, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
