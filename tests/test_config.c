/* Config parsing: every error by its exact message (file, line, key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char dir[64];
static char conf[128];
static char img[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vivcfg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	FILE *f = fopen(img, "w");
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	unlink(conf);
	unlink(img);
	rmdir(dir);
	return 0;
}

/* Write text (with %s replaced by the image path) and parse it. */
static int load(const char *text, char *err, size_t err_len, struct config **cfg)
{
	FILE *f = fopen(conf, "w");
	fprintf(f, text, img, img, img);
	fclose(f);
	*cfg = NULL;
	return config_load(conf, cfg, err, err_len);
}

static void expect_error(const char *text, const char *msg)
{
	char err[512], want[512];
	struct config *cfg;
	assert_true(load(text, err, sizeof(err), &cfg) < 0);
	snprintf(want, sizeof(want), "%s:%s", conf, msg);
	assert_string_equal(err, want);
	assert_null(cfg);
}

static void test_valid(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("# comment\n[daemon]\nlog-level = debug\n\n"
		     "[block disk0]\nuio = /dev/uio0\nimage = %s\nread-only = yes\nserial = ABC\n"
		     "queues = 2\nqueue-size = 64\n\n"
		     "[block disk1]\nsim = /run/x.sock\nimage = %s\nshm-size = 16M ; inline comment\n"
		     "vectors = 3\ncell = linux-1\n\n"
		     "[block disk2]\npci = 0000:01:0c.0\nimage = %s\n", err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->ndevices, 3);
	assert_int_equal(cfg->daemon.log_level, 7);
	const struct cfg_device *b = &cfg->devices[0];
	assert_string_equal(b->name, "disk0");
	assert_int_equal(b->line, 5);
	assert_int_equal(b->link.kind, LINK_UIO);
	assert_string_equal(b->link.target, "/dev/uio0");
	assert_true(b->read_only);
	assert_string_equal(b->serial, "ABC");
	assert_int_equal(b->queues, 2);
	assert_int_equal(b->queue_size, 64);
	b = &cfg->devices[1];
	assert_int_equal(b->link.kind, LINK_SIM_HOST);
	assert_int_equal(b->link.shm_size, 16u << 20);
	assert_int_equal(b->link.vectors, 3);
	assert_string_equal(b->cell, "linux-1");
	assert_string_equal(b->serial, "disk1");     /* default: the name */
	assert_int_equal(b->queue_size, 256);         /* defaults */
	assert_int_equal(b->queues, 1);
	assert_false(b->read_only);
	assert_int_equal(cfg->devices[2].link.kind, LINK_PCI);
	config_free(cfg);
}

static void test_unknown_key(void **state)
{
	expect_error("[block d]\nsim = /s\nimage = %s\nbogus = 1\n", "4: [block d] bogus: unknown key");
	expect_error("[daemon]\nthreadz = 2\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] threadz: unknown key");
}

static void test_missing_keys(void **state)
{
	expect_error("\n[block d]\nsim = /s\n", "2: [block d]: missing key 'image'");
	expect_error("[block d]\nimage = %s\n",
		     "1: [block d]: missing key 'uio', 'pci', 'sim' or 'sim-connect' (the IVSHMEM link)");
	expect_error("# nothing\n", "1: no device configured (add a [block NAME] or [console NAME] "
		     "section)");
}

static void test_bad_values(void **state)
{
	expect_error("[block d]\nsim = /s\nqueue-size = 100\nimage = %s\n",
		     "3: [block d] queue-size: must be a power of two from 2 to 32768 (got '100')");
	expect_error("[block d]\nsim = /s\nqueues = 0\nimage = %s\n",
		     "3: [block d] queues: must be a number from 1 to 64 (got '0')");
	expect_error("[block d]\nsim = /s\nqueues = 2x\nimage = %s\n",
		     "3: [block d] queues: must be a number from 1 to 64 (got '2x')");
	expect_error("[block d]\nsim = /s\nread-only = maybe\nimage = %s\n",
		     "3: [block d] read-only: must be yes or no (got 'maybe')");
	expect_error("[block d]\nsim = /s\nserial = 123456789012345678901\nimage = %s\n",
		     "3: [block d] serial: at most 20 characters (got 21)");
	expect_error("[block d]\nsim = /s\nshm-size = 1K\nimage = %s\n",
		     "3: [block d] shm-size: must be a size from 64K to 4G, like 4M (got '1K')");
	expect_error("[block d]\npci = 00:0c\nimage = %s\n",
		     "2: [block d] pci: '00:0c' is not a PCI address like 0000:00:0c.0");
	expect_error("[daemon]\nlog-level = loud\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] log-level: must be error, warning, info or debug (got 'loud')");
}

