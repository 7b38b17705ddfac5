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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/handover.h"
#include "core/le.h"
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

/* The link's description and fds as a new process gets them: copies, so
 * that the link of the test keeps its own. */
static int export_copy(struct handover *h, uint8_t *blob, size_t cap)
{
	memset(h, 0, sizeof(*h));
	int len = sim_link_export(link_, "l", h, blob, cap);
	assert_true(len > 0);
	for (unsigned i = 0; i < h->n; i++)
		h->fds[i].fd = dup(h->fds[i].fd);
	return len;
}

static int adopt_patched(size_t off, uint64_t v, unsigned width)
{
	struct handover h;
	uint8_t blob[128];
	char err[256];
	struct sim_link *l = NULL;
	int len = export_copy(&h, blob, sizeof(blob));
	if (width == 8)
		put_le64(blob, off, v);
	else if (width == 4)
		put_le32(blob, off, (uint32_t)v);
	int r = sim_link_adopt(&loop, path, blob, (size_t)len, &h, "l", &l, err, sizeof(err));
	if (r == 0)
		sim_link_destroy(l);
	handover_close_rest(&h);
	handover_free(&h);
	uv_run(&loop, UV_RUN_NOWAIT);
	return r;
}

/* The description of a hosted link comes from the journal, which is
 * checked like anything a peer could have written: a take-over follows the
 * rules a new link does. */
static void test_adopt_checks_description(void **state)
{
	assert_int_equal(adopt_patched(0, 0, 0), 0);            /* as it was: fine */
	/* a virtio link of 7 peers: strangers could join and map it */
	assert_int_equal(adopt_patched(16, 7, 4), -EBADMSG);
	/* output sections larger than the memory, or not whole pages */
	assert_int_equal(adopt_patched(8, 1 << 20, 8), -EBADMSG);
	assert_int_equal(adopt_patched(8, 100, 8), -EBADMSG);
	/* a size that is not the shared memory's */
	assert_int_equal(adopt_patched(0, 128 << 10, 8), -EBADMSG);
}

static int adopt_port_patched(size_t off, uint32_t v)
{
	struct handover h = { 0 };
	uint8_t blob[128];
	char err[256];
	struct ivshm_port *p = NULL;
	int len = ivshm_port_export(own, "p", &h, blob, sizeof(blob));
	assert_true(len > 0);
	for (unsigned i = 0; i < h.n; i++)
		h.fds[i].fd = dup(h.fds[i].fd);
	if (off < (size_t)len)
		put_le32(blob, off, v);
	int r = port_sim_adopt(path, blob, (size_t)len, &h, "p", &p, err, sizeof(err));
	ivshm_port_destroy(p);
	handover_close_rest(&h);
	handover_free(&h);
	return r;
}

/* The daemon's port on a link, taken over from its description (the
 * journal's, so possibly a peer's): held to what the handshake requires of
 * a virtio link. */
static void test_port_adopt_checks_description(void **state)
{
	assert_int_equal(adopt_port_patched(1000, 0), 0);       /* as it was: fine */
	assert_int_equal(adopt_port_patched(4, 6), -EBADMSG);  /* 6 peers */
	assert_int_equal(adopt_port_patched(0, 5), -EBADMSG);  /* we are peer 5 of 6 */
}

/* A link host of our own (the test plays it): INIT with the shared
 * memory, the other peer's vector 0 with peer_fd, then ours. */
static struct ivshm_port *join_hostile_host(int peer_fd, int *host)
{
	int sv[2], shm = memfd_create("test", MFD_CLOEXEC), ev = eventfd(0, EFD_CLOEXEC);
	char err[256];
	uint8_t m[SIM_INIT_LEN] = { 0 };
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(ftruncate(shm, 64 << 10), 0);
	put_le32(m, 0, SIM_MSG_INIT);
	put_le32(m, 4, SIM_INIT_LEN);
	put_le32(m, 8, SIM_PROTOCOL_VERSION);
	put_le32(m, 12, SIM_PROTOCOL_VERSION);
	put_le32(m, 20, 2);                             /* peers; we are 0 */
	put_le32(m, 24, 1);                             /* vectors */
	put_le32(m, 28, 0xc002);
	assert_int_equal(sim_send(sv[0], m, SIM_INIT_LEN, shm), 0);
	put_le32(m, 0, SIM_MSG_EVENT_FD);
	put_le32(m, 4, SIM_EVENT_FD_LEN);
	put_le32(m, 8, 1);
	put_le32(m, 12, 0);
	assert_int_equal(sim_send(sv[0], m, SIM_EVENT_FD_LEN, peer_fd), 0);
	put_le32(m, 8, 0);
	assert_int_equal(sim_send(sv[0], m, SIM_EVENT_FD_LEN, ev), 0);
	close(shm);
	close(ev);
	struct ivshm_port *p = NULL;
	assert_int_equal(port_sim_open_fd(sv[1], "hostile", 1000, &p, err, sizeof(err)), 0);
	*host = sv[0];
	return p;
}

/* The host decides what the other peer's "eventfd" is: a pipe nobody
 * reads, say, and blocking.  Ringing it must not block the daemon's loop
 * (every device on it would hang). */
static void test_doorbell_never_blocks(void **state)
{
	int pp[2], host;
	assert_int_equal(pipe2(pp, O_CLOEXEC | O_NONBLOCK), 0);
	while (write(pp[1], "12345678", 8) == 8)
		;
	assert_int_equal(fcntl(pp[1], F_SETFL, 0), 0);          /* full, and blocking */
	struct ivshm_port *p = join_hostile_host(pp[1], &host);
	close(pp[1]);
	alarm(10);              /* a blocked doorbell fails the test instead of hanging it */
	for (int i = 0; i < 3; i++)
		ivshm_port_notify(p, 0);
	alarm(0);
	ivshm_port_destroy(p);
	close(host);
	close(pp[0]);
}

int main(void)
{
	log_set_level(LOG_ERR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_peer_cannot_resize_shared_memory, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_adopt_checks_description, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_adopt_checks_description, setup,
						teardown),
		cmocka_unit_test(test_doorbell_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
