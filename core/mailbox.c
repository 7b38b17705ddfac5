#include "core/mailbox.h"

#include <errno.h>
#include <stddef.h>

/* Take what is queued (closing the box if asked) and run it. */
static void run_queued(struct mailbox *mb, bool close)
{
	uv_mutex_lock(&mb->lock);
	if (close)
		mb->closed = true;
	struct mail *list = mb->head;
	mb->head = NULL;
	mb->tail = &mb->head;
	uv_mutex_unlock(&mb->lock);
	while (list) {
		struct mail *m = list;
		list = m->next;
		m->run(m, close);
	}
}

static void deliver(uv_async_t *h)
{
	run_queued(h->data, false);
}

int mailbox_init(struct mailbox *mb, uv_loop_t *loop)
{
	mb->head = NULL;
	mb->tail = &mb->head;
	mb->closed = false;
	int r = uv_mutex_init(&mb->lock);
	if (r < 0)
		return r;
	r = uv_async_init(loop, &mb->async, deliver);
	if (r < 0) {
		uv_mutex_destroy(&mb->lock);
		return r;
	}
	mb->async.data = mb;
	return 0;
}

int mailbox_post(struct mailbox *mb, struct mail *m)
{
	uv_mutex_lock(&mb->lock);
	if (mb->closed) {
		uv_mutex_unlock(&mb->lock);
		return -ESHUTDOWN;
	}
	m->next = NULL;
	*mb->tail = m;
	mb->tail = &m->next;
	/* Under the lock: the owner cannot close the handle meanwhile. */
	uv_async_send(&mb->async);
	uv_mutex_unlock(&mb->lock);
	return 0;
}

void mailbox_close(struct mailbox *mb)
{
	run_queued(mb, true);
	uv_close((uv_handle_t *)&mb->async, NULL);
}

void mailbox_destroy(struct mailbox *mb)
{
	uv_mutex_destroy(&mb->lock);
}
