#include "backends/console.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "server/dma_pool.h"
#include "server/log.h"
#include "server/virtio_ivshmem.h"

#define CHECK_MS            500             /* pty attach and window size, socket liveness */
#define TX_IRQ_DELAY_MS 1       /* see tx_pump */
#define BYTES_BUDGET        (4u << 20)      /* per wakeup and direction */
#define ACCEPT_BUDGET       16              /* connections taken per wakeup */
#define MAX_LOGGED_ERRORS   10

/* One fd in the loop.  Heap-allocated: uv_close finishes later. */
struct con_watch {
	uv_poll_t poll;
	struct console_dev *dev;
	int fd;
	int events;                 /* what the poll is started with now */
};

struct console_dev {
	struct vdev vdev;
	struct console_params p;
	char name[64];
	char path[PATH_MAX];
	uv_loop_t *loop;
	struct console_stats stats;

	/* The endpoint as the data paths see it. */
	int in_fd, out_fd;          /* -1: none right now */
	struct con_watch *in_w, *out_w;     /* NULL: not pollable; may be one watch */
	bool attached;              /* somebody is there: output goes live */
	bool in_eof;                /* stdio: stdin ended */
	bool in_sock, out_sock;     /* sockets: MSG_DONTWAIT, so a shared
				     * description (stdio) can stay blocking */

	/* pty */
	int master;
	char pts[64];               /* /dev/pts/N */
	struct con_watch *ino_w;    /* inotify on the slave: open/close */
	bool symlink_made;

	/* socket */
	int listen_fd;
	struct con_watch *listen_w;
	bool listen_paused;         /* out of fds: retried by the timer */
	dev_t sock_dev;
	ino_t sock_ino;

	/* stdio */
	int tty_fd;                 /* raw-mode terminal to restore, or -1 */
	struct termios saved_tio;
	int restore_fd[2], restore_fl[2];   /* shared descriptions made non-blocking */
	int winsz_fd;               /* where the window size comes from, or -1 */

	/* Receive (host -> cell). */
	bool rx_want;               /* buffers may be posted: keep reading */
	bool rx_held;               /* a popped chain waits for input */
	struct vq_elem rx_e;
	struct iovec *rx_iov;

	/* Transmit (cell -> host). */
	bool tx_held;               /* a popped chain not fully written yet */
	bool tx_blocked;            /* the endpoint is full: wait for WRITABLE */
	struct vq_elem tx_e;
	struct iovec *tx_iov;
	unsigned tx_pos;            /* next readable buffer of the held chain */
	unsigned iov_cap;

	/* Output while nobody is there: a ring of bl_cap bytes. */
	uint8_t *bl;
	size_t bl_cap, bl_head, bl_len;

	uint16_t cols, rows;
	uv_timer_t timer;
	uv_timer_t tx_irq;          /* the transmit interrupt, decided late (see tx_pump) */
	uv_idle_t resume;           /* tx out of budget: go on next iteration */
	unsigned handles;           /* uv handles not closed yet */
	bool closing;
	uint64_t logged_errors;
};

static void tx_pump(struct console_dev *dev);
static void rx_pump(struct console_dev *dev);
static void update_watches(struct console_dev *dev);

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- handles ---------------------------------------------------------- */

static void free_dev(struct console_dev *dev)
{
	free(dev->rx_iov);
	free(dev->tx_iov);
	free(dev->bl);
	free(dev);
}

static void handle_closed(struct console_dev *dev)
{
	if (--dev->handles == 0 && dev->closing)
		free_dev(dev);
}

static void plain_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void watch_closed(uv_handle_t *h)
{
	struct con_watch *w = h->data;
	struct console_dev *dev = w->dev;
	free(w);
	handle_closed(dev);
}

static void watch_cb(uv_poll_t *h, int status, int events);

/* A watch on fd; NULL with *err set when fd cannot be polled (a regular
 * file, /dev/null) or memory is short.  Note: libuv makes fd non-blocking. */
static struct con_watch *watch_new(struct console_dev *dev, int fd, int *err)
{
	struct con_watch *w = calloc(1, sizeof(*w));
	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	int r = uv_poll_init(dev->loop, &w->poll, fd);
	if (r < 0) {
		free(w);
		*err = r;
		return NULL;
	}
	w->dev = dev;
	w->fd = fd;
	w->poll.data = w;
	dev->handles++;
	return w;
}

/* uv_close stops the poll synchronously, so fd may be closed right after
 * (never before: the loop would drop a reused fd number's registration). */
static void watch_close(struct con_watch *w, bool close_fd)
{
	if (!w)
		return;
	uv_close((uv_handle_t *)&w->poll, watch_closed);
	if (close_fd)
		close(w->fd);
}

static void watch_set(struct con_watch *w, int events, uv_poll_cb cb)
{
	if (!w || w->events == events)
		return;
	if (events) {
		if (uv_poll_start(&w->poll, events, cb) < 0)
			events = 0;
	} else {
		uv_poll_stop(&w->poll);
	}
	w->events = events;
}

static void resume_cb(uv_idle_t *h)
{
	struct console_dev *dev = h->data;
	uv_idle_stop(h);
	tx_pump(dev);
}

static void resume_later(struct console_dev *dev)
{
	if (!dev->closing)
		uv_idle_start(&dev->resume, resume_cb);
}

/* ---- endpoint state --------------------------------------------------- */

