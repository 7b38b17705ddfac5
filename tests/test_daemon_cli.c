/* The daemon binary's command line and its refusal of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <unistd.h>

#include "tests/fake_sysfs.h"
#include "tests/harness.h"

static void test_version_and_help(void **state)
{
	char out[4096];
	const char *v[] = { "--version", NULL };
	assert_int_equal(harness_run(v, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "virtio-ivshmemd "));
	const char *h[] = { "--help", NULL };
	assert_int_equal(harness_run(h, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "--check-config"));
	const char *bad[] = { "--frobnicate", NULL };
	assert_int_equal(harness_run(bad, out, sizeof(out)), 2);
}

static void test_check_config(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	char text[1024], out[4096], want[1024];
	snprintf(text, sizeof(text), "[block a]\nsim = %s/a.sock\nimage = %s/a.img\n", d.dir, d.dir);
	FILE *f = fopen(d.conf, "w");
	fputs(text, f);
	fclose(f);
	const char *args[] = { "--check-config", d.conf, NULL };
	assert_int_equal(harness_run(args, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s: OK, 1 block device(s), 0 console(s)", d.conf);
	assert_non_null(strstr(out, want));
	/* It touched no device: no socket was created. */
	assert_int_not_equal(access(harness_path(&d, "a.sock", 0), F_OK), 0);

	f = fopen(d.conf, "a");
	fputs("queue-size = 3\n", f);
	fclose(f);
	assert_int_equal(harness_run(args, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "%s:4: [block a] queue-size: must be a power of two from 2 to "
		 "32768 (got '3')\n", d.conf);
	assert_string_equal(out, want);
	harness_cleanup(&d);
}

/* Sizes the real drivers cannot use are refused before anything starts,
 * with the numbers. */
