/*
 * hsmkey.h: libhsmkey, the C client of hsmkeyd.
 *
 * A handle holds one connection (a nanomsg REQ socket) and the client's
 * credentials.  Calls on one handle are serialised by the library, so a
 * handle may be shared by threads; for parallel requests open one handle
 * per thread.  Every function returns HSMKEY_OK (0) or a negative
 * HSMKEY_E* code; hsmkey_last_error() gives the one-line message that came
 * with the last failure on that handle.
 *
 * Rotation is invisible to callers: sign by key name and keep the text form
 * "hsmkey:v<N>:<base64>"; verify takes that text and finds the version.
 *
 * Every reply is checked against the MAC the service made with the
 * client's own secret: a reply that does not verify is HSMKEY_EPROTO.
 *
 * Credential rotation without a restart (see "Credentials" below): a
 * handle opened with hsmkey_open() re-reads its credentials file when the
 * file changes, and may hold a second credential of the same client.
 */
#ifndef HSMKEY_H
#define HSMKEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HSMKEY_API __attribute__((visibility("default")))

enum hsmkey_error {
	HSMKEY_OK = 0,
	HSMKEY_EINVAL = -2,	   /* invalid argument (exit 2) */
	HSMKEY_EUNAUTH = -3,	   /* unauthenticated (exit 3) */
	HSMKEY_EDENIED = -4,	   /* permission denied (exit 3) */
	HSMKEY_ENOTFOUND = -5,	   /* no such key or version (exit 4) */
	HSMKEY_EEXISTS = -6,	   /* already exists (exit 5) */
	HSMKEY_EPRECONDITION = -7, /* lost compare-and-set (exit 5) */
	HSMKEY_EREPLAY = -8,	   /* replayed request (exit 3) */
	HSMKEY_EUNAVAIL = -9,	   /* token or log unavailable (exit 5) */
	HSMKEY_EINTERNAL = -10,	   /* service error (exit 5) */
	HSMKEY_EEXHAUSTED = -11,   /* a bounded resource is full (exit 5) */
	HSMKEY_EUNSUPPORTED = -12, /* not supported (exit 5) */
	HSMKEY_ECONNECT = -20,	   /* cannot reach the service (exit 5) */
	HSMKEY_ETIMEOUT = -21,	   /* no reply in time (exit 5) */
	HSMKEY_EPROTO = -22,	   /* reply malformed or its MAC bad */
	HSMKEY_ENOMEM = -23,
	HSMKEY_ECREDENTIALS = -24, /* credentials file unusable (exit 2) */
	HSMKEY_ECONNLOST = -25,	   /* connection lost in a call (exit 5) */
};

struct hsmkey;

/*
 * Opens a handle.  credentials_file: an INI file with [client] id, secret
 * (base64), connect, and optionally secret_no (which of the client's
 * secrets it is; without it the service finds the secret, and the handle
 * names it from the first reply on); NULL means $HSMKEY_CREDENTIALS.  url
 * overrides the file's connect (NULL: then $HSMKEY_CONNECT, then the
 * file).  Caller must hsmkey_close(*hp).
 */
HSMKEY_API int
hsmkey_open(struct hsmkey **hp, const char *credentials_file, const char *url);
/* Same with explicit credentials (secret_no 0: not known, as in a file
 * without it); secret is copied (and zeroed on close). */
HSMKEY_API int
hsmkey_open_secret(struct hsmkey **hp, const char *url, const char *client_id,
    uint32_t secret_no, const uint8_t *secret, size_t secret_len);
/* Closes the connection and zeroes the secret. Accepts NULL. */
HSMKEY_API void hsmkey_close(struct hsmkey *h);
/* Reply timeout in milliseconds (default 30000). */
HSMKEY_API int hsmkey_set_timeout(struct hsmkey *h, int ms);
/*
 * Connect timeout in milliseconds (default 3000): a call fails when the
 * connection is down this long, though its reply timeout has not passed:
 * HSMKEY_ECONNECT when no connection was made (nothing listens at the URL;
 * the request did not reach the service), HSMKEY_ECONNLOST when the
 * connection went down with the request in flight (the service stopped;
 * the request may or may not have been done).  A connection that comes
 * back sooner gets the same request again, byte for byte (PROTOCOL.md).
 */
