/* Fuzz target: the software link's wire protocol (core/port_sim.c,
 * core/sim_proto.c, core/sim_link.c), from both ends.
 *
 * The first input byte picks a mode:
 *   host   a hostile link host talks to port_sim over a socketpair: INIT,
 *          EVENT_FD and PEER_GONE messages with any fields, raw messages
 *          with lying lengths, any kind of file attached (shared memory of
 *          any size, eventfds, pipes, /dev/null, sockets, several at once);
 *          the handshake, then more messages, then what the daemon does
 *          with the port (interrupts on every watch, doorbells, state,
 *          loads and stores at both ends of its memory);
 *   peer   hostile peers against a link the daemon hosts (sim_link), with
 *          the daemon's own port on it (fuzz_sim_link.c): they join, read,
 *          send garbage, leave, truncate the shared memory they were given;
 *   adopt  port_sim_adopt() and sim_link_adopt() from a hostile
 *          description (the journal's blob) and the fds a previous process
 *          handed over: for the port, any kind (they came from the link
 *          host), for the link, its own kinds (some may be missing).
 * Oracles: the sanitizers; no signal (a truncated mapping raises SIGBUS);
 * every port that opens passes ivshm_port_check_virtio()'s limits and its
 * memory is fully accessible; no hang (every wait is bounded by a 0 ms
 * timeout, or the peer's end is shut first).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/handover.h"
#include "core/port_sim.h"
#include "core/shm.h"
#include "core/sim_proto.h"
#include "tests/fuzz/fuzz_sim.h"

static uv_loop_t loop;
static char path[108];

int fs_memfd(uint64_t size)
{
	int fd = memfd_create("fuzz-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Ends the harness keeps open until the input is done (so that the other
 * end blocks rather than fails). */
static int kept[64];
static unsigned nkept;

static void keep(int fd)
{
	if (nkept < sizeof(kept) / sizeof(kept[0]))
		kept[nkept++] = fd;
	else
		close(fd);
}

int fs_make_fd(struct fz *f)
{
	int p[2];
	switch (fz_u8(f) % 9) {
	case 0:
		return -1;
	case 1:
	case 2: {
		uint8_t how = fz_u8(f);
		uint64_t size = how < 16 ? fz_u32(f) : 4096ull * (how % 80);
		return fs_memfd(size);
	}
	case 3:
	case 4:
		return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	case 5:         /* a pipe nobody writes to */
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case 6:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case 7:         /* a socket nobody is on */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case 8:         /* a full pipe: a write to it blocks (a blocking fd) */
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		fcntl(p[1], F_SETPIPE_SZ, 4096);
		while (write(p[1], kept, sizeof(kept)) > 0)
			;
		fcntl(p[1], F_SETFL, 0);
		keep(p[0]);
		return p[1];
	}
	return -1;
}

void fs_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union { char b[CMSG_SPACE(4 * sizeof(int))]; struct cmsghdr align; } ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfd) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* a full socket: the message is lost, as a host's could be */
	}
}

void fs_use_port(struct ivshm_port *p, struct fz *f)
{
	char why[160];
	FZ_CHECK(ivshm_port_check_virtio(p, why, sizeof(why)) == 0, "an opened port fails: %s", why);
	/* The daemon watches them with libuv, which makes them non-blocking. */
	for (unsigned i = 0; i < p->n_watch; i++)
		fcntl(p->watch_fd[i], F_SETFL, fcntl(p->watch_fd[i], F_GETFL) | O_NONBLOCK);
	for (unsigned n = fz_u8(f) % 16; n--;) {
		int vector;
		switch (fz_u8(f) % 6) {
		case 0: {
			/* Only when its fd is readable, as the daemon's loop does. */
			unsigned i = fz_u8(f) % (p->n_watch ? p->n_watch : 1);
			struct pollfd pfd = { .fd = p->watch_fd[i], .events = POLLIN };
			if (p->n_watch && poll(&pfd, 1, 0) == 1)
				ivshm_port_handle(p, i, &vector);
			break;
		}
		case 1:
			ivshm_port_rearm(p);
			break;
		case 2:
			ivshm_port_notify(p, fz_u8(f));
			break;
		case 3:
			ivshm_port_set_state(p, fz_u8(f) & 1);
			break;
		case 4:
			port_sim_set_oneshot(p, fz_u8(f) & 1);
			break;
		case 5:
			ivshm_port_peer_state(p);
			break;
		}
	}
	/* The whole of its memory is there: the transport will use all of it. */
	volatile const uint8_t *st = p->state_table;
	(void)st[0];
	(void)st[p->state_table_size - 1];
	shm_st8(p->rw, 0, shm_ld8(p->rw, 0));
	shm_st8(p->rw, p->rw_size - 1, shm_ld8(p->rw, p->rw_size - 1));
}

