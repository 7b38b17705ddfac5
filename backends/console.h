/* virtio-console device model: port 0 of a console link, bytes between its
 * receive/transmit queues and one endpoint on the root-cell side.
 *
 * Endpoints:
 *   pty     the daemon creates a PTY and keeps a stable symlink to its slave
 *           at `path` (e.g. /run/virtio-ivshmemd/NAME.pty) for screen/minicom;
 *           window size changes of the PTY reach the cell as a config change.
 *   socket  a unix stream socket listening at `path`; clients come and go;
 *           output while nobody is connected goes to a bounded backlog that is
 *           replayed to the next client.
 *   log     output appended to the file at `path` (input: none); reopened by
 *           console_reopen() (SIGHUP, for logrotate).
 *   stdio   the daemon's own stdin/stdout (foreground use).
 *
 * Flow control, both ways, without busy loops: the endpoint is read only
 * while the cell has receive buffers posted; when the endpoint cannot take
 * more output, transmit descriptors stay in the ring (nothing is dropped)
 * until it drains.  Every transmit completion is signalled to the cell.
 * Offers VIRTIO_CONSOLE_F_SIZE (cols/rows in the config space).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/io_engine.h"
#include "server/transport.h"

enum console_endpoint { CONSOLE_PTY, CONSOLE_SOCKET, CONSOLE_LOG, CONSOLE_STDIO };

struct console_params {
	const char *name;               /* device name from the config, for logs */
	enum console_endpoint endpoint;
	const char *path;               /* pty symlink, socket path or log file */
	size_t backlog;                 /* socket: bytes kept while nobody listens */
	uint16_t cols, rows;            /* size where the endpoint has none */
	uint16_t queue_size;            /* power of two */
};

struct console_stats {
	uint64_t rx_bytes, tx_bytes;    /* to the cell / from the cell */
	uint64_t dropped_backlog;       /* socket backlog overflow (oldest bytes) */
	uint64_t clients;
};

struct console_dev;

/* Create the endpoint and the device on port.  Negative errno with the
 * reason in err. */
int console_open(const struct console_params *params, struct ivshm_port *port, uv_loop_t *loop,
		 struct console_dev **ret, char *err, size_t err_len);

struct vdev *console_vdev(struct console_dev *dev);
const struct console_stats *console_stats(const struct console_dev *dev);

/* Reopen a log endpoint (SIGHUP); no-op for the others. */
int console_reopen(struct console_dev *dev);

/* Free the device; closes uv handles (the loop must run on). */
void console_close(struct console_dev *dev);
