/* audit_format.c: the audit line format, formatted and parsed by one
 * table of fields (see audit_format.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit_format.h"
#include "envelope.h"
#include "hk_err.h"
#include "wire.h"

/* AF_REASON: an optional string of printable UTF-8, absent when empty. */
enum afield_type { AF_NUM, AF_STR, AF_REASON };

struct afield {
	const char	*name;
	enum afield_type type;
	size_t		 off; /* in struct hk_audit_line */
};

#define AF_N(f)                                               \
	{                                                     \
#f, AF_NUM, offsetof(struct hk_audit_line, f) \
	}
#define AF_S(f)                                               \
	{                                                     \
#f, AF_STR, offsetof(struct hk_audit_line, f) \
	}
#define AF_R(f)                                                  \
	{                                                        \
#f, AF_REASON, offsetof(struct hk_audit_line, f) \
	}

/* The two field sets, in the order they are written.  Both start with
 * seq, time and end with prev; the fields between make a line's body. */
static const struct afield event_fields[] = {
	AF_N(seq),
	AF_S(time),
	AF_S(client),
	AF_N(secret),
	AF_S(op),
	AF_S(key),
	AF_N(version),
	AF_N(items),
	AF_S(status),
	AF_S(nonce),
	AF_S(sigs),
	AF_R(reason),
	AF_S(prev),
	{ NULL, AF_NUM, 0 },
};
static const struct afield checkpoint_fields[] = {
	AF_N(seq),
	AF_S(time),
	AF_S(op),
	AF_S(key),
	AF_N(version),
	AF_S(head),
	AF_S(sig),
	AF_S(prev),
	{ NULL, AF_NUM, 0 },
};
#define AF_NEVENT (sizeof(event_fields) / sizeof(event_fields[0]) - 1)
#define AF_NCHECKPOINT \
	(sizeof(checkpoint_fields) / sizeof(checkpoint_fields[0]) - 1)

static uint64_t *
num_of(struct hk_audit_line *l, const struct afield *f)
{
	return (uint64_t *)(void *)((char *)l + f->off);
}

static struct hk_audit_str *
str_of(struct hk_audit_line *l, const struct afield *f)
{
	return (struct hk_audit_str *)(void *)((char *)l + f->off);
}

/* ---- formatting ---------------------------------------------------------- */

struct out {
	char  *p;
	size_t cap, len;
	int    over;
};

static void
put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int	n;

	if (o->over) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->over = 1;
		return;
	}
	o->len += (size_t)n;
}

/* Writes fields[0..n) of l, each after "{" (the first of a line) or ",". */
static void
put_fields(struct out *o, const struct afield *fields, size_t n,
    struct hk_audit_line *l, int opens)
{
	struct hk_audit_str *s;
	size_t		     i;

	for (i = 0; i < n; i++) {
		const struct afield *f = &fields[i];

		if (f->type == AF_REASON && str_of(l, f)->len == 0) {
			continue; /* absent */
		}
		put(o, "%s\"%s\":", opens && i == 0 ? "{" : ",", f->name);
		if (f->type == AF_NUM) {
			put(o, "%" PRIu64, *num_of(l, f));
		} else {
			s = str_of(l, f);
			put(o, "\"%.*s\"", (int)s->len, s->s);
		}
	}
}

static int
out_end(struct out *o)
{
	if (o->cap == 0 || o->over) {
		return HK_ERR_TOO_LARGE;
	}
	return (int)o->len;
}

/* Copies s keeping only [A-Za-z0-9._@:+/=-] (anything else reads '?'), so
 * that no line ever needs a JSON escape. */
static void
safe_copy(char *dst, size_t cap, const char *s, struct hk_audit_str *v)
{
	size_t i;

	for (i = 0;
	     s != NULL && s[i] != '\0' && i + 1 < cap && i < HK_AUDIT_STR_MAX;
	     i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("._@:+/=-", c) != NULL) {
			dst[i] = c;
		} else {
			dst[i] = '?';
		}
	}
	dst[i] = '\0';
	v->s = dst;
	v->len = i;
}

