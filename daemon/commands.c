#include "daemon/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"
#include "daemon/worker.h"

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

/* One device's part of an answer, rendered on its worker. */
struct part {
	struct device *dev;
	struct gather *g;
	struct strbuf out;
	bool json;
	int status;             /* -ESHUTDOWN: the worker had stopped */
};

/* A command that asks every device (list, stats). */
struct gather {
	struct control_cmd *cmd;
	bool json;
	const char *json_open, *text_head;
	unsigned pending, nparts;
	struct part parts[];
};

static void list_one_json(void *arg)
{
	struct part *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = &j->out;
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
	struct part *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = &j->out;
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
	struct part *j = arg;
	struct device *d = j->dev;
	struct strbuf *o = &j->out;
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
				  q ? "," : "", q, (unsigned long long)vd->q[q].stats.kicks,
				  (unsigned long long)vd->q[q].stats.interrupts, vd->q[q].inflight);
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
			  (unsigned long long)vd->q[q].stats.kicks,
			  (unsigned long long)vd->q[q].stats.interrupts, vd->q[q].inflight);
}



static void gather_answer(struct gather *g)
{
	struct strbuf out;
	sb_init(&out);
	if (g->json)
		sb_printf(&out, "%s", g->json_open);
	else if (g->text_head)
		sb_printf(&out, "%s", g->text_head);
	bool first = true;
	for (unsigned i = 0; i < g->nparts; i++) {
		struct part *p = &g->parts[i];
		if (g->json && !first)
			sb_printf(&out, ",");
		first = false;
		if (p->status == 0) {
			sb_printf(&out, "%s", p->out.buf ? p->out.buf : "");
		} else if (g->json) {
			sb_printf(&out, "{\"name\":");
			sb_json_str(&out, p->dev->cfg->name);
			sb_printf(&out, ",\"state\":\"gone\"}");
		} else {
			sb_printf(&out, "%-12s gone (its worker has stopped)\n", p->dev->cfg->name);
		}
		sb_free(&p->out);
	}
	if (g->json)
		sb_printf(&out, "]}");
	control_answer(g->cmd, out.oom ? -ENOMEM : 0, out.buf ? out.buf : "");
	sb_free(&out);
	free(g);
}

static void part_done(void *arg, int status)
{
	struct part *p = arg;
	struct gather *g = p->g;
	p->status = status;
	if (--g->pending == 0)
		gather_answer(g);
}

/* Render fn for every device (or just `only`) on its worker. */
static void gather(struct command_ctx *c, struct control_cmd *cmd, bool json,
		   const struct device *only, void (*fn)(void *arg), const char *json_open,
		   const char *text_head)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->ndevs; i++)
		n += c->devs[i].open_ok && (!only || &c->devs[i] == only);
	struct gather *g = calloc(1, sizeof(*g) + n * sizeof(struct part));
	if (!g) {
		control_answer(cmd, -ENOMEM, "out of memory");
		return;
	}
	*g = (struct gather){ .cmd = cmd, .json = json, .json_open = json_open,
			      .text_head = text_head, .pending = n, .nparts = n };
	if (n == 0) {
		gather_answer(g);
		return;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < c->ndevs; i++) {
		struct device *d = &c->devs[i];
		if (!d->open_ok || (only && d != only))
			continue;
		struct part *p = &g->parts[k++];
		p->dev = d;
		p->g = g;
		p->json = json;
		sb_init(&p->out);
	}
	/* All parts are set up before the first call: answers may come back
	 * in any order once the main loop runs again (never during this loop).
	 * A part that cannot be asked shows as its worker gone. */
	for (unsigned i = 0; i < n; i++) {
		if (worker_call(g->parts[i].dev->worker, fn, part_done, &g->parts[i]) < 0) {
			g->parts[i].status = -ENOMEM;
			g->pending--;
		}
	}
	if (g->pending == 0)
		gather_answer(g);
}

/* resize, change, eject: one block device, on its worker. */
struct medium_job {
	struct control_cmd *cmd;
	struct device *dev;
	bool json;
	char verb[16];
	char image[CTL_MAX_LINE];
	bool has_image;
	int rc;
	uint64_t capacity;
	char err[512];
};

static void do_resize(void *arg)
{
	struct medium_job *j = arg;
	j->rc = blk_resize(j->dev->blk);
	if (j->rc < 0)
		snprintf(j->err, sizeof(j->err), "%s: cannot read the image size: %s",
			 j->dev->cfg->name, strerror(-j->rc));
	j->capacity = blk_capacity(j->dev->blk);
}

static void do_change(void *arg)
{
	struct medium_job *j = arg;
	j->rc = blk_change(j->dev->blk, j->has_image ? j->image : NULL, j->err, sizeof(j->err));
	j->capacity = blk_capacity(j->dev->blk);
}

