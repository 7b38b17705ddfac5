/* The daemon's configuration file (INI, parsed with libinih).
 *
 *   [daemon]          threads, io-engine (auto | io_uring | threads: what does the
 *                     block I/O, core/io_engine.h), log-level, control-socket,
 *                     sysfs-root, dev-root,
 *                     root-cell (the root cell's .cell file, for jailhouse-cellmgr up),
 *                     journal (yes/no: in-flight journals for hand-over),
 *                     upgrade-drain-ms (0..60000, how long an upgrade waits),
 *                     busy-poll-us (0..1000: how long a loop may look at its
 *                     rings before it sleeps, adaptive, core/busypoll.h; 0 off)
 *   [block NAME]      one virtio-blk device: exactly one link key
 *                       uio = /dev/uioN | pci = DDDD:BB:DD.F |
 *                       sim = SOCKET (the daemon hosts a software link there) |
 *                       sim-connect = SOCKET (join a link hosted elsewhere)
 *                     image (a file, a block device, or null:SIZE: the null
 *                     disk of backends/blk.h, which answers every request at
 *                     once without touching data; SIZE a multiple of 512 and
 *                     of block-size), read-only, serial, queues, queue-size, seg-max
 *                     (0/absent: automatic), block-size, cache (writeback: through
 *                     the page cache, the default; none: O_DIRECT, requests the
 *                     image cannot take directly bounced, backends/blk.h; the
 *                     null disk ignores it), shm-size and vectors (hosted sim
 *                     links; shm-size is the link's whole memory, a power of
 *                     two), cell
 *   [console NAME]    one virtio-console device: a link key as above, and
 *                     endpoint = pty | socket | log | stdio, path, backlog,
 *                     cols, rows, queue-size (0/absent: the largest the link
 *                     carries), shm-size, vectors, cell
 * Sizes the cell's driver cannot allocate are refused by the daemon (the
 * checks need the link's size; see backends/blk.h, backends/console.h).
 *   [cell NAME]       one Jailhouse cell that `jailhouse-cellmgr up/down` boots and
 *                     stops (the daemon itself ignores it): config (the .cell file),
 *                     kernel (x86 bzImage, arm64 Image or ARM zImage), initrd, dtb
 *                     (the compiled device tree of an ARM cell: what `linux -d`
 *                     takes), cmdline, order.  config, kernel, initrd and dtb must
 *                     be readable.  Whether a cell needs dtb (ARM) or must not have
 *                     it (x86) depends on its .cell file, which only the cell
 *                     manager reads: `up` checks that.  cmdline may be given on several
 *                     lines (repeated keys or indented continuation lines are joined
 *                     with a space: inih limits a line to 199 characters).  Cells boot
 *                     by ascending order (a cell without one counts as 0), equal
 *                     orders in file order.  When at least one [cell] section exists,
 *                     every device's `cell =` must name one of them.
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

#include "ctl/proto.h"

#define CFG_NAME_MAX 64

enum cfg_link_kind { LINK_NONE, LINK_UIO, LINK_PCI, LINK_SIM_HOST, LINK_SIM_CONNECT };

struct cfg_link {
	enum cfg_link_kind kind;
	char target[PATH_MAX];      /* /dev/uioN, the BDF, or the socket path */
	int line;
	uint64_t shm_size;          /* hosted sim link: its whole shared memory (a power of
				     * two); the R/W section is that minus the 4K state table */
	uint32_t vectors;           /* hosted sim link: vectors per peer (0: auto) */
};

enum cfg_dev_type { DEV_BLOCK, DEV_CONSOLE };
enum cfg_endpoint { EP_PTY, EP_SOCKET, EP_LOG, EP_STDIO };
/* cache values, in the order of backends/blk.h's enum blk_cache (config/
 * includes nothing of backends/): writeback first, the default. */
enum cfg_cache { CFG_CACHE_WRITEBACK, CFG_CACHE_NONE };

