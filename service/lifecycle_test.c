/*
 * lifecycle_test.c: every (state, event) pair of lifecycle.c against a
 * table of legal moves written out here, from DESIGN.md and the keyring's
 * behaviour; plus the state facts and names.
 */
#include <stddef.h>

#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "lifecycle.h"
#include "testutil.h"

/* The legal moves; every pair not listed must be refused. */
static const struct {
	enum lc_state from;
	enum lc_event ev;
	enum lc_state to;
} legal[] = {
	{ LC_NONE, LC_EV_CREATE, LC_ACTIVE },
	{ LC_NONE, LC_EV_ROTATE, LC_ACTIVE },
	{ LC_NONE, LC_EV_STAGE, LC_PENDING },

	{ LC_PENDING, LC_EV_PROMOTE, LC_ACTIVE },
	{ LC_PENDING, LC_EV_DISABLE, LC_DISABLED },
	{ LC_PENDING, LC_EV_DESTROY, LC_DESTROY_SCHEDULED },
	{ LC_PENDING, LC_EV_EMERGENCY, LC_DISABLED },

	{ LC_ACTIVE, LC_EV_PROMOTE, LC_ACTIVE },
	{ LC_ACTIVE, LC_EV_OVERLAP_END, LC_VERIFY_ONLY },
	{ LC_ACTIVE, LC_EV_DISABLE, LC_DISABLED },
	{ LC_ACTIVE, LC_EV_EMERGENCY, LC_DISABLED },

	{ LC_VERIFY_ONLY, LC_EV_GRACE_END, LC_DISABLED },
	{ LC_VERIFY_ONLY, LC_EV_DISABLE, LC_DISABLED },
	{ LC_VERIFY_ONLY, LC_EV_DESTROY, LC_DESTROY_SCHEDULED },
	{ LC_VERIFY_ONLY, LC_EV_EMERGENCY, LC_DISABLED },

	{ LC_DISABLED, LC_EV_DISABLE, LC_DISABLED },
	{ LC_DISABLED, LC_EV_DESTROY, LC_DESTROY_SCHEDULED },
	{ LC_DISABLED, LC_EV_EMERGENCY, LC_DISABLED },

	{ LC_DESTROY_SCHEDULED, LC_EV_DISABLE, LC_DISABLED },
	{ LC_DESTROY_SCHEDULED, LC_EV_DESTROY, LC_DESTROY_SCHEDULED },
	{ LC_DESTROY_SCHEDULED, LC_EV_CANCEL, LC_DISABLED },
	{ LC_DESTROY_SCHEDULED, LC_EV_DELAY_END, LC_DESTROYED },
	{ LC_DESTROY_SCHEDULED, LC_EV_EMERGENCY, LC_DESTROY_SCHEDULED },

	{ LC_DESTROYED, LC_EV_DESTROY, LC_DESTROYED },
	{ LC_DESTROYED, LC_EV_EMERGENCY, LC_DESTROYED },
};

static int
expected(enum lc_state from, enum lc_event ev, enum lc_state *top)
{
	size_t i;

	for (i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
		if (legal[i].from == from && legal[i].ev == ev) {
			*top = legal[i].to;
			return 1;
		}
	}
	return 0;
}

static void
test_every_pair(void)
{
	enum lc_state to, want;
	int	      st, ev, nlegal = 0;

	for (st = 0; st < LC_NSTATES; st++) {
		for (ev = 0; ev < LC_NEVENTS; ev++) {
			to = (enum lc_state)99;
			if (expected(
				(enum lc_state)st, (enum lc_event)ev, &want)) {
				PASS(lifecycle_next((enum lc_state)st,
				    (enum lc_event)ev, &to));
				EQ_INT(to, want);
				nlegal++;
			} else {
				FAIL(lifecycle_next((enum lc_state)st,
					 (enum lc_event)ev, &to),
				    HK_ERR_PRECONDITION);
				EQ_INT(to, 99); /* untouched */
			}
		}
	}
	EQ_INT(nlegal, sizeof(legal) / sizeof(legal[0]));
	/* out of range: refused, never read past the table */
	FAIL(lifecycle_next((enum lc_state)LC_NSTATES, LC_EV_DISABLE, &to),
	    HK_ERR_PRECONDITION);
	FAIL(lifecycle_next((enum lc_state) - 1, LC_EV_DISABLE, &to),
	    HK_ERR_PRECONDITION);
	FAIL(lifecycle_next(LC_ACTIVE, (enum lc_event)LC_NEVENTS, &to),
	    HK_ERR_PRECONDITION);
}

