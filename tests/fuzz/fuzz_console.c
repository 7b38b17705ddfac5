/* Fuzz target: the console's queue handling (backends/console.c with its
 * socket endpoint) behind the transport, on the fake port.
 *
 * A console on a socket endpoint (backlog size, queue size from the
 * input), a client on that socket, a driver (fuzz_console_drv.c); then a
 * program: receive and transmit chains of any shape (readable and writable
 * buffers mixed, in either order, empty ones), kicks on any vector, the
 * client sending, reading (or not: the device's socket buffer is small, so
 * output backs up; it may read only part of what is there), connecting,
 * hanging up, shutting down its sending
 * side; a reset, a queue disable, the peer leaving, a new bring-up, and
 * console_settle() (what a hand-over does first).  At the end the client
 * reads everything and the driver kicks until nothing moves.
 *
 * Oracles besides the sanitizers: guard pages around the section, and the
 * part of it the driver never uses is PROT_NONE as well; the
 * device writes only its header, the used rings and receive buffers (never
 * a transmit buffer, nor a readable buffer of a receive chain); every used
 * entry answers a chain in flight, once; a transmit chain is answered with
 * 0 bytes; the bytes a receive chain returns are bytes the client sent, in
 * order, none made up; what the client reads is the transmitted bytes in
 * order (a subsequence of them); and when nothing could have been lost
 * (see fuzz_console.h) both streams match exactly and, with the device up
 * and the client there, every transmit chain is answered (no hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/console_int.h"
#include "core/tick.h"
#include "tests/fuzz/fuzz_console.h"

struct fc fc;
static uv_loop_t loop;
static struct tick tk;
static char path[108];
static int tuned_fd = -1;

enum { OP_RX, OP_TX, OP_KICK, OP_SEND, OP_READ, OP_CONNECT, OP_CLOSE, OP_SHUT_WR, OP_RUN,
       OP_RESET, OP_DISABLE, OP_PEER_LEAVE, OP_BRINGUP, OP_SETTLE, OP_COUNT };

/* The end of every step: a loop iteration, then the oracles. */
static void step_end(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
	fake_port_clear_log(fc.fp);
	/* The smallest send buffer on the device's side of the client
	 * socket (the kernel's minimum, about 4.5 KiB with overheads), so
	 * that output backs up after two or three chains. */
	if (fc.dev->out_fd >= 0 && fc.dev->out_fd != tuned_fd) {
		int sz = 1;
		setsockopt(fc.dev->out_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		tuned_fd = fc.dev->out_fd;
	}
	const struct console_stats *st = console_stats(fc.dev);
	if (console_vdev(fc.dev)->broken || st->dropped_backlog || st->dropped_error)
		fc.pristine = false;
	fc_check_used();
}

/* The client reads up to max bytes (0: all there is): a partial read keeps
 * the device's side of the socket nearly full. */
static void client_read(size_t max)
{
	size_t want = max ? max : FC_STREAM;
	while (fc.client >= 0 && fc.nrecv < FC_STREAM && want) {
		size_t room = FC_STREAM - fc.nrecv < want ? FC_STREAM - fc.nrecv : want;
		ssize_t n = recv(fc.client, fc.recv + fc.nrecv, room, MSG_DONTWAIT);
		if (n <= 0)
			break;
		fc.nrecv += (size_t)n;
		want -= (size_t)n;
	}
}

static void client_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		s = -1;
	}
	fc.client = s;
}

static void client_close(void)
{
	if (fc.client >= 0)
		close(fc.client);
	fc.client = -1;
	fc.pristine = false;
}

/* A reset, a disable or the peer leaving: the driver's chains are void. */
static void lose(unsigned q)
{
	fc_forget_queue(q);
	fc.up = false;
}

static void step(struct fz *f)
{
	struct vdev *vd = console_vdev(fc.dev);
	switch (fz_u8(f) % OP_COUNT) {
	case OP_RX:
		fc_post(VCON_RX_QUEUE, f);
		break;
	case OP_TX:
		fc_post(VCON_TX_QUEUE, f);
		break;
	case OP_KICK:
		vdev_process(vd, (int)(fz_u8(f) % 4) - 1);
		break;
	case OP_SEND: {
		uint8_t buf[512];
		size_t n = fz_u8(f) < 8 ? sizeof(buf) : 1u + fz_u8(f) % 64;
		fz_bytes(f, buf, n);
		if (fc.client < 0 || fc.nsent + n > FC_STREAM)
			break;
		ssize_t w = send(fc.client, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			memcpy(fc.sent + fc.nsent, buf, (size_t)w);
			fc.nsent += (size_t)w;
		}
		break;
	}
	case OP_READ:
		client_read(fz_u16(f) % 4096);
		break;
	case OP_CONNECT:
		if (fc.client < 0)
			client_connect();
		break;
	case OP_CLOSE:
		client_close();
		break;
	case OP_SHUT_WR:
		if (fc.client >= 0)
			shutdown(fc.client, SHUT_WR);
		fc.pristine = false;
		break;
	case OP_RUN:
		break;
	case OP_RESET:
		fc_reg(VI_DEVICE_STATUS, 0, 4);
		lose(0);
		lose(1);
		break;
	case OP_DISABLE: {
		unsigned q = fz_u8(f) & 1;
		fc_reg(VI_QUEUE_SEL, q, 4);
		fc_reg(VI_QUEUE_ENABLE, 0, 2);
		lose(q);
		break;
	}
	case OP_PEER_LEAVE:
		fc_peer(VIRTIO_STATE_RESET);
		lose(0);
		lose(1);
		break;
	case OP_BRINGUP:
		if (fc.q[0].num || fc.q[1].num) {
			lose(0);
			lose(1);
		}
		fc_bringup((uint16_t)(1u << (fz_u8(f) % 5)));
		break;
	case OP_SETTLE:
		console_settle(fc.dev);
		break;
	}
	step_end();
}

