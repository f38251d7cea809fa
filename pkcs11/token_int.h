/*
 * token_int.h: what the files of the token module share (token.c: module,
 * slot, login and sessions; token_pin.c: the PIN file; token_keys.c: key
 * pairs, signing and secret keys; token_objects.c: listing, data objects
 * and attributes).  Internal to pkcs11/; the rest of the tree sees token.h.
 * Include it last: the PKCS#11 headers' CRYPTOKI_COMPAT macros rename
 * common identifiers.
 */
#ifndef HK_TOKEN_INT_H
#define HK_TOKEN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hk_err.h"
#include "token.h"

#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>

#define ATTR_MAX    (1024 * 1024) /* CKA_VALUE of a data object */
#define KEYATTR_MAX 4096	  /* a public key attribute */

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
	/* what token_open() was given, to find the token again */
	char *module, *uri, *pin_file;
	/* shared by every thread that calls the token; exclusive while the
	 * healer repairs it (token_heal.c) */
	pthread_rwlock_t gate;
	pthread_mutex_t	 heal_mu;
	pthread_cond_t	 heal_cv;
	int	    trouble; /* under heal_mu: a call saw a device error */
	_Atomic int down;    /* calls fail fast until it is repaired */
	_Atomic uint64_t down_since_ms;
	_Atomic uint64_t repairs;     /* times it was brought back */
	_Atomic int	 pin_refused; /* never log in again */
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

/* HK_ERR_UNAVAILABLE while the token is down: a call fails fast and never
 * reaches a module the healer is bringing back.  0 otherwise. */
static inline int
token_away(struct token *t)
{
	return atomic_load_explicit(&t->down, memory_order_acquire)
	    ? HK_ERR_UNAVAILABLE
	    : 0;
}

/* The hk_err of a CK_RV (token.c). */
int token_rv_map(CK_RV rv);
/* Logs a failed call and maps rv; a device error marks t unhealthy. */
int token_rv_err(struct token *t, const char *call, CK_RV rv);
/* 0 for CKR_OK (marking t healthy), else the logged, mapped error. */
int token_ck(struct token *t, const char *call, CK_RV rv);
/* 1 if rv says the session handle is gone (token.c). */
int token_rv_session_lost(CK_RV rv);
/* Opens s again after its handle was lost; the caller owns s (token.c). */
int token_session_renew(struct token_session *s);

/* ---- token.c, for token_heal.c and token_init.c ---- */

/* A token with its locks and a copy of what token_open() was given (any
 * may be NULL), nothing loaded yet.  *tp is set even on HK_ERR_NOMEM:
 * caller must token_close(*tp). */
int token_new(struct token **tp, const char *module, const char *uri,
    const char *pin_file);
/* Loads module by path or by p11-kit registered name into t->f with
 * token_open()'s rules (a path must pass the allowed lists, a name only
 * when no list is set). */
int
token_module_load(struct token *t, const char *module, const char *allowed);
/* C_Initialize with CKF_OS_LOCKING_OK (unless someone else did). */
int token_module_init(struct token *t);
/* The slots that hold a token.  Caller must free *slotsp, also on error. */
int token_slot_list(struct token *t, CK_SLOT_ID **slotsp, CK_ULONG *np);
/* slot becomes t's, with the label of info trimmed into t->label. */
void
token_slot_take(struct token *t, CK_SLOT_ID slot, const CK_TOKEN_INFO *info);

/* C_Initialize (unless someone else did), the token of t->uri, the login.
 * The sessions on t's list are not reopened. */
int token_attach(struct token *t);
/* The token of t->uri found (again) and the login session logged in. */
int token_find_login(struct token *t);
/* Closes every session (the list stays, with dead handles), logs out and,
 * if finalize, finalises; errors are ignored: the token may be gone. */
void token_detach(struct token *t, int finalize);
/* Opens a new handle for every session on t's list. */
int token_reopen_sessions(struct token *t);
/* Raises the trouble flag the healer waits for (token_heal.c). */
void token_trouble(struct token *t);

/* A call succeeded: the token works (again).  Cheap on the hot path. */
static inline void
mark_ok(struct token *t)
{
	if (atomic_load_explicit(&t->bad_rv, memory_order_relaxed) != CKR_OK) {
		atomic_store(&t->bad_rv, CKR_OK);
	}
}

/*
 * Reads the PIN file into locked, non-dumpable memory (token_pin.c).
 * Strips one trailing newline; refuses an empty PIN, and a file that is a
 * symbolic link, not regular, open to group or others, or owned by anyone
 * but this process's user or root (HK_ERR_PIN, one line naming the file).
 * Caller must token_pin_free(*pinp).
 */
int token_pin_read(const char *path, char **pinp, size_t *lenp);
/* Zeroes and releases a PIN from token_pin_read() or token_pin_new().
 * Accepts NULL. */
void token_pin_free(char *pin);
/* A new random PIN (32 hex digits) in the same kind of memory as
 * token_pin_read()'s.  Caller must token_pin_free(*pinp). */
int token_pin_new(char **pinp, size_t *lenp);
/* Writes pin and a newline to a new file path, mode 0600: never through
 * a symbolic link, never over an existing file (O_EXCL), synced.  On
 * failure nothing is left at path.  One line names the file. */
int token_pin_write(const char *path, const char *pin, size_t len);

/*
 * Reads n variable-length attributes of obj: a size query, then one fetch
 * (token_objects.c).  Each tmpl[i].pValue is malloc'ed (caller frees with
 * token_attrs_free(), also on error) and capped at max bytes.
 */
int  token_attrs_get(struct token_session *s, CK_OBJECT_HANDLE obj,
     CK_ATTRIBUTE *tmpl, CK_ULONG n, size_t max);
void token_attrs_free(CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* 1 if label is set and at most TOKEN_LABEL_MAX bytes; *lenp its length
 * (token_objects.c). */
int token_label_ok(const char *label, size_t *lenp);
/* C_CreateObject of tmpl into *objp (token_objects.c). */
int token_create_object(struct token_session *s, CK_ATTRIBUTE *tmpl,
    CK_ULONG n, token_obj_t *objp);

#endif /* HK_TOKEN_INT_H */
