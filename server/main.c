/* virtio-ivshmemd: serves virtio devices to Jailhouse cells over IVSHMEM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "config/config.h"
#include "server/commands.h"
#include "server/control.h"
#include "server/device.h"
#include "server/notify.h"
#include "server/io_engine.h"
#include "server/log.h"

#define DEFAULT_CONFIG "/etc/virtio-ivshmemd.conf"

struct daemon {
	uv_loop_t loop;
	struct config *cfg;
	struct io_engine eng;
	struct device *devs;
	unsigned ndevs;
	unsigned running;
	uv_signal_t sig_int, sig_term, sig_hup;
	uv_timer_t teardown;        /* closes everything outside any device callback */
	struct control *control;
	struct command_ctx commands;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtio-ivshmemd [OPTIONS] [-c CONFIG]\n"
		"Serve virtio block devices to Jailhouse cells over IVSHMEM links.\n\n"
		"  -c, --config FILE      configuration file (default " DEFAULT_CONFIG ")\n"
		"      --check-config FILE  validate FILE without touching any device, then exit\n"
		"  -v, --verbose          debug logging\n"
		"  -h, --help             this help\n"
		"  -V, --version          print the version\n\n"
		"SIGINT/SIGTERM finish in-flight I/O, reset the links and exit 0.\n");
}

static void all_closed(struct daemon *d)
{
	for (unsigned i = 0; i < d->ndevs; i++)
		device_close(&d->devs[i]);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	control_close(d->control);
	d->control = NULL;
	io_engine_close(&d->eng);
}

static void teardown_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uv_close((uv_handle_t *)t, NULL);
	all_closed(d);
}

static void device_stopped(struct device *dev)
{
	struct daemon *d = dev->data;
	if (--d->running == 0) {
		/* We may be deep inside an I/O completion: tear down from the loop. */
		log_info("all devices stopped");
		uv_timer_start(&d->teardown, teardown_cb, 0, 0);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("%s: finishing in-flight I/O and shutting down", strsignal(signum));
	notify_systemd("STOPPING=1");
	d->running = d->ndevs;
	if (d->ndevs == 0) {
		uv_timer_start(&d->teardown, teardown_cb, 0, 0);
		return;
	}
	for (unsigned i = 0; i < d->ndevs; i++)
		device_stop(&d->devs[i], device_stopped);
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	for (unsigned i = 0; i < d->ndevs; i++)
		device_reopen(&d->devs[i]);
	log_info("SIGHUP: log endpoints reopened");
}

static int open_control(struct daemon *d)
{
	const struct cfg_daemon *dc = &d->cfg->daemon;
	char err[512];
	if (strcmp(dc->control, "none") == 0)
		return 0;
	if (!dc->control_set)
		mkdir("/run/virtio-ivshmemd", 0755);
	d->commands.devs = d->devs;
	d->commands.ndevs = d->ndevs;
	int r = control_open(&d->loop, dc->control, 0600, commands_handle, &d->commands,
			     &d->control, err, sizeof(err));
	if (r < 0 && dc->control_set) {
		log_err("%s", err);
		return r;
	}
	if (r < 0)
		log_warn("%s; running without a control socket", err);
	return 0;
}

static int check_config(const char *path)
{
	struct config *cfg;
	char err[1024];
	int r = config_load(path, &cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s: OK, %u block device(s), %u console(s)\n", path, config_count(cfg, DEV_BLOCK),
	       config_count(cfg, DEV_CONSOLE));
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct cfg_device *b = &cfg->devices[i];
		if (b->type == DEV_BLOCK)
			printf("  block   %-12s %s=%s image=%s%s queues=%u queue-size=%u\n", b->name,
			       cfg_link_kind_name(b->link.kind), b->link.target, b->image,
			       b->read_only ? " (read-only)" : "", b->queues, b->queue_size);
		else
			printf("  console %-12s %s=%s endpoint=%s%s%s\n", b->name,
			       cfg_link_kind_name(b->link.kind), b->link.target,
			       cfg_endpoint_name(b->endpoint), b->ep_path[0] ? " path=" : "",
			       b->ep_path);
	}
	config_free(cfg);
	return 0;
}

static int run(const char *config_path, bool verbose)
{
	struct daemon d = { 0 };
	char err[1024];
	int r = config_load(config_path, &d.cfg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return 1;
	}
	log_set_level(verbose ? LOG_DEBUG : (enum log_level)d.cfg->daemon.log_level);
	uv_loop_init(&d.loop);
	unsigned entries = 256;
	for (unsigned i = 0; i < d.cfg->ndevices; i++)
		entries += d.cfg->devices[i].queues * d.cfg->devices[i].queue_size;
	if (entries > 16384)
		entries = 16384;
	r = io_engine_init(&d.eng, &d.loop, entries);
	if (r < 0) {
		log_err("cannot set up io_uring: %s%s", strerror(-r),
			r == -EPERM || r == -ENOSYS ? " (is kernel.io_uring_disabled set?)" : "");
		return 1;
	}
	d.devs = calloc(d.cfg->ndevices, sizeof(*d.devs));
	int status = 0;
	for (unsigned i = 0; i < d.cfg->ndevices; i++) {
		r = device_open(&d.devs[i], &d.cfg->devices[i], &d.cfg->daemon, &d.loop, &d.eng,
				err, sizeof(err));
		d.devs[i].data = &d;
		d.ndevs++;
		if (r < 0) {
			log_err("%s:%d: %s", d.cfg->path, d.cfg->devices[i].line, err);
			status = 1;
			break;
		}
	}
	uv_timer_init(&d.loop, &d.teardown);
	d.teardown.data = &d;
	uv_signal_init(&d.loop, &d.sig_int);
	uv_signal_init(&d.loop, &d.sig_term);
	uv_signal_init(&d.loop, &d.sig_hup);
	d.sig_int.data = d.sig_term.data = d.sig_hup.data = &d;
	if (status == 0 && open_control(&d) < 0)
		status = 1;
	if (status == 0) {
		uv_signal_start(&d.sig_int, on_signal, SIGINT);
		uv_signal_start(&d.sig_term, on_signal, SIGTERM);
		uv_signal_start(&d.sig_hup, on_hup, SIGHUP);
		/* Every device has published READY on its link (or waits for its
		 * peer to reset first): cells may boot now. */
		log_info("serving %u device(s)", d.ndevs);
		char st[64];
		snprintf(st, sizeof(st), "READY=1\nSTATUS=serving %u device(s)", d.ndevs);
		notify_systemd(st);
	} else {
		uv_close((uv_handle_t *)&d.teardown, NULL);
		all_closed(&d);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	uv_loop_close(&d.loop);
	free(d.devs);
	config_free(d.cfg);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
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
		case 'C': return check_config(optarg);
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
	return run(config, verbose);
}