static void test_structure_errors(void **state)
{
	expect_error("[block d]\nsim = /s\nimage = %s\n[block d]\nsim = /t\nimage = %s\n",
		     "4: [block d]: duplicate device name 'd' (first at line 1)");
	expect_error("[block a]\nsim = /s\nimage = %s\n[block b]\nsim = /s\nimage = %s\n",
		     "5: [block b] sim: link /s is already used by [block a] (line 2)");
	expect_error("[block a]\nsim = /s\nuio = /dev/uio0\nimage = %s\n",
		     "3: [block a] uio: the device already has a link (sim, line 2); give exactly one of "
		     "uio, pci, sim, sim-connect");
	expect_error("[serial c]\n", "1: [serial c]: unknown section (expected [daemon], "
		     "[block NAME] or [console NAME])");
	expect_error("[block]\n", "1: [block]: a block section needs one name of letters, digits, "
		     "'-', '_' or '.' (e.g. [block disk0])");
	expect_error("[console a b]\n", "1: [console a b]: a console section needs one name of "
		     "letters, digits, '-', '_' or '.' (e.g. [console console0])");
	expect_error("image = x\n", "1: image: key outside of any section");
	expect_error("[block d]\nsim = /s\nthis line has no equals sign\nimage = %s\n",
		     "3: syntax error (expected [section] or key = value)");
}

static void test_console_errors(void **state)
{
	expect_error("[console c]\nsim = /s\n", "1: [console c]: missing key 'endpoint' (pty, socket, "
		     "log or stdio)");
	expect_error("[console c]\nsim = /s\nendpoint = pty\n",
		     "1: [console c]: missing key 'path' (where the pty goes)");
	expect_error("[console c]\nsim = /s\nendpoint = tty\n",
		     "3: [console c] endpoint: must be pty, socket, log or stdio (got 'tty')");
	expect_error("[console c]\nsim = /s\nendpoint = log\npath = /l\nimage = x\n",
		     "5: [console c] image: not a console key");
	expect_error("[console c]\nsim = /s\nendpoint = socket\npath = /p\nbacklog = 1G\n",
		     "5: [console c] backlog: must be a size up to 64M, like 64K (got '1G')");
	expect_error("[console a]\nsim = /s\nendpoint = stdio\n[console b]\nsim = /t\n"
		     "endpoint = stdio\n", "4: [console b] endpoint: only one console can use stdio");
	expect_error("[block a]\nsim = /s\nimage = %s\n[console b]\nsim = /s\nendpoint = stdio\n",
		     "5: [console b] sim: link /s is already used by [block a] (line 2)");
}

static void test_console_valid(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("[console con0]\nsim = /run/c.sock\nendpoint = socket\npath = /run/c.con\n"
		     "backlog = 16K\ncols = 132\nrows = 50\n", err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	const struct cfg_device *c = &cfg->devices[0];
	assert_int_equal(c->type, DEV_CONSOLE);
	assert_int_equal(c->endpoint, EP_SOCKET);
	assert_string_equal(c->ep_path, "/run/c.con");
	assert_int_equal(c->backlog, 16 << 10);
	assert_int_equal(c->cols, 132);
	assert_int_equal(c->rows, 50);
	assert_int_equal(c->queue_size, 64);
	config_free(cfg);
}

static void test_image_missing(void **state)
{
	char want[512];
	snprintf(want, sizeof(want), "1: [block d] image: %s/none.img: No such file or directory", dir);
	char text[256];
	snprintf(text, sizeof(text), "[block d]\nsim = /s\nimage = %s/none.img\n", dir);
	expect_error(text, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_image_missing),
		cmocka_unit_test(test_console_errors),
		cmocka_unit_test(test_console_valid),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
