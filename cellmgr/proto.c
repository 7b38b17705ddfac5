#include <stdio.h>
#include "cellmgr/proto.h"

enum cm_proto_kind cm_proto_kind(uint16_t proto)
{
	if (proto == 0)
		return CM_PROTO_UNDEFINED;
	if (proto == 1)
		return CM_PROTO_VETH;
	if (proto < 0x4000)
		return CM_PROTO_RESERVED;
	if (proto < 0x8000)
		return CM_PROTO_CUSTOM;
	if (proto < 0xc000)
		return CM_PROTO_VIRTIO_FRONT;
	return CM_PROTO_VIRTIO_BACK;
}

const char *cm_virtio_dev_name(unsigned id)
{
	switch (id) {
	case 1: return "virtio-net";
	case 2: return "virtio-blk";
	case 3: return "virtio-console";
	case 4: return "virtio-rng";
	case 9: return "virtio-9p";
	case 16: return "virtio-gpu";
	case 18: return "virtio-input";
	case 19: return "virtio-vsock";
	case 26: return "virtio-fs";
	default: return NULL;
	}
}

char *cm_proto_str(uint16_t proto, char *buf, size_t len)
{
	enum cm_proto_kind k = cm_proto_kind(proto);
	const char *dev;

	switch (k) {
	case CM_PROTO_UNDEFINED:
		snprintf(buf, len, "undefined (raw/uio)");
		break;
	case CM_PROTO_VETH:
		snprintf(buf, len, "veth (ivshmem-net)");
		break;
	case CM_PROTO_RESERVED:
		snprintf(buf, len, "reserved 0x%04x", proto);
		break;
	case CM_PROTO_CUSTOM:
		snprintf(buf, len, "custom 0x%04x", proto);
		break;
	case CM_PROTO_VIRTIO_FRONT:
	case CM_PROTO_VIRTIO_BACK:
		dev = cm_virtio_dev_name(cm_proto_virtio_id(proto));
		if (dev)
			snprintf(buf, len, "%s %s", dev,
				 k == CM_PROTO_VIRTIO_BACK ? "back-end" : "front-end");
		else
			snprintf(buf, len, "virtio device %u %s", cm_proto_virtio_id(proto),
				 k == CM_PROTO_VIRTIO_BACK ? "back-end" : "front-end");
		break;
	}
	return buf;
}
