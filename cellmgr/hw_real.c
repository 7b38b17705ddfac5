/* Real hardware ops: /dev/jailhouse ioctls, libkmod, sysfs writes.
 *
 * ABI (Jailhouse's driver/jailhouse.h): packed, native
 * little-endian structs; ioctl type 0.  The structs below restate that ABI;
 * the static assertions pin their sizes and the resulting ioctl numbers to
 * the values the upstream tools use.
 */
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cellmgr/hw.h"

struct jh_cell_create {
	uint64_t config_address;
	uint32_t config_size;
	uint32_t padding;
} __attribute__((packed));

struct jh_cell_id {
	int32_t id;
	uint32_t padding;
	char name[32];
} __attribute__((packed));

struct jh_preload_image {
	uint64_t source_address;
	uint64_t size;
	uint64_t target_address;
	uint64_t padding;
} __attribute__((packed));

struct jh_cell_load {
	struct jh_cell_id cell_id;
	uint32_t num_preload_images;
	uint32_t padding;
	struct jh_preload_image image[];
} __attribute__((packed));

#define JH_ENABLE        _IOW(0, 0, void *)
#define JH_DISABLE       _IO(0, 1)
#define JH_CELL_CREATE   _IOW(0, 2, struct jh_cell_create)
#define JH_CELL_LOAD     _IOW(0, 3, struct jh_cell_load)
#define JH_CELL_START    _IOW(0, 4, struct jh_cell_id)
#define JH_CELL_DESTROY  _IOW(0, 5, struct jh_cell_id)

_Static_assert(sizeof(struct jh_cell_create) == 16, "ABI");
_Static_assert(sizeof(struct jh_cell_id) == 40, "ABI");
_Static_assert(sizeof(struct jh_preload_image) == 32, "ABI");
_Static_assert(sizeof(struct jh_cell_load) == 48, "ABI");
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(JH_ENABLE == 0x40080000, "ABI");
_Static_assert(JH_DISABLE == 0x00000001, "ABI");
_Static_assert(JH_CELL_CREATE == 0x40100002, "ABI");
_Static_assert(JH_CELL_LOAD == 0x40300003, "ABI");
_Static_assert(JH_CELL_START == 0x40280004, "ABI");
_Static_assert(JH_CELL_DESTROY == 0x40280005, "ABI");
#endif

struct cm_hw_real {
	const char *dev_path;
	const char *module_dir;
	bool just_loaded;   /* we loaded jailhouse.ko: udev may still be busy */
};

int cm_hw_real_new(const char *dev_path, const char *module_dir, struct cm_hw_real **out)
{
	struct cm_hw_real *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->dev_path = dev_path;
	r->module_dir = module_dir;
	*out = r;
	return 0;
}

void cm_hw_real_free(struct cm_hw_real *r)
{
	free(r);
}

/* udev creates the node shortly after the module loads: right after we
 * loaded it, wait up to ~2 s for ENOENT to go away. */
static int open_dev(struct cm_hw_real *r)
{
	for (int tries = 0;; tries++) {
		int fd = open(r->dev_path, O_RDWR | O_CLOEXEC);

		if (fd >= 0)
			return fd;
		if (errno != ENOENT || !r->just_loaded || tries >= 20)
			return -errno;
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	}
}

