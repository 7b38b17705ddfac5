#include "daemon/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/openmetrics.h"
#include "daemon/snapshot.h"
#include "daemon/stats_render.h"
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

/* One device's part of an answer: text rendered on its worker (list), or
 * a copy of its counters (stats, rendered on the main loop). */
struct part {
	struct device *dev;
	struct gather *g;
	struct strbuf out;
	struct dev_snapshot *snap;
	int status;             /* -ESHUTDOWN: the worker had stopped */
};

enum format { FMT_TEXT, FMT_JSON, FMT_OPENMETRICS };

/* A command that asks every device (list, stats).  finish answers once
 * every part is back. */
struct gather {
	struct control_cmd *cmd;
	enum format fmt;
	void (*finish)(struct gather *g);
	const char *json_open, *text_head;
	struct dev_snapshot *snaps;     /* stats: one per part */
	unsigned pending, nparts;
	struct part parts[];
};

static void gather_free(struct gather *g)
{
	for (unsigned i = 0; i < g->nparts; i++) {
		sb_free(&g->parts[i].out);
		if (g->snaps)
			snapshot_free(&g->snaps[i]);
	}
	free(g->snaps);
	free(g);
}

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

/* list: the parts' text in device order. */
static void list_answer(struct gather *g)
{
	struct strbuf out;
	bool json = g->fmt == FMT_JSON;
	sb_init(&out);
	sb_printf(&out, "%s", json ? g->json_open : g->text_head);
	for (unsigned i = 0; i < g->nparts; i++) {
		struct part *p = &g->parts[i];
		if (json && i)
			sb_printf(&out, ",");
		if (p->status == 0) {
			sb_printf(&out, "%s", p->out.buf ? p->out.buf : "");
		} else if (json) {
			sb_printf(&out, "{\"name\":");
			sb_json_str(&out, p->dev->cfg->name);
			sb_printf(&out, ",\"state\":\"gone\"}");
		} else {
			sb_printf(&out, "%-12s gone (its worker has stopped)\n", p->dev->cfg->name);
		}
	}
	if (json)
		sb_printf(&out, "]}");
	control_answer(g->cmd, out.oom ? -ENOMEM : 0, out.buf ? out.buf : "");
	sb_free(&out);
	gather_free(g);
}

/* stats, on the device's worker: a copy of its counters. */
static void stats_take(void *arg)
{
	snapshot_take(((struct part *)arg)->snap);
}

/* stats: rendered from the copies, in the format asked for. */
static void stats_answer(struct gather *g)
{
	struct strbuf out;
	bool oom = false;
	sb_init(&out);
	for (unsigned i = 0; i < g->nparts; i++)
		oom |= g->snaps[i].status == -ENOMEM;
	if (g->fmt == FMT_OPENMETRICS) {
		om_render(&out, g->snaps, g->nparts);
	} else if (g->fmt == FMT_JSON) {
		stats_json_open(&out);
		for (unsigned i = 0; i < g->nparts; i++) {
			if (i)
				sb_printf(&out, ",");
			stats_json(&out, &g->snaps[i]);
		}
		stats_json_close(&out);
	} else {
		for (unsigned i = 0; i < g->nparts; i++)
			stats_text(&out, &g->snaps[i]);
	}
	if (oom || out.oom)
		control_answer(g->cmd, -ENOMEM, "out of memory");
	else
		control_answer(g->cmd, 0, out.buf ? out.buf : "");
	sb_free(&out);
	gather_free(g);
}

static void part_done(void *arg, int status)
{
	struct part *p = arg;
	struct gather *g = p->g;
	p->status = status;
	if (--g->pending == 0)
		g->finish(g);
}

/* Run fn for every device (or just `only`) on its worker, then finish on
 * the main loop; with snapshots, each part gets one to fill. */
static void gather(struct command_ctx *c, struct control_cmd *cmd, enum format fmt,
		   const struct device *only, void (*fn)(void *arg),
		   void (*finish)(struct gather *g), bool snapshots, const char *json_open,
		   const char *text_head)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->ndevs; i++)
		n += c->devs[i].open_ok && (!only || &c->devs[i] == only);
	struct gather *g = calloc(1, sizeof(*g) + n * sizeof(struct part));
	struct dev_snapshot *snaps = snapshots ? calloc(n ? n : 1, sizeof(*snaps)) : NULL;
	if (!g || (snapshots && !snaps)) {
		free(g);
		free(snaps);
		control_answer(cmd, -ENOMEM, "out of memory");
		return;
	}
	*g = (struct gather){ .cmd = cmd, .fmt = fmt, .finish = finish, .json_open = json_open,
			      .text_head = text_head ? text_head : "", .snaps = snaps,
			      .pending = n, .nparts = n };
	if (n == 0) {
		finish(g);
		return;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < c->ndevs; i++) {
		struct device *d = &c->devs[i];
		if (!d->open_ok || (only && d != only))
			continue;
		struct part *p = &g->parts[k];
		p->dev = d;
		p->g = g;
		sb_init(&p->out);
		if (snaps) {
			/* "gone" unless the worker runs stats_take */
			snaps[k] = (struct dev_snapshot){ .dev = d, .status = -ESHUTDOWN };
			p->snap = &snaps[k];
		}
		k++;
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
		g->finish(g);
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
	/* A format prefix: "json" for any command, "openmetrics" for stats. */
	enum format fmt = FMT_TEXT;
	if (argc && strcmp(argv[0], "json") == 0)
		fmt = FMT_JSON;
	else if (argc && strcmp(argv[0], "openmetrics") == 0)
		fmt = FMT_OPENMETRICS;
	if (fmt != FMT_TEXT)
		memmove(argv, argv + 1, (size_t)--argc * sizeof(*argv));
	bool json = fmt == FMT_JSON;
	if (argc == 0) {
		control_answer(cmd, -EINVAL, "empty command");
		return;
	}
	const char *verb = argv[0];
	if (strcmp(verb, "stats") == 0 && argc <= 2) {
		const struct device *only = NULL;
		if (argc == 2 && !(only = find(c, argv[1]))) {
			snprintf(msg, sizeof(msg), "no device named '%s'", argv[1]);
			control_answer(cmd, -ENOENT, msg);
			return;
		}
		gather(c, cmd, fmt, only, stats_take, stats_answer, true, NULL, NULL);
		return;
	}
	if (fmt == FMT_OPENMETRICS) {
		control_answer(cmd, -EINVAL, "only stats has an OpenMetrics form");
		return;
	}
	if (strcmp(verb, "list") == 0 && argc == 1) {
		static char head[128];
		snprintf(head, sizeof(head), "%-12s %-8s %-16s %-40s %s\n", "NAME", "TYPE", "STATE",
			 "LINK", "MEDIUM");
		gather(c, cmd, fmt, NULL, json ? list_one_json : list_one_text, list_answer, false,
		       "{\"devices\":[", head);
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
			       "IMAGE | eject NAME | upgrade [PATH]; prefix with 'json' for JSON, "
			       "stats with 'openmetrics' for OpenMetrics");
		return;
	}
	snprintf(msg, sizeof(msg), "unknown command or wrong arguments: '%s' (try 'help')", line);
	control_answer(cmd, -EINVAL, msg);
}
