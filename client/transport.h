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
 * roundtrip.  Returns 0 or a negative HSMKEY_E* code with a one-line
 * message in err.  Caller must hk_transport_close(*tp).
 */
int hk_transport_open(
    struct hk_transport **tp, const char *url, char *err, size_t errlen);
/* Closes the socket.  Accepts NULL. */
void hk_transport_close(struct hk_transport *t);

/*
 * Sends len bytes of req as one message and waits at most timeout_ms in
 * all for the reply, looking at the connection every 100 ms: REQ resends
 * the same bytes after a reconnect, but a connection down for connect_ms
 * ends the call.  *replyp gets a copy of the reply (caller must free it;
 * it is zeroed and freed with hk_transport_free_reply()).  Returns 0, or
 * with a one-line message in err: HSMKEY_ECONNECT (no connection was made
 * in the call: the request did not reach the service), HSMKEY_ECONNLOST
 * (the connection went down with the request in flight and did not come
 * back, or the service closed it 3 times: it may or may not have been
 * done), HSMKEY_ETIMEOUT (connected, no reply), HSMKEY_EPROTO or
 * HSMKEY_ENOMEM.  After a failure the abandoned request is never sent
 * again: the next call connects afresh.
 */
int hk_transport_roundtrip(struct hk_transport *t, int timeout_ms,
    int connect_ms, const uint8_t *req, size_t len, uint8_t **replyp,
    size_t *lenp, char *err, size_t errlen);
/* Zeroes and frees a reply from hk_transport_roundtrip().  Accepts NULL. */
void hk_transport_free_reply(uint8_t *reply, size_t len);

#endif /* HK_TRANSPORT_H */
