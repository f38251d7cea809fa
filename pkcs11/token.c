/*
 * token.c: everything hsmkey says to a PKCS#11 token (see token.h).
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
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hk_err.h"
#include "log.h"
#include "pubkey.h"
#include "token.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#define PIN_MAX	    256		  /* bytes in a PIN file */
#define ATTR_MAX    (1024 * 1024) /* CKA_VALUE of a data object */
#define KEYATTR_MAX 4096	  /* a public key attribute */
#define LIST_BATCH  256		  /* handles per C_FindObjects */
#define SIG_SCRATCH 1024	  /* finishes a too-small C_Sign */

struct token_session {
	struct token	     *t;
	CK_SESSION_HANDLE     h;
	struct token_session *prev, *next;
};

struct token {
	CK_FUNCTION_LIST     *f;
	int		      finalize; /* we initialised the module */
	CK_SLOT_ID	      slot;
	CK_SESSION_HANDLE     login; /* read-only, lives until close */
	int		      have_login;
	int		      logged_in;
	char		      label[33];
	pthread_mutex_t	      mu; /* sessions, login session use */
	struct token_session *sessions;
	_Atomic unsigned long bad_rv; /* CKR_OK while healthy */
};

static const CK_BBOOL ck_true = CK_TRUE;
static const CK_BBOOL ck_false = CK_FALSE;

/* Template helpers: PKCS#11 wants non-const pointers it never writes. */
#define ATTR(typ, ptr, len)                                      \
	{                                                        \
		(typ), (void *)(uintptr_t)(ptr), (CK_ULONG)(len) \
	}
#define ATTR_VAR(typ, var) ATTR((typ), &(var), sizeof(var))
#define ATTR_BOOL(typ, b) \
	ATTR((typ), (b) ? &ck_true : &ck_false, sizeof(CK_BBOOL))
#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

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

static int
rv_map(CK_RV rv)
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

/* Logs a failed call and maps rv; a device error marks t unhealthy. */
static int
rv_to_err(struct token *t, const char *call, CK_RV rv)
{
	int r = rv_map(rv);

	if (t != NULL && rv_is_device(rv)) {
		atomic_store(&t->bad_rv, rv);
		log_err_r(r, "%s failed: %s (0x%lx)", call,
		    p11_kit_strerror(rv), (unsigned long)rv);
	} else {
		log_warnx("%s failed: %s (0x%lx)", call, p11_kit_strerror(rv),
		    (unsigned long)rv);
	}
	return r;
}

/* A call succeeded: the token works (again).  Cheap on the hot path. */
static inline void
mark_ok(struct token *t)
{
	if (atomic_load_explicit(&t->bad_rv, memory_order_relaxed) != CKR_OK) {
		atomic_store(&t->bad_rv, CKR_OK);
	}
}

/* 0 for CKR_OK (marking t healthy), else the logged, mapped error. */
static int
ck(struct token *t, const char *call, CK_RV rv)
{
	if (rv == CKR_OK) {
		mark_ok(t);
		return 0;
	}
	return rv_to_err(t, call, rv);
}

/*
 * Reads the PIN file into a locked, non-dumpable page.  Strips one trailing
 * newline; refuses an empty PIN.  Caller must pin_free(*pinp, PIN_PAGE).
 */
static size_t
pin_page(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > PIN_MAX ? (size_t)ps : 4096;
}

static void
pin_free(char *pin, size_t page)
{
	if (pin == NULL) {
		return;
	}
	explicit_bzero(pin, page);
	munlock(pin, page);
	munmap(pin, page);
}

