/* Device tree patching with libfdt.  See dtb.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libfdt.h>

#include "cellmgr/dtb.h"

static int fdt_fail(struct cm_err *err, const char *name, const char *what, int fdterr)
{
	cm_err_set(err, "%s: %s: %s", name, what, fdt_strerror(fdterr));
	return -EINVAL;
}

/* #address-cells / #size-cells of the root node: 1 or 2. */
static int root_cells(const void *fdt, const char *name, const char *prop, unsigned *cells,
		      struct cm_err *err)
{
	int len;
	const fdt32_t *v = fdt_getprop(fdt, 0, prop, &len);

	if (!v || len != 4) {
		cm_err_set(err, "%s: the root node has no %s", name, prop);
		cm_err_hint(err, "a cell's device tree states #address-cells and #size-cells in / "
			    "(upstream's tool refuses it too)");
		return -EINVAL;
	}
	*cells = fdt32_to_cpu(*v);
	if (*cells != 1 && *cells != 2) {
		cm_err_set(err, "%s: %s is %u in the root node; only 1 or 2 can describe memory",
			   name, prop, *cells);
		return -EINVAL;
	}
	return 0;
}

/* Append v as 1 or 2 big-endian cells. */
static int put_cells(uint8_t *buf, size_t *pos, unsigned cells, uint64_t v)
{
	fdt32_t hi = cpu_to_fdt32((uint32_t)(v >> 32)), lo = cpu_to_fdt32((uint32_t)v);

	if (cells == 1 && v > UINT32_MAX)
		return -ERANGE;
	if (cells == 2) {
		memcpy(buf + *pos, &hi, 4);
		*pos += 4;
	}
	memcpy(buf + *pos, &lo, 4);
	*pos += 4;
	return 0;
}

static bool is_memory_node(const void *fdt, int node, bool *exact)
{
	const char *n = fdt_get_name(fdt, node, NULL);
	int len;
	const char *type = fdt_getprop(fdt, node, "device_type", &len);

	*exact = n && !strcmp(n, "memory");
	return *exact || (n && !strncmp(n, "memory@", 7)) ||
	       (type && len == 7 && !memcmp(type, "memory", 7));
}

/* Offset of the top-level node called exactly name, or -FDT_ERR_NOTFOUND.
 * (fdt_subnode_offset() would also match "name@unit".) */
static int child_exact(const void *fdt, const char *name)
{
	int node;

	fdt_for_each_subnode(node, fdt, 0) {
		const char *n = fdt_get_name(fdt, node, NULL);

		if (n && !strcmp(n, name))
			return node;
	}
	return node < 0 && node != -FDT_ERR_NOTFOUND ? node : -FDT_ERR_NOTFOUND;
}

/* Keep one memory node (the one called "memory", else the first), delete
 * the others; returns the kept node's offset or a libfdt error. */
static int memory_node(void *fdt, const char *name, struct cm_report *rep)
{
	char keep[256] = "";
	int node;
	bool exact;

	fdt_for_each_subnode(node, fdt, 0)
		if (is_memory_node(fdt, node, &exact) && (exact || !keep[0]))
			snprintf(keep, sizeof(keep), "%s", fdt_get_name(fdt, node, NULL));
	if (!keep[0])
		return fdt_add_subnode(fdt, 0, "memory");
	for (;;) {
		int victim = -1;

		fdt_for_each_subnode(node, fdt, 0)
			if (is_memory_node(fdt, node, &exact) &&
			    strcmp(fdt_get_name(fdt, node, NULL), keep)) {
				victim = node;
				break;
			}
		if (victim < 0)
			break;
		cm_report_add(rep, CM_SEV_WARN, "%s: deleted memory node /%s: the cell's RAM goes "
			      "into /%s, and Linux would also use the other node's ranges", name,
			      fdt_get_name(fdt, victim, NULL), keep);
		node = fdt_del_node(fdt, victim);
		if (node < 0)
			return node;
	}
	return child_exact(fdt, keep);
}

/* libfdt failures come back as *fdterr (and the step in *step) without
 * touching err, so that the caller can retry with more room. */
struct fdt_failure {
	int code;
	const char *step;
};

static int fdt_step(struct fdt_failure *f, const char *step, int code)
{
	f->code = code;
	f->step = step;
	return -EINVAL;
}

static int set_chosen(void *fdt, const char *name, const struct cm_dtb_patch *p, unsigned acells,
		      struct cm_report *rep, struct cm_err *err, struct fdt_failure *f)
{
	uint8_t start[8], end[8];
	size_t slen = 0, elen = 0;
	int node, ret = 0;

	if (p->has_initrd && (put_cells(start, &slen, acells, p->initrd_start) < 0 ||
			      put_cells(end, &elen, acells, p->initrd_end) < 0)) {
		cm_err_set(err, "%s: initrd at 0x%" PRIx64 "-0x%" PRIx64 " does not fit #address-cells %u",
			   name, p->initrd_start, p->initrd_end, acells);
		return -ERANGE;
	}
	node = child_exact(fdt, "chosen");
	/* Like upstream, /chosen is only added for something to put there. */
	if (node == -FDT_ERR_NOTFOUND && !(p->bootargs && p->bootargs[0]) && !p->has_initrd)
		return 0;
	if (node == -FDT_ERR_NOTFOUND)
		node = fdt_add_subnode(fdt, 0, "chosen");
	if (node < 0)
		return fdt_step(f, "adding /chosen", node);
	if (p->bootargs && p->bootargs[0])
		ret = fdt_setprop_string(fdt, node, "bootargs", p->bootargs);
	if (!ret && p->has_initrd) {
		ret = fdt_setprop(fdt, node, "linux,initrd-start", start, (int)slen);
		if (!ret)
			ret = fdt_setprop(fdt, node, "linux,initrd-end", end, (int)elen);
	} else if (!ret && fdt_getprop(fdt, node, "linux,initrd-start", NULL)) {
		/* Left from an earlier patch: Linux would look for an initrd. */
		cm_report_add(rep, CM_SEV_WARN, "%s: deleted /chosen/linux,initrd-start and -end: "
			      "no initrd is given", name);
		ret = fdt_delprop(fdt, node, "linux,initrd-start");
		if (!ret)
			ret = fdt_delprop(fdt, node, "linux,initrd-end");
		if (ret == -FDT_ERR_NOTFOUND)
			ret = 0;
	}
	return ret < 0 ? fdt_step(f, "patching /chosen", ret) : 0;
}

