/* virtio-ivshmemd: serves virtio devices to Jailhouse cells over IVSHMEM. */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "daemon/commands.h"
#include "daemon/control.h"
#include "daemon/device.h"
#include "daemon/fdstore.h"
#include "daemon/notify.h"
#include "core/sim_proto.h"
#include "core/mailbox.h"
#include "daemon/upgrade.h"
#include "daemon/worker.h"
#include "core/handover.h"
#include "core/journal.h"
#include "core/log.h"

#define DEFAULT_CONFIG "/etc/virtio-ivshmemd.conf"

struct daemon {
	uv_loop_t loop;
	struct config *cfg;
	struct mailbox mb;          /* answers from the workers */
	struct worker *workers;
	unsigned nworkers;
	struct device *devs;
	unsigned ndevs;
	uv_signal_t sig_int, sig_term, sig_hup;
	unsigned workers_done;      /* their devices stopped */
	unsigned workers_ended;     /* their loops ended */
	struct control *control;
	struct command_ctx commands;
	bool stopping;
	char **argv;
	struct upgrade up;
	struct handover handed;         /* what a previous process handed over */
	struct upgrade_arrival arrival;
	struct notifier notifier;       /* to systemd (or its stand-in) */
	struct fdstore store;
	unsigned adopted, restarted;    /* devices taken over / started afresh */
	unsigned failed;                /* devices that could not be opened after a restart */
	bool clean_stop;                /* a signal asked us to stop: links are reset */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtio-ivshmemd [OPTIONS] [-c CONFIG]\n"
		"Serve virtio block devices to Jailhouse cells over IVSHMEM links.\n\n"
		"  -c, --config FILE      configuration file (default " DEFAULT_CONFIG ")\n"
		"      --check-config FILE  validate FILE without touching any device, then exit\n"
		"      --check-handover FILE  the same, then name the journal versions this\n"
		"                         executable takes devices over from (for upgrade)\n"
		"  -v, --verbose          debug logging\n"
		"  -h, --help             this help\n"
		"  -V, --version          print the version\n\n"
		"SIGINT/SIGTERM finish in-flight I/O, reset the links and exit 0.\n");
}

static void close_main(struct daemon *d)
{
	/* Closing the signal handles restores the default actions: a second
	 * SIGTERM from now on would kill the process instead of letting it
	 * finish with status 0.  Held blocked, it dies with the process. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	upgrade_close(&d->up);
	/* what the fd store was told last (after a clean stop: to forget) */
	notifier_flush_wait(&d->notifier, 1000);
	notifier_close(&d->notifier);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	control_close(d->control);
	d->control = NULL;
	mailbox_close(&d->mb);
}

/* On the main loop, one per worker: its loop has ended. */
static void worker_ended(void *arg, int status)
{
	struct daemon *d = arg;
	if (++d->workers_ended == d->nworkers) {
		log_info("all devices stopped");
		/* After a clean stop the links are reset: nothing kept is worth
		 * taking over.  A start that failed keeps the store for the next. */
		if (d->clean_stop)
			fdstore_clear(&d->store);
		close_main(d);
	}
}

/* On the main loop, one per worker: its devices have stopped.  Once all
 * have, no queue is served on any loop any more: the loops may end. */
static void worker_finished(void *arg, int status)
{
	struct daemon *d = arg;
	if (++d->workers_done < d->nworkers)
		return;
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_end(&d->workers[i], worker_ended, d);
}

static void shutdown_all(struct daemon *d)
{
	/* Before any worker is told: no command starts a call on a worker
	 * after this (daemon/commands.c), so none runs once the loops end. */
	d->commands.stopping = true;
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_shutdown(&d->workers[i], worker_finished, d);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	d->clean_stop = true;
	upgrade_abort(&d->up);
	log_info("%s: finishing in-flight I/O and shutting down", strsignal(signum));
	notifier_send(&d->notifier, "STOPPING=1", -1);
	shutdown_all(d);
}

static void reopen_one(void *arg)
{
	device_reopen(arg);
}

static void reopened(void *arg, int status)
{
	/* A stopped worker has nothing to reopen. */
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	for (unsigned i = 0; i < d->ndevs; i++)
		if (d->devs[i].open_ok)
			worker_call(d->devs[i].worker, reopen_one, reopened, &d->devs[i]);
	log_info("SIGHUP: log endpoints reopened");
}

