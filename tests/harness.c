#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/unix_addr.h"
#include "ctl/client.h"
#include "tests/no_io_uring.h"

#ifndef DAEMON_PATH
#error "DAEMON_PATH must point at the virtio-ivshmemd binary"
#endif

int harness_mkdir(struct daemon_proc *d)
{
	memset(d, 0, sizeof(*d));
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/vivt-XXXXXX", base);
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->conf, sizeof(d->conf), "%s/daemon.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	return 0;
}

const char *harness_path(const struct daemon_proc *d, const char *name, int slot)
{
	static char buf[4][400];
	snprintf(buf[slot & 3], sizeof(buf[0]), "%s/%s", d->dir, name);
	return buf[slot & 3];
}

void harness_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *b = buf;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

int harness_image(const char *path, uint64_t size, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (seed == 0) {
		int r = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
		close(fd);
		return r;
	}
	uint8_t *buf = malloc(1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t n = size - off < (1u << 20) ? size - off : 1u << 20;
		harness_fill(buf, n, seed + off);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			free(buf);
			close(fd);
			return -EIO;
		}
	}
	free(buf);
	close(fd);
	return 0;
}

int harness_read_file(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

bool harness_log_has(const struct daemon_proc *d, const char *text)
{
	char buf[65536];
	int fd = open(d->log, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

const char *harness_io_engine(void)
{
	const char *e = getenv("VIVD_TEST_IO_ENGINE");
	return e && e[0] ? e : NULL;
}

int harness_write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	/* Appended, so that no line the tests expect in an error moves (a
	 * second [daemon] section is allowed); a config naming its engine
	 * keeps it. */
	const char *eng = harness_io_engine();
	size_t len = strlen(text);
	bool added = eng && !strstr(text, "io-engine");
	if (added)
		fprintf(f, "%s[daemon]\nio-engine = %s\n", len && text[len - 1] != '\n' ? "\n" : "",
			eng);
	if (fclose(f) != 0)
		return -errno;
	return added;
}

bool harness_engine_logged(const struct daemon_proc *d)
{
	const char *eng = harness_io_engine();
	if (!eng || strcmp(eng, "auto") == 0)
		return true;
	char want[64];
	snprintf(want, sizeof(want), "io engine %s", eng);
	return harness_log_has(d, want);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int harness_start(struct daemon_proc *d, const char *conf_text, unsigned devices, int *status)
{
	int added = harness_write_conf(d->conf, conf_text);
	if (added < 0)
		return -1;
	/* Emptied before the child runs: a log of an earlier start must not
	 * say "serving" for this one. */
	int lf = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (lf >= 0)
		close(lf);
	d->pid = fork();
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		dup2(fd, 1);
		if (d->no_io_uring && no_io_uring() < 0)
			_exit(77);
		execl(DAEMON_PATH, "virtio-ivshmemd", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	char want[64];
	snprintf(want, sizeof(want), "serving %u device(s)", devices);
	for (int i = 0; i < 1000; i++) {
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			if (status)
				*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			return -1;
		}
		if (harness_log_has(d, want)) {
			if (!added || harness_engine_logged(d))
				return 0;
			fprintf(stderr, "harness: the daemon does not say it uses io engine %s\n",
				harness_io_engine());
			harness_stop(d);
			return -1;
		}
		sleep_ms(10);
	}
	harness_stop(d);
	return -1;
}

int harness_stop(struct daemon_proc *d)
{
	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		sleep_ms(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

int harness_run(const char *const *args, char *out, size_t out_len)
{
	int pipefd[2];
	if (pipe(pipefd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		const char *argv[16] = { "virtio-ivshmemd" };
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		execv(DAEMON_PATH, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < out_len && (n = read(pipefd[0], out + got, out_len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pipefd[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void harness_cleanup(struct daemon_proc *d)
{
	if (d->pid > 0)
		harness_stop(d);
	char cmd[400];
	if (getenv("HARNESS_KEEP")) {
		fprintf(stderr, "harness: keeping %s\n", d->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
}

const char *harness_ctl(const char *sock, const char *cmd)
{
	static char out[65536];
	char *body = NULL, err[512];
	int r = ctl_request(sock, cmd, 30000, &body, err, sizeof(err));
	snprintf(out, sizeof(out), "%s", r == 0 && body ? body : err);
	free(body);
	return out;
}

bool harness_json_num(const char *text, const char *key, unsigned long long *v)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = text ? strstr(text, k) : NULL;
	if (!p)
		return false;
	*v = strtoull(p + strlen(k), NULL, 10);
	return true;
}

int harness_unix_connect(const char *path)
{
	struct sockaddr_un sa;
	if (unix_addr(&sa, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}
