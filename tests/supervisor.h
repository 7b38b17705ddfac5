/* A stand-in for systemd in the tests: runs the daemon the way a unit with
 * Type=notify, NotifyAccess=main, Restart=always, RestartSec=0 and
 * FileDescriptorStoreMax= would, speaking the same protocol:
 *
 *   - the daemon gets $NOTIFY_SOCKET (a datagram socket; the sender's pid is
 *     checked with SO_PASSCRED, messages from others are dropped with their
 *     fds, as NotifyAccess=main does);
 *   - "READY=1" marks it started; "FDSTORE=1" with SCM_RIGHTS fds stores them
 *     under "FDNAME=" (default "stored"), an fd that is the same open file as
 *     one already stored is dropped (kcmp), at most SUP_STORE_MAX;
 *     "FDSTOREREMOVE=1" with "FDNAME=" drops every fd of that name; a stored
 *     fd that reports a hang-up or an error is dropped unless it came with
 *     "FDPOLL=0" (as systemd polls its store);
 *   - when the daemon dies without being stopped it is started again at once
 *     with the store: the fds from 3 on, $LISTEN_FDS, $LISTEN_FDNAMES
 *     (':'-separated), $LISTEN_PID; every other fd closed;
 *   - sup_stop() sends SIGTERM, waits, and empties the store (a unit that
 *     stops loses it).
 * A thread of its own does all of it; the test's thread keeps the load going.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SUP_STORE_MAX 4096

struct supervisor;

/* Start daemon_path -c conf with its output appended to log. */
int sup_start(struct supervisor **ret, const char *daemon_path, const char *conf,
	      const char *log, char *err, size_t err_len);

/* Wait until the daemon of start number `start` (0: the first, 1: after one
 * restart, ...) or a later one said READY=1.  0, or -ETIMEDOUT. */
int sup_wait_ready(struct supervisor *s, unsigned start, int timeout_ms);

/* Wait until a daemon runs that was not sent a signal yet (it may still be
 * starting).  0, or -ETIMEDOUT. */
int sup_wait_alive(struct supervisor *s, int timeout_ms);

/* Send sig to the daemon running now, unless it was sent one already;
 * returns its start number, or -ESRCH. */
int sup_kill(struct supervisor *s, int sig);

/* Starts so far (1 + restarts), fds in the store, messages dropped. */
unsigned sup_starts(struct supervisor *s);
unsigned sup_stored(struct supervisor *s);
unsigned sup_rejected(struct supervisor *s);
pid_t sup_pid(struct supervisor *s);
/* Deaths nobody asked for (a crash, an exit): must stay 0. */
unsigned sup_unexpected(struct supervisor *s);

/* A duplicate of the stored fd named name (the first), or -1. */
int sup_fd(struct supervisor *s, const char *name);

/* Do not restart the daemon when it dies (its next death is final). */
void sup_hold_restart(struct supervisor *s, bool hold);
/* Restart it now if it is not running (after sup_hold_restart). */
int sup_restart(struct supervisor *s);

/* SIGTERM, wait; the exit status (-1: killed by a signal).  The store is
 * emptied. */
int sup_stop(struct supervisor *s);
void sup_free(struct supervisor *s);
