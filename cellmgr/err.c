#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cellmgr/err.h"

void cm_err_set(struct cm_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->set)
		return;
	va_start(ap, fmt);
	vsnprintf(err->what, sizeof(err->what), fmt, ap);
	va_end(ap);
	err->hint[0] = '\0';
	err->set = true;
}

void cm_err_hint(struct cm_err *err, const char *fmt, ...)
{
	va_list ap;

	/* A hint belongs to the cause recorded by cm_err_set(); only add one
	 * if none was given yet, so the innermost layer's advice wins too. */
	if (!err || err->hint[0])
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void cm_err_clear(struct cm_err *err)
{
	if (!err)
		return;
	err->what[0] = err->hint[0] = '\0';
	err->set = false;
}

void cm_err_prefix(struct cm_err *err, const char *prefix)
{
	size_t pl, wl;

	if (!err || !err->set)
		return;
	pl = strlen(prefix) + 2;
	wl = strlen(err->what);
	if (pl >= sizeof(err->what))
		return;
	if (pl + wl >= sizeof(err->what))
		wl = sizeof(err->what) - pl - 1;
	memmove(err->what + pl, err->what, wl);
	err->what[pl + wl] = '\0';
	memcpy(err->what, prefix, pl - 2);
	memcpy(err->what + pl - 2, ": ", 2);
}
