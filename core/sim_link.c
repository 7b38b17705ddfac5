#include "core/sim_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/ivshmem.h"
#include "core/log.h"
#include "core/sim_proto.h"

struct sim_peer {
	struct sim_link *link;
	uint32_t id;
	int sock;                       /* -1: slot free */
	uv_poll_t *poll;                /* own allocation: it outlives a reused slot while closing */
	int efd[SIM_MAX_VECTORS];
};

struct sim_link {
	uv_loop_t *loop;
	struct sim_link_params params;
	char path[108];
	int listen_fd;
	uv_poll_t listen_poll;
	int shm_fd;
	uint32_t *state_table;          /* the host maps the state table only */
	struct sim_peer peers[SIM_MAX_PEERS];
	unsigned open_handles;          /* uv handles still to be closed */
	int destroying;
	unsigned generation;            /* bumped when a peer joins or leaves */
};

static void link_maybe_free(struct sim_link *l)
{
	if (!l->destroying || l->open_handles)
		return;
	if (l->state_table)
		munmap(l->state_table, SIM_STATE_TABLE_SIZE);
	if (l->shm_fd >= 0)
		close(l->shm_fd);
	free(l);
}

static void handle_closed(uv_handle_t *h)
{
	struct sim_link *l = h->data;
	l->open_handles--;
	link_maybe_free(l);
}

static void peer_poll_closed(uv_handle_t *h)
{
	struct sim_link *l = h->data;
	free(h);
	l->open_handles--;
	link_maybe_free(l);
}

static uint16_t role_protocol(uint16_t proto, uint32_t id)
{
	if (proto < IVSHM_PROTO_VIRTIO_FRONT)
		return proto;
	proto &= ~0x4000;
	return id == 0 ? proto | 0x4000 : proto;
}

static int send_event_fd(int sock, uint32_t peer, uint32_t vector, int fd)
{
	uint8_t m[SIM_EVENT_FD_LEN];
	put_le32(m, 0, SIM_MSG_EVENT_FD);
	put_le32(m, 4, SIM_EVENT_FD_LEN);
	put_le32(m, 8, peer);
	put_le32(m, 12, vector);
	return sim_send(sock, m, sizeof(m), fd);
}

static void peer_release(struct sim_peer *p)
{
	struct sim_link *l = p->link;
	uint32_t id = p->id;
	if (p->sock < 0)
		return;
	l->generation++;
	/* The device zeroes the state of a peer that leaves, then tells the rest. */
	__atomic_store_n(&l->state_table[id], 0, __ATOMIC_SEQ_CST);
	if (p->poll) {
		p->poll->data = l;
		uv_close((uv_handle_t *)p->poll, peer_poll_closed);
		p->poll = NULL;
	}
	close(p->sock);
	p->sock = -1;
	for (unsigned v = 0; v < l->params.vectors; v++) {
		if (p->efd[v] >= 0)
			close(p->efd[v]);
		p->efd[v] = -1;
	}
	uint8_t m[SIM_PEER_GONE_LEN];
	put_le32(m, 0, SIM_MSG_PEER_GONE);
	put_le32(m, 4, SIM_PEER_GONE_LEN);
	put_le32(m, 8, id);
	for (unsigned i = 0; i < l->params.max_peers; i++)
		if (l->peers[i].sock >= 0)
			sim_send(l->peers[i].sock, m, sizeof(m), -1);
	log_debug("sim link %s: peer %u left", l->path, id);
}

static void peer_readable(uv_poll_t *h, int status, int events)
{
	/* Peers never send anything: data, EOF or an error all mean "gone". */
	peer_release(h->data);
}

static void watch_peer(struct sim_link *l, struct sim_peer *p);

