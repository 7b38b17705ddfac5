#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Parser state: inih calls us per key; a wrapping reader counts lines so
 * that errors can name them, and sees section headers (even empty ones). */
struct parser {
	const char *path;
	FILE *f;
	int line;
	char *buf;
	size_t buf_len;
	struct config *cfg;
	char cur_section[128];      /* the raw "[...]" text being filled */
	int cur_line;
	int section_kind;
	struct cfg_device *cur_dev;
	struct cfg_cell *cur_cell;
	char err[512];
	int err_line;
	bool failed;
};

enum { SEC_NONE, SEC_DAEMON, SEC_DEVICE, SEC_CELL, SEC_BAD };

static void fail_at(struct parser *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(struct parser *ps, int line, const char *fmt, ...)
{
	if (ps->failed)
		return;     /* the first error is the one reported */
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, sizeof(ps->err), "%s:%d: %s", ps->path, line, msg);
	ps->err_line = line;
	ps->failed = true;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CFG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static void begin_cell(struct parser *ps, const char *text, int line, const char *name)
{
	ps->section_kind = SEC_BAD;
	if (!name || !valid_name(name)) {
		fail_at(ps, line, "[%s]: a cell section needs one name of letters, digits, "
			"'-', '_' or '.' (e.g. [cell linux-1])", text);
		return;
	}
	for (unsigned i = 0; i < ps->cfg->ncells; i++) {
		if (strcmp(ps->cfg->cells[i].name, name) == 0) {
			fail_at(ps, line, "[%s]: duplicate cell name '%s' (first at line %d)",
				text, name, ps->cfg->cells[i].line);
			return;
		}
	}
	struct cfg_cell *nc = realloc(ps->cfg->cells, (ps->cfg->ncells + 1) * sizeof(*nc));
	if (!nc) {
		fail_at(ps, line, "out of memory");
		return;
	}
	ps->cfg->cells = nc;
	struct cfg_cell *c = &nc[ps->cfg->ncells++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->line = line;
	ps->cur_cell = c;
	ps->section_kind = SEC_CELL;
}

static void begin_section(struct parser *ps, const char *text, int line)
{
	char type[32] = "", name[CFG_NAME_MAX + 8] = "", extra[8] = "";
	snprintf(ps->cur_section, sizeof(ps->cur_section), "%s", text);
	ps->cur_line = line;
	ps->cur_dev = NULL;
	ps->cur_cell = NULL;
	int n = sscanf(text, "%31s %71s %7s", type, name, extra);
	if (n == 1 && strcmp(type, "daemon") == 0) {
		ps->section_kind = SEC_DAEMON;
		return;
	}
	if (n >= 1 && strcmp(type, "cell") == 0) {
		begin_cell(ps, text, line, n == 2 ? name : NULL);
		return;
	}
	bool is_block = strcmp(type, "block") == 0, is_console = strcmp(type, "console") == 0;
	if (!is_block && !is_console) {
		ps->section_kind = SEC_BAD;
		fail_at(ps, line, "[%s]: unknown section (expected [daemon], [block NAME] or "
			"[console NAME])", text);
		return;
	}
	ps->section_kind = SEC_BAD;
	if (n != 2 || !valid_name(name)) {
		fail_at(ps, line, "[%s]: a %s section needs one name of letters, digits, "
			"'-', '_' or '.' (e.g. [%s %s])", text, type, type,
			is_block ? "disk0" : "console0");
		return;
	}
	for (unsigned i = 0; i < ps->cfg->ndevices; i++) {
		if (strcmp(ps->cfg->devices[i].name, name) == 0) {
			fail_at(ps, line, "[%s]: duplicate device name '%s' (first at line %d)",
				text, name, ps->cfg->devices[i].line);
			return;
		}
	}
	struct cfg_device *nd = realloc(ps->cfg->devices, (ps->cfg->ndevices + 1) * sizeof(*nd));
	if (!nd) {
		fail_at(ps, line, "out of memory");
		return;
	}
	ps->cfg->devices = nd;
	struct cfg_device *b = &nd[ps->cfg->ndevices++];
	memset(b, 0, sizeof(*b));
	b->type = is_block ? DEV_BLOCK : DEV_CONSOLE;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->line = line;
	b->queues = 1;
	b->queue_size = is_block ? 256 : 0;   /* console: the largest that fits */
	b->seg_max = 0;        /* automatic: 126, fewer on small links */
	b->link.shm_size = is_block ? 4u << 20 : 256u << 10;
	b->backlog = 64u << 10;
	b->cols = 80;
	b->rows = 25;
	ps->cur_dev = b;
	ps->section_kind = SEC_DEVICE;
}

/* inih reader: one whole line per call, counted. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	ssize_t n = getline(&ps->buf, &ps->buf_len, ps->f);
	if (n < 0)
		return NULL;
	ps->line++;
	if (n >= num) {
		fail_at(ps, ps->line, "line is longer than %d characters", num - 1);
		str[0] = '\0';
		return str;
	}
	memcpy(str, ps->buf, (size_t)n + 1);
	const char *s = ps->buf;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (end) {
			char text[128];
			size_t len = (size_t)(end - s - 1) < sizeof(text) - 1 ? (size_t)(end - s - 1)
									   : sizeof(text) - 1;
			memcpy(text, s + 1, len);
			text[len] = '\0';
			begin_section(ps, text, ps->line);
		}
	}
	return str;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) { *out = true; return true; }
		if (strcasecmp(v, no[i]) == 0) { *out = false; return true; }
	}
	return false;
}

static bool parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
	char *end;
	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || *end || x > max)
		return false;
	*out = x;
	return true;
}

/* "4M", "512K", "1G", "65536". */
static bool parse_size(const char *v, uint64_t *out)
{
	char *end;
	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k') shift = 10, end++;
	else if (*end == 'M' || *end == 'm') shift = 20, end++;
	else if (*end == 'G' || *end == 'g') shift = 30, end++;
	if (errno || *end || x > (UINT64_MAX >> shift))
		return false;
	*out = x << shift;
	return true;
}

static void set_link(struct parser *ps, struct cfg_device *b, enum cfg_link_kind kind,
		     const char *key, const char *value)
{
	if (b->link.kind != LINK_NONE) {
		fail_at(ps, ps->line, "[%s] %s: the device already has a link (%s, line %d); "
			"give exactly one of uio, pci, sim, sim-connect", ps->cur_section, key,
			cfg_link_kind_name(b->link.kind), b->link.line);
		return;
	}
	if (!value[0] || strlen(value) >= sizeof(b->link.target)) {
		fail_at(ps, ps->line, "[%s] %s: needs a value", ps->cur_section, key);
		return;
	}
	if (kind == LINK_PCI) {
		unsigned d, bus, dev, fn;
		char tail;
		if (sscanf(value, "%4x:%2x:%2x.%1x%c", &d, &bus, &dev, &fn, &tail) != 4) {
			fail_at(ps, ps->line, "[%s] %s: '%s' is not a PCI address like 0000:00:0c.0",
				ps->cur_section, key, value);
			return;
		}
	}
	b->link.kind = kind;
	b->link.line = ps->line;
	snprintf(b->link.target, sizeof(b->link.target), "%s", value);
}

#define BAD(fmt, ...) fail_at(ps, ps->line, "[%s] %s: " fmt, ps->cur_section, key, ##__VA_ARGS__)

static bool set_file(struct parser *ps, const char *key, const char *value, char *dst,
		     size_t dst_len);

static bool console_key(struct parser *ps, struct cfg_device *b, const char *key,
			const char *value)
{
	unsigned long long u;
	uint64_t sz;
	if (strcmp(key, "endpoint") == 0) {
		static const char *names[] = { "pty", "socket", "log", "stdio" };
		for (unsigned i = 0; i < 4; i++) {
			if (strcmp(value, names[i]) == 0) {
				b->endpoint = (enum cfg_endpoint)i;
				b->endpoint_set = true;
				return true;
			}
		}
		BAD("must be pty, socket, log or stdio (got '%s')", value);
	} else if (strcmp(key, "path") == 0) {
		if (!value[0] || strlen(value) >= sizeof(b->ep_path))
			BAD("needs a file name");
		else
			snprintf(b->ep_path, sizeof(b->ep_path), "%s", value);
	} else if (strcmp(key, "backlog") == 0) {
		if (!parse_size(value, &sz) || sz > (64u << 20))
			BAD("must be a size up to 64M, like 64K (got '%s')", value);
		else
			b->backlog = sz;
	} else if (strcmp(key, "cols") == 0 || strcmp(key, "rows") == 0) {
		if (!parse_uint(value, 65535, &u) || u < 1)
			BAD("must be a number from 1 to 65535 (got '%s')", value);
		else if (key[0] == 'c')
			b->cols = (unsigned)u;
		else
			b->rows = (unsigned)u;
	} else {
		return false;
	}
	return true;
}

static void device_key(struct parser *ps, struct cfg_device *b, const char *key, const char *value)
{
	unsigned long long u;
	uint64_t sz;
	bool block = b->type == DEV_BLOCK;
	static const char *block_only[] = { "image", "read-only", "serial", "queues", "seg-max",
					    "block-size", "cache", NULL };
	for (int i = 0; block_only[i]; i++) {
		if (!block && strcmp(key, block_only[i]) == 0) {
			BAD("not a console key");
			return;
		}
	}
	if (!block && console_key(ps, b, key, value))
		return;
	if (strcmp(key, "uio") == 0) {
		set_link(ps, b, LINK_UIO, key, value);
	} else if (strcmp(key, "pci") == 0) {
		set_link(ps, b, LINK_PCI, key, value);
	} else if (strcmp(key, "sim") == 0) {
		set_link(ps, b, LINK_SIM_HOST, key, value);
	} else if (strcmp(key, "sim-connect") == 0) {
		set_link(ps, b, LINK_SIM_CONNECT, key, value);
	} else if (strcmp(key, "image") == 0) {
		b->null_size = 0;
		if (!value[0] || strlen(value) >= sizeof(b->image))
			BAD("needs a file name");
		else if (strncmp(value, "null:", 5) == 0 &&
			 (!parse_size(value + 5, &b->null_size) || b->null_size == 0 ||
			  b->null_size % 512))
			BAD("the null disk needs a size in bytes, a multiple of 512, like null:1G "
			    "(got '%s')", value);
		else
			snprintf(b->image, sizeof(b->image), "%s", value);
	} else if (strcmp(key, "read-only") == 0) {
		if (!parse_bool(value, &b->read_only))
			BAD("must be yes or no (got '%s')", value);
	} else if (strcmp(key, "serial") == 0) {
		if (strlen(value) > 20)
			BAD("at most 20 characters (got %zu)", strlen(value));
		else {
			snprintf(b->serial, sizeof(b->serial), "%s", value);
			b->serial_set = true;
		}
	} else if (strcmp(key, "queues") == 0) {
		if (!parse_uint(value, 64, &u) || u < 1)
			BAD("must be a number from 1 to 64 (got '%s')", value);
		else
			b->queues = (unsigned)u;
	} else if (strcmp(key, "queue-size") == 0) {
		if (!parse_uint(value, 32768, &u) || u < 2 || (u & (u - 1)))
			BAD("must be a power of two from 2 to 32768 (got '%s')", value);
		else
			b->queue_size = (unsigned)u;
	} else if (strcmp(key, "seg-max") == 0) {
		if (!parse_uint(value, 1024, &u) || u < 1)
			BAD("must be a number from 1 to 1024 (got '%s')", value);
		else
			b->seg_max = (unsigned)u;
	} else if (strcmp(key, "block-size") == 0) {
		if (!parse_uint(value, 65536, &u) || u < 512 || (u & (u - 1)))
			BAD("must be a power of two from 512 to 65536 (got '%s')", value);
		else
			b->block_size = (unsigned)u;
	} else if (strcmp(key, "cache") == 0) {
		b->cache_line = ps->line;
		if (strcmp(value, "writeback") == 0)
			b->cache = CFG_CACHE_WRITEBACK;
		else if (strcmp(value, "none") == 0)
			b->cache = CFG_CACHE_NONE;
		else
			BAD("must be writeback or none (got '%s')", value);
	} else if (strcmp(key, "shm-size") == 0) {
		if (!parse_size(value, &sz) || sz < (64u << 10) || sz > (1ull << 32) ||
		    (sz & (sz - 1)))
			BAD("must be a power of two from 64K to 4G, like 4M: the link's whole shared "
			    "memory, mapped as one PCI BAR (got '%s')", value);
		else
			b->link.shm_size = sz;
	} else if (strcmp(key, "vectors") == 0) {
		if (!parse_uint(value, 64, &u) || u < 1)
			BAD("must be a number from 1 to 64 (got '%s')", value);
		else
			b->link.vectors = (uint32_t)u;
	} else if (strcmp(key, "cell") == 0) {
		if (!valid_name(value)) {
			BAD("'%s' is not a valid cell name", value);
		} else {
			snprintf(b->cell, sizeof(b->cell), "%s", value);
			b->cell_line = ps->line;
		}
	} else {
		BAD("unknown key");
	}
}

static void daemon_key(struct parser *ps, const char *key, const char *value)
{
	struct cfg_daemon *d = &ps->cfg->daemon;
	if (strcmp(key, "log-level") == 0) {
		static const struct { const char *name; int prio; } levels[] = {
			{ "error", CFG_LOG_ERROR }, { "warning", CFG_LOG_WARNING },
			{ "info", CFG_LOG_INFO }, { "debug", CFG_LOG_DEBUG },
		};
		size_t i = 0;
		while (i < sizeof(levels) / sizeof(levels[0]) && strcmp(value, levels[i].name))
			i++;
		if (i == sizeof(levels) / sizeof(levels[0]))
			BAD("must be error, warning, info or debug (got '%s')", value);
		else
			d->log_level = levels[i].prio;
	} else if (strcmp(key, "threads") == 0) {
		unsigned long long u;
		if (!parse_uint(value, 64, &u) || u < 1)
			BAD("must be a number from 1 to 64 (got '%s')", value);
		else
			d->threads = (unsigned)u;
	} else if (strcmp(key, "io-engine") == 0) {
		static const char *const engines[] = {
			[CFG_IO_ENGINE_AUTO] = "auto", [CFG_IO_ENGINE_URING] = "io_uring",
			[CFG_IO_ENGINE_THREADS] = "threads",
		};
		size_t i = 0;
		while (i < sizeof(engines) / sizeof(engines[0]) && strcmp(value, engines[i]))
			i++;
		if (i == sizeof(engines) / sizeof(engines[0]))
			BAD("must be auto, io_uring or threads (got '%s')", value);
		else
			d->io_engine = (enum cfg_io_engine)i;
	} else if (strcmp(key, "journal") == 0) {
		if (!parse_bool(value, &d->journal))
			BAD("must be yes or no (got '%s')", value);
	} else if (strcmp(key, "busy-poll-us") == 0) {
		unsigned long long u;
		if (!parse_uint(value, CFG_MAX_BUSY_POLL_US, &u))
			BAD("must be a number of microseconds from 0 to %u (got '%s')",
			    CFG_MAX_BUSY_POLL_US, value);
		else
			d->busy_poll_us = (unsigned)u;
	} else if (strcmp(key, "upgrade-drain-ms") == 0) {
		unsigned long long u;
		if (!parse_uint(value, 60000, &u))
			BAD("must be a number of milliseconds from 0 to 60000 (got '%s')", value);
		else
			d->upgrade_drain_ms = (unsigned)u;
	} else if (strcmp(key, "control-socket") == 0) {
		if (!value[0] || strlen(value) >= 108) {
			BAD("needs a socket path shorter than 108 bytes, or none");
			return;
		}
		snprintf(d->control, sizeof(d->control), "%s", value);
		d->control_set = true;
	} else if (strcmp(key, "sysfs-root") == 0) {
		snprintf(d->sysfs_root, sizeof(d->sysfs_root), "%s", value);
	} else if (strcmp(key, "dev-root") == 0) {
		snprintf(d->dev_root, sizeof(d->dev_root), "%s", value);
	} else if (strcmp(key, "root-cell") == 0) {
		if (set_file(ps, key, value, d->root_cell, sizeof(d->root_cell)))
			d->root_cell_line = ps->line;
	} else {
		BAD("unknown key");
	}
}

/* A file the cell manager reads later: it must be readable now, so that a
 * typo is reported with its line rather than half-way through `up`. */
static bool set_file(struct parser *ps, const char *key, const char *value, char *dst,
		     size_t dst_len)
{
	if (!value[0] || strlen(value) >= dst_len) {
		BAD("needs a file name");
		return false;
	}
	if (access(value, R_OK) != 0) {
		BAD("%s: %s", value, strerror(errno));
		return false;
	}
	snprintf(dst, dst_len, "%s", value);
	return true;
}

static void cell_key(struct parser *ps, struct cfg_cell *c, const char *key, const char *value)
{
	if (strcmp(key, "config") == 0) {
		if (set_file(ps, key, value, c->config, sizeof(c->config)))
			c->config_line = ps->line;
	} else if (strcmp(key, "kernel") == 0) {
		if (set_file(ps, key, value, c->kernel, sizeof(c->kernel)))
			c->kernel_line = ps->line;
	} else if (strcmp(key, "initrd") == 0) {
		if (set_file(ps, key, value, c->initrd, sizeof(c->initrd)))
			c->initrd_line = ps->line;
	} else if (strcmp(key, "dtb") == 0) {
		if (set_file(ps, key, value, c->dtb, sizeof(c->dtb)))
			c->dtb_line = ps->line;
	} else if (strcmp(key, "cmdline") == 0) {
		/* Repeated (or continued) lines are joined: inih limits a line. */
		size_t len = strlen(c->cmdline);
		size_t add = strlen(value) + (c->cmdline_set && len && value[0] ? 1 : 0);
		if (len + add >= sizeof(c->cmdline)) {
			BAD("longer than %zu bytes in total", sizeof(c->cmdline) - 1);
			return;
		}
		if (c->cmdline_set && len && value[0])
			c->cmdline[len++] = ' ';
		memcpy(c->cmdline + len, value, strlen(value) + 1);
		c->cmdline_set = true;
	} else if (strcmp(key, "order") == 0) {
		unsigned long long u;
		if (!parse_uint(value, 9999, &u)) {
			BAD("must be a number from 0 to 9999 (got '%s')", value);
		} else {
			c->order = (unsigned)u;
			c->order_set = true;
		}
	} else {
		BAD("unknown key");
	}
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parser *ps = user;
	(void)section;
	switch (ps->section_kind) {
	case SEC_DAEMON:
		daemon_key(ps, key, value);
		break;
	case SEC_DEVICE:
		device_key(ps, ps->cur_dev, key, value);
		break;
	case SEC_CELL:
		cell_key(ps, ps->cur_cell, key, value);
		break;
	case SEC_NONE:
		fail_at(ps, ps->line, "%s: key outside of any section", key);
		break;
	default:
		break;      /* the section itself was already reported */
	}
	return 1;
}

static void check_device(struct parser *ps, const struct cfg_device *b)
{
	char sec[96];
	snprintf(sec, sizeof(sec), "%s %s", cfg_dev_type_name(b->type), b->name);
	if (b->link.kind == LINK_NONE) {
		fail_at(ps, b->line, "[%s]: missing key 'uio', 'pci', 'sim' or 'sim-connect' "
			"(the IVSHMEM link)", sec);
		return;
	}
	for (const struct cfg_device *o = ps->cfg->devices; o < b; o++) {
		if (o->link.kind == b->link.kind && strcmp(o->link.target, b->link.target) == 0) {
			fail_at(ps, b->link.line, "[%s] %s: link %s is already used by [%s %s] "
				"(line %d)", sec, cfg_link_kind_name(b->link.kind), b->link.target,
				cfg_dev_type_name(o->type), o->name, o->link.line);
			return;
		}
	}
	if (b->type == DEV_CONSOLE) {
		if (!b->endpoint_set) {
			fail_at(ps, b->line, "[%s]: missing key 'endpoint' (pty, socket, log or stdio)",
				sec);
			return;
		}
		if (b->endpoint != EP_STDIO && !b->ep_path[0]) {
			fail_at(ps, b->line, "[%s]: missing key 'path' (where the %s goes)", sec,
				cfg_endpoint_name(b->endpoint));
			return;
		}
		return;
	}
	if (!b->image[0]) {
		fail_at(ps, b->line, "[%s]: missing key 'image'", sec);
		return;
	}
	if (b->null_size) {
		/* no file; the backend would hide a partial last block */
		if (b->block_size && b->null_size % b->block_size)
			fail_at(ps, b->line, "[%s] image: the null disk's size (%llu bytes) is not a "
				"multiple of block-size %u", sec, (unsigned long long)b->null_size,
				b->block_size);
		return;
	}
	if (access(b->image, b->read_only ? R_OK : R_OK | W_OK) != 0) {
		fail_at(ps, b->line, "[%s] image: %s: %s%s", sec, b->image, strerror(errno),
			errno == EACCES && !b->read_only ? " (set read-only = yes to serve it "
			"read-only)" : "");
		return;
	}
	if (b->cache == CFG_CACHE_NONE) {
		/* Known now: whether the image's file system takes O_DIRECT at all
		 * (tmpfs does not: EINVAL).  Opened read-only and closed at once. */
		int fd = open(b->image, O_RDONLY | O_CLOEXEC | O_DIRECT);
		if (fd < 0 && errno == EINVAL)
			fail_at(ps, b->cache_line, "[%s] cache: none needs direct I/O (O_DIRECT), which "
				"the file system of %s does not support (tmpfs has none); use cache = "
				"writeback or put the image on another file system", sec, b->image);
		else if (fd >= 0)
			close(fd);
	}
}

static void check_cells(struct parser *ps)
{
	struct config *cfg = ps->cfg;
	for (unsigned i = 0; i < cfg->ncells && !ps->failed; i++) {
		const struct cfg_cell *c = &cfg->cells[i];
		if (!c->config[0])
			fail_at(ps, c->line, "[cell %s]: missing key 'config' (the cell's .cell file)",
				c->name);
		else if (!c->kernel[0])
			fail_at(ps, c->line, "[cell %s]: missing key 'kernel' (the Linux kernel to boot: "
				"x86 bzImage, arm64 Image or ARM zImage)", c->name);
	}
	if (cfg->ncells == 0)
		return;     /* the daemon alone: `cell =` is only a label */
	for (unsigned i = 0; i < cfg->ndevices && !ps->failed; i++) {
		const struct cfg_device *b = &cfg->devices[i];
		if (!b->cell[0] || config_find_cell(cfg, b->cell))
			continue;
		char names[256] = "";
		size_t len = 0;
		for (unsigned k = 0; k < cfg->ncells && len < sizeof(names); k++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
						k ? ", " : "", cfg->cells[k].name);
		fail_at(ps, b->cell_line, "[%s %s] cell: there is no [cell %s] section (cells: %s)",
			cfg_dev_type_name(b->type), b->name, b->cell, names);
	}
}

int config_load(const char *path, struct config **ret, char *err, size_t err_len)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	cfg->daemon.log_level = CFG_LOG_INFO;
	cfg->daemon.threads = 1;
	cfg->daemon.journal = true;
	cfg->daemon.upgrade_drain_ms = CFG_DEFAULT_UPGRADE_DRAIN_MS;
	cfg->daemon.busy_poll_us = CFG_DEFAULT_BUSY_POLL_US;
	snprintf(cfg->daemon.sysfs_root, sizeof(cfg->daemon.sysfs_root), "/sys");
	snprintf(cfg->daemon.dev_root, sizeof(cfg->daemon.dev_root), "/dev");
	snprintf(cfg->daemon.control, sizeof(cfg->daemon.control), "%s", CFG_DEFAULT_CONTROL);

	struct parser ps = { .path = path, .cfg = cfg };
	ps.f = fopen(path, "re");
	if (!ps.f) {
		int e = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		free(cfg);
		return e;
	}
	int r = ini_parse_stream(read_line, &ps, on_key, &ps);
	fclose(ps.f);
	free(ps.buf);
	if (r > 0 && (!ps.failed || r < ps.err_line)) {
		ps.failed = false;
		fail_at(&ps, r, "syntax error (expected [section] or key = value)");
	}
	for (unsigned i = 0; i < cfg->ndevices && !ps.failed; i++)
		check_device(&ps, &cfg->devices[i]);
	unsigned stdio = 0;
	for (unsigned i = 0; i < cfg->ndevices && !ps.failed; i++) {
		const struct cfg_device *b = &cfg->devices[i];
		if (b->type == DEV_CONSOLE && b->endpoint == EP_STDIO && stdio++)
			fail_at(&ps, b->line, "[console %s] endpoint: only one console can use stdio",
				b->name);
	}
	if (!ps.failed && cfg->ndevices == 0)
		fail_at(&ps, ps.line, "no device configured (add a [block NAME] or [console NAME] "
			"section)");
	if (!ps.failed)
		check_cells(&ps);
	if (ps.failed) {
		snprintf(err, err_len, "%s", ps.err);
		config_free(cfg);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		struct cfg_device *b = &cfg->devices[i];
		if (!b->serial_set)
			snprintf(b->serial, sizeof(b->serial), "%.20s", b->name);
	}
	*ret = cfg;
	return 0;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->devices);
	free(cfg->cells);
	free(cfg);
}