/* One message of the host's, of a kind the input picks. */
static void host_message(int sock, struct fz *f)
{
	uint8_t m[SIM_MSG_MAX_LEN + 16];
	size_t len;
	int fds[4];
	unsigned nfd = 0;
	switch (fz_u8(f) % 4) {
	case 0:         /* INIT */
		len = SIM_INIT_LEN;
		put_le32(m, 0, SIM_MSG_INIT);
		put_le32(m, 4, SIM_INIT_LEN);
		put_le32(m, 8, SIM_PROTOCOL_VERSION);
		put_le32(m, 12, fz_u8(f) < 240 ? SIM_PROTOCOL_VERSION : fz_u32(f));
		put_le32(m, 16, fz_u8(f) % 4);                          /* id */
		put_le32(m, 20, fz_u8(f) < 240 ? 2 : fz_u32(f));        /* peers */
		put_le32(m, 24, fz_u8(f) % 70);                         /* vectors */
		put_le32(m, 28, 0xc000 | fz_u8(f));
		put_le64(m, 32, fz_u8(f) < 200 ? 4096ull * (fz_u8(f) % 4) : fz_u64(f));
		break;
	case 1:         /* EVENT_FD */
		len = SIM_EVENT_FD_LEN;
		put_le32(m, 0, SIM_MSG_EVENT_FD);
		put_le32(m, 4, SIM_EVENT_FD_LEN);
		put_le32(m, 8, fz_u8(f) < 250 ? fz_u8(f) % 3 : fz_u32(f));
		put_le32(m, 12, fz_u8(f) < 250 ? fz_u8(f) % 70 : fz_u32(f));
		break;
	case 2:         /* PEER_GONE */
		len = SIM_PEER_GONE_LEN;
		put_le32(m, 0, SIM_MSG_PEER_GONE);
		put_le32(m, 4, SIM_PEER_GONE_LEN);
		put_le32(m, 8, fz_u8(f) < 250 ? fz_u8(f) % 3 : fz_u32(f));
		break;
	default:        /* anything: any type, a length field that may lie */
		len = fz_u8(f) < 16 ? fz_u16(f) % sizeof(m) : fz_u8(f) % 64;
		fz_bytes(f, m, len);
		break;
	}
	for (unsigned n = fz_u8(f) % 3 == 2 ? 2 + fz_u8(f) % 3 : 1; nfd < n;)
		fds[nfd++] = fs_make_fd(f);
	unsigned k = 0;
	for (unsigned i = 0; i < nfd; i++)
		if (fds[i] >= 0)
			fds[k++] = fds[i];
	fs_send(sock, m, len, fds, k);
	for (unsigned i = 0; i < k; i++)
		close(fds[i]);
}

static void mode_host(struct fz *f)
{
	int sv[2];
	char err[256];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	for (unsigned n = 1 + fz_u8(f) % 8; n--;)
		host_message(sv[0], f);
	bool shut = fz_u8(f) & 1;
	if (shut)
		shutdown(sv[0], SHUT_WR);
	struct ivshm_port *p = NULL;
	/* 0 ms: a host that stops half-way is not waited for here. */
	int r = port_sim_open_fd(sv[1], "fuzz", 0, &p, err, sizeof(err));
	if (r == 0) {
		for (unsigned n = fz_u8(f) % 8; n--;)
			host_message(sv[0], f);
		/* Shut first: port_sim gives a message that stops half-way a
		 * second to complete. */
		shutdown(sv[0], SHUT_WR);
		fs_use_port(p, f);
		ivshm_port_destroy(p);
	}
	close(sv[0]);
}

/* ---- take-over from a description ---------------------------------------- */

static void add(struct handover *h, const char *name, int fd)
{
	if (fd >= 0 && handover_add(h, name, fd) < 0)
		close(fd);
}

static void mode_adopt_port(struct fz *f)
{
	struct handover h = { 0 };
	uint8_t blob[64];
	char err[256], name[64];
	int sv[2] = { -1, -1 };
	size_t len = fz_u8(f) < 8 ? fz_u8(f) % sizeof(blob) : 40;
	fz_bytes(f, blob, sizeof(blob));
	if (fz_u8(f) & 1 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0)
		add(&h, "p/sock", sv[1]);
	add(&h, "p/shm", fs_make_fd(f));
	for (unsigned v = 0, n = fz_u8(f) % 6; v < n; v++) {
		snprintf(name, sizeof(name), "p/own/%u", v);
		add(&h, name, fs_make_fd(f));
	}
	for (unsigned n = fz_u8(f) % 6; n--;) {
		/* One statement each: argument order is unspecified. */
		unsigned i = fz_u8(f) % 3;
		unsigned v = fz_u8(f) % 6;
		snprintf(name, sizeof(name), "p/peer/%u/%u", i, v);
		add(&h, name, fs_make_fd(f));
	}
	struct ivshm_port *p = NULL;
	if (port_sim_adopt("fuzz", blob, len, &h, "p", &p, err, sizeof(err)) == 0) {
		if (sv[0] >= 0)
			shutdown(sv[0], SHUT_WR);
		fs_use_port(p, f);
		ivshm_port_destroy(p);
	}
	handover_close_rest(&h);
	handover_free(&h);
	if (sv[0] >= 0)
		close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		fz_quiet();
		/* As the daemon does: a peer that closed its end of a pipe or
		 * socket is an error to handle, not a reason to die. */
		signal(SIGPIPE, SIG_IGN);
		uv_loop_init(&loop);
		snprintf(path, sizeof(path), "/tmp/fuzz-sim.%d.sock", (int)getpid());
	}
	struct fz f = { data, size };
	switch (fz_u8(&f) % 4) {
	case 0:
		mode_host(&f);
		break;
	case 1:
		fs_link_run(&f, &loop, path);
		break;
	case 2:
		mode_adopt_port(&f);
		break;
	case 3:
		fs_link_adopt(&f, &loop, path);
		break;
	}
	/* Whatever a link left closing. */
	uv_run(&loop, UV_RUN_NOWAIT);
	while (nkept)
		close(kept[--nkept]);
	return 0;
}