/* The client that asked for the upgrade we come out of (cmd, or orphan: its
 * fd when the control socket was not taken over). */
static void answer_upgrade(struct daemon *d, struct control_cmd *cmd, int orphan)
{
	char msg[1024];
	double ms = (double)upgrade_since_ns(d->arrival.t_pause_ns) / 1e6;
	if (d->arrival.error[0]) {
		snprintf(msg, sizeof(msg), "%s; the previous daemon (virtio-ivshmemd "
			 PROJECT_VERSION ", pid %d) took them back: %u taken over, %u started "
			 "afresh", d->arrival.error, (int)getpid(), d->adopted, d->restarted);
		log_err("upgrade failed: %s", d->arrival.error);
		if (cmd)
			control_answer(cmd, -ENOEXEC, msg);
		control_answer_orphan(orphan, -ENOEXEC, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "virtio-ivshmemd " PROJECT_VERSION " (pid %d): %u device(s) "
		 "taken over, %u started afresh, %u failed, %.1f ms paused", (int)getpid(),
		 d->adopted, d->restarted, d->failed, ms);
	log_info("upgrade: %s", msg);
	if (cmd)
		control_answer(cmd, 0, msg);
	control_answer_orphan(orphan, 0, msg);
}

static int open_control(struct daemon *d)
{
	const struct cfg_daemon *dc = &d->cfg->daemon;
	char err[512];
	if (strcmp(dc->control, "none") == 0) {
		/* no control socket any more: the asking client is answered */
		int cfd = handover_take(&d->handed, CONTROL_CLIENT_FD_NAME);
		if (d->arrival.upgraded)
			answer_upgrade(d, NULL, cfd);
		else if (cfd >= 0)
			close(cfd);
		return 0;
	}
	if (!dc->control_set)
		mkdir("/run/virtio-ivshmemd", 0755);
	d->commands.loop = &d->loop;
	d->commands.devs = d->devs;
	d->commands.ndevs = d->ndevs;
	d->commands.upgrade = &d->up;
	struct control_cmd *pending = NULL;
	int orphan = -1;
	int r = control_adopt(&d->loop, dc->control, d->arrival.control_path, &d->handed,
			      commands_handle, &d->commands, &d->control, &pending, &orphan, err,
			      sizeof(err));
	if (r == 0) {
		answer_upgrade(d, pending, -1);
		return 0;
	}
	if (d->arrival.upgraded)
		answer_upgrade(d, NULL, orphan);
	else if (orphan >= 0)
		close(orphan);
	if (r == 1)
		r = control_open(&d->loop, dc->control, 0600, commands_handle, &d->commands,
				 &d->control, err, sizeof(err));
	if (r < 0 && dc->control_set) {
		log_err("%s", err);
		return r;
	}
	if (r < 0)
		log_warn("%s; running without a control socket", err);
	return 0;
}

static int check_config(const char *path, bool handover)
{
	struct config *cfg;
	char err[1024];
	int r = config_load(path, &cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Links the daemon hosts have a known size: check now what the cell's
	 * driver will allocate in them (other links are checked when opened). */
	uint16_t qs[cfg->ndevices ? cfg->ndevices : 1];
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct cfg_device *b = &cfg->devices[i];
		qs[i] = (uint16_t)b->queue_size;
		if (b->link.kind != LINK_SIM_HOST)
			continue;
		uint64_t rw = b->link.shm_size - SIM_STATE_TABLE_SIZE;
		r = b->type == DEV_BLOCK
		    ? blk_layout_check(rw, b->queues, qs[i], b->seg_max, err, sizeof(err))
		    : console_queue_size(rw, qs[i], &qs[i], err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "%s:%d: [%s %s]: %s\n", path, b->line,
				cfg_dev_type_name(b->type), b->name, err);
			config_free(cfg);
			return 1;
		}
	}
	printf("%s: OK, %u block device(s), %u console(s)\n", path, config_count(cfg, DEV_BLOCK),
	       config_count(cfg, DEV_CONSOLE));
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct cfg_device *b = &cfg->devices[i];
		char qsz[32];
		snprintf(qsz, sizeof(qsz), qs[i] ? "%u" : "auto", qs[i]);
		if (b->type == DEV_BLOCK)
			printf("  block   %-12s %s=%s image=%s%s queues=%u queue-size=%s%s\n", b->name,
			       cfg_link_kind_name(b->link.kind), b->link.target, b->image,
			       b->read_only ? " (read-only)" : "", b->queues, qsz,
			       b->cache == CFG_CACHE_NONE ? " cache=none" : "");
		else
			printf("  console %-12s %s=%s endpoint=%s%s%s queue-size=%s\n", b->name,
			       cfg_link_kind_name(b->link.kind), b->link.target,
			       cfg_endpoint_name(b->endpoint), b->ep_path[0] ? " path=" : "",
			       b->ep_path, qsz);
	}
	config_free(cfg);
	/* what "upgrade" looks for before it hands anything to us */
	if (handover)
		printf(UPGRADE_CHECK_TOKEN " %u\n", JOURNAL_VERSION);
	return 0;
}

