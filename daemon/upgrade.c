#include "daemon/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/log.h"

#define ENV_PAUSED "VIVD_PAUSED_NS"
#define ENV_ERROR  "VIVD_UPGRADE_ERROR"
#define ENV_CONTROL "VIVD_CONTROL_PATH"

extern char **environ;

/* What one worker does for the upgrade, on its thread. */
struct upgrade_job {
	struct upgrade *u;
	struct worker *w;
	bool pause;             /* pause_job: pause (true) or resume */
	unsigned inflight;      /* block requests still in flight */
	struct handover h;      /* export_job: its devices' fds */
	int rc;
	char err[256];
};

static void upgrade_export_job(void *arg);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int upgrade_init(struct upgrade *u)
{
	uv_timer_init(u->loop, &u->timer);
	u->timer.data = u;
	u->inited = true;
	ssize_t n = readlink("/proc/self/exe", u->self_exe, sizeof(u->self_exe) - 1);
	u->self_exe[n > 0 ? n : 0] = '\0';
	/* Replaced on disk since (a package upgrade, or we are the previous
	 * executable taken back): the path is what "upgrade" means. */
	const char *gone = " (deleted)";
	size_t len = strlen(u->self_exe), gl = strlen(gone);
	if (len > gl && strcmp(u->self_exe + len - gl, gone) == 0)
		u->self_exe[len - gl] = '\0';
	u->exe_fd = -1;
	u->jobs = calloc(u->nworkers ? u->nworkers : 1, sizeof(*u->jobs));
	if (!u->jobs)
		return -ENOMEM;
	for (unsigned i = 0; i < u->nworkers; i++)
		u->jobs[i] = (struct upgrade_job){ .u = u, .w = &u->workers[i] };
	return 0;
}

static void jobs_free(void *arg)
{
	free(arg);
}

void upgrade_close(struct upgrade *u)
{
	if (!u->inited || u->closed)
		return;
	u->aborting = true;
	if (u->check_open)
		uv_process_kill(&u->proc, SIGKILL);
	uv_timer_stop(&u->timer);
	uv_close((uv_handle_t *)&u->timer, NULL);
	/* a job may still be on its way back from a worker */
	if (u->phase == UPGRADE_IDLE)
		jobs_free(u->jobs);
	else
		u->free_jobs = true;
	u->closed = true;
}

bool upgrade_busy(const struct upgrade *u)
{
	return u->phase != UPGRADE_IDLE;
}

void upgrade_abort(struct upgrade *u)
{
	if (u->phase == UPGRADE_IDLE)
		return;
	u->aborting = true;
	/* told now: the control socket closes with the daemon's stop */
	if (u->cmd)
		control_answer(u->cmd, -ECANCELED, "the daemon is shutting down");
	u->cmd = NULL;
	if (u->check_open)
		uv_process_kill(&u->proc, SIGKILL);
}

/* ---- ending ------------------------------------------------------------- */

static void resumed(void *arg, int status)
{
	struct upgrade_job *j = arg;
	struct upgrade *u = j->u;
	if (--u->pending == 0) {
		u->phase = UPGRADE_IDLE;
		if (u->free_jobs)
			jobs_free(u->jobs);
	}
}

static void pause_job(void *arg)
{
	struct upgrade_job *j = arg;
	j->inflight = 0;
	for (unsigned i = 0; i < j->w->ndevs; i++) {
		device_pause(j->w->devs[i], j->pause);
		j->inflight += device_inflight(j->w->devs[i]);
	}
}

/* Give up: devices take requests again, the client learns why. */
static void fail(struct upgrade *u, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct upgrade *u, int rc, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("upgrade to %s refused: %s", u->path, msg);
	if (u->exe_fd >= 0)
		close(u->exe_fd);
	u->exe_fd = -1;
	if (u->cmd)
		control_answer(u->cmd, rc, msg);
	u->cmd = NULL;
	uv_timer_stop(&u->timer);
	bool paused = u->phase == UPGRADE_DRAIN || u->phase == UPGRADE_HOLD;
	if (!paused) {
		u->phase = UPGRADE_IDLE;
		if (u->free_jobs)
			jobs_free(u->jobs);
		return;
	}
	u->pending = 0;
	for (unsigned i = 0; i < u->nworkers; i++) {
		struct upgrade_job *j = &u->jobs[i];
		handover_free(&j->h);
		j->pause = false;
		u->pending += worker_call(j->w, pause_job, resumed, j) == 0;
	}
	/* held workers take the resume call once released */
	for (unsigned i = 0; u->phase == UPGRADE_HOLD && i < u->nworkers; i++)
		worker_release(&u->workers[i]);
	if (u->pending == 0) {
		u->phase = UPGRADE_IDLE;    /* out of memory: nothing will answer */
		if (u->free_jobs)
			jobs_free(u->jobs);
	}
}

