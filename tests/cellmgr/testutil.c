#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/wait.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p;

	if (asprintf(&p, "%s/cellmgr-test-XXXXXX", base) < 0 || !mkdtemp(p))
		abort();
	return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

void tu_rmrf(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_mkdirs(const char *path)
{
	char *p = strdup(path);

	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				abort();
			*s = '/';
		}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		abort();
	free(p);
}

static void mkparent(const char *path)
{
	char *p = strdup(path), *s = strrchr(p, '/');

	if (s && s != p) {
		*s = '\0';
		tu_mkdirs(p);
	}
	free(p);
}

void tu_write(const char *path, const void *data, size_t len)
{
	FILE *f;

	mkparent(path);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

void tu_write_str(const char *path, const char *s)
{
	tu_write(path, s, strlen(s));
}

void tu_symlink(const char *target, const char *path)
{
	mkparent(path);
	unlink(path);
	if (symlink(target, path) < 0)
		abort();
}

char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

char *tu_dtc(const char *dir, const char *src, size_t *len)
{
	const char *tool = getenv("DTC");
	char *out;

	if (!tool || !*tool)
		return NULL;
	tu_write_str(tu_fmt("%s/in.dts", dir), src);
	if (system(tu_fmt("'%s' -q -I dts -O dtb -o %s/out.dtb %s/in.dts", tool, dir, dir)) != 0) {
		fprintf(stderr, "dtc failed on %s/in.dts\n", dir);
		abort();
	}
	out = tu_read(tu_fmt("%s/out.dtb", dir), len);
	if (!out)
		abort();
	return out;
}

const char *tu_fmt(const char *fmt, ...)
{
	static char bufs[8][4096];
	static int i;
	va_list ap;
	char *b = bufs[i++ % 8];

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

char *tu_run(const char *cmd, int *code)
{
	FILE *p = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0, r;
	char *out = calloc(1, cap);
	int st;

	assert_non_null(p);
	assert_non_null(out);
	while ((r = fread(out + n, 1, cap - 1 - n, p)) > 0)
		n += r;
	st = pclose(p);
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}
