/*
 * audit_note.c: the audit lines of what the service does by itself, with
 * no request behind it: the tick's scheduled moves (see audit.h).
 */
#include <inttypes.h>

#include "audit.h"
#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "log.h"

/* Runs on the writer thread once the line's batch is written or failed;
 * nobody waits for it. */
static void
note_done(void *arg, int r)
{
	(void)arg;
	if (r != 0) {
		log_err_r(r, "audit: a line of a scheduled change was lost");
	}
}

void
audit_note(struct audit *a, const char *op, const char *key, uint32_t version)
{
	const struct audit_event ev = {
		.client = AUDIT_SERVICE_CLIENT,
		.secret = 0,
		.op = op,
		.key = key,
		.version = version,
		.status = HSMKEY__V1__STATUS__STATUS_OK,
	};
	int r;

	if (a == NULL) {
		return;
	}
	if ((r = audit_submit(a, &ev, note_done, NULL)) != 0) {
		log_err_r(r, "audit: no line for %s of key %s v%" PRIu32, op,
		    key, version);
	}
}
