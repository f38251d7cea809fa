/*
 * token_heal.c: keeping the token usable (see token.h).
 *
 * Every thread that calls the token holds t->gate shared for the length
 * of its work (token_hold()); the healer takes it exclusive to repair
 * (token_repair()), so that no call is ever in the module while it is
 * finalised, and no object handle of the old module is used with the new
 * one.  The gate prefers the writer: a healer waiting for it stops new
 * holders, and they give up after their bounded wait (UNAVAILABLE)
 * rather than hang behind a module that does not answer.
 *
 * Any call that fails with a device, session or login error raises
 * t->trouble (token_rv_err()); the healer waits for it.  While a repair
 * has failed, t->down makes every call fail fast (token_away()).
 */
#define _GNU_SOURCE /* pthread_rwlock_clockrdlock, pthread_cond_clockwait */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "hk_err.h"
#include "log.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include "token_int.h"

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timespec
mono_after(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int
token_hold(struct token *t, int wait_ms)
{
	struct timespec until;

	if (pthread_rwlock_tryrdlock(&t->gate) == 0) {
		return 0;
	}
	if (wait_ms < 0) {
		pthread_rwlock_rdlock(&t->gate);
		return 0;
	}
	until = mono_after(wait_ms);
	if (pthread_rwlock_clockrdlock(&t->gate, CLOCK_MONOTONIC, &until) ==
	    0) {
		return 0;
	}
	return HK_ERR_UNAVAILABLE;
}

void
token_release(struct token *t)
{
	pthread_rwlock_unlock(&t->gate);
}

void
token_trouble(struct token *t)
{
	pthread_mutex_lock(&t->heal_mu);
	if (!t->trouble) {
		t->trouble = 1;
		pthread_cond_signal(&t->heal_cv);
	}
	pthread_mutex_unlock(&t->heal_mu);
}

int
token_wait_trouble(struct token *t, int timeout_ms)
{
	struct timespec until = mono_after(timeout_ms);
	int		trouble;

	pthread_mutex_lock(&t->heal_mu);
	while (!t->trouble &&
	    pthread_cond_clockwait(
		&t->heal_cv, &t->heal_mu, CLOCK_MONOTONIC, &until) == 0) {
		;
	}
	trouble = t->trouble;
	t->trouble = 0;
	pthread_mutex_unlock(&t->heal_mu);
	return trouble;
}

/* The login session answers and is logged in as the user. */
static CK_RV
login_alive(struct token *t)
{
	CK_SESSION_INFO si;
	CK_RV		rv;

	if (!t->have_login) {
		return CKR_SESSION_HANDLE_INVALID;
	}
	pthread_mutex_lock(&t->mu);
	rv = t->f->C_GetSessionInfo(t->login, &si);
	pthread_mutex_unlock(&t->mu);
	if (rv == CKR_OK && si.state != CKS_RO_USER_FUNCTIONS &&
	    si.state != CKS_RW_USER_FUNCTIONS) {
		rv = CKR_USER_NOT_LOGGED_IN;
	}
	return rv;
}

int
token_probe(struct token *t)
{
	CK_TOKEN_INFO info;
	CK_RV	      rv;
	int	      r;

	if ((r = token_away(t)) != 0) {
		return r;
	}
	if ((rv = t->f->C_GetTokenInfo(t->slot, &info)) != CKR_OK ||
	    (rv = login_alive(t)) != CKR_OK) {
		token_rv_err(t, "token probe", rv);
		return HK_ERR_UNAVAILABLE;
	}
	return 0;
}

/* Reopens the sessions whose handles the token forgot; the token itself
 * answers and is logged in. */
static int
renew_lost_sessions(struct token *t)
{
	struct token_session *s;
	CK_SESSION_INFO	      si;
	CK_RV		      rv;
	int		      r;

	for (s = t->sessions; s != NULL; s = s->next) {
		rv = s->h == CK_INVALID_HANDLE
		    ? CKR_SESSION_HANDLE_INVALID
		    : t->f->C_GetSessionInfo(s->h, &si);
		if (rv == CKR_OK) {
			continue;
		}
		if (!token_rv_session_lost(rv)) {
			return token_rv_err(t, "C_GetSessionInfo", rv);
		}
		if ((r = token_session_renew(s)) != 0) {
			return r;
		}
	}
	return 0;
}

/*
 * Starts the token again and reopens every session.  finalize 0: the login
 * is gone but the token answers, so a new login session logs in; 1: the
 * module is finalised and initialised again and the token found again by
 * its URI.  Either way the session objects are gone: the caller finds its
 * objects again.
 */
static int
start_again(struct token *t, int finalize)
{
	int r;

	log_warnx("token %s: %s", t->label,
	    finalize
		? "finalising the PKCS#11 module and initialising it again"
		: "the login was lost; logging in again");
	token_detach(t, finalize);
	if ((r = finalize ? token_attach(t) : token_find_login(t)) != 0) {
		return r;
	}
	return token_reopen_sessions(t);
}

/* t is down from now on (if it was not already). */
static void
mark_down(struct token *t)
{
	uint64_t none = 0;

	if (!atomic_exchange(&t->down, 1)) {
		/* since the first failure, also when a repair got half way */
		atomic_compare_exchange_strong(
		    &t->down_since_ms, &none, wall_ms());
		log_warnx("token %s is down: requests that need it fail with "
			  "UNAVAILABLE until it is back",
		    t->label);
	}
}

/* The repair worked: the caller may use the token (and find its objects
 * again) before token_exclusive_end() says so to everyone. */
static int
repaired(struct token *t)
{
	atomic_fetch_add(&t->repairs, 1);
	atomic_store(&t->down, 0);
	return 0;
}

/* One look at the token: CKR_OK if it answers and the login holds. */
static CK_RV
look(struct token *t)
{
	CK_TOKEN_INFO info;
	CK_RV	      rv;

	if ((rv = t->f->C_GetTokenInfo(t->slot, &info)) != CKR_OK) {
		return rv;
	}
	return login_alive(t);
}

int
token_repair(struct token *t, int *rebindp)
{
	CK_RV rv;
	int   r;

	*rebindp = 0;
	if (atomic_load(&t->pin_refused)) {
		mark_down(t);
		return HK_ERR_PIN;
	}
	if (!atomic_load(&t->down)) {
		rv = look(t);
		if (rv == CKR_OK && renew_lost_sessions(t) == 0) {
			return 0; /* the token is fine; lost sessions reopened */
		}
		if (token_rv_session_lost(rv) ||
		    rv == CKR_USER_NOT_LOGGED_IN) {
			*rebindp = 1;
			if ((r = start_again(t, 0)) == 0) {
				return repaired(t);
			}
			if (r == HK_ERR_PIN) {
				mark_down(t);
				return r;
			}
		}
	}
	/* the token does not answer (or a new login did not help) */
	mark_down(t);
	*rebindp = 1;
	if ((r = start_again(t, 1)) == 0) {
		return repaired(t);
	}
	if (!atomic_load(&t->pin_refused)) {
		log_err_r(r, "token %s is still down", t->label);
	}
	return r;
}

void
token_exclusive(struct token *t)
{
	pthread_rwlock_wrlock(&t->gate);
}

void
token_exclusive_end(struct token *t, int up)
{
	uint64_t since;

	if (!up) {
		mark_down(t);
	} else if ((since = atomic_exchange(&t->down_since_ms, 0)) != 0) {
		log_info("token %s is back after %llu ms", t->label,
		    (unsigned long long)(wall_ms() - since));
	}
	pthread_rwlock_unlock(&t->gate);
}

uint64_t
token_down_since(const struct token *t)
{
	return atomic_load(&t->down) ? atomic_load(&t->down_since_ms) : 0;
}

uint64_t
token_repairs(const struct token *t)
{
	return atomic_load(&t->repairs);
}

int
token_pin_refused(const struct token *t)
{
	return atomic_load(&t->pin_refused);
}
