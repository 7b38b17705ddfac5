/* Client of virtio-ivshmemd's control socket.  See daemon_ctl.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/daemon_ctl.h"
#include "ctl/client.h"

int cm_daemon_cmd(const char *sock_path, const char *cmd, int timeout_ms, char **body,
		  struct cm_err *err)
{
	char msg[1024];
	int ret = ctl_request(sock_path, cmd, timeout_ms, body, msg, sizeof(msg));

	if (ret == -EREMOTEIO)
		cm_err_set(err, "virtio-ivshmemd at %s refused \"%s\": %s", sock_path, cmd, msg);
	else if (ret < 0)
		cm_err_set(err, "%s", msg);
	return ret;
}

/* A strict reader of the subset of JSON the daemon writes.  Only string
 * fields of the device objects are kept; other values are checked and
 * skipped.  Depth is bounded. */
struct jr {
	const char *p;
	int depth;
};

static void ws(struct jr *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse a string into out (truncated to len - 1 bytes; out may be NULL). */
static int jstring(struct jr *j, char *out, size_t len)
{
	size_t o = 0;

	if (*j->p != '"')
		return -EPROTO;
	j->p++;
	for (;;) {
		unsigned char c = (unsigned char)*j->p++;
		unsigned cp;
		char enc[4];
		size_t elen = 1;

		if (c == '"')
			break;
		if (c < 0x20)
			return -EPROTO;     /* includes the terminating NUL */
		if (c != '\\') {
			enc[0] = (char)c;
		} else {
			c = (unsigned char)*j->p++;
			switch (c) {
			case '"': case '\\': case '/': enc[0] = (char)c; break;
			case 'b': enc[0] = '\b'; break;
			case 'f': enc[0] = '\f'; break;
			case 'n': enc[0] = '\n'; break;
			case 'r': enc[0] = '\r'; break;
			case 't': enc[0] = '\t'; break;
			case 'u':
				cp = 0;
				for (int k = 0; k < 4; k++) {
					int h = hexval(j->p[k]);

					if (h < 0)
						return -EPROTO;
					cp = cp << 4 | (unsigned)h;
				}
				j->p += 4;
				/* Names are ASCII in practice; anything else
				 * (including surrogates) is kept as UTF-8 of the
				 * code unit, which is enough for messages. */
				if (cp < 0x80) {
					enc[0] = (char)cp;
				} else if (cp < 0x800) {
					enc[0] = (char)(0xc0 | cp >> 6);
					enc[1] = (char)(0x80 | (cp & 0x3f));
					elen = 2;
				} else {
					enc[0] = (char)(0xe0 | cp >> 12);
					enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					enc[2] = (char)(0x80 | (cp & 0x3f));
					elen = 3;
				}
				break;
			default:
				return -EPROTO;
			}
		}
		if (out && o + elen < len) {
			memcpy(out + o, enc, elen);
			o += elen;
		}
	}
	if (out && len)
		out[o] = '\0';
	return 0;
}

static int jvalue(struct jr *j);

static int jcontainer(struct jr *j, char open, char close)
{
	int ret;

	if (*j->p != open)
		return -EPROTO;
	if (++j->depth > 16)
		return -EPROTO;
	j->p++;
	ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		ws(j);
		if (open == '{') {
			ret = jstring(j, NULL, 0);
			if (ret < 0)
				return ret;
			ws(j);
			if (*j->p++ != ':')
				return -EPROTO;
			ws(j);
		}
		ret = jvalue(j);
		if (ret < 0)
			return ret;
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return -EPROTO;
	}
}

static int jvalue(struct jr *j)
{
	static const char *const words[] = { "true", "false", "null" };

	ws(j);
	switch (*j->p) {
	case '"':
		return jstring(j, NULL, 0);
	case '{':
		return jcontainer(j, '{', '}');
	case '[':
		return jcontainer(j, '[', ']');
	default:
		break;
	}
	for (int i = 0; i < 3; i++)
		if (strncmp(j->p, words[i], strlen(words[i])) == 0) {
			j->p += strlen(words[i]);
			return 0;
		}
	if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
		const char *s = j->p;

		if (*j->p == '-')
			j->p++;
		while ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
		       *j->p == 'E' || *j->p == '+' || *j->p == '-')
			j->p++;
		return j->p > s + (*s == '-') ? 0 : -EPROTO;
	}
	return -EPROTO;
}

