/* A list of findings (errors and warnings) produced by the config checker and
 * the boot-layout planner.  The library fills it; the CLI prints it. */
#pragma once
#include <stddef.h>

enum cm_severity { CM_SEV_WARN, CM_SEV_ERR };

struct cm_finding {
	enum cm_severity sev;
	char *msg;
};

struct cm_report {
	struct cm_finding *items;
	size_t n, cap;
	size_t errors, warnings;
	int oom;   /* a finding could not be stored; counts stay correct */
};

void cm_report_init(struct cm_report *r);
void cm_report_free(struct cm_report *r);
void cm_report_add(struct cm_report *r, enum cm_severity sev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Does any finding contain this substring?  (for tests) */
int cm_report_has(const struct cm_report *r, enum cm_severity sev, const char *needle);
