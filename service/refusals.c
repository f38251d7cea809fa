/* refusals.c: the interval's table of counted refusals (see refusals.h). */
#include <stdio.h>
#include <string.h>

#include "hsmkey.pb-c.h"
#include "refusals.h"

void
refusals_init(struct refusals *t, uint64_t interval_ms)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->interval_ms = interval_ms;
}

void
refusals_destroy(struct refusals *t)
{
	pthread_mutex_destroy(&t->mu);
}

/* The slot of (client, reason): found, new, or the one of all others.
 * Called with t->mu held. */
static struct refusal_count *
slot_of(struct refusals *t, const char *client, const char *op,
    const char *reason, int status)
{
	struct refusal_count *rc;
	size_t		      i;

	for (i = 0; i < t->n; i++) {
		rc = &t->slot[i];
		if (strcmp(rc->reason, reason) == 0 &&
		    strcmp(rc->client, client) == 0) {
			return rc;
		}
	}
	if (t->n == REFUSALS_SLOTS) {
		return &t->slot[REFUSALS_SLOTS - 1];
	}
	rc = &t->slot[t->n++];
	memset(rc, 0, sizeof(*rc));
	if (t->n < REFUSALS_SLOTS) {
		snprintf(rc->client, sizeof(rc->client), "%s", client);
		rc->op = op;
		rc->reason = reason;
		rc->status = status;
	} else {
		/* more pairs than slots in one interval: the rest share */
		snprintf(rc->client, sizeof(rc->client), "?");
		rc->op = "unauthenticated";
		rc->reason = "other";
		rc->status = HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
	}
	return rc;
}

void
refusals_add(struct refusals *t, const char *client, const char *op,
    const char *reason, int status, uint64_t now_ms)
{
	pthread_mutex_lock(&t->mu);
	if (t->n == 0) {
		t->since_ms = now_ms;
	}
	slot_of(t, client, op, reason, status)->count++;
	pthread_mutex_unlock(&t->mu);
}

/* Called with t->mu held. */
static int
due(const struct refusals *t, uint64_t now_ms, int all)
{
	return t->n > 0 && (all || now_ms - t->since_ms >= t->interval_ms);
}

int
refusals_due(struct refusals *t, uint64_t now_ms, int all)
{
	int r;

	pthread_mutex_lock(&t->mu);
	r = due(t, now_ms, all);
	pthread_mutex_unlock(&t->mu);
	return r;
}

size_t
refusals_take(
    struct refusals *t, uint64_t now_ms, int all, struct refusal_count *out)
{
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	if (due(t, now_ms, all)) {
		n = t->n;
		memcpy(out, t->slot, n * sizeof(*out));
		t->n = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}
