#include "server/port.h"

#include <errno.h>
#include <stdio.h>

void ivshm_port_destroy(struct ivshm_port *p)
{
	if (p)
		p->ops->destroy(p);
}

int ivshm_port_check_virtio(const struct ivshm_port *p, char *why, size_t why_len)
{
	if (p->max_peers != IVSHM_VIRTIO_PEERS) {
		snprintf(why, why_len, "link has %u peers, virtio needs exactly 2", p->max_peers);
		return -EPROTO;
	}
	if (p->id > 1) {
		snprintf(why, why_len, "invalid own peer ID %u", p->id);
		return -EPROTO;
	}
	if (p->state_table_size < 4 * (size_t)p->max_peers) {
		snprintf(why, why_len, "state table of %zu bytes is too small", p->state_table_size);
		return -EPROTO;
	}
	if (p->rw_size < 2 * 4096) {
		snprintf(why, why_len, "R/W section of %zu bytes is too small (need 8 KiB)", p->rw_size);
		return -EPROTO;
	}
	if (p->vectors < 1) {
		snprintf(why, why_len, "link has no interrupt vector");
		return -EPROTO;
	}
	return 0;
}