static bool has_backlog(const struct console_dev *dev)
{
	return dev->p.endpoint == CONSOLE_SOCKET || dev->p.endpoint == CONSOLE_PTY;
}

static bool output_live(const struct console_dev *dev)
{
	return dev->attached && dev->out_fd >= 0;
}

static bool input_live(const struct console_dev *dev)
{
	return dev->attached && dev->in_fd >= 0 && dev->in_w && !dev->in_eof;
}

static void update_watches(struct console_dev *dev)
{
	if (dev->closing)
		return;
	int in_ev = input_live(dev) && dev->rx_want ? UV_READABLE : 0;
	int out_ev = output_live(dev) && dev->tx_blocked ? UV_WRITABLE : 0;
	if (dev->in_w && dev->in_w == dev->out_w) {
		watch_set(dev->in_w, in_ev | out_ev, watch_cb);
	} else {
		watch_set(dev->in_w, in_ev, watch_cb);
		watch_set(dev->out_w, out_ev, watch_cb);
	}
}

static void winsize_check(struct console_dev *dev)
{
	struct winsize ws;
	if (dev->winsz_fd < 0 || ioctl(dev->winsz_fd, TIOCGWINSZ, &ws) < 0)
		return;
	if (!ws.ws_col || !ws.ws_row || (ws.ws_col == dev->cols && ws.ws_row == dev->rows))
		return;
	log_debug("%s: window size %ux%u", dev->name, ws.ws_col, ws.ws_row);
	dev->cols = ws.ws_col;
	dev->rows = ws.ws_row;
	vdev_config_changed(&dev->vdev);
}

/* The slave has no opener (after we opened and closed it once at start, the
 * master reports POLLHUP exactly then). */
static bool pty_hup(const struct console_dev *dev)
{
	struct pollfd pfd = { .fd = dev->master, .events = POLLIN | POLLOUT };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
}

static void pty_raw(struct console_dev *dev)
{
	/* Termios ioctls on a Linux master act on the slave. */
	struct termios tio;
	if (tcgetattr(dev->master, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(dev->master, TCSANOW, &tio);
	}
}

static void detach(struct console_dev *dev, const char *why)
{
	if (!dev->attached)
		return;
	dev->attached = false;
	dev->tx_blocked = false;
	if (dev->p.endpoint == CONSOLE_SOCKET) {
		log_info("%s: client left (%s); output goes to the backlog", dev->name, why);
		watch_close(dev->in_w, true);
		dev->in_w = dev->out_w = NULL;
		dev->in_fd = dev->out_fd = -1;
	} else {
		log_debug("%s: terminal closed (%s)", dev->name, why);
		if (pty_hup(dev))
			pty_raw(dev);   /* whatever the last user left, the next finds raw */
	}
	update_watches(dev);
	resume_later(dev);      /* a half-written chain goes on into the backlog */
}

static void attach(struct console_dev *dev)
{
	dev->attached = true;
	dev->in_eof = false;
	dev->tx_blocked = false;
	dev->stats.clients++;
	dev->rx_want = true;
	tx_pump(dev);           /* the backlog first */
	rx_pump(dev);
	update_watches(dev);
}

static void pty_check(struct console_dev *dev)
{
	bool hup = pty_hup(dev);
	if (dev->attached && hup) {
		detach(dev, "hang-up");
	} else if (!dev->attached && !hup) {
		log_debug("%s: terminal opened", dev->name);
		attach(dev);
	}
	winsize_check(dev);
}

/* The peer of a socket went away or stopped sending. */
static bool client_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP));
}

static void input_ended(struct console_dev *dev, int err)
{
	switch (dev->p.endpoint) {
	case CONSOLE_SOCKET:
	case CONSOLE_PTY:
		detach(dev, err ? strerror(err) : "end of input");
		break;
	case CONSOLE_STDIO:
		if (!dev->in_eof)
			log_info("%s: stdin %s; console input ends", dev->name,
				 err ? strerror(err) : "closed");
		dev->in_eof = true;
		break;
	case CONSOLE_LOG:
		break;
	}
}

static void output_error(struct console_dev *dev, int err)
{
	if (dev->p.endpoint == CONSOLE_SOCKET || dev->p.endpoint == CONSOLE_PTY) {
		detach(dev, strerror(err));
		return;
	}
	if (dev->logged_errors++ < MAX_LOGGED_ERRORS)
		log_err("%s: writing console output to %s: %s; output dropped", dev->name,
			dev->p.endpoint == CONSOLE_LOG ? dev->path : "stdout", strerror(err));
}

/* ---- backlog ---------------------------------------------------------- */

static void bl_consume(struct console_dev *dev, size_t n)
{
	dev->bl_head = (dev->bl_head + n) % dev->bl_cap;
	dev->bl_len -= n;
	if (!dev->bl_len)
		dev->bl_head = 0;
	dev->stats.backlog_bytes = dev->bl_len;
}

