/* Logging for the daemon and its tools.
 *
 * Messages go to stderr.  Under journald (JOURNAL_STREAM set) each line gets
 * an sd-daemon "<N>" priority prefix so the journal keeps the level; otherwise
 * a plain "level: " prefix.  Library code logs only through this, and only at
 * the boundary that decides what to do about an error.
 */
#pragma once
#include <stdarg.h>

/* syslog priorities */
enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