struct cfg_device {
	enum cfg_dev_type type;
	char name[CFG_NAME_MAX];
	int line;                   /* of the section header */
	struct cfg_link link;
	char image[PATH_MAX];
	uint64_t null_size;         /* image = null:SIZE: the null disk's bytes; 0: a file */
	bool read_only;
	char serial[21];
	bool serial_set;
	unsigned queues;
	unsigned queue_size;        /* console: 0 = the largest the link can carry */
	unsigned seg_max;           /* 0: automatic (blk_seg_max) */
	unsigned block_size;        /* 0: automatic */
	enum cfg_cache cache;       /* how the image is opened: page cache or O_DIRECT */
	int cache_line;             /* of the `cache` key, 0 if not given */
	char cell[CFG_NAME_MAX];
	int cell_line;              /* of the `cell` key, 0 if not given */
	/* console */
	enum cfg_endpoint endpoint;
	bool endpoint_set;
	char ep_path[PATH_MAX];
	uint64_t backlog;
	unsigned cols, rows;
};

#define CFG_DEFAULT_CONTROL CTL_DEFAULT_SOCKET

/* log-level values: syslog priorities (core/log.h uses the same numbers). */
enum { CFG_LOG_ERROR = 3, CFG_LOG_WARNING = 4, CFG_LOG_INFO = 6, CFG_LOG_DEBUG = 7 };

#define CFG_DEFAULT_UPGRADE_DRAIN_MS 2000
#define CFG_DEFAULT_BUSY_POLL_US 50
#define CFG_MAX_BUSY_POLL_US 1000

/* io-engine values, in the order of core/io_engine.h's enum io_engine_kind
 * (the daemon maps one onto the other; config/ includes nothing of core/). */
enum cfg_io_engine { CFG_IO_ENGINE_AUTO, CFG_IO_ENGINE_URING, CFG_IO_ENGINE_THREADS };

struct cfg_daemon {
	int log_level;              /* a syslog priority: CFG_LOG_* */
	char control[PATH_MAX];     /* control socket; "none" disables it */
	bool control_set;           /* given in the file (failure to open is fatal) */
	unsigned threads;           /* worker loops, each with its own I/O engine */
	enum cfg_io_engine io_engine;
	bool journal;               /* keep in-flight journals (hand-over, crash recovery) */
	unsigned upgrade_drain_ms;  /* how long an upgrade waits for block requests */
	unsigned busy_poll_us;      /* the longest spin before a loop sleeps; 0: never */
	char sysfs_root[PATH_MAX];
	char dev_root[PATH_MAX];
	char root_cell[PATH_MAX];   /* "" if not given */
	int root_cell_line;
};

#define CFG_CMDLINE_MAX 8192

struct cfg_cell {
	char name[CFG_NAME_MAX];
	int line;                   /* of the section header */
	char config[PATH_MAX];      /* the Jailhouse .cell file */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];      /* "" if none */
	char dtb[PATH_MAX];         /* "" if none; ARM cells need one */
	char cmdline[CFG_CMDLINE_MAX];
	bool cmdline_set;
	unsigned order;             /* 0 unless given */
	bool order_set;
	int config_line, kernel_line, initrd_line, dtb_line;   /* of the keys, 0 if not given */
};

struct config {
	char path[PATH_MAX];
	struct cfg_daemon daemon;
	struct cfg_device *devices;
	unsigned ndevices;
	struct cfg_cell *cells;     /* [cell NAME] sections in file order */
	unsigned ncells;
};

/* Parse and validate path.  On error returns a negative errno with the
 * message (file:line: [section] key: what is wrong) in err. */
int config_load(const char *path, struct config **ret, char *err, size_t err_len);
void config_free(struct config *cfg);

const char *cfg_link_kind_name(enum cfg_link_kind kind);
const char *cfg_dev_type_name(enum cfg_dev_type type);
const char *cfg_endpoint_name(enum cfg_endpoint ep);
/* The [cell] section of that name, or NULL. */
const struct cfg_cell *config_find_cell(const struct config *cfg, const char *name);
/* Boot order: idx[0..ncells) gets the cell indices sorted by ascending
 * order, equal orders in file order. */
void config_cell_boot_order(const struct config *cfg, unsigned *idx);
/* Number of devices of one type. */
unsigned config_count(const struct config *cfg, enum cfg_dev_type type);
