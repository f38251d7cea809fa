/* lifecycle.c: version states and their legal moves (see lifecycle.h). */
#include <stddef.h>

#include "hk_err.h"
#include "lifecycle.h"

/* What a state is; one row each. */
static const struct {
	const char *name;
	int	    signs;
	int	    verifies;
	int	    timer; /* the event its retire time fires, or -1 */
} states[LC_NSTATES] = {
	[LC_NONE] = { "none", 0, 0, -1 },
	[LC_PENDING] = { "pending", 0, 1, -1 },
	[LC_ACTIVE] = { "active", 1, 1, LC_EV_OVERLAP_END },
	[LC_VERIFY_ONLY] = { "verify-only", 0, 1, LC_EV_GRACE_END },
	[LC_DISABLED] = { "disabled", 0, 0, -1 },
	[LC_DESTROY_SCHEDULED] = { "destroy-scheduled", 0, 0,
	    LC_EV_DELAY_END },
	[LC_DESTROYED] = { "destroyed", 0, 0, -1 },
};

static const char *const events[LC_NEVENTS] = {
	[LC_EV_CREATE] = "create",
	[LC_EV_ROTATE] = "rotate",
	[LC_EV_STAGE] = "stage",
	[LC_EV_PROMOTE] = "promote",
	[LC_EV_OVERLAP_END] = "overlap-end",
	[LC_EV_GRACE_END] = "grace-end",
	[LC_EV_DISABLE] = "disable",
	[LC_EV_DESTROY] = "destroy",
	[LC_EV_CANCEL] = "cancel",
	[LC_EV_DELAY_END] = "delay-end",
	[LC_EV_EMERGENCY] = "emergency",
};

/*
 * The legal moves: moves[from][event] is the new state, 0 (LC_NONE, which
 * no move leads to) where the move is refused.  A move to the same state
 * is an idempotent repeat.
 */
static const unsigned char moves[LC_NSTATES][LC_NEVENTS] = {
	[LC_NONE] = {
		[LC_EV_CREATE] = LC_ACTIVE,
		[LC_EV_ROTATE] = LC_ACTIVE,
		[LC_EV_STAGE] = LC_PENDING,
	},
	[LC_PENDING] = {
		[LC_EV_PROMOTE] = LC_ACTIVE,
		[LC_EV_DISABLE] = LC_DISABLED,
		[LC_EV_DESTROY] = LC_DESTROY_SCHEDULED,
		[LC_EV_EMERGENCY] = LC_DISABLED,
	},
	[LC_ACTIVE] = {
		[LC_EV_PROMOTE] = LC_ACTIVE, /* if it is the primary */
		[LC_EV_OVERLAP_END] = LC_VERIFY_ONLY,
		[LC_EV_DISABLE] = LC_DISABLED,
		[LC_EV_EMERGENCY] = LC_DISABLED,
		/* destroy: disable it first */
	},
	[LC_VERIFY_ONLY] = {
		[LC_EV_GRACE_END] = LC_DISABLED,
		[LC_EV_DISABLE] = LC_DISABLED,
		[LC_EV_DESTROY] = LC_DESTROY_SCHEDULED,
		[LC_EV_EMERGENCY] = LC_DISABLED,
	},
	[LC_DISABLED] = {
		[LC_EV_DISABLE] = LC_DISABLED,
		[LC_EV_DESTROY] = LC_DESTROY_SCHEDULED,
		[LC_EV_EMERGENCY] = LC_DISABLED,
		/* cancel: only a scheduled destruction */
	},
	[LC_DESTROY_SCHEDULED] = {
		[LC_EV_DISABLE] = LC_DISABLED, /* cancels it too */
		[LC_EV_DESTROY] = LC_DESTROY_SCHEDULED,
		[LC_EV_CANCEL] = LC_DISABLED,
		[LC_EV_DELAY_END] = LC_DESTROYED,
		[LC_EV_EMERGENCY] = LC_DESTROY_SCHEDULED,
	},
	[LC_DESTROYED] = {
		[LC_EV_DESTROY] = LC_DESTROYED,
		[LC_EV_EMERGENCY] = LC_DESTROYED,
	},
};

int
lifecycle_valid(int st)
{
	return st > LC_NONE && st < LC_NSTATES;
}

int
lifecycle_next(enum lc_state from, enum lc_event ev, enum lc_state *top)
{
	unsigned int f = (unsigned int)from, e = (unsigned int)ev;

	if (f >= LC_NSTATES || e >= LC_NEVENTS || moves[f][e] == LC_NONE) {
		return HK_ERR_PRECONDITION;
	}
	*top = (enum lc_state)moves[f][e];
	return 0;
}

int
lifecycle_apply(enum lc_state *statep, enum lc_event ev)
{
	return lifecycle_next(*statep, ev, statep);
}

int
lifecycle_timer(enum lc_state st, enum lc_event *evp)
{
	if (!lifecycle_valid((int)st) || states[st].timer < 0) {
		return HK_ERR_NOT_FOUND;
	}
	*evp = (enum lc_event)states[st].timer;
	return 0;
}

int
lifecycle_may_sign(enum lc_state st)
{
	return lifecycle_valid((int)st) && states[st].signs;
}

int
lifecycle_may_verify(enum lc_state st)
{
	return lifecycle_valid((int)st) && states[st].verifies;
}

const char *
lifecycle_state_name(enum lc_state st)
{
	return (unsigned int)st < LC_NSTATES ? states[st].name : "unknown";
}

const char *
lifecycle_event_name(enum lc_event ev)
{
	return (unsigned int)ev < LC_NEVENTS ? events[ev] : "unknown";
}