HSMKEY_API int hsmkey_set_connect_timeout(struct hsmkey *h, int ms);

/*
 * The reason (a ticket, an incident id) sent with every request of h that
 * changes state (create, rotate, promote, policy, disable, destroy, client
 * add/rotate/revoke) until it is changed; the service writes it into that
 * change's audit line.  NULL or "" sends none.  The text is copied; the
 * service refuses (HSMKEY_EINVAL, "invalid reason: ...") one over 200
 * bytes or that is not printable UTF-8 without '"' and backslash, and
 * then changes nothing.  Thread-safe.
 */
HSMKEY_API int hsmkey_set_reason(struct hsmkey *h, const char *reason);

/* A static description of an error code; never NULL. */
HSMKEY_API const char *hsmkey_strerror(int err);
/* The message of the last failure on h; caller does not free. */
HSMKEY_API const char *hsmkey_last_error(const struct hsmkey *h);
/* The CLI exit code for an error code (DESIGN.md). */
HSMKEY_API int hsmkey_exit_code(int err);

/*
 * Signs len bytes of msg with the key's primary version (version 0) or a
 * given version.  *sigtextp gets "hsmkey:v<N>:<base64>"; caller must free().
 */
HSMKEY_API int hsmkey_sign(struct hsmkey *h, const char *key, const void *msg,
    size_t len, uint32_t version, char **sigtextp);
/* Same for a precomputed digest (SHA-256, or SHA-384 for ecdsa-p384). */
HSMKEY_API int hsmkey_sign_digest(struct hsmkey *h, const char *key,
    const uint8_t *digest, size_t len, uint32_t version, char **sigtextp);

struct hsmkey_verify_result {
	int	 valid;	    /* 1 valid, 0 invalid */
	uint32_t version;   /* the version named by the signature */
	char	 state[24]; /* that version's state, "active", ... */
	uint64_t retire_ms; /* when it stops verifying (0: not set) */
};

/* Verifies a text-form signature over msg (or a digest). HSMKEY_OK with
 * res->valid 0 means the signature is invalid. */
HSMKEY_API int
hsmkey_verify(struct hsmkey *h, const char *key, const void *msg, size_t len,
    const char *sigtext, struct hsmkey_verify_result *res);
HSMKEY_API int
hsmkey_verify_digest(struct hsmkey *h, const char *key, const uint8_t *digest,
    size_t len, const char *sigtext, struct hsmkey_verify_result *res);

/* Public key of a version (0: primary) as PEM; caller must free(*pemp).
 * *versionp (may be NULL) gets the version returned. */
HSMKEY_API int hsmkey_pubkey_pem(struct hsmkey *h, const char *key,
    uint32_t version, char **pemp, uint32_t *versionp);

/* Creates a key ("ecdsa-p256" if alg is NULL); version 1 is primary. */
HSMKEY_API int
hsmkey_create(struct hsmkey *h, const char *key, const char *alg);
/* Rotates: expect 0 for any, else the version expected to be replaced.
 * stage leaves the new version pending. *newp (may be NULL) gets it. */
HSMKEY_API int hsmkey_rotate(struct hsmkey *h, const char *key,
    uint32_t expect, int stage, uint32_t *newp);

/* Flags of hsmkey_rotate_ex(). */
#define HSMKEY_ROTATE_STAGE 0x01 /* the new version stays pending */
/* Emergency rollover: the new version is primary and every older one that
 * still signs, verifies or is pending is disabled at once (its signatures
 * then verify as invalid).  Not with HSMKEY_ROTATE_STAGE (HSMKEY_EINVAL). */
