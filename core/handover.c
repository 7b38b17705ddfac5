#include "core/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

bool handover_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > HANDOVER_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

int handover_add(struct handover *h, const char *name, int fd)
{
	if (!handover_name_ok(name) || fd < 0)
		return -EINVAL;
	if (h->n == h->cap) {
		unsigned cap = h->cap ? h->cap * 2 : 16;
		struct handover_fd *n = realloc(h->fds, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		h->fds = n;
		h->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	h->fds[h->n++] = (struct handover_fd){ .name = copy, .fd = fd };
	return 0;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* "name=fd:name=fd" */
static int parse_vivd(struct handover *h, const char *v, char *why, size_t why_len)
{
	char *copy = strdup(v), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		char *eq = strrchr(tok, '=');
		char *end;
		long fd = eq ? strtol(eq + 1, &end, 10) : -1;
		if (!eq || end == eq + 1 || *end || fd < 0 || fd > 1 << 20) {
			snprintf(why, why_len, "VIVD_FDS: bad entry '%s'", tok);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		if (!fd_open((int)fd)) {
			snprintf(why, why_len, "VIVD_FDS: %s=%ld is not an open fd", tok, fd);
			r = -EBADF;
			break;
		}
		if ((r = handover_add(h, tok, (int)fd)) < 0) {
			snprintf(why, why_len, "VIVD_FDS: bad name '%s'", tok);
			break;
		}
	}
	free(copy);
	return r < 0 ? r : (int)h->n;
}

/* systemd: LISTEN_PID = us, LISTEN_FDS = n (fds 3 .. 3+n-1), names in
 * LISTEN_FDNAMES separated by ':' ("unknown" where none was given). */
static int parse_listen(struct handover *h, char *why, size_t why_len)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	if (!pid || !nfds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	char *end;
	long n = strtol(nfds, &end, 10);
	if (*end || n < 0 || n > 4096) {
		snprintf(why, why_len, "LISTEN_FDS: bad count '%s'", nfds);
		return -EINVAL;
	}
	char *copy = strdup(names ? names : ""), *p = copy;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (long i = 0; i < n; i++) {
		char *colon = p ? strchr(p, ':') : NULL;
		if (colon)
			*colon = '\0';
		const char *name = p && *p ? p : "unknown";
		p = colon ? colon + 1 : NULL;
		int fd = 3 + (int)i;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (!handover_name_ok(name) || (r = handover_add(h, name, fd)) < 0) {
			/* not ours to interpret: closed with the rest */
			if ((r = handover_add(h, "unknown", fd)) < 0)
				break;
		}
	}
	free(copy);
	return r < 0 ? r : (int)h->n;
}

int handover_from_env(struct handover *h, char *why, size_t why_len)
{
	const char *v = getenv("VIVD_FDS");
	int r = v ? parse_vivd(h, v, why, why_len) : parse_listen(h, why, why_len);
	unsetenv("VIVD_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	/* Nothing of the set reaches children by accident. */
	handover_keep_on_exec(h, false);
	if (r < 0)
		handover_free(h);   /* a set that does not parse is not used in part */
	return r;
}

static struct handover_fd *find(struct handover *h, const char *name)
{
	for (unsigned i = 0; i < h->n; i++)
		if (strcmp(h->fds[i].name, name) == 0)
			return &h->fds[i];
	return NULL;
}

int handover_take(struct handover *h, const char *name)
{
	struct handover_fd *f = find(h, name);
	if (f && !f->taken) {
		f->taken = true;
		return f->fd;
	}
	if (f)
		return fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
	/* either name of a pair finds the file (the supervisor may hold it
	 * under the one that was first) */
	for (unsigned i = 0; i < h->nalias; i++) {
		const struct handover_alias *a = &h->aliases[i];
		if ((strcmp(a->name, name) == 0 && (f = find(h, a->target))) ||
		    (strcmp(a->target, name) == 0 && (f = find(h, a->name))))
			return fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
	}
	return -1;
}

int handover_alias(struct handover *h, const char *name, const char *target)
{
	if (!handover_name_ok(name) || !handover_name_ok(target))
		return -EINVAL;
	if (h->nalias == h->alias_cap) {
		unsigned cap = h->alias_cap ? h->alias_cap * 2 : 8;
		struct handover_alias *n = realloc(h->aliases, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		h->aliases = n;
		h->alias_cap = cap;
	}
	struct handover_alias *a = &h->aliases[h->nalias];
	a->name = strdup(name);
	a->target = strdup(target);
	if (!a->name || !a->target) {
		free(a->name);
		free(a->target);
		return -ENOMEM;
	}
	h->nalias++;
	return 0;
}

#ifndef F_DUPFD_QUERY
#define F_DUPFD_QUERY 1027      /* Linux 6.10 */
#endif

/* 1 same, 0 not, -1 cannot tell (no kcmp, e.g. a kernel without
 * CONFIG_KCMP or a seccomp filter; and no F_DUPFD_QUERY). */
static int compare(int a, int b)
{
	pid_t me = getpid();
	long r = syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);
	if (r >= 0)
		return r == 0;
	if (errno != ENOSYS && errno != EPERM && errno != EACCES)
		return 0;
	r = fcntl(a, F_DUPFD_QUERY, b);
	return r < 0 ? -1 : r == 1;
}

bool handover_same_file(int a, int b)
{
	return compare(a, b) == 1;
}

bool handover_can_compare(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return false;
	bool ok = compare(fds[0], fds[0]) == 1 && compare(fds[0], fds[1]) == 0;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

int handover_dedupe(struct handover *h, unsigned first)
{
	int n = 0;
	for (unsigned i = first + 1; i < h->n;) {
		unsigned j = first;
		while (j < i && !handover_same_file(h->fds[j].fd, h->fds[i].fd))
			j++;
		if (j == i) {
			i++;
			continue;
		}
		int r = handover_alias(h, h->fds[i].name, h->fds[j].name);
		if (r < 0)
			return r;
		free(h->fds[i].name);
		memmove(&h->fds[i], &h->fds[i + 1], (h->n - i - 1) * sizeof(h->fds[0]));
		h->n--;
		n++;
	}
	return n;
}

unsigned handover_close_rest(struct handover *h)
{
	unsigned n = 0;
	for (unsigned i = 0; i < h->n; i++) {
		if (h->fds[i].taken)
			continue;
		close(h->fds[i].fd);
		h->fds[i].taken = true;
		n++;
	}
	return n;
}

char *handover_env(const struct handover *h)
{
	size_t len = 1;
	for (unsigned i = 0; i < h->n; i++)
		len += strlen(h->fds[i].name) + 16;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	*p = '\0';
	for (unsigned i = 0; i < h->n; i++)
		if (!h->fds[i].taken)
			p += sprintf(p, "%s%s=%d", p > s ? ":" : "", h->fds[i].name, h->fds[i].fd);
	return s;
}

int handover_keep_on_exec(const struct handover *h, bool keep)
{
	for (unsigned i = 0; i < h->n; i++) {
		if (h->fds[i].taken)
			continue;       /* not the set's any more */
		int fl = fcntl(h->fds[i].fd, F_GETFD);
		if (fl < 0 || fcntl(h->fds[i].fd, F_SETFD, keep ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC) < 0)
			return -errno;
	}
	return 0;
}

void handover_free(struct handover *h)
{
	for (unsigned i = 0; i < h->n; i++)
		free(h->fds[i].name);
	for (unsigned i = 0; i < h->nalias; i++) {
		free(h->aliases[i].name);
		free(h->aliases[i].target);
	}
	free(h->fds);
	free(h->aliases);
	*h = (struct handover){ 0 };
}