static void
hex(char *out, const uint8_t *p, size_t len, struct hk_audit_str *v)
{
	static const char digits[] = "0123456789abcdef";
	size_t		  i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
	v->s = out;
	v->len = 2 * len;
}

/* The length of the UTF-8 sequence at s (n bytes left) if it is
 * well-formed (no overlong form, surrogate or code point over U+10FFFF)
 * and not a C1 control; else 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	/* lead byte range, length, and the range of the second byte */
	static const struct {
		unsigned char lo, hi, len, min2, max2;
	} leads[] = {
		{ 0xc2, 0xc2, 2, 0xa0, 0xbf }, /* U+0080..U+009F are C1 */
		{ 0xc3, 0xdf, 2, 0x80, 0xbf },
		{ 0xe0, 0xe0, 3, 0xa0, 0xbf },
		{ 0xe1, 0xec, 3, 0x80, 0xbf },
		{ 0xed, 0xed, 3, 0x80, 0x9f }, /* no surrogates */
		{ 0xee, 0xef, 3, 0x80, 0xbf },
		{ 0xf0, 0xf0, 4, 0x90, 0xbf },
		{ 0xf1, 0xf3, 4, 0x80, 0xbf },
		{ 0xf4, 0xf4, 4, 0x80, 0x8f },
	};
	size_t i, k;

	for (i = 0; i < sizeof(leads) / sizeof(leads[0]); i++) {
		if (s[0] < leads[i].lo || s[0] > leads[i].hi) {
			continue;
		}
		if (n < leads[i].len || s[1] < leads[i].min2 ||
		    s[1] > leads[i].max2) {
			return 0;
		}
		for (k = 2; k < leads[i].len; k++) {
			if (s[k] < 0x80 || s[k] > 0xbf) {
				return 0;
			}
		}
		return leads[i].len;
	}
	return 0;
}

int
hk_audit_reason_check(const char *s, size_t len, const char **whyp)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     i = 0, n;

	*whyp = NULL;
	if (len == 0 || len > HK_AUDIT_STR_MAX) {
		*whyp = len == 0 ? "it is empty" : "it is over 200 bytes";
		return HK_ERR_INVALID;
	}
	while (i < len) {
		if (p[i] < 0x20 || p[i] == 0x7f) {
			*whyp = "it holds a control character";
			return HK_ERR_INVALID;
		}
		if (p[i] == '"' || p[i] == '\\') {
			*whyp = "it holds a double quote or a backslash";
			return HK_ERR_INVALID;
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_seq(p + i, len - i)) == 0) {
			*whyp = "it is not printable UTF-8";
			return HK_ERR_INVALID;
		}
		i += n;
	}
	return 0;
}

void
hk_audit_time(char out[HK_AUDIT_TIME_LEN + 1], uint64_t ms)
{
	time_t	  t = (time_t)(ms / 1000);
	struct tm tm;
	char	  s[32];
	size_t	  n;

	gmtime_r(&t, &tm);
	n = strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	if (n + 5 > HK_AUDIT_TIME_LEN) {
		n = HK_AUDIT_TIME_LEN - 5; /* after the year 9999 */
	}
	snprintf(out, HK_AUDIT_TIME_LEN + 1, "%.*s.%03uZ", (int)n, s,
	    (unsigned int)(ms % 1000));
}

