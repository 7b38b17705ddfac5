#include "core/port_sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sim_proto.h"

struct port_sim {
	struct ivshm_port port;
	int sock;
	void *shm;
	size_t shm_size;
	int shm_fd;                 /* kept for a hand-over */
	uint64_t out_size;
	bool int_enabled;
	bool oneshot;
	int own_fd[SIM_MAX_VECTORS];
	int peer_fd[SIM_MAX_PEERS][SIM_MAX_VECTORS];
	unsigned peer_nfd[SIM_MAX_PEERS];
};

/* A peer's vector fd comes from the link host, which picks what it is: a
 * full pipe would block every doorbell, and the loop of every device with
 * it.  Made non-blocking when taken (a full one just drops the doorbell,
 * like a saturated eventfd). */
static int nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return fd;
}

static void ring(int fd)
{
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: counter saturated, an interrupt is pending anyway. */
	}
}

static void sim_set_int_control(struct ivshm_port *p, bool enable)
{
	((struct port_sim *)p)->int_enabled = enable;
}

static void sim_doorbell(struct ivshm_port *p, uint32_t peer, uint32_t vector)
{
	struct port_sim *s = (struct port_sim *)p;
	if (peer >= SIM_MAX_PEERS || vector >= s->peer_nfd[peer])
		return;     /* like the device: out-of-range doorbells are ignored */
	ring(s->peer_fd[peer][vector]);
}

static void sim_bell_ring(const struct ivshm_bell *b)
{
	ring(b->fd);
}

/* A copy of the peer's eventfd: the port may drop its own (the peer left)
 * while the bell is still rung; the copy stays a valid, harmless target. */
static int sim_bell(struct ivshm_port *p, uint32_t vector, struct ivshm_bell *b)
{
	struct port_sim *s = (struct port_sim *)p;
	*b = (struct ivshm_bell){ .ring = sim_bell_ring, .fd = -1 };
	uint32_t peer = p->peer_id;
	if (peer >= SIM_MAX_PEERS || vector >= s->peer_nfd[peer])
		return 0;
	b->fd = fcntl(s->peer_fd[peer][vector], F_DUPFD_CLOEXEC, 0);
	return b->fd < 0 ? -errno : 0;
}

static void sim_set_state(struct ivshm_port *p, uint32_t state)
{
	struct port_sim *s = (struct port_sim *)p;
	uint32_t *entry = (uint32_t *)s->shm + p->id;
	uint32_t old = __atomic_exchange_n(entry, htole32(state), __ATOMIC_SEQ_CST);
	if (le32toh(old) == state)
		return;
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++)
		if (i != p->id && s->peer_nfd[i] > 0)
			ring(s->peer_fd[i][0]);
}

static void drop_peer(struct port_sim *s, uint32_t peer)
{
	for (unsigned v = 0; v < s->peer_nfd[peer]; v++)
		close(s->peer_fd[peer][v]);
	s->peer_nfd[peer] = 0;
	s->port.generation++;
}

/* Gate an event through INT_CONTROL the way the device does. */
static int deliver(struct port_sim *s, int vector, int *out)
{
	if (!s->int_enabled)
		return 0;
	if (s->oneshot)
		s->int_enabled = false;
	*out = vector;
	return 1;
}

/* Handle one message from the link host after the handshake. */
static int handle_msg(struct port_sim *s, const uint8_t *m, int len, int fd, bool *gone)
{
	uint32_t type = le32(m, 0);
	if (type == SIM_MSG_EVENT_FD && len >= SIM_EVENT_FD_LEN && fd >= 0) {
		uint32_t peer = le32(m, 8), vector = le32(m, 12);
		if (peer < SIM_MAX_PEERS && peer != s->port.id && vector == s->peer_nfd[peer] &&
		    vector < s->port.vectors) {
			s->peer_fd[peer][s->peer_nfd[peer]++] = nonblocking(fd);
			s->port.generation++;
			return 0;
		}
		if (peer == s->port.id && vector < s->port.vectors && s->own_fd[vector] < 0) {
			s->own_fd[vector] = fd;
			s->port.generation++;
			return 0;
		}
		close(fd);
		return -EPROTO;
	}
	if (fd >= 0)
		close(fd);
	if (type == SIM_MSG_PEER_GONE && len >= SIM_PEER_GONE_LEN) {
		uint32_t peer = le32(m, 8);
		if (peer < SIM_MAX_PEERS && peer != s->port.id) {
			drop_peer(s, peer);
			*gone = true;
		}
		return 0;
	}
	return -EPROTO;
}

