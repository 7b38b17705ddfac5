/* virtio-console: the device, its two queues and the backlog (see
 * console.h); the endpoint kinds live in console_{pty,socket,log,stdio}.c. */
#include "backends/console_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/dma_pool.h"
#include "core/le.h"
#include "core/log.h"
#include "core/virtio_ivshmem.h"

#define BYTES_BUDGET        (4u << 20)      /* per wakeup and direction */

static void bl_set(struct console_dev *dev, size_t head, size_t len);

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- handles ---------------------------------------------------------- */

static void free_dev(struct console_dev *dev)
{
	if (dev->blh)
		munmap(dev->blh, sizeof(*dev->blh) + dev->bl_cap);
	if (dev->bl_fd >= 0)
		close(dev->bl_fd);
	free(dev);
}

/* The backlog lives in a memfd (header, then bytes), so it can be handed
 * to a new process.  fd < 0: a new one. */
static int backlog_map(struct console_dev *dev, int fd, size_t cap)
{
	size_t size = sizeof(*dev->blh) + cap;
	if (fd < 0) {
		fd = memfd_create("console-backlog", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			int e = -errno;
			if (fd >= 0)
				close(fd);
			return e;
		}
	} else {
		struct stat st;
		if (fstat(fd, &st) < 0 || (size_t)st.st_size != size) {
			close(fd);
			return -EBADMSG;
		}
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	dev->bl_fd = fd;
	dev->blh = p;
	dev->bl = (uint8_t *)p + sizeof(*dev->blh);
	dev->bl_cap = cap;
	/* What a previous process left is checked before it is used. */
	if (dev->blh->cap != cap || bl_head(dev) >= cap || bl_len(dev) > cap) {
		dev->blh->cap = cap;
		bl_set(dev, 0, 0);
	}
	dev->stats.backlog_bytes = bl_len(dev);
	return 0;
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

/* A watch on fd; NULL with *err set when fd cannot be polled (a regular
 * file, /dev/null) or memory is short.  Note: libuv makes fd non-blocking. */
struct con_watch *con_watch_new(struct console_dev *dev, int fd, int *err)
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
void con_watch_close(struct con_watch *w, bool close_fd)
{
	if (!w)
		return;
	uv_close((uv_handle_t *)&w->poll, watch_closed);
	if (close_fd)
		close(w->fd);
}

void con_watch_set(struct con_watch *w, int events, uv_poll_cb cb)
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
	console_tx_pump(dev);
	console_rx_pump(dev);
}

static void resume_later(struct console_dev *dev)
{
	if (!dev->closing)
		uv_idle_start(&dev->resume, resume_cb);
}

/* ---- endpoint state --------------------------------------------------- */

static bool output_live(const struct console_dev *dev)
{
	return dev->attached && dev->out_fd >= 0;
}

static bool input_live(const struct console_dev *dev)
{
	return dev->attached && dev->in_fd >= 0 && dev->in_w && !dev->in_eof;
}

static void watch_cb(uv_poll_t *h, int status, int events);

void console_update_watches(struct console_dev *dev)
{
	if (dev->closing)
		return;
	int in_ev = input_live(dev) && dev->rx_head ? UV_READABLE : 0;
	int out_ev = output_live(dev) && dev->tx_blocked ? UV_WRITABLE : 0;
	if (dev->in_w && dev->in_w == dev->out_w) {
		con_watch_set(dev->in_w, in_ev | out_ev, watch_cb);
	} else {
		con_watch_set(dev->in_w, in_ev, watch_cb);
		con_watch_set(dev->out_w, out_ev, watch_cb);
	}
}

void console_winsize_check(struct console_dev *dev)
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

void console_detach(struct console_dev *dev, const char *why)
{
	if (!dev->attached)
		return;
	dev->attached = false;
	dev->tx_blocked = false;
	dev->generation++;
	log_info("%s: %s left (%s)%s", dev->name, dev->ep->name, why,
		 dev->ep->backlog ? "; output goes to the backlog" : "");
	if (dev->ep->detached)
		dev->ep->detached(dev);
	console_update_watches(dev);
	resume_later(dev);      /* a half-written request goes on into the backlog */
}

void console_attach(struct console_dev *dev)
{
	dev->attached = true;
	dev->generation++;
	dev->in_eof = false;
	dev->tx_blocked = false;
	dev->stats.clients++;
	console_tx_pump(dev);   /* the backlog first */
	console_rx_pump(dev);
	console_update_watches(dev);
}

static void input_ended(struct console_dev *dev, int err)
{
	if (dev->ep->input_ended)
		dev->ep->input_ended(dev, err);
}

static void output_error(struct console_dev *dev, int err)
{
	if (dev->ep->output_error) {
		dev->ep->output_error(dev, err);
		return;
	}
	if (dev->logged_errors++ < MAX_LOGGED_ERRORS)
		log_err("%s: writing console output to %s: %s; output dropped", dev->name,
			dev->path[0] ? dev->path : dev->ep->name, strerror(err));
}

static bool really_full(struct console_dev *dev)
{
	return dev->ep->really_full ? dev->ep->really_full(dev) : true;
}

/* ---- backlog ---------------------------------------------------------- */

/* The release store orders the bytes written before it (bl_append) ahead
 * of the header that makes them part of the backlog. */
static void bl_set(struct console_dev *dev, size_t head, size_t len)
{
	__atomic_store_n(&dev->blh->pos, (uint64_t)head | (uint64_t)len << 32, __ATOMIC_RELEASE);
	dev->stats.backlog_bytes = len;
}

static void bl_consume(struct console_dev *dev, size_t n)
{
	size_t head = bl_head(dev), len = bl_len(dev) - n;
	bl_set(dev, len ? (head + n) % dev->bl_cap : 0, len);
}

/* Append len bytes; the oldest ones give way when it is full. */
static void bl_append(struct console_dev *dev, const uint8_t *src, size_t len)
{
	if (len >= dev->bl_cap) {
		dev->stats.dropped_backlog += bl_len(dev) + (len - dev->bl_cap);
		src += len - dev->bl_cap;
		len = dev->bl_cap;
		bl_set(dev, 0, 0);
	} else if (bl_len(dev) + len > dev->bl_cap) {
		size_t over = bl_len(dev) + len - dev->bl_cap;
		dev->stats.dropped_backlog += over;
		bl_consume(dev, over);
	}
	while (len) {
		size_t head = bl_head(dev), have = bl_len(dev);
		size_t tail = (head + have) % dev->bl_cap;
		size_t n = min_sz(len, dev->bl_cap - tail);
		memcpy(dev->bl + tail, src, n);
		bl_set(dev, head, have + n);
		src += n;
		len -= n;
	}
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

/* Write the backlog out: 0 when empty, -EAGAIN when the endpoint is full,
 * -EPIPE when the endpoint went away (detached now). */
static int bl_drain(struct console_dev *dev)
{
	while (bl_len(dev)) {
		struct iovec v[2];
		size_t head = bl_head(dev), len = bl_len(dev);
		size_t first = min_sz(len, dev->bl_cap - head);
		unsigned n = 1;
		v[0] = (struct iovec){ dev->bl + head, first };
		if (first < len)
			v[n++] = (struct iovec){ dev->bl, len - first };
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

/* ---- requests ---------------------------------------------------------- */

static struct con_req *list_pop(struct con_req **head, struct con_req ***tail)
{
	struct con_req *r = *head;
	if (r) {
		*head = r->next;
		if (!*head)
			*tail = head;
	}
	return r;
}

static void list_add(struct con_req **head, struct con_req ***tail, struct con_req *r)
{
	r->next = NULL;
	**tail = r;
	*tail = &r->next;
}

static void answer(struct con_req *cr, uint32_t written)
{
	vdev_complete(vreq_of_priv(cr), written);
}

/* ---- transmit: cell -> endpoint -------------------------------------- */

/* Output for nobody: the backlog takes the current buffer (the caller's
 * loop goes on with the next, within its budget); without a backlog the
 * rest of the request is dropped and counted. */
static void tx_divert(struct console_dev *dev, struct vreq *req, struct con_req *cr)
{
	if (dev->blh) {
		struct iovec *v = &req->iov[cr->pos++];
		bl_append(dev, v->iov_base, v->iov_len);
		dev->stats.tx_bytes += v->iov_len;
		return;
	}
	uint64_t rest = 0;
	for (unsigned i = cr->pos; i < req->n_out; i++)
		rest += req->iov[i].iov_len;
	dev->stats.dropped_error += rest;
	dev->stats.tx_bytes += rest;
	cr->pos = req->n_out;
}

/* Write a transmit request out: 0 when it is consumed, -EAGAIN when the
 * endpoint has to drain first (it stays first in line, nothing is lost),
 * -EINPROGRESS when this wakeup's byte budget is spent (a chain may repeat
 * one buffer a thousand times: a log file must not take the loop for long). */
static int tx_deliver(struct console_dev *dev, struct con_req *cr, uint64_t bytes0)
{
	struct vreq *req = vreq_of_priv(cr);
	struct iovec *iov = req->iov;
	unsigned n = req->n_out;        /* device-writable buffers are not ours to read */
	while (cr->pos < n) {
		if (dev->stats.tx_bytes - bytes0 >= BYTES_BUDGET)
			return -EINPROGRESS;
		if (iov[cr->pos].iov_len == 0) {
			cr->pos++;
			continue;
		}
		if (!output_live(dev)) {
			tx_divert(dev, req, cr);
			continue;
		}
		unsigned cnt = n - cr->pos;
		if (cnt > IOV_MAX)
			cnt = IOV_MAX;
		ssize_t r = out_writev(dev, iov + cr->pos, cnt);
		if (r > 0) {
			size_t done = (size_t)r;
			dev->stats.tx_bytes += done;
			while (done) {
				struct iovec *v = &iov[cr->pos];
				size_t k = min_sz(done, v->iov_len);
				v->iov_base = (uint8_t *)v->iov_base + k;
				v->iov_len -= k;
				done -= k;
				if (!v->iov_len)
					cr->pos++;
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
		if (output_live(dev) && !dev->blh)
			tx_divert(dev, req, cr);    /* log, stdio: this request's rest is lost */
	}
	return 0;
}

void console_tx_pump(struct console_dev *dev)
{
	unsigned reqs = 0;
	uint64_t bytes0 = dev->stats.tx_bytes;
	if (dev->closing || dev->tx_blocked)
		return;
	if (dev->ep->before_output && dev->ep->before_output(dev))
		return;     /* it attached, and pumped from there */
	for (;;) {
		if (output_live(dev) && dev->blh && bl_len(dev)) {
			if (bl_drain(dev) == -EAGAIN) {
				dev->tx_blocked = true;
				break;
			}
			continue;
		}
		struct con_req *cr = dev->tx_head;
		if (!cr)
			break;
		if (reqs >= dev->p.queue_size) {
			resume_later(dev);
			break;
		}
		int r = tx_deliver(dev, cr, bytes0);
		if (r == -EAGAIN) {
			dev->tx_blocked = true;
			break;
		}
		if (r == -EINPROGRESS) {
			resume_later(dev);
			break;
		}
		list_pop(&dev->tx_head, &dev->tx_tail);
		answer(cr, 0);
		reqs++;
	}
	console_update_watches(dev);
}

void console_settle(struct console_dev *dev)
{
	struct con_req *cr;
	while (dev->blh && (cr = dev->tx_head)) {
		struct vreq *req = vreq_of_priv(cr);
		size_t rest = 0;
		for (unsigned i = cr->pos; i < req->n_out; i++)
			rest += req->iov[i].iov_len;
		if (bl_len(dev) + rest > dev->bl_cap)
			break;      /* sent again whole by the next process */
		while (cr->pos < req->n_out)
			tx_divert(dev, req, cr);
		list_pop(&dev->tx_head, &dev->tx_tail);
		answer(cr, 0);
	}
}

/* ---- receive: endpoint -> cell --------------------------------------- */

void console_rx_pump(struct console_dev *dev)
{
	unsigned reqs = 0;
	uint64_t bytes = 0;
	if (dev->closing)
		return;
	while (input_live(dev) && dev->rx_head) {
		/* Out of budget: the level-triggered poll brings us back. */
		if (reqs >= dev->p.queue_size || bytes >= BYTES_BUDGET)
			break;
		struct con_req *cr = dev->rx_head;
		struct vreq *req = vreq_of_priv(cr);
		unsigned cnt = req->n_in < IOV_MAX ? req->n_in : IOV_MAX;
		ssize_t r = in_readv(dev, req->iov + req->n_out, cnt);
		if (r > 0) {
			list_pop(&dev->rx_head, &dev->rx_tail);
			answer(cr, (uint32_t)r);
			reqs++;
			bytes += (uint64_t)r;
			dev->stats.rx_bytes += (uint64_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;      /* the request waits for the next input */
		input_ended(dev, r < 0 ? errno : 0);
	}
	if (bytes && dev->ep->after_input)
		dev->ep->after_input(dev);
	console_update_watches(dev);
}

/* ---- loop callbacks --------------------------------------------------- */

static void watch_cb(uv_poll_t *h, int status, int events)
{
	struct con_watch *w = h->data;
	struct console_dev *dev = w->dev;
	if (status < 0) {
		/* POLLERR; libuv stopped the poll.  A pipe's write end says so
		 * when its reader left (writes then fail and drop, they never
		 * wait again). */
		w->events = 0;
		if (dev->ep->watch_error) {
			dev->ep->watch_error(dev, w, status);
			return;
		}
		if (w == dev->in_w)
			input_ended(dev, -status);
		events = w == dev->out_w ? UV_WRITABLE : 0;
	}
	if ((events & UV_WRITABLE) && w == dev->out_w) {
		dev->tx_blocked = false;
		console_tx_pump(dev);
	}
	if ((events & UV_READABLE) && w == dev->in_w)
		console_rx_pump(dev);
	console_update_watches(dev);
}

static void timer_cb(uv_timer_t *t)
{
	struct console_dev *dev = t->data;
	if (dev->ep->check)
		dev->ep->check(dev);
}

/* ---- the transport's backend ------------------------------------------ */

static uint64_t con_features(void *be)
{
	return VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE);
}

static void con_get_config(void *be, uint8_t *cfg)
{
	struct console_dev *dev = be;
	put_le16(cfg, VCON_CFG_COLS, dev->cols);
	put_le16(cfg, VCON_CFG_ROWS, dev->rows);
	put_le32(cfg, VCON_CFG_MAX_NR_PORTS, 1);
	put_le32(cfg, VCON_CFG_EMERG_WR, 0);
}

static void con_driver_ok(void *be)
{
	console_winsize_check(be);
}

static void con_submit(void *be, struct vreq *req)
{
	struct console_dev *dev = be;
	struct con_req *cr = vreq_priv(req);
	cr->pos = 0;
	if (req->queue == VCON_RX_QUEUE) {
		if (req->in_bytes == 0) {
			answer(cr, 0);      /* nothing we could fill: back at once */
			return;
		}
		list_add(&dev->rx_head, &dev->rx_tail, cr);
		console_rx_pump(dev);
	} else {
		list_add(&dev->tx_head, &dev->tx_tail, cr);
		console_tx_pump(dev);
	}
}

/* A reset, queue disable or shutdown: what waits for input is answered
 * empty, what is not written yet is dropped (the driver asked for it). */
static void con_cancel(void *be, unsigned q)
{
	struct console_dev *dev = be;
	struct con_req *cr;
	if (q == VCON_RX_QUEUE) {
		while ((cr = list_pop(&dev->rx_head, &dev->rx_tail)))
			answer(cr, 0);
	} else {
		while ((cr = list_pop(&dev->tx_head, &dev->tx_tail)))
			answer(cr, 0);
	}
	console_update_watches(dev);
}

/* ---- sizes ------------------------------------------------------------- */

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

/* ---- public ----------------------------------------------------------- */

static const struct con_endpoint_ops *endpoint_ops(enum console_endpoint ep)
{
	switch (ep) {
	case CONSOLE_PTY: return &con_pty_ops;
	case CONSOLE_SOCKET: return &con_socket_ops;
	case CONSOLE_LOG: return &con_log_ops;
	case CONSOLE_STDIO: return &con_stdio_ops;
	}
	return NULL;
}

/* Shared by open and adopt: h is NULL when opening afresh. */
static int console_start(const struct console_params *params, struct ivshm_port *port,
			 struct tick *tick, struct handover *h, const char *prefix,
			 const uint8_t *blob, size_t len, struct console_dev **ret, char *err,
			 size_t err_len)
{
	const struct con_endpoint_ops *ep = endpoint_ops(params->endpoint);
	uint16_t qs = params->queue_size;
	if (!ep) {
		snprintf(err, err_len, "unknown endpoint kind %d", (int)params->endpoint);
		return -EINVAL;
	}
	if (qs & (qs - 1)) {
		snprintf(err, err_len, "queue size %u is not a power of two", qs);
		return -EINVAL;
	}
	int r = console_queue_size(port->rw_size, qs, &qs, err, err_len);
	if (r < 0)
		return r;
	if (ep->needs_path && (!params->path || !params->path[0])) {
		snprintf(err, err_len, "no path for the endpoint");
		return -EINVAL;
	}
	struct console_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ep = ep;
	dev->p = *params;
	dev->p.queue_size = qs;
	snprintf(dev->name, sizeof(dev->name), "%s", params->name ? params->name : "console");
	snprintf(dev->path, sizeof(dev->path), "%s", params->path ? params->path : "");
	dev->p.name = dev->name;
	dev->p.path = dev->path;
	dev->loop = tick->loop;
	dev->in_fd = dev->out_fd = dev->master = dev->listen_fd = -1;
	dev->tty_fd = dev->winsz_fd = -1;
	dev->restore_fd[0] = dev->restore_fd[1] = -1;
	dev->rx_tail = &dev->rx_head;
	dev->tx_tail = &dev->tx_head;
	dev->cols = params->cols ? params->cols : 80;
	dev->rows = params->rows ? params->rows : 25;
	dev->bl_fd = -1;
	if (ep->backlog && params->backlog) {
		char name[HANDOVER_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%s/backlog", prefix ? prefix : "");
		r = backlog_map(dev, h ? handover_take(h, name) : -1, params->backlog);
		if (r == -EBADMSG)
			r = backlog_map(dev, -1, params->backlog);  /* another size: start empty */
		if (r < 0) {
			free_dev(dev);
			return r;
		}
	}
	dev->vops = (struct vdev_backend_ops){
		.req_size = sizeof(struct con_req),
		/* hvc waits for each transmit buffer to be used and takes it
		 * itself: decide that queue's interrupts late. */
		.polled_queues = 1u << VCON_TX_QUEUE,
		.features = con_features,
		.get_config = con_get_config,
		.submit = con_submit,
		.cancel = con_cancel,
		.driver_ok = con_driver_ok,
	};
	r = vdev_init(&dev->vdev, dev->name, port, tick, VIRTIO_ID_CONSOLE, &dev->vops, dev,
		      VCON_CFG_SIZE, 2, qs);
	if (r < 0) {
		snprintf(err, err_len, "link %s is too small for the device header", port->name);
		free_dev(dev);
		return r;
	}
	uv_timer_init(dev->loop, &dev->timer);
	dev->timer.data = dev;
	uv_idle_init(dev->loop, &dev->resume);
	dev->resume.data = dev;
	dev->handles += 2;
	r = h ? ep->adopt(dev, prefix, h, blob, len, err, err_len) : ep->open(dev, err, err_len);
	if (r < 0) {
		console_close(dev);
		return r;
	}
	if (ep->check)
		uv_timer_start(&dev->timer, timer_cb, CONSOLE_CHECK_MS, CONSOLE_CHECK_MS);
	*ret = dev;
	return 0;
}

int console_open(const struct console_params *params, struct ivshm_port *port, struct tick *tick,
		 struct console_dev **ret, char *err, size_t err_len)
{
	return console_start(params, port, tick, NULL, NULL, NULL, 0, ret, err, err_len);
}

int console_adopt(const struct console_params *params, struct ivshm_port *port,
		  struct tick *tick, struct handover *h, const char *prefix, const uint8_t *blob,
		  size_t len, struct console_dev **ret, char *err, size_t err_len)
{
	return console_start(params, port, tick, h, prefix, blob, len, ret, err, err_len);
}

int console_export(struct console_dev *dev, const char *prefix, struct handover *h,
		   uint8_t *blob, size_t cap)
{
	if (dev->bl_fd >= 0) {
		char name[HANDOVER_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%s/backlog", prefix);
		int r = handover_add(h, name, dev->bl_fd);
		if (r < 0)
			return r;
	}
	return dev->ep->export(dev, prefix, h, blob, cap);
}

struct vdev *console_vdev(struct console_dev *dev)
{
	return &dev->vdev;
}

const struct console_stats *console_stats(const struct console_dev *dev)
{
	return &dev->stats;
}

unsigned console_generation(const struct console_dev *dev)
{
	return dev ? dev->generation : 0;
}

bool console_attached(const struct console_dev *dev)
{
	return dev->attached;
}

int console_reopen(struct console_dev *dev)
{
	if (!dev || !dev->ep->reopen)
		return 0;
	dev->generation++;
	return dev->ep->reopen(dev);
}

void console_close(struct console_dev *dev)
{
	if (!dev)
		return;
	dev->closing = true;
	dev->ep->close(dev);
	dev->in_w = dev->out_w = dev->ino_w = dev->listen_w = NULL;
	dev->in_fd = dev->out_fd = -1;
	if (dev->stats.dropped_backlog || dev->stats.dropped_error)
		log_info("%s: %llu byte(s) of output dropped (backlog overflow %llu, write errors "
			 "%llu)", dev->name, (unsigned long long)(dev->stats.dropped_backlog +
								  dev->stats.dropped_error),
			 (unsigned long long)dev->stats.dropped_backlog,
			 (unsigned long long)dev->stats.dropped_error);
	vdev_destroy(&dev->vdev);
	uv_close((uv_handle_t *)&dev->timer, plain_closed);
	uv_close((uv_handle_t *)&dev->resume, plain_closed);
}