static void test_check_config_sizes(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	char text[1024], out[4096], want[1024];
	const char *args[] = { "--check-config", d.conf, NULL };
	snprintf(text, sizeof(text), "[console c]\nsim = %s/c.sock\nendpoint = log\n"
		 "path = %s/c.log\nqueue-size = 64\n", d.dir, d.dir);
	FILE *f = fopen(d.conf, "w");
	fputs(text, f);
	fclose(f);
	assert_int_equal(harness_run(args, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "%s:1: [console c]: queue-size 64 does not fit the link's R/W "
		 "section (252 KiB): the cell's driver fills the whole receive queue with 4 KiB "
		 "buffers from it, and at most 32 fit with the rings and a buffer to transmit; leave "
		 "queue-size out to get the largest that fits, or give the link more memory\n", d.conf);
	assert_string_equal(out, want);
	/* left out: the largest that fits */
	snprintf(text, sizeof(text), "[console c]\nsim = %s/c.sock\nendpoint = log\n"
		 "path = %s/c.log\n[block a]\nsim = %s/a.sock\nimage = %s/a.img\n"
		 "shm-size = 256K\n", d.dir, d.dir, d.dir, d.dir);
	f = fopen(d.conf, "w");
	fputs(text, f);
	fclose(f);
	assert_int_equal(harness_run(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "endpoint=log path="));
	assert_non_null(strstr(out, "queue-size=32\n"));
	/* a block request that could never be allocated in 252 KiB */
	f = fopen(d.conf, "a");
	fputs("seg-max = 126\n", f);
	fclose(f);
	assert_int_equal(harness_run(args, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "%s:5: [block a]: the cell's driver cannot work in the link's "
		 "R/W section of 252 KiB: 1 ring(s) of 256 entries take 8 KiB and one largest request "
		 "(seg-max 126 x size-max 4 KiB) needs 507 KiB more; lower queues, queue-size or "
		 "seg-max, or give the link more memory\n", d.conf);
	assert_string_equal(out, want);
	harness_cleanup(&d);
}

static void test_missing_uio_node(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	char text[1024], want[512];
	snprintf(text, sizeof(text), "[daemon]\nsysfs-root = %s\n[block a]\nuio = /dev/uio9\n"
		 "image = %s/a.img\n", d.dir, d.dir);
	int status = -1;
	assert_int_equal(harness_start(&d, text, 1, &status), -1);
	assert_int_equal(status, 1);
	snprintf(want, sizeof(want), "[block a]: %s/class/uio/uio9/maps has no 'registers' map", d.dir);
	assert_true(harness_log_has(&d, want));
	harness_cleanup(&d);
}

/* The role comes from the device's PCI class: a front-end device bound to
 * uio_ivshmem by mistake is refused with what to do instead. */
static void test_uio_front_end_refused(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	struct fake_uio u = fake_uio_default();
	u.class_code = 0xff8002;
	assert_int_equal(fake_sysfs_add_uio(d.dir, &u), 0);
	char text[1024], want[512];
	snprintf(text, sizeof(text), "[daemon]\nsysfs-root = %s/sys\n[block a]\nuio = %s/dev/uio0\n"
		 "image = %s/a.img\n", d.dir, d.dir, d.dir);
	int status = -1;
	assert_int_equal(harness_start(&d, text, 1, &status), -1);
	assert_int_equal(status, 1);
	snprintf(want, sizeof(want), "[block a]: link uio:%s/dev/uio0 is the virtio front-end side "
		 "(class ff8002); bind the back-end device (class ffc002) to uio_ivshmem instead",
		 d.dir);
	assert_true(harness_log_has(&d, want));
	harness_cleanup(&d);
}

static void test_missing_image_at_start(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	char text[1024], want[512];
	snprintf(text, sizeof(text), "[block a]\nsim = %s/a.sock\nimage = %s/missing.img\n",
		 d.dir, d.dir);
	int status = -1;
	assert_int_equal(harness_start(&d, text, 1, &status), -1);
	assert_int_equal(status, 1);
	snprintf(want, sizeof(want), ":1: [block a] image: %s/missing.img: No such file or directory",
		 d.dir);
	assert_true(harness_log_has(&d, want));
	harness_cleanup(&d);
}

static void test_clean_shutdown(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	char text[1024];
	snprintf(text, sizeof(text), "[block a]\nsim = %s/a.sock\nimage = %s/a.img\n", d.dir, d.dir);
	assert_int_equal(harness_start(&d, text, 1, NULL), 0);
	assert_int_equal(access(harness_path(&d, "a.sock", 0), F_OK), 0);
	assert_int_equal(harness_stop(&d), 0);
	assert_true(harness_log_has(&d, "all devices stopped"));
	/* The hosted link's socket is gone. */
	assert_int_not_equal(access(harness_path(&d, "a.sock", 0), F_OK), 0);
	harness_cleanup(&d);
}

/* SIGTERM again and again while the daemon stops (a supervisor that
 * repeats itself): still a clean exit 0, never death by the signal (the
 * default action is back once the daemon closed its signal watchers). */
static void test_repeated_sigterm(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	assert_int_equal(harness_image(harness_path(&d, "a.img", 0), 1 << 20, 0), 0);
	char text[1024];
	snprintf(text, sizeof(text), "[daemon]\nthreads = 2\n[block a]\nsim = %s/a.sock\n"
		 "image = %s/a.img\n[block b]\nsim = %s/b.sock\nimage = %s/a.img\n"
		 "read-only = yes\n", d.dir, d.dir, d.dir, d.dir);
	for (int round = 0; round < 5; round++) {
		assert_int_equal(harness_start(&d, text, 2, NULL), 0);
		int st = 0;
		bool gone = false;
		for (int i = 0; i < 50000 && !gone; i++) {
			kill(d.pid, SIGTERM);
			gone = waitpid(d.pid, &st, WNOHANG) == d.pid;
			usleep(200);
		}
		assert_true(gone);
		if (!WIFEXITED(st))
			fail_msg("round %d: the daemon died of signal %d", round, WTERMSIG(st));
		assert_int_equal(WEXITSTATUS(st), 0);
		d.pid = 0;
	}
	harness_cleanup(&d);
}

/* The example configs in config/examples are valid (image paths swapped
 * for files that exist here). */
static void test_example_configs(void **state)
{
	struct daemon_proc d;
	assert_int_equal(harness_mkdir(&d), 0);
	const char *img = harness_path(&d, "x.img", 0);
	assert_int_equal(harness_image(img, 1 << 20, 0), 0);
	const char *examples[] = { "jailhouse-qemu.conf", "sim-demo.conf" };
	for (int i = 0; i < 2; i++) {
		char cmd[1024], out[4096];
		snprintf(cmd, sizeof(cmd), "sed -E 's|^image = .*|image = %s|' %s/config/examples/%s > %s",
			 img, SOURCE_ROOT, examples[i], d.conf);
		assert_int_equal(system(cmd), 0);
		const char *args[] = { "--check-config", d.conf, NULL };
		int st = harness_run(args, out, sizeof(out));
		if (st != 0)
			fail_msg("%s: %s", examples[i], out);
	}
	harness_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_and_help),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_check_config_sizes),
		cmocka_unit_test(test_missing_uio_node),
		cmocka_unit_test(test_uio_front_end_refused),
		cmocka_unit_test(test_missing_image_at_start),
		cmocka_unit_test(test_clean_shutdown),
		cmocka_unit_test(test_repeated_sigterm),
		cmocka_unit_test(test_example_configs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
