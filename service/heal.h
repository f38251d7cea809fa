/*
 * heal.h: the healer, a thread that brings the token back by itself.
 *
 * It waits for the trouble a failed token call raises (token.h), then,
 * with the token to itself, reopens lost sessions, logs in again or
 * reconnects the module, and finds the keys' and clients' objects again;
 * a failed attempt is tried again after a wait that doubles up to
 * [pkcs11] reconnect_max.  While nothing is wrong it probes the token
 * every [pkcs11] keepalive, so that an idle connection is never dropped.
 */
#ifndef HK_HEAL_H
#define HK_HEAL_H

#include <stdatomic.h>

struct server;
struct healer;

/* Starts the healer of sv's token; it runs until *stopping.  Caller must
 * heal_stop(*hp). */
int
heal_start(struct healer **hp, struct server *sv, const atomic_int *stopping);
/* Joins the healer (after *stopping was set) and frees it; accepts NULL. */
void heal_stop(struct healer *h);

#endif /* HK_HEAL_H */
