/*
 * testserver.h: a service without threads or sockets, on a throw-away
 * SoftHSM token, for the unit tests of the request pipeline (auth, dispatch):
 * the token, its keys and clients, the replay cache and the metrics, as
 * server_run() would set them up.  Test code only.
 */
#ifndef HK_TESTSERVER_H
#define HK_TESTSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "server.h"

struct testserver {
	struct config	     *cfg;
	struct server	      sv;
	struct token_session *s;
};

/* Makes the token (once per process), writes a config, opens the
 * service. */
void testserver_open(struct testserver *t);
void testserver_close(struct testserver *t);

/* The test binary's one service, opened at the first call. */
struct testserver *testserver_get(void);
/* A test that closes it (the last of a TEST_LIST, so that the leak
 * checker sees everything freed while the module is intact). */
void testserver_test_close(void);

/* Adds client id with grants; secret gets its first secret. */
void testserver_client(struct testserver *t, const char *id,
    const char *const *grants, uint8_t secret[HK_SECRET_LEN],
    uint32_t *secret_nop);

#endif /* HK_TESTSERVER_H */