#define HSMKEY_ROTATE_EMERGENCY 0x02
/* hsmkey_rotate() with flags; HSMKEY_EPRECONDITION when expect is not the
 * newest version (another rotation won, or this one already ran). */
HSMKEY_API int hsmkey_rotate_ex(struct hsmkey *h, const char *key,
    uint32_t expect, int flags, uint32_t *newp);

/*
 * Additions (same rules as above).
 *
 * hsmkey_last_error(NULL) gives the message of the last hsmkey_open() or
 * hsmkey_open_secret() that failed in the calling thread (no handle to
 * hold it).
 */

/* Flags of hsmkey_sign_ex(), hsmkey_verify_ex(), hsmkey_sign_batch(). */
#define HSMKEY_DIGEST	 0x01 /* data is a precomputed digest */
#define HSMKEY_SIG_RAW	 0x02 /* ECDSA r||s instead of DER */
#define HSMKEY_RSA_PKCS1 0x04 /* RSA PKCS#1 v1.5 instead of PSS */

/* hsmkey_sign() and hsmkey_sign_digest() with flags. Caller must
 * free(*sigtextp). */
HSMKEY_API int
hsmkey_sign_ex(struct hsmkey *h, const char *key, const void *data, size_t len,
    uint32_t version, int flags, char **sigtextp);
/* hsmkey_verify() and hsmkey_verify_digest() with flags. */
HSMKEY_API int hsmkey_verify_ex(struct hsmkey *h, const char *key,
    const void *data, size_t len, int flags, const char *sigtext,
    struct hsmkey_verify_result *res);
/*
 * Signs n messages (or digests, with HSMKEY_DIGEST) in one request, all by
 * the same version.  sigtexts is an array of n pointers that receives the
 * text forms; on success caller must free() each, on failure all are NULL.
 */
HSMKEY_API int hsmkey_sign_batch(struct hsmkey *h, const char *key,
    const void *const *data, const size_t *lens, size_t n, uint32_t version,
    int flags, char **sigtexts);
/* Public key as DER SubjectPublicKeyInfo; caller must free(*derp). */
HSMKEY_API int hsmkey_pubkey_der(struct hsmkey *h, const char *key,
    uint32_t version, uint8_t **derp, size_t *lenp, uint32_t *versionp);
/* Asks the service for an authenticated empty reply. */
HSMKEY_API int hsmkey_ping(struct hsmkey *h);
/* The name of an error code: "NOT_FOUND", "TIMEOUT", ...; never NULL. */
HSMKEY_API const char *hsmkey_error_name(int err);

/*
 * Key sets and JWS (RFC 7517, RFC 7515).
 *
 * hsmkey_jwks() gives the JSON Web Key Set of n keys as the service built
 * it: every version that verifies or is pending, kid "NAME/vN", with the
 * members hsmkey_state, hsmkey_sign_until and hsmkey_verify_until.  With
 * HSMKEY_JWKS_SIGNED, *outp is instead a compact JWS of that set signed by
 * the service key hsmkey-keyset.  Needs the pubkey grant on every key.
 * Caller must free(*outp).
 */
#define HSMKEY_JWKS_SIGNED 0x01
HSMKEY_API int hsmkey_jwks(struct hsmkey *h, const char *const *keys, size_t n,
    int flags, char **outp);
/*
 * A compact JWS over len bytes of data by the key's primary version:
 * protected header {"alg":ALG,"kid":"KEY/vN"}, ALG ES256, ES384, EdDSA or
 * PS256 (RS256 with HSMKEY_RSA_PKCS1, the only flag taken).  The primary is
 * looked up first and then named: a rotation in between is harmless (that
 * version signs through its overlap, or the call fails and may be
 * retried).  Caller must free(*jwsp).
 */
HSMKEY_API int hsmkey_sign_jws(struct hsmkey *h, const char *key,
    const void *data, size_t len, int flags, char **jwsp);

