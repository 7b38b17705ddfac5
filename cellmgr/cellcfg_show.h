/* Human-readable dump of a parsed configuration (`config show`). */
#pragma once
#include <stdio.h>
#include "cellmgr/cellcfg.h"

void cm_config_show(const struct cm_config *cfg, FILE *out);
