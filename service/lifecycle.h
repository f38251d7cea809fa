/*
 * lifecycle.h: the states of a key version (DESIGN.md, "Keys, versions,
 * rotation") and the one table of the moves between them.  Every state
 * change of a version asks lifecycle_next() (or lifecycle_apply()); a move
 * the table does not list is refused with HK_ERR_PRECONDITION.
 *
 * A move to the same state is an idempotent repeat (disable a disabled
 * version, destroy a destroyed one): legal, and the caller sees that
 * nothing changed.  A new version starts from LC_NONE: create, rotate and
 * stage give the state its maker commits it in.  While it is being made
 * (its intent record, `creating` set) it is stored as pending and is
 * invisible to every lookup.
 *
 * Thread-safety: only constant tables; every function may run anywhere.
 */
#ifndef HK_LIFECYCLE_H
#define HK_LIFECYCLE_H

/* The values are hsmkey.proto's VersionState (checked where converted). */
enum lc_state {
	LC_NONE = 0, /* not (yet) a version; no move leads here */
	LC_PENDING = 1,
	LC_ACTIVE = 2,
	LC_VERIFY_ONLY = 3,
	LC_DISABLED = 4,
	LC_DESTROY_SCHEDULED = 5,
	LC_DESTROYED = 6,
};
#define LC_NSTATES 7

enum lc_event {
	LC_EV_CREATE = 0,  /* a new key's first version */
	LC_EV_ROTATE,	   /* a new version that becomes primary */
	LC_EV_STAGE,	   /* a new version left pending (rotate --stage) */
	LC_EV_PROMOTE,	   /* pending -> primary */
	LC_EV_OVERLAP_END, /* an old primary stops signing */
	LC_EV_GRACE_END,   /* a verify-only version stops verifying */
	LC_EV_DISABLE,
	LC_EV_DESTROY,	 /* schedules the destruction */
	LC_EV_CANCEL,	 /* cancels a scheduled destruction */
	LC_EV_DELAY_END, /* the destruction delay is over */
	LC_EV_EMERGENCY, /* emergency rollover: every older version */
};
#define LC_NEVENTS 11

/* The state ev moves from to: 0 and *top set, or HK_ERR_PRECONDITION for
 * a move the table does not list (*top then unchanged). */
int lifecycle_next(enum lc_state from, enum lc_event ev, enum lc_state *top);
/* lifecycle_next() from *statep, and *statep becomes the new state. */
int lifecycle_apply(enum lc_state *statep, enum lc_event ev);

/* The event a version's retire time fires in state st (0), or
 * HK_ERR_NOT_FOUND if st has no timer. */
int lifecycle_timer(enum lc_state st, enum lc_event *evp);

/* 1 if a version in st may sign / verify (other checks apply too). */
int lifecycle_may_sign(enum lc_state st);
int lifecycle_may_verify(enum lc_state st);
/* 1 if st is a state of the table (LC_NONE is not). */
int lifecycle_valid(int st);

/* "pending", "verify-only", ...; "overlap-end", ...; never NULL
 * ("unknown" otherwise).  Static strings. */
const char *lifecycle_state_name(enum lc_state st);
const char *lifecycle_event_name(enum lc_event ev);

#endif /* HK_LIFECYCLE_H */
