#include "daemon/openmetrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P "virtio_ivshmemd_"

typedef unsigned long long ull;

enum fam_id {
	F_STATE, F_TRANSACTIONS, F_RESETS, F_SESSIONS, F_PROTOCOL_ERRORS,
	F_Q_REQUESTS, F_Q_KICKS, F_Q_BUSY_POLLED, F_Q_INTERRUPTS, F_Q_INFLIGHT, F_Q_INFLIGHT_MAX,
	F_Q_LATENCY,
	F_BLK_REQUESTS, F_BLK_BYTES, F_BLK_ERRORS, F_BLK_COMMANDS, F_BLK_UNSUPPORTED,
	F_BLK_INFLIGHT, F_BLK_BOUNCED, F_BLK_BOUNCED_BYTES,
	F_CON_BYTES, F_CON_DROPPED, F_CON_BACKLOG, F_CON_ATTACHED, F_CON_CLIENTS, F_CON_REFUSED,
};

/* Which devices have samples in a family. */
enum fam_of { ALL, SERVED, BLK, CON };

struct family {
	enum fam_id id;
	const char *name, *type, *unit;
	enum fam_of of;
	const char *help;
};

static const struct family families[] = {
	{ F_STATE, P "device_state", "gauge", NULL, ALL,
	  "1 for the state the device is in (as list shows it; gone: its worker has stopped), "
	  "0 for the others" },
	{ F_TRANSACTIONS, P "transactions", "counter", NULL, SERVED,
	  "Register-write transactions of the cell's driver" },
	{ F_RESETS, P "resets", "counter", NULL, SERVED, "Device resets by the cell's driver" },
	{ F_SESSIONS, P "sessions", "counter", NULL, SERVED,
	  "Times the cell's side of the link became ready" },
	{ F_PROTOCOL_ERRORS, P "protocol_errors", "counter", NULL, SERVED,
	  "Transactions of the cell's driver that broke the transport protocol" },
	{ F_Q_REQUESTS, P "queue_requests", "counter", NULL, SERVED,
	  "Requests taken from the queue" },
	{ F_Q_KICKS, P "queue_kicks", "counter", NULL, SERVED,
	  "Notifications from the cell that made the daemon look at the queue" },
	{ F_Q_BUSY_POLLED, P "queue_busy_polled", "counter", NULL, SERVED,
	  "Requests taken while a loop watched the ring before it slept, the cell's "
	  "kicks turned off (busy-poll-us)" },
	{ F_Q_INTERRUPTS, P "queue_interrupts", "counter", NULL, SERVED,
	  "Interrupts sent to the cell for the queue" },
	{ F_Q_INFLIGHT, P "queue_inflight", "gauge", NULL, SERVED,
	  "Requests taken from the queue and not answered yet" },
	{ F_Q_INFLIGHT_MAX, P "queue_inflight_max", "gauge", NULL, SERVED,
	  "The most requests of the queue in flight at once since the daemon started" },
	{ F_Q_LATENCY, P "queue_latency_seconds", "histogram", "seconds", SERVED,
	  "Time from taking a request from the queue to answering it" },
	{ F_BLK_REQUESTS, P "blk_requests", "counter", NULL, BLK,
	  "Read and write requests accepted" },
	{ F_BLK_BYTES, P "blk_bytes", "counter", "bytes", BLK,
	  "Data of the read and write requests accepted" },
	{ F_BLK_ERRORS, P "blk_errors", "counter", NULL, BLK,
	  "Requests answered with an I/O error; every type but read counts as write" },
	{ F_BLK_COMMANDS, P "blk_commands", "counter", NULL, BLK,
	  "Requests other than read and write, by type" },
	{ F_BLK_UNSUPPORTED, P "blk_unsupported", "counter", NULL, BLK,
	  "Requests of a type the disk does not support" },
	{ F_BLK_INFLIGHT, P "blk_inflight", "gauge", NULL, BLK, "Requests of the disk in flight" },
	{ F_BLK_BOUNCED, P "blk_bounced", "counter", NULL, BLK,
	  "Reads and writes that went through a bounce buffer (cache = none: not aligned for "
	  "direct I/O), all queues" },
	{ F_BLK_BOUNCED_BYTES, P "blk_bounced_bytes", "counter", "bytes", BLK,
	  "Data of the reads and writes that went through a bounce buffer" },
	{ F_CON_BYTES, P "console_bytes", "counter", "bytes", CON,
	  "Bytes to the cell and from the cell" },
	{ F_CON_DROPPED, P "console_dropped_bytes", "counter", "bytes", CON,
	  "Output lost: the backlog was full (oldest bytes dropped) or the endpoint failed" },
	{ F_CON_BACKLOG, P "console_backlog_bytes", "gauge", "bytes", CON,
	  "Output kept for whoever attaches next" },
	{ F_CON_ATTACHED, P "console_attached", "gauge", NULL, CON,
	  "1 while somebody is attached to the endpoint" },
	{ F_CON_CLIENTS, P "console_clients", "counter", NULL, CON,
	  "Socket clients accepted and pty attachments" },
	{ F_CON_REFUSED, P "console_refused", "counter", NULL, CON,
	  "Socket clients turned away (one at a time)" },
};

