/* `up` and `down` from the daemon's config file.  See up.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cellmgr/daemon_ctl.h"
#include "cellmgr/proto.h"
#include "cellmgr/syscheck.h"
#include "cellmgr/sysfs.h"
#include "cellmgr/system.h"
#include "cellmgr/up.h"

static void progress(void (*fn)(void *, const char *), void *opaque, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void progress(void (*fn)(void *, const char *), void *opaque, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(opaque, msg);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int load_config(const char *path, struct config **cfg, struct cm_err *err)
{
	char msg[1024];
	int ret = config_load(path, cfg, msg, sizeof(msg));

	if (ret < 0) {
		cm_err_set(err, "%s", msg);
		return ret;
	}
	if ((*cfg)->ncells == 0) {
		cm_err_set(err, "%s has no [cell NAME] section", path);
		cm_err_hint(err, "add one per cell with its config (the .cell file) and kernel "
			    "(see docs/cellmgr.md)");
		config_free(*cfg);
		*cfg = NULL;
		return -EINVAL;
	}
	return 0;
}

/* ---- matching devices to cells ---- */

struct bdf { bool known; unsigned bus, dev, fn; };

static uint16_t bdf16(const struct bdf *b)
{
	return (uint16_t)(b->bus << 8 | b->dev << 3 | b->fn);
}

static const char *bdf_str(uint16_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x.%x", v >> 8, (v >> 3) & 0x1f, v & 7);
	return buf;
}

static struct bdf device_bdf(const struct cfg_device *d, const struct cm_link *links,
			     size_t nlinks)
{
	struct bdf b = { 0 };
	unsigned dom;
	char tail;

	if (d->link.kind == LINK_PCI) {
		b.known = sscanf(d->link.target, "%x:%x:%x.%x%c", &dom, &b.bus, &b.dev, &b.fn,
				 &tail) == 4 && b.bus < 256 && b.dev < 32 && b.fn < 8;
	} else if (d->link.kind == LINK_UIO) {
		const char *base = strrchr(d->link.target, '/');

		base = base ? base + 1 : d->link.target;
		for (size_t k = 0; k < nlinks; k++)
			if (links[k].uio[0] && !strcmp(links[k].uio, base)) {
				b.bus = links[k].pci.bus;
				b.dev = links[k].pci.dev;
				b.fn = links[k].pci.func;
				b.known = true;
				break;
			}
	}
	return b;
}

static const struct cm_pci_dev *cell_ivshmem(const struct cm_config *c, uint16_t bdf)
{
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < c->cell.num_pci; i++)
		if (c->cell.pci[i].type == CM_PCI_TYPE_IVSHMEM && c->cell.pci[i].bdf == bdf)
			return &c->cell.pci[i];
	return NULL;
}

static unsigned dev_virtio_id(const struct cfg_device *d)
{
	return d->type == DEV_BLOCK ? 2 : 3;
}

static int check_front_end(const struct config *cfg, const struct cfg_device *d,
			   const struct cfg_cell *c, const struct cm_pci_dev *p, struct cm_err *err)
{
	char ps[64], bs[16];

	if (cm_proto_kind(p->shmem_protocol) == CM_PROTO_VIRTIO_FRONT &&
	    cm_proto_virtio_id(p->shmem_protocol) == dev_virtio_id(d))
		return 0;
	cm_err_set(err, "%s:%d: [%s %s]: link %s of cell %s is a %s (protocol 0x%04x), not a %s "
		   "front-end", cfg->path, d->line, cfg_dev_type_name(d->type), d->name,
		   bdf_str(p->bdf, bs, sizeof(bs)), c->name,
		   cm_proto_str(p->shmem_protocol, ps, sizeof(ps)), p->shmem_protocol,
		   cm_virtio_dev_name(dev_virtio_id(d)));
	cm_err_hint(err, "the cell's config (%s) must have the front-end (0x%04x) at this BDF",
		    c->config, 0x8000 | dev_virtio_id(d));
	return -EINVAL;
}

int cm_up_match(const struct config *cfg, struct cm_config *const *cells,
		const struct cm_link *links, size_t nlinks, int *dev_cell,
		struct cm_report *rep, struct cm_err *err)
{
	bool *unknown_bdf = calloc(cfg->ncells ? cfg->ncells : 1, sizeof(bool));
	struct bdf *bdfs = calloc(cfg->ndevices ? cfg->ndevices : 1, sizeof(*bdfs));
	char bs[16], ps[64];
	int ret = 0;

