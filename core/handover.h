/* File descriptors handed from one daemon process to the next, by name.
 *
 * Two ways in, one set: after an upgrade (execve in the same process) the
 * old daemon names them in VIVD_FDS="name=fd:name=fd:..." and clears their
 * close-on-exec flags; after a crash or kill under systemd they come from
 * the file-descriptor store, in systemd's LISTEN_FDS/LISTEN_FDNAMES/
 * LISTEN_PID protocol (fds from 3 on).  The new process takes each fd by
 * name (device/what: "disk0/uio", "disk0/journal", "control", ...) and
 * closes what nobody took.  Names are [A-Za-z0-9_./-], at most 255 bytes
 * (systemd's FDNAME rule, ':' excluded).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define HANDOVER_NAME_MAX 255

struct handover_fd {
	char *name;
	int fd;
	bool taken;
};

/* Another name for a file of the set: systemd stores an open file once, so
 * a file two owners hold (the link's shared memory, which the daemon's own
 * peer also maps) travels under one name and the other names are recorded
 * with the owner's state (the device's journal) as aliases. */
struct handover_alias {
	char *name, *target;
};

struct handover {
	struct handover_fd *fds;
	unsigned n, cap;
	struct handover_alias *aliases;
	unsigned nalias, alias_cap;
};

/* Is name allowed? */
bool handover_name_ok(const char *name);

/* Add fd under name (kept as it is; the set does not own it until taken
 * over by a new process).  0 or a negative errno. */
int handover_add(struct handover *h, const char *name, int fd);

/* Read the fds this process was started with: VIVD_FDS, else LISTEN_FDS
 * for this pid.  Unsets the variables (they must not reach children).
 * Returns how many, or a negative errno with the reason in why for a
 * malformed set (the fds then stay as they are). */
int handover_from_env(struct handover *h, char *why, size_t why_len);

/* The fd under name (or an alias of it), the caller's from now on: the fd
 * itself the first time, a duplicate when it was taken already or is
 * reached through an alias.  -1 if none. */
int handover_take(struct handover *h, const char *name);

/* Record name as another name for target (and target for name). */
int handover_alias(struct handover *h, const char *name, const char *target);

/* Entries from index first on that are the same open file as an earlier
 * one of them become aliases of it (and leave the set).  Returns how many,
 * or a negative errno. */
int handover_dedupe(struct handover *h, unsigned first);

/* Do fds a and b refer to the same open file?  kcmp(2), else
 * F_DUPFD_QUERY (Linux 6.10); false when neither can tell. */
bool handover_same_file(int a, int b);
/* Can this kernel tell (handover_same_file)?  Without it, open files held
 * twice cannot be stored once in a supervisor's fd store. */
bool handover_can_compare(void);

/* Close every fd nobody took; returns how many. */
unsigned handover_close_rest(struct handover *h);

/* The VIVD_FDS value for the fds of the set nobody took ("" when none),
 * malloc'ed; NULL on ENOMEM. */
char *handover_env(const struct handover *h);

/* Clear (keep = true) or set close-on-exec on every fd of the set nobody
 * took. */
int handover_keep_on_exec(const struct handover *h, bool keep);

void handover_free(struct handover *h);
