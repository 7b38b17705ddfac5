/* Fake struct cm_hw_ops for tests: records every call as a text line,
 * keeps copies of loaded images, returns programmed errors, and can
 * imitate the kernel's sysfs side effects through a hook. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/hw.h"

#define FAKE_MAX_CALLS 64
#define FAKE_MAX_IMAGES 8

struct fake_image {
	uint64_t addr;
	size_t size;
	uint8_t *data;
};

struct fake_hw {
	char *calls[FAKE_MAX_CALLS];
	unsigned ncalls;
	/* programmed results (0 = success) */
	int ret_enable, ret_disable, ret_create, ret_load, ret_start, ret_destroy;
	int ret_module_jailhouse, ret_module_uio;
	/* sysfs root: create adds cells/<id>/name like the driver does */
	const char *sysfs_root;
	int next_cell_id;
	/* last CELL_LOAD */
	struct fake_image images[FAKE_MAX_IMAGES];
	unsigned nimages;
	char load_name[32];
	int load_id;
	/* sysfs_write: hook may create files; returns the result to report.
	 * Without a hook writes go to the file if it exists (else -ENOENT). */
	int (*write_hook)(struct fake_hw *f, const char *path, const char *value);
	/* cell_create: called after the call is recorded, before the result
	 * (e.g. to record what the back-ends look like at that moment). */
	void (*create_hook)(struct fake_hw *f, const char *name);
	void *hook_data;
};

extern const struct cm_hw_ops fake_hw_ops;
void fake_hw_init(struct fake_hw *f, const char *sysfs_root);
void fake_hw_reset(struct fake_hw *f);   /* frees calls and images */
/* Is "line" among the recorded calls? index or -1 */
int fake_hw_find(const struct fake_hw *f, const char *prefix);
/* Index of the first call at or after from that starts with prefix, or -1. */
int fake_hw_find_from(const struct fake_hw *f, unsigned from, const char *prefix);
/* Append a line of one's own to the calls (hooks, callbacks). */
void fake_hw_record(struct fake_hw *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