int
hk_audit_format_event(char *out, size_t cap, const struct hk_audit_event *ev)
{
	struct hk_audit_line l;
	struct out	     o = { out, cap, 0, 0 };
	char		     client[HK_AUDIT_STR_MAX + 1];
	char	    op[HK_AUDIT_STR_MAX + 1], key[HK_AUDIT_STR_MAX + 1];
	char	    nonce[2 * 32 + 1], sigs[2 * 32 + 1];
	const char *status;

	memset(&l, 0, sizeof(l));
	safe_copy(client, sizeof(client),
	    ev->client != NULL && *ev->client != '\0' ? ev->client : "?",
	    &l.client);
	safe_copy(op, sizeof(op), ev->op, &l.op);
	safe_copy(key, sizeof(key), ev->key, &l.key);
	hex(nonce, ev->nonce,
	    ev->nonce != NULL && ev->nonce_len <= 32 ? ev->nonce_len : 0,
	    &l.nonce);
	hex(sigs, ev->sigs, ev->sigs != NULL ? 32 : 0, &l.sigs);
	if ((status = hk_status_name(ev->status)) == NULL) {
		status = "UNSPECIFIED";
	}
	l.status.s = status;
	l.status.len = strlen(status);
	if (ev->reason != NULL && *ev->reason != '\0') {
		const char *why;

		/* the service checked it; anything else is not written */
		l.reason.s = hk_audit_reason_check(
				 ev->reason, strlen(ev->reason), &why) == 0
		    ? ev->reason
		    : "?";
		l.reason.len = strlen(l.reason.s);
	}
	l.secret = ev->secret;
	l.version = ev->version;
	l.items = ev->items;
	put_fields(&o, event_fields + 2, AF_NEVENT - 3, &l, 0);
	return out_end(&o);
}

int
hk_audit_format_checkpoint(char *out, size_t cap, uint32_t version,
    const uint8_t head[HK_AUDIT_HASH_LEN], const char *sig)
{
	struct hk_audit_line l;
	struct out	     o = { out, cap, 0, 0 };
	char		     h[2 * HK_AUDIT_HASH_LEN + 1];

	memset(&l, 0, sizeof(l));
	l.op.s = "checkpoint";
	l.op.len = strlen(l.op.s);
	l.key.s = HK_AUDIT_KEY_NAME;
	l.key.len = strlen(l.key.s);
	l.version = version;
	hex(h, head, HK_AUDIT_HASH_LEN, &l.head);
	l.sig.s = sig;
	l.sig.len = strlen(sig);
	put_fields(&o, checkpoint_fields + 2, AF_NCHECKPOINT - 3, &l, 0);
	return out_end(&o);
}

int
hk_audit_format_line(char *out, size_t cap, uint64_t seq, const char *ts,
    const char *body, const uint8_t prev[HK_AUDIT_HASH_LEN])
{
	struct hk_audit_line l;
	struct out	     o = { out, cap, 0, 0 };
	char		     p[2 * HK_AUDIT_HASH_LEN + 1];

	if (o.cap > HK_AUDIT_LINE_MAX) {
		o.cap = HK_AUDIT_LINE_MAX;
	}
	memset(&l, 0, sizeof(l));
	l.seq = seq;
	l.time.s = ts;
	l.time.len = strlen(ts);
	hex(p, prev, HK_AUDIT_HASH_LEN, &l.prev);
	put_fields(&o, event_fields, 2, &l, 1);
	put(&o, "%s", body);
	put_fields(&o, event_fields + AF_NEVENT - 1, 1, &l, 0);
	put(&o, "}");
	return out_end(&o);
}

int
hk_audit_chain_step(
    const char *line, size_t len, uint8_t hash[HK_AUDIT_HASH_LEN])
{
	if (hk_sha256((const uint8_t *)line, len, hash) != 0) {
		return HK_ERR_INTERNAL;
	}
	return 0;
}

static uint8_t *
put_be(uint8_t *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++) {
		*p++ = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	}
	return p;
}

