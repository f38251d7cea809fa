/*
 * transport.h: the service's side of nanomsg.  Every nn_* call of the
 * daemon lives in transport.c, so that the library can be swapped for nng.
 *
 * One AF_SP_RAW NN_REP socket is bound to every endpoint; any number of
 * worker threads call transport_recv() on it concurrently, and each reply
 * goes back with the routing header of its request.  Thread-safe.
 */
#ifndef HK_TRANSPORT_H
#define HK_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct transport;

/* One received request: body is owned by the message. */
struct transport_msg {
	uint8_t *body;
	size_t	 len;
	void	*body_nn; /* nanomsg chunk */
	void	*hdr;	  /* routing header (nanomsg chunk) */
};

/*
 * Binds a raw REP socket to each url.  ipc sockets are created with mode
 * 0660 (group: gid if not -1).  recv_timeout_ms bounds each
 * transport_recv() so that workers notice shutdown.  max_msg caps the size
 * of a received message (NN_RCVMAXSIZE).  Caller must transport_close().
 */
int transport_open(struct transport **tp, char *const *urls, size_t nurls,
    size_t max_msg, int recv_timeout_ms, long gid);

/*
 * Starts a guard thread that stops the tcp endpoints from taking new
 * connections while nanomsg counts max_conns or more (tcp and ipc), with a
 * socket filter on their listening sockets (nanomsg has no limit of its
 * own); ipc endpoints are not guarded.  Call once, after transport_open();
 * 0: no guard.  transport_close() stops it.
 */
int transport_guard(struct transport *t, size_t max_conns);

/* How many connections past max_conns the guard may let in: those in
 * nanomsg's listen backlog (100) when it shuts the door, and what nanomsg
 * accepts between two of its looks.  Descriptors must be there for them. */
#define TRANSPORT_OVERSHOOT 512

/* Waits for a request: 0, HK_ERR_TIMEOUT when none came in time, or
 * HK_ERR_UNAVAILABLE once the socket is closed.  Caller must
 * transport_msg_free(m) (also after transport_send()). */
int transport_recv(struct transport *t, struct transport_msg *m);

/* Sends reply to the peer of m. */
int transport_send(struct transport *t, struct transport_msg *m,
    const uint8_t *reply, size_t len);

/* Frees the request's bytes and keeps what a reply needs (the routing
 * header). */
void transport_msg_drop_body(struct transport_msg *m);
void transport_msg_free(struct transport_msg *m);
void transport_close(struct transport *t);

#endif /* HK_TRANSPORT_H */
