/* Internal to the console (console.c and the endpoint files): the device
 * and the table each endpoint kind fills.  Not a contract for anything else.
 *
 * console.c owns the queues, the pumps and the backlog and knows nothing of
 * any endpoint kind; console_pty.c, console_socket.c, console_log.c and
 * console_stdio.c each know one kind and nothing of the queues.  They meet
 * in struct console_dev: in_fd/out_fd and their watches, `attached`, and
 * the calls below.
 */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>
#include <uv.h>

#include "backends/console.h"
#include "core/handover.h"

#define CONSOLE_CHECK_MS     500         /* periodic endpoint check (ops->check) */
#define MAX_LOGGED_ERRORS    10

struct console_dev;

/* One fd in the loop.  Heap-allocated: uv_close finishes later. */
struct con_watch {
	uv_poll_t poll;
	struct console_dev *dev;
	int fd;
	int events;                 /* what the poll is started with now */
};

/* What an endpoint kind does; optional entries may be NULL. */
struct con_endpoint_ops {
	const char *name;
	bool needs_path;
	bool backlog;               /* output for nobody is kept and replayed */
	/* Create the endpoint: fds, watches, `attached`. */
	int (*open)(struct console_dev *dev, char *err, size_t err_len);
	/* Close its watches and fds, undo what open did. */
	void (*close)(struct console_dev *dev);
	/* Every CONSOLE_CHECK_MS. */
	void (*check)(struct console_dev *dev);
	/* Reading gave EOF (err 0) or an error. */
	void (*input_ended)(struct console_dev *dev, int err);
	/* Writing failed with err (not EAGAIN). */
	void (*output_error)(struct console_dev *dev, int err);
	/* Writing said EAGAIN: is that backpressure (true) or a reader that
	 * left (the endpoint detaches itself, false)? */
	bool (*really_full)(struct console_dev *dev);
	/* Before output is written: a chance to notice a reader that came. */
	bool (*before_output)(struct console_dev *dev);
	/* After input was read. */
	void (*after_input)(struct console_dev *dev);
	/* POLLERR on one of its watches (the poll is stopped). */
	void (*watch_error)(struct console_dev *dev, struct con_watch *w, int status);
	/* The reader went away: endpoint-side clean-up (console_detach() did
	 * the rest). */
	void (*detached)(struct console_dev *dev);
	/* SIGHUP. */
	int (*reopen)(struct console_dev *dev);
	/* Hand the endpoint to a new process: its fds into h as "prefix/...",
	 * the rest into blob (returns the length used, or -errno). */
	int (*export)(struct console_dev *dev, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap);
	/* Take it over from what export left (instead of open). */
	int (*adopt)(struct console_dev *dev, const char *prefix, struct handover *h,
		     const uint8_t *blob, size_t len, char *err, size_t err_len);
};

extern const struct con_endpoint_ops con_pty_ops, con_socket_ops, con_log_ops, con_stdio_ops;

struct console_dev {
	struct vdev vdev;
	struct vdev_backend_ops vops;
	const struct con_endpoint_ops *ep;
	struct console_params p;
	char name[64];
	char path[PATH_MAX];
	uv_loop_t *loop;
	struct console_stats stats;
	unsigned generation;        /* bumped when the endpoint's fds change */

	/* The endpoint as the data paths see it. */
	int in_fd, out_fd;          /* -1: none right now */
	struct con_watch *in_w, *out_w;     /* NULL: not pollable; may be one watch */
	bool attached;              /* somebody is there: output goes live */
	bool in_eof;                /* stdio: stdin ended */
	bool in_sock, out_sock;     /* sockets: MSG_DONTWAIT, so a shared
				     * description (stdio) can stay blocking */
	int winsz_fd;               /* where the window size comes from, or -1 */

	/* pty */
	int master;
	char pts[64];               /* /dev/pts/N */
	struct con_watch *ino_w;    /* inotify on the slave: open/close */
	bool symlink_made;

	/* socket */
	int listen_fd;
	struct con_watch *listen_w;
	bool listen_paused;         /* out of fds: retried by the check */
	dev_t sock_dev;
	ino_t sock_ino;

	/* stdio */
	int tty_fd;                 /* raw-mode terminal to restore, or -1 */
	struct termios saved_tio;
	int restore_fd[2], restore_fl[2];   /* shared descriptions made non-blocking */

	/* Requests the transport handed us, oldest first.  Receive ones wait
	 * for input (the endpoint is read only while there are some); the
	 * first transmit one is being written out. */
	struct con_req *rx_head, **rx_tail;
	struct con_req *tx_head, **tx_tail;
	bool tx_blocked;            /* the endpoint is full: wait for WRITABLE */

	/* Output while nobody is there: a ring of bl_cap bytes, in a memfd
	 * (bl_fd) whose header says where it starts and how much it holds. */
	/* The backlog's header in its memfd: head and len in one word, stored
	 * at once after the bytes they describe, so that a process killed at
	 * any instruction leaves a consistent backlog (bl_set). */
	struct con_backlog { uint64_t cap, pos; } *blh;
	uint8_t *bl;                /* its bytes (bl_cap of them, a ring) */
	size_t bl_cap;
	int bl_fd;

	uint16_t cols, rows;
	uv_timer_t timer;
	uv_idle_t resume;           /* out of budget: go on next iteration */
	unsigned handles;           /* uv handles not closed yet */
	bool closing;
	uint64_t logged_errors;
};

/* The per-request area of a transport slot. */
struct con_req {
	struct con_req *next;
	unsigned pos;               /* transmit: next readable buffer to write */
};

/* console.c, for the endpoints. */
struct con_watch *con_watch_new(struct console_dev *dev, int fd, int *err);
void con_watch_close(struct con_watch *w, bool close_fd);
void con_watch_set(struct con_watch *w, int events, uv_poll_cb cb);
void console_update_watches(struct console_dev *dev);
/* Somebody is there now: replay the backlog, read input. */
void console_attach(struct console_dev *dev);
/* Nobody is there any more (why: for the log). */
void console_detach(struct console_dev *dev, const char *why);
void console_rx_pump(struct console_dev *dev);
void console_tx_pump(struct console_dev *dev);
/* Re-read the window size from winsz_fd; a change reaches the cell. */
void console_winsize_check(struct console_dev *dev);

/* The backlog's head and length (see struct con_backlog). */
static inline size_t bl_head(const struct console_dev *dev)
{
	return (uint32_t)__atomic_load_n(&dev->blh->pos, __ATOMIC_RELAXED);
}

static inline size_t bl_len(const struct console_dev *dev)
{
	return (size_t)(__atomic_load_n(&dev->blh->pos, __ATOMIC_RELAXED) >> 32);
}