static int
pin_read(const char *path, char **pinp, size_t *lenp)
{
	struct stat st;
	char	   *pin = NULL;
	size_t	    page = pin_page(), len = 0;
	ssize_t	    n;
	int	    r = HK_ERR_INTERNAL, fd = -1;

	*pinp = NULL;
	*lenp = 0;
	if (path == NULL || *path == '\0') {
		log_warnx("no PIN file configured");
		r = HK_ERR_PIN;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		log_warn("PIN file %s", path);
		r = HK_ERR_PIN;
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("fstat %s", path);
		r = HK_ERR_PIN;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("PIN file %s is not a regular file", path);
		r = HK_ERR_PIN;
		goto out;
	}
	if ((st.st_mode & 027) != 0) {
		log_warnx("PIN file %s has mode %04o, looser than 0640", path,
		    (unsigned int)(st.st_mode & 07777));
	}
	pin = mmap(NULL, page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pin == MAP_FAILED) {
		pin = NULL;
		log_warn("mmap");
		r = HK_ERR_NOMEM;
		goto out;
	}
	if (mlock(pin, page) == -1) {
		/* XXX RLIMIT_MEMLOCK may be 0 in containers: warn, go on */
		log_warn("mlock of the PIN page");
	}
	if (madvise(pin, page, MADV_DONTDUMP) == -1) {
		log_warn("madvise MADV_DONTDUMP");
	}
	for (;;) {
		n = read(fd, pin + len, PIN_MAX + 1 - len);
		if (n == -1 && errno == EINTR) {
			continue;
		}
		if (n == -1) {
			log_warn("read %s", path);
			r = HK_ERR_PIN;
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
		if (len > PIN_MAX) {
			log_warnx("PIN file %s is longer than %d bytes", path,
			    PIN_MAX);
			r = HK_ERR_PIN;
			goto out;
		}
	}
	if (len > 0 && pin[len - 1] == '\n') {
		pin[--len] = '\0';
	}
	if (len == 0) {
		log_warnx("PIN file %s is empty", path);
		r = HK_ERR_PIN;
		goto out;
	}
	/* success */
	*pinp = pin;
	*lenp = len;
	pin = NULL;
	r = 0;
out:
	pin_free(pin, page);
	if (fd != -1) {
		close(fd);
	}
	return r;
}

/* Loads module by path or by p11-kit registered name into t->f. */
static int
module_load(struct token *t, const char *module)
{
	CK_FUNCTION_LIST **mods = NULL;
	CK_FUNCTION_LIST  *f = NULL;
	size_t		   i;
	int		   r = HK_ERR_INTERNAL;

	if (module == NULL || *module == '\0') {
		log_warnx("no PKCS#11 module configured");
		r = HK_ERR_CONFIG;
		goto out;
	}
	if (strchr(module, '/') != NULL) {
		f = p11_kit_module_load(module, P11_KIT_MODULE_UNMANAGED);
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

/* Finds the one slot whose token matches uri. */
static int
select_token(struct token *t, const char *uri)
{
	P11KitUri    *pu = NULL;
	CK_SLOT_ID   *slots = NULL, *tmp;
	CK_ULONG      nslots = 0, i, nmatch = 0;
	CK_TOKEN_INFO info;
	CK_RV	      rv;
	size_t	      l;
	int	      r = HK_ERR_INTERNAL, ur;

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
	for (;;) {
		if ((r = ck(t, "C_GetSlotList",
			 t->f->C_GetSlotList(CK_TRUE, NULL, &nslots))) != 0) {
			goto out;
		}
		if (nslots == 0) {
			break;
		}
		if ((tmp = reallocarray(slots, nslots, sizeof(*slots))) ==
		    NULL) {
			r = HK_ERR_NOMEM;
			goto out;
		}
		slots = tmp;
		rv = t->f->C_GetSlotList(CK_TRUE, slots, &nslots);
		if (rv == CKR_BUFFER_TOO_SMALL) {
			continue; /* a token appeared meanwhile */
		}
		if ((r = ck(t, "C_GetSlotList", rv)) != 0) {
			goto out;
		}
		break;
	}
	for (i = 0; i < nslots; i++) {
		rv = t->f->C_GetTokenInfo(slots[i], &info);
		if (rv == CKR_TOKEN_NOT_PRESENT) {
			continue; /* removed since C_GetSlotList */
		}
		if ((r = ck(t, "C_GetTokenInfo", rv)) != 0) {
			goto out;
		}
		if (!p11_kit_uri_match_token_info(pu, &info)) {
			continue;
		}
		if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) {
			/* SoftHSM always offers one empty slot */
			log_debug("slot %lu: token not initialised, skipped",
			    (unsigned long)slots[i]);
			continue;
		}
		if (nmatch++ == 0) {
			t->slot = slots[i];
			memcpy(t->label, info.label, sizeof(info.label));
			t->label[sizeof(info.label)] = '\0';
			for (l = sizeof(info.label);
			     l > 0 && t->label[l - 1] == ' '; l--) {
				t->label[l - 1] = '\0';
			}
		} else {
			log_warnx(
			    "token URI \"%s\" matches more than one "
			    "token (slots %lu and %lu); add serial= to the "
			    "URI",
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
	if (nmatch > 1) {
		r = HK_ERR_CONFIG;
		goto out;
	}
	r = 0;
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

	if ((r = pin_read(pin_file, &pin, &pinlen)) != 0) {
		goto out;
	}
	if ((r = ck(t, "C_OpenSession",
		 t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL,
		     &t->login))) != 0) {
		goto out;
	}
	t->have_login = 1;
	rv = t->f->C_Login(
	    t->login, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pinlen);
	pin_free(pin, pin_page());
	pin = NULL;
	if (rv == CKR_USER_ALREADY_LOGGED_IN) {
		/* someone else in this process logged in: theirs to undo */
		log_info(
		    "token %s: this process is already logged in", t->label);
		mark_ok(t);
		r = 0;
		goto out;
	}
	if ((r = ck(t, "C_Login", rv)) != 0) {
		goto out;
	}
	t->logged_in = 1;
	r = 0;
out:
	pin_free(pin, pin_page());
	return r;
}

int
token_open(struct token **tp, const char *module, const char *uri,
    const char *pin_file)
{
	struct token	    *t = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_RV		     rv;
	int		     r = HK_ERR_INTERNAL;

	*tp = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	atomic_init(&t->bad_rv, CKR_OK);
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		t = NULL;
		goto out;
	}
	if ((r = module_load(t, module)) != 0) {
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = t->f->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		log_info("PKCS#11 module %s already initialised", module);
	} else if ((r = ck(t, "C_Initialize", rv)) != 0) {
		goto out;
	} else {
		t->finalize = 1;
	}
	if ((r = select_token(t, uri)) != 0 || (r = login(t, pin_file)) != 0) {
		goto out;
	}
	log_info(
	    "token \"%s\" (slot %lu) open", t->label, (unsigned long)t->slot);
	/* success */
	*tp = t;
	t = NULL;
	r = 0;
out:
	token_close(t);
	return r;
}

static void
session_close(struct token *t, CK_SESSION_HANDLE h)
{
	CK_RV rv;

	if ((rv = t->f->C_CloseSession(h)) != CKR_OK) {
		rv_to_err(t, "C_CloseSession", rv);
	}
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
			session_close(t, s->h);
			free(s);
		}
		if (t->logged_in) {
			rv = t->f->C_Logout(t->login);
			if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN) {
				rv_to_err(t, "C_Logout", rv);
			}
		}
		if (t->have_login) {
			session_close(t, t->login);
		}
		if (t->finalize && (rv = t->f->C_Finalize(NULL)) != CKR_OK) {
			rv_to_err(t, "C_Finalize", rv);
		}
		p11_kit_module_release(t->f);
	}
	pthread_mutex_destroy(&t->mu);
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
	return atomic_load(&t->bad_rv) == CKR_OK;
}