/* The states device_state enumerates: vdev_phase_name()'s, and "gone". */
static const char *const states[] = { "waiting for peer", "negotiating", "running", "broken",
				      "stopped", "gone" };

static bool has(const struct family *f, const struct dev_snapshot *s)
{
	switch (f->of) {
	case ALL: return true;
	case SERVED: return s->status == 0;
	case BLK: return s->status == 0 && s->is_blk;
	case CON: return s->status == 0 && s->is_con;
	}
	return false;
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct strbuf *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(o, "\\%c", *v);
		else if (*v == '\n')
			sb_printf(o, "\\n");
		else
			sb_printf(o, "%c", *v);
	}
}

/* `NAMESUFFIX{device="D"`: the caller adds its labels and "} value". */
static void sample(struct strbuf *o, const struct family *f, const char *suffix,
		   const struct dev_snapshot *s)
{
	sb_printf(o, "%s%s{device=\"", f->name, suffix);
	label_value(o, s->dev->cfg->name);
	sb_printf(o, "\"");
}

static void counter(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
		    const char *label, const char *value, uint64_t v)
{
	sample(o, f, "_total", s);
	if (label)
		sb_printf(o, ",%s=\"%s\"", label, value);
	sb_printf(o, "} %llu\n", (ull)v);
}

static void gauge(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
		  uint64_t v)
{
	sample(o, f, "", s);
	sb_printf(o, "} %llu\n", (ull)v);
}

void om_le(char *buf, uint64_t ns)
{
	double v = (double)ns / 1e9;
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".e"))
		strcat(buf, ".0");
}

static void latency(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
		    unsigned q, char le[][32])
{
	const struct vdev_queue_stats *st = &s->q[q].st;
	uint64_t cum = 0;
	for (unsigned i = 0; i < VDEV_LAT_BUCKETS; i++) {
		cum += st->lat[i];
		sample(o, f, "_bucket", s);
		sb_printf(o, ",queue=\"%u\",le=\"%s\"} %llu\n", q,
			  i + 1 < VDEV_LAT_BUCKETS ? le[i] : "+Inf", (ull)cum);
	}
	sample(o, f, "_count", s);
	sb_printf(o, ",queue=\"%u\"} %llu\n", q, (ull)cum);
	sample(o, f, "_sum", s);
	sb_printf(o, ",queue=\"%u\"} %llu.%09llu\n", q, (ull)(st->lat_sum_ns / 1000000000u),
		  (ull)(st->lat_sum_ns % 1000000000u));
}

static void per_queue(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
		      char le[][32])
{
	for (unsigned q = 0; q < s->nq; q++) {
		const struct queue_snapshot *qs = &s->q[q];
		uint64_t v = 0;
		switch (f->id) {
		case F_Q_LATENCY:
			latency(o, f, s, q, le);
			continue;
		case F_Q_REQUESTS: v = qs->st.requests; break;
		case F_Q_KICKS: v = qs->st.kicks; break;
		case F_Q_BUSY_POLLED: v = qs->st.busy_polled; break;
		case F_Q_INTERRUPTS: v = qs->st.interrupts; break;
		case F_Q_INFLIGHT: v = qs->inflight; break;
		case F_Q_INFLIGHT_MAX: v = qs->st.inflight_max; break;
		default: return;
		}
		sample(o, f, strcmp(f->type, "counter") == 0 ? "_total" : "", s);
		sb_printf(o, ",queue=\"%u\"} %llu\n", q, (ull)v);
	}
}

