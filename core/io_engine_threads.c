/* The threads flavour of the engine (core/io_engine.h), for where io_uring
 * cannot be had.
 *
 * Ownership: the loop's thread owns the engine, the devices and every
 * request.  It hands work over as messages (struct io_msg: a copy of the
 * operation plus an opaque token to bring back); a pool thread runs the
 * syscall on the fd and buffers the message names, stores the result in the
 * message and posts it back.  Pool threads touch nothing else: the queues
 * below, each under its own lock, are the only state both sides see, and a
 * message belongs to exactly one side at a time (the queue it sits in says
 * which).  The buffers themselves (shared memory) are the pool's between
 * hand-over and completion, as they are the kernel's with io_uring.
 *
 * Batching as with io_uring: operations queued during an iteration wait in
 * a list of the loop's own; at the end of the iteration the whole list goes
 * into the pool's queue under one lock and as many threads are woken as
 * there is work (more are started, up to the maximum, when all are busy).
 * A thread posting into an empty completion queue writes the eventfd once;
 * the loop takes the whole queue under one lock and runs the callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/io_engine_int.h"

#define MAX_THREADS 64
#define SLAB_MSGS   64

struct io_msg {
	struct io_msg *next;        /* in the queue that holds it */
	struct io_msg *chain;       /* next operation of a chain: same thread, after this */
	struct io_op *op;           /* brought back; the pool never looks inside */
	struct io_req req;
	int res;
};

struct slab {
	struct slab *next;
	struct io_msg msgs[SLAB_MSGS];
};

/* Shared between the loop's thread and the pool threads, under the locks. */
struct pool_chan {
	pthread_mutex_t todo_lock;
	pthread_cond_t todo_cond;
	struct io_msg *todo, **todo_tail;   /* chain heads, in order */
	unsigned idle;                      /* threads waiting on todo_cond */
	bool stop;
	pthread_mutex_t done_lock;
	struct io_msg *done, **done_tail;
	int efd;
};

struct io_pool {
	struct pool_chan chan;
	/* The loop's thread only. */
	struct io_msg *pending, **pending_tail;    /* queued this iteration */
	unsigned npending;                          /* chains in it */
	struct io_msg *free;
	struct slab *slabs;
	pthread_t threads[MAX_THREADS];
	unsigned nthreads, max_threads;
};

static int run_syscall(const struct io_req *rq)
{
	ssize_t r = 0;
	switch (rq->opcode) {
	case IO_READV:
		r = preadv2(rq->fd, rq->iov, (int)rq->niov, (off_t)rq->off, 0);
		break;
	case IO_WRITEV:
		r = pwritev2(rq->fd, rq->iov, (int)rq->niov, (off_t)rq->off, 0);
		break;
	case IO_FDATASYNC:
		r = fdatasync(rq->fd);
		break;
	case IO_FALLOCATE:
		r = fallocate(rq->fd, rq->mode, (off_t)rq->off, (off_t)rq->len);
		break;
	}
	return r < 0 ? -errno : (int)r;
}

static void post(struct pool_chan *c, struct io_msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&c->done_lock);
	bool was_empty = c->done == NULL;
	*c->done_tail = m;
	c->done_tail = &m->next;
	pthread_mutex_unlock(&c->done_lock);
	/* Only the first of a batch wakes the loop: it takes them all. */
	if (was_empty) {
		uint64_t one = 1;
		while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

static void *pool_main(void *arg)
{
	struct pool_chan *c = arg;
	pthread_mutex_lock(&c->todo_lock);
	for (;;) {
		while (!c->todo && !c->stop) {
			c->idle++;
			pthread_cond_wait(&c->todo_cond, &c->todo_lock);
			c->idle--;
		}
		struct io_msg *m = c->todo;
		if (!m)
			break;          /* stopping, and nothing is left */
		c->todo = m->next;
		if (!c->todo)
			c->todo_tail = &c->todo;
		pthread_mutex_unlock(&c->todo_lock);
		while (m) {
			/* Read the link before posting: once posted, the message
			 * is the loop's again. */
			struct io_msg *next = m->chain;
			m->res = run_syscall(&m->req);
			post(c, m);
			m = next;
		}
		pthread_mutex_lock(&c->todo_lock);
	}
	pthread_mutex_unlock(&c->todo_lock);
	return NULL;
}

/* Pool threads take no signals: they go to the threads that handle them,
 * and a syscall of ours is never cut short by one. */
static int start_thread(struct io_pool *p)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&p->threads[p->nthreads], NULL, pool_main, &p->chan);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	char name[16];
	snprintf(name, sizeof(name), "vivd-io%u", p->nthreads);
	pthread_setname_np(p->threads[p->nthreads], name);
	p->nthreads++;
	return 0;
}