/* Append len bytes; the oldest ones give way when it is full. */
static void bl_append(struct console_dev *dev, const uint8_t *src, size_t len)
{
	if (len >= dev->bl_cap) {
		dev->stats.dropped_backlog += dev->bl_len + (len - dev->bl_cap);
		src += len - dev->bl_cap;
		len = dev->bl_cap;
		dev->bl_head = dev->bl_len = 0;
	} else if (dev->bl_len + len > dev->bl_cap) {
		size_t over = dev->bl_len + len - dev->bl_cap;
		dev->stats.dropped_backlog += over;
		bl_consume(dev, over);
	}
	while (len) {
		size_t tail = (dev->bl_head + dev->bl_len) % dev->bl_cap;
		size_t n = min_sz(len, dev->bl_cap - tail);
		memcpy(dev->bl + tail, src, n);
		dev->bl_len += n;
		src += n;
		len -= n;
	}
	dev->stats.backlog_bytes = dev->bl_len;
}

static ssize_t out_writev(struct console_dev *dev, const struct iovec *iov, unsigned n)
{
	if (dev->out_sock) {
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
		return sendmsg(dev->out_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	return writev(dev->out_fd, iov, (int)n);
}

static ssize_t in_readv(struct console_dev *dev, struct iovec *iov, unsigned n)
{
	if (dev->in_sock) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
		return recvmsg(dev->in_fd, &mh, MSG_DONTWAIT);
	}
	return readv(dev->in_fd, iov, (int)n);
}

/* The endpoint is full.  A pty whose reader left keeps taking bytes for a
 * while, then says EAGAIN: that is a hang-up, not backpressure.  Returns
 * true when it really has to drain. */
static bool really_full(struct console_dev *dev)
{
	if (dev->p.endpoint == CONSOLE_PTY && pty_hup(dev)) {
		detach(dev, "hang-up");
		return false;
	}
	return true;
}

/* Write the backlog out: 0 when empty, -EAGAIN when the endpoint is full,
 * -EPIPE when the endpoint went away (detached now). */
static int bl_drain(struct console_dev *dev)
{
	while (dev->bl_len) {
		struct iovec v[2];
		size_t first = min_sz(dev->bl_len, dev->bl_cap - dev->bl_head);
		unsigned n = 1;
		v[0] = (struct iovec){ dev->bl + dev->bl_head, first };
		if (first < dev->bl_len)
			v[n++] = (struct iovec){ dev->bl, dev->bl_len - first };
		ssize_t r = out_writev(dev, v, n);
		if (r > 0) {
			bl_consume(dev, (size_t)r);
			continue;
		}
		int err = r == 0 ? EIO : errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN && really_full(dev))
			return -EAGAIN;
		if (err != EAGAIN)
			output_error(dev, err);
		if (!output_live(dev))
			return -EPIPE;
	}
	return 0;
}

/* ---- transmit: cell -> endpoint -------------------------------------- */

/* Output for nobody: the backlog takes the current buffer (the caller's
 * loop goes on with the next, within its budget); without a backlog the
 * rest of the chain is dropped and counted. */
static void tx_divert(struct console_dev *dev)
{
	if (has_backlog(dev)) {
		struct iovec *v = &dev->tx_iov[dev->tx_pos++];
		bl_append(dev, v->iov_base, v->iov_len);
		dev->stats.tx_bytes += v->iov_len;
		return;
	}
	uint64_t rest = 0;
	for (unsigned i = dev->tx_pos; i < dev->tx_e.n_out; i++)
		rest += dev->tx_iov[i].iov_len;
	dev->stats.dropped_error += rest;
	dev->stats.tx_bytes += rest;
	dev->tx_pos = dev->tx_e.n_out;
}

/* Write the held chain out.  0 when it is consumed, -EAGAIN when the
 * endpoint has to drain first (the chain stays held, nothing is lost),
 * -EINPROGRESS when this wakeup's byte budget is spent (a chain may repeat
 * one buffer a thousand times: a log file must not take the loop for long). */
static int tx_deliver(struct console_dev *dev, uint64_t bytes0)
{
	struct iovec *iov = dev->tx_iov;
	unsigned n = dev->tx_e.n_out;   /* device-writable buffers are not ours to read */
	while (dev->tx_pos < n) {
		if (dev->stats.tx_bytes - bytes0 >= BYTES_BUDGET)
			return -EINPROGRESS;
		if (iov[dev->tx_pos].iov_len == 0) {
			dev->tx_pos++;
			continue;
		}
		if (!output_live(dev)) {
			tx_divert(dev);
			continue;
		}
		unsigned cnt = n - dev->tx_pos;
		if (cnt > IOV_MAX)
			cnt = IOV_MAX;
		ssize_t r = out_writev(dev, iov + dev->tx_pos, cnt);
		if (r > 0) {
			size_t done = (size_t)r;
			dev->stats.tx_bytes += done;
			while (done) {
				struct iovec *v = &iov[dev->tx_pos];
				size_t k = min_sz(done, v->iov_len);
				v->iov_base = (uint8_t *)v->iov_base + k;
				v->iov_len -= k;
				done -= k;
				if (!v->iov_len)
					dev->tx_pos++;
			}
			continue;
		}
		int err = r == 0 ? EIO : errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN && dev->out_w) {
			if (really_full(dev))
				return -EAGAIN;
			continue;       /* hung up: on into the backlog */
		}
		output_error(dev, err);
		if (output_live(dev) && !has_backlog(dev))
			tx_divert(dev); /* log, stdio: this chain's rest is lost */
	}
	return 0;
}

static void tx_irq_cb(uv_timer_t *t)
{
	struct console_dev *dev = t->data;
	vdev_interrupt_used(&dev->vdev, VCON_TX_QUEUE);
}

