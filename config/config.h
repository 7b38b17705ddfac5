/* The daemon's configuration file (INI, parsed with libinih).
 *
 *   [daemon]          threads, log-level, control-socket, sysfs-root, dev-root
 *   [block NAME]      one virtio-blk device: exactly one link key
 *                       uio = /dev/uioN | pci = DDDD:BB:DD.F |
 *                       sim = SOCKET (the daemon hosts a software link there) |
 *                       sim-connect = SOCKET (join a link hosted elsewhere)
 *                     image, read-only, serial, queues, queue-size, seg-max,
 *                     block-size, shm-size and vectors (hosted sim links), cell
 *   [console NAME]    one virtio-console device: a link key as above, and
 *                     endpoint = pty | socket | log | stdio, path, backlog,
 *                     cols, rows, queue-size, shm-size, vectors, cell
 *
 * Every error names the file, the line and the key, e.g.
 *   "demo.conf:7: [block disk0] queue-size: must be a power of two from 2 to 32768 (got '100')".
 * The whole file is checked; the first error is returned.
 */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_NAME_MAX 64

enum cfg_link_kind { LINK_NONE, LINK_UIO, LINK_PCI, LINK_SIM_HOST, LINK_SIM_CONNECT };

struct cfg_link {
	enum cfg_link_kind kind;
	char target[PATH_MAX];      /* /dev/uioN, the BDF, or the socket path */
	int line;
	uint64_t shm_size;          /* hosted sim link: size of the R/W section */
	uint32_t vectors;           /* hosted sim link: vectors per peer (0: auto) */
};

enum cfg_dev_type { DEV_BLOCK, DEV_CONSOLE };
enum cfg_endpoint { EP_PTY, EP_SOCKET, EP_LOG, EP_STDIO };

struct cfg_device {
	enum cfg_dev_type type;
	char name[CFG_NAME_MAX];
	int line;                   /* of the section header */
	struct cfg_link link;
	char image[PATH_MAX];
	bool read_only;
	char serial[21];
	bool serial_set;
	unsigned queues;
	unsigned queue_size;
	unsigned seg_max;
	unsigned block_size;        /* 0: automatic */
	char cell[CFG_NAME_MAX];
	/* console */
	enum cfg_endpoint endpoint;
	bool endpoint_set;
	char ep_path[PATH_MAX];
	uint64_t backlog;
	unsigned cols, rows;
};

#define CFG_DEFAULT_CONTROL "/run/virtio-ivshmemd/control.sock"

struct cfg_daemon {
	int log_level;              /* enum log_level */
	char control[PATH_MAX];     /* control socket; "none" disables it */
	bool control_set;           /* given in the file (failure to open is fatal) */
	unsigned threads;           /* worker loops, each with its own io_uring */
	char sysfs_root[PATH_MAX];
	char dev_root[PATH_MAX];
};

struct config {
	char path[PATH_MAX];
	struct cfg_daemon daemon;
	struct cfg_device *devices;
	unsigned ndevices;
};

/* Parse and validate path.  On error returns a negative errno with the
 * message (file:line: [section] key: what is wrong) in err. */
int config_load(const char *path, struct config **ret, char *err, size_t err_len);
void config_free(struct config *cfg);

const char *cfg_link_kind_name(enum cfg_link_kind kind);
const char *cfg_dev_type_name(enum cfg_dev_type type);
const char *cfg_endpoint_name(enum cfg_endpoint ep);
/* Number of devices of one type. */
unsigned config_count(const struct config *cfg, enum cfg_dev_type type);
