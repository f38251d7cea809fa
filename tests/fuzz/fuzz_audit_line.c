/*
 * fuzz_audit_line.c: libFuzzer target for the audit line parser
 * (proto/audit_format.c): each input is one line, without its newline, as
 * `hsmkey audit verify` and the service's chain continuation read it.
 * The input is not NUL-terminated, so a read past its end is caught.
 * Every string of a parsed line must lie inside the line, and a reason
 * that parses is one the service would take (hk_audit_reason_check()).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless s lies inside text[0..len). */
static void
inside(const struct hk_audit_str *s, const char *text, size_t len)
{
	if (s->len == 0) {
		return;
	}
	if (s->s < text || s->len > len ||
	    (size_t)(s->s - text) > len - s->len) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	    *text = (const char *)data, *rwhy;
	struct hk_audit_line l;
	char		     why[200];
	uint64_t	     seq = 0;
	int		     lenient;

	lenient = hk_audit_line_seq(text, size, &seq) == 0;
	memset(&l, 0, sizeof(l));
	why[0] = '\0';
	if (hk_audit_parse(text, size, &l, why, sizeof(why)) != 0) {
		if (why[0] == '\0' || memchr(why, '\0', sizeof(why)) == NULL) {
			abort(); /* a refusal says why */
		}
		return 0;
	}
	/* the strict parse implies the lenient one, with the same seq */
	if (!lenient || seq != l.seq || l.time.len != HK_AUDIT_TIME_LEN) {
		abort();
	}
	inside(&l.time, text, size);
	inside(&l.client, text, size);
	inside(&l.op, text, size);
	inside(&l.key, text, size);
	inside(&l.status, text, size);
	inside(&l.nonce, text, size);
	inside(&l.sigs, text, size);
	inside(&l.reason, text, size);
	if (l.reason.len != 0 &&
	    (l.checkpoint ||
		hk_audit_reason_check(l.reason.s, l.reason.len, &rwhy) != 0)) {
		abort();
	}
	inside(&l.head, text, size);
	inside(&l.sig, text, size);
	inside(&l.prev, text, size);
	return 0;
}
