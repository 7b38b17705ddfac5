#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cellmgr/sysfs.h"

int cm_sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int cm_sysfs_enabled(const char *root)
{
	char path[PATH_MAX], v[16];
	int ret;

	snprintf(path, sizeof(path), "%s/devices/jailhouse/enabled", root);
	ret = cm_sysfs_read(path, v, sizeof(v));
	if (ret < 0)
		return ret;
	return v[0] == '1';
}

static int cmp_cell(const void *a, const void *b)
{
	const struct cm_cell_info *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static bool is_number(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 10;
}

int cm_sysfs_cells(const char *root, struct cm_cell_info **out, size_t *n)
{
	char dir[PATH_MAX], path[PATH_MAX + 512];
	struct cm_cell_info *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	snprintf(dir, sizeof(dir), "%s/devices/jailhouse/cells", root);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct cm_cell_info *ci;

		if (!is_number(de->d_name))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct cm_cell_info *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		ci = &v[cnt];
		memset(ci, 0, sizeof(*ci));
		ci->id = atoi(de->d_name);
		/* A cell can vanish between readdir and read: skip it then. */
		snprintf(path, sizeof(path), "%s/%s/name", dir, de->d_name);
		if (cm_sysfs_read(path, ci->name, sizeof(ci->name)) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/state", dir, de->d_name);
		if (cm_sysfs_read(path, ci->state, sizeof(ci->state)) < 0)
			snprintf(ci->state, sizeof(ci->state), "?");
		snprintf(path, sizeof(path), "%s/%s/cpus_assigned_list", dir, de->d_name);
		if (cm_sysfs_read(path, ci->cpus, sizeof(ci->cpus)) < 0)
			snprintf(ci->cpus, sizeof(ci->cpus), "?");
		snprintf(path, sizeof(path), "%s/%s/cpus_failed_list", dir, de->d_name);
		if (cm_sysfs_read(path, ci->cpus_failed, sizeof(ci->cpus_failed)) < 0)
			ci->cpus_failed[0] = '\0';
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_cell);
	*out = v;
	*n = cnt;
	if (!cnt)
		free(v), *out = NULL;
	return 0;
}

int cm_sysfs_cell_id(const char *root, const char *name, int *id)
{
	struct cm_cell_info *v;
	size_t n;
	int ret = cm_sysfs_cells(root, &v, &n);

	if (ret < 0)
		return ret;
	ret = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name)) {
			*id = v[i].id;
			ret = 0;
			break;
		}
	free(v);
	return ret;
}

int cm_sysfs_pci_driver(const char *root, const char *bdf, char *buf, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	const char *base;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", root, bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		if (errno == ENOENT) {
			/* No link: unbound, if the device itself exists. */
			snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", root, bdf);
			if (access(path, F_OK) < 0)
				return -ENODEV;
			snprintf(buf, len, "%s", "");
			return 0;
		}
		return -errno;
	}
	target[n] = '\0';
	base = strrchr(target, '/');
	snprintf(buf, len, "%s", base ? base + 1 : target);
	return 0;
}

int cm_sysfs_pci_uio(const char *root, const char *bdf, char *buf, size_t len)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/uio", root, bdf);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ENOENT : -errno;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "uio", 3) && is_number(de->d_name + 3)) {
			snprintf(buf, len, "%s", de->d_name);
			ret = 0;
			break;
		}
	closedir(d);
	return ret;
}
