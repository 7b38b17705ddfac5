/* jailhouse-cellmgr: command-line front-end of libcellmgr.
 *
 * This is the boundary: library calls return negative errno plus a
 * struct cm_err; here they are printed once, with strerror and the hint.
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/bind.h"
#include "cellmgr/cellcfg_check.h"
#include "cellmgr/cellcfg_show.h"
#include "cellmgr/cellmgr.h"
#include "cellmgr/syscheck.h"
#include "cellmgr/sysfs.h"
#include "cellmgr/system.h"
#include "cellmgr/up.h"

#define PROG "jailhouse-cellmgr"

struct globals {
	const char *dev_path, *sysfs_root, *module_dir, *firmware_dir, *pci_dump;
	enum cm_arch arch;
	bool arch_given;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [GLOBAL OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  config check FILE.cell        validate a system or cell config (rev 12-14)\n"
		"  config check SYSTEM.cell CELL.cell ...\n"
		"                                ... and the cells together with the system\n"
		"  config show FILE.cell         show regions, PCI devices and ivshmem links\n"
		"  enable ROOT.cell              load jailhouse.ko and enable the hypervisor\n"
		"  disable                       destroy all cells and disable the hypervisor\n"
		"  create CELL.cell              create a non-root cell\n"
		"  load CELL IMAGE [-a ADDR] [-s STRING -a ADDR] ...\n"
		"                                load images into a cell (addresses default to 0)\n"
		"  start CELL | shutdown CELL | destroy CELL\n"
		"  list                          list cells with state and CPUs\n"
		"  linux CELL.cell KERNEL [-d DTB] [-i INITRD] [-c CMDLINE] [-w FILE] [-k FACTOR]\n"
		"        [-l LOADER]             boot Linux in a non-root cell (x86 bzImage, or arm64\n"
		"                                Image / 32-bit ARM zImage with a device tree)\n"
		"  bind [--new-id] [--list]      bind ivshmem back-ends to uio_ivshmem, show /dev/uioN\n"
		"  up CONFIG [--root ROOT.cell] [--control SOCKET] [--timeout SECONDS]\n"
		"     [--loader LOADER] [--new-id]\n"
		"                                enable, bind, and boot the [cell] sections of the\n"
		"                                daemon's CONFIG once virtio-ivshmemd serves their devices\n"
		"  down CONFIG [--disable]       shut down and destroy those cells in reverse order\n"
		"\n"
		"CELL is a cell name or id; use --name NAME for names that look like numbers.\n"
		"\n"
		"Global options:\n"
		"  --dev PATH           hypervisor device (default /dev/jailhouse)\n"
		"  --sysfs DIR          sysfs root (default /sys)\n"
		"  --module-dir DIR     kernel module directory (default /lib/modules/$(uname -r))\n"
		"  --firmware-dir DIR   firmware directory for checks (default /lib/firmware)\n"
		"  --pci-dump FILE      read PCI devices from an `lspci -x` dump instead of the bus\n"
		"  --arch ARCH          x86, arm or arm64 (default: this machine)\n"
		"  -h, --help           this text\n");
}

static void print_err(int ret, const struct cm_err *err)
{
	if (err->set)
		fprintf(stderr, PROG ": %s: %s\n", err->what, strerror(-ret));
	else
		fprintf(stderr, PROG ": %s\n", strerror(-ret));
	if (err->hint[0])
		fprintf(stderr, "  hint: %s\n", err->hint);
}

static void print_report(const char *prefix, const struct cm_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		fprintf(stderr, "%s%s%s: %s\n", prefix ? prefix : "", prefix ? ": " : "",
			rep->items[i].sev == CM_SEV_ERR ? "error" : "warning", rep->items[i].msg);
	if (rep->oom)
		fprintf(stderr, "%s%s(more findings not shown)\n", prefix ? prefix : "", prefix ? ": " : "");
}

/* Print s as one POSIX shell word, quoted only when needed, so printed
 * commands can be pasted.  Writes straight to out: nothing is cut, however
 * long the word. */
static void put_word(FILE *out, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,+@%") == strlen(s)) {
		fputs(s, out);
		return;
	}
	fputc('\'', out);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", out);
		else
			fputc(*s, out);
	}
	fputc('\'', out);
}

/* A cell name made of digits alone would be taken for an id: printed
 * commands that address the cell by name need --name in front of it. */
static const char *name_opt(const char *name)
{
	return strspn(name, "0123456789") == strlen(name) ? "--name " : "";
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -EINVAL;
	return 0;
}

