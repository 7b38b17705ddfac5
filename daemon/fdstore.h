/* systemd's file-descriptor store, kept up to date with every device's
 * hand-over set, so that a daemon killed or crashed is restarted with its
 * links, endpoints and journals (LISTEN_FDS) and takes the devices over as
 * after an upgrade (core/handover.h, core/journal.h).
 *
 * Protocol (sd_notify(3), sd_pid_notify_with_fds(3)):
 * "FDSTORE=1\nFDPOLL=0\nFDNAME=n" with the fd attached stores it under n
 * (the supervisor ignores an fd it already holds: the same open file; and
 * with FDPOLL=0 it does not drop one that reports a hang-up, as an idle pty
 * master always does: systemd 246 or later); "FDSTOREREMOVE=1\nFDNAME=n"
 * drops every fd stored as n.  The unit needs FileDescriptorStoreMax= (and
 * Restart=); without $NOTIFY_SOCKET the store is off and a crash is the end
 * of the devices' sessions, as without it.
 *
 * Main thread only.  Workers notice that a device's set changed
 * (device_handover_gen) and post a snapshot (device_snapshot, fds
 * duplicated) as a fdstore_mail; fdstore_sync() brings the store in line:
 * names gone or now naming another file are removed, new ones stored.  To
 * tell "the same file" it keeps one duplicate of every fd it stored and
 * compares with kcmp(2).  Messages go out in order through the daemon's
 * notifier (daemon/notify.h), which never makes the loop wait.
 */
#pragma once
#include <stdbool.h>

#include <uv.h>

#include "core/handover.h"
#include "daemon/mailbox.h"
#include "daemon/notify.h"

struct fdstore_entry {
	char *name;
	int fd;                     /* our duplicate of what the store holds */
};

struct fdstore {
	bool enabled;
	struct notifier *notifier;  /* where the messages go, in order */
	struct fdstore_entry *e;     /* what the store holds, as far as we know */
	unsigned n, cap;
	unsigned long long sent, removed;
};

/* A device's current set, from its worker. */
struct fdstore_mail {
	struct mail m;
	struct fdstore *store;
	char device[128];
	struct handover h;          /* fds are duplicates, owned by the mail */
};

/* enabled: devices keep journals (and the notifier reaches a supervisor).
 * handed: what the supervisor's store held when it started us, before
 * anything of it is taken or closed (duplicated to compare with later);
 * NULL when that is not known (after an upgrade, whose set may differ from
 * the store: then every fd is sent again, and the supervisor keeps each
 * open file once). */
void fdstore_init(struct fdstore *s, struct notifier *notifier, bool enabled,
		  const struct handover *handed);

/* A mail for device's set, to fill with device_snapshot() and post to the
 * main loop's mailbox; NULL on ENOMEM. */
struct fdstore_mail *fdstore_mail_new(struct fdstore *s, const char *device);

/* Make the store hold exactly set for device (names "<device>/..."). */
void fdstore_sync(struct fdstore *s, const char *device, struct handover *set);

/* Drop what the store holds for names whose device is not in devices[]
 * (removed from the config). */
void fdstore_prune(struct fdstore *s, const char *const *devices, unsigned ndevices);

/* Empty the store (after a clean stop: nothing there is valid any more). */
void fdstore_clear(struct fdstore *s);
void fdstore_free(struct fdstore *s);
