/* Control-socket commands of the daemon (see control.h for the framing).
 *
 *   list                 every device: type, link, cell-side state, features, queues
 *   stats [NAME]         counters per device and per queue
 *   resize NAME          re-read the image size; the cell gets a capacity change
 *   change NAME IMAGE    swap the medium (refused while a cell drives a writable disk)
 *   eject NAME           remove the medium (capacity 0), same rule
 *   help
 * Prefix a command with "json " for a one-line JSON body instead of text.
 */
#pragma once
#include "server/device.h"
#include "server/strbuf.h"

struct command_ctx {
	struct device *devs;
	unsigned ndevs;
	/* Run fn(arg) where the device lives (its worker thread) and wait. */
	void (*call)(struct device *dev, void (*fn)(void *arg), void *arg);
};

int commands_handle(void *ctx, const char *line, struct strbuf *out);
