/* ops_service.c: ping, health and stats (see ops.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "convert.h"
#include "crypto.h"
#include "hk_err.h"
#include "log.h"
#include "ops.h"
#include "wire.h"

int
ops_ping(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	static Hsmkey__V1__PingResponse pong = HSMKEY__V1__PING_RESPONSE__INIT;

	(void)ctx;
	(void)rq;
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_PING, &pong, NULL);
}

int
ops_health(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__HealthResponse *h;
	struct server		   *sv = ctx->sv;

	(void)rq;
	if ((h = ops_calloc(rep, 1, sizeof(*h))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__health_response__init(h);
	h->version = HSMKEY_VERSION;
	h->token_ok = token_healthy(sv->tok);
	h->token_label = (char *)token_label(sv->tok);
	h->token_state = (char *)token_state(sv->tok);
	h->token_down_since_ms = token_down_since(sv->tok);
	h->token_repairs = token_repairs(sv->tok);
	keyring_totals(sv->kr, &h->keys, &h->versions);
	h->uptime_s = (hk_now_ms() - sv->start_ms) / 1000;
	h->workers = sv->workers;
	h->protocol = HK_PROTOCOL_VERSION;
	if ((h->audit_state = ops_calloc(rep, 1, PATH_MAX + 128)) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	h->audit_ok = audit_health(sv->audit, h->audit_state, PATH_MAX + 128);
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_HEALTH, h, NULL);
}

int
ops_stats(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__StatsResponse   *st = NULL;
	struct keyring_vstats	    *vs = NULL;
	struct clients_secret_stats *ss = NULL;
	size_t			     i, nv = 0, ns = 0, kept = 0;
	int			     r;

	(void)rq;
	/* secrets: admin:* sees every client's, others their own */
	if ((r = keyring_stats(ctx->sv->kr, &vs, &nv)) == 0 &&
	    (r = clients_secret_stats(ctx->sv->clients,
		 ops_allowed(ctx, CLIENT_OP_ADMIN, NULL) ? NULL : ctx->client,
		 &ss, &ns)) == 0) {
		for (i = 0; i < nv; i++) {
			if (ops_shown(ctx, vs[i].key)) {
				vs[kept++] = vs[i];
			}
		}
		r = convert_stats(vs, kept, ss, ns, &st);
	}
	free(vs);
	free(ss);
	if (r != 0) {
		return ops_fail(rep, r, "cannot read the counters");
	}
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_STATS, st, convert_stats_free);
}
