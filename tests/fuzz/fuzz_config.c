/* Fuzz target: the config file parser (config/config.c, on libinih):
 * config_load() on a file holding the input bytes.
 *
 * Oracles besides the sanitizers (leaks included): a refused file gets a
 * message that names the file and a line; an accepted one keeps every
 * promise of config.h: at least one device, each with exactly one link,
 * names of the allowed characters, sizes and counts in their ranges (a
 * null disk's size too), an I/O engine config.h names, a
 * console with an endpoint (and a path unless stdio), at most one stdio
 * console, every `cell =` naming a [cell] section when there are any, every
 * cell with its config and kernel, and a boot order that is a permutation
 * sorted by order.  Files the config names are only checked for access:
 * nothing is opened but the config itself.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "tests/fuzz/fuzz.h"

static char path[64];

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			return false;
	return n > 0 && n < CFG_NAME_MAX;
}

static void check_device(const struct config *cfg, const struct cfg_device *d)
{
	FZ_CHECK(name_ok(d->name), "device name '%s'", d->name);
	FZ_CHECK(d->link.kind != LINK_NONE && d->link.target[0], "[%s] without a link", d->name);
	FZ_CHECK(strlen(d->serial) <= 20, "[%s] serial of %zu", d->name, strlen(d->serial));
	FZ_CHECK(d->queues >= 1 && d->queues <= 64, "[%s] %u queues", d->name, d->queues);
	FZ_CHECK(d->queue_size <= 32768 && !(d->queue_size & (d->queue_size - 1)) &&
		 (d->type == DEV_CONSOLE || d->queue_size >= 2),
		 "[%s] queue size %u", d->name, d->queue_size);
	FZ_CHECK(d->seg_max <= 1024, "[%s] seg-max %u", d->name, d->seg_max);
	FZ_CHECK(!d->block_size || (d->block_size >= 512 && d->block_size <= 65536 &&
				    !(d->block_size & (d->block_size - 1))),
		 "[%s] block size %u", d->name, d->block_size);
	FZ_CHECK(d->link.shm_size >= 64 << 10 && d->link.shm_size <= 1ull << 32 &&
		 !(d->link.shm_size & (d->link.shm_size - 1)),
		 "[%s] shm-size %llu", d->name, (unsigned long long)d->link.shm_size);
	FZ_CHECK(d->link.vectors <= 64, "[%s] %u vectors", d->name, d->link.vectors);
	if (d->type == DEV_BLOCK) {
		FZ_CHECK(d->image[0], "[%s] without an image", d->name);
		/* image = null:SIZE: the null disk, SIZE a multiple of 512 and
		 * of block-size; any other image is a file (null_size 0). */
		FZ_CHECK((d->null_size != 0) == (strncmp(d->image, "null:", 5) == 0),
			 "[%s] image '%s', null disk of %llu bytes", d->name, d->image,
			 (unsigned long long)d->null_size);
		FZ_CHECK(d->null_size % 512 == 0 &&
			 (!d->block_size || d->null_size % d->block_size == 0),
			 "[%s] null disk of %llu bytes, block size %u", d->name,
			 (unsigned long long)d->null_size, d->block_size);
	} else {
		FZ_CHECK(d->endpoint_set && (d->endpoint == EP_STDIO || d->ep_path[0]),
			 "[%s] endpoint %d, path '%s'", d->name, d->endpoint, d->ep_path);
		FZ_CHECK(d->backlog <= 64u << 20, "[%s] backlog %llu", d->name,
			 (unsigned long long)d->backlog);
		FZ_CHECK(d->cols >= 1 && d->cols <= 65535 && d->rows >= 1 && d->rows <= 65535,
			 "[%s] %ux%u", d->name, d->cols, d->rows);
	}
	if (cfg->ncells && d->cell[0])
		FZ_CHECK(config_find_cell(cfg, d->cell), "[%s] names cell '%s', which is not there",
			 d->name, d->cell);
	for (const struct cfg_device *o = cfg->devices; o < d; o++) {
		FZ_CHECK(strcmp(o->name, d->name), "two devices named '%s'", d->name);
		FZ_CHECK(o->link.kind != d->link.kind || strcmp(o->link.target, d->link.target),
			 "two devices on link '%s'", d->link.target);
	}
}

static void check_accepted(const struct config *cfg)
{
	unsigned stdio = 0;
	FZ_CHECK(cfg->ndevices > 0, "no device accepted");
	FZ_CHECK(cfg->daemon.threads >= 1 && cfg->daemon.threads <= 64, "%u threads",
		 cfg->daemon.threads);
	FZ_CHECK(cfg->daemon.upgrade_drain_ms <= 60000, "drain %u ms", cfg->daemon.upgrade_drain_ms);
	FZ_CHECK(cfg->daemon.io_engine == CFG_IO_ENGINE_AUTO ||
		 cfg->daemon.io_engine == CFG_IO_ENGINE_URING ||
		 cfg->daemon.io_engine == CFG_IO_ENGINE_THREADS, "io-engine %d",
		 (int)cfg->daemon.io_engine);
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		check_device(cfg, &cfg->devices[i]);
		stdio += cfg->devices[i].type == DEV_CONSOLE && cfg->devices[i].endpoint == EP_STDIO;
	}
	FZ_CHECK(stdio <= 1, "%u stdio consoles", stdio);
	FZ_CHECK(config_count(cfg, DEV_BLOCK) + config_count(cfg, DEV_CONSOLE) == cfg->ndevices,
		 "device counts");
	unsigned *idx = malloc((cfg->ncells ? cfg->ncells : 1) * sizeof(*idx));
	bool *seen = calloc(cfg->ncells ? cfg->ncells : 1, 1);
	if (!idx || !seen)
		abort();
	config_cell_boot_order(cfg, idx);
	for (unsigned i = 0; i < cfg->ncells; i++) {
		const struct cfg_cell *c = &cfg->cells[i];
		FZ_CHECK(name_ok(c->name) && c->config[0] && c->kernel[0], "cell '%s'", c->name);
		FZ_CHECK(c->order <= 9999 && strlen(c->cmdline) < CFG_CMDLINE_MAX, "cell '%s'",
			 c->name);
		FZ_CHECK(idx[i] < cfg->ncells && !seen[idx[i]], "boot order is no permutation");
		seen[idx[i]] = true;
		FZ_CHECK(!i || cfg->cells[idx[i - 1]].order <= cfg->cells[idx[i]].order,
			 "boot order not sorted");
	}
	free(idx);
	free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz-config.%d.conf", (int)getpid());
	FILE *f = fopen(path, "we");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct config *cfg = NULL;
	char err[600] = "";
	int r = config_load(path, &cfg, err, sizeof(err));
	if (r < 0) {
		FZ_CHECK(!cfg, "a refused file left a config");
		FZ_CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
			 "error without the file's name: '%s'", err);
		return 0;
	}
	FZ_CHECK(r == 0 && cfg, "config_load returned %d", r);
	check_accepted(cfg);
	config_free(cfg);
	return 0;
}
