/* Messages between threads: the only way the daemon's threads talk.
 *
 * A mailbox belongs to one loop (one thread).  Any thread posts a mail;
 * the owner's loop runs it (in posting order, from a uv_async callback).
 * Once the owner closes its mailbox, posting fails with -ESHUTDOWN, so a
 * sender learns at once that nobody will ever answer instead of waiting
 * forever; mails still queued at close are run with `gone` set.
 *
 * worker_call() (daemon/worker.h) builds request/reply on top: run a
 * function on a worker, get its answer back on the main loop.
 */
#pragma once
#include <stdbool.h>
#include <uv.h>

struct mail {
	struct mail *next;
	/* Runs on the owner's thread; gone: the mailbox was closed before it
	 * could be delivered normally (clean up, do not act). */
	void (*run)(struct mail *m, bool gone);
};

struct mailbox {
	uv_async_t async;
	uv_mutex_t lock;
	struct mail *head, **tail;
	bool closed;
};

int mailbox_init(struct mailbox *mb, uv_loop_t *loop);
/* Any thread.  0, or -ESHUTDOWN when the mailbox is closed (m not taken). */
int mailbox_post(struct mailbox *mb, struct mail *m);
/* The owner's thread: refuse further mail, run what is queued with gone
 * set, close the handle (the loop must run on); the mutex is destroyed
 * with mailbox_destroy() once no thread can post any more. */
void mailbox_close(struct mailbox *mb);
void mailbox_destroy(struct mailbox *mb);
