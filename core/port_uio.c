#include "core/port_uio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct uio_map {
	int index;          /* -1: not present */
	uint64_t size;
};

struct port_uio {
	struct ivshm_port port;
	int fd;
	volatile uint32_t *regs;
	size_t regs_size;
	void *state_map;
	size_t state_size;
	void *rw_map;
	size_t rw_size;
};

static void reg_write(struct port_uio *u, unsigned off, uint32_t v)
{
	u->regs[off / 4] = v;
}

static uint32_t reg_read(struct port_uio *u, unsigned off)
{
	return u->regs[off / 4];
}

static void uio_set_int_control(struct ivshm_port *p, bool enable)
{
	struct port_uio *u = (struct port_uio *)p;
	reg_write(u, IVSHM_REG_INT_CONTROL, enable ? IVSHM_INT_ENABLE : 0);
}

static void uio_doorbell(struct ivshm_port *p, uint32_t peer, uint32_t vector)
{
	struct port_uio *u = (struct port_uio *)p;
	reg_write(u, IVSHM_REG_DOORBELL, (peer << 16) | (vector & 0xffff));
}

static void uio_set_state(struct ivshm_port *p, uint32_t state)
{
	struct port_uio *u = (struct port_uio *)p;
	reg_write(u, IVSHM_REG_STATE, state);
}