static int sim_handle(struct ivshm_port *p, unsigned idx, int *vector)
{
	struct port_sim *s = (struct port_sim *)p;
	if (idx >= 1 && idx <= p->vectors) {
		uint64_t cnt;
		if (read(p->watch_fd[idx], &cnt, sizeof(cnt)) != sizeof(cnt))
			return 0;
		return deliver(s, (int)idx - 1, vector);
	}
	bool gone = false;
	for (int i = 0; i < 64; i++) {
		uint8_t m[64];
		int fd;
		int len = sim_recv(s->sock, m, sizeof(m), &fd, 1000, 0);
		if (len == -EAGAIN)
			break;
		if (len < 0)
			return len == -ECONNRESET ? -ECONNRESET : len;
		handle_msg(s, m, len, fd, &gone);   /* protocol noise is ignored */
	}
	/* The device raises its own vector 0 when a peer leaves. */
	return gone ? deliver(s, 0, vector) : 0;
}

static void sim_destroy(struct ivshm_port *p)
{
	struct port_sim *s = (struct port_sim *)p;
	for (unsigned v = 0; v < SIM_MAX_VECTORS; v++)
		if (s->own_fd[v] >= 0)
			close(s->own_fd[v]);
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++)
		drop_peer(s, i);
	if (s->shm)
		munmap(s->shm, s->shm_size);
	if (s->shm_fd >= 0)
		close(s->shm_fd);
	if (s->sock >= 0)
		close(s->sock);
	free(s);
}

/* blob: id, max_peers, vectors, protocol, output size, peer_nfd[] */
#define BLOB_LEN (4 * 4 + 8 + SIM_MAX_PEERS)

static int sim_export(struct ivshm_port *p, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap)
{
	struct port_sim *s = (struct port_sim *)p;
	char name[HANDOVER_NAME_MAX + 1];
	int r;
	if (cap < BLOB_LEN)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s/sock", prefix);
	if ((r = handover_add(h, name, s->sock)) < 0)
		return r;
	snprintf(name, sizeof(name), "%s/shm", prefix);
	if ((r = handover_add(h, name, s->shm_fd)) < 0)
		return r;
	for (unsigned v = 0; v < p->vectors; v++) {
		snprintf(name, sizeof(name), "%s/own/%u", prefix, v);
		if ((r = handover_add(h, name, s->own_fd[v])) < 0)
			return r;
	}
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		for (unsigned v = 0; v < s->peer_nfd[i]; v++) {
			snprintf(name, sizeof(name), "%s/peer/%u/%u", prefix, i, v);
			if ((r = handover_add(h, name, s->peer_fd[i][v])) < 0)
				return r;
		}
	}
	put_le32(blob, 0, p->id);
	put_le32(blob, 4, p->max_peers);
	put_le32(blob, 8, p->vectors);
	put_le32(blob, 12, p->protocol);
	put_le64(blob, 16, s->out_size);
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++)
		blob[24 + i] = (uint8_t)s->peer_nfd[i];
	return BLOB_LEN;
}

static const struct ivshm_port_ops sim_ops = {
	.set_int_control = sim_set_int_control,
	.doorbell = sim_doorbell,
	.bell = sim_bell,
	.set_state = sim_set_state,
	.handle = sim_handle,
	.destroy = sim_destroy,
	.export = sim_export,
};

void port_sim_set_oneshot(struct ivshm_port *p, bool oneshot)
{
	((struct port_sim *)p)->oneshot = oneshot;
}

