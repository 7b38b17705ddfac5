/* virtio-console device model: port 0 of a console link, bytes between its
 * receive/transmit queues and one endpoint on the root-cell side.
 *
 * Endpoints:
 *   pty     the daemon creates a PTY and keeps a stable symlink to its slave
 *           at `path` (e.g. /run/virtio-ivshmemd/NAME.pty) for screen/minicom;
 *           window size changes of the PTY reach the cell as a config change.
 *           While nobody has the slave open, output goes to the backlog (as
 *           for a socket without a client) and is replayed on the next open.
 *   socket  a unix stream socket (mode 0600) listening at `path`; clients come
 *           and go, one at a time: a second client is accepted and closed at
 *           once (the first keeps the console) unless the first one has hung
 *           up already.  A client that shuts down its sending side counts as
 *           gone.  Output while nobody is connected goes to a bounded backlog
 *           (the oldest bytes are dropped and counted) that is replayed to the
 *           next client before anything new.
 *   log     output appended to the file at `path` (input: none); reopened by
 *           console_reopen() (SIGHUP, for logrotate).  Never holds the cell
 *           back; bytes that cannot be written are dropped and counted.
 *   stdio   the daemon's own stdin/stdout (foreground use); a terminal on stdin
 *           is put in raw mode (output processing kept) and restored on close.
 *
 * Flow control, both ways, without busy loops: the endpoint is read only
 * while the cell has receive buffers posted; when the endpoint cannot take
 * more output, transmit requests wait (nothing is dropped) until it drains.
 * Transmit completions are published at once and their interrupt decided
 * late (the Linux driver polls for them; see core/transport.h).  Offers
 * VIRTIO_CONSOLE_F_SIZE (cols/rows in the config space).  The transport
 * hands it requests; each endpoint kind is a table of its own
 * (console_int.h, console_{pty,socket,log,stdio}.c).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/handover.h"
#include "core/transport.h"

/* virtio-console wire constants (virtio 1.2 §5.3); port 0 only, no MULTIPORT. */
#define VIRTIO_CONSOLE_F_SIZE       0       /* cols/rows in the config space */
#define VCON_RX_QUEUE               0       /* receiveq: device-writable, host -> cell */
#define VCON_TX_QUEUE               1       /* transmitq: device-readable, cell -> host */
#define VCON_CFG_COLS               0       /* le16 */
#define VCON_CFG_ROWS               2       /* le16 */
#define VCON_CFG_MAX_NR_PORTS       4       /* le32, meaningful only with MULTIPORT */
#define VCON_CFG_EMERG_WR           8       /* le32, meaningful only with EMERG_WRITE */
#define VCON_CFG_SIZE               12

enum console_endpoint { CONSOLE_PTY, CONSOLE_SOCKET, CONSOLE_LOG, CONSOLE_STDIO };

struct console_params {
	const char *name;               /* device name from the config, for logs */
	enum console_endpoint endpoint;
	const char *path;               /* pty symlink, socket path or log file */
	size_t backlog;                 /* socket, pty: bytes kept while nobody listens */
	uint16_t cols, rows;            /* size where the endpoint has none */
	uint16_t queue_size;            /* power of two; 0: the largest that fits */
};

struct console_stats {
	uint64_t rx_bytes, tx_bytes;    /* to the cell / from the cell */
	uint64_t dropped_backlog;       /* backlog overflow (oldest bytes) */
	uint64_t dropped_error;         /* log, stdio: output lost to write errors */
	uint64_t clients;               /* socket clients accepted, pty attachments */
	uint64_t refused;               /* socket: clients turned away (one at a time) */
	uint64_t backlog_bytes;         /* bytes waiting in the backlog now */
};

struct console_dev;

/* The largest receive queue, a power of two up to max, that the Linux
 * virtio_console driver can use in a R/W section of rw_size bytes; 0 if not
 * even one fits.  Without MULTIPORT the driver allocates both rings at the
 * offered size, then fills the whole receive queue with page-sized buffers
 * from the section and gives up on the port if one allocation fails
 * ("Error allocating inbufs": no /dev/hvc0); every transmit then bounces
 * through one more buffer of up to a page.  See server/dma_pool.h. */
uint16_t console_queue_fit(uint64_t rw_size, uint16_t max);
#define CONSOLE_AUTO_QUEUE_MAX 64

/* The queue size to offer for a configured one (0: the largest that fits,
 * up to CONSOLE_AUTO_QUEUE_MAX).  Returns 0 with *out set, or -ENOSPC with
 * the numbers in why when the section is too small or want does not fit. */
int console_queue_size(uint64_t rw_size, uint16_t want, uint16_t *out, char *why, size_t why_len);

/* Create the endpoint and the device on port.  Negative errno with the
 * reason in err. */
int console_open(const struct console_params *params, struct ivshm_port *port, struct tick *tick,
		 struct console_dev **ret, char *err, size_t err_len);

/* What a new process needs to take the console over without its user
 * noticing (the pty master, the listening socket and its client, the log,
 * the backlog): fds into h as "prefix/...", the rest into blob.  Returns
 * the blob's length or a negative errno. */
int console_export(struct console_dev *dev, const char *prefix, struct handover *h,
		   uint8_t *blob, size_t cap);

/* Changes whenever what console_export() names may have changed (a client
 * came or went, the log was reopened). */
unsigned console_generation(const struct console_dev *dev);

/* Before a hand-over: output the endpoint has not taken (all of it, or the
 * rest of a request it took part of) moves into the backlog, which is handed
 * over, and its request is answered; so the next process neither repeats
 * nor reorders it.  What does not fit stays in flight (executed again
 * whole by the next process). */
void console_settle(struct console_dev *dev);

/* console_open() from what console_export() left instead of afresh. */
int console_adopt(const struct console_params *params, struct ivshm_port *port,
		  struct tick *tick, struct handover *h, const char *prefix, const uint8_t *blob,
		  size_t len, struct console_dev **ret, char *err, size_t err_len);

struct vdev *console_vdev(struct console_dev *dev);
const struct console_stats *console_stats(const struct console_dev *dev);

/* Is somebody there: a socket client connected, the pty slave open; always
 * true for log and stdio. */
bool console_attached(const struct console_dev *dev);

/* Reopen a log endpoint (SIGHUP); no-op for the others. */
int console_reopen(struct console_dev *dev);

/* Free the device; closes uv handles (the loop must run on). */
void console_close(struct console_dev *dev);
