/* The virtio-over-IVSHMEM transport header at offset 0 of the R/W section
 * (docs/protocol.md §2).  Little-endian, packed by natural alignment; the device
 * config follows directly at 0x4C.  Offsets double as the transaction codes
 * the driver stores in write_transaction.
 */
#pragma once

#define VI_REVISION                  0x00
#define VI_SIZE                      0x04
#define VI_WRITE_TRANSACTION         0x08
#define VI_DEVICE_FEATURES           0x0c
#define VI_DEVICE_FEATURES_SEL       0x10
#define VI_DRIVER_FEATURES           0x14
#define VI_DRIVER_FEATURES_SEL       0x18
#define VI_QUEUE_SEL                 0x1c
#define VI_QUEUE_SIZE                0x20
#define VI_QUEUE_DEVICE_VECTOR       0x22
#define VI_QUEUE_DRIVER_VECTOR       0x24
#define VI_QUEUE_ENABLE              0x26
#define VI_QUEUE_DESC                0x28
#define VI_QUEUE_DRIVER              0x30
#define VI_QUEUE_DEVICE              0x38
#define VI_CONFIG_EVENT              0x40
#define VI_QUEUE_EVENT               0x41
#define VI_DEVICE_STATUS             0x44
#define VI_CONFIG_GENERATION         0x48
#define VI_CONFIG                    0x4c

#define VI_HEADER_REVISION           1

/* Virtio device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE    0x01
#define VIRTIO_STATUS_DRIVER         0x02
#define VIRTIO_STATUS_DRIVER_OK      0x04
#define VIRTIO_STATUS_FEATURES_OK    0x08
#define VIRTIO_STATUS_NEEDS_RESET    0x40
#define VIRTIO_STATUS_FAILED         0x80

/* Transport feature bits. */
#define VIRTIO_F_INDIRECT_DESC       28
#define VIRTIO_F_EVENT_IDX           29
#define VIRTIO_F_VERSION_1           32
#define VIRTIO_F_ACCESS_PLATFORM     33
#define VIRTIO_F_ORDER_PLATFORM      36

#define VIRTIO_BIT(b)                (1ull << (b))

/* Virtio device IDs. */
#define VIRTIO_ID_BLOCK              2
#define VIRTIO_ID_CONSOLE            3
