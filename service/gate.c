/* gate.c: the FIFO admission gate around token work (see gate.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "hk_err.h"

/*
 * A thread waiting for a slot.  It lives on the waiter's stack and sits in
 * the gate's list until gate_leave() hands it a slot (admitted) or it
 * gives up; both happen under the gate's lock, and the cv is signalled
 * under it too, so that the waiter cannot be gone when it is signalled.
 */
struct waiter {
	pthread_cond_t cv;
	int	       admitted;
	struct waiter *prev, *next;
};

struct gate {
	pthread_mutex_t	   mu;
	pthread_condattr_t cattr; /* CLOCK_MONOTONIC */
	unsigned int	   slots, in_use, waiting;
	uint64_t	   wait_ms;
	struct waiter	  *head, *tail; /* oldest first */
	uint64_t	   admitted, waited, busy;
	uint64_t	   busy_noted; /* busy at the last gate_busy_note() */
	struct timespec	   noted_at;
};

int
gate_new(struct gate **gp, unsigned int slots, uint64_t wait_ms)
{
	struct gate *g;

	*gp = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return HK_ERR_SYSTEM;
	}
	if (pthread_condattr_init(&g->cattr) != 0 ||
	    pthread_condattr_setclock(&g->cattr, CLOCK_MONOTONIC) != 0) {
		pthread_mutex_destroy(&g->mu);
		free(g);
		return HK_ERR_SYSTEM;
	}
	g->slots = slots;
	g->wait_ms = wait_ms;
	*gp = g;
	return 0;
}

void
gate_free(struct gate *g)
{
	if (g == NULL) {
		return;
	}
	pthread_condattr_destroy(&g->cattr);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void
unlink_waiter(struct gate *g, struct waiter *w)
{
	if (w->prev != NULL) {
		w->prev->next = w->next;
	} else {
		g->head = w->next;
	}
	if (w->next != NULL) {
		w->next->prev = w->prev;
	} else {
		g->tail = w->prev;
	}
	w->prev = w->next = NULL;
	g->waiting--;
}

static void
deadline_after(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Queues w at the tail and waits until it is admitted or the wait is
 * over.  Lock held.  0 or HK_ERR_EXHAUSTED. */
static int
wait_in_line(struct gate *g, struct waiter *w)
{
	struct timespec until;
	int		e = 0;

	memset(w, 0, sizeof(*w));
	if (pthread_cond_init(&w->cv, &g->cattr) != 0) {
		return HK_ERR_EXHAUSTED;
	}
	w->prev = g->tail;
	if (g->tail != NULL) {
		g->tail->next = w;
	} else {
		g->head = w;
	}
	g->tail = w;
	g->waiting++;
	deadline_after(&until, g->wait_ms);
	while (!w->admitted && e != ETIMEDOUT) {
		e = pthread_cond_timedwait(&w->cv, &g->mu, &until);
	}
	if (!w->admitted) {
		unlink_waiter(g, w);
	}
	pthread_cond_destroy(&w->cv);
	return w->admitted ? 0 : HK_ERR_EXHAUSTED;
}

int
gate_enter(struct gate *g)
{
	struct waiter w;
	int	      r = 0;

	if (g == NULL || g->slots == 0) {
		return 0;
	}
	pthread_mutex_lock(&g->mu);
	if (g->head == NULL && g->in_use < g->slots) {
		/* a free slot and nobody ahead: the common case */
		g->in_use++;
	} else if (g->wait_ms == 0 || (r = wait_in_line(g, &w)) != 0) {
		r = HK_ERR_EXHAUSTED;
		g->busy++;
	} else {
		g->waited++; /* in_use was handed over, not given back */
	}
	if (r == 0) {
		g->admitted++;
	}
	pthread_mutex_unlock(&g->mu);
	return r;
}

void
gate_leave(struct gate *g)
{
	struct waiter *w;

	if (g == NULL || g->slots == 0) {
		return;
	}
	pthread_mutex_lock(&g->mu);
	if ((w = g->head) != NULL) {
		/* the slot goes to the oldest waiter: nobody can overtake */
		unlink_waiter(g, w);
		w->admitted = 1;
		pthread_cond_signal(&w->cv);
	} else if (g->in_use > 0) {
		g->in_use--;
	}
	pthread_mutex_unlock(&g->mu);
}

void
gate_stats(struct gate *g, struct gate_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (g == NULL) {
		return;
	}
	pthread_mutex_lock(&g->mu);
	st->slots = g->slots;
	st->in_use = g->in_use;
	st->waiting = g->waiting;
	st->admitted = g->admitted;
	st->waited = g->waited;
	st->busy = g->busy;
	pthread_mutex_unlock(&g->mu);
}

static int64_t
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

int
gate_busy_note(struct gate *g, uint64_t *np)
{
	struct timespec now;
	int		due = 0;

	*np = 0;
	if (g == NULL) {
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&g->mu);
	if (g->busy > g->busy_noted &&
	    (g->busy_noted == 0 || ms_between(&g->noted_at, &now) >= 1000)) {
		*np = g->busy - g->busy_noted;
		g->busy_noted = g->busy;
		g->noted_at = now;
		due = 1;
	}
	pthread_mutex_unlock(&g->mu);
	return due;
}