	if (!unknown_bdf || !bdfs) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < cfg->ndevices && ret == 0; i++) {
		const struct cfg_device *d = &cfg->devices[i];
		const struct cfg_cell *named = d->cell[0] ? config_find_cell(cfg, d->cell) : NULL;
		int owner = -1, owners = 0;
		uint16_t v;

		dev_cell[i] = named ? (int)(named - cfg->cells) : -1;
		bdfs[i] = device_bdf(d, links, nlinks);
		if (!bdfs[i].known) {
			if (dev_cell[i] >= 0)
				unknown_bdf[dev_cell[i]] = true;
			continue;
		}
		v = bdf16(&bdfs[i]);
		for (unsigned k = 0; k < cfg->ncells; k++)
			if (cell_ivshmem(cells[k], v)) {
				if (!owners++ || (int)k == dev_cell[i])
					owner = (int)k;
			}
		if (named) {
			const struct cm_pci_dev *p = cell_ivshmem(cells[dev_cell[i]], v);

			if (p) {
				ret = check_front_end(cfg, d, named, p, err);
			} else if (owners) {
				cm_err_set(err, "%s:%d: [%s %s] cell: the device names cell %s, but its "
					   "link %s is in the config of cell %s (%s)", cfg->path,
					   d->cell_line, cfg_dev_type_name(d->type), d->name, d->cell,
					   bdf_str(v, bs, sizeof(bs)), cfg->cells[owner].name,
					   cfg->cells[owner].config);
				ret = -EINVAL;
			} else {
				cm_report_add(rep, CM_SEV_WARN, "%s:%d: [%s %s]: cell %s has no ivshmem "
					      "device at %s in %s", cfg->path, d->line,
					      cfg_dev_type_name(d->type), d->name, d->cell,
					      bdf_str(v, bs, sizeof(bs)), named->config);
			}
			continue;
		}
		if (owners > 1) {
			cm_err_set(err, "%s:%d: [%s %s]: link %s is in the configs of %u cells",
				   cfg->path, d->line, cfg_dev_type_name(d->type), d->name,
				   bdf_str(v, bs, sizeof(bs)), owners);
			cm_err_hint(err, "say which cell the device belongs to with `cell = NAME`");
			ret = -EINVAL;
		} else if (owners == 1) {
			dev_cell[i] = owner;
			ret = check_front_end(cfg, d, &cfg->cells[owner],
					      cell_ivshmem(cells[owner], v), err);
		}
	}
	/* A front-end of a cell that no device serves: the cell's driver
	 * finds no back-end there.  Only knowable when every device of the
	 * cell has a BDF (sim links have none). */
	for (unsigned k = 0; k < cfg->ncells && ret == 0; k++) {
		if (!cells[k] || unknown_bdf[k])
			continue;
		for (uint32_t p = 0; p < cells[k]->cell.num_pci; p++) {
			const struct cm_pci_dev *pd = &cells[k]->cell.pci[p];
			bool served = false;

			if (pd->type != CM_PCI_TYPE_IVSHMEM ||
			    cm_proto_kind(pd->shmem_protocol) != CM_PROTO_VIRTIO_FRONT)
				continue;
			for (unsigned i = 0; i < cfg->ndevices; i++)
				served |= bdfs[i].known && bdf16(&bdfs[i]) == pd->bdf;
			if (!served)
				cm_report_add(rep, CM_SEV_WARN, "cell %s: its %s at %s has no device in "
					      "%s; the cell's driver will find no back-end there unless "
					      "another program serves it", cfg->cells[k].name,
					      cm_proto_str(pd->shmem_protocol, ps, sizeof(ps)),
					      bdf_str(pd->bdf, bs, sizeof(bs)), cfg->path);
		}
	}
out:
	free(unknown_bdf);
	free(bdfs);
	return ret;
}

/* ---- waiting for the daemon ---- */