/* The client reads everything and the driver kicks until nothing moves. */
static void drain(void)
{
	for (int quiet = 0, round = 0; quiet < 3 && round < 256; round++) {
		size_t before = fc.nrecv, answered = fc.tx_answered;
		uint16_t used = fc.q[0].seen_used;
		client_read(0);
		vdev_process(console_vdev(fc.dev), -1);
		step_end();
		quiet = fc.nrecv == before && fc.tx_answered == answered &&
			fc.q[0].seen_used == used ? quiet + 1 : 0;
	}
	/* What the client read is the transmitted bytes, in order. */
	const uint8_t *at = fc.posted, *end = fc.posted + fc.nposted;
	for (size_t k = 0; k < fc.nrecv; k++, at++) {
		at = at < end ? memchr(at, fc.recv[k], (size_t)(end - at)) : NULL;
		FZ_CHECK(at, "the client read %zu bytes that were not transmitted in this order",
			 fc.nrecv);
	}
	if (!fc.pristine)
		return;
	FZ_CHECK(memcmp(fc.recv, fc.posted, fc.nrecv) == 0, "the client read bytes out of order");
	if (fc.client < 0) {
		/* Never connected: what was answered waits in the backlog. */
		uint64_t kept = console_stats(fc.dev)->backlog_bytes;
		FZ_CHECK(fc.nrecv == 0 && kept == fc.tx_answered, "%zu bytes answered, %llu in the "
			 "backlog", fc.tx_answered, (unsigned long long)kept);
		return;
	}
	FZ_CHECK(fc.nrecv >= fc.tx_answered, "%zu bytes answered, the client read %zu",
		 fc.tx_answered, fc.nrecv);
	if (fc.up)
		FZ_CHECK(fc.tx_answered == fc.nposted && fc.nrecv == fc.nposted,
			 "transmit stalled: %zu bytes posted, %zu answered, %zu read", fc.nposted,
			 fc.tx_answered, fc.nrecv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (!fc.rw) {
		fz_quiet();
		fc.rw = fz_map_guarded(FC_RW);
		/* Nothing lives beyond what the driver uses: any access faults. */
		fz_protect(fc.rw + FC_USED, FC_RW - FC_USED, false);
		uv_loop_init(&loop);
		tick_init(&tk, &loop);
		snprintf(path, sizeof(path), "/tmp/fuzz-console.%d.sock", (int)getpid());
	}
	struct fz f = { data, size };
	uint8_t *rw = fc.rw;
	memset(&fc, 0, sizeof(fc));
	fc.rw = rw;
	fc.loop = &loop;
	fc.client = -1;
	fc.pristine = true;
	memset(rw, 0, FC_USED);
	memset(fc_shadow(), 0, FC_USED);
	uint8_t a = fz_u8(&f), b = fz_u8(&f);
	struct console_params p = {
		.name = "fuzz", .endpoint = CONSOLE_SOCKET, .path = path,
		.backlog = a & 1 ? 0 : (size_t)1 << (a >> 1) % 14, .cols = 80, .rows = 25,
		.queue_size = b % 8 % 5 ? (uint16_t)(1u << (b % 8 % 5)) : 0,
	};
	fc.fp = fake_port_new_at(0, 3, rw, FC_RW);
	if (!fc.fp)
		abort();
	tuned_fd = -1;
	if (console_open(&p, &fc.fp->port, &tk, &fc.dev, err, sizeof(err)) < 0) {
		fake_port_free(fc.fp);
		return 0;
	}
	vdev_start(console_vdev(fc.dev));
	if (b & 0x80)
		client_connect();
	step_end();
	while (fz_more(&f))
		step(&f);
	drain();
	if (fc.client >= 0)
		close(fc.client);
	console_close(fc.dev);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_run(&loop, UV_RUN_NOWAIT);
	fake_port_free(fc.fp);
	return 0;
}
