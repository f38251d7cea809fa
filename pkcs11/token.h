/*
 * token.h: everything hsmkey says to a PKCS#11 token.  Only pkcs11/ includes
 * the PKCS#11 headers; the rest of the tree sees opaque handles and enum
 * hk_err codes.  Every failing C_* call is logged with its name and
 * p11_kit_strerror(rv) here, and mapped to an hk_err.
 *
 * Thread-safety: the module is initialised with CKF_OS_LOCKING_OK.  A struct
 * token is shared by all threads; functions that take a struct
 * token_session may run concurrently as long as each thread uses its own
 * session and, once a healer runs, holds the token (token_hold()).
 * token_open() and token_close() must not race with anything.
 *
 * Login state is per process in PKCS#11: token_open() logs in once on a
 * session of its own that stays open until token_close(), so that closing a
 * worker's session never logs the process out.
 */
#ifndef HK_TOKEN_H
#define HK_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "alg.h"

struct token;
struct token_session;

/* An object handle; valid in every session of this process. */
typedef unsigned long token_obj_t;
#define TOKEN_OBJ_NONE 0UL

/*
 * Key types and signing schemes are the algorithm table's (alg.h: enum
 * hk_keytype, enum hk_scheme; each scheme says what token_sign() takes).
 */

enum token_class {
	TOKEN_CLASS_PRIVATE = 1, /* CKO_PRIVATE_KEY */
	TOKEN_CLASS_PUBLIC,	 /* CKO_PUBLIC_KEY */
	TOKEN_CLASS_SECRET,	 /* CKO_SECRET_KEY */
	TOKEN_CLASS_DATA,	 /* CKO_DATA */
};

#define TOKEN_LABEL_MAX 128
#define TOKEN_ID_MAX	128

/* What token_list() reports of each object; caller does not free. */
struct token_object {
	token_obj_t	 handle;
	enum token_class klass;
	char		 label[TOKEN_LABEL_MAX + 1]; /* NUL-terminated */
	uint8_t		 id[TOKEN_ID_MAX];
	size_t		 id_len;
	int		 can_sign; /* CKA_SIGN, keys only */
};

/* A key pair to generate: every attribute DESIGN.md requires is set.
 * type and rsa_bits must be those of a row of the algorithm table, whose
 * schemes become the key's CKA_ALLOWED_MECHANISMS. */
struct token_keyspec {
	enum hk_keytype type;
	unsigned int	rsa_bits; /* HK_KEY_RSA: 2048, 3072, 4096 */
	const char     *label;	  /* both halves */
	const uint8_t  *id;	  /* CKA_ID, both halves */
	size_t		id_len;
	uint64_t	start_ms; /* CKA_START_DATE (0: unset) */
	uint64_t	end_ms;	  /* CKA_END_DATE (0: unset) */
	int		can_sign; /* CKA_SIGN on the private half */
	int pub_session; /* the public half a session object, not kept */
};

/*
 * Loads module (a path if it contains '/', else a p11-kit module name),
 * refusing it unless it is on allowed (blank-separated paths; NULL or
 * empty: any) and on the list built in with -Dallowed_modules, both
 * compared after realpath(); a list in force takes paths only.  A path
 * must be a file only root or this process's user may write.  Calls
 * C_Initialize with CKF_OS_LOCKING_OK, selects the one token that
 * matches the RFC 7512 uri, opens the login session and logs in as the user
 * with the PIN read from pin_file (kept in mlock'ed memory, zeroed at once
 * after C_Login).  Caller must token_close() *tp.
 */
int token_open(struct token **tp, const char *module, const char *allowed,
    const char *uri, const char *pin_file);
/* 1 if r is a refusal of token_open() that it has already said in one
 * line naming the file (PIN file, PIN, module): callers add no line. */
int token_said(int r);
/* Closes every session, logs out, finalises and unloads. Accepts NULL. */
void token_close(struct token *t);
/* The token's label (CKA_LABEL of the token info, trimmed). */
const char *token_label(const struct token *t);
/* 1 while the last token call succeeded or failed for a reason of the
 * caller's (bad input); 0 after a device/session error.  Never touches the
 * token: for health checks. */
int token_healthy(const struct token *t);
/* The last device error as text ("ok" if none); caller does not free. */
const char *token_state(const struct token *t);

/*
 * Healing (token_heal.c).  Every thread that calls the token holds it
 * shared for the length of its work; the healer repairs it exclusive.
 * Calls on a token that is down fail at once with HK_ERR_UNAVAILABLE.
 *
 * token_hold(): 0 once held; HK_ERR_UNAVAILABLE if a repair kept it more
 * than wait_ms (< 0: wait as long as it takes).  Not recursive.
 */
