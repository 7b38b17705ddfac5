/* The software-link fuzz target's "peer" and "link adopt" modes (see
 * fuzz_sim.c): a link the daemon hosts (sim_link) against hostile peers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/handover.h"
#include "core/port_sim.h"
#include "core/sim_link.h"
#include "core/sim_proto.h"
#include "tests/fuzz/fuzz_sim.h"

#define MAX_PEERS 4

struct peer {
	int sock;
	int shm;                    /* the shared memory it was given, or -1 */
};

static struct peer peers[MAX_PEERS];

static void join(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (unsigned i = 0; i < MAX_PEERS; i++) {
		if (peers[i].sock >= 0)
			continue;
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(s);
			s = -1;
		}
		peers[i] = (struct peer){ s, -1 };
		return;
	}
}

/* Take what the link sent: the first fd is the shared memory (INIT). */
static void peer_read(struct peer *p)
{
	for (int n = 0; p->sock >= 0 && n < 256; n++) {
		uint8_t buf[SIM_MSG_MAX_LEN];
		union { char b[CMSG_SPACE(4 * sizeof(int))]; struct cmsghdr align; } ctl;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		if (recvmsg(p->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (p->shm < 0)
					p->shm = fd;
				else
					close(fd);
			}
		}
	}
}

static void peer_close(struct peer *p)
{
	if (p->sock >= 0)
		close(p->sock);
	if (p->shm >= 0)
		close(p->shm);
	*p = (struct peer){ -1, -1 };
}

/* Hostile peers on link l of at most max peers; own is the daemon's port
 * on it, if any. */
static void peers_run(struct fz *f, uv_loop_t *loop, const char *path, struct sim_link *l,
		      unsigned max, struct ivshm_port *own)
{
	for (unsigned i = 0; i < MAX_PEERS; i++)
		peers[i] = (struct peer){ -1, -1 };
	for (unsigned n = 0; fz_more(f) && n < 64; n++) {
		struct peer *p = &peers[fz_u8(f) % MAX_PEERS];
		switch (fz_u8(f) % 8) {
		case 0:
			join(path);
			break;
		case 1:
			peer_read(p);
			break;
		case 2: {       /* a peer never sends anything: this is garbage */
			uint8_t b[16];
			size_t len = 1 + fz_u8(f) % sizeof(b);
			fz_bytes(f, b, len);
			if (p->sock >= 0 && send(p->sock, b, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				/* full or gone: as a peer's could be */
			}
			break;
		}
		case 3:
			peer_close(p);
			break;
		case 4: {       /* shrink (or grow) the memory it was given */
			uint32_t size = fz_u8(f) < 128 ? 0 : fz_u32(f) % (1u << 20);
			if (p->shm >= 0 && ftruncate(p->shm, size) < 0) {
				/* a sealed link refuses: what it should do */
			}
			break;
		}
		case 5:
			break;
		case 6:
			if (own)
				fs_use_port(own, f);
			break;
		case 7:
			sim_link_reannounce(l, fz_u8(f) % 3);
			break;
		}
		uv_run(loop, UV_RUN_NOWAIT);
		FZ_CHECK(sim_link_peers(l) <= max, "%u peers on a link of %u", sim_link_peers(l),
			 max);
	}
	if (own)
		fs_use_port(own, f);
	for (unsigned i = 0; i < MAX_PEERS; i++)
		peer_close(&peers[i]);
}

void fs_link_run(struct fz *f, uv_loop_t *loop, const char *path)
{
	/* One statement per input byte: the order in which an initializer
	 * list is evaluated is unspecified. */
	uint8_t size = fz_u8(f);
	uint8_t out = fz_u8(f);
	uint8_t vectors = fz_u8(f);
	struct sim_link_params lp = {
		.shm_size = 65536ull << size % 3,
		.output_size = 4096ull * (out % 3),
		.max_peers = 2,
		.vectors = 1u + vectors % 4,
		.protocol = 0x8002,
	};
	struct sim_link *l;
	struct ivshm_port *own = NULL;
	char err[256];
	int fd;
	if (sim_link_create(loop, path, &lp, &l, err, sizeof(err)) < 0)
		return;
	/* The daemon's own peer: everything it needs is queued already. */
	if (sim_link_connect_local(l, &fd) == 0)
		FZ_CHECK(port_sim_open_fd(fd, path, 0, &own, err, sizeof(err)) == 0,
			 "the daemon's own peer cannot join: %s", err);
	peers_run(f, loop, path, l, 2, own);
	ivshm_port_destroy(own);
	sim_link_destroy(l);
}

static void add(struct handover *h, const char *name, int fd)
{
	if (fd >= 0 && handover_add(h, name, fd) < 0)
		close(fd);
}

/* A listening socket on path, as the old process left it. */
static int listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s >= 0 && (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0)) {
		close(s);
		s = -1;
	}
	return s;
}

/* Taken over from a description (the journal's blob, hostile) and the fds
 * the old process handed over: its own, of the kinds it had, some of them
 * missing. */
void fs_link_adopt(struct fz *f, uv_loop_t *loop, const char *path)
{
	struct handover h = { 0 };
	uint8_t blob[64];
	char err[256], name[64];
	size_t len = fz_u8(f) < 8 ? fz_u8(f) % sizeof(blob) : 8 + 8 + 4 + 4 + 4 + SIM_MAX_PEERS;
	fz_bytes(f, blob, sizeof(blob));
	uint8_t have = fz_u8(f);
	if (have & 1)
		add(&h, "l/listen", listener(path));
	if (have & 2) {
		/* The link's own memory, sealed as sim_link_create() seals it. */
		int shm = fs_memfd(4096ull << fz_u8(f) % 8);
		if (shm >= 0)
			fcntl(shm, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		add(&h, "l/shm", shm);
	}
	for (unsigned n = fz_u8(f) % 8; n--;) {
		unsigned i = fz_u8(f) % 3;
		int sv[2];
		if (fz_u8(f) & 1) {
			snprintf(name, sizeof(name), "l/peer/%u/efd/%u", i, fz_u8(f) % 4);
			add(&h, name, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
		} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
			snprintf(name, sizeof(name), "l/peer/%u/sock", i);
			add(&h, name, sv[0]);
			close(sv[1]);   /* that peer has gone meanwhile */
		}
	}
	struct sim_link *l;
	if (sim_link_adopt(loop, path, blob, len, &h, "l", &l, err, sizeof(err)) == 0) {
		/* A virtio link has two peers whatever the description says. */
		unsigned max = (uint16_t)le32(blob, 24) >= 0x8000 ? 2 : le32(blob, 16);
		peers_run(f, loop, path, l, max, NULL);
		sim_link_destroy(l);
	}
	handover_close_rest(&h);
	handover_free(&h);
}