static enum io_engine_kind io_kind(enum cfg_io_engine e)
{
	return e == CFG_IO_ENGINE_URING ? IO_ENGINE_URING
	       : e == CFG_IO_ENGINE_THREADS ? IO_ENGINE_THREADS : IO_ENGINE_AUTO;
}

/* Which engine serves the worker, and why when it is not the one asked. */
static void log_engine(const struct worker *w, unsigned entries)
{
	const struct io_engine *e = &w->eng;
	if (e->kind == IO_ENGINE_URING)
		log_info("worker %u: io engine io_uring (%u entries)", w->index, entries);
	else if (e->uring_err)
		log_warn("worker %u: io engine threads (up to %u threads): io_uring cannot be set up: %s",
			 w->index, e->max_threads, strerror(-e->uring_err));
	else
		log_info("worker %u: io engine threads (up to %u threads), as configured", w->index,
			 e->max_threads);
}

/* Over how many of n workers a device's queues are spread: a block
 * device's queues each on one, from its home on (daemon/device.h); a
 * console stays at home (its backend cancels requests, which lanes do not
 * carry: core/transport.h). */
static unsigned spread(const struct cfg_device *cd, unsigned n)
{
	unsigned k = cd->type == DEV_BLOCK ? cd->queues : 1;
	if (k > n)
		k = n;
	if (k > DEVICE_MAX_LOOPS)
		k = DEVICE_MAX_LOOPS;
	return k ? k : 1;
}

/* Workers, and every device opened on its worker's loop before the
 * worker's thread starts (nothing runs there yet). */
