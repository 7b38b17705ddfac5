#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cellmgr/report.h"

void cm_report_init(struct cm_report *r)
{
	memset(r, 0, sizeof(*r));
}

void cm_report_free(struct cm_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->items[i].msg);
	free(r->items);
	cm_report_init(r);
}

void cm_report_add(struct cm_report *r, enum cm_severity sev, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (sev == CM_SEV_ERR)
		r->errors++;
	else
		r->warnings++;
	/* Hostile configs can produce many findings; cap what is stored, the
	 * counters keep the truth. */
	if (r->n >= 1000) {
		r->oom = 1;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg) {
		r->oom = 1;
		return;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct cm_finding *it = realloc(r->items, cap * sizeof(*it));

		if (!it) {
			free(msg);
			r->oom = 1;
			return;
		}
		r->items = it;
		r->cap = cap;
	}
	r->items[r->n].sev = sev;
	r->items[r->n].msg = msg;
	r->n++;
}

int cm_report_has(const struct cm_report *r, enum cm_severity sev, const char *needle)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].sev == sev && strstr(r->items[i].msg, needle))
			return 1;
	return 0;
}