static int peer_add(struct sim_link *l, int sock)
{
	struct sim_peer *p = NULL;
	for (unsigned i = 0; i < l->params.max_peers; i++) {
		if (l->peers[i].sock < 0) {
			p = &l->peers[i];
			break;
		}
	}
	if (!p)
		return -EUSERS;
	for (unsigned v = 0; v < l->params.vectors; v++) {
		p->efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[v] < 0) {
			int e = -errno;
			while (v--) {
				close(p->efd[v]);
				p->efd[v] = -1;
			}
			return e;
		}
	}
	p->sock = sock;
	uint8_t m[SIM_INIT_LEN] = { 0 };
	put_le32(m, 0, SIM_MSG_INIT);
	put_le32(m, 4, SIM_INIT_LEN);
	put_le32(m, 8, SIM_PROTOCOL_VERSION);
	put_le32(m, 12, SIM_PROTOCOL_VERSION);
	put_le32(m, 16, p->id);
	put_le32(m, 20, l->params.max_peers);
	put_le32(m, 24, l->params.vectors);
	put_le32(m, 28, role_protocol(l->params.protocol, p->id));
	put_le32(m, 32, (uint32_t)l->params.output_size);
	put_le32(m, 36, (uint32_t)(l->params.output_size >> 32));
	int r = sim_send(sock, m, sizeof(m), l->shm_fd);
	/* Existing peers learn the newcomer's vectors; the newcomer learns
	 * theirs, then its own (which it listens on). */
	for (unsigned i = 0; r == 0 && i < l->params.max_peers; i++) {
		struct sim_peer *o = &l->peers[i];
		if (o == p || o->sock < 0)
			continue;
		for (unsigned v = 0; r == 0 && v < l->params.vectors; v++) {
			send_event_fd(o->sock, p->id, v, p->efd[v]);
			r = send_event_fd(sock, o->id, v, o->efd[v]);
		}
	}
	for (unsigned v = 0; r == 0 && v < l->params.vectors; v++)
		r = send_event_fd(sock, p->id, v, p->efd[v]);
	if (r < 0) {
		peer_release(p);
		return 0;   /* the socket is consumed either way */
	}
	watch_peer(l, p);
	if (p->sock < 0)
		return 0;
	l->generation++;
	log_debug("sim link %s: peer %u joined", l->path, p->id);
	return 0;
}

static void listen_readable(uv_poll_t *h, int status, int events)
{
	struct sim_link *l = h->data;
	int s = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return;
	int r = peer_add(l, s);
	if (r < 0) {
		log_warn("sim link %s: refusing a peer: %s", l->path,
			 r == -EUSERS ? "link is full" : strerror(-r));
		close(s);
	}
}