static void tx_pump(struct console_dev *dev)
{
	unsigned chains = 0;
	uint64_t bytes0 = dev->stats.tx_bytes;
	bool pushed = false;
	if (dev->closing || dev->tx_blocked)
		return;
	/* A terminal opened just now gets this output live, not via the
	 * backlog (whose size the burst might exceed): one poll() per call. */
	if (dev->p.endpoint == CONSOLE_PTY && !dev->attached && !pty_hup(dev)) {
		pty_check(dev);     /* attaches, and pumps from there */
		return;
	}
	for (;;) {
		if (output_live(dev) && dev->bl_len) {
			if (bl_drain(dev) == -EAGAIN) {
				dev->tx_blocked = true;
				break;
			}
			continue;
		}
		struct vq *vq = vdev_vq(&dev->vdev, VCON_TX_QUEUE);
		if (!vq)
			break;
		if (!dev->tx_held) {
			if (chains >= dev->p.queue_size ||
			    dev->stats.tx_bytes - bytes0 >= BYTES_BUDGET) {
				resume_later(dev);
				break;
			}
			int r = vq_pop(vq, &dev->tx_e, dev->tx_iov, dev->iov_cap);
			if (r < 0) {
				vdev_fail(&dev->vdev, VCON_TX_QUEUE, r);
				break;
			}
			if (r == 0) {
				if (vq_enable_notify(vq))
					continue;
				break;
			}
			dev->tx_held = true;
			dev->tx_pos = 0;
			chains++;
		}
		int r = tx_deliver(dev, bytes0);
		if (r == -EAGAIN) {
			dev->tx_blocked = true;
			break;
		}
		if (r == -EINPROGRESS) {
			resume_later(dev);
			break;
		}
		vq_push(vq, dev->tx_e.head, 0);
		dev->tx_held = false;
		pushed = true;
	}
	if (pushed) {
		/* hvc spins for its buffer to be used and takes it itself: an
		 * interrupt sent now would find nothing (Linux disables an IRQ
		 * after 100,000 such).  Decide a little later, when a polling
		 * driver has moved used_event on and wants none. */
		vdev_publish_used(&dev->vdev, VCON_TX_QUEUE);
		if (!uv_is_active((uv_handle_t *)&dev->tx_irq))
			uv_timer_start(&dev->tx_irq, tx_irq_cb, TX_IRQ_DELAY_MS, 0);
	}
	update_watches(dev);
}

/* ---- receive: endpoint -> cell --------------------------------------- */

static void rx_pump(struct console_dev *dev)
{
	unsigned chains = 0;
	uint64_t bytes = 0;
	bool pushed = false;
	if (dev->closing)
		return;
	while (input_live(dev) && dev->rx_want) {
		struct vq *vq = vdev_vq(&dev->vdev, VCON_RX_QUEUE);
		if (!vq) {
			dev->rx_want = false;
			break;
		}
		if (!dev->rx_held) {
			/* Out of budget: the level-triggered poll brings us back. */
			if (chains >= dev->p.queue_size || bytes >= BYTES_BUDGET)
				break;
			int r = vq_pop(vq, &dev->rx_e, dev->rx_iov, dev->iov_cap);
			if (r < 0) {
				vdev_fail(&dev->vdev, VCON_RX_QUEUE, r);
				dev->rx_want = false;
				break;
			}
			if (r == 0) {
				if (vq_enable_notify(vq))
					continue;
				dev->rx_want = false;   /* until the driver kicks queue 0 */
				break;
			}
			chains++;
			if (dev->rx_e.in_bytes == 0) {
				/* Nothing we could fill: hand it back empty. */
				vq_push(vq, dev->rx_e.head, 0);
				pushed = true;
				continue;
			}
			dev->rx_held = true;
		}
		unsigned cnt = dev->rx_e.n_in;
		if (cnt > IOV_MAX)
			cnt = IOV_MAX;
		ssize_t r = in_readv(dev, dev->rx_iov + dev->rx_e.n_out, cnt);
		if (r > 0) {
			vq_push(vq, dev->rx_e.head, (uint32_t)r);
			dev->rx_held = false;
			pushed = true;
			bytes += (uint64_t)r;
			dev->stats.rx_bytes += (uint64_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;      /* keep the chain for the next input */
		input_ended(dev, r < 0 ? errno : 0);
	}
	if (pushed)
		vdev_flush_used(&dev->vdev, VCON_RX_QUEUE);
	if (dev->p.endpoint == CONSOLE_PTY && bytes)
		winsize_check(dev);
	update_watches(dev);
}

/* ---- loop callbacks --------------------------------------------------- */

static void watch_cb(uv_poll_t *h, int status, int events)
{
	struct con_watch *w = h->data;
	struct console_dev *dev = w->dev;
	if (status < 0) {
		/* POLLERR; libuv stopped the poll.  A socket client is done; a
		 * pipe's write end says so when its reader left (writes then
		 * fail and drop, they never wait again). */
		w->events = 0;
		if (dev->p.endpoint == CONSOLE_SOCKET) {
			/* Take what the client sent before it went (if the cell
			 * has buffers for it), then let it go. */
			rx_pump(dev);
			detach(dev, "connection error or hang-up");
			return;
		}
		if (w == dev->in_w)
			input_ended(dev, -status);
		events = w == dev->out_w ? UV_WRITABLE : 0;
	}
	if ((events & UV_WRITABLE) && w == dev->out_w) {
		dev->tx_blocked = false;
		tx_pump(dev);
	}
	if ((events & UV_READABLE) && w == dev->in_w)
		rx_pump(dev);
	update_watches(dev);
}

static void accept_cb(uv_poll_t *h, int status, int events)
{
	struct console_dev *dev = ((struct con_watch *)h->data)->dev;
	for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
		int fd = accept4(dev->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN) {
				log_err("%s: accepting on %s: %s", dev->name, dev->path,
					strerror(errno));
				/* Out of fds: the listener would fire forever;
				 * the timer retries. */
				watch_set(dev->listen_w, 0, accept_cb);
				dev->listen_paused = true;
			}
			return;
		}
		if (dev->attached && !client_gone(dev->in_fd)) {
			log_info("%s: a second client was turned away (one at a time)", dev->name);
			dev->stats.refused++;
			close(fd);
			continue;
		}
		if (dev->attached)
			detach(dev, "hung up");
		int err = 0;
		struct con_watch *w = watch_new(dev, fd, &err);
		if (!w) {
			log_err("%s: cannot watch a client: %s", dev->name, strerror(-err));
			close(fd);
			continue;
		}
		dev->in_w = dev->out_w = w;
		dev->in_fd = dev->out_fd = fd;
		log_info("%s: client connected on %s%s", dev->name, dev->path,
			 dev->bl_len ? ", replaying the backlog" : "");
		attach(dev);
	}
}