static int uio_handle(struct ivshm_port *p, unsigned idx, int *vector)
{
	struct port_uio *u = (struct port_uio *)p;
	uint32_t count;
	ssize_t n = read(u->fd, &count, sizeof(count));
	(void)idx;
	if (n == sizeof(count)) {
		*vector = IVSHM_VECTOR_UNKNOWN;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return n < 0 ? -errno : -EIO;
}

static void uio_destroy(struct ivshm_port *p)
{
	struct port_uio *u = (struct port_uio *)p;
	if (u->regs)
		munmap((void *)u->regs, u->regs_size);
	if (u->state_map)
		munmap(u->state_map, u->state_size);
	if (u->rw_map)
		munmap(u->rw_map, u->rw_size);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

static int uio_export(struct ivshm_port *p, const char *prefix, struct handover *h,
		      uint8_t *blob, size_t cap)
{
	struct port_uio *u = (struct port_uio *)p;
	char name[HANDOVER_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s/uio", prefix);
	return handover_add(h, name, u->fd);   /* everything else is in sysfs */
}

static const struct ivshm_port_ops uio_ops = {
	.export = uio_export,
	.set_int_control = uio_set_int_control,
	.doorbell = uio_doorbell,
	.set_state = uio_set_state,
	.handle = uio_handle,
	.destroy = uio_destroy,
};

/* Read a small sysfs attribute, newline stripped. */
static int read_attr(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* Walk maps/mapK and pick the ones we need by name. */
static int find_maps(const char *uio_dir, struct uio_map *regs, struct uio_map *state,
		     struct uio_map *rw, char *err, size_t err_len)
{
	regs->index = state->index = rw->index = -1;
	for (int k = 0; k < 16; k++) {
		char path[PATH_MAX], name[64], size[64];
		snprintf(path, sizeof(path), "%s/maps/map%d/name", uio_dir, k);
		if (read_attr(path, name, sizeof(name)) < 0)
			break;
		snprintf(path, sizeof(path), "%s/maps/map%d/size", uio_dir, k);
		int r = read_attr(path, size, sizeof(size));
		if (r < 0) {
			snprintf(err, err_len, "cannot read %s: %s", path, strerror(-r));
			return r;
		}
		char *end;
		errno = 0;
		unsigned long long sz = strtoull(size, &end, 16);
		if (errno || end == size || *end) {
			snprintf(err, err_len, "%s: bad map size '%s'", path, size);
			return -EINVAL;
		}
		struct uio_map *m = strcmp(name, "registers") == 0 ? regs
				  : strcmp(name, "state_table") == 0 ? state
				  : strcmp(name, "rw_section") == 0 ? rw : NULL;
		if (m) {
			m->index = k;
			m->size = sz;
		}
	}
	const char *missing = regs->index < 0 ? "registers" : state->index < 0 ? "state_table"
			    : rw->index < 0 ? "rw_section" : NULL;
	if (missing) {
		snprintf(err, err_len, "%s/maps has no '%s' map: is the device bound to uio_ivshmem, "
			 "and does the link have a R/W section?", uio_dir, missing);
		return -ENODEV;
	}
	return 0;
}

static int read_hex_attr(const char *dir, const char *name, uint32_t *out, char *err,
			 size_t err_len)
{
	char path[PATH_MAX], text[32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int r = read_attr(path, text, sizeof(text));
	if (r < 0) {
		snprintf(err, err_len, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 16);
	if (errno || end == text || *end || v > UINT32_MAX) {
		snprintf(err, err_len, "%s: bad value '%s'", path, text);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* The PCI function behind the node must be an IVSHMEM v2 device; its class
 * code carries the protocol: base class 0xff, sub-class = protocol bits
 * 15..8, prog-if = bits 7..0 (so class ffc002 is a virtio-blk back-end).
 * This is the only place the role and the device type can be learnt from. */
static int read_protocol(const char *uio_dir, const char *dev_path, uint16_t *protocol,
			 char *err, size_t err_len)
{
	char dev[PATH_MAX];
	uint32_t vendor, device, cls;
	snprintf(dev, sizeof(dev), "%s/device", uio_dir);
	int r = read_hex_attr(dev, "vendor", &vendor, err, err_len);
	if (r == 0)
		r = read_hex_attr(dev, "device", &device, err, err_len);
	if (r == 0)
		r = read_hex_attr(dev, "class", &cls, err, err_len);
	if (r < 0)
		return r;
	if (vendor != IVSHM_VENDOR_ID || device != IVSHM_DEVICE_ID) {
		snprintf(err, err_len, "%s is PCI device %04x:%04x, not an IVSHMEM v2 device "
			 "(%04x:%04x)", dev_path, vendor, device, IVSHM_VENDOR_ID, IVSHM_DEVICE_ID);
		return -ENODEV;
	}
	if ((cls >> 16) != 0xff) {
		snprintf(err, err_len, "%s has PCI class %06x; an IVSHMEM v2 device has class "
			 "ffXXXX (XXXX: the protocol)", dev_path, cls);
		return -EPROTO;
	}
	*protocol = (uint16_t)(cls & 0xffff);
	return 0;
}

static unsigned count_msi_vectors(const char *uio_dir)
{
	char path[PATH_MAX];
	unsigned n = 0;
	snprintf(path, sizeof(path), "%s/device/msi_irqs", uio_dir);
	DIR *d = opendir(path);
	if (!d)
		return 1;       /* INTx: a single vector */
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n : 1;
}

static void *map_region(int fd, int index, uint64_t size, int prot)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, size, prot, MAP_SHARED, fd, (off_t)index * page);
	return p == MAP_FAILED ? NULL : p;
}

static int open_fd(const char *dev_path, const char *sysfs_root, int fd, struct ivshm_port **ret,
		   char *err, size_t err_len)
{
	const char *base = strrchr(dev_path, '/');
	base = base ? base + 1 : dev_path;
	char uio_dir[PATH_MAX];
	snprintf(uio_dir, sizeof(uio_dir), "%s/class/uio/%s", sysfs_root, base);
	struct uio_map mregs, mstate, mrw;
	uint16_t protocol;
	int r = -EINVAL;
	if (strncmp(base, "uio", 3) != 0)
		snprintf(err, err_len, "%s is not a /dev/uioN node", dev_path);
	else if ((r = find_maps(uio_dir, &mregs, &mstate, &mrw, err, err_len)) == 0 &&
		 (r = read_protocol(uio_dir, dev_path, &protocol, err, err_len)) == 0 &&
		 (mregs.size < 0x14 || mstate.size < 8 || mrw.size == 0)) {
		snprintf(err, err_len, "%s: implausible map sizes", uio_dir);
		r = -EINVAL;
	}
	struct port_uio *u = r == 0 ? calloc(1, sizeof(*u)) : NULL;
	if (!u) {
		if (fd >= 0)
			close(fd);      /* a handed-over fd is ours to close on failure */
		return r < 0 ? r : -ENOMEM;
	}
	u->port.ops = &uio_ops;
	snprintf(u->port.name, sizeof(u->port.name), "uio:%s", dev_path);
	u->fd = fd >= 0 ? fd : open(dev_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (u->fd < 0) {
		r = -errno;
		snprintf(err, err_len, "cannot open %s: %s", dev_path, strerror(errno));
		goto fail;
	}
	u->regs_size = mregs.size;
	u->regs = map_region(u->fd, mregs.index, mregs.size, PROT_READ | PROT_WRITE);
	/* The state table is read-only for guests: a writable mapping fails. */
	u->state_size = mstate.size;
	u->state_map = map_region(u->fd, mstate.index, mstate.size, PROT_READ);
	u->rw_size = mrw.size;
	u->rw_map = map_region(u->fd, mrw.index, mrw.size, PROT_READ | PROT_WRITE);
	if (!u->regs || !u->state_map || !u->rw_map) {
		r = -errno;
		snprintf(err, err_len, "cannot map the regions of %s: %s", dev_path, strerror(errno));
		goto fail;
	}

	u->port.id = reg_read(u, IVSHM_REG_ID);
	u->port.max_peers = reg_read(u, IVSHM_REG_MAX_PEERS);
	u->port.peer_id = !u->port.id;
	u->port.vectors = count_msi_vectors(uio_dir);
	u->port.protocol = protocol;
	u->port.state_table = u->state_map;
	u->port.state_table_size = u->state_size;
	u->port.rw = u->rw_map;
	u->port.rw_size = u->rw_size;
	u->port.watch_fd[0] = u->fd;
	u->port.n_watch = 1;

	char why[160];
	r = ivshm_port_check_virtio(&u->port, why, sizeof(why));
	if (r < 0) {
		snprintf(err, err_len, "%s: %s", dev_path, why);
		goto fail;
	}
	*ret = &u->port;
	return 0;
fail:
	uio_destroy(&u->port);
	return r;
}

int port_uio_open(const char *dev_path, const char *sysfs_root, struct ivshm_port **ret,
		  char *err, size_t err_len)
{
	return open_fd(dev_path, sysfs_root, -1, ret, err, err_len);
}

bool port_uio_same_node(int fd, const char *dev_path)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0 || stat(dev_path, &b) < 0)
		return false;
	if (S_ISCHR(a.st_mode) && S_ISCHR(b.st_mode))
		return a.st_rdev == b.st_rdev;
	/* the tests' fake nodes are regular files */
	return S_ISREG(a.st_mode) && S_ISREG(b.st_mode) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int port_uio_adopt(const char *dev_path, const char *sysfs_root, int fd,
		   struct ivshm_port **ret, char *err, size_t err_len)
{
	/* Opening it (or closing it) would reset the link: this fd is the one
	 * that kept it alive.  Non-blocking like ours. */
	struct stat st;
	if (stat(dev_path, &st) == 0 && !port_uio_same_node(fd, dev_path)) {
		snprintf(err, err_len, "the fd handed over is not %s", dev_path);
		close(fd);
		return -ESTALE;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, err_len, "%s: the handed-over fd is not usable: %s", dev_path,
			 strerror(errno));
		close(fd);
		return -EBADF;
	}
	return open_fd(dev_path, sysfs_root, fd, ret, err, err_len);
}

int port_uio_resolve_pci(const char *bdf, const char *sysfs_root, const char *dev_root,
			 char *out, size_t out_len, char *err, size_t err_len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", sysfs_root, bdf);
	if (access(path, F_OK) != 0) {
		snprintf(err, err_len, "no PCI device %s (%s missing)", bdf, path);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/uio", sysfs_root, bdf);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(err, err_len, "PCI device %s is not bound to uio_ivshmem "
			 "(run 'jailhouse-cellmgr bind')", bdf);
		return -ENODEV;
	}
	struct dirent *e;
	int r = -ENODEV;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "uio", 3) == 0) {
			snprintf(out, out_len, "%s/%s", dev_root, e->d_name);
			r = 0;
			break;
		}
	}
	closedir(d);
	if (r < 0)
		snprintf(err, err_len, "PCI device %s has no uio node under %s", bdf, path);
	return r;
}
