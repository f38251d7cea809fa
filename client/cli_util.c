/* cli_util.c: parsing, formatting and I/O helpers of the CLI (cli.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void
oom(void)
{
	fputs("hsmkey: out of memory\n", stderr);
	exit(5);
}

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL) {
		oom();
	}
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL) {
		oom();
	}
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *q;

	if ((q = reallocarray(p, n == 0 ? 1 : n, size == 0 ? 1 : size)) ==
	    NULL) {
		oom();
	}
	return q;
}

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL) {
		oom();
	}
	return p;
}

int
cli_parse_u32(const char *s, int zero_ok, uint32_t *vp)
{
	unsigned long long v;
	char		  *end;

	*vp = 0;
	if (s == NULL || !isdigit((unsigned char)*s)) {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX ||
	    (v == 0 && !zero_ok)) {
		return -1;
	}
	*vp = (uint32_t)v;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

int
cli_parse_hex(const char *s, uint8_t **outp, size_t *lenp)
{
	size_t	 i, len = strlen(s);
	uint8_t *out;
	int	 hi, lo;

	*outp = NULL;
	*lenp = 0;
	if (len == 0 || len % 2 != 0) {
		return -1;
	}
	out = xmalloc(len / 2);
	for (i = 0; i < len / 2; i++) {
		if ((hi = hexval((unsigned char)s[2 * i])) < 0 ||
		    (lo = hexval((unsigned char)s[2 * i + 1])) < 0) {
			free(out);
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*outp = out;
	*lenp = len / 2;
	return 0;
}

int
cli_parse_expiry(const char *s, uint64_t *msp)
{
	static const char *formats[] = {
		"%Y-%m-%dT%H:%M:%SZ",
		"%Y-%m-%d",
		NULL,
	};
	struct tm   tm, want, back;
	const char *end;
	time_t	    t;
	int	    i;

	*msp = 0;
	if (s == NULL) {
		return -1;
	}
	if (strcmp(s, "never") == 0) {
		return 0;
	}
	/* strptime skips blanks and takes short fields: demand digits */
	if (strlen(s) != 10 && strlen(s) != 20) {
		return -1;
	}
	for (i = 0; formats[i] != NULL; i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, formats[i], &tm)) == NULL ||
		    *end != '\0') {
			continue;
		}
		if (tm.tm_year < 70 || tm.tm_year > 8099) {
			return -1;
		}
		want = tm; /* timegm() normalises tm in place */
		if ((t = timegm(&tm)) == (time_t)-1 || t < 0) {
			return -1;
		}
		/* refuse dates timegm had to normalise (Feb 30) */
		if (gmtime_r(&t, &back) == NULL ||
		    back.tm_mday != want.tm_mday ||
		    back.tm_mon != want.tm_mon ||
		    back.tm_hour != want.tm_hour ||
		    back.tm_min != want.tm_min || back.tm_sec != want.tm_sec) {
			return -1;
		}
		*msp = (uint64_t)t * 1000;
		return 0;
	}
	return -1;
}

int
cli_parse_timeout(const char *s, int *msp)
{
	unsigned long long whole, frac = 0, scale = 1000;
	const char	  *p;
	char		  *end;
	uint64_t	   ms;

	*msp = 0;
	if (s == NULL || !isdigit((unsigned char)*s)) {
		return -1;
	}
	errno = 0;
	whole = strtoull(s, &end, 10);
	if (errno != 0 || whole > 86400) {
		return -1;
	}
	p = end;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p)) {
			return -1;
		}
		for (; isdigit((unsigned char)*p); p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (unsigned long long)(*p - '0') * scale;
			}
		}
	}
	if (strcmp(p, "ms") == 0) {
		if (frac != 0) {
			return -1;
		}
		ms = whole;
	} else if (*p == '\0' || strcmp(p, "s") == 0) {
		ms = whole * 1000 + frac;
	} else {
		return -1;
	}
	if (ms < 1 || ms > 86400ULL * 1000) {
		return -1;
	}
	*msp = (int)ms;
	return 0;
}

int
cli_valid_grant(const char *g)
{
	static const char *ops[] = { "sign", "verify", "pubkey", "admin",
		NULL };
	const char	  *colon, *p;
	size_t		   oplen;
	int		   i;

	if (g == NULL || (colon = strchr(g, ':')) == NULL) {
		return 0;
	}
	oplen = (size_t)(colon - g);
	for (i = 0; ops[i] != NULL; i++) {
		if (strlen(ops[i]) == oplen &&
		    strncmp(g, ops[i], oplen) == 0) {
			break;
		}
	}
	if (ops[i] == NULL) {
		return 0;
	}
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 128) {
		return 0;
	}
	for (; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("._-*?[]!", *p) != NULL) {
			continue;
		}
		return 0;
	}
	return 1;
}

