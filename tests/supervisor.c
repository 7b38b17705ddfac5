#include "tests/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct stored {
	char name[256];
	int fd;
	bool poll;                  /* dropped on a hang-up or error (no FDPOLL=0) */
};

struct supervisor {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_running;
	char daemon[4096], conf[4096], log[4096];
	char sock_path[108];
	int sock;
	pid_t pid;                  /* running daemon, or 0 */
	unsigned starts;            /* daemons started */
	unsigned ready_start;       /* start number that last said READY=1, +1 (0: none) */
	unsigned killed_start;      /* start number last sent a signal by sup_kill, +1 */
	bool stopping, quit, hold;
	int exit_status;
	struct stored store[SUP_STORE_MAX];
	unsigned nstore;
	unsigned rejected;
	unsigned pruned;            /* dropped on a hang-up */
	unsigned unexpected;        /* deaths no sup_kill or sup_stop asked for */
	char last_death[128];
};

static bool same_file(int a, int b)
{
	pid_t me = getpid();
	return syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0;
}

/* ---- starting the daemon -------------------------------------------------- */

/* Decimal digits of v into dst (async-signal-safe, for the child). */
static void put_uint(char *dst, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*dst++ = tmp[--n];
	*dst = '\0';
}

/* Under the lock. */
static int spawn(struct supervisor *s)
{
	unsigned n = s->nstore;
	int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	/* everything the child needs, made before fork: it may only call
	 * async-signal-safe functions (this process has threads) */
	size_t names_len = 16;
	for (unsigned i = 0; i < n; i++)
		names_len += strlen(s->store[i].name) + 1;
	char *names = malloc(names_len);
	char notify[200], nfds[32], pidvar[40];
	size_t envc = 0;
	while (environ[envc])
		envc++;
	char **envp = calloc(envc + 5, sizeof(*envp));
	int *fds = malloc((n + 1) * sizeof(int));
	if (!names || !envp || !fds) {
		free(names);
		free(envp);
		free(fds);
		close(logfd);
		return -ENOMEM;
	}
	strcpy(names, "LISTEN_FDNAMES=");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			strcat(names, ":");
		strcat(names, s->store[i].name);
		fds[i] = s->store[i].fd;
	}
	snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", s->sock_path);
	snprintf(nfds, sizeof(nfds), "LISTEN_FDS=%u", n);
	strcpy(pidvar, "LISTEN_PID=");
	size_t k = 0;
	for (size_t i = 0; i < envc; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) && strncmp(environ[i], "LISTEN_", 7) &&
		    strncmp(environ[i], "VIVD_", 5))
			envp[k++] = environ[i];
	envp[k++] = notify;
	if (n) {
		envp[k++] = nfds;
		envp[k++] = names;
		envp[k++] = pidvar;
	}
	envp[k] = NULL;
	char *argv[] = { s->daemon, "-c", s->conf, NULL };
	pid_t pid = fork();
	if (pid == 0) {
		put_uint(pidvar + strlen("LISTEN_PID="), (unsigned long)getpid());
		dup2(logfd, 1);
		dup2(logfd, 2);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		/* out of the way of 3..3+n first, then into place */
		for (unsigned i = 0; i < n; i++)
			fds[i] = fcntl(fds[i], F_DUPFD, (int)(3 + n));
		for (unsigned i = 0; i < n; i++)
			dup2(fds[i], (int)(3 + i));     /* dup2 clears close-on-exec */
		syscall(SYS_close_range, 3 + n, ~0u, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(s->daemon, argv, envp);
		_exit(127);
	}
	free(names);
	free(envp);
	free(fds);
	close(logfd);
	if (pid < 0)
		return -errno;
	s->pid = pid;
	s->starts++;
	pthread_cond_broadcast(&s->cond);
	return 0;
}

/* ---- the notify socket --------------------------------------------------- */

