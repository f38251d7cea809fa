/* credentials.c: the client credentials file (see credentials.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "credentials.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "wire.h"

struct parse_state {
	struct hk_credentials *c;
	char		      *err;
	size_t		       errlen;
	int		       r; /* first error, or 0 */
	int		       have_id;
	int		       have_secret;
};

static int parse_fail(struct parse_state *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
parse_fail(struct parse_state *st, int r, const char *fmt, ...)
{
	va_list ap;

	if (st->r == 0) {
		st->r = r;
		va_start(ap, fmt);
		vsnprintf(st->err, st->errlen, fmt, ap);
		va_end(ap);
	}
	return 0; /* stop parsing */
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state    *st = user;
	struct hk_credentials *c = st->c;
	unsigned long long     v;
	uint8_t		      *secret = NULL;
	size_t		       len = 0;
	char		      *end;
	int		       r;

	if (strcmp(section, "client") != 0) {
		return 1; /* other sections are not ours */
	}
	if (strcmp(name, "id") == 0) {
		if (!hk_valid_client_id(value)) {
			return parse_fail(st, HSMKEY_ECREDENTIALS,
			    "id '%s' is not a valid client id", value);
		}
		snprintf(c->id, sizeof(c->id), "%s", value);
		st->have_id = 1;
	} else if (strcmp(name, "secret") == 0) {
		if ((r = hk_base64_decode(value, &secret, &len)) != 0) {
			if (r == HK_ERR_NOMEM) {
				return parse_fail(
				    st, HSMKEY_ENOMEM, "out of memory");
			}
			return parse_fail(st, HSMKEY_ECREDENTIALS,
			    "secret is not valid base64");
		}
		if (len < HK_SECRET_MIN || len > HK_SECRET_MAX) {
			explicit_bzero(secret, len);
			free(secret);
			return parse_fail(st, HSMKEY_ECREDENTIALS,
			    "secret is %zu bytes, expected %d to %d", len,
			    HK_SECRET_MIN, HK_SECRET_MAX);
		}
		if (c->secret != NULL) {
			explicit_bzero(c->secret, c->secret_len);
			free(c->secret);
		}
		c->secret = secret;
		c->secret_len = len;
		st->have_secret = 1;
	} else if (strcmp(name, "secret_no") == 0) {
		errno = 0;
		if (*value < '1' || *value > '9' ||
		    (v = strtoull(value, &end, 10)) == 0 || errno != 0 ||
		    *end != '\0' || v > UINT32_MAX) {
			return parse_fail(st, HSMKEY_ECREDENTIALS,
			    "secret_no '%s' is not a number 1..4294967295",
			    value);
		}
		c->secret_no = (uint32_t)v;
	} else if (strcmp(name, "connect") == 0) {
		free(c->connect);
		if ((c->connect = strdup(value)) == NULL) {
			return parse_fail(st, HSMKEY_ENOMEM, "out of memory");
		}
	}
	/* unknown keys are ignored: newer files may carry more */
	return 1;
}

static int
read_file(const char *path, char **bufp, char *err, size_t errlen)
{
	struct stat sb;
	char	   *buf = NULL;
	size_t	    len = 0;
	ssize_t	    n;
	int	    fd = -1, r = HSMKEY_ECREDENTIALS;

	*bufp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (sb.st_size > HK_CREDENTIALS_MAX) {
		snprintf(
		    err, errlen, "larger than %d bytes", HK_CREDENTIALS_MAX);
		goto out;
	}
	if ((buf = calloc(1, HK_CREDENTIALS_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = HSMKEY_ENOMEM;
		goto out;
	}
	while (len < HK_CREDENTIALS_MAX) {
		n = read(fd, buf + len, HK_CREDENTIALS_MAX - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "contains a NUL byte");
		goto out;
	}
	/* success */
	*bufp = buf;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, HK_CREDENTIALS_MAX + 1);
		free(buf);
	}
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

int
hk_credentials_load(
    const char *path, struct hk_credentials *c, char *err, size_t errlen)
{
	struct parse_state st;
	char		  *buf = NULL, why[200];
	int		   r = HSMKEY_ECREDENTIALS, line;

	memset(c, 0, sizeof(*c)); /* secret_no 0: the file names none */
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen,
		    "no credentials file: give --credentials "
		    "FILE or set $HSMKEY_CREDENTIALS");
		return HSMKEY_ECREDENTIALS;
	}
	if ((r = read_file(path, &buf, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "credentials file %s: %s", path, why);
		goto out;
	}
	memset(&st, 0, sizeof(st));
	st.c = c;
	st.err = why;
	st.errlen = sizeof(why);
	line = ini_parse_string(buf, handler, &st);
	if (st.r != 0) {
		r = st.r;
		snprintf(err, errlen, "credentials file %s: %s", path, why);
		goto out;
	}
	r = HSMKEY_ECREDENTIALS;
	if (line != 0) {
		snprintf(err, errlen,
		    "credentials file %s: syntax error on "
		    "line %d",
		    path, line);
		goto out;
	}
	if (!st.have_id || !st.have_secret) {
		snprintf(err, errlen,
		    "credentials file %s: no %s in the "
		    "[client] section",
		    path, !st.have_id ? "id" : "secret");
		goto out;
	}
	/* success */
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, HK_CREDENTIALS_MAX + 1);
		free(buf);
	}
	return r;
}

void
hk_credentials_clear(struct hk_credentials *c)
{
	if (c == NULL) {
		return;
	}
	if (c->secret != NULL) {
		explicit_bzero(c->secret, c->secret_len);
		free(c->secret);
	}
	free(c->connect);
	explicit_bzero(c, sizeof(*c));
}

int
hk_file_sig_get(const char *path, struct hk_file_sig *sig)
{
	struct stat sb;

	memset(sig, 0, sizeof(*sig));
	if (stat(path, &sb) != 0) {
		return -1;
	}
	sig->dev = (unsigned long long)sb.st_dev;
	sig->ino = (unsigned long long)sb.st_ino;
	sig->size = (unsigned long long)sb.st_size;
	sig->mtime_s = (long long)sb.st_mtim.tv_sec;
	sig->mtime_ns = (long long)sb.st_mtim.tv_nsec;
	sig->ctime_s = (long long)sb.st_ctim.tv_sec;
	sig->ctime_ns = (long long)sb.st_ctim.tv_nsec;
	return 0;
}

int
hk_file_sig_equal(const struct hk_file_sig *a, const struct hk_file_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
	    a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}
