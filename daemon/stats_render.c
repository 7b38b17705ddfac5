#include "daemon/stats_render.h"

#include <errno.h>

typedef unsigned long long ull;

void stats_json_open(struct strbuf *o)
{
	sb_printf(o, "{\"latency_le_ns\":[");
	for (unsigned i = 0; i + 1 < VDEV_LAT_BUCKETS; i++)
		sb_printf(o, "%s%llu", i ? "," : "", (ull)vdev_lat_bound_ns(i));
	sb_printf(o, "],\"devices\":[");
}

void stats_json_close(struct strbuf *o)
{
	sb_printf(o, "]}");
}

static uint64_t lat_count(const struct vdev_queue_stats *st)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < VDEV_LAT_BUCKETS; i++)
		n += st->lat[i];
	return n;
}

static void queue_json(struct strbuf *o, unsigned index, const struct queue_snapshot *q,
		       bool is_blk)
{
	const struct vdev_queue_stats *st = &q->st;
	sb_printf(o, "{\"index\":%u,\"requests\":%llu,\"kicks\":%llu,\"busy_polled\":%llu,"
		  "\"interrupts\":%llu,\"inflight\":%u,\"inflight_max\":%u,"
		  "\"latency\":{\"count\":%llu,\"sum_ns\":%llu,\"buckets\":[", index,
		  (ull)st->requests, (ull)st->kicks, (ull)st->busy_polled, (ull)st->interrupts,
		  q->inflight, st->inflight_max, (ull)lat_count(st), (ull)st->lat_sum_ns);
	for (unsigned i = 0; i < VDEV_LAT_BUCKETS; i++)
		sb_printf(o, "%s%llu", i ? "," : "", (ull)st->lat[i]);
	sb_printf(o, "]}");
	if (is_blk) {
		/* this queue's own bounce slots (cache = none) */
		const struct blk_stats *b = &q->blk;
		sb_printf(o, ",\"bounced\":{\"read\":{\"requests\":%llu,\"bytes\":%llu},"
			  "\"write\":{\"requests\":%llu,\"bytes\":%llu},\"waits\":%llu}",
			  (ull)b->bounced[0], (ull)b->bounced_bytes[0], (ull)b->bounced[1],
			  (ull)b->bounced_bytes[1], (ull)b->bounce_waits);
	}
	sb_printf(o, "}");
}

void stats_json(struct strbuf *o, const struct dev_snapshot *s)
{
	sb_printf(o, "{\"name\":");
	sb_json_str(o, s->dev->cfg->name);
	sb_printf(o, ",\"type\":\"%s\"", cfg_dev_type_name(s->dev->cfg->type));
	if (s->status == -ESHUTDOWN) {
		sb_printf(o, ",\"state\":\"gone\"}");
		return;
	}
	const struct vdev_stats *vs = &s->vs;
	sb_printf(o, ",\"state\":\"%s\",\"transactions\":%llu,\"resets\":%llu,\"sessions\":%llu,"
		  "\"protocol_errors\":%llu", s->state, (ull)vs->transactions, (ull)vs->resets,
		  (ull)vs->peer_sessions, (ull)vs->protocol_errors);
	if (s->is_blk) {
		const struct blk_stats *b = &s->blk;
		sb_printf(o, ",\"read\":{\"requests\":%llu,\"bytes\":%llu,\"errors\":%llu},"
			  "\"write\":{\"requests\":%llu,\"bytes\":%llu,\"errors\":%llu},"
			  "\"flushes\":%llu,\"discards\":%llu,\"write_zeroes\":%llu,\"get_ids\":%llu,"
			  "\"unsupported\":%llu,\"inflight\":%u",
			  (ull)b->reqs[0], (ull)b->bytes[0], (ull)b->errors[0], (ull)b->reqs[1],
			  (ull)b->bytes[1], (ull)b->errors[1], (ull)b->flushes, (ull)b->discards,
			  (ull)b->write_zeroes, (ull)b->get_ids, (ull)b->unsupported, s->blk_inflight);
		sb_printf(o, ",\"cache\":\"%s\",\"bounced\":{\"read\":{\"requests\":%llu,"
			  "\"bytes\":%llu},\"write\":{\"requests\":%llu,\"bytes\":%llu},"
			  "\"waits\":%llu}", s->dev->cfg->cache == CFG_CACHE_NONE ? "none" : "writeback",
			  (ull)b->bounced[0], (ull)b->bounced_bytes[0], (ull)b->bounced[1],
			  (ull)b->bounced_bytes[1], (ull)b->bounce_waits);
	}
	if (s->is_con) {
		const struct console_stats *c = &s->con;
		sb_printf(o, ",\"to_cell_bytes\":%llu,\"from_cell_bytes\":%llu,\"attached\":%s,"
			  "\"dropped_backlog\":%llu,\"dropped_error\":%llu,\"backlog_bytes\":%llu,"
			  "\"clients\":%llu,\"refused\":%llu", (ull)c->rx_bytes, (ull)c->tx_bytes,
			  s->con_attached ? "true" : "false", (ull)c->dropped_backlog,
			  (ull)c->dropped_error, (ull)c->backlog_bytes, (ull)c->clients,
			  (ull)c->refused);
	}
	sb_printf(o, ",\"queues\":[");
	for (unsigned q = 0; q < s->nq; q++) {
		if (q)
			sb_printf(o, ",");
		queue_json(o, q, &s->q[q], s->is_blk);
	}
	sb_printf(o, "]}");
}