static int jdevice(struct jr *j, struct cm_daemon_dev *d)
{
	static const struct { const char *key; size_t off, len; } fields[] = {
		{ "name", offsetof(struct cm_daemon_dev, name), sizeof(d->name) },
		{ "type", offsetof(struct cm_daemon_dev, type), sizeof(d->type) },
		{ "link", offsetof(struct cm_daemon_dev, link), sizeof(d->link) },
		{ "state", offsetof(struct cm_daemon_dev, state), sizeof(d->state) },
		{ "cell", offsetof(struct cm_daemon_dev, cell), sizeof(d->cell) },
	};
	int ret;

	memset(d, 0, sizeof(*d));
	ws(j);
	if (*j->p != '{')
		return -EPROTO;
	j->p++;
	ws(j);
	if (*j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		char key[16];
		bool kept = false;

		ws(j);
		ret = jstring(j, key, sizeof(key));
		if (ret < 0)
			return ret;
		ws(j);
		if (*j->p++ != ':')
			return -EPROTO;
		ws(j);
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (!strcmp(key, fields[i].key) && *j->p == '"') {
				ret = jstring(j, (char *)d + fields[i].off, fields[i].len);
				kept = true;
				break;
			}
		if (!kept)
			ret = jvalue(j);
		if (ret < 0)
			return ret;
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == '}') {
			j->p++;
			return 0;
		}
		return -EPROTO;
	}
}

int cm_daemon_parse_list(const char *json, struct cm_daemon_dev **devs, size_t *n,
			 struct cm_err *err)
{
	struct jr j = { json, 0 };
	struct cm_daemon_dev *v = NULL;
	size_t cnt = 0, cap = 0;
	bool seen = false;
	int ret = -EPROTO;

	*devs = NULL;
	*n = 0;
	ws(&j);
	if (*j.p++ != '{')
		goto bad;
	ws(&j);
	if (*j.p == '}') {
		j.p++;
		goto end;
	}
	for (;;) {
		char key[16];

		ws(&j);
		if (jstring(&j, key, sizeof(key)) < 0)
			goto bad;
		ws(&j);
		if (*j.p++ != ':')
			goto bad;
		ws(&j);
		if (!strcmp(key, "devices")) {
			if (seen)
				goto bad;   /* twice: which one is meant? */
			seen = true;
			if (*j.p++ != '[')
				goto bad;
			ws(&j);
			if (*j.p == ']') {
				j.p++;
			} else {
				for (;;) {
					if (cnt == cap) {
						size_t nc = cap ? cap * 2 : 8;
						struct cm_daemon_dev *nv = realloc(v, nc * sizeof(*nv));

						if (!nv) {
							ret = -ENOMEM;
							goto bad;
						}
						v = nv;
						cap = nc;
					}
					if (jdevice(&j, &v[cnt]) < 0)
						goto bad;
					cnt++;
					ws(&j);
					if (*j.p == ',') {
						j.p++;
						continue;
					}
					if (*j.p++ != ']')
						goto bad;
					break;
				}
			}
		} else if (jvalue(&j) < 0) {
			goto bad;
		}
		ws(&j);
		if (*j.p == ',') {
			j.p++;
			continue;
		}
		if (*j.p++ != '}')
			goto bad;
		break;
	}
end:
	ws(&j);
	if (*j.p || !seen)
		goto bad;
	*devs = v;
	*n = cnt;
	return 0;
bad:
	free(v);
	if (ret == -EPROTO)
		cm_err_set(err, "malformed device list from virtio-ivshmemd (at byte %zu)",
			   (size_t)(j.p - json));
	return ret;
}

int cm_daemon_list(const char *sock_path, int timeout_ms, struct cm_daemon_dev **devs,
		   size_t *n, struct cm_err *err)
{
	char *body;
	int ret = cm_daemon_cmd(sock_path, "json list", timeout_ms, &body, err);

	if (ret < 0)
		return ret;
	ret = cm_daemon_parse_list(body, devs, n, err);
	free(body);
	return ret;
}

bool cm_daemon_state_serving(const char *state)
{
	return !strcmp(state, "waiting for peer") || !strcmp(state, "negotiating") ||
	       !strcmp(state, "running");
}
