/* IVSHMEM v2 protocol classification (docs/protocol.md §1).
 * The 16-bit protocol is carried in the PCI class code: base class 0xff,
 * subclass = protocol >> 8, prog-if = protocol & 0xff. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CM_IVSHMEM_VENDOR 0x110a
#define CM_IVSHMEM_DEVICE 0x4106
#define CM_IVSHMEM_BASE_CLASS 0xff

enum cm_proto_kind {
	CM_PROTO_UNDEFINED,     /* 0x0000: raw (uio_ivshmem binds it by itself) */
	CM_PROTO_VETH,          /* 0x0001: ivshmem-net */
	CM_PROTO_RESERVED,      /* 0x0002-0x3fff */
	CM_PROTO_CUSTOM,        /* 0x4000-0x7fff */
	CM_PROTO_VIRTIO_FRONT,  /* 0x8000-0xbfff */
	CM_PROTO_VIRTIO_BACK,   /* 0xc000-0xffff */
};

enum cm_proto_kind cm_proto_kind(uint16_t proto);
/* Virtio device id for virtio protocols (0x3fff fits both ranges). */
static inline unsigned cm_proto_virtio_id(uint16_t proto) { return proto & 0x3fffu; }
/* "virtio-blk back-end", "veth", "custom 0x4001", ... into buf; returns buf. */
char *cm_proto_str(uint16_t proto, char *buf, size_t len);
const char *cm_virtio_dev_name(unsigned id);