const char *
token_state(const struct token *t)
{
	CK_RV rv = atomic_load(&t->bad_rv);

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
	if ((r = ck(t, "C_OpenSession",
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
	session_close(t, s->h);
	free(s);
}

/* CK_DATE (UTC) of a time in milliseconds since the epoch. */
static void
put_digits(unsigned char *p, unsigned int v, int n)
{
	while (n-- > 0) {
		p[n] = (unsigned char)('0' + v % 10);
		v /= 10;
	}
}

static int
ms_to_date(uint64_t ms, CK_DATE *d)
{
	struct tm tm;
	time_t	  secs = (time_t)(ms / 1000);

	if (gmtime_r(&secs, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year + 1900 > 9999) {
		return HK_ERR_INVALID;
	}
	put_digits(d->year, (unsigned int)tm.tm_year + 1900, 4);
	put_digits(d->month, (unsigned int)tm.tm_mon + 1, 2);
	put_digits(d->day, (unsigned int)tm.tm_mday, 2);
	return 0;
}

/* DER OIDs of the curves, as CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
	0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
/* id-Ed25519 (RFC 8410); SoftHSM 2.6.1 takes the OID, not "edwards25519" */
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t rsa_e65537[] = { 0x01, 0x00, 0x01 };

int
token_generate(struct token_session *s, const struct token_keyspec *spec,
    token_obj_t *privp, token_obj_t *pubp)
{
	struct token   *t = s->t;
	CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY,
			pub_class = CKO_PUBLIC_KEY;
	CK_KEY_TYPE	  ktype;
	CK_MECHANISM	  mech = { 0, NULL, 0 };
	CK_MECHANISM_TYPE allowed[2];
	CK_ULONG	  nallowed = 0, bits = 0;
	CK_OBJECT_HANDLE  priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
	CK_DATE		  start, end;
	const uint8_t	 *params = NULL;
	size_t		  plen = 0, labellen;
	CK_ATTRIBUTE	  ptmpl[24], utmpl[24];
	CK_ULONG	  np = 0, nu = 0;
	int		  r = HK_ERR_INTERNAL;

	*privp = TOKEN_OBJ_NONE;
	*pubp = TOKEN_OBJ_NONE;
	if (spec->label == NULL ||
	    (labellen = strlen(spec->label)) > TOKEN_LABEL_MAX ||
	    spec->id_len > TOKEN_ID_MAX ||
	    (spec->id == NULL && spec->id_len != 0)) {
		r = HK_ERR_INVALID;
		goto out;
	}
	switch (spec->type) {
	case TOKEN_KEY_EC_P256:
	case TOKEN_KEY_EC_P384:
		ktype = CKK_EC;
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		allowed[nallowed++] = CKM_ECDSA;
		if (spec->type == TOKEN_KEY_EC_P256) {
			params = oid_p256;
			plen = sizeof(oid_p256);
		} else {
			params = oid_p384;
			plen = sizeof(oid_p384);
		}
		break;
	case TOKEN_KEY_ED25519:
		ktype = CKK_EC_EDWARDS;
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		allowed[nallowed++] = CKM_EDDSA;
		params = oid_ed25519;
		plen = sizeof(oid_ed25519);
		break;
	case TOKEN_KEY_RSA:
		if (spec->rsa_bits != 2048 && spec->rsa_bits != 3072 &&
		    spec->rsa_bits != 4096) {
			log_warnx("RSA keys have 2048, 3072 or 4096 bits, "
				  "not %u",
			    spec->rsa_bits);
			r = HK_ERR_INVALID;
			goto out;
		}
		ktype = CKK_RSA;
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		allowed[nallowed++] = CKM_RSA_PKCS_PSS;
		allowed[nallowed++] = CKM_RSA_PKCS;
		bits = spec->rsa_bits;
		break;
	default:
		r = HK_ERR_INVALID;
		goto out;
	}

#define P(a) ptmpl[np++] = (CK_ATTRIBUTE)a
#define U(a) utmpl[nu++] = (CK_ATTRIBUTE)a
	P(ATTR_VAR(CKA_CLASS, priv_class));
	P(ATTR_VAR(CKA_KEY_TYPE, ktype));
	P(ATTR_BOOL(CKA_TOKEN, 1));
	P(ATTR_BOOL(CKA_PRIVATE, 1));
	P(ATTR_BOOL(CKA_SENSITIVE, 1));
	P(ATTR_BOOL(CKA_EXTRACTABLE, 0));
	P(ATTR_BOOL(CKA_SIGN, spec->can_sign));
	P(ATTR_BOOL(CKA_SIGN_RECOVER, 0));
	P(ATTR_BOOL(CKA_DECRYPT, 0));
	P(ATTR_BOOL(CKA_UNWRAP, 0));
	P(ATTR_BOOL(CKA_DERIVE, 0));
	P(ATTR_BOOL(CKA_ALWAYS_AUTHENTICATE, 0));
	P(ATTR(CKA_ALLOWED_MECHANISMS, allowed,
	    nallowed * sizeof(CK_MECHANISM_TYPE)));
	P(ATTR(CKA_LABEL, spec->label, labellen));
	P(ATTR(CKA_ID, spec->id, spec->id_len));

	U(ATTR_VAR(CKA_CLASS, pub_class));
	U(ATTR_VAR(CKA_KEY_TYPE, ktype));
	U(ATTR_BOOL(CKA_TOKEN, !spec->pub_session));
	U(ATTR_BOOL(CKA_PRIVATE, 0));
	U(ATTR_BOOL(CKA_VERIFY, 1));
	U(ATTR_BOOL(CKA_VERIFY_RECOVER, 0));
	U(ATTR_BOOL(CKA_ENCRYPT, 0));
	U(ATTR_BOOL(CKA_WRAP, 0));
	U(ATTR_BOOL(CKA_DERIVE, 0));
	U(ATTR(CKA_ALLOWED_MECHANISMS, allowed,
	    nallowed * sizeof(CK_MECHANISM_TYPE)));
	U(ATTR(CKA_LABEL, spec->label, labellen));
	U(ATTR(CKA_ID, spec->id, spec->id_len));
	if (params != NULL) {
		U(ATTR(CKA_EC_PARAMS, params, plen));
	} else {
		U(ATTR_VAR(CKA_MODULUS_BITS, bits));
		U(ATTR(CKA_PUBLIC_EXPONENT, rsa_e65537, sizeof(rsa_e65537)));
	}
	if (spec->start_ms != 0) {
		if ((r = ms_to_date(spec->start_ms, &start)) != 0) {
			goto out;
		}
		P(ATTR_VAR(CKA_START_DATE, start));
		U(ATTR_VAR(CKA_START_DATE, start));
	}
	if (spec->end_ms != 0) {
		if ((r = ms_to_date(spec->end_ms, &end)) != 0) {
			goto out;
		}
		P(ATTR_VAR(CKA_END_DATE, end));
		U(ATTR_VAR(CKA_END_DATE, end));
	}
#undef P
#undef U

	if ((r = ck(t, "C_GenerateKeyPair",
		 t->f->C_GenerateKeyPair(
		     s->h, &mech, utmpl, nu, ptmpl, np, &pub, &priv))) != 0) {
		goto out;
	}
	/* success */
	*privp = priv;
	*pubp = pub;
	r = 0;
out:
	return r;
}

/*
 * CKR_BUFFER_TOO_SMALL leaves the sign operation active; finish it into a
 * scratch buffer so that the session can sign again.  Out of line so that
 * the hot path does not pay for the (zero-initialised) scratch buffer.
 */
static __attribute__((noinline)) void
sign_drain(struct token_session *s, const uint8_t *in, size_t inlen)
{
	uint8_t	 scratch[SIG_SCRATCH];
	CK_ULONG len = sizeof(scratch);

	(void)s->t->f->C_Sign(
	    s->h, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, scratch, &len);
	explicit_bzero(scratch, sizeof(scratch));
}

int
token_sign(struct token_session *s, token_obj_t key, enum token_mech mech,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen)
{
	struct token	      *t = s->t;
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM	       m = { 0, NULL, 0 };
	CK_ULONG	       len;
	CK_RV		       rv;
	int		       r = HK_ERR_INTERNAL;

	if (sig == NULL || *siglen == 0 || (in == NULL && inlen != 0)) {
		r = HK_ERR_INVALID;
		goto out;
	}
	switch (mech) {
	case TOKEN_MECH_ECDSA:
		m.mechanism = CKM_ECDSA;
		break;
	case TOKEN_MECH_EDDSA:
		m.mechanism = CKM_EDDSA;
		break;
	case TOKEN_MECH_RSA_PSS_SHA256:
		if (inlen != 32) {
			r = HK_ERR_INVALID;
			goto out;
		}
		m.mechanism = CKM_RSA_PKCS_PSS;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
		break;
	case TOKEN_MECH_RSA_PKCS1:
		m.mechanism = CKM_RSA_PKCS;
		break;
	case TOKEN_MECH_HMAC_SHA256:
		m.mechanism = CKM_SHA256_HMAC;
		break;
	default:
		r = HK_ERR_INVALID;
		goto out;
	}
	if ((r = ck(t, "C_SignInit", t->f->C_SignInit(s->h, &m, key))) != 0) {
		goto out;
	}
	len = (CK_ULONG)*siglen;
	rv = t->f->C_Sign(
	    s->h, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, sig, &len);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		sign_drain(s, in, inlen);
		r = rv_to_err(t, "C_Sign", rv);
		goto out;
	}
	if ((r = ck(t, "C_Sign", rv)) != 0) {
		goto out;
	}
	/* success */
	*siglen = (size_t)len;
	r = 0;
out:
	return r;
}

/*
 * Reads n variable-length attributes of obj: a size query, then one fetch.
 * Each tmpl[i].pValue is malloc'ed (caller frees, also on error) and
 * capped at max bytes.
 */
static int
get_attrs(struct token_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl,
    CK_ULONG n, size_t max)
{
	struct token *t = s->t;
	CK_ULONG      i;
	int	      r = HK_ERR_INTERNAL;

	for (i = 0; i < n; i++) {
		tmpl[i].pValue = NULL;
		tmpl[i].ulValueLen = 0;
	}
	if ((r = ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, obj, tmpl, n))) != 0) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
		    tmpl[i].ulValueLen > max) {
			log_warnx("object attribute 0x%lx is unavailable or "
				  "too long",
			    (unsigned long)tmpl[i].type);
			r = HK_ERR_TOO_LARGE;
			goto out;
		}
		/* +1: malloc(0) may return NULL */
		if ((tmpl[i].pValue = malloc(tmpl[i].ulValueLen + 1)) ==
		    NULL) {
			r = HK_ERR_NOMEM;
			goto out;
		}
	}
	if ((r = ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, obj, tmpl, n))) != 0) {
		goto out;
	}
	r = 0;
