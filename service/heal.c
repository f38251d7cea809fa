/* heal.c: the healer thread (see heal.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "config.h"
#include "envelope.h"
#include "heal.h"
#include "hk_err.h"
#include "keyring.h"
#include "log.h"
#include "server.h"
#include "token.h"

#define HEAL_TICK_MS	 200 /* how often it looks at the stop flag */
#define HEAL_FIRST_MS	 100 /* first wait after a failed repair */
#define HEAL_GAP_MS	 100 /* least time between two repairs */
#define HEAL_MAX_OBJECTS (1 << 22)

struct healer {
	pthread_t	      thread;
	struct server	     *sv;
	struct token_session *s;
	const atomic_int     *stopping;
};

/* The objects' handles changed: keys and clients find theirs again. */
static int
rebind(struct healer *h)
{
	struct token_object *objs = NULL;
	size_t		     n = 0;
	int		     r;

	if ((r = token_list_all(
		 h->s, "hsmkey", HEAL_MAX_OBJECTS, &objs, &n)) == 0 &&
	    (r = keyring_rebind(h->sv->kr, objs, n)) == 0) {
		r = clients_rebind(h->sv->clients, objs, n);
	}
	free(objs);
	if (r != 0) {
		log_err_r(r, "cannot find the token's objects again");
	}
	return r;
}

/* One repair, with the token to itself. */
static int
repair(struct healer *h)
{
	struct token *t = h->sv->tok;
	int	      again = 0, r;

	token_exclusive(t);
	if ((r = token_repair(t, &again)) == 0 && again) {
		r = rebind(h);
	}
	token_exclusive_end(t, r == 0);
	return r;
}

/* The keepalive: one cheap call, shared with the workers. */
static void
probe(struct token *t)
{
	if (token_hold(t, -1) == 0) {
		(void)token_probe(t); /* a failure raises the trouble flag */
		token_release(t);
	}
}

static void *
heal_main(void *arg)
{
	struct healer *h = arg;
	struct token  *t = h->sv->tok;
	uint64_t       keepalive = h->sv->cfg->keepalive_ms;
	uint64_t       wait_max = h->sv->cfg->reconnect_max_ms;
	uint64_t       now, probe_at, retry_at = 0, wait = HEAL_FIRST_MS;
	int	       pending = 0;

	probe_at = hk_mono_ms() + keepalive;
	while (!atomic_load(h->stopping)) {
		pending |= token_wait_trouble(t, HEAL_TICK_MS);
		now = hk_mono_ms();
		if (token_pin_refused(t) || now < retry_at) {
			continue;
		}
		if (pending || token_down_since(t) != 0) {
			pending = 0;
			if (repair(h) == 0) {
				wait = HEAL_FIRST_MS;
				retry_at = now + HEAL_GAP_MS;
			} else {
				retry_at = now + wait;
				wait =
				    wait * 2 < wait_max ? wait * 2 : wait_max;
			}
			probe_at = now + keepalive;
		} else if (keepalive != 0 && now >= probe_at) {
			probe_at = now + keepalive;
			probe(t);
		}
	}
	return NULL;
}

int
heal_start(struct healer **hp, struct server *sv, const atomic_int *stopping)
{
	struct healer *h;
	int	       r;

	*hp = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return HK_ERR_NOMEM;
	}
	h->sv = sv;
	h->stopping = stopping;
	if ((r = token_session_open(sv->tok, &h->s)) != 0) {
		free(h);
		return r;
	}
	if ((r = pthread_create(&h->thread, NULL, heal_main, h)) != 0) {
		log_warnx("pthread_create: %s", strerror(r));
		token_session_close(h->s);
		free(h);
		return HK_ERR_SYSTEM;
	}
	*hp = h;
	return 0;
}

void
heal_stop(struct healer *h)
{
	if (h == NULL) {
		return;
	}
	pthread_join(h->thread, NULL);
	token_session_close(h->s);
	free(h);
}
