/*
 * hk_err.h: the one error enum of hsmkey, shared by the daemon, the PKCS#11
 * layer and the client library.  Errors are negative, 0 is success, so that
 * `if ((r = f()) != 0) goto out;` chains and length-returning functions can
 * use `< 0`.  Thread-safe: hk_strerror() returns static strings.
 */
#ifndef HK_ERR_H
#define HK_ERR_H

enum hk_err {
	HK_OK = 0,
	HK_ERR_INTERNAL = -1, /* broken invariant or unexpected */
	HK_ERR_NOMEM = -2,
	HK_ERR_TOO_LARGE = -3, /* message or field over its cap */
	HK_ERR_PKCS11 = -4,    /* token call failed (logged in pkcs11/) */
	HK_ERR_REPLAY = -5,    /* nonce seen before */
	HK_ERR_INVALID = -6,   /* invalid argument */
	HK_ERR_DECODE = -7,    /* malformed bytes */
	HK_ERR_MAC = -8,       /* MAC does not verify */
	HK_ERR_NOT_FOUND = -9,
	HK_ERR_EXISTS = -10,
	HK_ERR_PRECONDITION = -11,    /* lost compare-and-set, wrong state */
	HK_ERR_DENIED = -12,	      /* not granted */
	HK_ERR_UNAUTHENTICATED = -13, /* unknown client, bad or old secret */
	HK_ERR_CLOCK = -14,	      /* timestamp outside the window */
	HK_ERR_UNAVAILABLE = -15,     /* token or log not usable now */
	HK_ERR_PROTOCOL = -16,	      /* unsupported protocol version */
	HK_ERR_SYSTEM = -17,	      /* see errno */
	HK_ERR_TIMEOUT = -18,
	HK_ERR_UNSUPPORTED = -19,     /* token lacks the mechanism/attribute */
	HK_ERR_PIN = -20,	      /* PIN rejected or PIN file unusable */
	HK_ERR_TOKEN_NOT_FOUND = -21, /* no token matches the URI */
	HK_ERR_CONFIG = -22,
	HK_ERR_BAD_SIGNATURE = -23, /* a signature that does not verify */
	HK_ERR_EXHAUSTED = -24,	    /* a bounded resource is full */
	HK_ERR_CONNECT = -25,	    /* transport could not connect/send */
};

/* A short description of r; never NULL ("unknown error -N" otherwise). */
const char *hk_strerror(int r);

#endif /* HK_ERR_H */
