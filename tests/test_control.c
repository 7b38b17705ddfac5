/* The control socket and its commands, against the real daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/virtio_blk.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "tests/frontend/fe_blk.h"
#include "tests/harness.h"

static struct daemon_proc d;
static char ctl_path[400];

static int ctl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, ctl_path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send one command, return the whole reply (status line, body, "."). */
static char *ctl(const char *cmd)
{
	static char reply[65536];
	int fd = ctl_connect();
	char line[512];
	snprintf(line, sizeof(line), "%s\n", cmd);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	size_t got = 0;
	while (got < sizeof(reply) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		assert_int_equal(poll(&p, 1, 5000), 1);
		ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		reply[got] = '\0';
		if (got >= 3 && strcmp(reply + got - 3, "\n.\n") == 0)
			break;
	}
	close(fd);
	return reply;
}

static int setup(void **state)
{
	if (harness_mkdir(&d) < 0)
		return -1;
	harness_image(harness_path(&d, "a.img", 0), 4 << 20, 3);
	harness_image(harness_path(&d, "b.img", 0), 2 << 20, 4);
	harness_image(harness_path(&d, "c.img", 0), 6 << 20, 5);
	snprintf(ctl_path, sizeof(ctl_path), "%s/control.sock", d.dir);
	char conf[2048];
	snprintf(conf, sizeof(conf),
		 "[daemon]\ncontrol-socket = %s\n"
		 "[block rw]\nsim = %s/rw.sock\nimage = %s/a.img\ncell = linux1\n"
		 "[block ro]\nsim = %s/ro.sock\nimage = %s/b.img\nread-only = yes\n",
		 ctl_path, d.dir, d.dir, d.dir, d.dir);
	return harness_start(&d, conf, 2, NULL);
}

static int teardown(void **state)
{
	int st = harness_stop(&d);
	harness_cleanup(&d);
	return st == 0 ? 0 : -1;
}

static struct fe_blk *connect_disk(const char *name)
{
	struct fe_blk *b;
	char err[256], p[400];
	snprintf(p, sizeof(p), "%s/%s.sock", d.dir, name);
	if (fe_blk_open(p, 0, 1, 32, 5000, &b, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return b;
}

static void test_socket_mode(void **state)
{
	struct stat st;
	assert_int_equal(stat(ctl_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_list(void **state)
{
	char *r = ctl("list");
	assert_non_null(strstr(r, "ok\n"));
	assert_non_null(strstr(r, "rw           block    waiting for peer"));
	struct fe_blk *b = connect_disk("rw");
	r = ctl("list");
	assert_non_null(strstr(r, "rw           block    running"));
	assert_non_null(strstr(r, "ro           block    waiting for peer"));
	r = ctl("json list");
	assert_non_null(strstr(r, "{\"name\":\"rw\",\"type\":\"block\""));
	assert_non_null(strstr(r, "\"state\":\"running\""));
	assert_non_null(strstr(r, "\"cell\":\"linux1\""));
	assert_non_null(strstr(r, "\"read_only\":true"));
	fe_blk_close(b);
}

static void test_stats_count_io(void **state)
{
	struct fe_blk *b = connect_disk("rw");
	uint8_t buf[8192];
	for (int i = 0; i < 3; i++)
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, i * 16, buf, 8192), 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), 0);
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 1 << 30, buf, 4096), VIRTIO_BLK_S_IOERR);
	char *r = ctl("json stats rw");
	assert_non_null(strstr(r, "\"write\":{\"requests\":3,\"bytes\":24576,\"errors\":0}"));
	assert_non_null(strstr(r, "\"read\":{\"requests\":1,\"bytes\":4096,\"errors\":1}"));
	assert_non_null(strstr(r, "\"inflight\":0"));
	r = ctl("stats rw");
	assert_non_null(strstr(r, "  write: 3 requests, 24576 bytes, 0 errors\n"));
	assert_non_null(strstr(r, "  queue 0: "));
	fe_blk_close(b);
}

static uint64_t read_capacity(struct fe_blk *b)
{
	uint64_t cap;
	assert_int_equal(fe_read_config(b->fe, 0, &cap, 8), 0);
	return le64toh(cap);
}

