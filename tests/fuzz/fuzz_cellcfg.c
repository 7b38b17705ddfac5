/* Fuzz target: the cell manager's Jailhouse cell-config parser and its
 * checkers (cellmgr/cellcfg.c, cellcfg_check.c, cellcfg_show.c, syscheck.c,
 * syscheck_res.c): what `jailhouse-cellmgr config check SYSTEM.cell
 * CELL.cell ...` and `up` run on files from anywhere.
 *
 * Input: u8 number of files (1..4), u8 architecture assumed for revisions
 * 12/13, u8 architecture expected, u16 length of each file but the last
 * (which takes the rest), then the files.  Each is parsed, checked, shown;
 * then the set is checked as a system, with the first file as the root
 * when it parsed as a system config.
 *
 * Oracles besides the sanitizers (leaks included): a parsed file has
 * exactly the length its counts describe and a NUL-terminated name; a
 * refused one says why; every finding of a report is counted, and what it
 * stores is bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/cellcfg.h"
#include "cellmgr/cellcfg_check.h"
#include "cellmgr/cellcfg_show.h"
#include "cellmgr/syscheck.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FILES 4

static const enum cm_arch archs[] = { CM_ARCH_X86, CM_ARCH_ARM, CM_ARCH_ARM64, CM_ARCH_UNKNOWN };
static FILE *devnull;

static void check_report(const struct cm_report *rep)
{
	FZ_CHECK(rep->n <= 1000 && rep->n <= rep->errors + rep->warnings,
		 "%zu findings stored, %zu errors and %zu warnings counted", rep->n, rep->errors,
		 rep->warnings);
	for (size_t i = 0; i < rep->n; i++)
		FZ_CHECK(rep->items[i].msg && rep->items[i].msg[0], "finding %zu is empty", i);
}

static void check_parsed(const struct cm_config *c, size_t len)
{
	const struct cm_cell *cell = &c->cell;
	uint64_t need = (c->kind == CM_CFG_SYSTEM ? cm_system_header_size(c->revision) : 0) +
			CM_CELL_DESC_SIZE + cell->cpu_set_size + 32ull * cell->num_mem +
			12ull * cell->num_cache + 32ull * cell->num_irqchips + 4ull * cell->num_pio +
			56ull * cell->num_pci + 8ull * cell->num_caps + 4ull * cell->num_stream_ids;
	FZ_CHECK(need == len && c->len == len, "a file of %zu bytes parsed as %llu", len,
		 (unsigned long long)need);
	FZ_CHECK(memchr(cell->name, 0, sizeof(cell->name)), "cell name not terminated");
	FZ_CHECK(c->revision >= CM_CFG_REV_MIN && c->revision <= CM_CFG_REV_MAX, "revision %u",
		 c->revision);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	struct cm_config *cfg[MAX_FILES] = { 0 };
	const struct cm_config *cells[MAX_FILES];
	const char *names[MAX_FILES] = { "a.cell", "b.cell", "c.cell", "d.cell" };
	size_t len[MAX_FILES];
	if (!devnull)
		devnull = fopen("/dev/null", "we");
	unsigned n = 1 + fz_u8(&f) % MAX_FILES;
	enum cm_arch assume = archs[fz_u8(&f) % 4], expect = archs[fz_u8(&f) % 4];
	for (unsigned i = 0; i < n; i++)
		len[i] = i + 1 < n ? fz_u16(&f) : SIZE_MAX;
	unsigned ncells = 0;
	const struct cm_config *sys = NULL;
	for (unsigned i = 0; i < n; i++) {
		size_t l = len[i] < f.n ? len[i] : f.n;
		struct cm_err err = { 0 };
		int r = cm_config_parse(f.p, l, assume, &cfg[i], &err);
		f.p += l;
		f.n -= l;
		if (r < 0) {
			FZ_CHECK(!cfg[i] && err.set && err.what[0],
				 "a refused file (%d) without a reason", r);
			continue;
		}
		check_parsed(cfg[i], l);
		struct cm_report rep;
		cm_report_init(&rep);
		cm_config_check(cfg[i], expect, &rep);
		check_report(&rep);
		cm_report_free(&rep);
		cm_config_show(cfg[i], devnull);
		if (i == 0 && cfg[i]->kind == CM_CFG_SYSTEM)
			sys = cfg[i];
		else
			cells[ncells++] = cfg[i];
	}
	struct cm_report rep;
	cm_report_init(&rep);
	cm_system_check(sys, names[0], cells, names + (sys ? 1 : 0), ncells, &rep);
	check_report(&rep);
	cm_report_free(&rep);
	for (unsigned i = 0; i < n; i++)
		cm_config_free(cfg[i]);
	return 0;
}
