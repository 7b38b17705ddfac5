/* The control socket module alone: it is created with its mode and no
 * process-wide state changes while it is (the daemon's worker threads may
 * be creating files meanwhile).  Regression: control_open() switched the
 * process umask around bind(), after the worker threads had started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/control.h"

static void handler(void *ctx, const char *line, struct control_cmd *cmd)
{
	control_answer(cmd, 0, line);
}

static atomic_bool stop;
static atomic_uint seen_changed, reads;

/* Another thread of the process, as a worker would be. */
static void watch_umask(void *arg)
{
	while (!atomic_load(&stop)) {
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		while (f && fgets(line, sizeof(line), f)) {
			unsigned m;
			if (sscanf(line, "Umask: %o", &m) == 1) {
				atomic_fetch_add(&reads, 1);
				if (m != 022)
					atomic_fetch_add(&seen_changed, 1);
			}
		}
		if (f)
			fclose(f);
	}
}

static void test_no_umask_change(void **state)
{
	char dir[] = "/tmp/vivctl-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	umask(022);
	uv_loop_t loop;
	uv_loop_init(&loop);
	uv_thread_t t;
	atomic_store(&stop, false);
	assert_int_equal(uv_thread_create(&t, watch_umask, NULL), 0);
	char err[256];
	for (int i = 0; i < 300; i++) {
		struct control *c;
		assert_int_equal(control_open(&loop, path, 0600, handler, NULL, &c, err, sizeof(err)), 0);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0600);
		control_close(c);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	atomic_store(&stop, true);
	uv_thread_join(&t);
	assert_true(atomic_load(&reads) > 0);
	assert_int_equal(atomic_load(&seen_changed), 0);
	/* nothing left behind next to the socket */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", dir);
	assert_int_equal(system(cmd), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_umask_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