static void medium_done(void *arg, int status)
{
	struct medium_job *j = arg;
	char body[700];
	if (status < 0) {
		control_answer(j->cmd, status, "the device's worker has stopped");
	} else if (j->rc < 0) {
		control_answer(j->cmd, j->rc, j->err);
	} else {
		if (j->json)
			snprintf(body, sizeof(body), "{\"capacity\":%llu}",
				 (unsigned long long)j->capacity);
		else if (strcmp(j->verb, "resize") == 0)
			snprintf(body, sizeof(body), "%s: capacity %llu sectors", j->dev->cfg->name,
				 (unsigned long long)j->capacity);
		else
			snprintf(body, sizeof(body), "%s: %s, capacity %llu sectors", j->dev->cfg->name,
				 j->has_image ? "medium changed" : "medium ejected",
				 (unsigned long long)j->capacity);
		control_answer(j->cmd, 0, body);
	}
	free(j);
}

static void medium(struct command_ctx *c, struct control_cmd *cmd, bool json, char **argv,
		   int argc)
{
	char msg[300];
	struct device *d = find(c, argv[1]);
	if (!d) {
		snprintf(msg, sizeof(msg), "no device named '%s'", argv[1]);
		control_answer(cmd, -ENOENT, msg);
		return;
	}
	if (d->cfg->type != DEV_BLOCK || !d->open_ok) {
		snprintf(msg, sizeof(msg), "%s is not a block device", argv[1]);
		control_answer(cmd, -EINVAL, msg);
		return;
	}
	struct medium_job *j = calloc(1, sizeof(*j));
	if (!j) {
		control_answer(cmd, -ENOMEM, "out of memory");
		return;
	}
	j->cmd = cmd;
	j->dev = d;
	j->json = json;
	snprintf(j->verb, sizeof(j->verb), "%s", argv[0]);
	if (argc == 3) {
		snprintf(j->image, sizeof(j->image), "%s", argv[2]);
		j->has_image = true;
	}
	if (worker_call(d->worker, strcmp(argv[0], "resize") == 0 ? do_resize : do_change,
			medium_done, j) < 0) {
		control_answer(cmd, -ENOMEM, "out of memory");
		free(j);
	}
}

void commands_handle(void *ctx, const char *line, struct control_cmd *cmd)
{
	struct command_ctx *c = ctx;
	char buf[CTL_MAX_LINE], *argv[MAX_ARGS + 1], msg[CTL_MAX_LINE + 64];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_ARGS + 1) {
			control_answer(cmd, -E2BIG, "too many arguments");
			return;
		}
		argv[argc++] = t;
	}
	bool json = argc && strcmp(argv[0], "json") == 0;
	if (json)
		memmove(argv, argv + 1, (size_t)--argc * sizeof(*argv));
	if (argc == 0) {
		control_answer(cmd, -EINVAL, "empty command");
		return;
	}
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0 && argc == 1) {
		static char head[128];
		snprintf(head, sizeof(head), "%-12s %-8s %-16s %-40s %s\n", "NAME", "TYPE", "STATE",
			 "LINK", "MEDIUM");
		gather(c, cmd, json, NULL, json ? list_one_json : list_one_text, "{\"devices\":[",
		       head);
		return;
	}
	if (strcmp(verb, "stats") == 0 && argc <= 2) {
		const struct device *only = NULL;
		if (argc == 2 && !(only = find(c, argv[1]))) {
			snprintf(msg, sizeof(msg), "no device named '%s'", argv[1]);
			control_answer(cmd, -ENOENT, msg);
			return;
		}
		gather(c, cmd, json, only, stats_one, "{\"devices\":[", NULL);
		return;
	}
	if ((strcmp(verb, "resize") == 0 && argc == 2) || (strcmp(verb, "change") == 0 && argc == 3) ||
	    (strcmp(verb, "eject") == 0 && argc == 2)) {
		medium(c, cmd, json, argv, argc);
		return;
	}
	if (strcmp(verb, "upgrade") == 0 && argc <= 2) {
		if (c->stopping)
			control_answer(cmd, -ESHUTDOWN, "the daemon is shutting down");
		else
			upgrade_start(c->upgrade, argc == 2 ? argv[1] : NULL, cmd);
		return;
	}
	if (strcmp(verb, "help") == 0) {
		control_answer(cmd, 0, "commands: list | stats [NAME] | resize NAME | change NAME "
			       "IMAGE | eject NAME | upgrade [PATH]; prefix with 'json' for JSON");
		return;
	}
	snprintf(msg, sizeof(msg), "unknown command or wrong arguments: '%s' (try 'help')", line);
	control_answer(cmd, -EINVAL, msg);
}