/* Check one file on its own; prints its findings and the summary line
 * (check) or the dump (show).  Returns the parsed config in *out (NULL if
 * it could not be read) and adds its error count to *errors. */
static void config_one(const struct globals *g, const char *path, bool show,
		       struct cm_config **out, size_t *errors)
{
	struct cm_report rep;
	struct cm_err err = { 0 };
	int ret;

	ret = cm_config_load(path, g->arch, out, &err);
	if (ret < 0) {
		cm_err_prefix(&err, path);
		print_err(ret, &err);
		(*errors)++;
		return;
	}
	/* rev 14 files carry their architecture: compare it with the host's
	 * (or --arch); for older files there is nothing to compare. */
	cm_report_init(&rep);
	cm_config_check(*out, g->arch, &rep);
	if (show)
		cm_config_show(*out, stdout);
	print_report(path, &rep);
	if (!show)
		printf("%s: %s configuration \"%s\", revision %u: %zu error(s), %zu warning(s)\n",
		       path, (*out)->kind == CM_CFG_SYSTEM ? "system" : "cell", (*out)->cell.name,
		       (*out)->revision, rep.errors, rep.warnings);
	*errors += rep.errors;
	cm_report_free(&rep);
}

static int cmd_config(const struct globals *g, int argc, char **argv)
{
	struct cm_config **cfgs;
	size_t errors = 0;
	bool show;
	int n = argc - 2;

	if (argc < 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "show")) ||
	    (!strcmp(argv[1], "show") && argc != 3)) {
		fprintf(stderr, "usage: " PROG " config check SYSTEM.cell|CELL.cell [CELL.cell ...]\n"
			"       " PROG " config show FILE.cell\n");
		return 2;
	}
	show = !strcmp(argv[1], "show");
	cfgs = calloc((size_t)n, sizeof(*cfgs));
	if (!cfgs) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	for (int i = 0; i < n; i++)
		config_one(g, argv[2 + i], show, &cfgs[i], &errors);
	/* Several files: the first is the system, the rest run with it. */
	if (n > 1 && cfgs[0] && cfgs[0]->kind != CM_CFG_SYSTEM) {
		fprintf(stderr, PROG ": %s is a cell configuration; with several files the first "
			"must be the system configuration\n", argv[2]);
		errors++;
	} else if (n > 1) {
		struct cm_report rep;
		bool all = true;

		for (int i = 0; i < n; i++)
			all &= cfgs[i] != NULL;
		cm_report_init(&rep);
		if (all)
			cm_system_check(cfgs[0], argv[2], (const struct cm_config *const *)cfgs + 1,
					(const char *const *)argv + 3, (unsigned)n - 1, &rep);
		print_report("whole system", &rep);
		if (all)
			printf("whole system (%s and %d cell%s): %zu error(s), %zu warning(s)\n",
			       argv[2], n - 1, n == 2 ? "" : "s", rep.errors, rep.warnings);
		else
			printf("whole system: not checked, a file could not be read\n");
		errors += rep.errors;
		cm_report_free(&rep);
	}
	for (int i = 0; i < n; i++)
		cm_config_free(cfgs[i]);
	free(cfgs);
	return errors ? 1 : 0;
}

static int cmd_enable(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_report rep;
	struct cm_err err = { 0 };
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: " PROG " enable ROOT.cell\n");
		return 2;
	}
	cm_report_init(&rep);
	ret = cm_enable(hw, argv[1], &rep, &err);
	print_report(NULL, &rep);
	cm_report_free(&rep);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	printf("Jailhouse enabled with %s\n", argv[1]);
	return 0;
}

static int cmd_disable(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_err err = { 0 };
	int ret;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: " PROG " disable\n");
		return 2;
	}
	ret = cm_disable(hw, &err);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	return 0;
}

static int cmd_create(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_config *cfg;
	struct cm_report rep;
	struct cm_err err = { 0 };
	int ret, id;

	if (argc != 2) {
		fprintf(stderr, "usage: " PROG " create CELL.cell\n");
		return 2;
	}
	cm_report_init(&rep);
	ret = cm_config_open(hw, argv[1], CM_CFG_CELL, &cfg, &rep, &err);
	if (ret == 0) {
		ret = cm_cell_create(hw, cfg, false, &id, &rep, &err);
		if (ret == 0) {
			if (id >= 0)
				printf("created cell \"%s\" with id %d\n", cfg->cell.name, id);
			else
				printf("created cell \"%s\"\n", cfg->cell.name);
		}
		cm_config_free(cfg);
	}
	print_report(NULL, &rep);
	cm_report_free(&rep);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	return 0;
}