static void store_fd(struct supervisor *s, const char *name, int fd, bool poll)
{
	for (unsigned i = 0; i < s->nstore; i++)
		if (same_file(s->store[i].fd, fd)) {
			close(fd);      /* already held (under whatever name) */
			return;
		}
	if (s->nstore == SUP_STORE_MAX) {
		close(fd);
		s->rejected++;
		return;
	}
	struct stored *e = &s->store[s->nstore++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->fd = fd;
	e->poll = poll;
}

static void remove_name(struct supervisor *s, const char *name)
{
	for (unsigned i = 0; i < s->nstore;) {
		if (strcmp(s->store[i].name, name) == 0) {
			close(s->store[i].fd);
			s->store[i] = s->store[--s->nstore];
		} else {
			i++;
		}
	}
}

/* Under the lock. */
static void handle_message(struct supervisor *s, char *text, const int *fds, unsigned nfds,
			   pid_t sender)
{
	if (!s->pid || sender != s->pid) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		s->rejected++;
		return;
	}
	bool fdstore = false, remove = false, ready = false, fdpoll = true;
	char name[256] = "stored";
	for (char *save, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "FDSTORE=1") == 0)
			fdstore = true;
		else if (strcmp(line, "FDSTOREREMOVE=1") == 0)
			remove = true;
		else if (strcmp(line, "READY=1") == 0)
			ready = true;
		else if (strcmp(line, "FDPOLL=0") == 0)
			fdpoll = false;
		else if (strncmp(line, "FDNAME=", 7) == 0)
			snprintf(name, sizeof(name), "%s", line + 7);
	}
	if (remove)
		remove_name(s, name);
	for (unsigned i = 0; i < nfds; i++) {
		if (fdstore)
			store_fd(s, name, fds[i], fdpoll);
		else
			close(fds[i]);
	}
	if (ready) {
		s->ready_start = s->starts;
		pthread_cond_broadcast(&s->cond);
	}
}