const char *
cli_fmt_time(uint64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t	  t;

	if (ms == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		snprintf(buf, len, "@%" PRIu64, ms);
	}
	return buf;
}

const char *
cli_fmt_duration(uint64_t s, char *buf, size_t len)
{
	if (s != 0 && s % 86400 == 0) {
		snprintf(buf, len, "%" PRIu64 "d", s / 86400);
	} else if (s != 0 && s % 3600 == 0) {
		snprintf(buf, len, "%" PRIu64 "h", s / 3600);
	} else if (s != 0 && s % 60 == 0) {
		snprintf(buf, len, "%" PRIu64 "m", s / 60);
	} else {
		snprintf(buf, len, "%" PRIu64 "s", s);
	}
	return buf;
}

void
cli_json_time(struct json *j, const char *key, uint64_t ms)
{
	char buf[64];

	json_key(j, key);
	if (ms == 0) {
		json_null(j);
	} else {
		json_string(j, cli_fmt_time(ms, buf, sizeof(buf)));
	}
}

void
cli_print_list(struct cli *c, const char *key, const char *none,
    const void *items, size_t n, size_t size,
    void (*item)(struct cli *c, const void *item))
{
	const char *p = items;
	size_t	    i;

	if (c->json) {
		json_object_begin(&c->j);
		json_key(&c->j, key);
		json_array_begin(&c->j);
	} else if (n == 0) {
		printf("%s\n", none);
	}
	for (i = 0; i < n; i++) {
		if (!c->json && i > 0) {
			printf("\n");
		}
		item(c, p + i * size);
	}
	if (c->json) {
		json_array_end(&c->j);
		json_object_end(&c->j);
	}
}

int
cli_read_input(const char *path, size_t max, uint8_t **bufp, size_t *lenp,
    char *err, size_t errlen)
{
	const char *what;
	struct stat sb;
	uint8_t	   *buf = NULL;
	size_t	    len = 0, cap;
	ssize_t	    n;
	int	    fd = STDIN_FILENO, r = -1;

	*bufp = NULL;
	*lenp = 0;
	if (path != NULL && strcmp(path, "-") != 0) {
		what = path;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			snprintf(err, errlen, "cannot open %s: %s", path,
			    strerror(errno));
			return -1;
		}
	} else {
		what = "stdin";
	}
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size > max) {
		snprintf(err, errlen,
		    "message is %jd bytes; the limit is %zu "
		    "bytes",
		    (intmax_t)sb.st_size, max);
		r = -2;
		goto out;
	}
	cap = 64 * 1024;
	buf = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				snprintf(err, errlen,
				    "message on %s is over "
				    "%zu bytes; the limit is %zu bytes",
				    what, max, max);
				r = -2;
				goto out;
			}
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "cannot read %s: %s", what,
			    strerror(errno));
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	if (len > max) {
		snprintf(err, errlen,
		    "message is %zu bytes; the limit is %zu "
		    "bytes",
		    len, max);
		r = -2;
		goto out;
	}
	/* success */
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (fd != STDIN_FILENO) {
		close(fd);
	}
	return r;
}

int
cli_write_all(FILE *f, const void *p, size_t len)
{
	if (len > 0 && fwrite(p, 1, len, f) != len) {
		return -1;
	}
	return fflush(f) == 0 ? 0 : -1;
}

int
cli_write_out(struct cli *c, const char *path, const void *p, size_t len)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (cli_write_all(stdout, p, len) != 0) {
			return cli_error(
			    c, HSMKEY_EINTERNAL, "", "cannot write to stdout");
		}
		return 0;
	}
	if ((f = fopen(path, "w")) == NULL) {
		return cli_error(
		    c, HSMKEY_EINVAL, "", "cannot create %s: %m", path);
	}
	if (cli_write_all(f, p, len) != 0) {
		fclose(f);
		return cli_error(c, HSMKEY_EINTERNAL, "",
		    "cannot write %s: "
		    "%m",
		    path);
	}
	if (fclose(f) != 0) {
		return cli_error(c, HSMKEY_EINTERNAL, "",
		    "cannot write %s: "
		    "%m",
		    path);
	}
	return 0;
}