int cm_up_wait_served(const char *sock, const struct config *cfg, const int *dev_cell,
		      unsigned cell, unsigned timeout_ms, struct cm_err *err)
{
	const char *cname = cfg->cells[cell].name;
	int64_t start = now_ms(), deadline = start + timeout_ms;
	struct cm_err last = { 0 };
	const struct cfg_device *pending = NULL;
	char pending_state[32] = "";
	int last_ret = 0;

	for (;;) {
		struct cm_daemon_dev *devs;
		size_t n;
		int64_t left = deadline - now_ms();
		int ret;

		cm_err_clear(&last);
		ret = cm_daemon_list(sock, left < 500 ? 500 : left > 2000 ? 2000 : (int)left,
				     &devs, &n, &last);
		if (ret == -EREMOTEIO || ret == -EPROTO || ret == -EMSGSIZE || ret == -ENAMETOOLONG) {
			/* The daemon answered, but not as expected: not transient. */
			*err = last;
			return ret;
		}
		if (ret == 0) {
			pending = NULL;
			for (unsigned i = 0; i < cfg->ndevices && ret == 0; i++) {
				const struct cfg_device *d = &cfg->devices[i];
				const struct cm_daemon_dev *dd = NULL;

				if (dev_cell[i] != (int)cell)
					continue;
				for (size_t k = 0; k < n && !dd; k++)
					if (!strcmp(devs[k].name, d->name))
						dd = &devs[k];
				if (!dd) {
					cm_err_set(err, "device %s of cell %s is not served by virtio-ivshmemd "
						   "(the daemon at %s has no such device)", d->name, cname,
						   sock);
					ret = -ENODEV;
				} else if (strcmp(dd->type, cfg_dev_type_name(d->type)) ||
					   (d->cell[0] && strcmp(dd->cell, d->cell))) {
					cm_err_set(err, "device %s of cell %s is not served by virtio-ivshmemd "
						   "(the daemon at %s has a %s device %s for %s%s)", d->name,
						   cname, sock, dd->type, dd->name, dd->cell[0] ? "cell " :
						   "no cell", dd->cell);
					ret = -ENODEV;
				} else if (!cm_daemon_state_serving(dd->state) && !pending) {
					pending = d;
					snprintf(pending_state, sizeof(pending_state), "%s", dd->state);
				}
			}
			free(devs);
			if (ret < 0) {
				cm_err_hint(err, "is the daemon running with this config (virtio-ivshmemd -c %s)? "
					    "`virtio-ivshmemctl -s %s list` shows what it serves", cfg->path, sock);
				return ret;
			}
			if (!pending)
				return 0;
			last_ret = 0;
		} else {
			last_ret = ret;
		}
		if (now_ms() >= deadline)
			break;
		left = deadline - now_ms();
		sleep_ms(left < 100 ? (unsigned)left : 100);
	}
	if (last_ret < 0) {
		cm_err_set(err, "cannot reach virtio-ivshmemd at %s (waited %g s before booting cell %s)",
			   sock, timeout_ms / 1000.0, cname);
		cm_err_hint(err, "start the daemon with this config first (virtio-ivshmemd -c %s), or pass "
			    "--control SOCKET if it listens elsewhere", cfg->path);
		return last_ret;
	}
	cm_err_set(err, "device %s of cell %s is not served by virtio-ivshmemd (state \"%s\" after "
		   "%g s)", pending->name, cname, pending_state, timeout_ms / 1000.0);
	cm_err_hint(err, "is the daemon running with this config (virtio-ivshmemd -c %s)? Its log "
		    "says why the device does not serve; a \"broken\" or \"stopped\" device needs a "
		    "restart of the daemon", cfg->path);
	return -ETIMEDOUT;
}

/* ---- up ---- */

struct up_ctx {
	const struct cm_up_opts *o;
	const struct config *cfg;
	struct cm_config **cells;      /* per cfg->cells index */
	const unsigned *boot;          /* plan index -> cfg->cells index */
	int *dev_cell;
	const char *sock;
	unsigned timeout_ms;
	struct cm_report *rep;
};

static int up_links_ready(void *opaque, const struct cm_link *links, size_t n,
			  struct cm_err *err)
{
	struct up_ctx *u = opaque;
	char ps[64];
	int ret;

