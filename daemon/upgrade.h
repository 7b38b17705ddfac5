/* Replacing the running daemon by another executable without the cells
 * noticing ("virtio-ivshmemctl upgrade [PATH]", "systemctl reload").
 *
 * All steps run from the main loop:
 *   check  PATH --check-handover CONFIG runs as a child: a binary that does
 *          not run on this machine, refuses the config, or does not name
 *          this daemon's journal version among those it takes devices over
 *          from (UPGRADE_CHECK_TOKEN) is refused with its own message, and
 *          nothing was paused.
 *   drain  every device stops taking new requests; block requests in flight
 *          finish (at most drain_ms, upgrade-drain-ms in the config; what is
 *          left is executed again
 *          by the next process, see core/journal.h).
 *   hold   every worker names its devices' fds and writes their link and
 *          endpoint state into their journals, then holds still
 *          (worker_hold), so the snapshot cannot change.
 *   exec   the control socket and the asking client join the set, the
 *          running executable is opened as "previous-exe", the set goes into
 *          VIVD_FDS and PATH is executed in this process: same pid, same
 *          arguments, so a supervisor sees no restart.
 * Until exec succeeds any failure resumes everything and answers the
 * client with the reason.  After it, the new process takes the devices
 * over and answers the client (upgrade_finish); one that cannot (a journal
 * version it does not know, a config it cannot load) executes the previous
 * executable again with the reason (upgrade_exec_back), and that one takes
 * the devices back and answers with the error.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/handover.h"
#include "daemon/control.h"
#include "daemon/device.h"
#include "daemon/notify.h"
#include "daemon/worker.h"

#define UPGRADE_CHECK_MS   10000

#define UPGRADE_PREVIOUS_EXE "previous-exe"
#define UPGRADE_NEXT_EXE     "next-exe"     /* what was executed: closed on arrival */
/* The line --check-handover ends with: this token, then journal versions. */
#define UPGRADE_CHECK_TOKEN  "handover: journal versions"

enum upgrade_phase { UPGRADE_IDLE, UPGRADE_CHECK, UPGRADE_DRAIN, UPGRADE_HOLD };

struct upgrade {
	/* set by the daemon */
	uv_loop_t *loop;
	struct worker *workers;
	unsigned nworkers;
	struct device *devs;
	unsigned ndevs;
	struct control **control;
	const char *config_path;
	char **argv;
	unsigned drain_ms;
	struct notifier *notifier;  /* flushed before the exec */
	bool journal;               /* devices keep journals: anything to hand over */
	char self_exe[4096];        /* the executable started (the default PATH) */
	/* one upgrade at a time */
	enum upgrade_phase phase;
	struct control_cmd *cmd;
	char path[4096];
	int exe_fd;                 /* path, opened once: checked, then executed */
	uint64_t t_pause_ns;
	uv_process_t proc;
	uv_pipe_t out;
	char outbuf[1024];
	size_t outlen;
	int64_t exit_status;
	unsigned check_open;        /* process and pipe handles not closed yet */
	uv_timer_t timer;
	uint64_t deadline_ns;
	unsigned pending;
	unsigned inflight;
	bool aborting;              /* the daemon stops: give up at the next step */
	bool inited, closed, free_jobs;
	struct upgrade_job *jobs;   /* one per worker */
};

/* Set up (after the daemon filled loop .. argv); 0 or a negative errno. */
int upgrade_init(struct upgrade *u);
/* Close the timer (the loop must run on). */
void upgrade_close(struct upgrade *u);
bool upgrade_busy(const struct upgrade *u);
/* The daemon is stopping: give the upgrade up (devices resume, so that
 * they can be stopped; held workers are released). */
void upgrade_abort(struct upgrade *u);

/* The command: replace this process by path (NULL: the executable started),
 * answer cmd. */
void upgrade_start(struct upgrade *u, const char *path, struct control_cmd *cmd);

/* ---- the process taking over (or taking back) --------------------------- */

/* Started by an upgrade?  Reads what the previous process left in the
 * environment: the error to report when this is the previous executable
 * taken back (VIVD_UPGRADE_ERROR), the time the devices were paused. */
struct upgrade_arrival {
	bool upgraded;              /* a previous process handed over */
	char error[512];            /* non-empty: the upgrade we come back from failed */
	char control_path[4096];    /* where the handed-over control socket listens */
	uint64_t t_pause_ns;
};
void upgrade_arrival(struct upgrade_arrival *a, const struct handover *h);

/* Nanoseconds since t (a CLOCK_MONOTONIC time such as t_pause_ns). */
uint64_t upgrade_since_ns(uint64_t t);

/* Can this executable read every journal in h?  If not, the reason. */
bool upgrade_journals_known(const struct handover *h, char *why, size_t why_len);

/* Execute the previous executable again with everything in h (nothing of
 * it taken) and why as the error to report.  Returns only on failure. */
int upgrade_exec_back(struct handover *h, char **argv, const char *control_path,
		      const char *why);
