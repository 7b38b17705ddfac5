#include "server/commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_ARGS 4

static struct device *find(struct command_ctx *c, const char *name)
{
	for (unsigned i = 0; i < c->ndevs; i++)
		if (c->devs[i].cfg && strcmp(c->devs[i].cfg->name, name) == 0)
			return &c->devs[i];
	return NULL;
}

static const char *link_text(const struct device *d)
{
	return d->port ? d->port->name : "-";
}

struct dev_job {
	struct device *dev;
	struct strbuf *out;
	bool json;
	const char *arg;
	char err[512];
	int rc;
};

static void list_one_json(void *arg)
{
	struct dev_job *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = j->out;
	struct vdev *vd = d->vd;
	sb_printf(o, "{\"name\":");
	sb_json_str(o, d->cfg->name);
	sb_printf(o, ",\"type\":\"%s\",\"link\":", cfg_dev_type_name(d->cfg->type));
	sb_json_str(o, link_text(d));
	sb_printf(o, ",\"state\":\"%s\",\"status\":%u,\"features\":\"0x%llx\",\"queues\":[",
		  vdev_phase_name(vd), vd->status, (unsigned long long)vd->guest_features);
	for (unsigned q = 0; q < vd->nq; q++)
		sb_printf(o, "%s{\"index\":%u,\"size\":%u,\"enabled\":%s}", q ? "," : "", q,
			  vd->q[q].size, vd->q[q].enable ? "true" : "false");
	sb_printf(o, "]");
	if (d->blk) {
		sb_printf(o, ",\"image\":");
		sb_json_str(o, blk_image(d->blk));
		sb_printf(o, ",\"capacity\":%llu,\"read_only\":%s",
			  (unsigned long long)blk_capacity(d->blk),
			  blk_read_only(d->blk) ? "true" : "false");
	}
	if (d->cfg->cell[0]) {
		sb_printf(o, ",\"cell\":");
		sb_json_str(o, d->cfg->cell);
	}
	sb_printf(o, "}");
}

static void list_one_text(void *arg)
{
	struct dev_job *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = j->out;
	sb_printf(o, "%-12s %-8s %-16s %-40s %s\n", d->cfg->name,
		  cfg_dev_type_name(d->cfg->type), vdev_phase_name(d->vd), link_text(d),
		  d->blk ? (blk_image(d->blk)[0] ? blk_image(d->blk) : "(ejected)")
			 : cfg_endpoint_name(d->cfg->endpoint));
	if (d->vd->status & VIRTIO_STATUS_DRIVER_OK)
		sb_printf(o, "%12s features 0x%llx, %u queue(s)\n", "",
			  (unsigned long long)d->vd->guest_features, d->vd->nq);
}

