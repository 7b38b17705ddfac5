/* The `stats` command's text and JSON bodies, rendered on the main thread
 * from snapshots (daemon/snapshot.h).  JSON: one object per device in
 * {"latency_le_ns":[...],"devices":[...]}; each queue's latency histogram
 * is a list of VDEV_LAT_BUCKETS counts, not cumulative, whose upper bounds
 * are latency_le_ns (the last bucket has none).  docs/man/virtio-ivshmemctl.8
 * lists every field. */
#pragma once
#include "daemon/snapshot.h"
#include "daemon/strbuf.h"

/* What comes before the first device and after the last. */
void stats_json_open(struct strbuf *o);
void stats_json_close(struct strbuf *o);
void stats_json(struct strbuf *o, const struct dev_snapshot *s);
void stats_text(struct strbuf *o, const struct dev_snapshot *s);
