/* Human-readable dump of a parsed configuration (`config show`): every
 * field of the file that means something to a reader, decoded (flags, CPU
 * and pin sets as ranges, ivshmem links with their roles).  Prints only;
 * findings come from cm_config_check(). */
#pragma once
#include <stdio.h>
#include "cellmgr/cellcfg.h"

void cm_config_show(const struct cm_config *cfg, FILE *out);