static void stats_one(void *arg)
{
	struct dev_job *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = j->out;
	bool json = j->json;
	struct vdev *vd = d->vd;
	const struct blk_stats *bs = d->blk ? blk_stats(d->blk) : NULL;
	if (json) {
		sb_printf(o, "{\"name\":");
		sb_json_str(o, d->cfg->name);
		sb_printf(o, ",\"transactions\":%llu,\"resets\":%llu,\"sessions\":%llu,"
			  "\"protocol_errors\":%llu",
			  (unsigned long long)vd->stats.transactions,
			  (unsigned long long)vd->stats.resets,
			  (unsigned long long)vd->stats.peer_sessions,
			  (unsigned long long)vd->stats.protocol_errors);
		if (bs)
			sb_printf(o, ",\"read\":{\"requests\":%llu,\"bytes\":%llu,\"errors\":%llu},"
				  "\"write\":{\"requests\":%llu,\"bytes\":%llu,\"errors\":%llu},"
				  "\"flushes\":%llu,\"discards\":%llu,\"write_zeroes\":%llu,"
				  "\"unsupported\":%llu,\"inflight\":%u",
				  (unsigned long long)bs->reqs[0], (unsigned long long)bs->bytes[0],
				  (unsigned long long)bs->errors[0], (unsigned long long)bs->reqs[1],
				  (unsigned long long)bs->bytes[1], (unsigned long long)bs->errors[1],
				  (unsigned long long)bs->flushes, (unsigned long long)bs->discards,
				  (unsigned long long)bs->write_zeroes,
				  (unsigned long long)bs->unsupported, blk_inflight(d->blk));
		if (d->con) {
			const struct console_stats *cs = console_stats(d->con);
			sb_printf(o, ",\"to_cell_bytes\":%llu,\"from_cell_bytes\":%llu,"
				  "\"attached\":%s,\"dropped_backlog\":%llu,\"dropped_error\":%llu,"
				  "\"backlog_bytes\":%llu,\"clients\":%llu,\"refused\":%llu",
				  (unsigned long long)cs->rx_bytes, (unsigned long long)cs->tx_bytes,
				  console_attached(d->con) ? "true" : "false",
				  (unsigned long long)cs->dropped_backlog,
				  (unsigned long long)cs->dropped_error,
				  (unsigned long long)cs->backlog_bytes,
				  (unsigned long long)cs->clients, (unsigned long long)cs->refused);
		}
		sb_printf(o, ",\"queues\":[");
		for (unsigned q = 0; q < vd->nq; q++)
			sb_printf(o, "%s{\"index\":%u,\"kicks\":%llu,\"interrupts\":%llu,\"inflight\":%u}",
				  q ? "," : "", q, (unsigned long long)vd->q[q].kicks,
				  (unsigned long long)vd->q[q].interrupts,
				  d->blk ? blk_queue_inflight(d->blk, q) : 0);
		sb_printf(o, "]}");
		return;
	}
	sb_printf(o, "%s: %s, %llu transactions, %llu resets, %llu sessions, %llu protocol errors\n",
		  d->cfg->name, vdev_phase_name(vd), (unsigned long long)vd->stats.transactions,
		  (unsigned long long)vd->stats.resets, (unsigned long long)vd->stats.peer_sessions,
		  (unsigned long long)vd->stats.protocol_errors);
	if (bs) {
		sb_printf(o, "  read:  %llu requests, %llu bytes, %llu errors\n",
			  (unsigned long long)bs->reqs[0], (unsigned long long)bs->bytes[0],
			  (unsigned long long)bs->errors[0]);
		sb_printf(o, "  write: %llu requests, %llu bytes, %llu errors\n",
			  (unsigned long long)bs->reqs[1], (unsigned long long)bs->bytes[1],
			  (unsigned long long)bs->errors[1]);
		sb_printf(o, "  flush %llu, discard %llu, write-zeroes %llu, unsupported %llu, "
			  "in flight %u\n", (unsigned long long)bs->flushes,
			  (unsigned long long)bs->discards, (unsigned long long)bs->write_zeroes,
			  (unsigned long long)bs->unsupported, blk_inflight(d->blk));
	}
	if (d->con) {
		const struct console_stats *cs = console_stats(d->con);
		sb_printf(o, "  to the cell %llu bytes, from the cell %llu bytes, %s\n",
			  (unsigned long long)cs->rx_bytes, (unsigned long long)cs->tx_bytes,
			  console_attached(d->con) ? "attached" : "nobody attached");
		sb_printf(o, "  dropped: %llu (backlog full), %llu (write errors); backlog %llu bytes; "
			  "%llu clients, %llu refused\n", (unsigned long long)cs->dropped_backlog,
			  (unsigned long long)cs->dropped_error, (unsigned long long)cs->backlog_bytes,
			  (unsigned long long)cs->clients, (unsigned long long)cs->refused);
	}
	for (unsigned q = 0; q < vd->nq; q++)
		sb_printf(o, "  queue %u: %llu kicks, %llu interrupts, %u in flight\n", q,
			  (unsigned long long)vd->q[q].kicks, (unsigned long long)vd->q[q].interrupts,
			  d->blk ? blk_queue_inflight(d->blk, q) : 0);
}

static void do_resize(void *arg)
{
	struct dev_job *j = arg;
	j->rc = blk_resize(j->dev->blk);
}

static void do_change(void *arg)
{
	struct dev_job *j = arg;
	j->rc = blk_change(j->dev->blk, j->arg, j->err, sizeof(j->err));
}

