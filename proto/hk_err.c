/* hk_err.c: error strings for enum hk_err. */
#include <stdio.h>

#include "hk_err.h"

const char *
hk_strerror(int r)
{
	static __thread char unknown[40];

	switch (r) {
	case HK_OK:
		return "success";
	case HK_ERR_INTERNAL:
		return "internal error";
	case HK_ERR_NOMEM:
		return "out of memory";
	case HK_ERR_TOO_LARGE:
		return "message too large";
	case HK_ERR_PKCS11:
		return "token operation failed";
	case HK_ERR_REPLAY:
		return "request replayed";
	case HK_ERR_INVALID:
		return "invalid argument";
	case HK_ERR_DECODE:
		return "malformed message";
	case HK_ERR_MAC:
		return "MAC does not verify";
	case HK_ERR_NOT_FOUND:
		return "not found";
	case HK_ERR_EXISTS:
		return "already exists";
	case HK_ERR_PRECONDITION:
		return "precondition failed";
	case HK_ERR_DENIED:
		return "permission denied";
	case HK_ERR_UNAUTHENTICATED:
		return "unauthenticated";
	case HK_ERR_CLOCK:
		return "timestamp outside the clock window";
	case HK_ERR_UNAVAILABLE:
		return "unavailable";
	case HK_ERR_PROTOCOL:
		return "unsupported protocol version";
	case HK_ERR_SYSTEM:
		return "system error";
	case HK_ERR_TIMEOUT:
		return "timed out";
	case HK_ERR_UNSUPPORTED:
		return "not supported by the token";
	case HK_ERR_PIN:
		return "PIN rejected or PIN file unusable";
	case HK_ERR_TOKEN_NOT_FOUND:
		return "no token matches the URI";
	case HK_ERR_CONFIG:
		return "configuration error";
	case HK_ERR_BAD_SIGNATURE:
		return "signature does not verify";
	case HK_ERR_EXHAUSTED:
		return "resource exhausted";
	case HK_ERR_CONNECT:
		return "cannot reach the service";
	}
	snprintf(unknown, sizeof(unknown), "unknown error %d", r);
	return unknown;
}
