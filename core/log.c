#include "core/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}


static bool under_journald(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = getenv("JOURNAL_STREAM") != NULL;
	return cached;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	if (level > current_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (under_journald()) {
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	} else {
		const char *tag = level <= LOG_ERR ? "error: " : level == LOG_WARN ? "warning: "
				  : level == LOG_DEBUG ? "debug: " : "";
		fprintf(stderr, "%s%s\n", tag, line);
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
