#include "tests/bench_cost.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_THREADS 1024

struct thr {
	pid_t tid;
	bool worker;                    /* iou-wrk-* */
	uint64_t v0, iv0, v, iv;        /* context switches: base and last read */
	double cpu0, cpu;               /* seconds: base and last read */
};

struct cost_watch {
	pid_t pid;                      /* 0: ourselves */
	double usr0, sys0;
	uint64_t syscr0, syscw0, vcsw0, ivcsw0;
	bool have_io;
	struct thr t[MAX_THREADS];
	unsigned nt;
	bool first;                     /* threads read now are there from the start */
};

static double tick_s(void)
{
	static double t;
	if (t == 0) {
		long hz = sysconf(_SC_CLK_TCK);
		t = 1.0 / (double)(hz > 0 ? hz : 100);
	}
	return t;
}

static int read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

/* utime and stime (fields 14 and 15) of a stat file; comm (field 2) may
 * hold spaces and parentheses, so count from its last ')'. */
static int stat_times(const char *path, double *usr, double *sys, char *comm, size_t comm_len)
{
	char buf[1024];
	int r = read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -EBADMSG;
	if (comm)
		snprintf(comm, comm_len, "%.*s", (int)(close - open - 1), open + 1);
	unsigned long long ut, st;
	/* after ')': state(3) ... utime(14) stime(15) */
	if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -EBADMSG;
	*usr = (double)ut * tick_s();
	*sys = (double)st * tick_s();
	return 0;
}

static uint64_t field(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static int read_io(pid_t pid, uint64_t *syscr, uint64_t *syscw)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/io", pid ? (int)pid : (int)getpid());
	int r = read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	*syscr = field(buf, "syscr: ");
	*syscw = field(buf, "syscw: ");
	return 0;
}

static struct thr *find_thr(struct cost_watch *w, pid_t tid, bool *is_new)
{
	*is_new = false;
	for (unsigned i = 0; i < w->nt; i++)
		if (w->t[i].tid == tid)
			return &w->t[i];
	if (w->nt == MAX_THREADS)
		return NULL;
	struct thr *t = &w->t[w->nt++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	*is_new = true;
	return t;
}

/* One thread's counters; a thread seen for the first time after the start
 * was born during the run and counts from zero. */
static void read_thread(struct cost_watch *w, pid_t tid)
{
	char path[96], buf[4096], comm[64];
	double usr, sys;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)w->pid, (int)tid);
	if (stat_times(path, &usr, &sys, comm, sizeof(comm)) < 0)
		return;     /* exited meanwhile */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)w->pid, (int)tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	bool is_new;
	struct thr *t = find_thr(w, tid, &is_new);
	if (!t)
		return;
	t->worker = strncmp(comm, "iou-wrk", 7) == 0;
	t->v = field(buf, "\nvoluntary_ctxt_switches:");
	t->iv = field(buf, "\nnonvoluntary_ctxt_switches:");
	t->cpu = usr + sys;
	if (is_new && w->first) {
		t->v0 = t->v;
		t->iv0 = t->iv;
		t->cpu0 = t->cpu;
	}
}

void cost_watch_sample(struct cost_watch *w)
{
	if (!w || !w->pid)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)w->pid);
	DIR *dir = opendir(path);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir)))
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			read_thread(w, (pid_t)atoi(e->d_name));
	closedir(dir);
}

/* The whole group's CPU and system calls, and (ourselves) context switches. */
static int read_totals(const struct cost_watch *w, double *usr, double *sys, uint64_t *vcsw,
		       uint64_t *ivcsw, uint64_t *syscr, uint64_t *syscw, bool *have_io)
{
	*have_io = read_io(w->pid, syscr, syscw) == 0;
	if (!w->pid) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		*usr = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
		*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		*vcsw = (uint64_t)ru.ru_nvcsw;
		*ivcsw = (uint64_t)ru.ru_nivcsw;
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)w->pid);
	*vcsw = *ivcsw = 0;
	return stat_times(path, usr, sys, NULL, 0);
}

struct cost_watch *cost_watch_start(pid_t pid)
{
	struct cost_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->pid = pid;
	int r = read_totals(w, &w->usr0, &w->sys0, &w->vcsw0, &w->ivcsw0, &w->syscr0, &w->syscw0,
			    &w->have_io);
	if (r < 0) {
		free(w);
		errno = -r;
		return NULL;
	}
	w->first = true;
	cost_watch_sample(w);
	w->first = false;
	return w;
}

int cost_watch_end(struct cost_watch *w, struct cost *c)
{
	memset(c, 0, sizeof(*c));
	cost_watch_sample(w);
	double usr, sys;
	uint64_t vcsw, ivcsw, syscr = 0, syscw = 0;
	bool have_io;
	int r = read_totals(w, &usr, &sys, &vcsw, &ivcsw, &syscr, &syscw, &have_io);
	if (r == 0) {
		c->usr_s = usr - w->usr0;
		c->sys_s = sys - w->sys0;
		c->vcsw = vcsw - w->vcsw0;
		c->ivcsw = ivcsw - w->ivcsw0;
		c->have_io = have_io && w->have_io;
		if (c->have_io) {
			c->syscr = syscr - w->syscr0;
			c->syscw = syscw - w->syscw0;
		}
	}
	double own = 0;
	for (unsigned i = 0; w->pid && i < w->nt; i++) {
		const struct thr *t = &w->t[i];
		c->vcsw += t->v - t->v0;
		c->ivcsw += t->iv - t->iv0;
		if (!t->worker) {
			own += t->cpu - t->cpu0;
			continue;
		}
		c->wrk_threads++;
		c->wrk_vcsw += t->v - t->v0;
		c->wrk_ivcsw += t->iv - t->iv0;
	}
	if (w->pid && c->wrk_threads) {
		c->wrk_s = c->usr_s + c->sys_s - own;
		if (c->wrk_s < 0)
			c->wrk_s = 0;   /* tick rounding */
	}
	free(w);
	return r;
}