out:
	return r;
}

static void
free_attrs(CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		free(tmpl[i].pValue);
		tmpl[i].pValue = NULL;
	}
}

int
token_pubkey_der(
    struct token_session *s, token_obj_t pub, uint8_t **derp, size_t *lenp)
{
	struct token *t = s->t;
	CK_KEY_TYPE   ktype = 0;
	CK_ATTRIBUTE  kt[] = { ATTR_VAR(CKA_KEY_TYPE, ktype) };
	CK_ATTRIBUTE  a[2] = { { 0, NULL, 0 }, { 0, NULL, 0 } };
	int	      r = HK_ERR_INTERNAL;

	*derp = NULL;
	*lenp = 0;
	if ((r = ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, pub, kt, NITEMS(kt)))) != 0) {
		goto out;
	}
	switch (ktype) {
	case CKK_EC:
		a[0].type = CKA_EC_PARAMS;
		a[1].type = CKA_EC_POINT;
		if ((r = get_attrs(s, pub, a, 2, KEYATTR_MAX)) != 0 ||
		    (r = pubkey_ec_der(a[0].pValue, a[0].ulValueLen,
			 a[1].pValue, a[1].ulValueLen, derp, lenp)) != 0) {
			goto out;
		}
		break;
	case CKK_EC_EDWARDS:
		a[0].type = CKA_EC_POINT;
		if ((r = get_attrs(s, pub, a, 1, KEYATTR_MAX)) != 0 ||
		    (r = pubkey_ed25519_der(
			 a[0].pValue, a[0].ulValueLen, derp, lenp)) != 0) {
			goto out;
		}
		break;
	case CKK_RSA:
		a[0].type = CKA_MODULUS;
		a[1].type = CKA_PUBLIC_EXPONENT;
		if ((r = get_attrs(s, pub, a, 2, KEYATTR_MAX)) != 0 ||
		    (r = pubkey_rsa_der(a[0].pValue, a[0].ulValueLen,
			 a[1].pValue, a[1].ulValueLen, derp, lenp)) != 0) {
			goto out;
		}
		break;
	default:
		log_warnx("public key of type 0x%lx is not supported",
		    (unsigned long)ktype);
		r = HK_ERR_UNSUPPORTED;
		goto out;
	}
	r = 0;