static void inotify_cb(uv_poll_t *h, int status, int events)
{
	struct console_dev *dev = ((struct con_watch *)h->data)->dev;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (int i = 0; i < 16 && read(dev->ino_w->fd, buf, sizeof(buf)) > 0; i++)
		;
	pty_check(dev);
}

static void timer_cb(uv_timer_t *t)
{
	struct console_dev *dev = t->data;
	switch (dev->p.endpoint) {
	case CONSOLE_PTY:
		pty_check(dev);
		break;
	case CONSOLE_SOCKET:
		if (dev->listen_paused) {
			dev->listen_paused = false;
			watch_set(dev->listen_w, UV_READABLE, accept_cb);
		}
		/* A client that left while we were not reading: only once its
		 * last bytes are taken (or nobody would ever take them). */
		if (dev->attached && client_gone(dev->in_fd)) {
			int pending = 0;
			if (ioctl(dev->in_fd, FIONREAD, &pending) < 0 || pending == 0)
				detach(dev, "hung up");
		}
		break;
	case CONSOLE_STDIO:
		winsize_check(dev);
		break;
	case CONSOLE_LOG:
		break;
	}
}

/* ---- vdev backend ops ------------------------------------------------- */

static uint64_t con_features(void *be)
{
	return VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE);
}

static void put16(uint8_t *b, unsigned off, uint16_t v) { v = htole16(v); memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, unsigned off, uint32_t v) { v = htole32(v); memcpy(b + off, &v, 4); }

static void con_get_config(void *be, uint8_t *cfg)
{
	struct console_dev *dev = be;
	put16(cfg, VCON_CFG_COLS, dev->cols);
	put16(cfg, VCON_CFG_ROWS, dev->rows);
	put32(cfg, VCON_CFG_MAX_NR_PORTS, 1);
	put32(cfg, VCON_CFG_EMERG_WR, 0);
}

static void con_driver_ok(void *be)
{
	struct console_dev *dev = be;
	winsize_check(dev);
	dev->rx_want = true;
	rx_pump(dev);
	tx_pump(dev);
}

static void con_queue_notify(void *be, unsigned q)
{
	struct console_dev *dev = be;
	if (q == VCON_RX_QUEUE) {
		dev->rx_want = true;
		rx_pump(dev);
	} else if (q == VCON_TX_QUEUE) {
		tx_pump(dev);
	}
}

static void drop_chain(struct console_dev *dev, unsigned q)
{
	if (q == VCON_RX_QUEUE) {
		dev->rx_held = false;
		dev->rx_want = false;
	} else if (q == VCON_TX_QUEUE) {
		dev->tx_held = false;
		dev->tx_pos = 0;
	}
}

/* Nothing is ever asynchronous here: reads and writes finish before the
 * callback returns.  A popped chain may wait for the endpoint, though, and
 * must not outlive its ring: reset() and queue_disabled() drop it. */
static unsigned con_inflight(void *be)
{
	(void)be;
	return 0;
}

static void con_queue_disabled(void *be, unsigned q)
{
	struct console_dev *dev = be;
	drop_chain(dev, q);
	update_watches(dev);
}

static void con_reset(void *be)
{
	struct console_dev *dev = be;
	drop_chain(dev, VCON_RX_QUEUE);
	drop_chain(dev, VCON_TX_QUEUE);
	/* tx_blocked stays: it is the endpoint's state, and a backlog may still
	 * be draining into it. */
	update_watches(dev);
}

static const struct vdev_backend_ops con_ops = {
	.queue_disabled = con_queue_disabled,
	.features = con_features,
	.get_config = con_get_config,
	.driver_ok = con_driver_ok,
	.queue_notify = con_queue_notify,
	.inflight = con_inflight,
	.reset = con_reset,
};

/* ---- endpoints -------------------------------------------------------- */

/* Replace path by a symlink to target, atomically; refuses to replace
 * anything but a symlink. */