static void test_resize_reaches_frontend(void **state)
{
	struct fe_blk *b = connect_disk("rw");
	assert_int_equal(read_capacity(b), (4 << 20) / 512);
	uint32_t gen = shm_ld32(b->fe->rw, VI_CONFIG_GENERATION);
	assert_int_equal(truncate(harness_path(&d, "a.img", 0), 8 << 20), 0);
	char *r = ctl("resize rw");
	assert_string_equal(r, "ok\nrw: capacity 16384 sectors\n.\n");
	/* The config change is announced: flag set, generation moved. */
	assert_int_equal(fe_wait(b->fe, 2000), 1);
	assert_int_equal(read_capacity(b), 16384);
	assert_true(shm_ld32(b->fe->rw, VI_CONFIG_GENERATION) > gen);
	uint8_t buf[512];
	assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, 16383, buf, 512), VIRTIO_BLK_S_OK);
	fe_blk_close(b);
}

static void test_change_and_eject(void **state)
{
	struct fe_blk *rw = connect_disk("rw");
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "change rw %s", harness_path(&d, "c.img", 0));
	char *r = ctl(cmd);
	assert_non_null(strstr(r, "error: rw is a writable disk in use by the cell"));
	fe_blk_close(rw);

	struct fe_blk *ro = connect_disk("ro");
	snprintf(cmd, sizeof(cmd), "change ro %s", harness_path(&d, "c.img", 0));
	r = ctl(cmd);
	assert_string_equal(r, "ok\nro: medium changed, capacity 12288 sectors\n.\n");
	assert_int_equal(read_capacity(ro), 12288);
	uint8_t got[4096], want[4096];
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 0, got, 4096), 0);
	assert_int_equal(harness_read_file(harness_path(&d, "c.img", 0), 0, want, 4096), 0);
	assert_memory_equal(got, want, 4096);
	r = ctl("eject ro");
	assert_string_equal(r, "ok\nro: medium ejected, capacity 0 sectors\n.\n");
	assert_int_equal(read_capacity(ro), 0);
	assert_int_equal(fe_blk_io(ro, 0, VIRTIO_BLK_T_IN, 0, got, 512), VIRTIO_BLK_S_IOERR);
	fe_blk_close(ro);
	r = ctl("change ro /nonexistent.img");
	assert_string_equal(r, "error: cannot open image /nonexistent.img: No such file or "
			    "directory\n.\n");
}

static void test_bad_commands(void **state)
{
	assert_string_equal(ctl("frobnicate"), "error: unknown command or wrong arguments: "
			    "'frobnicate' (try 'help')\n.\n");
	assert_string_equal(ctl("resize"), "error: unknown command or wrong arguments: 'resize' "
			    "(try 'help')\n.\n");
	assert_string_equal(ctl("resize nope"), "error: no device named 'nope'\n.\n");
	assert_string_equal(ctl("stats nope"), "error: no device named 'nope'\n.\n");
	/* A line too long for the daemon: an error, then the connection closes. */
	int fd = ctl_connect();
	char big[5000];
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	char reply[256] = "";
	struct pollfd p = { fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(read(fd, reply, sizeof(reply) - 1) > 0);
	assert_non_null(strstr(reply, "error: command longer than 4095 bytes"));
	close(fd);
}

/* Clients that vanish mid-command or flood without reading cannot stall
 * device service. */
static void test_abusive_clients(void **state)
{
	struct fe_blk *b = connect_disk("rw");
	int half = ctl_connect();
	assert_int_equal(write(half, "stats r", 7), 7);     /* never finished */
	int flood = ctl_connect();
	char cmds[4096];
	for (size_t i = 0; i + 5 <= sizeof(cmds); i += 5)
		memcpy(cmds + i, "list\n", 5);
	/* Write until the daemon stops taking it or cuts us off. */
	int fl = 1;
	setsockopt(flood, SOL_SOCKET, SO_SNDBUF, &fl, sizeof(fl));
	for (int i = 0; i < 2000; i++) {
		if (send(flood, cmds, sizeof(cmds) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	}
	uint8_t want[4096], got[4096];
	harness_fill(want, sizeof(want), 77);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_OUT, i * 8, want, 4096), 0);
		assert_int_equal(fe_blk_io(b, 0, VIRTIO_BLK_T_IN, i * 8, got, 4096), 0);
		assert_memory_equal(got, want, 4096);
	}
	close(half);
	close(flood);
	assert_non_null(strstr(ctl("list"), "ok\n"));
	fe_blk_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_mode),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_stats_count_io),
		cmocka_unit_test(test_resize_reaches_frontend),
		cmocka_unit_test(test_change_and_eject),
		cmocka_unit_test(test_bad_commands),
		cmocka_unit_test(test_abusive_clients),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
