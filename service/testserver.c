/* testserver.c: a thread-less service for unit tests (see testserver.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clients.h"
#include "metrics.h"
#include "nonce.h"
#include "testserver.h"
#include "testtoken.h"
#include "testutil.h"

void
testserver_open(struct testserver *t)
{
	static const char *const labels[] = { "hkserve", NULL };
	char			 conf[PATH_MAX], text[2 * PATH_MAX + 256];

	memset(t, 0, sizeof(*t));
	testtoken_setup(labels);
	testtoken_path(conf, sizeof(conf), "hsmkeyd.conf");
	snprintf(text, sizeof(text),
	    "[service]\nlisten = ipc://%s/unused.sock\nworkers = 1\n"
	    "[pkcs11]\nmodule = %s\ntoken = pkcs11:token=hkserve\n"
	    "pin_file = %s\n[auth]\nclock_window = 30s\n",
	    testtoken_dir(), SOFTHSM_MODULE, testtoken_pinfile());
	testtoken_write(conf, text, 0600);
	PASS(config_load(conf, &t->cfg));
	PASS(server_open(&t->sv, t->cfg, &t->s));
	t->sv.workers = 1;
	PASS(nonce_cache_new(&t->sv.nonces, t->cfg->clock_window_ms,
	    t->cfg->nonce_per_client, t->cfg->nonce_total,
	    t->cfg->reply_cache_bytes));
	PASS(metrics_new(&t->sv.metrics));
}

void
testserver_close(struct testserver *t)
{
	metrics_free(t->sv.metrics);
	server_close(&t->sv, t->s);
	config_free(t->cfg);
	memset(t, 0, sizeof(*t));
}

void
testserver_client(struct testserver *t, const char *id,
    const char *const *grants, uint8_t secret[HK_SECRET_LEN],
    uint32_t *secret_nop)
{
	uint64_t expires;
	size_t	 n;

	for (n = 0; grants[n] != NULL; n++) {
		;
	}
	PASS(clients_add(t->sv.clients, t->s, id, (char *const *)grants, n,
	    secret, secret_nop, &expires));
}

static struct testserver shared;
static int		 shared_open;

struct testserver *
testserver_get(void)
{
	if (!shared_open) {
		testserver_open(&shared);
		shared_open = 1;
	}
	return &shared;
}

void
testserver_test_close(void)
{
	if (shared_open) {
		testserver_close(&shared);
		shared_open = 0;
	}
}
