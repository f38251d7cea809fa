/*
 * server.h: the running service: start-up, worker threads, the request
 * pipeline (envelope -> MAC -> clock -> nonce -> decode -> grant ->
 * dispatch -> MACed reply) and shutdown.  Internal to service/.
 *
 * Thread-safety: struct server is built before the workers start and torn
 * down after they stop; its parts carry their own locks.
 */
#ifndef HK_SERVER_H
#define HK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "clients.h"
#include "config.h"
#include "keyring.h"
#include "nonce.h"
#include "token.h"

struct audit;
struct metrics;
struct transport;
struct transport_msg;

struct server {
	const struct config *cfg;
	struct token	    *tok;
	struct keyring	    *kr;
	struct clients	    *clients;
	struct nonce_cache  *nonces;
	struct audit	    *audit; /* NULL: no [audit] path */
	struct metrics	    *metrics;
	uint64_t	     start_ms;
	unsigned int	     workers;
};

/* Runs the service until SIGTERM or SIGINT; 0 after a clean stop. */
int server_run(const struct config *cfg, int foreground);

/* Creates the first admin client and writes its credentials file (0600);
 * refuses if an admin exists. */
int server_bootstrap(
    const struct config *cfg, const char *id, const char *out_path);

/*
 * Handles one request message: *replyp gets the reply to send (caller
 * frees), or NULL when none must be sent (a resend of a request still in
 * flight: its first execution answers it).
 */
int server_handle(struct server *sv, struct token_session *s,
    const uint8_t *msg, size_t len, uint8_t **replyp, size_t *lenp);

/*
 * The same for a message received on tr: an audited request's reply is
 * sent by the audit writer once its line is durable (group commit); then
 * *replyp is NULL and m was taken over (transport_msg_free(m) is a no-op).
 */
int server_handle_msg(struct server *sv, struct token_session *s,
    struct transport *tr, struct transport_msg *m, uint8_t **replyp,
    size_t *lenp);

#endif /* HK_SERVER_H */