static int make_symlink(const char *target, const char *path, char *err, size_t err_len)
{
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode)) {
		snprintf(err, err_len, "%s exists and is not a symlink; not replacing it", path);
		return -EEXIST;
	}
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		snprintf(err, err_len, "cannot create the symlink %s -> %s: %s", path, target,
			 strerror(e));
		return -e;
	}
	return 0;
}

static int open_pty(struct console_dev *dev, char *err, size_t err_len)
{
	dev->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (dev->master < 0 || grantpt(dev->master) < 0 || unlockpt(dev->master) < 0 ||
	    ptsname_r(dev->master, dev->pts, sizeof(dev->pts)) != 0) {
		int e = errno;
		snprintf(err, err_len, "cannot create a pty: %s", strerror(e));
		return -e;
	}
	pty_raw(dev);
	struct winsize ws = { .ws_row = dev->rows, .ws_col = dev->cols };
	ioctl(dev->master, TIOCSWINSZ, &ws);
	/* Open and close the slave once: from then on the master reports
	 * POLLHUP exactly while nobody has the slave open. */
	int s = open(dev->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot open the pty slave %s: %s", dev->pts, strerror(e));
		return -e;
	}
	close(s);
	int r = make_symlink(dev->pts, dev->path, err, err_len);
	if (r < 0)
		return r;
	dev->symlink_made = true;
	struct con_watch *w = watch_new(dev, dev->master, &r);
	if (!w) {
		snprintf(err, err_len, "cannot watch the pty: %s", strerror(-r));
		return r;
	}
	dev->in_w = dev->out_w = w;
	dev->in_fd = dev->out_fd = dev->master;
	dev->winsz_fd = dev->master;
	/* Opens and closes of the slave, at once; the timer is the fallback. */
	int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino >= 0 && inotify_add_watch(ino, dev->pts, IN_OPEN | IN_CLOSE) >= 0 &&
	    (dev->ino_w = watch_new(dev, ino, &r)) != NULL) {
		watch_set(dev->ino_w, UV_READABLE, inotify_cb);
	} else if (ino >= 0) {
		close(ino);
	}
	dev->attached = false;
	return 0;
}

static int open_socket(struct console_dev *dev, char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(dev->path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_len, "socket path %s is too long (at most %zu bytes)", dev->path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, dev->path, strlen(dev->path) + 1);
	struct stat st;
	if (lstat(dev->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "%s exists and is not a socket", dev->path);
			return -EEXIST;
		}
		/* Somebody's live socket, or a stale one from a crash? */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int r = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		if (probe >= 0)
			close(probe);
		if (r == 0) {
			snprintf(err, err_len, "%s is in use by another process", dev->path);
			return -EADDRINUSE;
		}
		if (e == ECONNREFUSED)
			unlink(dev->path);
	}
	dev->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (dev->listen_fd < 0 || bind(dev->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot listen on %s: %s", dev->path, strerror(e));
		return -e;
	}
	/* The console of a cell is a root shell's worth: owner only. */
	if (chmod(dev->path, 0600) < 0 || listen(dev->listen_fd, 4) < 0 ||
	    stat(dev->path, &st) < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot listen on %s: %s", dev->path, strerror(e));
		unlink(dev->path);
		return -e;
	}
	dev->sock_dev = st.st_dev;
	dev->sock_ino = st.st_ino;
	dev->in_sock = dev->out_sock = true;
	int r;
	dev->listen_w = watch_new(dev, dev->listen_fd, &r);
	if (!dev->listen_w) {
		snprintf(err, err_len, "cannot watch %s: %s", dev->path, strerror(-r));
		return r;
	}
	watch_set(dev->listen_w, UV_READABLE, accept_cb);
	dev->attached = false;
	return 0;
}

static int open_log_fd(const char *path)
{
	/* O_NONBLOCK: a fifo or terminal given as "log" must not stall the loop
	 * (EAGAIN drops); regular files ignore it. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		      0640);
	return fd < 0 ? -errno : fd;
}

static int open_log(struct console_dev *dev, char *err, size_t err_len)
{
	int fd = open_log_fd(dev->path);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open log %s: %s", dev->path, strerror(-fd));
		return fd;
	}
	dev->out_fd = fd;
	dev->attached = true;
	return 0;
}

/* A descriptor of our own for stdin/stdout.  Terminals and pipes are opened
 * again through /proc, so O_NONBLOCK stays private to us.  Anything else is
 * dup'ed: a socket (journald) is then used with MSG_DONTWAIT and its shared
 * description stays blocking for the daemon's own log lines. */
static int stdio_fd(struct console_dev *dev, int fd, int acc, unsigned slot)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		int nfd = open(p, acc | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0)
			return nfd;
	}
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		/* uv_poll_init makes it non-blocking: undone right after. */
		dev->restore_fd[slot] = nfd;
		dev->restore_fl[slot] = fcntl(nfd, F_GETFL);
	}
	if (S_ISSOCK(st.st_mode)) {
		if (slot == 0)
			dev->in_sock = true;
		else
			dev->out_sock = true;
	}
	return nfd;
}

static void restore_flags(struct console_dev *dev, unsigned slot)
{
	if (dev->restore_fd[slot] >= 0 && dev->restore_fl[slot] >= 0)
		fcntl(dev->restore_fd[slot], F_SETFL, dev->restore_fl[slot]);
}