const struct cfg_cell *config_find_cell(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->ncells; i++)
		if (strcmp(cfg->cells[i].name, name) == 0)
			return &cfg->cells[i];
	return NULL;
}

void config_cell_boot_order(const struct config *cfg, unsigned *idx)
{
	/* Insertion sort: stable, and there are only a few cells. */
	for (unsigned i = 0; i < cfg->ncells; i++) {
		unsigned k = i;
		while (k > 0 && cfg->cells[idx[k - 1]].order > cfg->cells[i].order) {
			idx[k] = idx[k - 1];
			k--;
		}
		idx[k] = i;
	}
}

const char *cfg_link_kind_name(enum cfg_link_kind kind)
{
	switch (kind) {
	case LINK_UIO: return "uio";
	case LINK_PCI: return "pci";
	case LINK_SIM_HOST: return "sim";
	case LINK_SIM_CONNECT: return "sim-connect";
	default: return "none";
	}
}

const char *cfg_dev_type_name(enum cfg_dev_type type)
{
	return type == DEV_BLOCK ? "block" : "console";
}

const char *cfg_endpoint_name(enum cfg_endpoint ep)
{
	static const char *names[] = { "pty", "socket", "log", "stdio" };
	return ep <= EP_STDIO ? names[ep] : "?";
}

unsigned config_count(const struct config *cfg, enum cfg_dev_type type)
{
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->ndevices; i++)
		n += cfg->devices[i].type == type;
	return n;
}
