/*
 * token.c: the module, the slot, the login and the sessions (see token.h;
 * token_keys.c, token_objects.c and token_pin.c do the rest).
 *
 * Lifetimes.  token_open() loads the module, calls C_Initialize with
 * CKF_OS_LOCKING_OK, opens a read-only "login session" and logs in on it.
 * Login state belongs to the process, not to a session, and closing the
 * last session of a slot logs the process out; so the login session stays
 * open until token_close(), whatever the workers do with theirs.  SoftHSM
 * 2.6 rewrites its token file at every C_Login, so we log in exactly once.
 *
 * Every session that token_session_open() hands out is on a list, so that
 * token_close() can close the ones still open (login session last), then
 * C_Logout, C_Finalize and unload the module.
 *
 * Health: t->bad_rv holds the CK_RV of the last device/session error, or
 * CKR_OK; any successful C_* call clears it.  It is an atomic, so that
 * token_healthy() and token_state() never touch the token.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hk_err.h"
#include "log.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include "token_int.h"
#include <p11-kit/uri.h>

/* Errors that say the device, the session or the login is gone. */
static int
rv_is_device(CK_RV rv)
{
	switch (rv) {
	case CKR_GENERAL_ERROR:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_MEMORY:
	case CKR_DEVICE_REMOVED:
	case CKR_SESSION_CLOSED:
	case CKR_SESSION_COUNT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_PARALLEL_NOT_SUPPORTED:
	case CKR_SESSION_READ_ONLY:
	case CKR_SESSION_EXISTS:
	case CKR_SESSION_READ_ONLY_EXISTS:
	case CKR_SESSION_READ_WRITE_SO_EXISTS:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_TOKEN_WRITE_PROTECTED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return 1;
	default:
		return 0;
	}
}

int
token_rv_map(CK_RV rv)
{
	if (rv_is_device(rv)) {
		return HK_ERR_PKCS11;
	}
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_HOST_MEMORY:
		return HK_ERR_NOMEM;
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return HK_ERR_NOT_FOUND;
	case CKR_BUFFER_TOO_SMALL:
		return HK_ERR_TOO_LARGE;
	case CKR_ARGUMENTS_BAD:
	case CKR_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_SIZE_RANGE:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_TEMPLATE_INCONSISTENT:
		return HK_ERR_INVALID;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_FUNCTION_NOT_SUPPORTED:
	case CKR_ACTION_PROHIBITED:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_DOMAIN_PARAMS_INVALID:
		return HK_ERR_UNSUPPORTED;
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		/* CKA_SIGN false: the version may not sign (wrong state) */
		return HK_ERR_PRECONDITION;
	case CKR_SIGNATURE_INVALID:
	case CKR_SIGNATURE_LEN_RANGE:
		return HK_ERR_MAC;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
		return HK_ERR_PIN;
	default:
		return HK_ERR_PKCS11;
	}
}

int
token_rv_err(struct token *t, const char *call, CK_RV rv)
{
	int r = token_rv_map(rv);

	if (t != NULL && rv_is_device(rv)) {
		atomic_store(&t->bad_rv, rv);
		log_err_r(r, "%s failed: %s (0x%lx)", call,
		    p11_kit_strerror(rv), (unsigned long)rv);
		token_trouble(t);
	} else {
		log_warnx("%s failed: %s (0x%lx)", call, p11_kit_strerror(rv),
		    (unsigned long)rv);
	}
	return r;
}

int
token_rv_session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

int
token_ck(struct token *t, const char *call, CK_RV rv)
{
	if (rv == CKR_OK) {
		mark_ok(t);
		return 0;
	}
	return token_rv_err(t, call, rv);
}

#ifndef HK_ALLOWED_MODULES
#define HK_ALLOWED_MODULES "" /* meson -Dallowed_modules */
#endif

/* 1 if real (a realpath()) is one of the blank-separated paths of list
 * after realpath() of each; entries that do not resolve match nothing. */
static int
module_on_list(const char *real, const char *list)
{
	char   entry[PATH_MAX], resolved[PATH_MAX];
	size_t n;

	for (;;) {
		list += strspn(list, " \t,");
		if ((n = strcspn(list, " \t,")) == 0) {
			return 0;
		}
		if (n < sizeof(entry)) {
			memcpy(entry, list, n);
			entry[n] = '\0';
			if (realpath(entry, resolved) != NULL &&
			    strcmp(resolved, real) == 0) {
				return 1;
			}
		}
		list += n;
	}
}