int  token_hold(struct token *t, int wait_ms);
void token_release(struct token *t);
/* 1 if a call failed with a device, session or login error since the
 * last return of 1, waiting up to timeout_ms for one; else 0. */
int token_wait_trouble(struct token *t, int timeout_ms);
/* A cheap call that keeps an idle connection alive and checks that the
 * token answers and the login holds (held shared).  0 or
 * HK_ERR_UNAVAILABLE (the trouble flag is then raised). */
int token_probe(struct token *t);
/* With the token exclusive: reopens lost sessions; logs in again when the
 * login was lost (never after the PIN was refused); when the token does
 * not answer, finalises the module, initialises it again and finds the
 * token again by its URI.  *rebindp = 1 if object handles may have
 * changed: the caller must find its objects again (token_list()) before
 * token_exclusive_end().  0 once usable, else the token stays down. */
void token_exclusive(struct token *t);
int  token_repair(struct token *t, int *rebindp);
/* Ends the exclusive hold: up says whether the token is usable now. */
void token_exclusive_end(struct token *t, int up);
/* When the token went down (ms since the epoch), 0 while it is up. */
uint64_t token_down_since(const struct token *t);
/* How many times the token was brought back by a repair. */
uint64_t token_repairs(const struct token *t);
/* 1 after the token refused the PIN: no repair logs in again. */
int token_pin_refused(const struct token *t);

/* A new R/W session on the token. Caller must token_session_close(). */
int  token_session_open(struct token *t, struct token_session **sp);
void token_session_close(struct token_session *s);

/* Generates a key pair inside the token. */
int token_generate(struct token_session *s, const struct token_keyspec *spec,
    token_obj_t *privp, token_obj_t *pubp);

/*
 * Signs in with key using scheme (alg.h says what each takes as in).  On
 * entry *siglen is the size of sig; on success it is the signature length.
 * ECDSA signatures come back raw (r||s), as PKCS#11 returns them.
 * HK_ERR_TOO_LARGE if sig is too small.
 */
int token_sign(struct token_session *s, token_obj_t key, enum hk_scheme scheme,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen);

/* Public key of a public-key object as DER SubjectPublicKeyInfo.
 * Caller must free *derp. */
int token_pubkey_der(
    struct token_session *s, token_obj_t pub, uint8_t **derp, size_t *lenp);

/* Sets CKA_SIGN of a private or secret key; HK_ERR_UNSUPPORTED when the
 * token refuses to change it (the caller then enforces it alone). */
int token_set_can_sign(struct token_session *s, token_obj_t key, int can_sign);

/* Destroys an object. HK_ERR_NOT_FOUND if the handle is already gone. */
int token_destroy(struct token_session *s, token_obj_t obj);

/*
 * Calls cb once for every token object (CKA_TOKEN true) whose label starts
 * with prefix, in one search.  A non-zero return from cb stops the walk and
 * is returned.
 */
int token_list(struct token_session *s, const char	     *prefix,
    int (*cb)(void *arg, const struct token_object *o), void *arg);

/* token_list() into an array of at most max objects (HK_ERR_TOO_LARGE
 * past it).  Caller must free *objsp, also on error. */
int token_list_all(struct token_session *s, const char *prefix, size_t max,
    struct token_object **objsp, size_t *np);

/* Creates a private CKO_DATA token object (CKA_APPLICATION "hsmkey"). */
int token_data_create(struct token_session *s, const char *label,
    const uint8_t *value, size_t len, token_obj_t *objp);
/* Reads CKA_VALUE of a data object. Caller must free *valuep. */
int token_data_read(
    struct token_session *s, token_obj_t obj, uint8_t **valuep, size_t *lenp);

/* Fills buf from the token's random generator (C_GenerateRandom). */
int token_random(struct token_session *s, uint8_t *buf, size_t len);

/*
 * Stores a client secret as a CKO_SECRET_KEY (CKK_GENERIC_SECRET): token,
 * private, sensitive, not extractable, sign/verify only, allowed mechanism
 * CKM_SHA256_HMAC only.  The caller zeroes its copy of secret.
 */
int token_secret_create(struct token_session *s, const char *label,
    const uint8_t *id, size_t id_len, const uint8_t *secret, size_t len,
    token_obj_t *objp);

/* HMAC-SHA256 with a secret key in the token: out gets 32 bytes. */
int token_hmac(struct token_session *s, token_obj_t key, const uint8_t *in,
    size_t len, uint8_t out[32]);

/* Copies a key into a session object (CKA_TOKEN false) of the same
 * attributes, for faster use; the copy dies with the process.  Never
 * extracts the key. */
int token_copy_session(
    struct token_session *s, token_obj_t key, token_obj_t *copyp);

#endif /* HK_TOKEN_H */
