/* Control-socket commands of the daemon (see control.h for the framing).
 *
 *   list                 every device: type, link, cell-side state, features, queues
 *   stats [NAME]         counters per device and per queue, each queue's
 *                        request latency histogram (daemon/stats_render.h)
 *   resize NAME          re-read the image size; the cell gets a capacity change
 *   change NAME IMAGE    swap the medium (refused while a cell drives a writable disk)
 *   eject NAME           remove the medium (capacity 0), same rule
 *   upgrade [PATH]       replace the daemon by PATH (default: the executable
 *                        it was started from) without the cells noticing
 *                        (daemon/upgrade.h); answered by the new process
 *   help
 * Prefix a command with "json " for a one-line JSON body instead of text,
 * stats with "openmetrics " for the OpenMetrics text (daemon/openmetrics.h).
 *
 * Runs on the main loop.  What a command needs from a device is gathered on
 * that device's worker (worker_call: list renders its text there, stats
 * copies the counters, daemon/snapshot.h) and the answer put together when
 * every worker has replied; a device whose worker has stopped shows as
 * "gone".
 */
#pragma once
#include "daemon/control.h"
#include "daemon/device.h"
#include "daemon/upgrade.h"

struct command_ctx {
	struct device *devs;
	unsigned ndevs;
	struct upgrade *upgrade;
	bool stopping;              /* no upgrade once the daemon stops */
};

void commands_handle(void *ctx, const char *line, struct control_cmd *cmd);