out:
	free_attrs(a, NITEMS(a));
	return r;
}

int
token_set_can_sign(struct token_session *s, token_obj_t key, int can_sign)
{
	struct token *t = s->t;
	CK_ATTRIBUTE  a[] = { ATTR_BOOL(CKA_SIGN, can_sign) };
	CK_RV	      rv;

	rv = t->f->C_SetAttributeValue(s->h, key, a, NITEMS(a));
	switch (rv) {
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_ACTION_PROHIBITED:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_FUNCTION_NOT_SUPPORTED:
		rv_to_err(t, "C_SetAttributeValue(CKA_SIGN)", rv);
		return HK_ERR_UNSUPPORTED;
	default:
		return ck(t, "C_SetAttributeValue(CKA_SIGN)", rv);
	}
}

int
token_destroy(struct token_session *s, token_obj_t obj)
{
	struct token *t = s->t;

	return ck(t, "C_DestroyObject", t->f->C_DestroyObject(s->h, obj));
}

static int
class_of(CK_OBJECT_CLASS c, enum token_class *kp)
{
	switch (c) {
	case CKO_PRIVATE_KEY:
		*kp = TOKEN_CLASS_PRIVATE;
		return 1;
	case CKO_PUBLIC_KEY:
		*kp = TOKEN_CLASS_PUBLIC;
		return 1;
	case CKO_SECRET_KEY:
		*kp = TOKEN_CLASS_SECRET;
		return 1;
	case CKO_DATA:
		*kp = TOKEN_CLASS_DATA;
		return 1;
	default:
		return 0;
	}
}