/*
 * The module's real path into real (PATH_MAX bytes) if the lists allow
 * it: the configured one (allowed, when set) and the built-in one (when
 * not empty), and if only root or this process's user may write the file
 * (code anyone else could replace is not loaded).  One line naming the
 * module when not.
 */
static int
module_allowed(const char *module, const char *allowed, char *real)
{
	static const char builtin[] = HK_ALLOWED_MODULES;
	struct stat	  st;
	int		  cfg = allowed != NULL && *allowed != '\0';

	if (realpath(module, real) == NULL) {
		log_error("cannot load PKCS#11 module %s: %s", module,
		    strerror(errno));
		return HK_ERR_CONFIG;
	}
	if ((cfg && !module_on_list(real, allowed)) ||
	    (*builtin != '\0' && !module_on_list(real, builtin))) {
		log_error("PKCS#11 module %s (%s) is not on the %s list of "
			  "allowed modules: refused",
		    module, real, cfg ? "configured" : "built-in");
		return HK_ERR_CONFIG;
	}
	if (stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 022) != 0 ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		log_error("PKCS#11 module %s (%s) is not a regular file that "
			  "only root or hsmkeyd's user may write: refused",
		    module, real);
		return HK_ERR_CONFIG;
	}
	return 0;
}

int
token_module_load(struct token *t, const char *module, const char *allowed)
{
	CK_FUNCTION_LIST **mods = NULL;
	CK_FUNCTION_LIST  *f = NULL;
	char		   real[PATH_MAX];
	size_t		   i;
	int		   r = HK_ERR_INTERNAL;

	if (module == NULL || *module == '\0') {
		log_warnx("no PKCS#11 module configured");
		r = HK_ERR_CONFIG;
		goto out;
	}
	if (strchr(module, '/') == NULL &&
	    ((allowed != NULL && *allowed != '\0') ||
		*HK_ALLOWED_MODULES != '\0')) {
		log_error("PKCS#11 module \"%s\": with a list of allowed "
			  "modules, module must be a path: refused",
		    module);
		r = HK_ERR_CONFIG;
		goto out;
	}
	if (strchr(module, '/') != NULL) {
		if ((r = module_allowed(module, allowed, real)) != 0) {
			goto out;
		}
		/* the resolved path: what was checked is what is loaded */
		f = p11_kit_module_load(real, P11_KIT_MODULE_UNMANAGED);
		if (f == NULL) {
			log_warnx("cannot load PKCS#11 module %s: %s", module,
			    p11_kit_message());
			r = HK_ERR_CONFIG;
			goto out;
		}
	} else {
		mods = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
		if (mods == NULL) {
			log_warnx("cannot load p11-kit modules: %s",
			    p11_kit_message());
			r = HK_ERR_CONFIG;
			goto out;
		}
		if ((f = p11_kit_module_for_name(mods, module)) == NULL) {
			log_warnx("no p11-kit module named \"%s\"", module);
			r = HK_ERR_CONFIG;
		}
		/* keep only the one we use */
		for (i = 0; mods[i] != NULL; i++) {
			if (mods[i] != f) {
				p11_kit_module_release(mods[i]);
			}
		}
		free(mods); /* the array itself, malloc'ed by p11-kit */
		mods = NULL;
		if (f == NULL) {
			goto out;
		}
	}
	/* success */
	t->f = f;
	r = 0;
out:
	return r;
}

/* The token URI parsed.  Caller must p11_kit_uri_free(*pup). */
static int
uri_parse(const char *uri, P11KitUri **pup)
{
	P11KitUri *pu = NULL;
	int	   r = HK_ERR_INTERNAL, ur;

	*pup = NULL;
	if (uri == NULL) {
		log_warnx("no token URI configured");
		r = HK_ERR_CONFIG;
		goto out;
	}
	if ((pu = p11_kit_uri_new()) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	if ((ur = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_TOKEN, pu)) !=
	    P11_KIT_URI_OK) {
		log_warnx(
		    "token URI \"%s\": %s", uri, p11_kit_uri_message(ur));
		r = HK_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_any_unrecognized(pu)) {
		log_warnx("token URI \"%s\" has attributes that do not "
			  "select a token; they are ignored",
		    uri);
	}
	/* success */
	*pup = pu;
	pu = NULL;
	r = 0;
out:
	p11_kit_uri_free(pu);
	return r;
}