static void
test_apply(void)
{
	enum lc_state st = LC_ACTIVE;

	PASS(lifecycle_apply(&st, LC_EV_OVERLAP_END));
	EQ_INT(st, LC_VERIFY_ONLY);
	FAIL(lifecycle_apply(&st, LC_EV_OVERLAP_END), HK_ERR_PRECONDITION);
	EQ_INT(st, LC_VERIFY_ONLY);
	PASS(lifecycle_apply(&st, LC_EV_GRACE_END));
	PASS(lifecycle_apply(&st, LC_EV_DESTROY));
	PASS(lifecycle_apply(&st, LC_EV_DELAY_END));
	EQ_INT(st, LC_DESTROYED);
	FAIL(lifecycle_apply(&st, LC_EV_DISABLE), HK_ERR_PRECONDITION);
	FAIL(lifecycle_apply(&st, LC_EV_CANCEL), HK_ERR_PRECONDITION);
}

static void
test_facts(void)
{
	static const struct {
		enum lc_state st;
		int	      signs, verifies, timer;
		enum lc_event ev;
	} rows[] = {
		{ LC_NONE, 0, 0, 0, 0 },
		{ LC_PENDING, 0, 1, 0, 0 },
		{ LC_ACTIVE, 1, 1, 1, LC_EV_OVERLAP_END },
		{ LC_VERIFY_ONLY, 0, 1, 1, LC_EV_GRACE_END },
		{ LC_DISABLED, 0, 0, 0, 0 },
		{ LC_DESTROY_SCHEDULED, 0, 0, 1, LC_EV_DELAY_END },
		{ LC_DESTROYED, 0, 0, 0, 0 },
	};
	enum lc_event ev;
	size_t	      i;

	EQ_INT(sizeof(rows) / sizeof(rows[0]), LC_NSTATES);
	for (i = 0; i < LC_NSTATES; i++) {
		EQ_INT(lifecycle_may_sign(rows[i].st), rows[i].signs);
		EQ_INT(lifecycle_may_verify(rows[i].st), rows[i].verifies);
		EQ_INT(lifecycle_valid((int)rows[i].st), rows[i].st != 0);
		if (rows[i].timer) {
			PASS(lifecycle_timer(rows[i].st, &ev));
			EQ_INT(ev, rows[i].ev);
		} else {
			FAIL(lifecycle_timer(rows[i].st, &ev),
			    HK_ERR_NOT_FOUND);
		}
	}
	TRUE(!lifecycle_valid(LC_NSTATES));
	TRUE(!lifecycle_may_sign((enum lc_state)LC_NSTATES));
}

static void
test_names(void)
{
	static const char *const st[LC_NSTATES] = { "none", "pending",
		"active", "verify-only", "disabled", "destroy-scheduled",
		"destroyed" };
	static const char *const ev[LC_NEVENTS] = { "create", "rotate",
		"stage", "promote", "overlap-end", "grace-end", "disable",
		"destroy", "cancel", "delay-end", "emergency" };
	int			 i;

	for (i = 0; i < LC_NSTATES; i++) {
		EQ_STR(lifecycle_state_name((enum lc_state)i), st[i]);
	}
	for (i = 0; i < LC_NEVENTS; i++) {
		EQ_STR(lifecycle_event_name((enum lc_event)i), ev[i]);
	}
	EQ_STR(lifecycle_state_name((enum lc_state)LC_NSTATES), "unknown");
	EQ_STR(lifecycle_event_name((enum lc_event) - 1), "unknown");
}

/* The wire and store schema use the same numbers (a checked cast). */
static void
test_wire_values(void)
{
	EQ_INT(LC_NONE, HSMKEY__V1__VERSION_STATE__STATE_UNSPECIFIED);
	EQ_INT(LC_PENDING, HSMKEY__V1__VERSION_STATE__STATE_PENDING);
	EQ_INT(LC_ACTIVE, HSMKEY__V1__VERSION_STATE__STATE_ACTIVE);
	EQ_INT(LC_VERIFY_ONLY, HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY);
	EQ_INT(LC_DISABLED, HSMKEY__V1__VERSION_STATE__STATE_DISABLED);
	EQ_INT(LC_DESTROY_SCHEDULED,
	    HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED);
	EQ_INT(LC_DESTROYED, HSMKEY__V1__VERSION_STATE__STATE_DESTROYED);
}

TEST_LIST = {
	{ "every_pair", test_every_pair },
	{ "apply", test_apply },
	{ "facts", test_facts },
	{ "names", test_names },
	{ "wire_values", test_wire_values },
	{ NULL, NULL },
};

TEST_MAIN