static void device_state(struct strbuf *o, const struct family *f, const struct dev_snapshot *s)
{
	const char *now = s->status == 0 ? s->state : "gone";
	for (unsigned i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		sample(o, f, "", s);
		sb_printf(o, ",type=\"%s\",state=\"%s\"} %d\n", cfg_dev_type_name(s->dev->cfg->type),
			  states[i], strcmp(now, states[i]) == 0);
	}
}

/* A counter kept per direction ([0] read, [1] write). */
static void by_direction(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
			 const uint64_t v[2])
{
	counter(o, f, s, "direction", "read", v[0]);
	counter(o, f, s, "direction", "write", v[1]);
}

static void emit(struct strbuf *o, const struct family *f, const struct dev_snapshot *s,
		 char le[][32])
{
	const struct blk_stats *b = &s->blk;
	const struct console_stats *c = &s->con;
	switch (f->id) {
	case F_STATE: device_state(o, f, s); break;
	case F_TRANSACTIONS: counter(o, f, s, NULL, NULL, s->vs.transactions); break;
	case F_RESETS: counter(o, f, s, NULL, NULL, s->vs.resets); break;
	case F_SESSIONS: counter(o, f, s, NULL, NULL, s->vs.peer_sessions); break;
	case F_PROTOCOL_ERRORS: counter(o, f, s, NULL, NULL, s->vs.protocol_errors); break;
	case F_Q_REQUESTS: case F_Q_KICKS: case F_Q_BUSY_POLLED: case F_Q_INTERRUPTS:
	case F_Q_INFLIGHT: case F_Q_INFLIGHT_MAX: case F_Q_LATENCY:
		per_queue(o, f, s, le);
		break;
	case F_BLK_REQUESTS: by_direction(o, f, s, b->reqs); break;
	case F_BLK_BYTES: by_direction(o, f, s, b->bytes); break;
	case F_BLK_ERRORS: by_direction(o, f, s, b->errors); break;
	case F_BLK_COMMANDS:
		counter(o, f, s, "type", "flush", b->flushes);
		counter(o, f, s, "type", "discard", b->discards);
		counter(o, f, s, "type", "write_zeroes", b->write_zeroes);
		counter(o, f, s, "type", "get_id", b->get_ids);
		break;
	case F_BLK_UNSUPPORTED: counter(o, f, s, NULL, NULL, b->unsupported); break;
	case F_BLK_INFLIGHT: gauge(o, f, s, s->blk_inflight); break;
	case F_BLK_BOUNCED: by_direction(o, f, s, b->bounced); break;
	case F_BLK_BOUNCED_BYTES: by_direction(o, f, s, b->bounced_bytes); break;
	case F_CON_BYTES:
		counter(o, f, s, "direction", "to_cell", c->rx_bytes);
		counter(o, f, s, "direction", "from_cell", c->tx_bytes);
		break;
	case F_CON_DROPPED:
		counter(o, f, s, "reason", "backlog", c->dropped_backlog);
		counter(o, f, s, "reason", "error", c->dropped_error);
		break;
	case F_CON_BACKLOG: gauge(o, f, s, c->backlog_bytes); break;
	case F_CON_ATTACHED: gauge(o, f, s, s->con_attached); break;
	case F_CON_CLIENTS: counter(o, f, s, NULL, NULL, c->clients); break;
	case F_CON_REFUSED: counter(o, f, s, NULL, NULL, c->refused); break;
	}
}

void om_render(struct strbuf *o, const struct dev_snapshot *s, unsigned n)
{
	char le[VDEV_LAT_BUCKETS - 1][32];
	for (unsigned i = 0; i + 1 < VDEV_LAT_BUCKETS; i++)
		om_le(le[i], vdev_lat_bound_ns(i));
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct family *f = &families[k];
		bool any = false;
		for (unsigned i = 0; i < n && !any; i++)
			any = has(f, &s[i]);
		/* A family no device has samples in is left out. */
		if (!any)
			continue;
		sb_printf(o, "# TYPE %s %s\n", f->name, f->type);
		if (f->unit)
			sb_printf(o, "# UNIT %s %s\n", f->name, f->unit);
		sb_printf(o, "# HELP %s %s\n", f->name, f->help);
		for (unsigned i = 0; i < n; i++)
			if (has(f, &s[i]))
				emit(o, f, &s[i], le);
	}
	sb_printf(o, "# EOF\n");
}
