#include "core/port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

int ivshm_port_check_role(const struct ivshm_port *p, uint16_t device_id, char *why,
			  size_t why_len)
{
	uint16_t want = IVSHM_PROTO_VIRTIO_BACK | device_id;
	uint16_t role = p->protocol & IVSHM_PROTO_VIRTIO_ROLE_MASK;
	if (p->protocol == want)
		return 0;
	if (role == IVSHM_PROTO_VIRTIO_FRONT && strncmp(p->name, "uio:", 4) == 0)
		snprintf(why, why_len, "link %s is the virtio front-end side (class ff%04x); bind "
			 "the back-end device (class ff%04x) to uio_ivshmem instead", p->name,
			 p->protocol, want);
	else if (role == IVSHM_PROTO_VIRTIO_FRONT)
		snprintf(why, why_len, "link %s gave us the front-end role (peer %u): start the "
			 "daemon before the front-end", p->name, p->id);
	else
		snprintf(why, why_len, "link %s carries protocol 0x%04x, not a virtio-%s back-end "
			 "(0x%04x)", p->name, p->protocol,
			 device_id == 2 ? "block" : device_id == 3 ? "console" : "device", want);
	return -EPROTO;
}

void ivshm_bell_release(struct ivshm_bell *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->reg = NULL;
}