/* Every token object's handle, in one search.  Caller frees *hp. */
static int
find_all(struct token_session *s, CK_OBJECT_HANDLE **hp, size_t *np)
{
	struct token	 *t = s->t;
	CK_ATTRIBUTE	  tmpl[] = { ATTR_BOOL(CKA_TOKEN, 1) };
	CK_OBJECT_HANDLE *h = NULL, *tmp;
	CK_ULONG	  got;
	size_t		  n = 0, cap = 0;
	CK_RV		  rv;
	int		  r = HK_ERR_INTERNAL, active = 0;

	*hp = NULL;
	*np = 0;
	if ((r = ck(t, "C_FindObjectsInit",
		 t->f->C_FindObjectsInit(s->h, tmpl, NITEMS(tmpl)))) != 0) {
		goto out;
	}
	active = 1;
	for (;;) {
		if (cap - n < LIST_BATCH) {
			if ((tmp = reallocarray(h, cap + 4 * LIST_BATCH,
				 sizeof(*h))) == NULL) {
				r = HK_ERR_NOMEM;
				goto out;
			}
			h = tmp;
			cap += 4 * LIST_BATCH;
		}
		got = 0;
		if ((r = ck(t, "C_FindObjects",
			 t->f->C_FindObjects(
			     s->h, h + n, LIST_BATCH, &got))) != 0) {
			goto out;
		}
		if (got == 0) {
			break;
		}
		n += got;
	}
	/* success */
	*hp = h;
	*np = n;
	h = NULL;
	r = 0;
out:
	if (active && (rv = t->f->C_FindObjectsFinal(s->h)) != CKR_OK) {
		rv_to_err(t, "C_FindObjectsFinal", rv);
		if (r == 0) {
			r = rv_map(rv);
			free(*hp);
			*hp = NULL;
			*np = 0;
		}
	}
	free(h);
	return r;
}

