/*
 * audit_format.h: the audit log's line format, written once for the
 * service that writes it (service/audit.c) and `hsmkey audit verify` that
 * checks it (README "Audit log").  One JSON object a line, with exactly
 * one of two fixed field sets in a fixed order:
 *
 *   {"seq":N,"time":"2024-05-01T12:00:00.123Z","client":"ID","secret":N,
 *    "op":"sign","key":"NAME","version":N,"items":N,"status":"OK",
 *    "nonce":"HEX","sigs":"HEX","reason":"TEXT","prev":"HEX"}
 *   {"seq":N,"time":"...","op":"checkpoint","key":"hsmkey-audit",
 *    "version":V,"head":"HEX","sig":"BASE64","prev":"HEX"}
 *
 * "reason" is optional: only a change made with one (Request.reason) has
 * it, never empty, and it may hold printable UTF-8 (hk_audit_reason_check())
 * where every other string holds [A-Za-z0-9._@:+/=?-] only; lines without
 * it are the format of old logs.
 *
 * prev is the SHA-256 of the previous line (without its newline), 64 zeros
 * on the first line of a chain.  A checkpoint is an ECDSA P-256 signature,
 * with the token key HK_AUDIT_KEY_NAME, over SHA-256 of
 *   HK_AUDIT_CHECKPOINT_CONTEXT NUL || u64 seq || head (32 bytes) ||
 *   u32 version || time (the 24 ASCII bytes of its "time")
 * integers big-endian, head equal to prev: so every byte of a checkpoint
 * line but the signature is signed.
 *
 * A line is made of a "body" (the fields between "time" and "prev",
 * formatted when an event is queued) and its seq, time and prev (added
 * when the line is written).  Thread-safe (no state).
 */
#ifndef HK_AUDIT_FORMAT_H
#define HK_AUDIT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define HK_AUDIT_KEY_NAME	    "hsmkey-audit"
#define HK_AUDIT_CHECKPOINT_CONTEXT "hsmkey.v1 audit checkpoint"
#define HK_AUDIT_TIME_LEN	    24	 /* "2024-05-01T12:00:00.123Z" */
#define HK_AUDIT_STR_MAX	    200	 /* a string field is cut there */
#define HK_AUDIT_BODY_MAX	    1088 /* any body fits, with its NUL */
#define HK_AUDIT_LINE_MAX	    (HK_AUDIT_BODY_MAX + 512) /* written */
#define HK_AUDIT_READ_MAX	    65536 /* no reader takes a longer line */
#define HK_AUDIT_HASH_LEN	    32
/* The checkpoint signing input's length (context with its NUL). */
#define HK_AUDIT_CHECKPOINT_INPUT_LEN \
	(sizeof(HK_AUDIT_CHECKPOINT_CONTEXT) + 8 + 32 + 4 + HK_AUDIT_TIME_LEN)

/* One event as the service logs it; nothing is kept. */
struct hk_audit_event {
	const char    *client; /* client id, "?" when NULL or empty */
	uint32_t       secret; /* secret number named, or that matched */
	const char    *op;     /* "sign", "rotate", "replay", ... */
	const char    *key;    /* key name or client id, "" if none */
	uint32_t       version;
	uint32_t       items;
	int	       status; /* hk_status of the reply */
	const uint8_t *nonce;  /* request nonce, NULL if none */
	size_t	       nonce_len;
	const uint8_t *sigs;   /* SHA-256 of the signatures, or NULL */
	const char    *reason; /* why (a change's), or NULL: no member */
};

/* A string field of a parsed line: points into the line, not terminated. */
struct hk_audit_str {
	const char *s;
	size_t	    len;
};

