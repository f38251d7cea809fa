/*
 * json.h: a tiny streaming JSON writer: the CLI's --json output and the
 * service's key sets (proto/jose.c).
 * Commas and nesting are tracked; strings are escaped (RFC 8259).
 * Not thread-safe: one writer per stream.
 */
#ifndef HK_JSON_H
#define HK_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int   depth;
	int   first[JSON_MAX_DEPTH]; /* nothing written yet at depth */
	int   after_key;	     /* a key was written: no comma */
};

void json_init(struct json *j, FILE *f);
/* Writes s as a quoted, escaped JSON string (s NULL: null). */
void json_write_string(FILE *f, const char *s);

void json_object_begin(struct json *j);
void json_object_end(struct json *j); /* a newline after the last */
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *k);
void json_string(struct json *j, const char *s); /* NULL: null */
void json_u64(struct json *j, uint64_t v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Key and value in one call. */
void json_kv_string(struct json *j, const char *k, const char *s);
void json_kv_u64(struct json *j, const char *k, uint64_t v);
void json_kv_bool(struct json *j, const char *k, int v);

#endif /* HK_JSON_H */