	for (size_t i = 0; i < n; i++)
		if (links[i].kind == CM_PROTO_VIRTIO_BACK)
			progress(u->o->progress, u->o->opaque, "link %s (%s): %s%s", links[i].pci.bdf,
				 cm_proto_str(links[i].pci.protocol, ps, sizeof(ps)),
				 links[i].uio[0] ? "/dev/" : "no uio device",
				 links[i].uio[0] ? links[i].uio : "");
	ret = cm_up_match(u->cfg, u->cells, links, n, u->dev_cell, u->rep, err);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < u->cfg->ndevices; i++) {
		const struct cfg_device *d = &u->cfg->devices[i];

		if (!d->cell[0] && u->dev_cell[i] >= 0)
			progress(u->o->progress, u->o->opaque, "device %s: its link %s is cell %s's",
				 d->name, d->link.target, u->cfg->cells[u->dev_cell[i]].name);
	}
	return 0;
}

static int up_before_boot(void *opaque, unsigned i, const struct cm_config *cell,
			  struct cm_err *err)
{
	struct up_ctx *u = opaque;
	unsigned ci = u->boot[i], ndev = 0;
	char names[256] = "";
	size_t len = 0;
	int ret;

	for (unsigned d = 0; d < u->cfg->ndevices; d++)
		if (u->dev_cell[d] == (int)ci) {
			ndev++;
			if (len < sizeof(names))
				len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
							len ? ", " : "", u->cfg->devices[d].name);
		}
	if (ndev) {
		ret = cm_up_wait_served(u->sock, u->cfg, u->dev_cell, ci, u->timeout_ms, err);
		if (ret < 0)
			return ret;
		progress(u->o->progress, u->o->opaque, "cell %s: virtio-ivshmemd serves %s",
			 u->cfg->cells[ci].name, names);
	}
	progress(u->o->progress, u->o->opaque, "cell %s: creating \"%s\" and booting %s%s%s%s",
		 u->cfg->cells[ci].name, cell->cell.name, u->cfg->cells[ci].kernel,
		 u->cfg->cells[ci].dtb[0] ? " (device tree " : "", u->cfg->cells[ci].dtb,
		 u->cfg->cells[ci].dtb[0] ? ")" : "");
	return 0;
}

static void up_after_boot(void *opaque, unsigned i, const struct cm_config *cell)
{
	struct up_ctx *u = opaque;

	progress(u->o->progress, u->o->opaque, "cell %s: \"%s\" started", u->cfg->cells[u->boot[i]].name,
		 cell->cell.name);
}

/* The whole-system check of the root config (when known) and every cell of
 * CONFIG, before anything is touched.  The cells are those that run
 * together, whether `up` boots them now or finds them running. */
static int check_whole_system(const struct cm_hw *hw, const struct config *cfg, const char *root,
			      struct cm_config *const *cells, struct cm_report *rep,
			      struct cm_err *err)
{
	struct cm_config *sys = NULL;
	const char **files = calloc(cfg->ncells, sizeof(*files));
	size_t before = rep->errors;
	int ret = 0;

	if (!files)
		return -ENOMEM;
	if (root) {
		ret = cm_config_open(hw, root, CM_CFG_SYSTEM, &sys, rep, err);
		if (ret < 0)
			goto out;
	}
	for (unsigned k = 0; k < cfg->ncells; k++)
		files[k] = cfg->cells[k].config;
	cm_system_check(sys, root, (const struct cm_config *const *)cells, files, cfg->ncells, rep);
	if (rep->errors > before) {
		cm_err_set(err, "%s: %zu error(s) in the whole-system check of %s%s and its cells",
			   cfg->path, rep->errors - before, root ? "the root cell " : "",
			   root ? root : "");
		cm_err_hint(err, "`jailhouse-cellmgr config check %s%s...` lists them; nothing was "
			    "touched", root ? root : "", root ? " CELL.cell " : "CELL.cell ");
		ret = -EINVAL;
	}
out:
	cm_config_free(sys);
	free(files);
	return ret;
}

/* Whether a cell needs `dtb =` follows from its .cell file, which the
 * config parser does not read: checked here for every cell before anything
 * is touched, so that the message names the [cell] section rather than a
 * -d option the user never typed (cm_linux_plan()'s words). */
