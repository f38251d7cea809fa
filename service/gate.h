/*
 * gate.h: the admission gate around a request's token work.  A network
 * HSM serves a few dozen calls at once and takes milliseconds each; the
 * service has more workers than that, so that requests wait here, in a
 * queue the service controls, rather than in the HSM's client library or
 * in the socket.
 *
 * The gate has [pkcs11] max_parallel slots.  A request takes one before it
 * runs (gate_enter) and gives it back after (gate_leave).  Slots are
 * handed out in arrival order (a FIFO of waiters, each woken alone), so
 * that latency is fair and p99 stays close to p50.  A request waits at
 * most [service] busy_after; then it is refused (HK_ERR_EXHAUSTED: the
 * caller answers "busy") and never touches the token.
 *
 * Thread-safe: any number of threads may enter and leave at once.
 */
#ifndef HK_GATE_H
#define HK_GATE_H

#include <stdint.h>

struct gate;

/* A gate of slots slots (0: no gate, gate_enter() always admits) whose
 * waiters give up after wait_ms (0: refuse at once when full).  Caller
 * must gate_free(). */
int  gate_new(struct gate **gp, unsigned int slots, uint64_t wait_ms);
void gate_free(struct gate *g);

/* Takes a slot, waiting in arrival order: 0 (then the caller must
 * gate_leave()), or HK_ERR_EXHAUSTED when none came free in time.  g may
 * be NULL (admits). */
int gate_enter(struct gate *g);
/* Gives the slot back, straight to the oldest waiter if there is one. */
void gate_leave(struct gate *g);

/* What the gate did since it was made (a snapshot). */
struct gate_stats {
	unsigned int slots, in_use, waiting;
	uint64_t     admitted; /* gate_enter() calls that got a slot */
	uint64_t     waited;   /* ... of which had to wait */
	uint64_t     busy;     /* refused */
};
void gate_stats(struct gate *g, struct gate_stats *st);

/* 1 at most once per second while requests are refused, with the number
 * refused since the last time in *np: a log line's worth, not a flood. */
int gate_busy_note(struct gate *g, uint64_t *np);

#endif /* HK_GATE_H */
