/* json.c: a tiny streaming JSON writer (see json.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

void
json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = 1;
	j->after_key = 0;
}

/* The characters with a two-character escape, and its second character. */
static const char esc_from[] = "\"\\\b\f\n\r\t";
static const char esc_to[] = "\"\\bfnrt";

void
json_write_string(FILE *f, const char *s)
{
	const unsigned char *p;
	const char	    *e;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((e = strchr(esc_from, *p)) != NULL) {
			fputc('\\', f);
			fputc(esc_to[e - esc_from], f);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
		} else {
			fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Before any value: a comma unless it is the first at this depth or the
 * value of a key. */
static void
sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (!j->first[j->depth]) {
		fputc(',', j->f);
	}
	j->first[j->depth] = 0;
}

static void
open_(struct json *j, int c)
{
	sep(j);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH) {
		j->depth++;
	}
	j->first[j->depth] = 1;
}

static void
close_(struct json *j, int c)
{
	fputc(c, j->f);
	if (j->depth > 0) {
		j->depth--;
	}
	if (j->depth == 0) {
		fputc('\n', j->f);
	}
}

void
json_object_begin(struct json *j)
{
	open_(j, '{');
}

void
json_object_end(struct json *j)
{
	close_(j, '}');
}

void
json_array_begin(struct json *j)
{
	open_(j, '[');
}

void
json_array_end(struct json *j)
{
	close_(j, ']');
}

void
json_key(struct json *j, const char *k)
{
	sep(j);
	json_write_string(j->f, k);
	fputc(':', j->f);
	j->after_key = 1;
}

void
json_string(struct json *j, const char *s)
{
	sep(j);
	json_write_string(j->f, s);
}

void
json_u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRIu64, v);
}

void
json_bool(struct json *j, int v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
}

void
json_null(struct json *j)
{
	sep(j);
	fputs("null", j->f);
}

void
json_kv_string(struct json *j, const char *k, const char *s)
{
	json_key(j, k);
	json_string(j, s);
}

void
json_kv_u64(struct json *j, const char *k, uint64_t v)
{
	json_key(j, k);
	json_u64(j, v);
}

void
json_kv_bool(struct json *j, const char *k, int v)
{
	json_key(j, k);
	json_bool(j, v);
}
