#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cellmgr/sysfs.h"
#include "fake_hw.h"
#include "testutil.h"

static void vrecord(struct fake_hw *f, const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	if (f->ncalls < FAKE_MAX_CALLS)
		f->calls[f->ncalls++] = s;
	else
		free(s);
}

static void record(struct fake_hw *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(struct fake_hw *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(f, fmt, ap);
	va_end(ap);
}

void fake_hw_record(struct fake_hw *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(f, fmt, ap);
	va_end(ap);
}

static const char *ref_str(const struct cm_cell_ref *r)
{
	static char buf[64];

	if (r->id >= 0)
		snprintf(buf, sizeof(buf), "id=%d", r->id);
	else
		snprintf(buf, sizeof(buf), "name=%.32s", r->name);
	return buf;
}

static int f_enable(void *ctx, const void *cfg, size_t len)
{
	struct fake_hw *f = ctx;

	record(f, "enable len=%zu sig=%.5s", len, (const char *)cfg);
	if (!f->ret_enable && f->sysfs_root) {
		tu_write_str(tu_fmt("%s/devices/jailhouse/enabled", f->sysfs_root), "1\n");
		tu_write_str(tu_fmt("%s/devices/jailhouse/cells/0/name", f->sysfs_root),
			     (const char *)cfg + (((const uint8_t *)cfg)[6] == 12 ? 354 : 356) + 8);
	}
	return f->ret_enable;
}

static int f_disable(void *ctx)
{
	struct fake_hw *f = ctx;

	record(f, "disable");
	return f->ret_disable;
}

static int f_create(void *ctx, const void *cfg, size_t len)
{
	struct fake_hw *f = ctx;

	record(f, "create len=%zu name=%s", len, (const char *)cfg + 8);
	if (f->create_hook)
		f->create_hook(f, (const char *)cfg + 8);
	if (!f->ret_create && f->sysfs_root) {
		int id = f->next_cell_id++;

		tu_write_str(tu_fmt("%s/devices/jailhouse/cells/%d/name", f->sysfs_root, id),
			     (const char *)cfg + 8);
		tu_write_str(tu_fmt("%s/devices/jailhouse/cells/%d/state", f->sysfs_root, id),
			     "shut down\n");
	}
	return f->ret_create;
}

static int f_load(void *ctx, const struct cm_cell_ref *cell, const struct cm_load_image *imgs,
		  unsigned n)
{
	struct fake_hw *f = ctx;
	char line[512];
	size_t pos;

	pos = (size_t)snprintf(line, sizeof(line), "load %s n=%u", ref_str(cell), n);
	for (unsigned i = 0; i < f->nimages; i++)
		free(f->images[i].data);
	f->nimages = 0;
	for (unsigned i = 0; i < n && i < FAKE_MAX_IMAGES; i++) {
		if (pos < sizeof(line))
			pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " 0x%llx+0x%llx",
						(unsigned long long)imgs[i].addr,
						(unsigned long long)imgs[i].size);
		f->images[i].addr = imgs[i].addr;
		f->images[i].size = imgs[i].size;
		f->images[i].data = malloc(imgs[i].size ? imgs[i].size : 1);
		memcpy(f->images[i].data, imgs[i].data, imgs[i].size);
		f->nimages++;
	}
	record(f, "%s", line);
	return f->ret_load;
}

static int f_start(void *ctx, const struct cm_cell_ref *cell)
{
	struct fake_hw *f = ctx;

	record(f, "start %s", ref_str(cell));
	return f->ret_start;
}

static int f_destroy(void *ctx, const struct cm_cell_ref *cell)
{
	struct fake_hw *f = ctx;

	record(f, "destroy %s", ref_str(cell));
	/* Like the driver: the cell disappears from sysfs. */
	if (!f->ret_destroy && f->sysfs_root) {
		int id = cell->id;
		char name[40];

		if (id < 0) {
			snprintf(name, sizeof(name), "%.32s", cell->name);
			if (cm_sysfs_cell_id(f->sysfs_root, name, &id) < 0)
				id = -1;
		}
		if (id > 0)
			tu_rmrf(tu_fmt("%s/devices/jailhouse/cells/%d", f->sysfs_root, id));
	}
	return f->ret_destroy;
}

static int f_module(void *ctx, const char *name)
{
	struct fake_hw *f = ctx;

	record(f, "module %s", name);
	return strcmp(name, "jailhouse") ? f->ret_module_uio : f->ret_module_jailhouse;
}

static int f_write(void *ctx, const char *path, const char *value)
{
	struct fake_hw *f = ctx;
	const char *rel = path;
	int fd;

	if (f->sysfs_root && !strncmp(path, f->sysfs_root, strlen(f->sysfs_root)))
		rel = path + strlen(f->sysfs_root);
	record(f, "write %s %s", rel, value);
	if (f->write_hook)
		return f->write_hook(f, path, value);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		abort();
	close(fd);
	return 0;
}

const struct cm_hw_ops fake_hw_ops = {
	.enable = f_enable, .disable = f_disable, .cell_create = f_create,
	.cell_load = f_load, .cell_start = f_start, .cell_destroy = f_destroy,
	.load_module = f_module, .sysfs_write = f_write,
};

void fake_hw_init(struct fake_hw *f, const char *sysfs_root)
{
	memset(f, 0, sizeof(*f));
	f->sysfs_root = sysfs_root;
	f->next_cell_id = 1;
}

void fake_hw_reset(struct fake_hw *f)
{
	for (unsigned i = 0; i < f->ncalls; i++)
		free(f->calls[i]);
	for (unsigned i = 0; i < f->nimages; i++)
		free(f->images[i].data);
	f->ncalls = 0;
	f->nimages = 0;
}

int fake_hw_find(const struct fake_hw *f, const char *prefix)
{
	return fake_hw_find_from(f, 0, prefix);
}

int fake_hw_find_from(const struct fake_hw *f, unsigned from, const char *prefix)
{
	for (unsigned i = from; i < f->ncalls; i++)
		if (!strncmp(f->calls[i], prefix, strlen(prefix)))
			return (int)i;
	return -1;
}