/* ---- exec -------------------------------------------------------------- */

static bool ours(const char *entry)
{
	static const char *const names[] = { "VIVD_FDS=", ENV_PAUSED "=", ENV_ERROR "=",
					     ENV_CONTROL "=",
					     "LISTEN_FDS=", "LISTEN_FDNAMES=", "LISTEN_PID=" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(entry, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

/* environ without our variables, plus extra (NULL-terminated). */
static char **make_env(char *const *extra)
{
	size_t n = 0, k = 0, x = 0;
	while (environ[n])
		n++;
	while (extra[x])
		x++;
	char **env = calloc(n + x + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!ours(environ[i]))
			env[k++] = environ[i];
	for (size_t i = 0; i < x; i++)
		env[k++] = extra[i];
	return env;
}

/* Execute (path, or the file open at exe_fd) with h kept open. */
static int exec_with(const char *path, int exe_fd, char **argv, struct handover *h,
		     char *const *extra_in, size_t nextra)
{
	char *fds = handover_env(h);
	if (!fds)
		return -ENOMEM;
	char fds_var[strlen(fds) + 16];
	snprintf(fds_var, sizeof(fds_var), "VIVD_FDS=%s", fds);
	free(fds);
	char *extra[nextra + 2];
	for (size_t i = 0; i < nextra; i++)
		extra[i] = extra_in[i];
	extra[nextra] = fds_var;
	extra[nextra + 1] = NULL;
	char **env = make_env(extra);
	if (!env)
		return -ENOMEM;
	/* A stop or reopen asked for from here on is held pending across the
	 * exec and handled by the next image once it watches for it
	 * (daemon/main.c unblocks them then), not lost or fatal meanwhile. */
	sigset_t hold, old;
	sigemptyset(&hold);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGINT);
	sigaddset(&hold, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hold, &old);
	int r = handover_keep_on_exec(h, true);
	if (r == 0) {
		if (exe_fd >= 0)
			fexecve(exe_fd, argv, env);
		else
			execve(path, argv, env);
		r = -errno;
	}
	handover_keep_on_exec(h, false);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(env);
	return r;
}

/* The last step, synchronous: nothing of any device runs from here on. */
static void handover_now(struct upgrade *u)
{
	struct handover h = { 0 };
	char err[300] = "";
	int r = 0;
	for (unsigned i = 0; r == 0 && i < u->nworkers; i++) {
		struct upgrade_job *j = &u->jobs[i];
		if (!j->w->threaded)
			upgrade_export_job(j);  /* its loop is ours: still while we do not return */
		if (j->rc < 0) {
			r = j->rc;
			snprintf(err, sizeof(err), "%s", j->err);
		}
		for (unsigned k = 0; r == 0 && k < j->h.n; k++)
			r = handover_add(&h, j->h.fds[k].name, j->h.fds[k].fd);
	}
	if (r == 0 && *u->control)
		r = control_export(*u->control, u->cmd, &h);
	int exe = r == 0 ? open("/proc/self/exe", O_RDONLY | O_CLOEXEC) : -1;
	if (r == 0 && exe >= 0)
		r = handover_add(&h, UPGRADE_PREVIOUS_EXE, exe);
	if (r == 0) {
		char paused[64], control[4200];
		snprintf(paused, sizeof(paused), ENV_PAUSED "=%" PRIu64, u->t_pause_ns);
		snprintf(control, sizeof(control), ENV_CONTROL "=%s",
			 *u->control ? control_path(*u->control) : "");
		char *extra[] = { paused, control };
		log_info("upgrade: handing %u fd(s) over to %s after %.1f ms paused", h.n, u->path,
			 (double)(now_ns() - u->t_pause_ns) / 1e6);
		/* what the supervisor was about to be told (the new process sends
		 * every fd again anyway) */
		if (u->notifier)
			notifier_flush_wait(u->notifier, 200);
		/* a script's interpreter opens it again by /proc/self/fd/N */
		if (handover_add(&h, UPGRADE_NEXT_EXE, u->exe_fd) == 0)
			r = exec_with(u->path, u->exe_fd, u->argv, &h, extra, 2);
		else
			r = -ENOMEM;
		snprintf(err, sizeof(err), "cannot execute %s: %s", u->path, strerror(-r));
	} else if (!err[0]) {
		snprintf(err, sizeof(err), "cannot name the fds to hand over: %s", strerror(-r));
	}
	if (exe >= 0)
		close(exe);
	handover_free(&h);
	fail(u, r, "%s", err);
}

static void upgrade_export_job(void *arg)
{
	struct upgrade_job *j = arg;
	j->rc = 0;
	for (unsigned i = 0; i < j->w->ndevs && j->rc == 0; i++) {
		struct device *dev = j->w->devs[i];
		if (!dev->open_ok)
			continue;       /* could not be opened after a restart: nothing to hand */
		device_settle(dev);
		j->rc = device_export(dev, &j->h);
		if (j->rc < 0)
			snprintf(j->err, sizeof(j->err), "%s: cannot describe it for hand-over: %s",
				 dev->cfg->name, strerror(-j->rc));
	}
}

static void held(void *arg, int status)
{
	struct upgrade_job *j = arg;
	struct upgrade *u = j->u;
	if (status < 0 && j->rc == 0) {
		j->rc = status;
		snprintf(j->err, sizeof(j->err), "worker %u has stopped", j->w->index);
	}
	if (--u->pending > 0)
		return;
	if (u->aborting) {
		fail(u, -ECANCELED, "given up (the daemon is stopping, or out of memory)");
		return;
	}
	handover_now(u);
}

static void hold_all(struct upgrade *u)
{
	u->phase = UPGRADE_HOLD;
	u->pending = 0;
	for (unsigned i = 0; i < u->nworkers; i++) {
		struct upgrade_job *j = &u->jobs[i];
		j->rc = 0;
		j->err[0] = '\0';
		j->h = (struct handover){ 0 };
		u->pending += j->w->threaded;
	}
	if (u->pending == 0) {
		handover_now(u);
		return;
	}
	for (unsigned i = 0; i < u->nworkers; i++) {
		if (!u->workers[i].threaded)
			continue;
		if (worker_hold(&u->workers[i], upgrade_export_job, held, &u->jobs[i]) < 0) {
			u->jobs[i].rc = -ENOMEM;
			snprintf(u->jobs[i].err, sizeof(u->jobs[i].err), "out of memory");
			if (--u->pending == 0)
				handover_now(u);    /* it fails on that job and releases */
		}
	}
}

/* ---- drain ------------------------------------------------------------- */

static void drain_poll(uv_timer_t *t);

static void counted(void *arg, int status)
{
	struct upgrade_job *j = arg;
	struct upgrade *u = j->u;
	u->inflight += status == 0 ? j->inflight : 0;
	if (--u->pending > 0)
		return;
	if (u->aborting) {
		fail(u, -ECANCELED, "given up (the daemon is stopping, or out of memory)");
		return;
	}
	if (u->inflight == 0 || now_ns() >= u->deadline_ns) {
		if (u->inflight)
			log_warn("upgrade: %u request(s) still in flight after %d ms; the new "
				 "process executes them again", u->inflight, u->drain_ms);
		hold_all(u);
		return;
	}
	uv_timer_start(&u->timer, drain_poll, 1, 0);
}

static void drain_poll(uv_timer_t *t)
{
	struct upgrade *u = t->data;
	u->pending = 0;
	u->inflight = 0;
	for (unsigned i = 0; i < u->nworkers; i++) {
		u->jobs[i].pause = true;
		u->pending += worker_call(u->jobs[i].w, pause_job, counted, &u->jobs[i]) == 0;
	}
	if (u->pending < u->nworkers) {
		if (u->pending == 0)
			fail(u, -ENOMEM, "out of memory");
		else
			u->aborting = true;     /* fail once those that were asked answer */
	}
}

static void drain(struct upgrade *u)
{
	u->phase = UPGRADE_DRAIN;
	u->t_pause_ns = now_ns();
	u->deadline_ns = u->t_pause_ns + (uint64_t)u->drain_ms * 1000000u;
	drain_poll(&u->timer);
}

/* ---- check ------------------------------------------------------------- */

/* Does the check's output end with the token naming our version? */
static bool reads_our_journal(const char *out)
{
	const char *line = strrchr(out, '\n');
	line = line ? line + 1 : out;
	size_t tl = strlen(UPGRADE_CHECK_TOKEN);
	if (strncmp(line, UPGRADE_CHECK_TOKEN, tl) != 0)
		return false;
	for (const char *p = line + tl; *p;) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p)
			break;
		if (v == JOURNAL_VERSION)
			return true;
		p = end;
	}
	return false;
}