/* Parse "[--name] CELL" at argv[1..]; returns index after it or -1. */
static int parse_cell_arg(int argc, char **argv, struct cm_cell_ref *ref)
{
	bool by_name = false;
	int i = 1, ret;

	if (i < argc && !strcmp(argv[i], "--name")) {
		by_name = true;
		i++;
	}
	if (i >= argc)
		return -1;
	ret = cm_cell_ref_parse(argv[i], by_name, ref);
	if (ret < 0) {
		fprintf(stderr, PROG ": bad cell name \"%s\": %s\n", argv[i],
			ret == -ENAMETOOLONG ? "longer than 31 characters" : "empty");
		return -1;
	}
	return i + 1;
}

static int cmd_cellop(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_cell_ref ref;
	struct cm_err err = { 0 };
	int ret;

	if (parse_cell_arg(argc, argv, &ref) != argc) {
		fprintf(stderr, "usage: " PROG " %s [--name] CELL\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[0], "start"))
		ret = cm_cell_start(hw, &ref, &err);
	else if (!strcmp(argv[0], "shutdown"))
		ret = cm_cell_shutdown(hw, &ref, &err);
	else
		ret = cm_cell_destroy(hw, &ref, &err);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	return 0;
}

static int cmd_load(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_cell_ref ref;
	struct cm_load_image *imgs;
	uint8_t **bufs;
	struct cm_err err = { 0 };
	unsigned n = 0;
	int i, ret = 0, rc = 1;

	i = parse_cell_arg(argc, argv, &ref);
	if (i < 0 || i >= argc) {
		fprintf(stderr, "usage: " PROG " load [--name] CELL IMAGE [-a ADDR] [-s STRING -a ADDR] ...\n");
		return 2;
	}
	imgs = calloc((size_t)argc, sizeof(*imgs));
	bufs = calloc((size_t)argc, sizeof(*bufs));
	if (!imgs || !bufs) {
		free(imgs);
		free(bufs);
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	while (i < argc) {
		struct cm_load_image *im = &imgs[n];

		if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--string")) {
			if (i + 1 >= argc)
				goto usage;
			/* Strings are loaded without NUL, as upstream does. */
			im->label = "string";
			im->data = argv[i + 1];
			im->size = strlen(argv[i + 1]);
			i += 2;
		} else if (argv[i][0] == '-') {
			goto usage;
		} else {
			size_t len;

			ret = cm_read_file(argv[i], CM_IMAGE_MAX, &bufs[n], &len, &err);
			if (ret < 0) {
				print_err(ret, &err);
				goto out;
			}
			im->label = argv[i];
			im->data = bufs[n];
			im->size = len;
			i++;
		}
		if (i + 1 < argc && (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--address"))) {
			if (parse_u64(argv[i + 1], &im->addr) < 0) {
				fprintf(stderr, PROG ": bad address \"%s\"\n", argv[i + 1]);
				goto out;
			}
			i += 2;
		} else if (i < argc && (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--address"))) {
			goto usage;
		}
		n++;
	}
	ret = cm_cell_load(hw, &ref, imgs, n, &err);
	if (ret < 0)
		print_err(ret, &err);
	else
		rc = 0;
	goto out;
usage:
	fprintf(stderr, "usage: " PROG " load [--name] CELL IMAGE [-a ADDR] [-s STRING -a ADDR] ...\n");
	rc = 2;
out:
	for (int k = 0; k < argc; k++)
		free(bufs[k]);
	free(bufs);
	free(imgs);
	return rc;
}

static int cmd_list(const struct cm_hw *hw, int argc, char **argv)
{
	struct cm_cell_info *cells;
	size_t n;
	int ret;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: " PROG " list\n");
		return 2;
	}
	ret = cm_sysfs_cells(hw->sysfs_root, &cells, &n);
	if (ret == -ENOENT) {
		fprintf(stderr, PROG ": %s/devices/jailhouse/cells not found: the jailhouse module is not loaded\n",
			hw->sysfs_root);
		return 1;
	} else if (ret < 0) {
		fprintf(stderr, PROG ": reading %s/devices/jailhouse/cells: %s\n", hw->sysfs_root,
			strerror(-ret));
		return 1;
	}
	printf("%-8s%-24s%-18s%-24s%s\n", "ID", "Name", "State", "Assigned CPUs", "Failed CPUs");
	for (size_t i = 0; i < n; i++)
		printf("%-8d%-24s%-18s%-24s%s\n", cells[i].id, cells[i].name, cells[i].state,
		       cells[i].cpus, cells[i].cpus_failed);
	if (!n && cm_sysfs_enabled(hw->sysfs_root) == 0)
		printf("(Jailhouse is not enabled)\n");
	free(cells);
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, struct cm_err *err)
{
	FILE *f = fopen(path, "wb");
	int ret = 0;

	if (!f) {
		ret = -errno;
		cm_err_set(err, "cannot create %s", path);
		return ret;
	}
	if (fwrite(data, 1, len, f) != len)
		ret = -EIO;
	if (fclose(f) != 0 && !ret)
		ret = -errno;
	if (ret < 0)
		cm_err_set(err, "cannot write %s", path);
	return ret;
}

/* One option of `linux`; 0, or 2 for a usage error. */
static int linux_option(int c, struct cm_linux_opts *lo, const char **wparams)
{
	uint64_t v;

	switch (c) {
	case 'i': lo->initrd_path = optarg; return 0;
	case 'c': lo->cmdline = optarg; return 0;
	case 'w': *wparams = optarg; return 0;
	case 'l': lo->loader_path = optarg; return 0;
	case 'd': lo->dtb_path = optarg; return 0;
	case 'k':
		if (parse_u64(optarg, &v) < 0 || v < 1 || v > 64) {
			fprintf(stderr, PROG ": -k wants a factor between 1 and 64\n");
			return 2;
		}
		lo->decomp_factor = (unsigned)v;
		return 0;
	default:
		return 2;
	}
}

/* -w: the commands that boot what was planned, in the load order. */
static void print_linux_commands(const struct cm_config *cfg, const char *cellp,
				 const struct cm_linux_opts *lo, const struct cm_linux_plan *pl,
				 const char *wparams)
{
	printf("%s written to %s. Start Linux with these commands (adjust paths as needed):\n\n",
	       pl->arm ? "Patched device tree" : "Boot parameters", wparams);
	fputs(PROG " create ", stdout);
	put_word(stdout, cellp);
	printf("\n" PROG " load %s", name_opt(cfg->cell.name));
	put_word(stdout, cfg->cell.name);
	for (unsigned k = 0; k < pl->n; k++) {
		if (pl->is_string[k]) {
			fputs(" -s ", stdout);
			put_word(stdout, pl->imgs[k].data);
		} else {
			putchar(' ');
			put_word(stdout, k == 0 && !lo->loader_path ? "linux-loader.bin" :
				 k == pl->out ? wparams : pl->files[k]);
		}
		printf(" -a 0x%" PRIx64, pl->imgs[k].addr);
	}
	printf("\n" PROG " start %s", name_opt(cfg->cell.name));
	put_word(stdout, cfg->cell.name);
	putchar('\n');
	if (pl->arm && !lo->loader_path && cfg->arch == CM_ARCH_ARM64 && cm_arm_cell_aarch32(cfg))
		printf("\nThe cell runs 32-bit ARM (AARCH32): use the 32-bit ARM linux-loader.bin "
		       "(inmates/tools/arm), not the arm64 one.\n");
}

static int cmd_linux(const struct cm_hw *hw, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "write-params", required_argument, NULL, 'w' },
		{ "kernel-decomp-factor", required_argument, NULL, 'k' },
		{ "loader", required_argument, NULL, 'l' },
		{ "dtb", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct cm_linux_opts lo = { 0 };
	struct cm_linux_plan plan;
	struct cm_config *cfg = NULL;
	struct cm_report rep;
	struct cm_err err = { 0 };
	const char *wparams = NULL, *cellp;
	int c, ret, rc = 1;

	/* Options before and after the positional arguments (as argparse). */
	optind = 1;
	while ((c = getopt_long(argc, argv, "+i:c:w:k:l:d:", opts, NULL)) != -1)
		if (linux_option(c, &lo, &wparams))
			goto usage;
	if (argc - optind < 2)
		goto usage;
	cellp = argv[optind];
	lo.kernel_path = argv[optind + 1];
	optind += 2;
	while (optind < argc && (c = getopt_long(argc, argv, "+i:c:w:k:l:d:", opts, NULL)) != -1)
		if (linux_option(c, &lo, &wparams))
			goto usage;
	if (optind != argc)
		goto usage;

	cm_report_init(&rep);
	ret = cm_config_open(hw, cellp, CM_CFG_CELL, &cfg, &rep, &err);
	if (ret == 0)
		ret = cm_linux_plan(cfg, &lo, wparams == NULL, &plan, &rep, &err);
	if (ret == 0 && wparams) {
		ret = write_file(wparams, plan.imgs[plan.out].data, plan.imgs[plan.out].size, &err);
		if (ret == 0) {
			print_linux_commands(cfg, cellp, &lo, &plan, wparams);
			rc = 0;
		}
		cm_linux_plan_free(&plan);
	} else if (ret == 0) {
		ret = cm_linux_boot(hw, cfg, &plan, &rep, &err);
		if (ret == 0 && plan.arm)
			printf("cell \"%s\" started: kernel at 0x%" PRIx64 ", device tree at 0x%" PRIx64
			       ", initrd at 0x%" PRIx64 "\n", cfg->cell.name, plan.arm_boot.kernel_addr,
			       plan.arm_boot.dtb_addr, plan.arm_boot.initrd_addr);
		else if (ret == 0)
			printf("cell \"%s\" started: kernel at 0x%" PRIx64 ", initrd at 0x%" PRIx64
			       ", parameters at 0x%llx\n", cfg->cell.name, plan.boot.kernel_addr,
			       plan.boot.initrd_addr, (unsigned long long)CM_X86_PARAMS_ADDR);
		rc = ret == 0 ? 0 : 1;
		cm_linux_plan_free(&plan);
	}
	print_report(NULL, &rep);
	cm_report_free(&rep);
	cm_config_free(cfg);
	if (ret < 0)
		print_err(ret, &err);
	return rc;
usage:
	fprintf(stderr, "usage: " PROG " linux CELL.cell KERNEL [-d DTB] [-i INITRD] [-c CMDLINE] "
		"[-w FILE] [-k FACTOR] [-l LOADER]\n");
	return 2;
}

static const char *action_str(enum cm_link_action a)
{
	switch (a) {
	case CM_LINK_BOUND: return "bound";
	case CM_LINK_ALREADY: return "ok";
	case CM_LINK_SKIPPED: return "skipped";
	default: return "FAILED";
	}
}

static int cmd_bind(const struct cm_hw *hw, const struct globals *g, int argc, char **argv)
{
	enum cm_bind_method m = CM_BIND_OVERRIDE;
	bool list_only = false;
	struct cm_link *links;
	struct cm_err err = { 0 };
	size_t n;
	int ret, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--new-id"))
			m = CM_BIND_NEW_ID;
		else if (!strcmp(argv[i], "--list"))
			list_only = true;
		else {
			fprintf(stderr, "usage: " PROG " bind [--new-id] [--list]\n");
			return 2;
		}
	}
	ret = list_only ? cm_list_links(hw, g->pci_dump, &links, &n, &err)
			: cm_bind_links(hw, g->pci_dump, m, &links, &n, &err);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	if (!n)
		printf("no IVSHMEM devices (110a:4106) found; is Jailhouse enabled with a root config "
		       "that has ivshmem devices?\n");
	for (size_t i = 0; i < n; i++) {
		char ps[64];
		const struct cm_link *l = &links[i];

		printf("%s  %-28s %-8s driver %-12s %s%s\n", l->pci.bdf,
		       cm_proto_str(l->pci.protocol, ps, sizeof(ps)), action_str(l->action),
		       l->driver[0] ? l->driver : "-", l->uio[0] ? "/dev/" : "",
		       l->uio[0] ? l->uio : "");
		if (l->action == CM_LINK_FAILED) {
			fprintf(stderr, PROG ": %s: %s: %s\n", l->pci.bdf, l->note, strerror(-l->error));
			rc = 1;
		} else if (l->note[0]) {
			printf("    %s\n", l->note);
		}
	}
	free(links);
	return rc;
}

static void print_progress(void *opaque, const char *msg)
{
	(void)opaque;
	printf("%s\n", msg);
	fflush(stdout);
}

static int cmd_up(const struct cm_hw *hw, const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "control", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "loader", required_argument, NULL, 'l' },
		{ "new-id", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct cm_up_opts o = { .progress = print_progress };
	struct cm_report rep;
	struct cm_err err = { 0 };
	char *end;
	double t;
	int c, ret;

	optind = 0;     /* full re-initialisation: options may follow CONFIG */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o.root_config = optarg; break;
		case 'C': o.control = optarg; break;
		case 'l': o.loader = optarg; break;
		case 'N': o.bind_method = CM_BIND_NEW_ID; break;
		case 't':
			errno = 0;
			t = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(t > 0 && t <= 3600)) {
				fprintf(stderr, PROG ": --timeout wants seconds, more than 0 and at most 3600\n");
				return 2;
			}
			o.timeout_ms = (unsigned)(t * 1000 + 0.5) ? (unsigned)(t * 1000 + 0.5) : 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	o.config_path = argv[optind];
	o.pci_dump = g->pci_dump;
	cm_report_init(&rep);
	ret = cm_up(hw, &o, &rep, &err);
	print_report(NULL, &rep);
	cm_report_free(&rep);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: " PROG " up CONFIG [--root ROOT.cell] [--control SOCKET] "
		"[--timeout SECONDS] [--loader LOADER] [--new-id]\n");
	return 2;
}