static int open_devices(struct daemon *d)
{
	char err[1024];
	const struct config *cfg = d->cfg;
	/* No idle threads: a worker serves at least one device or queue. */
	unsigned useful = 0;
	for (unsigned i = 0; i < cfg->ndevices; i++)
		useful += spread(&cfg->devices[i], UINT_MAX);
	unsigned n = cfg->daemon.threads;
	if (n > useful)
		n = useful ? useful : 1;
	d->workers = calloc(n, sizeof(*d->workers));
	d->devs = calloc(cfg->ndevices, sizeof(*d->devs));
	if (!d->workers || !d->devs)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		/* io_uring entries: room for every queue served on it. */
		unsigned entries = 256;
		for (unsigned k = 0; k < cfg->ndevices; k++) {
			const struct cfg_device *cd = &cfg->devices[k];
			unsigned loops = spread(cd, n);
			for (unsigned q = 0; q < cd->queues; q++)
				if ((k % n + q % loops) % n == i)
					entries += cd->queue_size ? cd->queue_size : 64;
		}
		enum io_engine_kind kind = io_kind(cfg->daemon.io_engine);
		if (entries > 16384)
			entries = 16384;
		int r = worker_init(&d->workers[i], i, n > 1, &d->loop, &d->mb, kind, entries,
				    cfg->daemon.busy_poll_us * 1000ull);
		d->nworkers++;
		if (r < 0) {
			const char *hint = kind == IO_ENGINE_THREADS ? ""
				: r == -EPERM || r == -ENOSYS
				? " (is kernel.io_uring_disabled set? io-engine = auto or threads "
				  "does without io_uring)"
				: " (io-engine = auto or threads does without io_uring)";
			snprintf(err, sizeof(err), "cannot set up %s: %s%s",
				 kind == IO_ENGINE_THREADS ? "the I/O threads" : "io_uring",
				 strerror(-r), hint);
			/* nothing touched yet: the previous daemon can take its devices back */
			if (d->arrival.upgraded)
				upgrade_exec_back(&d->handed, d->argv, d->arrival.control_path, err);
			log_err("%s", err);
			return r;
		}
		log_engine(&d->workers[i], entries);
	}
	if (d->cfg->daemon.busy_poll_us)
		log_info("busy polling: up to %u us before a worker loop sleeps",
			 d->cfg->daemon.busy_poll_us);
	else
		log_info("busy polling: off");
	/* Devices go round-robin to the workers. */
	for (unsigned i = 0; i < d->cfg->ndevices; i++) {
		struct worker *w = &d->workers[i % n];
		struct device *dev = &d->devs[i];
		d->ndevs++;
		if (worker_add(w, dev) < 0)
			return -ENOMEM;
		/* A block device's queues go round the workers from its home on. */
		dev->nloops = spread(&cfg->devices[i], n);
		for (unsigned k = 0; dev->nloops > 1 && k < dev->nloops; k++) {
			struct worker *lw = &d->workers[(i + k) % n];
			dev->loop[k] = lw->place;
			dev->loop_worker[k] = lw;
			if (k && worker_host(lw, dev) < 0)
				return -ENOMEM;
		}
		const struct cfg_device *cd = &d->cfg->devices[i];
		char jname[HANDOVER_NAME_MAX + 1];
		snprintf(jname, sizeof(jname), "%s/journal", cd->name);
		bool handed = false;
		for (unsigned k = 0; k < d->handed.n; k++)
			handed |= strcmp(d->handed.fds[k].name, jname) == 0;
		handed &= d->cfg->daemon.journal;   /* "journal = no" now: afresh */
		int r = handed ? device_adopt(dev, cd, &d->cfg->daemon, &w->tick, &w->eng,
					      &d->handed, err, sizeof(err))
			       : device_open(dev, cd, &d->cfg->daemon, &w->tick, &w->eng,
					     &d->handed, err, sizeof(err));
		if (r < 0 && d->handed.n) {
			/* Restarted or upgraded: the other devices serve cells that
			 * must not lose them for this one. */
			log_err("%s:%d: %s; the other devices go on without it", d->cfg->path,
				cd->line, err);
			d->failed++;
			continue;
		}
		if (r < 0) {
			log_err("%s:%d: %s", d->cfg->path, cd->line, err);
			return r;
		}
		d->adopted += handed && r == 0;
		d->restarted += !handed || r == 1;
		dev->open_ok = true;
	}
	return 0;
}

static int start_workers(struct daemon *d)
{
	for (unsigned i = 0; i < d->nworkers; i++) {
		int r = worker_start(&d->workers[i]);
		if (r < 0) {
			log_err("cannot start worker thread %u: %s", i, uv_strerror(r));
			return r;
		}
	}
	return 0;
}