static int open_stdio(struct console_dev *dev, char *err, size_t err_len)
{
	int r;
	int fd = stdio_fd(dev, STDIN_FILENO, O_RDONLY, 0);
	if (fd >= 0) {
		dev->in_fd = fd;
		dev->in_w = watch_new(dev, fd, &r);
		if (!dev->in_w)
			log_info("%s: stdin cannot be polled (%s); the console has no input",
				 dev->name, strerror(-r));
		restore_flags(dev, 0);
	}
	fd = stdio_fd(dev, STDOUT_FILENO, O_WRONLY, 1);
	if (fd < 0) {
		snprintf(err, err_len, "no usable stdout: %s", strerror(-fd));
		return fd;
	}
	dev->out_fd = fd;
	dev->out_w = watch_new(dev, fd, &r);
	restore_flags(dev, 1);
	struct stat st;
	if (!dev->out_w && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* /dev/null and the like, opened again by us: blocking writes. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	if (dev->in_fd >= 0 && isatty(dev->in_fd) && tcgetattr(dev->in_fd, &dev->saved_tio) == 0) {
		struct termios tio = dev->saved_tio;
		cfmakeraw(&tio);
		/* Keep output processing: the daemon's own log lines share the
		 * terminal and need their carriage returns. */
		tio.c_oflag = dev->saved_tio.c_oflag;
		if (tcsetattr(dev->in_fd, TCSANOW, &tio) == 0)
			dev->tty_fd = dev->in_fd;
	}
	if (isatty(dev->out_fd))
		dev->winsz_fd = dev->out_fd;
	else if (dev->in_fd >= 0 && isatty(dev->in_fd))
		dev->winsz_fd = dev->in_fd;
	dev->attached = true;
	return 0;
}

/* ---- public ----------------------------------------------------------- */

static bool console_fits(uint64_t rw_size, unsigned n)
{
	struct dma_pool pool;
	if (dma_pool_init(&pool, rw_size, vdev_header_size(VCON_CFG_SIZE)) < 0)
		return false;
	bool ok = dma_pool_alloc(&pool, dma_vring_bytes(n)) != DMA_POOL_FULL &&
		  dma_pool_alloc(&pool, dma_vring_bytes(n)) != DMA_POOL_FULL;
	for (unsigned i = 0; ok && i <= n; i++)     /* n receive buffers, one to transmit */
		ok = dma_pool_alloc(&pool, DMA_POOL_PAGE) != DMA_POOL_FULL;
	dma_pool_destroy(&pool);
	return ok;
}

uint16_t console_queue_fit(uint64_t rw_size, uint16_t max)
{
	for (unsigned n = max; n >= 1; n /= 2)
		if (!(n & (n - 1)) && console_fits(rw_size, n))
			return (uint16_t)n;
	return 0;
}

int console_queue_size(uint64_t rw_size, uint16_t want, uint16_t *out, char *why, size_t why_len)
{
	uint16_t fit = console_queue_fit(rw_size, want ? want : CONSOLE_AUTO_QUEUE_MAX);
	if (!fit) {
		snprintf(why, why_len, "the link's R/W section (%llu KiB) is too small for a console: "
			 "the cell's driver takes two rings, a 4 KiB buffer per receive queue entry "
			 "and one to transmit from it", (unsigned long long)(rw_size >> 10));
		return -ENOSPC;
	}
	if (want && fit < want) {
		snprintf(why, why_len, "queue-size %u does not fit the link's R/W section (%llu KiB): "
			 "the cell's driver fills the whole receive queue with 4 KiB buffers from it, "
			 "and at most %u fit with the rings and a buffer to transmit; leave queue-size "
			 "out to get the largest that fits, or give the link more memory", want,
			 (unsigned long long)(rw_size >> 10), fit);
		return -ENOSPC;
	}
	*out = fit;
	return 0;
}

int console_open(const struct console_params *params, struct ivshm_port *port, uv_loop_t *loop,
		 struct console_dev **ret, char *err, size_t err_len)
{
	uint16_t qs = params->queue_size;
	if (qs & (qs - 1)) {
		snprintf(err, err_len, "queue size %u is not a power of two", qs);
		return -EINVAL;
	}
	int r = console_queue_size(port->rw_size, qs, &qs, err, err_len);
	if (r < 0)
		return r;
	if (params->endpoint != CONSOLE_STDIO && (!params->path || !params->path[0])) {
		snprintf(err, err_len, "no path for the endpoint");
		return -EINVAL;
	}
	struct console_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->p = *params;
	dev->p.queue_size = qs;
	snprintf(dev->name, sizeof(dev->name), "%s", params->name ? params->name : "console");
	snprintf(dev->path, sizeof(dev->path), "%s", params->path ? params->path : "");
	dev->p.name = dev->name;
	dev->p.path = dev->path;
	dev->loop = loop;
	dev->in_fd = dev->out_fd = dev->master = dev->listen_fd = -1;
	dev->tty_fd = dev->winsz_fd = -1;
	dev->restore_fd[0] = dev->restore_fd[1] = -1;
	dev->cols = params->cols ? params->cols : 80;
	dev->rows = params->rows ? params->rows : 25;
	/* A chain has at most queue_size direct or VQ_MAX_INDIRECT indirect buffers. */
	dev->iov_cap = qs > VQ_MAX_INDIRECT ? qs : VQ_MAX_INDIRECT;
	dev->rx_iov = calloc(dev->iov_cap, sizeof(*dev->rx_iov));
	dev->tx_iov = calloc(dev->iov_cap, sizeof(*dev->tx_iov));
	if (has_backlog(dev) && params->backlog) {
		dev->bl_cap = params->backlog;
		dev->bl = malloc(dev->bl_cap);
	}
	if (!dev->rx_iov || !dev->tx_iov || (dev->bl_cap && !dev->bl)) {
		free_dev(dev);
		return -ENOMEM;
	}
	/* vdev first: reset() may run from here on and looks at it. */
	r = vdev_init(&dev->vdev, dev->name, port, VIRTIO_ID_CONSOLE, &con_ops, dev,
			  VCON_CFG_SIZE, 2, qs);
	if (r < 0) {
		snprintf(err, err_len, "link %s is too small for the device header", port->name);
		free_dev(dev);
		return r;
	}
	uv_timer_init(loop, &dev->timer);
	dev->timer.data = dev;
	uv_timer_init(loop, &dev->tx_irq);
	dev->tx_irq.data = dev;
	uv_idle_init(loop, &dev->resume);
	dev->resume.data = dev;
	dev->handles += 3;
	switch (params->endpoint) {
	case CONSOLE_PTY:
		r = open_pty(dev, err, err_len);
		break;
	case CONSOLE_SOCKET:
		r = open_socket(dev, err, err_len);
		break;
	case CONSOLE_LOG:
		r = open_log(dev, err, err_len);
		break;
	case CONSOLE_STDIO:
		r = open_stdio(dev, err, err_len);
		break;
	default:
		snprintf(err, err_len, "unknown endpoint %d", (int)params->endpoint);
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		console_close(dev);
		return r;
	}
	if (params->endpoint == CONSOLE_PTY || params->endpoint == CONSOLE_SOCKET ||
	    dev->winsz_fd >= 0)
		uv_timer_start(&dev->timer, timer_cb, CHECK_MS, CHECK_MS);
	winsize_check(dev);
	*ret = dev;
	return 0;
}

struct vdev *console_vdev(struct console_dev *dev)
{
	return &dev->vdev;
}

const struct console_stats *console_stats(const struct console_dev *dev)
{
	return &dev->stats;
}

bool console_attached(const struct console_dev *dev)
{
	return dev->attached;
}

int console_reopen(struct console_dev *dev)
{
	if (!dev || dev->p.endpoint != CONSOLE_LOG)
		return 0;
	int fd = open_log_fd(dev->path);
	if (fd < 0) {
		log_err("%s: cannot reopen log %s: %s; still writing to the old file", dev->name,
			dev->path, strerror(-fd));
		return fd;
	}
	close(dev->out_fd);
	dev->out_fd = fd;
	dev->logged_errors = 0;
	return 0;
}

void console_close(struct console_dev *dev)
{
	if (!dev)
		return;
	dev->closing = true;
	if (dev->tty_fd >= 0)
		tcsetattr(dev->tty_fd, TCSANOW, &dev->saved_tio);
	/* Watches first (each closes the fd it watches where that fd is private
	 * to it), then the fds nobody watches. */
	struct con_watch *in_w = dev->in_w, *out_w = dev->out_w;
	switch (dev->p.endpoint) {
	case CONSOLE_PTY:
		watch_close(in_w, false);
		watch_close(dev->ino_w, true);
		if (dev->master >= 0)
			close(dev->master);
		if (dev->symlink_made) {
			char target[sizeof(dev->pts)];
			ssize_t n = readlink(dev->path, target, sizeof(target) - 1);
			if (n > 0) {
				target[n] = '\0';
				if (strcmp(target, dev->pts) == 0)
					unlink(dev->path);
			}
		}
		break;
	case CONSOLE_SOCKET:
		watch_close(in_w, true);    /* the client */
		watch_close(dev->listen_w, false);
		if (dev->listen_fd >= 0) {
			close(dev->listen_fd);
			struct stat st;
			if (dev->sock_ino && stat(dev->path, &st) == 0 &&
			    st.st_dev == dev->sock_dev && st.st_ino == dev->sock_ino)
				unlink(dev->path);
		}
		break;
	case CONSOLE_LOG:
		if (dev->out_fd >= 0)
			close(dev->out_fd);
		break;
	case CONSOLE_STDIO:
		watch_close(in_w, false);
		watch_close(out_w, false);
		if (dev->in_fd >= 0)
			close(dev->in_fd);
		if (dev->out_fd >= 0)
			close(dev->out_fd);
		break;
	}
	dev->in_w = dev->out_w = dev->ino_w = dev->listen_w = NULL;
	dev->in_fd = dev->out_fd = -1;
	if (dev->stats.dropped_backlog || dev->stats.dropped_error)
		log_info("%s: %llu byte(s) of output dropped (backlog overflow %llu, write errors "
			 "%llu)", dev->name, (unsigned long long)(dev->stats.dropped_backlog +
								  dev->stats.dropped_error),
			 (unsigned long long)dev->stats.dropped_backlog,
			 (unsigned long long)dev->stats.dropped_error);
	uv_close((uv_handle_t *)&dev->timer, plain_closed);
	uv_close((uv_handle_t *)&dev->tx_irq, plain_closed);
	uv_close((uv_handle_t *)&dev->resume, plain_closed);
	vdev_destroy(&dev->vdev);
}