static int apply(void *fdt, const char *name, const struct cm_dtb_patch *p, unsigned acells,
		 unsigned scells, struct cm_report *rep, struct cm_err *err, struct fdt_failure *f)
{
	size_t pos = 0;
	uint8_t *reg = malloc((size_t)p->nmem * 16 + 1);
	unsigned count = 0;
	int node, ret;

	if (!reg)
		return -ENOMEM;
	for (unsigned i = 0; i < p->nmem; i++)
		if (put_cells(reg, &pos, acells, p->mem[i].start) < 0 ||
		    put_cells(reg, &pos, scells, p->mem[i].size) < 0) {
			cm_err_set(err, "%s: RAM 0x%" PRIx64 "+0x%" PRIx64 " does not fit #address-cells %u / "
				   "#size-cells %u", name, p->mem[i].start, p->mem[i].size, acells, scells);
			free(reg);
			return -ERANGE;
		}
	/* Each deletion of a surplus memory node rewrites the tree: keep a
	 * hostile file from making that quadratic. */
	fdt_for_each_subnode(node, fdt, 0) {
		bool exact;

		if (is_memory_node(fdt, node, &exact) && ++count > 64) {
			cm_err_set(err, "%s has more than 64 memory nodes", name);
			free(reg);
			return -EINVAL;
		}
	}
	node = memory_node(fdt, name, rep);
	ret = node < 0 ? node : fdt_setprop_string(fdt, node, "device_type", "memory");
	if (!ret)
		ret = fdt_setprop(fdt, node, "reg", reg, (int)pos);
	free(reg);
	if (ret < 0)
		return fdt_step(f, "patching /memory", ret);
	return set_chosen(fdt, name, p, acells, rep, err, f);
}

int cm_dtb_patch(const uint8_t *in, size_t len, const char *name, const struct cm_dtb_patch *p,
		 uint8_t **out, size_t *out_len, struct cm_report *rep, struct cm_err *err)
{
	struct fdt_failure f;
	unsigned acells, scells;
	size_t room;
	void *fdt = NULL;
	int ret;

	*out = NULL;
	*out_len = 0;
	if (len < sizeof(struct fdt_header) || fdt_magic(in) != FDT_MAGIC) {
		cm_err_set(err, "%s is not a flattened device tree (no 0xd00dfeed magic)", name);
		cm_err_hint(err, "pass the compiled .dtb (dtc -I dts -O dtb), not the .dts source");
		return -EINVAL;
	}
	if (fdt_version(in) < 17 || fdt_last_comp_version(in) > 17) {
		cm_err_set(err, "%s: device tree version %u (last compatible %u); version 17 is needed",
			   name, fdt_version(in), fdt_last_comp_version(in));
		return -EINVAL;
	}
	if (fdt_totalsize(in) > len) {
		cm_err_set(err, "%s: device tree of %u bytes, but the file has %zu: truncated", name,
			   fdt_totalsize(in), len);
		return -EINVAL;
	}
	ret = fdt_check_full(in, len);
	if (ret < 0)
		return fdt_fail(err, name, "malformed device tree", ret);
	ret = root_cells(in, name, "#address-cells", &acells, err);
	if (!ret)
		ret = root_cells(in, name, "#size-cells", &scells, err);
	if (ret < 0)
		return ret;

	/* Room for what is added; grown if libfdt still runs short. */
	room = fdt_totalsize(in) + (size_t)p->nmem * 16 + (p->bootargs ? strlen(p->bootargs) : 0) +
	       1024;
	for (;;) {
		struct cm_report scratch;
		void *n;

		if (room > 64u << 20) {
			cm_err_set(err, "%s: patched device tree would exceed 64 MiB", name);
			ret = -EFBIG;
			break;
		}
		n = realloc(fdt, room);
		if (!n) {
			ret = -ENOMEM;
			break;
		}
		fdt = n;
		ret = fdt_open_into(in, fdt, (int)room);
		if (ret < 0) {
			ret = fdt_fail(err, name, "opening the device tree", ret);
			break;
		}
		/* Warnings only from the attempt that counts. */
		cm_report_init(&scratch);
		f = (struct fdt_failure){ 0, NULL };
		ret = apply(fdt, name, p, acells, scells, &scratch, err, &f);
		if (f.code == -FDT_ERR_NOSPACE) {
			cm_report_free(&scratch);
			room *= 2;
			continue;
		}
		if (f.code)
			fdt_fail(err, name, f.step, f.code);
		for (size_t i = 0; i < scratch.n; i++)
			cm_report_add(rep, scratch.items[i].sev, "%s", scratch.items[i].msg);
		cm_report_free(&scratch);
		break;
	}
	if (ret == 0)
		ret = fdt_pack(fdt) < 0 ? fdt_fail(err, name, "packing", -FDT_ERR_INTERNAL) : 0;
	if (ret < 0) {
		free(fdt);
		return ret;
	}
	*out = fdt;
	*out_len = fdt_totalsize(fdt);
	return 0;
}