static void check_closed(uv_handle_t *h)
{
	struct upgrade *u = h->data;
	if (--u->check_open > 0)
		return;
	uv_timer_stop(&u->timer);
	if (u->closed) {
		u->phase = UPGRADE_IDLE;
		if (u->free_jobs)
			jobs_free(u->jobs);
		return;
	}
	if (u->aborting) {
		fail(u, -ECANCELED, "given up (the daemon is stopping, or out of memory)");
		return;
	}
	while (u->outlen && (u->outbuf[u->outlen - 1] == '\n' || u->outbuf[u->outlen - 1] == ' '))
		u->outlen--;
	u->outbuf[u->outlen] = '\0';
	if (u->exit_status != 0) {
		fail(u, -EINVAL, "%s --check-handover %s: %s%s%s", u->path, u->config_path,
		     u->exit_status < 0 ? "did not finish" : "refused it",
		     u->outlen ? ": " : "", u->outbuf);
		return;
	}
	if (!reads_our_journal(u->outbuf)) {
		const char *last = strrchr(u->outbuf, '\n');
		fail(u, -EPROTO, "%s does not take devices over from journal version %u (it says "
		     "\"%.200s\")", u->path, JOURNAL_VERSION, last ? last + 1 : u->outbuf);
		return;
	}
	drain(u);
}

