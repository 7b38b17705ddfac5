/* Internal to the transport (transport.c, transport_regs.c): not a contract
 * for anything else. */
#pragma once
#include "core/transport.h"

/* transport_regs.c: the header and the register-write transactions. */
void vdev_reset_state(struct vdev *vd);
void vdev_write_header(struct vdev *vd);
void vdev_load_window(struct vdev *vd);
void vdev_write_config(struct vdev *vd);
void vdev_mark_broken(struct vdev *vd);
void vdev_notify_driver(struct vdev *vd, unsigned flag_offset, uint16_t vector);
/* Handle the pending transaction, if any, unless a quiesce holds it. */
void vdev_process_transaction(struct vdev *vd);
void vdev_ack_transaction(struct vdev *vd);

/* transport.c: the journal (no-ops without one). */
void vdev_journal_save(struct vdev *vd);
void vdev_journal_reset_queue(struct vdev *vd, unsigned q);

/* transport.c: used by the transaction handlers. */
/* Start quiescing for why (queue: for STOP_QUEUE_DISABLE).  A stronger
 * reason takes over a pending weaker one.  Finished from the tick. */
void vdev_begin_stop(struct vdev *vd, enum vdev_stop_reason why, unsigned queue);
/* Queue q may have new requests (enabled, DRIVER_OK): pop them if it is
 * served now. */
void vdev_scan_queue(struct vdev *vd, unsigned q);