int
hk_audit_checkpoint_input(uint64_t seq, const uint8_t head[HK_AUDIT_HASH_LEN],
    uint32_t version, const char *ts, size_t ts_len,
    uint8_t in[HK_AUDIT_CHECKPOINT_INPUT_LEN])
{
	static const char ctx[] = HK_AUDIT_CHECKPOINT_CONTEXT;
	uint8_t		 *p = in;

	if (ts_len != HK_AUDIT_TIME_LEN) {
		return HK_ERR_INVALID;
	}
	memcpy(p, ctx, sizeof(ctx)); /* with its NUL */
	p += sizeof(ctx);
	p = put_be(p, seq, 8);
	memcpy(p, head, HK_AUDIT_HASH_LEN);
	p += HK_AUDIT_HASH_LEN;
	p = put_be(p, version, 4);
	memcpy(p, ts, HK_AUDIT_TIME_LEN);
	return 0;
}

int
hk_audit_checkpoint_digest(uint64_t seq, const uint8_t head[HK_AUDIT_HASH_LEN],
    uint32_t version, const char *ts, size_t ts_len, uint8_t digest[32])
{
	uint8_t in[HK_AUDIT_CHECKPOINT_INPUT_LEN];
	int	r;

	if ((r = hk_audit_checkpoint_input(
		 seq, head, version, ts, ts_len, in)) != 0) {
		return r;
	}
	return hk_sha256(in, sizeof(in), digest) != 0 ? HK_ERR_INTERNAL : 0;
}

/* ---- the strict parser ---------------------------------------------------- */

struct cursor {
	const char *p, *end;
	char	   *why;
	size_t	    wlen;
};

static int why_set(struct cursor *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
why_set(struct cursor *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, c->wlen, fmt, ap);
	va_end(ap);
	return HK_ERR_DECODE;
}

/* The byte at p, NUL at the end of the line. */
static char
at(const struct cursor *c, const char *p)
{
	return p < c->end ? *p : '\0';
}

static const char *
find_quote(const struct cursor *c, const char *p)
{
	return p < c->end ? memchr(p, '"', (size_t)(c->end - p)) : NULL;
}

static int
is_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static int
is_time(const char *s, size_t len)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t		  i;

	if (len != HK_AUDIT_TIME_LEN) {
		return 0;
	}
	for (i = 0; i < len; i++) {
		if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9')
				  : s[i] != pat[i]) {
			return 0;
		}
	}
	return 1;
}

/* Only what the service writes: [A-Za-z0-9._@:+/=?-] and no escapes. */
static int
is_plain(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') ||
			strchr("._@:+/=?-", c) != NULL)) {
			return 0;
		}
	}
	return 1;
}

static void
unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi =
		    s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
		int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0'
					     : s[2 * i + 1] - 'a' + 10;

		out[i] = (uint8_t)(hi << 4 | lo);
	}
}

static int
parse_number(struct cursor *c, const struct afield *f, uint64_t *np)
{
	const char *p = c->p;
	uint64_t    n = 0;

	if (at(c, p) < '0' || at(c, p) > '9' ||
	    (at(c, p) == '0' && at(c, p + 1) >= '0' && at(c, p + 1) <= '9')) {
		return why_set(c, "\"%s\" is not a number", f->name);
	}
	for (; at(c, p) >= '0' && at(c, p) <= '9'; p++) {
		if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
			return why_set(c, "\"%s\" is too large", f->name);
		}
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*np = n;
	c->p = p;
	return 0;
}

static int
parse_string(struct cursor *c, const struct afield *f, struct hk_audit_str *v)
{
	const char *q;

	if (at(c, c->p) != '"' || (q = find_quote(c, c->p + 1)) == NULL) {
		return why_set(c, "\"%s\" is not a string", f->name);
	}
	v->s = c->p + 1;
	v->len = (size_t)(q - c->p - 1);
	if (!is_plain(v->s, v->len)) {
		return why_set(c,
		    "\"%s\" holds a character the service never writes",
		    f->name);
	}
	c->p = q + 1;
	return 0;
}

