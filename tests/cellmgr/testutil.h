/* Small helpers for tests: temporary directories and files. */
#pragma once
#include <stddef.h>

/* mkdtemp under $TMPDIR or /tmp; returns malloc'ed path. */
char *tu_tmpdir(void);
void tu_rmrf(const char *path);
/* Create parent directories as needed.  Abort on failure (tests only). */
void tu_mkdirs(const char *path);
void tu_write(const char *path, const void *data, size_t len);
void tu_write_str(const char *path, const char *s);
void tu_symlink(const char *target, const char *path);
/* Read a whole file (malloc'ed, NUL-terminated); NULL if missing. */
char *tu_read(const char *path, size_t *len);
/* Compile the device tree source src with $DTC (Debian
 * device-tree-compiler) in dir (dir/in.dts, dir/out.dtb).  Returns the
 * malloc'ed blob, or NULL when $DTC is unset or empty (tests skip then);
 * aborts when dtc fails. */
char *tu_dtc(const char *dir, const char *src, size_t *len);
/* printf into a static rotating buffer (for building paths). */
/* Run a shell command: its output (stdout and stderr as the command
 * redirects them; at most 64 KiB), to free, and its exit code in *code. */
char *tu_run(const char *cmd, int *code);
const char *tu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