static void read_messages(struct supervisor *s)
{
	for (;;) {
		char text[4096];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = { text, sizeof(text) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(s->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		text[n] = '\0';
		int fds[253];
		unsigned nfds = 0;
		pid_t sender = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_RIGHTS) {
				unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				memcpy(fds + nfds, CMSG_DATA(c), k * sizeof(int));
				nfds += k;
			} else if (c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cr;
				memcpy(&cr, CMSG_DATA(c), sizeof(cr));
				sender = cr.pid;
			}
		}
		pthread_mutex_lock(&s->lock);
		handle_message(s, text, fds, nfds, sender);
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---- the thread --------------------------------------------------------- */

/* Under the lock: systemd watches stored fds (unless FDPOLL=0) and drops
 * one that reports a hang-up or an error. */
static void prune_hung_up(struct supervisor *s)
{
	for (unsigned i = 0; i < s->nstore;) {
		struct pollfd p = { s->store[i].fd, 0, 0 };
		if (s->store[i].poll && poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
			close(s->store[i].fd);
			s->store[i] = s->store[--s->nstore];
			s->pruned++;
		} else {
			i++;
		}
	}
}

static void *run(void *arg)
{
	struct supervisor *s = arg;
	for (;;) {
		struct pollfd p = { s->sock, POLLIN, 0 };
		poll(&p, 1, 2);
		read_messages(s);
		pthread_mutex_lock(&s->lock);
		prune_hung_up(s);
		if (s->pid) {
			int st;
			pid_t r = waitpid(s->pid, &st, WNOHANG);
			if (r == s->pid) {
				/* what it said just before dying counts */
				pthread_mutex_unlock(&s->lock);
				read_messages(s);
				pthread_mutex_lock(&s->lock);
				bool asked = s->stopping || s->killed_start == s->starts;
				if (!asked) {
					s->unexpected++;
					snprintf(s->last_death, sizeof(s->last_death), "%s %d",
						 WIFEXITED(st) ? "exit" : "signal",
						 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				}
				s->pid = 0;
				s->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
				pthread_cond_broadcast(&s->cond);
				if (!s->stopping && !s->hold)
					spawn(s);
			}
		}
		bool quit = s->quit;
		pthread_mutex_unlock(&s->lock);
		if (quit)
			return NULL;
	}
}

int sup_start(struct supervisor **ret, const char *daemon_path, const char *conf,
	      const char *log, char *err, size_t err_len)
{
	struct supervisor *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	snprintf(s->daemon, sizeof(s->daemon), "%s", daemon_path);
	snprintf(s->conf, sizeof(s->conf), "%s", conf);
	snprintf(s->log, sizeof(s->log), "%s", log);
	snprintf(s->sock_path, sizeof(s->sock_path), "%s.notify", log);
	unlink(s->sock_path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->sock_path);
	int one = 1;
	s->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->sock < 0 || bind(s->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(s->sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		snprintf(err, err_len, "notify socket %s: %s", s->sock_path, strerror(errno));
		if (s->sock >= 0)
			close(s->sock);
		free(s);
		return -EIO;
	}
	pthread_mutex_lock(&s->lock);
	int r = spawn(s);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		snprintf(err, err_len, "cannot start %s: %s", daemon_path, strerror(-r));
		close(s->sock);
		free(s);
		return r;
	}
	pthread_create(&s->thread, NULL, run, s);
	s->thread_running = true;
	*ret = s;
	return 0;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int sup_wait_ready(struct supervisor *s, unsigned start, int timeout_ms)
{
	struct timespec ts;
	deadline_in(&ts, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&s->lock);
	while (s->ready_start < start + 1 && r == 0)
		r = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	bool ok = s->ready_start >= start + 1;
	pthread_mutex_unlock(&s->lock);
	return ok ? 0 : -ETIMEDOUT;
}

int sup_wait_alive(struct supervisor *s, int timeout_ms)
{
	struct timespec ts;
	deadline_in(&ts, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&s->lock);
	while ((!s->pid || s->killed_start == s->starts) && r == 0)
		r = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	bool ok = s->pid && s->killed_start != s->starts;
	pthread_mutex_unlock(&s->lock);
	return ok ? 0 : -ETIMEDOUT;
}

int sup_kill(struct supervisor *s, int sig)
{
	pthread_mutex_lock(&s->lock);
	/* one signal per daemon: a second would find it dying, not running */
	bool alive = s->pid && s->killed_start != s->starts;
	int r = alive ? (int)s->starts - 1 : -ESRCH;
	if (alive) {
		kill(s->pid, sig);
		s->killed_start = s->starts;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

#define GETTER(type, fn, expr)                          \
	type fn(struct supervisor *s)                   \
	{                                               \
		pthread_mutex_lock(&s->lock);           \
		type v = (expr);                        \
		pthread_mutex_unlock(&s->lock);         \
		return v;                               \
	}
GETTER(unsigned, sup_starts, s->starts)
GETTER(unsigned, sup_stored, s->nstore)
GETTER(unsigned, sup_rejected, s->rejected)
GETTER(pid_t, sup_pid, s->pid)
GETTER(unsigned, sup_unexpected, s->unexpected)

int sup_fd(struct supervisor *s, const char *name)
{
	int fd = -1;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->nstore && fd < 0; i++)
		if (strcmp(s->store[i].name, name) == 0)
			fd = fcntl(s->store[i].fd, F_DUPFD_CLOEXEC, 3);
	pthread_mutex_unlock(&s->lock);
	return fd;
}

void sup_hold_restart(struct supervisor *s, bool hold)
{
	pthread_mutex_lock(&s->lock);
	s->hold = hold;
	pthread_mutex_unlock(&s->lock);
}

int sup_restart(struct supervisor *s)
{
	pthread_mutex_lock(&s->lock);
	int r = s->pid ? 0 : spawn(s);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Wait (under the lock) until no daemon runs, at most ms. */
static bool wait_gone(struct supervisor *s, int ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	while (s->pid && pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
		;
	return s->pid == 0;
}

int sup_stop(struct supervisor *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	if (s->pid)
		kill(s->pid, SIGTERM);
	if (!wait_gone(s, 20000)) {
		kill(s->pid, SIGKILL);
		wait_gone(s, 5000);
	}
	int st = s->exit_status;
	while (s->nstore)
		close(s->store[--s->nstore].fd);
	pthread_mutex_unlock(&s->lock);
	return st;
}

void sup_free(struct supervisor *s)
{
	if (!s)
		return;
	if (s->thread_running) {
		sup_stop(s);
		pthread_mutex_lock(&s->lock);
		s->quit = true;
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	close(s->sock);
	unlink(s->sock_path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