static int map_shm(struct port_sim *s, int shm_fd, uint64_t out_size, char *err, size_t err_len)
{
	struct stat st;
	if (fstat(shm_fd, &st) < 0)
		return -errno;
	uint64_t size = (uint64_t)st.st_size;
	uint64_t outs = out_size * s->port.max_peers;
	if (out_size > size || outs / s->port.max_peers != out_size ||
	    size < SIM_STATE_TABLE_SIZE + outs) {
		snprintf(err, err_len, "shared memory of %llu bytes cannot hold the sections",
			 (unsigned long long)size);
		return -EPROTO;
	}
	s->shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		snprintf(err, err_len, "cannot map shared memory: %s", strerror(errno));
		return -errno;
	}
	s->shm_size = size;
	s->out_size = out_size;
	s->port.state_table = s->shm;
	s->port.state_table_size = SIM_STATE_TABLE_SIZE;
	s->port.rw = (uint8_t *)s->shm + SIM_STATE_TABLE_SIZE;
	s->port.rw_size = size - SIM_STATE_TABLE_SIZE - outs;
	return 0;
}

static int handshake(struct port_sim *s, int timeout_ms, char *err, size_t err_len)
{
	uint8_t m[SIM_INIT_LEN];
	int fd, r;
	int len = sim_recv(s->sock, m, sizeof(m), &fd, timeout_ms, 1);
	if (len < 0) {
		snprintf(err, err_len, "no INIT from the link: %s", strerror(-len));
		return len;
	}
	if (len < SIM_INIT_LEN || le32(m, 0) != SIM_MSG_INIT || fd < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(err, err_len, "link did not start with a valid INIT message");
		return -EPROTO;
	}
	struct ivshm_port *p = &s->port;
	p->id = le32(m, 16);
	p->max_peers = le32(m, 20);
	p->vectors = le32(m, 24);
	p->protocol = (uint16_t)le32(m, 28);
	uint64_t out_size = le32(m, 32) | (uint64_t)le32(m, 36) << 32;
	if (le32(m, 12) != SIM_PROTOCOL_VERSION || p->max_peers < 2 ||
	    p->max_peers > SIM_MAX_PEERS || p->id >= p->max_peers || p->vectors < 1 ||
	    p->vectors > SIM_MAX_VECTORS) {
		close(fd);
		snprintf(err, err_len, "unsupported link (version %u, id %u, peers %u, vectors %u)",
			 le32(m, 12), p->id, p->max_peers, p->vectors);
		return -EPROTO;
	}
	p->peer_id = !p->id;
	r = map_shm(s, fd, out_size, err, err_len);
	if (r < 0) {
		close(fd);
		return r;
	}
	s->shm_fd = fd;
	/* Our own eventfds come last; other peers' may come before. */
	unsigned own = 0;
	while (own < p->vectors) {
		bool gone = false;
		len = sim_recv(s->sock, m, sizeof(m), &fd, timeout_ms, 1);
		if (len < 0) {
			snprintf(err, err_len, "link handshake failed: %s", strerror(-len));
			return len;
		}
		if (handle_msg(s, m, len, fd, &gone) < 0) {
			snprintf(err, err_len, "link sent an invalid message during the handshake");
			return -EPROTO;
		}
		own = 0;
		while (own < p->vectors && s->own_fd[own] >= 0)
			own++;
	}
	return 0;
}

static struct port_sim *port_new(int sock, const char *name)
{
	struct port_sim *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->sock = sock;
	s->shm_fd = -1;
	s->port.ops = &sim_ops;
	snprintf(s->port.name, sizeof(s->port.name), "sim:%s", name);
	for (unsigned v = 0; v < SIM_MAX_VECTORS; v++)
		s->own_fd[v] = -1;
	return s;
}

static void set_watches(struct port_sim *s)
{
	s->port.watch_fd[0] = s->sock;
	for (unsigned v = 0; v < s->port.vectors; v++)
		s->port.watch_fd[1 + v] = s->own_fd[v];
	s->port.n_watch = 1 + s->port.vectors;
}