static void check_exited(uv_process_t *p, int64_t status, int sig)
{
	struct upgrade *u = p->data;
	u->exit_status = sig ? -1 : status;
	uv_close((uv_handle_t *)p, check_closed);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct upgrade *u = h->data;
	static char sink[256];
	size_t room = sizeof(u->outbuf) - 1 - u->outlen;
	*buf = room ? uv_buf_init(u->outbuf + u->outlen, (unsigned)room)
		    : uv_buf_init(sink, sizeof(sink));
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct upgrade *u = s->data;
	if (n < 0) {
		uv_close((uv_handle_t *)s, check_closed);
		return;
	}
	if (buf->base == u->outbuf + u->outlen)
		u->outlen += (size_t)n;
}

static void check_timeout(uv_timer_t *t)
{
	struct upgrade *u = t->data;
	if (u->check_open)
		uv_process_kill(&u->proc, SIGKILL);
}

static int check(struct upgrade *u)
{
	/* The file opened at the start is the one checked and the one
	 * executed, whatever the path names meanwhile. */
	char file[64];
	snprintf(file, sizeof(file), "/proc/%d/fd/%d", (int)getpid(), u->exe_fd);
	char *args[] = { u->path, "--check-handover", (char *)u->config_path, NULL };
	int sv[2];
	u->outlen = 0;
	u->exit_status = -1;
	/* One socket for the child's stdout and stderr: its message in order. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_INHERIT_FD, .data.fd = sv[1] },
		{ .flags = UV_INHERIT_FD, .data.fd = sv[1] },
	};
	uv_process_options_t o = {
		.exit_cb = check_exited, .file = file, .args = args,
		.stdio_count = 3, .stdio = stdio,
	};
	u->proc.data = u;
	int r = uv_spawn(u->loop, &u->proc, &o);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	uv_pipe_init(u->loop, &u->out, 0);
	u->out.data = u;
	uv_pipe_open(&u->out, sv[0]);
	u->check_open = 2;
	uv_read_start((uv_stream_t *)&u->out, out_alloc, out_read);
	uv_timer_start(&u->timer, check_timeout, UPGRADE_CHECK_MS, 0);
	return 0;
}

void upgrade_start(struct upgrade *u, const char *path, struct control_cmd *cmd)
{
	if (u->phase != UPGRADE_IDLE) {
		control_answer(cmd, -EBUSY, "an upgrade is already under way");
		return;
	}
	snprintf(u->path, sizeof(u->path), "%s", path ? path : u->self_exe);
	u->cmd = cmd;
	u->aborting = false;
	u->phase = UPGRADE_CHECK;
	if (!u->journal) {
		fail(u, -ENOTSUP, "the config says journal = no: there is nothing to hand over");
		return;
	}
	if (!u->path[0] || access(u->path, X_OK) < 0) {
		fail(u, -ENOEXEC, "%s is not an executable file", u->path[0] ? u->path : "(none)");
		return;
	}
	u->exe_fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (u->exe_fd < 0) {
		fail(u, -errno, "cannot open %s: %s", u->path, strerror(errno));
		return;
	}
	log_info("upgrade: checking %s", u->path);
	int r = check(u);
	if (r < 0)
		fail(u, r, "cannot run %s: %s", u->path, uv_strerror(r));
}

/* ---- arrival ----------------------------------------------------------- */

void upgrade_arrival(struct upgrade_arrival *a, const struct handover *h)
{
	*a = (struct upgrade_arrival){ 0 };
	for (unsigned i = 0; i < h->n; i++)
		if (strcmp(h->fds[i].name, CONTROL_CLIENT_FD_NAME) == 0 ||
		    strcmp(h->fds[i].name, UPGRADE_PREVIOUS_EXE) == 0)
			a->upgraded = true;
	const char *e = getenv(ENV_ERROR);
	if (e) {
		snprintf(a->error, sizeof(a->error), "%s", e[0] ? e : "the new daemon failed");
		a->upgraded = true;
	}
	const char *t = getenv(ENV_PAUSED);
	if (t)
		a->t_pause_ns = strtoull(t, NULL, 10);
	const char *c = getenv(ENV_CONTROL);
	snprintf(a->control_path, sizeof(a->control_path), "%s", c ? c : "");
	unsetenv(ENV_ERROR);
	unsetenv(ENV_PAUSED);
	unsetenv(ENV_CONTROL);
}

uint64_t upgrade_since_ns(uint64_t t)
{
	return t ? now_ns() - t : 0;
}

bool upgrade_journals_known(const struct handover *h, char *why, size_t why_len)
{
	const char *suffix = "/journal";
	size_t sl = strlen(suffix);
	for (unsigned i = 0; i < h->n; i++) {
		const char *name = h->fds[i].name;
		size_t n = strlen(name);
		if (n <= sl || strcmp(name + n - sl, suffix) != 0)
			continue;
		struct journal_hdr hdr;
		if (pread(h->fds[i].fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
		    hdr.magic != JOURNAL_MAGIC)
			continue;       /* not a journal at all: that device starts afresh */
		if (hdr.version != JOURNAL_VERSION) {
			snprintf(why, why_len, "the new daemon cannot take the devices over: %.*s "
				 "keeps a journal of version %u, it reads version %u",
				 (int)(n - sl), name, hdr.version, JOURNAL_VERSION);
			return false;
		}
	}
	return true;
}

int upgrade_exec_back(struct handover *h, char **argv, const char *control_path,
		      const char *why)
{
	int exe = handover_take(h, UPGRADE_PREVIOUS_EXE);
	if (exe < 0)
		return -ENOENT;
	/* the previous executable needs no way back: it is the way back */
	fcntl(exe, F_SETFD, FD_CLOEXEC);
	char err[600], control[4200];
	snprintf(err, sizeof(err), ENV_ERROR "=%s", why);
	snprintf(control, sizeof(control), ENV_CONTROL "=%s", control_path);
	char *extra[] = { err, control };
	log_err("upgrade: %s; taking the previous daemon back", why);
	int r = exec_with(NULL, exe, argv, h, extra, 2);
	close(exe);
	return r;
}
