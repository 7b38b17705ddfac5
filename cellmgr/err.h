/* Error detail for library calls.
 *
 * Library functions return 0 or a negative errno and never log.  When they
 * fail they may describe *what* failed and *what to check* in a struct cm_err
 * supplied by the caller (which may be NULL).  The boundary (the CLI, later
 * the daemon) prints it once, together with strerror of the return value.
 * Only the first cm_err_set() wins: the innermost, most specific cause is
 * kept and outer layers do not overwrite it.
 */
#pragma once
#include <stdbool.h>

struct cm_err {
	char what[512];  /* e.g. "JAILHOUSE_CELL_CREATE for cell \"x\"" */
	char hint[512];  /* what to check, may be empty */
	bool set;
};

void cm_err_set(struct cm_err *err, const char *what_fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cm_err_hint(struct cm_err *err, const char *hint_fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cm_err_clear(struct cm_err *err);
/* Prepend "prefix: " to what (e.g. a file name the inner layer did not know). */
void cm_err_prefix(struct cm_err *err, const char *prefix);