/* A line as hk_audit_parse() read it; the strings point into the line. */
struct hk_audit_line {
	int		    checkpoint; /* 1: the checkpoint field set */
	uint64_t	    seq;
	struct hk_audit_str time;
	struct hk_audit_str client; /* events only */
	uint64_t	    secret; /* events only */
	struct hk_audit_str op;
	struct hk_audit_str key;
	uint64_t	    version;
	uint64_t	    items;  /* events only */
	struct hk_audit_str status; /* events only */
	struct hk_audit_str nonce;  /* events only */
	struct hk_audit_str sigs;   /* events only */
	struct hk_audit_str reason; /* events only; len 0: none */
	struct hk_audit_str head;   /* checkpoints only */
	struct hk_audit_str sig;    /* checkpoints only */
	struct hk_audit_str prev;
	uint8_t		    prev_hash[HK_AUDIT_HASH_LEN]; /* prev decoded */
	uint8_t		    head_hash[HK_AUDIT_HASH_LEN]; /* head decoded */
};

/* ISO 8601 UTC with milliseconds of ms since the epoch into out. */
void hk_audit_time(char out[HK_AUDIT_TIME_LEN + 1], uint64_t ms);

/*
 * 0 if s (len bytes) may be a reason: 1 to HK_AUDIT_STR_MAX bytes of
 * well-formed UTF-8 with no control character (C0, DEL, C1), no '"' and no
 * backslash, so that it needs no JSON escape; else HK_ERR_INVALID and *whyp
 * says what is wrong (static).
 */
int hk_audit_reason_check(const char *s, size_t len, const char **whyp);

/* The body of an event (strings outside [A-Za-z0-9._@:+/=-] read '?', cut
 * at HK_AUDIT_STR_MAX; a reason hk_audit_reason_check() refuses reads
 * "?").  Returns its length, or HK_ERR_TOO_LARGE. */
int
hk_audit_format_event(char *out, size_t cap, const struct hk_audit_event *ev);

/* The body of a checkpoint by audit key version over head, with sig the
 * base64 signature.  Returns its length, or HK_ERR_TOO_LARGE. */
int hk_audit_format_checkpoint(char *out, size_t cap, uint32_t version,
    const uint8_t head[HK_AUDIT_HASH_LEN], const char *sig);

/* The line seq, time ts, body, prev (no newline) into out (NUL-terminated).
 * Returns its length, or HK_ERR_TOO_LARGE at cap or HK_AUDIT_LINE_MAX. */
int hk_audit_format_line(char *out, size_t cap, uint64_t seq, const char *ts,
    const char *body, const uint8_t prev[HK_AUDIT_HASH_LEN]);

/* The chain step: hash = SHA-256 of the line (len bytes, no newline);
 * the next line's prev.  0 or HK_ERR_INTERNAL. */
int hk_audit_chain_step(
    const char *line, size_t len, uint8_t hash[HK_AUDIT_HASH_LEN]);

/* The checkpoint signing input (see above) into in; ts must be
 * HK_AUDIT_TIME_LEN bytes (HK_ERR_INVALID otherwise). */
int hk_audit_checkpoint_input(uint64_t seq,
    const uint8_t head[HK_AUDIT_HASH_LEN], uint32_t version, const char *ts,
    size_t ts_len, uint8_t in[HK_AUDIT_CHECKPOINT_INPUT_LEN]);

/* SHA-256 of the checkpoint signing input: what the audit key signs. */
int
hk_audit_checkpoint_digest(uint64_t seq, const uint8_t head[HK_AUDIT_HASH_LEN],
    uint32_t version, const char *ts, size_t ts_len, uint8_t digest[32]);

/*
 * The strict parser: text (len bytes, no newline) must be exactly one of
 * the two field sets, in order, with the values the service writes.
 * Returns 0, or HK_ERR_DECODE with why (wlen bytes) saying what is wrong.
 * The strings of *l point into text.
 */
int hk_audit_parse(const char *text, size_t len, struct hk_audit_line *l,
    char *why, size_t wlen);

/* The seq a line starts with ({"seq":N), leniently, for the service that
 * continues a chain from a file's last line.  0, or HK_ERR_DECODE. */
int hk_audit_line_seq(const char *text, size_t len, uint64_t *seqp);

#endif /* HK_AUDIT_FORMAT_H */