int
token_slot_list(struct token *t, CK_SLOT_ID **slotsp, CK_ULONG *np)
{
	CK_SLOT_ID *tmp;
	CK_RV	    rv;
	int	    r;

	*np = 0;
	for (;;) {
		if ((r = token_ck(t, "C_GetSlotList",
			 t->f->C_GetSlotList(CK_TRUE, NULL, np))) != 0) {
			return r;
		}
		if (*np == 0) {
			return 0;
		}
		if ((tmp = reallocarray(*slotsp, *np, sizeof(*tmp))) == NULL) {
			return HK_ERR_NOMEM;
		}
		*slotsp = tmp;
		rv = t->f->C_GetSlotList(CK_TRUE, *slotsp, np);
		if (rv != CKR_BUFFER_TOO_SMALL) {
			return token_ck(t, "C_GetSlotList", rv);
		}
		/* a token appeared meanwhile */
	}
}

void
token_slot_take(struct token *t, CK_SLOT_ID slot, const CK_TOKEN_INFO *info)
{
	size_t l;

	t->slot = slot;
	memcpy(t->label, info->label, sizeof(info->label));
	t->label[sizeof(info->label)] = '\0';
	for (l = sizeof(info->label); l > 0 && t->label[l - 1] == ' '; l--) {
		t->label[l - 1] = '\0';
	}
}

/* *matchp = 1 if slot holds an initialised token that pu matches. */
static int
slot_matches(struct token *t, P11KitUri *pu, CK_SLOT_ID slot,
    CK_TOKEN_INFO *info, int *matchp)
{
	CK_RV rv;
	int   r;

	*matchp = 0;
	rv = t->f->C_GetTokenInfo(slot, info);
	if (rv == CKR_TOKEN_NOT_PRESENT) {
		return 0; /* removed since C_GetSlotList */
	}
	if ((r = token_ck(t, "C_GetTokenInfo", rv)) != 0) {
		return r;
	}
	if (!p11_kit_uri_match_token_info(pu, info)) {
		return 0;
	}
	if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
		/* SoftHSM always offers one empty slot */
		log_debug("slot %lu: token not initialised, skipped",
		    (unsigned long)slot);
		return 0;
	}
	*matchp = 1;
	return 0;
}

/* Finds the one slot whose token matches uri. */
static int
select_token(struct token *t, const char *uri)
{
	P11KitUri    *pu = NULL;
	CK_SLOT_ID   *slots = NULL;
	CK_ULONG      nslots = 0, i, nmatch = 0;
	CK_TOKEN_INFO info;
	int	      r = HK_ERR_INTERNAL, match;

	if ((r = uri_parse(uri, &pu)) != 0 ||
	    (r = token_slot_list(t, &slots, &nslots)) != 0) {
		goto out;
	}
	for (i = 0; i < nslots; i++) {
		if ((r = slot_matches(t, pu, slots[i], &info, &match)) != 0) {
			goto out;
		}
		if (match && nmatch++ == 0) {
			token_slot_take(t, slots[i], &info);
		} else if (match) {
			log_warnx("token URI \"%s\" matches more than one "
				  "token (slots %lu and %lu); add serial= to "
				  "the URI",
			    uri, (unsigned long)t->slot,
			    (unsigned long)slots[i]);
		}
	}
	if (nmatch == 0) {
		log_warnx("no token matches \"%s\" (%lu slots with a token)",
		    uri, (unsigned long)nslots);
		r = HK_ERR_TOKEN_NOT_FOUND;
		goto out;
	}
	r = nmatch > 1 ? HK_ERR_CONFIG : 0;
out:
	free(slots);
	p11_kit_uri_free(pu);
	return r;
}

static int
login(struct token *t, const char *pin_file)
{
	char  *pin = NULL;
	size_t pinlen = 0;
	CK_RV  rv;
	int    r = HK_ERR_INTERNAL;

	if ((r = token_pin_read(pin_file, &pin, &pinlen)) != 0) {
		goto out;
	}
	if ((r = token_ck(t, "C_OpenSession",
		 t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL,
		     &t->login))) != 0) {
		goto out;
	}
	t->have_login = 1;
	rv = t->f->C_Login(
	    t->login, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pinlen);
	token_pin_free(pin);
	pin = NULL;
	if (rv == CKR_USER_ALREADY_LOGGED_IN) {
		/* someone else in this process logged in: theirs to undo */
		log_info(
		    "token %s: this process is already logged in", t->label);
		mark_ok(t);
		r = 0;
		goto out;
	}
	if (rv != CKR_OK && token_rv_map(rv) == HK_ERR_PIN) {
		/* a real HSM locks the user after a few wrong PINs: this
		 * process never tries again (one line: at start it exits) */
		atomic_store(&t->pin_refused, 1);
		log_error("token %s refused the PIN in %s: %s; hsmkeyd will "
			  "not log in again until it is restarted",
		    t->label, pin_file, p11_kit_strerror(rv));
		r = HK_ERR_PIN;
		goto out;
	}
	if ((r = token_ck(t, "C_Login", rv)) != 0) {
		goto out;
	}
	t->logged_in = 1;
	r = 0;
