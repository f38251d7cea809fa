/*
 * transport.h: one request, one reply over a nanomsg REQ socket.  Every
 * nn_* call of the client lives in transport.c, so the messaging library
 * can be swapped (for nng) behind this interface.
 *
 * Not thread-safe: the owner (a struct hsmkey) serialises calls.
 */
#ifndef HK_TRANSPORT_H
#define HK_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct hk_transport;

/*
 * Opens a REQ socket and connects it to url (ipc:// or tcp://).  Connecting
 * is asynchronous: a url where nothing listens is found out by the first
 * roundtrip, which then times out.  Returns 0 or a negative HSMKEY_E* code
 * with a one-line message in err.  Caller must hk_transport_close(*tp).
 */
int hk_transport_open(
    struct hk_transport **tp, const char *url, char *err, size_t errlen);
/* Closes the socket.  Accepts NULL. */
void hk_transport_close(struct hk_transport *t);

/*
 * Sends len bytes of req as one message and waits at most timeout_ms in
 * all for the reply.  *replyp gets a copy of the reply (caller must free
 * it; it is zeroed and freed with hk_transport_free_reply()).  Returns 0,
 * HSMKEY_ETIMEOUT or HSMKEY_ECONNECT with a one-line message in err.
 */
int hk_transport_roundtrip(struct hk_transport *t, int timeout_ms,
    const uint8_t *req, size_t len, uint8_t **replyp, size_t *lenp, char *err,
    size_t errlen);
/* Zeroes and frees a reply from hk_transport_roundtrip().  Accepts NULL. */
void hk_transport_free_reply(uint8_t *reply, size_t len);

#endif /* HK_TRANSPORT_H */
