/* Test harness: runs the real daemon binary as a child process with a
 * generated config in a private temporary directory, and helpers to make
 * and compare image files.
 *
 * VIVD_TEST_IO_ENGINE (auto, io_uring or threads; `meson test --setup
 * threads` sets it) picks the daemon's I/O engine for every config written
 * through harness_write_conf() (harness_start uses it) that does not name
 * one itself, and harness_start() then checks that the log names that
 * engine (when it added it): the end-to-end suite runs once per engine. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct daemon_proc {
	pid_t pid;
	char dir[256];          /* private temp dir: sockets, images, config, log */
	char conf[300];
	char log[300];
	/* Run the daemon where io_uring_setup fails with ENOSYS (a seccomp
	 * filter), as on a kernel without io_uring or with
	 * kernel.io_uring_disabled; the daemon exits 77 where no filter can be
	 * installed and io_uring works (the caller skips then). */
	bool no_io_uring;
};

/* Make a private temp dir for a test. */
int harness_mkdir(struct daemon_proc *d);
/* Path of name inside the test dir (static buffer per call slot 0..3). */
const char *harness_path(const struct daemon_proc *d, const char *name, int slot);
/* Create an image of size bytes filled with a deterministic pattern (seed), or zeroes. */
int harness_image(const char *path, uint64_t size, uint64_t seed);
/* Fill buf with a deterministic pseudo-random pattern. */
void harness_fill(void *buf, size_t len, uint64_t seed);
/* Read len bytes at off from a file. */
int harness_read_file(const char *path, uint64_t off, void *buf, size_t len);

/* Write text to path, with the test run's io-engine added (see above).
 * 1 when it was added, 0 when not (none asked, or text names one), or a
 * negative errno. */
int harness_write_conf(const char *path, const char *text);
/* The engine VIVD_TEST_IO_ENGINE asks for, or NULL (the daemon's default). */
const char *harness_io_engine(void);
/* Does the log name the engine asked for (true when none was)? */
bool harness_engine_logged(const struct daemon_proc *d);

/* Write conf_text to the config file and start the daemon; waits until it
 * says it serves `devices` devices.  Returns 0, or -1 when the daemon
 * exited (its exit status in *status if not NULL). */
int harness_start(struct daemon_proc *d, const char *conf_text, unsigned devices, int *status);
/* SIGTERM and wait; returns the exit status (or -1). */
int harness_stop(struct daemon_proc *d);
/* Run the daemon with args (e.g. --check-config FILE) to completion;
 * captures stderr+stdout into out.  Returns the exit status. */
int harness_run(const char *const *args, char *out, size_t out_len);
/* Does the daemon log contain text? */
bool harness_log_has(const struct daemon_proc *d, const char *text);
/* Remove the test dir. */
void harness_cleanup(struct daemon_proc *d);

/* Ask the daemon's control socket at sock: the answer's body, or the error
 * text (in a static buffer, overwritten by the next call). */
const char *harness_ctl(const char *sock, const char *cmd);

/* The number after "key": in text, from its first occurrence on; false
 * when the key is not there. */
bool harness_json_num(const char *text, const char *key, unsigned long long *v);

/* A stream socket connected to the unix socket at path (close-on-exec,
 * blocking), or -1. */
int harness_unix_connect(const char *path);