out:
	token_pin_free(pin);
	return r;
}

int
token_module_init(struct token *t)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV		     rv;
	int		     r;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = t->f->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		log_info("PKCS#11 module %s already initialised", t->module);
	} else if ((r = token_ck(t, "C_Initialize", rv)) != 0) {
		return r;
	} else {
		t->finalize = 1;
	}
	return 0;
}

int
token_attach(struct token *t)
{
	int r;

	if ((r = token_module_init(t)) != 0) {
		return r;
	}
	return token_find_login(t);
}

int
token_find_login(struct token *t)
{
	int r;

	if ((r = select_token(t, t->uri)) != 0 ||
	    (r = login(t, t->pin_file)) != 0) {
		return r;
	}
	log_info(
	    "token \"%s\" (slot %lu) open", t->label, (unsigned long)t->slot);
	return 0;
}

int
token_new(struct token **tp, const char *module, const char *uri,
    const char *pin_file)
{
	struct token	    *t;
	pthread_rwlockattr_t ga;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return HK_ERR_NOMEM;
	}
	atomic_init(&t->bad_rv, CKR_OK);
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->heal_mu, NULL);
	pthread_cond_init(&t->heal_cv, NULL);
	/* the healer must get its turn however busy the workers are */
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(
	    &ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->gate, &ga);
	pthread_rwlockattr_destroy(&ga);
	*tp = t;
	if ((module != NULL && (t->module = strdup(module)) == NULL) ||
	    (uri != NULL && (t->uri = strdup(uri)) == NULL) ||
	    (pin_file != NULL && (t->pin_file = strdup(pin_file)) == NULL)) {
		return HK_ERR_NOMEM;
	}
	return 0;
}

int
token_open(struct token **tp, const char *module, const char *allowed,
    const char *uri, const char *pin_file)
{
	struct token *t = NULL;
	int	      r = HK_ERR_INTERNAL;

	*tp = NULL;
	if ((r = token_new(&t, module, uri, pin_file)) != 0 ||
	    (r = token_module_load(t, module, allowed)) != 0 ||
	    (r = token_attach(t)) != 0) {
		goto out;
	}
	/* success */
	*tp = t;
	t = NULL;
	r = 0;
out:
	token_close(t);
	return r;
}

int
token_said(int r)
{
	return r == HK_ERR_PIN || r == HK_ERR_CONFIG;
}

static void
session_close(struct token *t, CK_SESSION_HANDLE h)
{
	CK_RV rv;

	if ((rv = t->f->C_CloseSession(h)) != CKR_OK) {
		token_rv_err(t, "C_CloseSession", rv);
	}
}

void
token_detach(struct token *t, int finalize)
{
	struct token_session *s;
	CK_RV		      rv;

	for (s = t->sessions; s != NULL; s = s->next) {
		if (s->h != CK_INVALID_HANDLE) {
			(void)t->f->C_CloseSession(s->h);
			s->h = CK_INVALID_HANDLE;
		}
	}
	if (t->logged_in) {
		rv = t->f->C_Logout(t->login);
		if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN && finalize) {
			log_debug("C_Logout: %s", p11_kit_strerror(rv));
		}
		t->logged_in = 0;
	}
	if (t->have_login) {
		(void)t->f->C_CloseSession(t->login);
		t->have_login = 0;
	}
	if (finalize && t->finalize) {
		(void)t->f->C_Finalize(NULL);
		t->finalize = 0;
	}
}

/* A new handle for s, after closing the old one if it has one. */
static int
session_reopen(struct token_session *s)
{
	struct token *t = s->t;
	int	      r;

	if (s->h != CK_INVALID_HANDLE) {
		(void)t->f->C_CloseSession(s->h);
		s->h = CK_INVALID_HANDLE;
	}
	if ((r = token_ck(t, "C_OpenSession",
		 t->f->C_OpenSession(t->slot,
		     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		     &s->h))) != 0) {
		s->h = CK_INVALID_HANDLE;
	}
	return r;
}

int
token_reopen_sessions(struct token *t)
{
	struct token_session *s;
	int		      r;

	for (s = t->sessions; s != NULL; s = s->next) {
		if ((r = session_reopen(s)) != 0) {
			return r;
		}
	}
	return 0;
}