int
token_list(struct token_session *s, const char		     *prefix,
    int (*cb)(void *arg, const struct token_object *o), void *arg)
{
	struct token	   *t = s->t;
	struct token_object o;
	CK_OBJECT_HANDLE   *h = NULL;
	CK_OBJECT_CLASS	    cls;
	CK_BBOOL	    sign;
	CK_ATTRIBUTE	    a[4];
	size_t		    n = 0, i, plen;
	CK_RV		    rv;
	int		    r = HK_ERR_INTERNAL;

	if (prefix == NULL) {
		prefix = "";
	}
	plen = strlen(prefix);
	if ((r = find_all(s, &h, &n)) != 0) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		a[0] = (CK_ATTRIBUTE)ATTR_VAR(CKA_CLASS, cls);
		a[1] = (CK_ATTRIBUTE)ATTR(CKA_LABEL, o.label, TOKEN_LABEL_MAX);
		a[2] = (CK_ATTRIBUTE)ATTR(CKA_ID, o.id, TOKEN_ID_MAX);
		/* one call per object: at 20,000 objects each call costs
		 * SoftHSM a file check; keys answer CKA_SIGN, the others
		 * mark it unavailable */
		sign = CK_FALSE;
		a[3] = (CK_ATTRIBUTE)ATTR_VAR(CKA_SIGN, sign);
		rv = t->f->C_GetAttributeValue(s->h, h[i], a, NITEMS(a));
		switch (rv) {
		case CKR_OK:
		case CKR_ATTRIBUTE_TYPE_INVALID: /* CKO_DATA: no CKA_ID */
		case CKR_ATTRIBUTE_SENSITIVE:
			/* the other attributes are filled in all the same */
			mark_ok(t);
			break;
		case CKR_BUFFER_TOO_SMALL:	/* label or id too long */
		case CKR_OBJECT_HANDLE_INVALID: /* destroyed meanwhile */
			continue;
		default:
			r = rv_to_err(t, "C_GetAttributeValue", rv);
			goto out;
		}
		if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
		    a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			continue;
		}
		if (a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			a[2].ulValueLen = 0;
		}
		if (!class_of(cls, &o.klass) ||
		    a[1].ulValueLen > TOKEN_LABEL_MAX ||
		    a[2].ulValueLen > TOKEN_ID_MAX || a[1].ulValueLen < plen ||
		    memcmp(o.label, prefix, plen) != 0 ||
		    memchr(o.label, '\0', a[1].ulValueLen) != NULL) {
			continue;
		}
		o.handle = h[i];
		o.label[a[1].ulValueLen] = '\0';
		o.id_len = a[2].ulValueLen;
		if ((o.klass == TOKEN_CLASS_PRIVATE ||
			o.klass == TOKEN_CLASS_SECRET) &&
		    a[3].ulValueLen == sizeof(sign)) {
			o.can_sign = sign == CK_TRUE;
		}
		if ((r = cb(arg, &o)) != 0) {
			goto out;
		}
	}
	r = 0;
out:
	free(h);
	return r;
}

struct list_all {
	struct token_object *objs;
	size_t		     n, cap, max;
};

static int
list_all_cb(void *arg, const struct token_object *o)
{
	struct list_all	    *c = arg;
	struct token_object *nobjs;

	if (c->n == c->cap) {
		if (c->cap >= c->max) {
			return HK_ERR_TOO_LARGE;
		}
		c->cap = c->cap ? c->cap * 2 : 256;
		if (c->cap > c->max) {
			c->cap = c->max;
		}
		if ((nobjs = reallocarray(c->objs, c->cap, sizeof(*nobjs))) ==
		    NULL) {
			return HK_ERR_NOMEM;
		}
		c->objs = nobjs;
	}
	c->objs[c->n++] = *o;
	return 0;
}

int
token_list_all(struct token_session *s, const char *prefix, size_t max,
    struct token_object **objsp, size_t *np)
{
	struct list_all c = { NULL, 0, 0, max };
	int		r;

	r = token_list(s, prefix, list_all_cb, &c);
	*objsp = c.objs;
	*np = c.n;
	return r;
}

static const char app_hsmkey[] = "hsmkey";

int
token_data_create(struct token_session *s, const char *label,
    const uint8_t *value, size_t len, token_obj_t *objp)
{
	struct token	*t = s->t;
	CK_OBJECT_CLASS	 cls = CKO_DATA;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	size_t		 labellen;
	int		 r = HK_ERR_INTERNAL;

	*objp = TOKEN_OBJ_NONE;
	if (label == NULL || (labellen = strlen(label)) > TOKEN_LABEL_MAX ||
	    (value == NULL && len != 0) || len > ATTR_MAX) {
		r = HK_ERR_INVALID;
		goto out;
	}
	{
		CK_ATTRIBUTE tmpl[] = {
			ATTR_VAR(CKA_CLASS, cls),
			ATTR_BOOL(CKA_TOKEN, 1),
			ATTR_BOOL(CKA_PRIVATE, 1),
			ATTR_BOOL(CKA_MODIFIABLE, 1),
			ATTR(CKA_APPLICATION, app_hsmkey,
			    sizeof(app_hsmkey) - 1),
			ATTR(CKA_LABEL, label, labellen),
			ATTR(CKA_VALUE, value, len),
		};

		if ((r = ck(t, "C_CreateObject",
			 t->f->C_CreateObject(
			     s->h, tmpl, NITEMS(tmpl), &obj))) != 0) {
			goto out;
		}
	}
	/* success */
	*objp = obj;
	r = 0;
out:
	return r;
}