int sim_link_connect_local(struct sim_link *l, int *client_fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int r = peer_add(l, sv[0]);
	if (r < 0) {
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	*client_fd = sv[1];
	return 0;
}

uint64_t sim_link_rw_size(const struct sim_link *l)
{
	return l->params.shm_size - SIM_STATE_TABLE_SIZE - l->params.output_size * l->params.max_peers;
}

unsigned sim_link_peers(const struct sim_link *l)
{
	unsigned n = 0;
	for (unsigned i = 0; i < l->params.max_peers; i++)
		n += l->peers[i].sock >= 0;
	return n;
}

static int create_shm(struct sim_link *l, char *err, size_t err_len)
{
	uint64_t total = l->params.shm_size;
	/* Every peer gets this file.  Sealed at its size: a peer that shrinks
	 * it turns every access of everyone who maps it (our state table, the
	 * daemon's own port) into a SIGBUS; one that adds seals (a future-write
	 * seal) keeps the next peer or process from mapping it writable. */
	l->shm_fd = memfd_create("ivshmem-sim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (l->shm_fd < 0 || ftruncate(l->shm_fd, (off_t)total) < 0 ||
	    fcntl(l->shm_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		snprintf(err, err_len, "cannot create %llu bytes of shared memory: %s",
			 (unsigned long long)total, strerror(errno));
		return -errno;
	}
	l->state_table = mmap(NULL, SIM_STATE_TABLE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			      l->shm_fd, 0);
	if (l->state_table == MAP_FAILED) {
		l->state_table = NULL;
		snprintf(err, err_len, "cannot map the state table: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int listen_on(struct sim_link *l, const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_len, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	l->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->listen_fd < 0)
		return -errno;
	unlink(path);
	if (bind(l->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l->listen_fd, 4) < 0) {
		int e = -errno;
		snprintf(err, err_len, "cannot listen on %s: %s", path, strerror(errno));
		return e;
	}
	return 0;
}

int sim_link_create(uv_loop_t *loop, const char *path, const struct sim_link_params *params,
		    struct sim_link **ret, char *err, size_t err_len)
{
	const long page = sysconf(_SC_PAGESIZE);
	if (params->max_peers < 2 || params->max_peers > SIM_MAX_PEERS ||
	    params->vectors < 1 || params->vectors > SIM_MAX_VECTORS ||
	    (params->protocol >= IVSHM_PROTO_VIRTIO_FRONT && params->max_peers != 2)) {
		snprintf(err, err_len, "bad link parameters (peers %u, vectors %u)",
			 params->max_peers, params->vectors);
		return -EINVAL;
	}
	struct sim_link *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->params = *params;
	l->params.output_size = (params->output_size + page - 1) / page * page;
	uint64_t fixed = SIM_STATE_TABLE_SIZE + l->params.output_size * params->max_peers;
	if (params->shm_size <= fixed || params->shm_size > SIM_MAX_SHM_SIZE) {
		snprintf(err, err_len, "bad link size %llu (the state table and the output sections "
			 "take %llu, at most %llu)", (unsigned long long)params->shm_size,
			 (unsigned long long)fixed, (unsigned long long)SIM_MAX_SHM_SIZE);
		free(l);
		return -EINVAL;
	}
	/* Next power of two at or above the request (size > 4096 here). */
	l->params.shm_size = 1ull << (64 - __builtin_clzll(params->shm_size - 1));
	l->listen_fd = l->shm_fd = -1;
	snprintf(l->path, sizeof(l->path), "%s", path);
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		l->peers[i].link = l;
		l->peers[i].id = i;
		l->peers[i].sock = -1;
		for (unsigned v = 0; v < SIM_MAX_VECTORS; v++)
			l->peers[i].efd[v] = -1;
	}
	int r = create_shm(l, err, err_len);
	if (r == 0)
		r = listen_on(l, path, err, err_len);
	if (r < 0) {
		if (l->listen_fd >= 0)
			close(l->listen_fd);
		l->destroying = 1;
		link_maybe_free(l);
		return r;
	}
	uv_poll_init(loop, &l->listen_poll, l->listen_fd);
	l->listen_poll.data = l;
	l->open_handles++;
	uv_poll_start(&l->listen_poll, UV_READABLE, listen_readable);
	*ret = l;
	return 0;
}

/* blob: shm_size, output_size (u64), max_peers, vectors, protocol (u32),
 * then one byte per peer slot: 1 occupied */
#define BLOB_LEN (8 + 8 + 4 + 4 + 4 + SIM_MAX_PEERS)

int sim_link_export(struct sim_link *l, const char *prefix, struct handover *h, uint8_t *blob,
		    size_t cap)
{
	char name[HANDOVER_NAME_MAX + 1];
	int r;
	if (cap < BLOB_LEN)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s/listen", prefix);
	if ((r = handover_add(h, name, l->listen_fd)) < 0)
		return r;
	snprintf(name, sizeof(name), "%s/shm", prefix);
	if ((r = handover_add(h, name, l->shm_fd)) < 0)
		return r;
	put_le64(blob, 0, l->params.shm_size);
	put_le64(blob, 8, l->params.output_size);
	put_le32(blob, 16, l->params.max_peers);
	put_le32(blob, 20, l->params.vectors);
	put_le32(blob, 24, l->params.protocol);
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		struct sim_peer *p = &l->peers[i];
		blob[28 + i] = p->sock >= 0;
		if (p->sock < 0)
			continue;
		snprintf(name, sizeof(name), "%s/peer/%u/sock", prefix, i);
		if ((r = handover_add(h, name, p->sock)) < 0)
			return r;
		for (unsigned v = 0; v < l->params.vectors; v++) {
			snprintf(name, sizeof(name), "%s/peer/%u/efd/%u", prefix, i, v);
			if ((r = handover_add(h, name, p->efd[v])) < 0)
				return r;
		}
	}
	return BLOB_LEN;
}

static void watch_peer(struct sim_link *l, struct sim_peer *p)
{
	p->poll = malloc(sizeof(*p->poll));
	if (!p->poll) {
		peer_release(p);
		return;
	}
	uv_poll_init(l->loop, p->poll, p->sock);
	p->poll->data = p;
	l->open_handles++;
	uv_poll_start(p->poll, UV_READABLE | UV_DISCONNECT, peer_readable);
}

int sim_link_adopt(uv_loop_t *loop, const char *path, const uint8_t *blob, size_t len,
		   struct handover *h, const char *prefix, struct sim_link **ret, char *err,
		   size_t err_len)
{
	char name[HANDOVER_NAME_MAX + 1];
	if (len != BLOB_LEN) {
		snprintf(err, err_len, "the link's description has %zu bytes, not %d", len, BLOB_LEN);
		return -EBADMSG;
	}
	struct sim_link_params pp = {
		.shm_size = le64(blob, 0), .output_size = le64(blob, 8),
		.max_peers = le32(blob, 16), .vectors = le32(blob, 20),
		.protocol = (uint16_t)le32(blob, 24),
	};
	/* The description comes from the journal, which is checked like
	 * anything a peer could have written: the link it describes follows
	 * the rules sim_link_create() enforces (a virtio link taken over as
	 * one of 7 peers would let strangers join and map the cell's memory). */
	const long page = sysconf(_SC_PAGESIZE);
	if (pp.max_peers < 2 || pp.max_peers > SIM_MAX_PEERS || pp.vectors < 1 ||
	    pp.vectors > SIM_MAX_VECTORS || pp.shm_size > SIM_MAX_SHM_SIZE ||
	    (pp.shm_size & (pp.shm_size - 1)) ||
	    (pp.protocol >= IVSHM_PROTO_VIRTIO_FRONT && pp.max_peers != 2) ||
	    pp.output_size % (uint64_t)page || pp.output_size > SIM_MAX_SHM_SIZE ||
	    pp.shm_size <= SIM_STATE_TABLE_SIZE + pp.output_size * pp.max_peers) {
		snprintf(err, err_len, "the link's description is out of range");
		return -EBADMSG;
	}
	struct sim_link *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->params = pp;
	snprintf(l->path, sizeof(l->path), "%s", path);
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		l->peers[i].link = l;
		l->peers[i].id = i;
		l->peers[i].sock = -1;
		for (unsigned v = 0; v < SIM_MAX_VECTORS; v++)
			l->peers[i].efd[v] = -1;
	}
	int r = 0;
	snprintf(name, sizeof(name), "%s/listen", prefix);
	l->listen_fd = handover_take(h, name);
	snprintf(name, sizeof(name), "%s/shm", prefix);
	l->shm_fd = handover_take(h, name);
	if (l->listen_fd < 0 || l->shm_fd < 0) {
		snprintf(err, err_len, "no %s/listen or %s/shm handed over", prefix, prefix);
		r = -ENOENT;
		goto fail;
	}
	struct stat st;
	if (fstat(l->shm_fd, &st) < 0 || (uint64_t)st.st_size != pp.shm_size ||
	    pp.shm_size <= SIM_STATE_TABLE_SIZE || pp.output_size >= pp.shm_size) {
		snprintf(err, err_len, "the link's memory is not what its description says");
		r = -EBADMSG;
		goto fail;
	}
	l->state_table = mmap(NULL, SIM_STATE_TABLE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			      l->shm_fd, 0);
	if (l->state_table == MAP_FAILED) {
		l->state_table = NULL;
		r = -errno;
		snprintf(err, err_len, "cannot map the state table: %s", strerror(-r));
		goto fail;
	}
	/* A peer listed but not handed over whole joined just before the old
	 * process died, before the supervisor got its fds: it went with that
	 * process.  It is dropped as a peer that leaves (state zeroed, the
	 * others told), not held against the rest of the link. */
	uint64_t dropped = 0;
	for (unsigned i = 0; i < pp.max_peers; i++) {
		if (!blob[28 + i])
			continue;
		struct sim_peer *p = &l->peers[i];
		snprintf(name, sizeof(name), "%s/peer/%u/sock", prefix, i);
		p->sock = handover_take(h, name);
		bool whole = p->sock >= 0;
		if (p->sock < 0)
			log_debug("sim link %s: no %s", path, name);
		for (unsigned v = 0; v < pp.vectors; v++) {
			snprintf(name, sizeof(name), "%s/peer/%u/efd/%u", prefix, i, v);
			p->efd[v] = handover_take(h, name);
			whole &= p->efd[v] >= 0;
			if (p->efd[v] < 0)
				log_debug("sim link %s: no %s", path, name);
		}
		if (whole)
			continue;
		if (p->sock >= 0)
			close(p->sock);
		p->sock = -1;
		for (unsigned v = 0; v < SIM_MAX_VECTORS; v++) {
			if (p->efd[v] >= 0)
				close(p->efd[v]);
			p->efd[v] = -1;
		}
		dropped |= 1ull << i;
	}
	uv_poll_init(loop, &l->listen_poll, l->listen_fd);
	l->listen_poll.data = l;
	l->open_handles++;
	uv_poll_start(&l->listen_poll, UV_READABLE, listen_readable);
	for (unsigned i = 0; i < pp.max_peers; i++)
		if (l->peers[i].sock >= 0)
			watch_peer(l, &l->peers[i]);
	/* A slot nobody holds shows no state: a peer that wrote one and went
	 * with the old process (not in its description) is gone. */
	for (unsigned i = 0; i < pp.max_peers; i++)
		if (l->peers[i].sock < 0 && !(dropped & (1ull << i)))
			__atomic_store_n(&l->state_table[i], 0, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < pp.max_peers; i++) {
		if (!(dropped & (1ull << i)))
			continue;
		__atomic_store_n(&l->state_table[i], 0, __ATOMIC_SEQ_CST);
		uint8_t m[SIM_PEER_GONE_LEN];
		put_le32(m, 0, SIM_MSG_PEER_GONE);
		put_le32(m, 4, SIM_PEER_GONE_LEN);
		put_le32(m, 8, i);
		for (unsigned k = 0; k < pp.max_peers; k++)
			if (l->peers[k].sock >= 0)
				sim_send(l->peers[k].sock, m, sizeof(m), -1);
		l->generation++;
		log_warn("sim link %s: peer %u joined just before the restart and was not kept; "
			 "dropped", path, i);
	}
	*ret = l;
	return 0;
fail:
	for (unsigned i = 0; i < SIM_MAX_PEERS; i++) {
		if (l->peers[i].sock >= 0)
			close(l->peers[i].sock);
		for (unsigned v = 0; v < SIM_MAX_VECTORS; v++)
			if (l->peers[i].efd[v] >= 0)
				close(l->peers[i].efd[v]);
	}
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	l->destroying = 1;
	link_maybe_free(l);
	return r;
}

void sim_link_reannounce(struct sim_link *l, uint32_t to)
{
	if (!l || to >= l->params.max_peers || l->peers[to].sock < 0)
		return;
	int sock = l->peers[to].sock;
	for (unsigned i = 0; i < l->params.max_peers; i++) {
		if (i == to)
			continue;
		uint8_t m[SIM_PEER_GONE_LEN];
		put_le32(m, 0, SIM_MSG_PEER_GONE);
		put_le32(m, 4, SIM_PEER_GONE_LEN);
		put_le32(m, 8, i);
		sim_send(sock, m, sizeof(m), -1);
		const struct sim_peer *p = &l->peers[i];
		for (unsigned v = 0; p->sock >= 0 && v < l->params.vectors; v++)
			send_event_fd(sock, p->id, v, p->efd[v]);
	}
}

unsigned sim_link_generation(const struct sim_link *l)
{
	return l ? l->generation : 0;
}

void sim_link_destroy(struct sim_link *l)
{
	if (!l)
		return;
	l->destroying = 1;
	for (unsigned i = 0; i < l->params.max_peers; i++)
		peer_release(&l->peers[i]);
	uv_close((uv_handle_t *)&l->listen_poll, handle_closed);
	close(l->listen_fd);
	unlink(l->path);
}
