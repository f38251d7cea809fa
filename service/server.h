/*
 * server.h: the running service: start-up, worker threads and shutdown,
 * and the request pipeline that joins auth.c (envelope -> MAC -> clock ->
 * nonce), dispatch.c (decode -> grant -> handler) and reply.c (seal ->
 * audit -> send).  Internal to service/.
 *
 * Thread-safety: struct server is built before the workers start and torn
 * down after they stop; its parts carry their own locks.
 */
#ifndef HK_SERVER_H
#define HK_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "clients.h"
#include "config.h"
#include "keyring.h"
#include "nonce.h"
#include "token.h"

struct audit;
struct gate;
struct metrics;

struct server {
	const struct config *cfg;
	struct token	    *tok;
	struct keyring	    *kr;
	struct clients	    *clients;
	struct nonce_cache  *nonces;
	struct audit	    *audit; /* NULL: no [audit] path */
	struct metrics	    *metrics;
	struct gate	    *gate; /* token slots (gate.h); NULL: none */
	uint64_t	     start_ms;
	unsigned int	     workers;
	_Atomic uint64_t     waiting_bytes; /* replies waiting for the audit */
};

/*
 * Opens cfg's token and loads its keys and clients into *sv, with no
 * thread, socket or audit log yet; *sp gets a session (start-up,
 * bootstrap and the unit tests).  Caller must server_close(sv, *sp), also
 * after a failure.
 */
int server_open(
    struct server *sv, const struct config *cfg, struct token_session **sp);
void server_close(struct server *sv, struct token_session *s);

struct auth;
struct outcome;

/*
 * One request of len bytes received at now, up to its reply: authenticated
 * (auth.c), admitted to the token (gate.c) or answered "busy", run
 * (dispatch.c) and sealed, or refused (and counted).  *o gets the reply
 * and what the audit log and the metrics learn of it; the caller delivers
 * it (reply_deliver(), which frees it) and then calls auth_finish(a).
 * The workers' serve() and the request fuzzer (tests/fuzz) call it.
 */
void
server_request(struct server *sv, struct token_session *s, const uint8_t *msg,
    size_t len, uint64_t now, struct auth *a, struct outcome *o);

/* Runs the service until SIGTERM or SIGINT; 0 after a clean stop. */
int server_run(const struct config *cfg, int foreground);

/* Creates the first admin client and writes its credentials file (0600);
 * refuses if an admin exists. */
int server_bootstrap(
    const struct config *cfg, const char *id, const char *out_path);

#endif /* HK_SERVER_H */
