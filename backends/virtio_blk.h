/* virtio-blk wire definitions (virtio 1.2 §5.2), as offsets and constants. */
#pragma once

#define VIRTIO_BLK_F_SIZE_MAX        1
#define VIRTIO_BLK_F_SEG_MAX         2
#define VIRTIO_BLK_F_RO              5
#define VIRTIO_BLK_F_BLK_SIZE        6
#define VIRTIO_BLK_F_FLUSH           9
#define VIRTIO_BLK_F_MQ              12
#define VIRTIO_BLK_F_DISCARD         13
#define VIRTIO_BLK_F_WRITE_ZEROES    14

#define VIRTIO_BLK_T_IN              0
#define VIRTIO_BLK_T_OUT             1
#define VIRTIO_BLK_T_FLUSH           4
#define VIRTIO_BLK_T_GET_ID          8
#define VIRTIO_BLK_T_DISCARD         11
#define VIRTIO_BLK_T_WRITE_ZEROES    13

#define VIRTIO_BLK_S_OK              0
#define VIRTIO_BLK_S_IOERR           1
#define VIRTIO_BLK_S_UNSUPP          2

#define VIRTIO_BLK_WZ_FLAG_UNMAP     1
#define VIRTIO_BLK_ID_BYTES          20
#define VIRTIO_BLK_SECTOR_SIZE       512
#define VIRTIO_BLK_OUTHDR_SIZE       16   /* u32 type, u32 reserved, u64 sector */
#define VIRTIO_BLK_SEGMENT_SIZE      16   /* u64 sector, u32 num_sectors, u32 flags */

/* struct virtio_blk_config, packed (72 bytes). */
#define VBLK_CFG_CAPACITY            0x00
#define VBLK_CFG_SIZE_MAX            0x08
#define VBLK_CFG_SEG_MAX             0x0c
#define VBLK_CFG_GEOMETRY            0x10
#define VBLK_CFG_BLK_SIZE            0x14
#define VBLK_CFG_TOPOLOGY            0x18
#define VBLK_CFG_WRITEBACK           0x20
#define VBLK_CFG_NUM_QUEUES          0x22
#define VBLK_CFG_MAX_DISCARD_SECTORS 0x24
#define VBLK_CFG_MAX_DISCARD_SEG     0x28
#define VBLK_CFG_DISCARD_ALIGN       0x2c
#define VBLK_CFG_MAX_WZ_SECTORS      0x30
#define VBLK_CFG_MAX_WZ_SEG          0x34
#define VBLK_CFG_WZ_MAY_UNMAP        0x38
#define VBLK_CFG_SIZE                0x48