/* A reason: no quote can be inside it, so the next one ends it. */
static int
parse_reason(struct cursor *c, const struct afield *f, struct hk_audit_str *v)
{
	const char *q, *why;

	if (at(c, c->p) != '"' || (q = find_quote(c, c->p + 1)) == NULL) {
		return why_set(c, "\"%s\" is not a string", f->name);
	}
	v->s = c->p + 1;
	v->len = (size_t)(q - c->p - 1);
	if (hk_audit_reason_check(v->s, v->len, &why) != 0) {
		return why_set(c, "\"%s\" is not one the service writes: %s",
		    f->name, why);
	}
	c->p = q + 1;
	return 0;
}

/* Parses one field "name":value at c->p into l, expecting f. */
static int
parse_field(struct cursor *c, const struct afield *f, struct hk_audit_line *l)
{
	const char *p = c->p, *q;
	size_t	    nlen = strlen(f->name);

	if (at(c, p) != '"' || (size_t)(c->end - p) < nlen + 3 ||
	    strncmp(p + 1, f->name, nlen) != 0 || p[1 + nlen] != '"' ||
	    p[2 + nlen] != ':') {
		q = at(c, p) == '"' ? find_quote(c, p + 1) : NULL;
		if (q != NULL) {
			return why_set(c,
			    "field \"%.*s\" where \"%s\" belongs",
			    (int)(q - p - 1 > 32 ? 32 : q - p - 1), p + 1,
			    f->name);
		}
		return why_set(c, "field \"%s\" missing", f->name);
	}
	c->p = p + 3 + nlen;
	if (f->type == AF_NUM) {
		return parse_number(c, f, num_of(l, f));
	}
	if (f->type == AF_REASON) {
		return parse_reason(c, f, str_of(l, f));
	}
	return parse_string(c, f, str_of(l, f));
}

/* 1 if the next field (after its comma) is f: an optional one is there. */
static int
next_is(const struct cursor *c, const struct afield *f)
{
	size_t nlen = strlen(f->name);

	return at(c, c->p) == ',' && (size_t)(c->end - c->p) > nlen + 3 &&
	    c->p[1] == '"' && strncmp(c->p + 2, f->name, nlen) == 0 &&
	    c->p[2 + nlen] == '"' && c->p[3 + nlen] == ':';
}

/* 1 if the third field (after two commas) is "op": a checkpoint. */
static int
third_is_op(const struct cursor *c)
{
	const char *p, *third = c->p;
	int	    commas = 0;

	for (p = c->p; p < c->end && commas < 2; p++) {
		if (*p == ',') {
			commas++;
			third = p + 1;
		}
	}
	return (size_t)(c->end - third) >= 5 &&
	    strncmp(third, "\"op\":", 5) == 0;
}

/* The fields of the set, in order, then the closing brace. */
static int
parse_fields(
    struct cursor *c, const struct afield *fields, struct hk_audit_line *l)
{
	const struct afield *f;
	int		     r;

	for (f = fields; f->name != NULL; f++) {
		if (f->type == AF_REASON && !next_is(c, f)) {
			continue; /* an optional field that is absent */
		}
		if (f != fields) {
			if (at(c, c->p) != ',') {
				return why_set(c, "%s after \"%s\"",
				    at(c, c->p) == '}' ? "fields missing"
						       : "no comma",
				    f[-1].name);
			}
			c->p++;
		}
		if ((r = parse_field(c, f, l)) != 0) {
			return r;
		}
	}
	if (at(c, c->p) == ',') {
		return why_set(c, "unknown or duplicate field after \"prev\"");
	}
	if (at(c, c->p) != '}' || c->p + 1 != c->end) {
		return why_set(c, "trailing bytes after the object");
	}
	return 0;
}

static int
str_is(const struct hk_audit_str *v, const char *s)
{
	return v->len == strlen(s) && strncmp(v->s, s, v->len) == 0;
}

