#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cellmgr/hw.h"

int cm_cell_ref_parse(const char *arg, bool by_name, struct cm_cell_ref *ref)
{
	size_t len = strlen(arg);

	memset(ref, 0, sizeof(*ref));
	if (!len)
		return -EINVAL;
	if (!by_name && strspn(arg, "0123456789") == len && len < 10) {
		ref->id = (int32_t)strtol(arg, NULL, 10);
		return 0;
	}
	if (len >= CM_CELL_NAMELEN)
		return -ENAMETOOLONG;
	ref->id = -1;
	memcpy(ref->name, arg, len);
	return 0;
}

const char *cm_cell_ref_str(const struct cm_cell_ref *ref, char *buf, size_t len)
{
	if (ref->id >= 0)
		snprintf(buf, len, "cell %d", ref->id);
	else
		snprintf(buf, len, "cell \"%.*s\"", CM_CELL_NAMELEN, ref->name);
	return buf;
}
