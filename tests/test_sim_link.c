/* The software link host (core/sim_link.c) against a hostile peer, at the
 * level of its socket and the files it hands out: what the fuzz target
 * tests/fuzz/fuzz_sim_link.c found, kept as plain tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/port_sim.h"
#include "core/shm.h"
#include "core/sim_link.h"
#include "core/sim_proto.h"

static uv_loop_t loop;
static char path[108];
static struct sim_link *link_;
static struct ivshm_port *own;

static int setup(void **state)
{
	char err[256];
	int fd;
	struct sim_link_params lp = { .shm_size = 64 << 10, .max_peers = 2, .vectors = 2,
				      .protocol = 0x8002 };
	snprintf(path, sizeof(path), "/tmp/test-sim-link.%d.sock", (int)getpid());
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(sim_link_create(&loop, path, &lp, &link_, err, sizeof(err)), 0);
	/* The daemon's own peer, as it joins the links it hosts. */
	assert_int_equal(sim_link_connect_local(link_, &fd), 0);
	assert_int_equal(port_sim_open_fd(fd, path, 1000, &own, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	ivshm_port_destroy(own);
	sim_link_destroy(link_);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

/* A peer joins and takes the shared memory from its INIT message. */
static int join(int *shm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uv_run(&loop, UV_RUN_NOWAIT);           /* the link accepts */
	uint8_t m[SIM_INIT_LEN];
	assert_int_equal(sim_recv(s, m, sizeof(m), shm, 1000, 1), SIM_INIT_LEN);
	assert_true(*shm >= 0);
	return s;
}

/* The peer may not change the size of the memory everyone maps: a
 * shrunk file makes every later access of the daemon's (its state table,
 * its port's R/W section) a SIGBUS. */
static void test_peer_cannot_resize_shared_memory(void **state)
{
	int shm, s = join(&shm);
	assert_int_equal(ftruncate(shm, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(shm, 1 << 30), -1);
	assert_int_equal(errno, EPERM);
	/* nor seal it against writes for whoever maps it next */
	assert_int_equal(fcntl(shm, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	/* the daemon goes on using all of it; the peer leaves */
	shm_st8(own->rw, own->rw_size - 1, 1);
	ivshm_port_set_state(own, 1);
	close(s);
	close(shm);
	uv_run(&loop, UV_RUN_NOWAIT);           /* the link zeroes the peer's state */
	assert_int_equal(ivshm_port_peer_state(own), 0);
	assert_int_equal(shm_ld8(own->rw, own->rw_size - 1), 1);
}

int main(void)
{
	log_set_level(LOG_ERR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_peer_cannot_resize_shared_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
