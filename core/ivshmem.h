/* IVSHMEM v2 device constants (docs/protocol.md §1 and "Life cycle"). */
#pragma once

#define IVSHM_VENDOR_ID              0x110a
#define IVSHM_DEVICE_ID              0x4106

/* Register region (BAR0), aligned 32-bit accesses only. */
#define IVSHM_REG_ID                 0x00
#define IVSHM_REG_MAX_PEERS          0x04
#define IVSHM_REG_INT_CONTROL        0x08
#define IVSHM_REG_DOORBELL           0x0c
#define IVSHM_REG_STATE              0x10

#define IVSHM_INT_ENABLE             0x1

/* Protocol type, as carried in the PCI class code and the sim INIT message. */
#define IVSHM_PROTO_UNDEFINED        0x0000
#define IVSHM_PROTO_VIRTIO_FRONT     0x8000
#define IVSHM_PROTO_VIRTIO_BACK      0xc000
#define IVSHM_PROTO_VIRTIO_ROLE_MASK 0xc000
#define IVSHM_PROTO_VIRTIO_DEVID_MASK 0x3fff

/* Peer state values used by the virtio-over-IVSHMEM transport. */
#define VIRTIO_STATE_RESET           0
#define VIRTIO_STATE_READY           1

/* Virtio devices are point-to-point links. */
#define IVSHM_VIRTIO_PEERS           2