static int
check_checkpoint(struct cursor *c, struct hk_audit_line *l)
{
	if (!str_is(&l->op, "checkpoint")) {
		return why_set(
		    c, "\"op\" of a checkpoint is not \"checkpoint\"");
	}
	if (!str_is(&l->key, HK_AUDIT_KEY_NAME)) {
		return why_set(c, "checkpoint not by " HK_AUDIT_KEY_NAME);
	}
	if (l->head.len != 64 || !is_hex(l->head.s, l->head.len)) {
		return why_set(c, "\"head\" is not 64 hex digits");
	}
	if (strncmp(l->head.s, l->prev.s, 64) != 0) {
		return why_set(c, "\"head\" differs from \"prev\"");
	}
	if (l->version == 0 || l->version > UINT32_MAX) {
		return why_set(c, "checkpoint key version is not 1 or more");
	}
	unhex(l->head.s, l->head_hash, HK_AUDIT_HASH_LEN);
	return 0;
}

static int
check_event(struct cursor *c, const struct hk_audit_line *l)
{
	if ((l->nonce.len != 0 && l->nonce.len != 32) ||
	    !is_hex(l->nonce.s, l->nonce.len)) {
		return why_set(c, "\"nonce\" is not empty or 32 hex digits");
	}
	if ((l->sigs.len != 0 && l->sigs.len != 64) ||
	    !is_hex(l->sigs.s, l->sigs.len)) {
		return why_set(c, "\"sigs\" is not empty or 64 hex digits");
	}
	if (l->op.len == 0 || l->client.len == 0 || l->status.len == 0) {
		return why_set(c, "empty \"op\", \"client\" or \"status\"");
	}
	if (l->secret > UINT32_MAX || l->version > UINT32_MAX ||
	    l->items > UINT32_MAX) {
		return why_set(c, "a number is larger than 32 bits");
	}
	return 0;
}

int
hk_audit_parse(const char *text, size_t len, struct hk_audit_line *l,
    char *why, size_t wlen)
{
	struct cursor c = { text, text + len, why, wlen };
	int	      r;

	memset(l, 0, sizeof(*l));
	if (len > HK_AUDIT_READ_MAX) {
		return why_set(
		    &c, "line longer than %d bytes", HK_AUDIT_READ_MAX);
	}
	if (memchr(text, '\0', len) != NULL) {
		return why_set(&c, "NUL byte in the line");
	}
	if (at(&c, c.p) != '{') {
		return why_set(&c, "not a JSON object");
	}
	c.p++;
	l->checkpoint = third_is_op(&c);
	if ((r = parse_fields(&c,
		 l->checkpoint ? checkpoint_fields : event_fields, l)) != 0) {
		return r;
	}
	if (!is_time(l->time.s, l->time.len)) {
		return why_set(&c, "\"time\" is not YYYY-MM-DDTHH:MM:SS.mmmZ");
	}
	if (l->prev.len != 64 || !is_hex(l->prev.s, l->prev.len)) {
		return why_set(&c, "\"prev\" is not 64 hex digits");
	}
	unhex(l->prev.s, l->prev_hash, HK_AUDIT_HASH_LEN);
	return l->checkpoint ? check_checkpoint(&c, l) : check_event(&c, l);
}

int
hk_audit_line_seq(const char *text, size_t len, uint64_t *seqp)
{
	static const char pre[] = "{\"seq\":";
	size_t		  i;
	uint64_t	  n = 0;

	*seqp = 0;
	if (len <= sizeof(pre) - 1 ||
	    memcmp(text, pre, sizeof(pre) - 1) != 0 ||
	    text[sizeof(pre) - 1] < '0' || text[sizeof(pre) - 1] > '9') {
		return HK_ERR_DECODE;
	}
	for (i = sizeof(pre) - 1; i < len && text[i] >= '0' && text[i] <= '9';
	     i++) {
		if (n > (UINT64_MAX - (uint64_t)(text[i] - '0')) / 10) {
			n = UINT64_MAX; /* as strtoull saturates */
			break;
		}
		n = n * 10 + (uint64_t)(text[i] - '0');
	}
	*seqp = n;
	return 0;
}