void
token_close(struct token *t)
{
	struct token_session *s;
	CK_RV		      rv;

	if (t == NULL) {
		return;
	}
	if (t->f != NULL) {
		while ((s = t->sessions) != NULL) {
			t->sessions = s->next;
			if (s->h != CK_INVALID_HANDLE) {
				session_close(t, s->h);
			}
			free(s);
		}
		if (t->logged_in) {
			rv = t->f->C_Logout(t->login);
			if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN) {
				token_rv_err(t, "C_Logout", rv);
			}
		}
		if (t->have_login) {
			session_close(t, t->login);
		}
		if (t->finalize && (rv = t->f->C_Finalize(NULL)) != CKR_OK) {
			token_rv_err(t, "C_Finalize", rv);
		}
		p11_kit_module_release(t->f);
	}
	pthread_rwlock_destroy(&t->gate);
	pthread_cond_destroy(&t->heal_cv);
	pthread_mutex_destroy(&t->heal_mu);
	pthread_mutex_destroy(&t->mu);
	free(t->module);
	free(t->uri);
	free(t->pin_file);
	free(t);
}

const char *
token_label(const struct token *t)
{
	return t->label;
}

int
token_healthy(const struct token *t)
{
	return !atomic_load(&t->down) && atomic_load(&t->bad_rv) == CKR_OK;
}

const char *
token_state(const struct token *t)
{
	CK_RV rv = atomic_load(&t->bad_rv);

	if (atomic_load(&t->pin_refused)) {
		return "the token refused the PIN: fix the PIN file and "
		       "restart hsmkeyd";
	}
	if (rv == CKR_OK && atomic_load(&t->down)) {
		return "down: being reconnected";
	}
	return rv == CKR_OK ? "ok" : p11_kit_strerror(rv);
}

int
token_session_open(struct token *t, struct token_session **sp)
{
	struct token_session *s = NULL;
	int		      r = HK_ERR_INTERNAL;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	s->t = t;
	if ((r = token_away(t)) != 0 ||
	    (r = token_ck(t, "C_OpenSession",
		 t->f->C_OpenSession(t->slot,
		     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		     &s->h))) != 0) {
		goto out;
	}
	pthread_mutex_lock(&t->mu);
	s->next = t->sessions;
	if (t->sessions != NULL) {
		t->sessions->prev = s;
	}
	t->sessions = s;
	pthread_mutex_unlock(&t->mu);
	/* success */
	*sp = s;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

int
token_session_renew(struct token_session *s)
{
	int r;

	if ((r = session_reopen(s)) == 0) {
		log_info(
		    "token %s: a lost session was opened again", s->t->label);
	}
	return r;
}

void
token_session_close(struct token_session *s)
{
	struct token *t;

	if (s == NULL) {
		return;
	}
	t = s->t;
	pthread_mutex_lock(&t->mu);
	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else {
		t->sessions = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	}
	pthread_mutex_unlock(&t->mu);
	if (s->h != CK_INVALID_HANDLE && !atomic_load(&t->down)) {
		session_close(t, s->h);
	}
	free(s);
}

int
token_random(struct token_session *s, uint8_t *buf, size_t len)
{
	struct token *t = s->t;

	if (len == 0) {
		return 0;
	}
	if (token_away(t) != 0) {
		return HK_ERR_UNAVAILABLE;
	}
	return token_ck(t, "C_GenerateRandom",
	    t->f->C_GenerateRandom(s->h, buf, (CK_ULONG)len));
}

/*
 * The copy is made on the login session, which lives until token_close():
 * PKCS#11 destroys a session object when the session that created it
 * closes, so a copy made on a worker's session would vanish with it.
 * Session objects are visible to every session of the process.  C_CopyObject
 * keeps the key inside the token (CKA_SENSITIVE and CKA_EXTRACTABLE carry
 * over); nothing is extracted.
 */
int
token_copy_session(
    struct token_session *s, token_obj_t key, token_obj_t *copyp)
{
	struct token	*t = s->t;
	CK_ATTRIBUTE	 tmpl[] = { ATTR_BOOL(CKA_TOKEN, 0) };
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	CK_RV		 rv;
	int		 r = HK_ERR_INTERNAL;

	*copyp = TOKEN_OBJ_NONE;
	if ((r = token_away(t)) != 0) {
		return r;
	}
	pthread_mutex_lock(&t->mu);
	rv = t->f->C_CopyObject(t->login, key, tmpl, NITEMS(tmpl), &copy);
	pthread_mutex_unlock(&t->mu);
	if ((r = token_ck(t, "C_CopyObject", rv)) != 0) {
		goto out;
	}
	/* success */
	*copyp = copy;
	r = 0;
out:
	return r;
}