/*
 * Credentials: how a service rotates its own secret with no restart and
 * no failed request.
 *
 *   1. An operator runs `hsmkey client rotate ID --out new.cred`: the
 *      client now has two valid secrets, the old one and the new one.
 *   2. The operator replaces the service's credentials file with new.cred
 *      atomically: write it next to the old one, then rename(2) it over
 *      the old one (`install -m 0600 new.cred dir/.tmp && mv dir/.tmp
 *      dir/svc.cred`); a Kubernetes secret volume's symlink swap works too.
 *   3. Every handle opened with hsmkey_open() switches by itself within a
 *      second (on change, below), or when the application calls
 *      hsmkey_reload() (on SIGHUP, below).  Requests in between use the old
 *      secret, which is still valid.
 *   4. Once `hsmkey client list` shows the old secret unused, the operator
 *      revokes it: `hsmkey client revoke ID --secret N`.  The service
 *      refuses it from that moment.
 *
 * On change (the default for handles from hsmkey_open()): before each
 * request, at most once a second, the handle stat(2)s its credentials file
 * (the path as given, made absolute at open, symlinks followed at each
 * check); when its device, inode, size, mtime or ctime changed it re-reads
 * it.  A file that cannot be used (missing, half written, bad base64, no
 * secret) changes nothing: the handle keeps its credential, the request
 * goes on, and hsmkey_last_error() reports the broken file (also after
 * calls that succeed) until a good version appears.  The connect URL of a
 * reloaded file is ignored: the handle stays connected where it is.
 *
 * On SIGHUP: call hsmkey_reload(h) from an ordinary thread, e.g. the
 * thread that sigwait(2)s for SIGHUP, or the main loop after the signal
 * handler set a flag.  Never call it inside the signal handler itself: it
 * takes the handle's mutex and allocates, which is not async-signal-safe.
 * It may run while other threads use h (calls on a handle are serialised).
 *
 * Two credentials: after a reload picked up a new credential, the old one
 * of the same client stays as the handle's second credential;
 * hsmkey_add_credentials() sets the second one explicitly.  The second
 * credential is used exactly when the service answers a request made with
 * the primary one UNAUTHENTICATED without a MAC, i.e. it refused the
 * credential itself (unknown, revoked or expired secret, or a MAC that
 * does not verify).  Then the handle first re-checks the credentials file
 * at once (ignoring the one-second limit) and, if it changed, retries with
 * the file's new credential; otherwise it retries with the second
 * credential.  At most one retry per call, with the same nonce: if the
 * first try had in fact run (a forged reply on the way), the service
 * answers REPLAY rather than executing it twice.  A credential that
 * succeeded on the retry becomes the primary one.  An UNAUTHENTICATED
 * reply that carries a MAC (a timestamp outside the clock window) is not
 * retried: the credential was fine.
 */

/*
 * Sets the grants of client id to exactly grants[0..n_grants) ("OP:GLOB",
 * 1 to 32; grants it held before and not listed are gone).  Needs the
 * grant admin:*.  HSMKEY_ENOTFOUND for no such client.
 */
HSMKEY_API int hsmkey_client_grant(struct hsmkey *h, const char *id,
    const char *const *grants, size_t n_grants);

/* Re-reads the handle's credentials file now, whether or not it changed.
 * HSMKEY_OK (also when it holds the same credential), or HSMKEY_ECREDENTIALS
 * / HSMKEY_ENOMEM with the old credential kept, or HSMKEY_EINVAL for a
 * handle from hsmkey_open_secret().  Thread-safe; not async-signal-safe. */
HSMKEY_API int hsmkey_reload(struct hsmkey *h);
/* Turns reload on change on (default for hsmkey_open()) or off. */
HSMKEY_API int hsmkey_set_auto_reload(struct hsmkey *h, int on);
/* Loads a second credential of the same client from a credentials file
 * (its connect is ignored), replacing any second one held.  HSMKEY_EINVAL
 * if the file is of another client. */
HSMKEY_API int
hsmkey_add_credentials(struct hsmkey *h, const char *credentials_file);

#ifdef __cplusplus
}
#endif

#endif /* HSMKEY_H */