int
token_data_read(
    struct token_session *s, token_obj_t obj, uint8_t **valuep, size_t *lenp)
{
	CK_ATTRIBUTE a[1] = { { CKA_VALUE, NULL, 0 } };
	int	     r = HK_ERR_INTERNAL;

	*valuep = NULL;
	*lenp = 0;
	if ((r = get_attrs(s, obj, a, 1, ATTR_MAX)) != 0) {
		goto out;
	}
	/* success */
	*valuep = a[0].pValue;
	*lenp = a[0].ulValueLen;
	a[0].pValue = NULL;
	r = 0;
out:
	free_attrs(a, 1);
	return r;
}

int
token_random(struct token_session *s, uint8_t *buf, size_t len)
{
	struct token *t = s->t;

	if (len == 0) {
		return 0;
	}
	return ck(t, "C_GenerateRandom",
	    t->f->C_GenerateRandom(s->h, buf, (CK_ULONG)len));
}

int
token_secret_create(struct token_session *s, const char *label,
    const uint8_t *id, size_t id_len, const uint8_t *secret, size_t len,
    token_obj_t *objp)
{
	struct token	 *t = s->t;
	CK_OBJECT_CLASS	  cls = CKO_SECRET_KEY;
	CK_KEY_TYPE	  ktype = CKK_GENERIC_SECRET;
	CK_MECHANISM_TYPE allowed[] = { CKM_SHA256_HMAC };
	CK_OBJECT_HANDLE  obj = CK_INVALID_HANDLE;
	size_t		  labellen;
	int		  r = HK_ERR_INTERNAL;

	*objp = TOKEN_OBJ_NONE;
	if (label == NULL || (labellen = strlen(label)) > TOKEN_LABEL_MAX ||
	    id_len > TOKEN_ID_MAX || (id == NULL && id_len != 0) ||
	    secret == NULL || len == 0 || len > KEYATTR_MAX) {
		r = HK_ERR_INVALID;
		goto out;
	}
	{
		/* the template points at the caller's secret: no copy */
		CK_ATTRIBUTE tmpl[] = {
			ATTR_VAR(CKA_CLASS, cls),
			ATTR_VAR(CKA_KEY_TYPE, ktype),
			ATTR_BOOL(CKA_TOKEN, 1),
			ATTR_BOOL(CKA_PRIVATE, 1),
			ATTR_BOOL(CKA_SENSITIVE, 1),
			ATTR_BOOL(CKA_EXTRACTABLE, 0),
			ATTR_BOOL(CKA_SIGN, 1),
			ATTR_BOOL(CKA_VERIFY, 1),
			ATTR_BOOL(CKA_ENCRYPT, 0),
			ATTR_BOOL(CKA_DECRYPT, 0),
			ATTR_BOOL(CKA_WRAP, 0),
			ATTR_BOOL(CKA_UNWRAP, 0),
			ATTR_BOOL(CKA_DERIVE, 0),
			ATTR(CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)),
			ATTR(CKA_LABEL, label, labellen),
			ATTR(CKA_ID, id, id_len),
			ATTR(CKA_VALUE, secret, len),
		};

		if ((r = ck(t, "C_CreateObject",
			 t->f->C_CreateObject(
			     s->h, tmpl, NITEMS(tmpl), &obj))) != 0) {
			goto out;
		}
	}
	/* success */
	*objp = obj;
	r = 0;
out:
	return r;
}

int
token_hmac(struct token_session *s, token_obj_t key, const uint8_t *in,
    size_t len, uint8_t out[32])
{
	size_t outlen = 32;
	int    r;

	if ((r = token_sign(s, key, TOKEN_MECH_HMAC_SHA256, in, len, out,
		 &outlen)) != 0) {
		return r;
	}
	if (outlen != 32) {
		log_warnx(
		    "C_Sign(CKM_SHA256_HMAC) returned %zu bytes", outlen);
		explicit_bzero(out, 32);
		return HK_ERR_PKCS11;
	}
	return 0;
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
	pthread_mutex_lock(&t->mu);
	rv = t->f->C_CopyObject(t->login, key, tmpl, NITEMS(tmpl), &copy);
	pthread_mutex_unlock(&t->mu);
	if ((r = ck(t, "C_CopyObject", rv)) != 0) {
		goto out;
	}
	/* success */
	*copyp = copy;
	r = 0;
out:
	return r;
}
