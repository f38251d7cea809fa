/*
 * refusals.h: requests refused before they proved who sent them, counted
 * per (claimed client, reason) for one interval, for the audit log's
 * counted lines (audit.c, README "Audit log").  Anyone can send such
 * requests as fast as the network allows; what they cost is one slot of a
 * fixed table, never a line of their own.
 *
 * Thread-safety: every call takes the table's own mutex; refusals_add()
 * never waits for anything else.
 */
#ifndef HK_REFUSALS_H
#define HK_REFUSALS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define REFUSALS_SLOTS 32 /* (client, reason) pairs an interval */

/* One (client, reason) of an interval and how many. */
struct refusal_count {
	char	    client[HK_CLIENT_ID_MAX + 1]; /* "?": none, or others */
	const char *op;				  /* static */
	const char *reason;			  /* static */
	int	    status;
	uint64_t    count;
};

struct refusals {
	pthread_mutex_t	     mu;
	struct refusal_count slot[REFUSALS_SLOTS];
	size_t		     n;
	uint64_t	     since_ms; /* the interval's first refusal */
	uint64_t	     interval_ms;
};

void refusals_init(struct refusals *t, uint64_t interval_ms);
void refusals_destroy(struct refusals *t);

/* Counts one at now_ms; client must be a valid id or "?".  Past
 * REFUSALS_SLOTS - 1 pairs in an interval, the rest share the last slot
 * (client "?", reason "other"). */
void refusals_add(struct refusals *t, const char *client, const char *op,
    const char *reason, int status, uint64_t now_ms);

/* 1 when the interval of the counted refusals has ended at now_ms (or
 * any are counted and all is set). */
int refusals_due(struct refusals *t, uint64_t now_ms, int all);

/* Moves the counts of an ended interval (all of them with all) into out
 * (REFUSALS_SLOTS rows) and starts a new one; returns how many rows. */
size_t refusals_take(
    struct refusals *t, uint64_t now_ms, int all, struct refusal_count *out);

#endif /* HK_REFUSALS_H */