/* Many devices, each with a dozen fds, each kept twice with an fd store:
 * take what the hard limit allows (select() is not used anywhere). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run(const char *config_path, bool verbose, char **argv)
{
	struct daemon d = { .argv = argv };
	char err[1024];
	raise_fd_limit();
	int r = handover_from_env(&d.handed, err, sizeof(err));
	if (r < 0)
		log_err("the fds handed over are unusable: %s; starting afresh", err);
	upgrade_arrival(&d.arrival, &d.handed);
	if (!d.arrival.upgraded && d.handed.n)
		log_info("restarted with %u fd(s) from the supervisor's store", d.handed.n);

	r = config_load(config_path, &d.cfg, err, sizeof(err));
	if (r < 0 && d.arrival.upgraded) {
		char why[1100];
		snprintf(why, sizeof(why), "the new daemon cannot load its config: %s", err);
		upgrade_exec_back(&d.handed, argv, d.arrival.control_path, why);
	}
	if (r < 0) {
		log_err("%s", err);
		handover_close_rest(&d.handed);
		handover_free(&d.handed);
		return 1;
	}
	if (d.arrival.upgraded && !upgrade_journals_known(&d.handed, err, sizeof(err)))
		upgrade_exec_back(&d.handed, argv, d.arrival.control_path, err);
	log_set_level(verbose ? LOG_DEBUG : (enum log_level)d.cfg->daemon.log_level);
	for (unsigned i = 0; i < d.handed.n; i++)
		log_debug("handed over: %s (fd %d)", d.handed.fds[i].name, d.handed.fds[i].fd);
	uv_loop_init(&d.loop);
	mailbox_init(&d.mb, &d.loop);
	uv_signal_init(&d.loop, &d.sig_int);
	uv_signal_init(&d.loop, &d.sig_term);
	uv_signal_init(&d.loop, &d.sig_hup);
	d.sig_int.data = d.sig_term.data = d.sig_hup.data = &d;
	int status = 0;
	/* The control socket before any thread: nothing process-wide changes
	 * once threads run (it needs no umask() anyway, see control.h). */
	notifier_init(&d.notifier, &d.loop);
	fdstore_init(&d.store, &d.notifier, d.cfg->daemon.journal,
		     d.arrival.upgraded ? NULL : &d.handed);
	if (open_devices(&d) < 0 || open_control(&d) < 0)
		status = 1;
	if (status == 0 && d.store.enabled) {
		const char *names[d.ndevs ? d.ndevs : 1];
		for (unsigned i = 0; i < d.ndevs; i++)
			names[i] = d.cfg->devices[i].name;
		fdstore_prune(&d.store, names, d.ndevs);
		for (unsigned i = 0; i < d.nworkers; i++)
			worker_keep_store(&d.workers[i], &d.store);
	}
	if (status == 0 && start_workers(&d) < 0)
		status = 1;
	/* What nobody took (devices no longer configured, the way back). */
	unsigned dropped = handover_close_rest(&d.handed);
	if (dropped)
		log_info("closed %u fd(s) handed over that nothing here uses", dropped);
	handover_free(&d.handed);
	d.up = (struct upgrade){ .loop = &d.loop, .workers = d.workers, .nworkers = d.nworkers,
				 .devs = d.devs, .ndevs = d.ndevs, .control = &d.control,
				 .config_path = config_path, .argv = argv,
				 .drain_ms = d.cfg->daemon.upgrade_drain_ms,
				 .notifier = &d.notifier,
				 .journal = d.cfg->daemon.journal };
	if (upgrade_init(&d.up) < 0)
		status = 1;
	if (status == 0) {
		uv_signal_start(&d.sig_int, on_signal, SIGINT);
		uv_signal_start(&d.sig_term, on_signal, SIGTERM);
		uv_signal_start(&d.sig_hup, on_hup, SIGHUP);
		/* Held across an upgrade's exec (daemon/upgrade.c): delivered now. */
		sigset_t held;
		sigemptyset(&held);
		sigaddset(&held, SIGTERM);
		sigaddset(&held, SIGINT);
		sigaddset(&held, SIGHUP);
		pthread_sigmask(SIG_UNBLOCK, &held, NULL);
		/* Every device has published READY on its link (or waits for its
		 * peer to reset first): cells may boot now. */
		if (d.failed)
			log_warn("%u device(s) could not be opened", d.failed);
		log_info("serving %u device(s)%s", d.ndevs - d.failed,
			 d.nworkers > 1 ? " on worker threads" : "");
		char st[64];
		snprintf(st, sizeof(st), "READY=1\nSTATUS=serving %u device(s)", d.ndevs - d.failed);
		notifier_send(&d.notifier, st, -1);
	} else {
		/* Workers run their own teardown: give each its thread. */
		start_workers(&d);
		d.stopping = true;
		if (d.nworkers)
			shutdown_all(&d);
		else
			close_main(&d);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < d.nworkers; i++)
		worker_join(&d.workers[i]);
	mailbox_destroy(&d.mb);
	fdstore_free(&d.store);
	uv_loop_close(&d.loop);
	free(d.workers);
	free(d.devs);
	config_free(d.cfg);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "check-handover", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *config = DEFAULT_CONFIG;
	bool verbose = false;
	int c;
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'C': return check_config(optarg, false);
		case 'H': return check_config(optarg, true);
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("virtio-ivshmemd " PROJECT_VERSION "\n"); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return run(config, verbose, argv);
}
