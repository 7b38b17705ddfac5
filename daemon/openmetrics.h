/* The `openmetrics stats` body: the snapshots (daemon/snapshot.h) in the
 * OpenMetrics 1.0 text format, for Prometheus and node_exporter's textfile
 * collector.
 *
 * Families are named virtio_ivshmemd_*, each with TYPE, UNIT (where it has
 * one) and HELP, all of a family's samples together, and the body ends with
 * "# EOF".  Labels: device (the config's section name), queue (its index),
 * direction (read/write for disks, to_cell/from_cell for consoles), type
 * (the device's type on device_state, the request type on blk_commands),
 * state, reason.  Counters are the daemon's since it started (an upgrade or
 * a restart starts them again at 0).  The latency histogram's buckets are
 * the transport's (core/transport.h) in seconds, cumulative, and its sum is
 * exact to the nanosecond.  A device whose worker has stopped has only its
 * device_state (state "gone").  docs/man/virtio-ivshmemctl.8 lists the
 * families.
 */
#pragma once
#include "daemon/snapshot.h"
#include "daemon/strbuf.h"

void om_render(struct strbuf *o, const struct dev_snapshot *s, unsigned n);

/* A bucket bound of ns nanoseconds as a "le" label value in seconds, in
 * the canonical form OpenMetrics asks for (the shortest that reads back as
 * the same double, ".0" added to an integer).  buf: 32 bytes. */
void om_le(char *buf, uint64_t ns);