int pool_init(struct io_engine *e, unsigned max_threads)
{
	struct io_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	struct pool_chan *c = &p->chan;
	pthread_mutex_init(&c->todo_lock, NULL);
	pthread_cond_init(&c->todo_cond, NULL);
	pthread_mutex_init(&c->done_lock, NULL);
	c->todo_tail = &c->todo;
	c->done_tail = &c->done;
	c->efd = e->efd;
	p->pending_tail = &p->pending;
	p->max_threads = max_threads > MAX_THREADS ? MAX_THREADS : max_threads;
	e->pool = p;
	/* One thread now, so that a pool that cannot run fails here rather
	 * than on the first request; more when the work needs them. */
	int r = start_thread(p);
	if (r < 0) {
		pool_close(e);
		return r;
	}
	return 0;
}

static int take_msgs(struct io_pool *p, unsigned n)
{
	unsigned have = 0;
	for (struct io_msg *m = p->free; m && have < n; m = m->next)
		have++;
	while (have < n) {
		struct slab *s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->next = p->slabs;
		p->slabs = s;
		for (unsigned i = 0; i < SLAB_MSGS; i++) {
			s->msgs[i].next = p->free;
			p->free = &s->msgs[i];
		}
		have += SLAB_MSGS;
	}
	return 0;
}

int pool_queue(struct io_engine *e, struct io_op *op, const struct io_req *req, unsigned n)
{
	struct io_pool *p = e->pool;
	int r = take_msgs(p, n);
	if (r < 0)
		return r;
	struct io_msg *head = NULL, **link = &head;
	for (unsigned i = 0; i < n; i++) {
		struct io_msg *m = p->free;
		p->free = m->next;
		*m = (struct io_msg){ .op = op, .req = req[i] };
		*link = m;
		link = &m->chain;
	}
	*p->pending_tail = head;
	p->pending_tail = &head->next;
	p->npending++;
	return 0;
}

bool pool_flush(struct io_engine *e)
{
	struct io_pool *p = e->pool;
	if (!p->pending)
		return false;
	struct pool_chan *c = &p->chan;
	unsigned n = p->npending;
	pthread_mutex_lock(&c->todo_lock);
	*c->todo_tail = p->pending;
	c->todo_tail = p->pending_tail;
	unsigned idle = c->idle;
	pthread_mutex_unlock(&c->todo_lock);
	p->pending = NULL;
	p->pending_tail = &p->pending;
	p->npending = 0;
	e->batches++;
	if (n >= idle) {
		pthread_cond_broadcast(&c->todo_cond);
		/* Every thread is (about to be) busy: one more per chain left
		 * over, up to the maximum.  A failure only means less overlap. */
		for (unsigned extra = n - idle; extra && p->nthreads < p->max_threads; extra--)
			if (start_thread(p) < 0)
				break;
	} else {
		for (unsigned i = 0; i < n; i++)
			pthread_cond_signal(&c->todo_cond);
	}
	return false;
}

void pool_reap(struct io_engine *e)
{
	struct io_pool *p = e->pool;
	struct pool_chan *c = &p->chan;
	pthread_mutex_lock(&c->done_lock);
	struct io_msg *m = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	pthread_mutex_unlock(&c->done_lock);
	while (m) {
		struct io_msg *next = m->next;
		struct io_op *op = m->op;
		int res = m->res;
		/* Free first: the callback may queue again. */
		m->next = p->free;
		p->free = m;
		io_engine_completed(e, op, res);
		m = next;
	}
}

void pool_close(struct io_engine *e)
{
	struct io_pool *p = e->pool;
	struct pool_chan *c = &p->chan;
	pthread_mutex_lock(&c->todo_lock);
	c->stop = true;
	pthread_cond_broadcast(&c->todo_cond);
	pthread_mutex_unlock(&c->todo_lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while (p->slabs) {
		struct slab *s = p->slabs;
		p->slabs = s->next;
		free(s);
	}
	pthread_mutex_destroy(&c->todo_lock);
	pthread_cond_destroy(&c->todo_cond);
	pthread_mutex_destroy(&c->done_lock);
	free(p);
	e->pool = NULL;
}