int port_sim_adopt(const char *name, const uint8_t *blob, size_t len, struct handover *h,
		   const char *prefix, struct ivshm_port **ret, char *err, size_t err_len)
{
	char fdname[HANDOVER_NAME_MAX + 1];
	if (len != BLOB_LEN) {
		snprintf(err, err_len, "the link's description has %zu bytes, not %d", len, BLOB_LEN);
		return -EBADMSG;
	}
	snprintf(fdname, sizeof(fdname), "%s/sock", prefix);
	int sock = handover_take(h, fdname);
	struct port_sim *s = sock >= 0 ? port_new(sock, name) : NULL;
	if (!s) {
		snprintf(err, err_len, "no %s handed over", fdname);
		return -ENOENT;
	}
	struct ivshm_port *p = &s->port;
	p->id = le32(blob, 0);
	p->max_peers = le32(blob, 4);
	p->vectors = le32(blob, 8);
	p->protocol = (uint16_t)le32(blob, 12);
	uint64_t out_size = le64(blob, 16);
	int r = 0;
	if (p->max_peers < 2 || p->max_peers > SIM_MAX_PEERS || p->id >= p->max_peers ||
	    p->vectors < 1 || p->vectors > SIM_MAX_VECTORS) {
		snprintf(err, err_len, "the link's description is out of range");
		r = -EBADMSG;
		goto fail;
	}
	p->peer_id = !p->id;
	snprintf(fdname, sizeof(fdname), "%s/shm", prefix);
	int shm = handover_take(h, fdname);
	if (shm < 0) {
		snprintf(err, err_len, "no %s handed over", fdname);
		r = -ENOENT;
		goto fail;
	}
	if ((r = map_shm(s, shm, out_size, err, err_len)) < 0) {
		close(shm);
		goto fail;
	}
	s->shm_fd = shm;
	/* The description comes from the journal, which a peer may have
	 * written: the link must be one the handshake would have taken. */
	char why[160];
	if (ivshm_port_check_virtio(p, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "the link's description is out of range: %s", why);
		r = -EBADMSG;
		goto fail;
	}
	for (unsigned v = 0; v < p->vectors; v++) {
		snprintf(fdname, sizeof(fdname), "%s/own/%u", prefix, v);
		if ((s->own_fd[v] = handover_take(h, fdname)) < 0) {
			snprintf(err, err_len, "no %s handed over", fdname);
			r = -ENOENT;
			goto fail;
		}
	}
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		unsigned n = blob[24 + i];
		if (n > p->vectors || (n && i == p->id)) {
			snprintf(err, err_len, "the link's description is out of range");
			r = -EBADMSG;
			goto fail;
		}
		for (unsigned v = 0; v < n; v++) {
			snprintf(fdname, sizeof(fdname), "%s/peer/%u/%u", prefix, i, v);
			int fd = handover_take(h, fdname);
			if (fd < 0)
				break;
			s->peer_fd[i][s->peer_nfd[i]++] = nonblocking(fd);
		}
		/* A peer that joined just before the old process died, before the
		 * supervisor got its fds, is gone (the link host drops it too):
		 * none of it, so that it can join again. */
		if (s->peer_nfd[i] != n)
			drop_peer(s, i);
	}
	/* Interrupts stay off until the owner re-arms: like a fresh device. */
	set_watches(s);
	*ret = p;
	return 0;
fail:
	sim_destroy(p);
	return r;
}

int port_sim_open_fd(int sock, const char *name, int timeout_ms, struct ivshm_port **ret,
		     char *err, size_t err_len)
{
	struct port_sim *s = port_new(sock, name);
	if (!s) {
		close(sock);
		return -ENOMEM;
	}
	int r = handshake(s, timeout_ms, err, err_len);
	if (r == 0) {
		char why[160];
		r = ivshm_port_check_virtio(&s->port, why, sizeof(why));
		if (r < 0)
			snprintf(err, err_len, "%s", why);
	}
	if (r < 0) {
		sim_destroy(&s->port);
		return r;
	}
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
	set_watches(s);
	*ret = &s->port;
	return 0;
}

int port_sim_connect(const char *path, int timeout_ms, struct ivshm_port **ret,
		     char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_len, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		snprintf(err, err_len, "cannot connect to %s: %s", path, strerror(errno));
		close(sock);
		return e;
	}
	return port_sim_open_fd(sock, path, timeout_ms, ret, err, err_len);
}