static int need_blk(struct command_ctx *c, const char *name, struct device **ret,
		    struct strbuf *out)
{
	struct device *d = find(c, name);
	if (!d) {
		sb_printf(out, "no device named '%s'", name);
		return -ENOENT;
	}
	if (!d->blk) {
		sb_printf(out, "%s is not a block device", name);
		return -EINVAL;
	}
	*ret = d;
	return 0;
}

int commands_handle(void *ctx, const char *line, struct strbuf *out)
{
	struct command_ctx *c = ctx;
	char buf[4096], *argv[MAX_ARGS + 1];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_ARGS + 1) {
			sb_printf(out, "too many arguments");
			return -E2BIG;
		}
		argv[argc++] = t;
	}
	bool json = argc && strcmp(argv[0], "json") == 0;
	if (json) {
		memmove(argv, argv + 1, (size_t)--argc * sizeof(*argv));
	}
	if (argc == 0) {
		sb_printf(out, "empty command");
		return -EINVAL;
	}
	const char *cmd = argv[0];
	struct device *d;
	int r;
	struct dev_job job = { .out = out, .json = json };
	if (strcmp(cmd, "list") == 0 && argc == 1) {
		if (json)
			sb_printf(out, "{\"devices\":[");
		else
			sb_printf(out, "%-12s %-8s %-16s %-40s %s\n", "NAME", "TYPE", "STATE", "LINK",
				  "MEDIUM");
		bool first = true;
		for (unsigned i = 0; i < c->ndevs; i++) {
			if (!c->devs[i].vd)
				continue;
			if (json && !first)
				sb_printf(out, ",");
			first = false;
			job.dev = &c->devs[i];
			c->call(job.dev, json ? list_one_json : list_one_text, &job);
		}
		if (json)
			sb_printf(out, "]}");
		return 0;
	}
	if (strcmp(cmd, "stats") == 0 && argc <= 2) {
		if (argc == 2 && !find(c, argv[1])) {
			sb_printf(out, "no device named '%s'", argv[1]);
			return -ENOENT;
		}
		if (json)
			sb_printf(out, "{\"devices\":[");
		bool first = true;
		for (unsigned i = 0; i < c->ndevs; i++) {
			d = &c->devs[i];
			if (!d->vd || (argc == 2 && strcmp(d->cfg->name, argv[1]) != 0))
				continue;
			if (json && !first)
				sb_printf(out, ",");
			first = false;
			job.dev = d;
			c->call(d, stats_one, &job);
		}
		if (json)
			sb_printf(out, "]}");
		return 0;
	}
	if (strcmp(cmd, "resize") == 0 && argc == 2) {
		if ((r = need_blk(c, argv[1], &d, out)) < 0)
			return r;
		job.dev = d;
		c->call(d, do_resize, &job);
		if ((r = job.rc) < 0) {
			sb_printf(out, "%s: cannot read the image size: %s", argv[1], strerror(-r));
			return r;
		}
		if (json)
			sb_printf(out, "{\"capacity\":%llu}", (unsigned long long)blk_capacity(d->blk));
		else
			sb_printf(out, "%s: capacity %llu sectors", argv[1],
				  (unsigned long long)blk_capacity(d->blk));
		return 0;
	}
	if ((strcmp(cmd, "change") == 0 && argc == 3) || (strcmp(cmd, "eject") == 0 && argc == 2)) {
		if ((r = need_blk(c, argv[1], &d, out)) < 0)
			return r;
		job.dev = d;
		job.arg = argc == 3 ? argv[2] : NULL;
		c->call(d, do_change, &job);
		if ((r = job.rc) < 0) {
			sb_printf(out, "%s", job.err);
			return r;
		}
		if (json)
			sb_printf(out, "{\"capacity\":%llu}", (unsigned long long)blk_capacity(d->blk));
		else
			sb_printf(out, "%s: %s, capacity %llu sectors", argv[1],
				  argc == 3 ? "medium changed" : "medium ejected",
				  (unsigned long long)blk_capacity(d->blk));
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		sb_printf(out, "commands: list | stats [NAME] | resize NAME | change NAME IMAGE | "
			  "eject NAME; prefix with 'json' for JSON");
		return 0;
	}
	sb_printf(out, "unknown command or wrong arguments: '%s' (try 'help')", line);
	return -EINVAL;
}
