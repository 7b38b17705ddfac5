#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/log.h"

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
	int section_kind;           /* 0 none, 1 daemon, 2 block */
	struct cfg_block *cur_block;
	char err[512];
	int err_line;
	bool failed;
};

enum { SEC_NONE, SEC_DAEMON, SEC_BLOCK, SEC_BAD };

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

static void begin_section(struct parser *ps, const char *text, int line)
{
	char type[32] = "", name[CFG_NAME_MAX + 8] = "", extra[8] = "";
	snprintf(ps->cur_section, sizeof(ps->cur_section), "%s", text);
	ps->cur_line = line;
	ps->cur_block = NULL;
	int n = sscanf(text, "%31s %71s %7s", type, name, extra);
	if (n == 1 && strcmp(type, "daemon") == 0) {
		ps->section_kind = SEC_DAEMON;
		return;
	}
	if (strcmp(type, "block") == 0) {
		ps->section_kind = SEC_BAD;
		if (n != 2 || !valid_name(name)) {
			fail_at(ps, line, "[%s]: a block section needs one name of letters, digits, "
				"'-', '_' or '.' (e.g. [block disk0])", text);
			return;
		}
		for (unsigned i = 0; i < ps->cfg->nblocks; i++) {
			if (strcmp(ps->cfg->blocks[i].name, name) == 0) {
				fail_at(ps, line, "[%s]: duplicate device name '%s' (first at line %d)",
					text, name, ps->cfg->blocks[i].line);
				return;
			}
		}
		struct cfg_block *nb = realloc(ps->cfg->blocks,
					       (ps->cfg->nblocks + 1) * sizeof(*nb));
		if (!nb) {
			fail_at(ps, line, "out of memory");
			return;
		}
		ps->cfg->blocks = nb;
		struct cfg_block *b = &nb[ps->cfg->nblocks++];
		memset(b, 0, sizeof(*b));
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->line = line;
		b->queues = 1;
		b->queue_size = 256;
		b->seg_max = 126;
		b->link.shm_size = 4u << 20;
		ps->cur_block = b;
		ps->section_kind = SEC_BLOCK;
		return;
	}
	ps->section_kind = SEC_BAD;
	fail_at(ps, line, "[%s]: unknown section (expected [daemon] or [block NAME])", text);
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

static void set_link(struct parser *ps, struct cfg_block *b, enum cfg_link_kind kind,
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

static void block_key(struct parser *ps, struct cfg_block *b, const char *key, const char *value)
{
	unsigned long long u;
	uint64_t sz;
	if (strcmp(key, "uio") == 0) {
		set_link(ps, b, LINK_UIO, key, value);
	} else if (strcmp(key, "pci") == 0) {
		set_link(ps, b, LINK_PCI, key, value);
	} else if (strcmp(key, "sim") == 0) {
		set_link(ps, b, LINK_SIM_HOST, key, value);
	} else if (strcmp(key, "sim-connect") == 0) {
		set_link(ps, b, LINK_SIM_CONNECT, key, value);
	} else if (strcmp(key, "image") == 0) {
		if (!value[0] || strlen(value) >= sizeof(b->image))
			BAD("needs a file name");
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
	} else if (strcmp(key, "shm-size") == 0) {
		if (!parse_size(value, &sz) || sz < (64u << 10) || sz > (1ull << 32))
			BAD("must be a size from 64K to 4G, like 4M (got '%s')", value);
		else
			b->link.shm_size = sz;
	} else if (strcmp(key, "vectors") == 0) {
		if (!parse_uint(value, 64, &u) || u < 1)
			BAD("must be a number from 1 to 64 (got '%s')", value);
		else
			b->link.vectors = (uint32_t)u;
	} else if (strcmp(key, "cell") == 0) {
		if (!valid_name(value))
			BAD("'%s' is not a valid cell name", value);
		else
			snprintf(b->cell, sizeof(b->cell), "%s", value);
	} else {
		BAD("unknown key");
	}
}

static void daemon_key(struct parser *ps, const char *key, const char *value)
{
	struct cfg_daemon *d = &ps->cfg->daemon;
	if (strcmp(key, "log-level") == 0) {
		enum log_level lvl;
		if (log_parse_level(value, &lvl) < 0)
			BAD("must be error, warning, info or debug (got '%s')", value);
		else
			d->log_level = lvl;
	} else if (strcmp(key, "sysfs-root") == 0) {
		snprintf(d->sysfs_root, sizeof(d->sysfs_root), "%s", value);
	} else if (strcmp(key, "dev-root") == 0) {
		snprintf(d->dev_root, sizeof(d->dev_root), "%s", value);
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
	case SEC_BLOCK:
		block_key(ps, ps->cur_block, key, value);
		break;
	case SEC_NONE:
		fail_at(ps, ps->line, "%s: key outside of any section", key);
		break;
	default:
		break;      /* the section itself was already reported */
	}
	return 1;
}

static void check_block(struct parser *ps, const struct cfg_block *b)
{
	char sec[96];
	snprintf(sec, sizeof(sec), "block %s", b->name);
	if (b->link.kind == LINK_NONE) {
		fail_at(ps, b->line, "[%s]: missing key 'uio', 'pci', 'sim' or 'sim-connect' "
			"(the IVSHMEM link)", sec);
		return;
	}
	if (!b->image[0]) {
		fail_at(ps, b->line, "[%s]: missing key 'image'", sec);
		return;
	}
	for (const struct cfg_block *o = ps->cfg->blocks; o < b; o++) {
		if (o->link.kind == b->link.kind && strcmp(o->link.target, b->link.target) == 0) {
			fail_at(ps, b->link.line, "[%s] %s: link %s is already used by [block %s] "
				"(line %d)", sec, cfg_link_kind_name(b->link.kind), b->link.target,
				o->name, o->link.line);
			return;
		}
	}
	if (access(b->image, b->read_only ? R_OK : R_OK | W_OK) != 0) {
		fail_at(ps, b->line, "[%s] image: %s: %s%s", sec, b->image, strerror(errno),
			errno == EACCES && !b->read_only ? " (set read-only = yes to serve it "
			"read-only)" : "");
		return;
	}
}

int config_load(const char *path, struct config **ret, char *err, size_t err_len)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	cfg->daemon.log_level = LOG_INFO;
	snprintf(cfg->daemon.sysfs_root, sizeof(cfg->daemon.sysfs_root), "/sys");
	snprintf(cfg->daemon.dev_root, sizeof(cfg->daemon.dev_root), "/dev");

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
	for (unsigned i = 0; i < cfg->nblocks && !ps.failed; i++)
		check_block(&ps, &cfg->blocks[i]);
	if (!ps.failed && cfg->nblocks == 0)
		fail_at(&ps, ps.line, "no device configured (add a [block NAME] section)");
	if (ps.failed) {
		snprintf(err, err_len, "%s", ps.err);
		config_free(cfg);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nblocks; i++) {
		struct cfg_block *b = &cfg->blocks[i];
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
	free(cfg->blocks);
	free(cfg);
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
