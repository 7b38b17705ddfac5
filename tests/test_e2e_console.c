/* End-to-end tests of the virtio-console backend: the real daemon serving a
 * console over a software IVSHMEM link, the userspace front-end as the cell,
 * and the test itself on the endpoint side (pty, socket, log file, stdio). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "backends/console.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "tests/frontend/fe_console.h"
#include "tests/harness.h"

#define MiB (1u << 20)
#define CHUNK(left) ((left) < 65536 ? (left) : 65536)

struct fixture {
	struct daemon_proc d;
	char conf[4096];
	struct fe_console *c;
	int fd;                 /* endpoint-side fd, or -1 */
};

static const char *path(struct fixture *fx, const char *name, int slot)
{
	return harness_path(&fx->d, name, slot);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	fx->fd = -1;
	*state = fx;
	/* The test dir first: endpoint paths in the config are made from it. */
	return harness_mkdir(&fx->d) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fe_console_close(fx->c);
	if (fx->fd >= 0)
		close(fx->fd);
	harness_cleanup(&fx->d);
	free(fx);
	return 0;
}

/* One console "con0" with the given endpoint lines. */
static void start(struct fixture *fx, const char *fmt, ...)
{
	char ep[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ep, sizeof(ep), fmt, ap);
	va_end(ap);
	snprintf(fx->conf, sizeof(fx->conf), "[console con0]\nsim = %s/con0.link\n%s\n",
		 fx->d.dir, ep);
	if (harness_start(&fx->d, fx->conf, 1, NULL) != 0)
		fail_msg("daemon did not start; config:\n%s", fx->conf);
}

static struct fe_console *connect_fe(struct fixture *fx, uint16_t qsize, unsigned nrx)
{
	struct fe_console *c = NULL;
	char err[256];
	int r = fe_console_open(path(fx, "con0.link", 3), qsize, nrx, 4096, 5000, &c, err,
				sizeof(err));
	if (r < 0)
		fail_msg("connecting to the console link: %s", err);
	return c;
}

