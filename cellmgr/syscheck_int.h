/* Internal to syscheck.c / syscheck_res.c: the set of configs being checked. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cellmgr/syscheck.h"

struct sc_party {
	const struct cm_config *cfg;
	const char *file;
	bool root;
};

struct sc {
	struct sc_party *p;        /* p[0] is the root cell when sys is known */
	unsigned np;
	const struct cm_config *sys;   /* NULL: root unknown */
	enum cm_arch arch;
	struct cm_report *rep;
};

/* 'cell "name" (file)' or 'the root cell "name" (file)' */
const char *sc_who(const struct sc_party *p, char *buf, size_t len);

/* syscheck_res.c */
void sc_check_ivshmem(struct sc *s);
void sc_check_pci(struct sc *s);
void sc_check_pio(struct sc *s);
void sc_check_irqs(struct sc *s);