static int do_ioctl(struct cm_hw_real *r, unsigned long req, void *arg)
{
	int fd = open_dev(r), ret = 0;
	struct stat st;

	if (fd < 0)
		return fd;
	/* Only talk to a character device: JAILHOUSE_DISABLE (_IO(0, 1)) has
	 * the number of FIBMAP, which a regular file would interpret. */
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode))
		ret = -ENOTTY;
	else if (ioctl(fd, req, arg) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int real_enable(void *ctx, const void *cfg, size_t len)
{
	(void)len;   /* the driver takes the size from the header (checked by the parser) */
	return do_ioctl(ctx, JH_ENABLE, (void *)cfg);
}

static int real_disable(void *ctx)
{
	return do_ioctl(ctx, JH_DISABLE, NULL);
}

static int real_cell_create(void *ctx, const void *cfg, size_t len)
{
	struct jh_cell_create c = {
		.config_address = (uintptr_t)cfg,
		.config_size = (uint32_t)len,
	};

	if (len > UINT32_MAX)
		return -E2BIG;
	return do_ioctl(ctx, JH_CELL_CREATE, &c);
}

static void fill_id(struct jh_cell_id *id, const struct cm_cell_ref *ref)
{
	memset(id, 0, sizeof(*id));
	id->id = ref->id;
	if (ref->id < 0)
		memcpy(id->name, ref->name, sizeof(ref->name));
	id->name[sizeof(id->name) - 1] = '\0';
}

static int real_cell_load(void *ctx, const struct cm_cell_ref *cell,
			  const struct cm_load_image *imgs, unsigned n)
{
	struct jh_cell_load *l;
	int ret;

	if (n > 4096)
		return -E2BIG;
	l = calloc(1, sizeof(*l) + (size_t)n * sizeof(l->image[0]));
	if (!l)
		return -ENOMEM;
	fill_id(&l->cell_id, cell);
	l->num_preload_images = n;
	for (unsigned i = 0; i < n; i++) {
		l->image[i].source_address = (uintptr_t)imgs[i].data;
		l->image[i].size = imgs[i].size;
		l->image[i].target_address = imgs[i].addr;
	}
	ret = do_ioctl(ctx, JH_CELL_LOAD, l);
	free(l);
	return ret;
}

static int real_cell_start(void *ctx, const struct cm_cell_ref *cell)
{
	struct jh_cell_id id;

	fill_id(&id, cell);
	return do_ioctl(ctx, JH_CELL_START, &id);
}

static int real_cell_destroy(void *ctx, const struct cm_cell_ref *cell)
{
	struct jh_cell_id id;

	fill_id(&id, cell);
	return do_ioctl(ctx, JH_CELL_DESTROY, &id);
}

static int real_load_module(void *ctx, const char *name)
{
	struct cm_hw_real *r = ctx;
	struct kmod_ctx *k;
	struct kmod_list *list = NULL, *it;
	int ret;

	k = kmod_new(r->module_dir, NULL);
	if (!k)
		return -ENOMEM;
	/* Loaded already (by insmod, or built in): nothing to look up, and no
	 * module index needed (a root cell image may have none). */
	struct kmod_module *loaded = NULL;
	if (kmod_module_new_from_name(k, name, &loaded) == 0) {
		int state = kmod_module_get_initstate(loaded);
		kmod_module_unref(loaded);
		if (state == KMOD_MODULE_LIVE || state == KMOD_MODULE_BUILTIN) {
			kmod_unref(k);
			return 0;
		}
	}
	/* Missing index files are not fatal here: the lookup then finds
	 * nothing, which is reported as -ENOENT below. */
	kmod_load_resources(k);
	ret = kmod_module_new_from_lookup(k, name, &list);
	if (ret < 0)
		goto out;
	if (!list) {
		ret = -ENOENT;
		goto out;
	}
	kmod_list_foreach(it, list) {
		struct kmod_module *m = kmod_module_get_module(it);

		if (kmod_module_get_initstate(m) == KMOD_MODULE_LIVE) {
			ret = 0;
		} else {
			ret = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST,
							      NULL, NULL, NULL, NULL);
			/* A positive return means "blacklisted". */
			if (ret > 0)
				ret = -EPERM;
			if (ret == -EEXIST)
				ret = 0;
		}
		kmod_module_unref(m);
		if (ret == 0) {
			if (!strcmp(name, "jailhouse"))
				r->just_loaded = true;
			break;
		}
	}
out:
	kmod_module_unref_list(list);
	kmod_unref(k);
	return ret;
}

static int real_sysfs_write(void *ctx, const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, ret = 0;

	(void)ctx;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* sysfs attributes take the whole value in one write. */
	n = write(fd, value, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

const struct cm_hw_ops cm_hw_real_ops = {
	.enable = real_enable,
	.disable = real_disable,
	.cell_create = real_cell_create,
	.cell_load = real_cell_load,
	.cell_start = real_cell_start,
	.cell_destroy = real_cell_destroy,
	.load_module = real_load_module,
	.sysfs_write = real_sysfs_write,
};