/* Non-blocking: the tests read what is there and move on. */
static int unix_connect(const char *p)
{
	int fd = harness_unix_connect(p);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Read what arrives on fd within ms (nothing more expected than cap). */
static size_t read_for(int fd, void *buf, size_t cap, int ms)
{
	size_t got = 0;
	uint64_t end = now_ms() + (uint64_t)ms;
	while (got < cap && now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t n = read(fd, (uint8_t *)buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Host -> cell byte, proving the daemon sees this endpoint as attached.
 * Written once: a byte sent before the daemon noticed the reader waits in
 * the socket or pty until it does. */
static void handshake(struct fe_console *c, int fd)
{
	assert_int_equal(write(fd, "\x5a", 1), 1);
	uint8_t b = 0;
	if (fe_console_read_exact(c, &b, 1, 5000) != 0)
		fail_msg("no handshake byte reached the cell");
	assert_int_equal(b, 0x5a);
}

static void first_diff(const uint8_t *a, const uint8_t *b, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			fail_msg("%s: first difference at byte %zu of %zu", what, i, n);
}

/* Move out_len bytes cell -> endpoint and in_len bytes endpoint -> cell at
 * the same time, then compare both byte for byte. */
static void both_ways(struct fe_console *c, int fd, size_t out_len, size_t in_len, uint64_t seed)
{
	uint8_t *out = malloc(out_len + 1), *got = malloc(out_len + 1);
	uint8_t *in = malloc(in_len + 1), *rcv = malloc(in_len + 1);
	harness_fill(out, out_len, seed);
	harness_fill(in, in_len, seed + 1);
	size_t out_off = 0, got_len = 0, in_off = 0, rcv_len = 0;
	uint64_t last = now_ms();
	uint8_t tmp[65536];
	while (got_len < out_len || rcv_len < in_len) {
		bool progress = false;
		if (out_off < out_len) {
			size_t n = fe_console_send(c, out + out_off, CHUNK(out_len - out_off));
			out_off += n;
			progress |= n > 0;
		}
		if (in_off < in_len) {
			ssize_t n = write(fd, in + in_off, CHUNK(in_len - in_off));
			if (n > 0) {
				in_off += (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN) {
				fail_msg("endpoint write: %s", strerror(errno));
			}
		}
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n > 0) {
			if (got_len + (size_t)n > out_len)
				fail_msg("endpoint got %zu bytes more than the cell sent",
					 got_len + (size_t)n - out_len);
			memcpy(got + got_len, tmp, (size_t)n);
			got_len += (size_t)n;
			progress = true;
		} else if (n == 0) {
			fail_msg("endpoint closed");
		}
		int r = fe_console_poll(c, progress ? 0 : 5);
		if (r < 0)
			fail_msg("front-end: backend went away (%d)", r);
		size_t k = fe_console_recv(c, rcv + rcv_len, in_len - rcv_len);
		rcv_len += k;
		if (c->in_len)
			fail_msg("the cell got more bytes than the endpoint sent");
		if (progress || k || r > 0)
			last = now_ms();
		if (now_ms() - last > 10000)
			fail_msg("stalled: cell->endpoint %zu/%zu (sent %zu), endpoint->cell "
				 "%zu/%zu (written %zu)", got_len, out_len, out_off, rcv_len,
				 in_len, in_off);
	}
	first_diff(got, out, out_len, "cell -> endpoint");
	first_diff(rcv, in, in_len, "endpoint -> cell");
	assert_int_equal(c->tx_bad_len, 0);
	assert_int_equal(fe_console_drain(c, 5000), 0);
	free(out);
	free(got);
	free(in);
	free(rcv);
}

static bool backend_alive(struct fixture *fx)
{
	return fe_backend_ready(fx->c->fe) && !(fe_status(fx->c->fe) & VIRTIO_STATUS_NEEDS_RESET);
}

static int open_pty(struct fixture *fx)
{
	int fd = open(path(fx, "con0.pty", 2), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fail_msg("cannot open the pty symlink: %s", strerror(errno));
	return fd;
}

/* ---- sizes ------------------------------------------------------------- */

/* With the default config the whole receive queue can be filled with page
 * buffers, as the Linux virtio_console does before its port exists, and a
 * transmit still finds room.  Before the fix the default offered 64 entries
 * on 252 KiB: "shared memory is full", "Error allocating inbufs", no hvc0. */
static void test_default_sizes_fill_like_linux(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = log\npath = %s/con0.log\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 65535);          /* every entry the queue has */
	assert_int_equal(fx->c->nrx, 32);
	assert_true(harness_log_has(&fx->d, "queues of 32"));
	const char msg[] = "transmit after a full receive queue\n";
	assert_int_equal(fe_console_send(fx->c, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	uint64_t end = now_ms() + 5000;
	while (fx->c->tx_inflight && now_ms() < end)
		fe_console_poll(fx->c, 100);
	assert_int_equal(fx->c->tx_inflight, 0);
	assert_int_equal(harness_stop(&fx->d), 0);
	char got[128] = "";
	assert_int_equal(harness_read_file(path(fx, "con0.log", 0), 0, got, sizeof(msg) - 1), 0);
	assert_memory_equal(got, msg, sizeof(msg) - 1);
}

/* ---- socket ------------------------------------------------------------ */

static void test_socket_megabytes_both_ways(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\n", fx->d.dir);
	struct stat st;
	assert_int_equal(stat(path(fx, "con0.sock", 0), &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	fx->c = connect_fe(fx, 64, 16);
	/* Odd-sized multi-buffer chains (indirect tables) on the transmit side. */
	fx->c->tx_segs = 3;
	fx->c->tx_seg = 1000;
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	handshake(fx->c, fx->fd);
	both_ways(fx->c, fx->fd, 6 * MiB, 6 * MiB, 11);
	assert_true(harness_log_has(&fx->d, "client connected"));
	assert_int_equal(harness_stop(&fx->d), 0);
	/* The socket is gone with the daemon. */
	assert_int_equal(stat(path(fx, "con0.sock", 0), &st), -1);
}

/* A client that does not read: the cell's output must stall in the ring
 * (nothing dropped, nothing into the backlog), then arrive complete and in
 * order once the client reads. */
static void test_socket_backpressure(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\nbacklog = 4K\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	handshake(fx->c, fx->fd);
	const size_t total = 8 * MiB;
	uint8_t *out = malloc(total), *got = malloc(total);
	harness_fill(out, total, 21);
	size_t off = 0;
	uint64_t end = now_ms() + 1500;
	while (now_ms() < end) {
		off += fe_console_send(fx->c, out + off, CHUNK(total - off));
		fe_console_poll(fx->c, 10);
	}
	/* Stalled: far from everything accepted, chains waiting in the ring. */
	assert_true(off < total);
	assert_true(fx->c->tx_inflight > 0);
	unsigned inflight = fx->c->tx_inflight;
	uint64_t sent = fx->c->tx_bytes;
	sleep_ms(300);
	fe_console_poll(fx->c, 0);
	assert_int_equal(fx->c->tx_inflight, inflight);   /* no completion while stalled */
	assert_int_equal(fx->c->tx_bytes, sent);
	/* Now read everything, still sending the rest. */
	size_t got_len = 0;
	uint64_t last = now_ms();
	while (got_len < total) {
		if (off < total)
			off += fe_console_send(fx->c, out + off, CHUNK(total - off));
		ssize_t n = read(fx->fd, got + got_len, total - got_len);
		if (n > 0) {
			got_len += (size_t)n;
			last = now_ms();
		}
		fe_console_poll(fx->c, n > 0 ? 0 : 5);
		if (now_ms() - last > 10000)
			fail_msg("stalled at %zu of %zu", got_len, total);
	}
	first_diff(got, out, total, "after backpressure");
	assert_int_equal(read_for(fx->fd, got, 16, 300), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	free(out);
	free(got);
}

/* Output with nobody connected goes to the backlog (the cell is never held
 * back) and is replayed to the next client before new output. */
static void test_socket_backlog_replay(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\nbacklog = 64K\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	uint8_t a[40000], b[5000], got[sizeof(a) + sizeof(b)];
	harness_fill(a, sizeof(a), 31);
	harness_fill(b, sizeof(b), 32);
	assert_int_equal(fe_console_write_all(fx->c, a, sizeof(a), 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);     /* completed, nobody there */
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	assert_int_equal(read_for(fx->fd, got, sizeof(a), 5000), sizeof(a));
	assert_memory_equal(got, a, sizeof(a));
	/* Live output follows. */
	assert_int_equal(fe_console_write_all(fx->c, b, sizeof(b), 5000), 0);
	assert_int_equal(read_for(fx->fd, got, sizeof(b), 5000), sizeof(b));
	assert_memory_equal(got, b, sizeof(b));
	/* The client leaves; output goes to the backlog again; a new client
	 * gets it. */
	close(fx->fd);
	fx->fd = -1;
	sleep_ms(200);
	assert_int_equal(fe_console_write_all(fx->c, a, 1000, 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_int_equal(read_for(fx->fd, got, 1000, 5000), 1000);
	assert_memory_equal(got, a, 1000);
	assert_int_equal(read_for(fx->fd, got, 16, 300), 0);
}

/* A full backlog drops its oldest bytes: the client gets the newest ones. */
static void test_socket_backlog_overflow(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\nbacklog = 4K\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	uint8_t a[10000], got[sizeof(a)];
	harness_fill(a, sizeof(a), 41);
	assert_int_equal(fe_console_write_all(fx->c, a, sizeof(a), 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_int_equal(read_for(fx->fd, got, sizeof(got), 1000), 4096);
	assert_memory_equal(got, a + sizeof(a) - 4096, 4096);
	/* And on with live data. */
	assert_int_equal(fe_console_write_all(fx->c, a, 100, 5000), 0);
	assert_int_equal(read_for(fx->fd, got, 100, 5000), 100);
	assert_memory_equal(got, a, 100);
}

/* One client at a time: a second one is closed at once, the first keeps the
 * console; after the first leaves, a new one is welcome. */
static void test_socket_second_client_refused(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	handshake(fx->c, fx->fd);
	int second = unix_connect(path(fx, "con0.sock", 0));
	assert_true(second >= 0);
	struct pollfd p = { .fd = second, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	char x;
	assert_int_equal(read(second, &x, 1), 0);     /* EOF: turned away */
	close(second);
	assert_true(harness_log_has(&fx->d, "turned away"));
	/* The first still works both ways. */
	both_ways(fx->c, fx->fd, 10000, 10000, 51);
	close(fx->fd);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	handshake(fx->c, fx->fd);
	both_ways(fx->c, fx->fd, 10000, 10000, 52);
}

/* The endpoint is read only while the cell has receive buffers posted. */
static void test_socket_rx_flow_control(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 8);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	handshake(fx->c, fx->fd);
	fe_console_rx_pause(fx->c, true);
	const size_t total = 4 * MiB;
	uint8_t *in = malloc(total), *rcv = malloc(total);
	harness_fill(in, total, 61);
	size_t off = 0;
	uint64_t end = now_ms() + 1500;
	while (now_ms() < end && off < total) {
		ssize_t n = write(fx->fd, in + off, total - off);
		if (n > 0)
			off += (size_t)n;
		fe_console_poll(fx->c, 10);
	}
	/* The buffers got used up, then the daemon stopped reading: the
	 * socket filled up and the writer is held back. */
	assert_true(off < total);
	assert_int_equal(fe_console_rx_posted(fx->c), 0);
	assert_int_equal(fx->c->rx_chains, 1 + 8);        /* the handshake's, then all 8 */
	assert_true(fx->c->rx_bytes <= 1 + 8 * 4096);
	size_t rcv_len = fe_console_recv(fx->c, rcv, total);
	fe_console_rx_pause(fx->c, false);
	uint64_t last = now_ms();
	while (rcv_len < total) {
		if (off < total) {
			ssize_t n = write(fx->fd, in + off, total - off);
			if (n > 0)
				off += (size_t)n;
		}
		int r = fe_console_poll(fx->c, 5);
		assert_true(r >= 0);
		size_t k = fe_console_recv(fx->c, rcv + rcv_len, total - rcv_len);
		rcv_len += k;
		if (k)
			last = now_ms();
		if (now_ms() - last > 10000)
			fail_msg("stalled at %zu of %zu", rcv_len, total);
	}
	first_diff(rcv, in, total, "endpoint -> cell");
	free(in);
	free(rcv);
}

/* The cell resets with a transmit chain half written into a blocked
 * client; the daemon drops that chain's state and the next session works. */
static void test_socket_reset_while_blocked(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	handshake(fx->c, fx->fd);
	uint8_t *junk = malloc(4 * MiB);
	harness_fill(junk, 4 * MiB, 71);
	size_t off = 0;
	for (int i = 0; i < 50; i++) {
		off += fe_console_send(fx->c, junk + off, 4 * MiB - off);
		fe_console_poll(fx->c, 10);
	}
	assert_true(fx->c->tx_inflight > 0);
	fe_console_close(fx->c);        /* the peer leaves */
	fx->c = connect_fe(fx, 64, 16);
	/* Drain the old bytes from the socket, then new data goes through. */
	uint8_t buf[65536];
	while (read_for(fx->fd, buf, sizeof(buf), 300) > 0)
		;
	handshake(fx->c, fx->fd);
	both_ways(fx->c, fx->fd, 300000, 300000, 72);
	free(junk);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* Chains a driver may legally (or not quite) send: writable buffers on the
 * transmit queue are never read or written, zero-length buffers are
 * skipped, a receive chain with nothing writable comes back empty. */
static void test_odd_chains(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = socket\npath = %s/con0.sock\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 0);          /* no receive buffers yet */
	struct fe_console *c = fx->c;
	struct fe_dev *fe = c->fe;
	fx->fd = unix_connect(path(fx, "con0.sock", 0));
	assert_true(fx->fd >= 0);
	uint64_t a = fe_alloc(fe, 64), b = fe_alloc(fe, 64), z = fe_alloc(fe, 64);
	memcpy(fe_ptr(fe, a), "HELLO", 5);
	memset(fe_ptr(fe, b), 0xee, 64);
	memcpy(fe_ptr(fe, z), "AB", 2);
	/* Tokens shaped like fe_console's transmit chains: zeroed, so there
	 * is no buffer to give back, just the token itself. */
	void *tok[3] = { calloc(1, 1024), calloc(1, 1024), calloc(1, 1024) };
	struct fe_sg ch1[2] = { { a, 5, false }, { b, 64, true } };
	struct fe_sg ch2[3] = { { z, 0, false }, { z, 2, false }, { z, 0, false } };
	struct fe_sg ch3[1] = { { b, 64, true } };
	assert_int_equal(fe_vq_add(fe, VCON_TX_QUEUE, ch1, 2, tok[0]), 0);
	assert_int_equal(fe_vq_add(fe, VCON_TX_QUEUE, ch2, 3, tok[1]), 0);
	assert_int_equal(fe_vq_add(fe, VCON_TX_QUEUE, ch3, 1, tok[2]), 0);
	c->tx_inflight += 3;
	fe_vq_kick(fe, VCON_TX_QUEUE);
	char got[16] = { 0 };
	assert_int_equal(read_for(fx->fd, got, 7, 3000), 7);
	assert_memory_equal(got, "HELLOAB", 7);
	assert_int_equal(fe_console_drain(c, 3000), 0);
	assert_int_equal(c->tx_bad_len, 0);     /* used length 0 for each */
	for (int i = 0; i < 64; i++)
		assert_int_equal(((uint8_t *)fe_ptr(fe, b))[i], 0xee);
	/* A receive chain with only a device-readable buffer. */
	struct fe_con_rxbuf odd = { .off = fe_alloc(fe, 4096) };
	c->rx_size = 4096;
	struct fe_sg r1 = { odd.off, 16, false };
	assert_int_equal(fe_vq_add(fe, VCON_RX_QUEUE, &r1, 1, &odd), 0);
	odd.posted = true;
	fe_vq_kick(fe, VCON_RX_QUEUE);
	assert_int_equal(write(fx->fd, "X", 1), 1);
	uint64_t end = now_ms() + 3000;
	while (c->rx_empty == 0 && now_ms() < end)
		fe_console_poll(c, 50);
	assert_int_equal(c->rx_empty, 1);
	/* Re-posted as a proper buffer by the client: the byte waited for it. */
	uint8_t x = 0;
	assert_int_equal(fe_console_read_exact(c, &x, 1, 3000), 0);
	assert_int_equal(x, 'X');
	assert_true(backend_alive(fx));
}

/* ---- pty --------------------------------------------------------------- */

static void test_pty_megabytes_both_ways(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = pty\npath = %s/con0.pty\ncols = 100\nrows = 40\n", fx->d.dir);
	char target[64];
	ssize_t n = readlink(path(fx, "con0.pty", 0), target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_memory_equal(target, "/dev/pts/", 9);
	fx->c = connect_fe(fx, 64, 16);
	assert_int_equal(fx->c->cols, 100);
	assert_int_equal(fx->c->rows, 40);
	fx->fd = open_pty(fx);
	struct termios t;
	assert_int_equal(tcgetattr(fx->fd, &t), 0);
	assert_false(t.c_lflag & (ICANON | ECHO | ISIG));   /* raw */
	handshake(fx->c, fx->fd);
	both_ways(fx->c, fx->fd, 3 * MiB, 3 * MiB, 81);
	/* Closed and opened again: output meanwhile is kept for the reader. */
	close(fx->fd);
	fx->fd = -1;
	sleep_ms(100);
	uint8_t a[3000], got[3000];
	harness_fill(a, sizeof(a), 82);
	assert_int_equal(fe_console_write_all(fx->c, a, sizeof(a), 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	fx->fd = open_pty(fx);
	assert_int_equal(read_for(fx->fd, got, sizeof(got), 3000), sizeof(got));
	assert_memory_equal(got, a, sizeof(a));
	close(fx->fd);
	fx->fd = -1;
	assert_int_equal(harness_stop(&fx->d), 0);
	struct stat st;
	assert_int_equal(lstat(path(fx, "con0.pty", 0), &st), -1);   /* symlink removed */
}

/* A cell that writes while nobody ever opened the pty is not held back. */
static void test_pty_nobody_there(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = pty\npath = %s/con0.pty\nbacklog = 8K\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	uint8_t *a = malloc(MiB), got[8192];
	harness_fill(a, MiB, 91);
	assert_int_equal(fe_console_write_all(fx->c, a, MiB, 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	fx->fd = open_pty(fx);
	assert_int_equal(read_for(fx->fd, got, sizeof(got), 3000), sizeof(got));
	assert_memory_equal(got, a + MiB - sizeof(got), sizeof(got));
	free(a);
}

/* TIOCSWINSZ on the slave reaches the cell as a config change. */
static void test_pty_window_size(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = pty\npath = %s/con0.pty\ncols = 100\nrows = 40\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	assert_int_equal(fx->c->cols, 100);
	assert_int_equal(fx->c->rows, 40);
	uint32_t gen0 = fx->c->config_gen;
	assert_int_equal(gen0 & 1, 0);
	fx->fd = open_pty(fx);
	struct winsize ws = { .ws_col = 132, .ws_row = 50 };
	assert_int_equal(ioctl(fx->fd, TIOCSWINSZ, &ws), 0);
	uint64_t end = now_ms() + 3000;
	uint64_t irq0 = fx->c->fe->interrupts;
	while (!fe_console_config_update(fx->c) && now_ms() < end)
		fe_console_poll(fx->c, 50);
	assert_int_equal(fx->c->cols, 132);
	assert_int_equal(fx->c->rows, 50);
	assert_true(fx->c->config_gen > gen0);
	assert_int_equal(fx->c->config_gen & 1, 0);
	assert_true(fx->c->fe->interrupts > irq0);   /* a config interrupt came */
	/* Again, with the reader gone: the size is a property of the pty. */
	ws = (struct winsize){ .ws_col = 61, .ws_row = 19 };
	assert_int_equal(ioctl(fx->fd, TIOCSWINSZ, &ws), 0);
	close(fx->fd);
	fx->fd = -1;
	end = now_ms() + 3000;
	while (!(fx->c->cols == 61 && fx->c->rows == 19) && now_ms() < end) {
		fe_console_poll(fx->c, 50);
		fe_console_config_update(fx->c);
	}
	assert_int_equal(fx->c->cols, 61);
	assert_int_equal(fx->c->rows, 19);
}

/* ---- log --------------------------------------------------------------- */

static void check_file(const char *p, const uint8_t *want, size_t len)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal((size_t)st.st_size, len);
	uint8_t *buf = malloc(len + 1);
	assert_int_equal(harness_read_file(p, 0, buf, len), 0);
	first_diff(buf, want, len, p);
	free(buf);
}

static void test_log_and_reopen(void **state)
{
	struct fixture *fx = *state;
	start(fx, "endpoint = log\npath = %s/con0.log\n", fx->d.dir);
	fx->c = connect_fe(fx, 64, 16);
	fx->c->tx_segs = 4;
	fx->c->tx_seg = 777;
	const size_t a_len = 2 * MiB, b_len = 300000;
	uint8_t *a = malloc(a_len), *b = malloc(b_len);
	harness_fill(a, a_len, 101);
	harness_fill(b, b_len, 102);
	assert_int_equal(fe_console_write_all(fx->c, a, a_len, 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	check_file(path(fx, "con0.log", 0), a, a_len);
	/* Nothing comes back from a log. */
	assert_int_equal(fe_console_poll(fx->c, 200), 0);
	assert_int_equal(fx->c->rx_bytes, 0);
	/* logrotate: rename, SIGHUP, the daemon writes a new file. */
	assert_int_equal(rename(path(fx, "con0.log", 0), path(fx, "con0.log.1", 1)), 0);
	assert_int_equal(kill(fx->d.pid, SIGHUP), 0);
	struct stat st;
	uint64_t end = now_ms() + 5000;
	while (stat(path(fx, "con0.log", 0), &st) != 0 && now_ms() < end)
		sleep_ms(10);
	assert_int_equal(stat(path(fx, "con0.log", 0), &st), 0);
	assert_int_equal(fe_console_write_all(fx->c, b, b_len, 5000), 0);
	assert_int_equal(fe_console_drain(fx->c, 5000), 0);
	check_file(path(fx, "con0.log.1", 1), a, a_len);
	check_file(path(fx, "con0.log", 0), b, b_len);
	free(a);
	free(b);
	assert_int_equal(harness_stop(&fx->d), 0);
}

/* ---- stdio --------------------------------------------------------------- */

/* The daemon with its stdin and stdout on pipes of ours. */
static void start_stdio(struct fixture *fx, int *to_daemon, int *from_daemon)
{
	int in[2], out[2];
	snprintf(fx->conf, sizeof(fx->conf),
		 "[console con0]\nsim = %s/con0.link\nendpoint = stdio\n", fx->d.dir);
	assert_true(harness_write_conf(fx->d.conf, fx->conf) >= 0);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	fx->d.pid = fork();
	if (fx->d.pid == 0) {
		int lfd = open(fx->d.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(lfd, 2);
		execl(DAEMON_PATH, "virtio-ivshmemd", "-c", fx->d.conf, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	uint64_t end = now_ms() + 10000;
	while (!harness_log_has(&fx->d, "serving 1 device(s)")) {
		if (now_ms() > end)
			fail_msg("daemon did not start");
		sleep_ms(10);
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	*to_daemon = in[1];
	*from_daemon = out[0];
}

static void test_stdio_both_ways(void **state)
{
	struct fixture *fx = *state;
	int to, from;
	start_stdio(fx, &to, &from);
	fx->c = connect_fe(fx, 64, 16);
	/* Both directions through the pipes (a pipe pair, not one fd). */
	const size_t n = 2 * MiB;
	uint8_t *out = malloc(n), *got = malloc(n), *in = malloc(n), *rcv = malloc(n);
	harness_fill(out, n, 111);
	harness_fill(in, n, 112);
	size_t out_off = 0, got_len = 0, in_off = 0, rcv_len = 0;
	uint64_t last = now_ms();
	while (got_len < n || rcv_len < n) {
		bool progress = false;
		size_t k = fe_console_send(fx->c, out + out_off, CHUNK(n - out_off));
		out_off += k;
		progress |= k > 0;
		ssize_t w = write(to, in + in_off, CHUNK(n - in_off));
		if (w > 0) {
			in_off += (size_t)w;
			progress = true;
		}
		ssize_t r = read(from, got + got_len, n - got_len);
		if (r > 0) {
			got_len += (size_t)r;
			progress = true;
		}
		assert_true(fe_console_poll(fx->c, progress ? 0 : 5) >= 0);
		k = fe_console_recv(fx->c, rcv + rcv_len, n - rcv_len);
		rcv_len += k;
		if (progress || k)
			last = now_ms();
		if (now_ms() - last > 10000)
			fail_msg("stalled: out %zu/%zu in %zu/%zu", got_len, n, rcv_len, n);
	}
	first_diff(got, out, n, "cell -> stdout");
	first_diff(rcv, in, n, "stdin -> cell");
	/* stdin at EOF: input ends, output goes on. */
	close(to);
	assert_int_equal(fe_console_write_all(fx->c, out, 1000, 5000), 0);
	assert_int_equal(read_for(from, got, 1000, 5000), 1000);
	assert_memory_equal(got, out, 1000);
	assert_int_equal(harness_stop(&fx->d), 0);
	close(from);
	free(out);
	free(got);
	free(in);
	free(rcv);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_sizes_fill_like_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_megabytes_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_backlog_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_backlog_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_second_client_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_rx_flow_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_reset_while_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pty_megabytes_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pty_nobody_there, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pty_window_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdio_both_ways, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
