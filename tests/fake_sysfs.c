#include "tests/fake_sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fake_uio fake_uio_default(void)
{
	return (struct fake_uio){
		.bdf = "0000:00:02.0", .uio = 0,
		.vendor = 0x110a, .device = 0x4106, .class_code = 0xffc002,
		.sub_vendor = 0x1af4, .sub_device = 0x1100,
		.msix = 2, .id = 0, .max_peers = 2,
		.state_size = 0x1000, .rw_size = 0x3ff000, .output_size = 0,
	};
}

static int mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int put(const char *dir, const char *name, const char *fmt, unsigned long long v)
{
	char path[PATH_MAX], text[64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(text, sizeof(text), fmt, v);
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", text);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int put_str(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", text);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int link_to(const char *target, const char *path)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		int r = mkdirs(parent);
		if (r < 0)
			return r;
	}
	unlink(path);
	return symlink(target, path) < 0 ? -errno : 0;
}

static int add_map(const char *uio_dir, unsigned k, const char *name, uint64_t addr,
		   uint64_t size)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/maps/map%u", uio_dir, k);
	int r = mkdirs(dir);
	if (r == 0)
		r = put_str(dir, "name", name);
	if (r == 0)
		r = put(dir, "addr", "0x%016llx", addr);
	if (r == 0)
		r = put(dir, "size", "0x%016llx", size);
	if (r == 0)
		r = put(dir, "offset", "0x%llx", 0);
	return r;
}

int fake_sysfs_add_uio(const char *root, const struct fake_uio *u)
{
	char pci[PATH_MAX], uio[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	int r;
	snprintf(pci, sizeof(pci), "%s/sys/devices/pci0000:00/%s", root, u->bdf);
	snprintf(uio, sizeof(uio), "%s/uio/uio%u", pci, u->uio);
	if ((r = mkdirs(uio)) < 0)
		return r;
	if ((r = put(pci, "vendor", "0x%04llx", u->vendor)) < 0 ||
	    (r = put(pci, "device", "0x%04llx", u->device)) < 0 ||
	    (r = put(pci, "class", "0x%06llx", u->class_code)) < 0 ||
	    (r = put(pci, "subsystem_vendor", "0x%04llx", u->sub_vendor)) < 0 ||
	    (r = put(pci, "subsystem_device", "0x%04llx", u->sub_device)) < 0 ||
	    (r = put(pci, "irq", "%llu", u->msix ? 0 : 11)) < 0)
		return r;
	for (unsigned v = 0; v < u->msix; v++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/msi_irqs", pci);
		if ((r = mkdirs(dir)) < 0)
			return r;
		char name[16];
		snprintf(name, sizeof(name), "%u", 24 + v);
		if ((r = put_str(dir, name, "msix")) < 0)
			return r;
	}
	char name[64];
	snprintf(name, sizeof(name), "uio_ivshmem[%s]", u->bdf);
	if ((r = put_str(uio, "name", name)) < 0 || (r = put_str(uio, "version", "1")) < 0 ||
	    (r = put(uio, "event", "%llu", 0)) < 0 ||
	    (r = put(uio, "dev", "246:%llu", u->uio)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/device", uio);
	snprintf(target, sizeof(target), "../../../%s", u->bdf);
	if ((r = link_to(target, path)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/sys/class/uio/uio%u", root, u->uio);
	snprintf(target, sizeof(target), "../../devices/pci0000:00/%s/uio/uio%u", u->bdf, u->uio);
	if ((r = link_to(target, path)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/%s", root, u->bdf);
	snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", u->bdf);
	if ((r = link_to(target, path)) < 0)
		return r;

	/* Maps in uio_ivshmem's order; addresses as QEMU places them. */
	uint64_t base = 0xfe400000;
	unsigned k = 0;
	if ((r = add_map(uio, k++, "registers", 0xfebfe000, 0x1000)) < 0 ||
	    (r = add_map(uio, k++, "state_table", base, u->state_size)) < 0)
		return r;
	uint64_t sizes[5] = { 0x1000, u->state_size };
	uint64_t at = base + u->state_size;
	if (u->rw_size) {
		sizes[k] = u->rw_size;
		if ((r = add_map(uio, k++, "rw_section", at, u->rw_size)) < 0)
			return r;
		at += u->rw_size;
	}
	if (u->output_size) {
		sizes[k] = u->max_peers * u->output_size;
		if ((r = add_map(uio, k, "input_sections", at, sizes[k])) < 0)
			return r;
		k++;
		sizes[k] = u->output_size;
		if ((r = add_map(uio, k, "output_section", at + u->id * u->output_size,
				 u->output_size)) < 0)
			return r;
		k++;
	}

	long page = sysconf(_SC_PAGESIZE);
	snprintf(path, sizeof(path), "%s/dev", root);
	if ((r = mkdirs(path)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/dev/uio%u", root, u->uio);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	uint64_t len = (uint64_t)(k - 1) * (uint64_t)page + sizes[k - 1];
	uint32_t regs[2] = { u->id, u->max_peers };
	r = ftruncate(fd, (off_t)len) < 0 || pwrite(fd, regs, sizeof(regs), 0) != sizeof(regs)
	    ? -errno : 0;
	close(fd);
	return r;
}