static int check_cell_dtb(const struct config *cfg, const struct cfg_cell *c,
			  const struct cm_config *cell, struct cm_err *err)
{
	bool arm = cell->arch != CM_ARCH_X86;

	if (arm && !c->dtb[0]) {
		cm_err_set(err, "%s:%d: [cell %s]: %s is an %s cell, whose Linux needs a device tree: "
			   "add `dtb = FILE` to the section", cfg->path, c->line, c->name, c->config,
			   cm_arch_name(cell->arch));
		cm_err_hint(err, "FILE is the cell's compiled device tree, the one `jailhouse-cellmgr "
			    "linux CELL.cell KERNEL -d DTB` takes (dtc -I dts -O dtb -o cell.dtb cell.dts)");
		return -EINVAL;
	}
	if (!arm && c->dtb[0]) {
		cm_err_set(err, "%s:%d: [cell %s]: %s is an x86 cell, whose Linux takes no device tree: "
			   "remove `dtb = %s` (line %d)", cfg->path, c->line, c->name, c->config, c->dtb,
			   c->dtb_line);
		return -EINVAL;
	}
	return 0;
}

/* The cell of this name in sysfs is running. */
static bool cell_running(const struct cm_cell_info *info, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(info[i].name, name))
			return !strcmp(info[i].state, "running");
	return false;
}

int cm_up(const struct cm_hw *hw, const struct cm_up_opts *o, struct cm_report *rep,
	  struct cm_err *err)
{
	struct config *cfg = NULL;
	struct cm_config **cells = NULL;
	struct cm_up_cell *plan_cells = NULL;
	struct cm_cell_info *info = NULL;
	unsigned *order = NULL, *boot = NULL, nboot = 0;
	int *dev_cell = NULL;
	size_t ninfo = 0;
	const char *sock, *root;
	int ret;

	ret = load_config(o->config_path, &cfg, err);
	if (ret < 0)
		return ret;
	sock = o->control ? o->control : cfg->daemon.control;
	if (!strcmp(sock, "none")) {
		cm_err_set(err, "%s disables the daemon's control socket (control-socket = none)",
			   o->config_path);
		cm_err_hint(err, "`up` asks the daemon whether it serves a cell's devices before the "
			    "cell boots: enable the socket, or pass --control SOCKET");
		ret = -EINVAL;
		goto out;
	}
	root = o->root_config ? o->root_config : cfg->daemon.root_cell[0] ? cfg->daemon.root_cell : NULL;
	if (!root && cm_sysfs_enabled(hw->sysfs_root) != 1) {
		cm_err_set(err, "Jailhouse is not enabled and no root cell config is given");
		cm_err_hint(err, "pass --root ROOT.cell, or set root-cell = ROOT.cell in [daemon] of %s",
			    o->config_path);
		ret = -EINVAL;
		goto out;
	}
	cells = calloc(cfg->ncells, sizeof(*cells));
	order = calloc(cfg->ncells, sizeof(*order));
	boot = calloc(cfg->ncells, sizeof(*boot));
	plan_cells = calloc(cfg->ncells, sizeof(*plan_cells));
	dev_cell = calloc(cfg->ndevices, sizeof(*dev_cell));
	if (!cells || !order || !boot || !plan_cells || !dev_cell) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned k = 0; k < cfg->ncells; k++) {
		ret = cm_config_open(hw, cfg->cells[k].config, CM_CFG_CELL, &cells[k], rep, err);
		if (ret < 0) {
			char where[PATH_MAX + 128];

			snprintf(where, sizeof(where), "%s:%d: [cell %s] config", cfg->path,
				 cfg->cells[k].config_line, cfg->cells[k].name);
			cm_err_prefix(err, where);
			goto out;
		}
	}
	for (unsigned k = 0; k < cfg->ncells; k++) {
		ret = check_cell_dtb(cfg, &cfg->cells[k], cells[k], err);
		if (ret < 0)
			goto out;
	}
	ret = check_whole_system(hw, cfg, root, cells, rep, err);
	if (ret < 0)
		goto out;
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct cfg_cell *c = cfg->devices[i].cell[0] ?
			config_find_cell(cfg, cfg->devices[i].cell) : NULL;

		dev_cell[i] = c ? (int)(c - cfg->cells) : -1;
	}
	/* Cells running already are left alone: `up` can be repeated after a
	 * failure without rebooting what works. */
	if (cm_sysfs_enabled(hw->sysfs_root) == 1 && cm_sysfs_cells(hw->sysfs_root, &info, &ninfo) < 0)
		ninfo = 0;
	config_cell_boot_order(cfg, order);
	for (unsigned i = 0; i < cfg->ncells; i++) {
		const struct cfg_cell *c = &cfg->cells[order[i]];

		if (cell_running(info, ninfo, cells[order[i]]->cell.name)) {
			progress(o->progress, o->opaque, "cell %s: \"%s\" is running already; left alone",
				 c->name, cells[order[i]]->cell.name);
			continue;
		}
		boot[nboot] = order[i];
		plan_cells[nboot++] = (struct cm_up_cell){
			.config_path = c->config,
			.kind = CM_UP_LINUX,
			.linux_opts = {
				.kernel_path = c->kernel,
				.initrd_path = c->initrd[0] ? c->initrd : NULL,
				.dtb_path = c->dtb[0] ? c->dtb : NULL,
				.cmdline = c->cmdline_set ? c->cmdline : NULL,
				.loader_path = o->loader,
			},
		};
	}
	{
		struct up_ctx u = {
			.o = o, .cfg = cfg, .cells = cells, .boot = boot, .dev_cell = dev_cell,
			.sock = sock, .rep = rep,
			.timeout_ms = o->timeout_ms ? o->timeout_ms : CM_UP_DEFAULT_TIMEOUT_MS,
		};
		struct cm_up_plan plan = {
			.root_config = root, .pci_dump = o->pci_dump, .bind_method = o->bind_method,
			.cells = plan_cells, .n_cells = nboot,
			.links_ready = up_links_ready, .before_boot = up_before_boot,
			.after_boot = up_after_boot, .opaque = &u,
		};

		if (cm_sysfs_enabled(hw->sysfs_root) != 1)
			progress(o->progress, o->opaque, "enabling Jailhouse with %s", root);
		ret = cm_system_up(hw, &plan, rep, err);
	}