static int cmd_down(const struct cm_hw *hw, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disable", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct cm_down_opts o = { .progress = print_progress };
	struct cm_report rep;
	struct cm_err err = { 0 };
	int c, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'd')
			goto usage;
		o.disable = true;
	}
	if (optind != argc - 1)
		goto usage;
	o.config_path = argv[optind];
	cm_report_init(&rep);
	ret = cm_down(hw, &o, &rep, &err);
	print_report(NULL, &rep);
	cm_report_free(&rep);
	if (ret < 0) {
		print_err(ret, &err);
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: " PROG " down CONFIG [--disable]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option gopts[] = {
		{ "dev", required_argument, NULL, 'D' },
		{ "sysfs", required_argument, NULL, 'S' },
		{ "module-dir", required_argument, NULL, 'M' },
		{ "firmware-dir", required_argument, NULL, 'F' },
		{ "pci-dump", required_argument, NULL, 'P' },
		{ "arch", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct globals g = {
		.dev_path = "/dev/jailhouse",
		.sysfs_root = "/sys",
		.firmware_dir = "/lib/firmware",
	};
	struct cm_hw_real *real;
	struct cm_hw hw;
	const char *cmd;
	int c, rc;

	g.arch = cm_arch_host();
	while ((c = getopt_long(argc, argv, "+h", gopts, NULL)) != -1) {
		switch (c) {
		case 'D': g.dev_path = optarg; break;
		case 'S': g.sysfs_root = optarg; break;
		case 'M': g.module_dir = optarg; break;
		case 'F': g.firmware_dir = optarg; break;
		case 'P': g.pci_dump = optarg; break;
		case 'A':
			if (cm_arch_parse(optarg, &g.arch) < 0) {
				fprintf(stderr, PROG ": unknown architecture \"%s\"\n", optarg);
				return 2;
			}
			g.arch_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (cm_hw_real_new(g.dev_path, g.module_dir, &real) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	hw = (struct cm_hw){
		.ops = &cm_hw_real_ops, .ctx = real, .dev_path = g.dev_path,
		.sysfs_root = g.sysfs_root, .firmware_dir = g.firmware_dir, .arch = g.arch,
	};
	argc -= optind;
	argv += optind;
	cmd = argv[0];
	if (!strcmp(cmd, "config"))
		rc = cmd_config(&g, argc, argv);
	else if (!strcmp(cmd, "enable"))
		rc = cmd_enable(&hw, argc, argv);
	else if (!strcmp(cmd, "disable"))
		rc = cmd_disable(&hw, argc, argv);
	else if (!strcmp(cmd, "create"))
		rc = cmd_create(&hw, argc, argv);
	else if (!strcmp(cmd, "load"))
		rc = cmd_load(&hw, argc, argv);
	else if (!strcmp(cmd, "start") || !strcmp(cmd, "shutdown") || !strcmp(cmd, "destroy"))
		rc = cmd_cellop(&hw, argc, argv);
	else if (!strcmp(cmd, "list"))
		rc = cmd_list(&hw, argc, argv);
	else if (!strcmp(cmd, "linux"))
		rc = cmd_linux(&hw, argc, argv);
	else if (!strcmp(cmd, "bind"))
		rc = cmd_bind(&hw, &g, argc, argv);
	else if (!strcmp(cmd, "up"))
		rc = cmd_up(&hw, &g, argc, argv);
	else if (!strcmp(cmd, "down"))
		rc = cmd_down(&hw, argc, argv);
	else {
		fprintf(stderr, PROG ": unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = 2;
	}
	cm_hw_real_free(real);
	return rc;
}