void stats_text(struct strbuf *o, const struct dev_snapshot *s)
{
	const char *name = s->dev->cfg->name;
	if (s->status == -ESHUTDOWN) {
		sb_printf(o, "%-12s gone (its worker has stopped)\n", name);
		return;
	}
	const struct vdev_stats *vs = &s->vs;
	sb_printf(o, "%s: %s, %llu transactions, %llu resets, %llu sessions, %llu protocol errors\n",
		  name, s->state, (ull)vs->transactions, (ull)vs->resets, (ull)vs->peer_sessions,
		  (ull)vs->protocol_errors);
	if (s->is_blk) {
		const struct blk_stats *b = &s->blk;
		sb_printf(o, "  read:  %llu requests, %llu bytes, %llu errors\n", (ull)b->reqs[0],
			  (ull)b->bytes[0], (ull)b->errors[0]);
		sb_printf(o, "  write: %llu requests, %llu bytes, %llu errors\n", (ull)b->reqs[1],
			  (ull)b->bytes[1], (ull)b->errors[1]);
		sb_printf(o, "  flush %llu, discard %llu, write-zeroes %llu, get-id %llu, "
			  "unsupported %llu, in flight %u\n", (ull)b->flushes, (ull)b->discards,
			  (ull)b->write_zeroes, (ull)b->get_ids, (ull)b->unsupported, s->blk_inflight);
		if (s->dev->cfg->cache == CFG_CACHE_NONE)
			sb_printf(o, "  cache none, bounced: %llu reads (%llu bytes), %llu writes "
				  "(%llu bytes), %llu waited for a slot\n", (ull)b->bounced[0],
				  (ull)b->bounced_bytes[0], (ull)b->bounced[1], (ull)b->bounced_bytes[1],
				  (ull)b->bounce_waits);
	}
	if (s->is_con) {
		const struct console_stats *c = &s->con;
		sb_printf(o, "  to the cell %llu bytes, from the cell %llu bytes, %s\n",
			  (ull)c->rx_bytes, (ull)c->tx_bytes,
			  s->con_attached ? "attached" : "nobody attached");
		sb_printf(o, "  dropped: %llu (backlog full), %llu (write errors); backlog %llu bytes; "
			  "%llu clients, %llu refused\n", (ull)c->dropped_backlog,
			  (ull)c->dropped_error, (ull)c->backlog_bytes, (ull)c->clients,
			  (ull)c->refused);
	}
	for (unsigned q = 0; q < s->nq; q++) {
		const struct vdev_queue_stats *st = &s->q[q].st;
		uint64_t n = lat_count(st);
		sb_printf(o, "  queue %u: %llu requests, %llu kicks, %llu busy-polled, "
			  "%llu interrupts, %u in flight (at most %u)", q, (ull)st->requests,
			  (ull)st->kicks, (ull)st->busy_polled, (ull)st->interrupts,
			  s->q[q].inflight, st->inflight_max);
		if (n)
			sb_printf(o, ", latency %.1f us on average", (double)st->lat_sum_ns / n / 1e3);
		sb_printf(o, "\n");
	}
}