out:
	if (cells)
		for (unsigned k = 0; k < cfg->ncells; k++)
			cm_config_free(cells[k]);
	free(cells);
	free(order);
	free(boot);
	free(plan_cells);
	free(dev_cell);
	free(info);
	config_free(cfg);
	return ret;
}

/* ---- down ---- */

int cm_down(const struct cm_hw *hw, const struct cm_down_opts *o, struct cm_report *rep,
	    struct cm_err *err)
{
	struct config *cfg = NULL;
	unsigned *order = NULL, n = 0;
	char (*names)[CM_CELL_NAMELEN + 1] = NULL;
	const char **present = NULL;
	bool enabled;
	int ret;

	ret = load_config(o->config_path, &cfg, err);
	if (ret < 0)
		return ret;
	order = calloc(cfg->ncells, sizeof(*order));
	names = calloc(cfg->ncells, sizeof(*names));
	present = calloc(cfg->ncells, sizeof(*present));
	if (!order || !names || !present) {
		ret = -ENOMEM;
		goto out;
	}
	config_cell_boot_order(cfg, order);
	for (unsigned i = 0; i < cfg->ncells; i++) {
		const struct cfg_cell *c = &cfg->cells[order[i]];
		struct cm_config *cc;
		struct cm_err e = { 0 };
		int id;

		/* Jailhouse knows the cell by the name inside its .cell file. */
		if (cm_config_load(c->config, hw->arch, &cc, &e) == 0) {
			snprintf(names[i], sizeof(names[i]), "%s", cc->cell.name);
			cm_config_free(cc);
		} else {
			cm_report_add(rep, CM_SEV_WARN, "[cell %s] config: %s: %s; trying the cell name "
				      "\"%s\"", c->name, c->config, e.what, c->name);
			snprintf(names[i], sizeof(names[i]), "%.*s", CM_CELL_NAMELEN - 1, c->name);
		}
		if (cm_sysfs_cell_id(hw->sysfs_root, names[i], &id) < 0) {
			progress(o->progress, o->opaque, "cell %s: \"%s\" does not exist; skipped", c->name,
				 names[i]);
			continue;
		}
		present[n++] = names[i];
	}
	enabled = cm_sysfs_enabled(hw->sysfs_root) == 1;
	if (o->disable && !enabled)
		progress(o->progress, o->opaque, "Jailhouse is not enabled; nothing to disable");
	ret = cm_system_down(hw, present, n, o->disable && enabled, err);
	if (ret == 0) {
		for (unsigned i = n; i-- > 0;)
			progress(o->progress, o->opaque, "cell \"%s\": shut down and destroyed", present[i]);
		if (o->disable && enabled)
			progress(o->progress, o->opaque, "Jailhouse disabled");
	}
out:
	free(order);
	free(names);
	free(present);
	config_free(cfg);
	return ret;
}
