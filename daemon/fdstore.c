#include "daemon/fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/container_of.h"
#include "core/log.h"
#include "daemon/notify.h"

/* A message to the supervisor (fd: ours to duplicate, or -1 to remove).
 * FDPOLL=0: systemd would otherwise drop an fd that reports a hang-up, and
 * an idle pty master always does; we remove what we no longer hold. */
static void enqueue(struct fdstore *s, const char *name, int fd)
{
	char msg[HANDOVER_NAME_MAX + 40];
	snprintf(msg, sizeof(msg), fd >= 0 ? "FDSTORE=1\nFDPOLL=0\nFDNAME=%s"
					   : "FDSTOREREMOVE=1\nFDNAME=%s", name);
	notifier_send(s->notifier, msg, fd);
	if (fd >= 0)
		s->sent++;
	else
		s->removed++;
}

static bool under(const char *name, const char *device)
{
	size_t n = strlen(device);
	return strncmp(name, device, n) == 0 && name[n] == '/';
}

static int add_entry(struct fdstore *s, const char *name, int fd)
{
	if (s->n == s->cap) {
		unsigned cap = s->cap ? 2 * s->cap : 32;
		struct fdstore_entry *n = realloc(s->e, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->e = n;
		s->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	s->e[s->n++] = (struct fdstore_entry){ .name = copy, .fd = fd };
	return 0;
}

void fdstore_init(struct fdstore *s, struct notifier *notifier, bool enabled,
		  const struct handover *handed)
{
	*s = (struct fdstore){ .enabled = enabled && notifier->enabled, .notifier = notifier };
	if (s->enabled && !handover_can_compare()) {
		/* Each fd must be stored once and replaced only when it really
		 * changed: without a way to compare open files neither holds. */
		log_warn("fd store: this kernel cannot compare open files (no kcmp, no "
			 "F_DUPFD_QUERY): the fds are not kept, a crash ends the cells' sessions");
		s->enabled = false;
	}
	if (!s->enabled || !handed)
		return;
	/* What the store holds now: what we were started with. */
	for (unsigned i = 0; i < handed->n; i++) {
		int fd = fcntl(handed->fds[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0 && add_entry(s, handed->fds[i].name, fd) < 0)
			close(fd);
	}
}

static void mail_run(struct mail *m, bool gone)
{
	struct fdstore_mail *fm = container_of(m, struct fdstore_mail, m);
	if (!gone)
		fdstore_sync(fm->store, fm->device, &fm->h);
	for (unsigned i = 0; i < fm->h.n; i++)
		if (fm->h.fds[i].fd >= 0)
			close(fm->h.fds[i].fd);
	handover_free(&fm->h);
	free(fm);
}

struct fdstore_mail *fdstore_mail_new(struct fdstore *s, const char *device)
{
	struct fdstore_mail *fm = calloc(1, sizeof(*fm));
	if (!fm)
		return NULL;
	fm->m.run = mail_run;
	fm->store = s;
	snprintf(fm->device, sizeof(fm->device), "%s", device);
	return fm;
}

static void remove_name(struct fdstore *s, const char *name)
{
	enqueue(s, name, -1);
}

/* Drop the entry at i (the store forgets it). */
static void drop(struct fdstore *s, unsigned i)
{
	remove_name(s, s->e[i].name);
	close(s->e[i].fd);
	free(s->e[i].name);
	s->e[i] = s->e[--s->n];
}

void fdstore_sync(struct fdstore *s, const char *device, struct handover *set)
{
	if (!s->enabled)
		return;
	/* what is stored and stays (set's fd closed: nothing to send) */
	for (unsigned i = 0; i < s->n;) {
		struct fdstore_entry *e = &s->e[i];
		if (!under(e->name, device)) {
			i++;
			continue;
		}
		bool kept = false;
		for (unsigned k = 0; k < set->n && !kept; k++) {
			struct handover_fd *f = &set->fds[k];
			if (f->fd >= 0 && strcmp(f->name, e->name) == 0 && handover_same_file(f->fd, e->fd)) {
				close(f->fd);
				f->fd = -1;
				kept = true;
			}
		}
		if (kept)
			i++;
		else
			drop(s, i);
	}
	for (unsigned k = 0; k < set->n; k++) {
		struct handover_fd *f = &set->fds[k];
		if (f->fd < 0)
			continue;
		enqueue(s, f->name, f->fd);
		if (add_entry(s, f->name, f->fd) < 0) {
			/* cannot compare later: make sure it is replaced, not doubled */
			log_err("fd store: out of memory; %s is forgotten", f->name);
			remove_name(s, f->name);
			continue;
		}
		f->fd = -1;         /* ours now */
	}
}

void fdstore_prune(struct fdstore *s, const char *const *devices, unsigned ndevices)
{
	for (unsigned i = 0; i < s->n;) {
		bool ours = false;
		for (unsigned d = 0; d < ndevices && !ours; d++)
			ours = under(s->e[i].name, devices[d]);
		if (ours)
			i++;
		else
			drop(s, i);
	}
}

void fdstore_clear(struct fdstore *s)
{
	while (s->n)
		drop(s, s->n - 1);
}

void fdstore_free(struct fdstore *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		close(s->e[i].fd);
		free(s->e[i].name);
	}
	free(s->e);
	*s = (struct fdstore){ 0 };
}
