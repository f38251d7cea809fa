/*
 * client_fake_test.c: libhsmkey and the hsmkey CLI against a fake service
 * on an ipc socket: the reply checks (MAC, nonce, status), the requests
 * the CLI makes and its golden output, and credential rotation (two
 * credentials per handle, reload on change).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "client_testlib.h"
#include "codec.h"
#include "credentials.h"
#include "envelope.h"
#include "hk_call.h"
#include "hsmkey.h"
#include "seal.h"
#include "testutil.h"
#include "wire.h"

/* A fake service: answers each request as `mode` says. */
enum fake_mode {
	FAKE_SIGN_OK,
	FAKE_BAD_MAC,
	FAKE_NO_MAC_UNAUTH,
	FAKE_NO_MAC_OK,
	FAKE_WRONG_NONCE,
	FAKE_NOT_FOUND,
	FAKE_WRONG_RESULT,
	FAKE_GARBAGE,
	FAKE_KEY,
	FAKE_VERIFY,
	FAKE_SECRET,
	FAKE_STOP,
};

struct fake {
	int		     sock;
	enum fake_mode	     mode;
	int		     req_mac_ok; /* last request's MAC held */
	Hsmkey__V1__Request *last;	 /* last request decoded */
	int		     last_op;	 /* its op_case */
	uint32_t	     matched;	 /* a reply's secret_no (to a 0) */
};

/* The messages a fake reply is made of. */
struct fake_msgs {
	Hsmkey__V1__Response		 resp;
	Hsmkey__V1__SignResponse	 sr;
	Hsmkey__V1__HealthResponse	 hr;
	ProtobufCBinaryData		 sig;
	Hsmkey__V1__VersionInfo		 v1, v2, *vs[2];
	Hsmkey__V1__Policy		 pol;
	Hsmkey__V1__KeyInfo		 ki;
	Hsmkey__V1__KeyResponse		 kr;
	Hsmkey__V1__VerifyResponse	 vr;
	Hsmkey__V1__ClientSecretResponse cs;
};

static void
fake_msgs_init(struct fake_msgs *m)
{
	hsmkey__v1__response__init(&m->resp);
	hsmkey__v1__sign_response__init(&m->sr);
	hsmkey__v1__health_response__init(&m->hr);
	hsmkey__v1__version_info__init(&m->v1);
	hsmkey__v1__version_info__init(&m->v2);
	hsmkey__v1__policy__init(&m->pol);
	hsmkey__v1__key_info__init(&m->ki);
	hsmkey__v1__key_response__init(&m->kr);
	hsmkey__v1__verify_response__init(&m->vr);
	hsmkey__v1__client_secret_response__init(&m->cs);
	m->sig.len = 3;
	m->sig.data = (uint8_t *)"sig";
	m->vs[0] = &m->v1;
	m->vs[1] = &m->v2;
}

/* Key "pay": 2024-01-01, 2024-01-15, 2024-02-01 */
static void
fake_key(struct fake_msgs *m)
{
	m->v1.version = 1;
	m->v1.state = HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
	m->v1.created_ms = m->v1.activated_ms = 1704067200000ULL;
	m->v1.retire_ms = 1706745600000ULL;
	m->v2.version = 2;
	m->v2.state = HSMKEY__V1__VERSION_STATE__STATE_ACTIVE;
	m->v2.created_ms = m->v2.activated_ms = 1705276800000ULL;
	m->v2.primary = 1;
	m->pol.verify_grace_s = 30 * 86400;
	m->ki.name = "pay";
	m->ki.alg = HSMKEY__V1__ALGORITHM__ALG_ECDSA_P384;
	m->ki.primary = 2;
	m->ki.n_versions = 2;
	m->ki.versions = m->vs;
	m->ki.policy = &m->pol;
	m->ki.created_ms = 1704067200000ULL;
	m->kr.key = &m->ki;
	m->kr.version = 2;
	m->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_KEY;
	m->resp.key = &m->kr;
}

/* The response the mode answers with, in m->resp. */
static void
fake_response(enum fake_mode mode, struct fake_msgs *m)
{
	fake_msgs_init(m);
	m->resp.status = HSMKEY__V1__STATUS__STATUS_OK;
	switch (mode) {
	case FAKE_NO_MAC_UNAUTH:
		m->resp.status = HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
		m->resp.message = "unknown client";
		break;
	case FAKE_NOT_FOUND:
		m->resp.status = HSMKEY__V1__STATUS__STATUS_NOT_FOUND;
		m->resp.message = "key 'k' not found";
		break;
	case FAKE_WRONG_RESULT:
		m->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_HEALTH;
		m->resp.health = &m->hr;
		break;
	case FAKE_KEY:
		fake_key(m);
		break;
	case FAKE_SECRET:
		m->cs.id = "svc";
		m->cs.secret_no = 2;
		m->cs.secret.data = (uint8_t *)secret;
		m->cs.secret.len = sizeof(secret);
		m->cs.expires_ms = 1706745600000ULL;
		m->resp.result_case =
		    HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET;
		m->resp.client_secret = &m->cs;
		break;
	case FAKE_VERIFY:
		m->vr.valid = 1;
		m->vr.version = 1;
		m->vr.state = HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
		m->vr.retire_ms = 1706745600000ULL;
		m->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_VERIFY;
		m->resp.verify = &m->vr;
		break;
	default:
		m->sr.version = 2;
		m->sr.n_signatures = 1;
		m->sr.signatures = &m->sig;
		m->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_SIGN;
		m->resp.sign = &m->sr;
		break;
	}
}

static void
fake_reply(struct fake *fk, const Hsmkey__V1__Envelope *env)
{
	struct fake_msgs m;
	uint8_t		*rb = NULL, *eb = NULL, nonce[HK_NONCE_LEN];
	uint8_t		 daykey[HK_MAC_LEN], wrong[32] = { 0 };
	size_t		 rlen, elen;
	int		 maced =
	    fk->mode != FAKE_NO_MAC_UNAUTH && fk->mode != FAKE_NO_MAC_OK;

	fake_response(fk->mode, &m);
	PASS(hk_encode(&m.resp.base, &rb, &rlen));
	memcpy(nonce, env->nonce.data, sizeof(nonce));
	if (fk->mode == FAKE_WRONG_NONCE) {
		nonce[0] ^= 1;
	}
	PASS(hk_day_key(fk->mode == FAKE_BAD_MAC ? wrong : secret, 32,
	    hk_mac_day(env->timestamp_ms), daykey));
	PASS(hk_seal_response(maced ? daykey : NULL,
	    env->secret_no == 0 ? fk->matched : 0, nonce, sizeof(nonce), rb,
	    rlen, &eb, &elen));
	if (fk->mode == FAKE_GARBAGE) {
		memset(eb, 0xff, elen);
	}
	TRUE(nn_send(fk->sock, eb, elen, 0) == (int)elen);
	free(rb);
	free(eb);
}

/* Receives and opens one request envelope; NULL on a receive timeout or
 * a closed socket.  Caller must hk_envelope_free() it. */
static Hsmkey__V1__Envelope *
fake_recv(int sock)
{
	Hsmkey__V1__Envelope *env = NULL;
	const char	     *why;
	void		     *msg;
	int		      n;

	if ((n = nn_recv(sock, &msg, NN_MSG, 0)) < 0) {
		return NULL;
	}
	PASS(hk_open_request(msg, (size_t)n, &env, &why));
	nn_freemsg(msg);
	return env;
}

static void *
fake_main(void *arg)
{
	struct fake	     *fk = arg;
	Hsmkey__V1__Envelope *env;
	uint8_t		      daykey[HK_MAC_LEN];

	while ((env = fake_recv(fk->sock)) != NULL) {
		PASS(hk_day_key(
		    secret, 32, hk_mac_day(env->timestamp_ms), daykey));
		fk->req_mac_ok = hk_check_request(env, daykey) == 0;
		if (fk->last != NULL) {
			hsmkey__v1__request__free_unpacked(fk->last, NULL);
		}
		PASS(hk_decode_strict(&hsmkey__v1__request__descriptor,
		    env->request.data, env->request.len,
		    (ProtobufCMessage **)&fk->last));
		fk->last_op = (int)fk->last->op_case;
		if (fk->mode == FAKE_STOP) {
			hk_envelope_free(env);
			return NULL;
		}
		fake_reply(fk, env);
		hk_envelope_free(env);
	}
	return NULL;
}

/* The fake service of the tests below, its URL, and a handle on it. */
static struct fake    fk;
static pthread_t      fk_thread;
static char	      fk_url[300];
static struct hsmkey *fk_h;

static void
fake_start(void)
{
	char cred[1024];

	memset(&fk, 0, sizeof(fk));
	snprintf(fk_url, sizeof(fk_url), "ipc://%s/fake.sock", tmpdir);
	TRUE((fk.sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_bind(fk.sock, fk_url) >= 0);
	TRUE(pthread_create(&fk_thread, NULL, fake_main, &fk) == 0);
	PASS(hsmkey_open_secret(
	    &fk_h, fk_url, "alice", 7, secret, sizeof(secret)));
	PASS(hsmkey_set_timeout(fk_h, 5000));
	/* the CLI's credentials */
	snprintf(cred, sizeof(cred),
	    "[client]\nid = alice\nsecret = %s\n"
	    "secret_no = 7\nconnect = %s\n",
	    SECRET_B64, fk_url);
	setenv("HSMKEY_CREDENTIALS", tmpfile_with("fake.ini", cred), 1);
}

static void
fake_stop(void)
{
	unsetenv("HSMKEY_CREDENTIALS");
	fk.mode = FAKE_STOP;
	PASS(hsmkey_set_timeout(fk_h, 300));
	/* connected, no answer (a stopped service): a reply timeout */
	FAIL(hsmkey_ping(fk_h), HSMKEY_ETIMEOUT);
	TRUE(strstr(hsmkey_last_error(fk_h),
		 "within 0.3 s: connected, but hsmkeyd does not answer") !=
	    NULL);
	pthread_join(fk_thread, NULL);
	hsmkey_close(fk_h);
	if (fk.last != NULL) {
		hsmkey__v1__request__free_unpacked(fk.last, NULL);
	}
	nn_close(fk.sock);
}

/* The library's reply checks: MAC, nonce, status, result. */
static void
test_fake_replies(void)
{
	/* the replies the library refuses: the error and its message */
	static const struct {
		enum fake_mode mode;
		int	       err;
		const char    *exact; /* the whole message, or NULL */
		const char    *part;  /* a part of it, or NULL */
	} bad[] = {
		{ FAKE_BAD_MAC, HSMKEY_EPROTO, NULL, "MAC does not verify" },
		{ FAKE_NO_MAC_UNAUTH, HSMKEY_EUNAUTH,
		    "unknown client (unauthenticated reply)", NULL },
		{ FAKE_NO_MAC_OK, HSMKEY_EPROTO, NULL, NULL },
		{ FAKE_WRONG_NONCE, HSMKEY_EPROTO, NULL, NULL },
		{ FAKE_NOT_FOUND, HSMKEY_ENOTFOUND, "key 'k' not found",
		    NULL },
		{ FAKE_WRONG_RESULT, HSMKEY_EPROTO, NULL, NULL },
		{ FAKE_GARBAGE, HSMKEY_EPROTO, NULL, NULL },
	};
	struct hsmkey *h = fk_h;
	char	      *sig = NULL;
	size_t	       i;

	fk.mode = FAKE_SIGN_OK;
	PASS(hsmkey_sign_ex(
	    h, "k", "hello", 5, 0, HSMKEY_SIG_RAW | HSMKEY_RSA_PKCS1, &sig));
	EQ_STR(sig, "hsmkey:v2:c2ln");
	TRUE(fk.req_mac_ok);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_SIGN);
	EQ_STR(fk.last->sign->name, "k");
	EQ_INT(fk.last->sign->n_items, 1);
	EQ_INT(fk.last->sign->items[0]->message.len, 5);
	EQ_INT(fk.last->sign->format, HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW);
	EQ_INT(fk.last->sign->rsa_padding,
	    HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15);
	free(sig);
	sig = NULL;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fk.mode = bad[i].mode;
		FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), bad[i].err);
		TRUE(sig == NULL);
		if (bad[i].exact != NULL) {
			EQ_STR(hsmkey_last_error(h), bad[i].exact);
		}
		if (bad[i].part != NULL) {
			TRUE(
			    strstr(hsmkey_last_error(h), bad[i].part) != NULL);
		}
	}

	/* the handle still works after failures */
	fk.mode = FAKE_SIGN_OK;
	PASS(hsmkey_sign_digest(h, "k", secret, 32, 3, &sig));
	EQ_INT(fk.last->sign->version, 3);
	EQ_INT(fk.last->sign->items[0]->digest.len, 32);
	free(sig);
}

/* The key commands' requests and golden output. */
static void
test_fake_cli_keys(void)
{
	char *out;

	fk.mode = FAKE_KEY;
	EQ_INT(run_cli_out(&out, "describe", "pay", NULL), 0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_DESCRIBE);
	EQ_STR(out,
	    "key       pay\n"
	    "alg       ecdsa-p384\n"
	    "created   2024-01-01T00:00:00Z\n"
	    "primary   v2\n"
	    "policy    sign-overlap 0s, verify-grace 30d, rotate-every off, "
	    "expires never\n"
	    "next rotation: off\n"
	    "versions\n"
	    "  VERSION  STATE              CREATED               ACTIVATED   "
	    "          UNTIL\n"
	    "  v1       verify-only        2024-01-01T00:00:00Z  "
	    "2024-01-01T00:00:00Z  2024-02-01T00:00:00Z\n"
	    "  v2*      active             2024-01-15T00:00:00Z  "
	    "2024-01-15T00:00:00Z  -\n"
	    "usage     since the service started\n"
	    "  VERSION       SIGNS   VERIFIES   ERRORS  LAST-USE\n"
	    "  v1                0          0        0  never\n"
	    "  v2                0          0        0  never\n");
	free(out);
	EQ_INT(run_cli_out(&out, "--json", "describe", "pay", NULL), 0);
	EQ_STR(out,
	    "{\"name\":\"pay\",\"alg\":\"ecdsa-p384\",\"primary\":2,"
	    "\"service_key\":false,\"created\":\"2024-01-01T00:00:00Z\","
	    "\"policy\":{"
	    "\"sign_overlap_s\":0,\"verify_grace_s\":2592000,"
	    "\"rotate_every_s\":0,\"expires\":null},"
	    "\"next_rotation\":null,\"versions\":["
	    "{\"version\":1,\"state\":\"verify-only\",\"primary\":false,"
	    "\"created\":\"2024-01-01T00:00:00Z\","
	    "\"activated\":\"2024-01-01T00:00:00Z\","
	    "\"retire\":\"2024-02-01T00:00:00Z\",\"signs\":0,"
	    "\"verifies\":0,\"errors\":0,\"last_use\":null},"
	    "{\"version\":2,\"state\":\"active\",\"primary\":true,"
	    "\"created\":\"2024-01-15T00:00:00Z\","
	    "\"activated\":\"2024-01-15T00:00:00Z\",\"retire\":null,"
	    "\"signs\":0,\"verifies\":0,\"errors\":0,"
	    "\"last_use\":null}]}\n");
	free(out);
	EQ_INT(run_cli_out(
		   &out, "rotate", "pay", "--expect", "1", "--stage", NULL),
	    0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_ROTATE);
	EQ_INT(fk.last->rotate->expect, 1);
	TRUE(fk.last->rotate->stage);
	TRUE(strncmp(out, "rotated 'pay': v2 is pending;", 29) == 0);
	free(out);
	EQ_INT(run_cli_out(&out, "rotate", "pay", "--emergency", "--yes",
		   "--expect", "1", NULL),
	    0);
	TRUE(fk.last->rotate->emergency);
	TRUE(!fk.last->rotate->stage);
	TRUE(strncmp(out, "rotated 'pay' in an emergency: v2 is primary;",
		 45) == 0);
	free(out);
	EQ_INT(run_cli_out(
		   &out, "destroy", "pay", "--version", "1", "--cancel", NULL),
	    0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_DESTROY);
	TRUE(fk.last->destroy->cancel);
	EQ_INT(fk.last->destroy->version, 1);
	free(out);
	EQ_INT(run_cli_out(&out, "policy", "pay", "--verify-grace", "7d",
		   "--expires", "2030-01-02", NULL),
	    0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_POLICY);
	TRUE(fk.last->policy->sign_overlap_s == NULL);
	TRUE(fk.last->policy->rotate_every_s == NULL);
	EQ_INT(fk.last->policy->verify_grace_s->value, 7 * 86400);
	EQ_INT(fk.last->policy->expires_ms->value, 1893542400000LL);
	free(out);
	fk.mode = FAKE_NOT_FOUND;
	EQ_INT(run_cli_out(&out, "--json", "describe", "k", NULL), 4);
	EQ_STR(out,
	    "{\"error\":\"NOT_FOUND\",\"message\":\"key 'k' not "
	    "found (see 'hsmkey list')\"}\n");
	free(out);
}

/* sign and verify from the CLI. */
static void
test_fake_cli_sign(void)
{
	char *out, cred[1024];

	fk.mode = FAKE_VERIFY;
	snprintf(cred, sizeof(cred), "%s/msg", tmpdir);
	tmpfile_with("msg", "hello\n");
	EQ_INT(run_cli_out(&out, "verify", "pay", "--sig", "hsmkey:v1:c2ln",
		   "--in", cred, "--raw", NULL),
	    0);
	EQ_STR(out,
	    "valid: signed by pay v1 (verify-only), retires "
	    "2024-02-01T00:00:00Z\n");
	EQ_INT(fk.last->verify->version, 1);
	EQ_INT(fk.last->verify->signature.len, 3);
	EQ_INT(fk.last->verify->message.len, 6);
	EQ_INT(fk.last->verify->format, HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW);
	free(out);
	EQ_INT(run_cli_out(&out, "--json", "verify", "pay", "--sig",
		   "hsmkey:v1:c2ln", "--in", cred, NULL),
	    0);
	EQ_STR(out,
	    "{\"valid\":true,\"version\":1,\"state\":"
	    "\"verify-only\",\"retire\":\"2024-02-01T00:00:00Z\"}\n");
	free(out);

	fk.mode = FAKE_SIGN_OK;
	EQ_INT(run_cli_out(&out, "sign", "pay", "--in", cred, NULL), 0);
	EQ_STR(out, "hsmkey:v2:c2ln\n");
	free(out);
	EQ_INT(run_cli_out(&out, "--json", "sign", "pay", "--digest",
		   "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c"
		   "0d0e0f",
		   NULL),
	    0);
	EQ_STR(out,
	    "{\"key\":\"pay\",\"version\":2,\"signature\":"
	    "\"hsmkey:v2:c2ln\"}\n");
	EQ_INT(fk.last->sign->items[0]->digest.len, 32);
	free(out);
}

/* client add / rotate: new credentials shown once. */
static void
test_fake_cli_clients(void)
{
	struct hk_credentials c;
	struct stat	      sb;
	char		     *out, path[512], err[256];
	const char	     *url = fk_url;

	/* new credentials: a file the library reads back, mode 0600 */
	fk.mode = FAKE_SECRET;
	snprintf(path, sizeof(path), "%s/svc.cred", tmpdir);
	EQ_INT(run_cli_out(&out, "client", "add", "svc", "--grant", "sign:*",
		   "--grant", "pubkey:k?", "--out", path, NULL),
	    0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_CLIENT_ADD);
	EQ_INT(fk.last->client_add->n_grants, 2);
	EQ_STR(fk.last->client_add->grants[1], "pubkey:k?");
	TRUE(strstr(out, SECRET_B64) == NULL);
	free(out);
	TRUE(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	PASS(hk_credentials_load(path, &c, err, sizeof(err)));
	EQ_STR(c.id, "svc");
	EQ_INT(c.secret_no, 2);
	TRUE(c.secret_len == 32 && memcmp(c.secret, secret, 32) == 0);
	EQ_STR(c.connect, url);
	hk_credentials_clear(&c);
	EQ_INT(run_cli_out(&out, "client", "rotate", "svc", NULL), 0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE);
	PASS(hk_credentials_load(
	    tmpfile_with("rot.cred", out), &c, err, sizeof(err)));
	EQ_INT(c.secret_no, 2);
	TRUE(c.secret_len == 32 && memcmp(c.secret, secret, 32) == 0);
	hk_credentials_clear(&c);
	free(out);
	/* a bad --out fails before any request */
	fk.last_op = 0;
	EQ_INT(run_cli("client", "add", "svc", "--grant", "sign:*", "--out",
		   "/nonexistent/dir/x.cred", NULL),
	    2);
	EQ_INT(fk.last_op, 0);
}

/*
 * Credentials: two per handle, reload on change and hsmkey_reload().  A
 * fake service takes the secret numbers in `accepted` (a bit mask) and
 * answers any other with UNAUTHENTICATED without a MAC, as hsmkeyd does
 * for a revoked secret.  Every file holds the same secret bytes with
 * another secret_no, so the fake's MACed replies verify for all of them.
 */
struct fake2 {
	struct fake	fk;
	pthread_mutex_t mu;
	unsigned int	accepted; /* bit n: secret_no n is valid */
	int		stop;
	int		n;	     /* requests seen */
	uint32_t	seen_no[64]; /* their secret numbers */
	uint8_t		seen_nonce[64][HK_NONCE_LEN];
	pthread_t	th;
};

static void *
fake2_main(void *arg)
{
	struct fake2	     *f = arg;
	Hsmkey__V1__Envelope *env;
	int		      ok;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		ok = !f->stop;
		pthread_mutex_unlock(&f->mu);
		if (!ok) {
			return NULL;
		}
		if ((env = fake_recv(f->fk.sock)) == NULL) {
			continue; /* NN_RCVTIMEO: look at stop */
		}
		pthread_mutex_lock(&f->mu);
		if (f->n < 64) {
			f->seen_no[f->n] = env->secret_no;
			memcpy(f->seen_nonce[f->n], env->nonce.data,
			    HK_NONCE_LEN);
		}
		f->n++;
		ok = env->secret_no < 32 &&
		    (f->accepted & (1u << env->secret_no)) != 0;
		pthread_mutex_unlock(&f->mu);
		f->fk.mode = ok ? FAKE_SIGN_OK : FAKE_NO_MAC_UNAUTH;
		fake_reply(&f->fk, env);
		hk_envelope_free(env);
	}
}

/* Writes a credentials file for secret_no atomically (rename over it). */
static void
write_cred(const char *path, const char *url, const char *id, unsigned int no)
{
	char  tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	TRUE((f = fopen(tmp, "w")) != NULL);
	fprintf(f,
	    "[client]\nid = %s\nsecret = " SECRET_B64
	    "\nsecret_no = %u\nconnect = %s\n",
	    id, no, url);
	TRUE(fclose(f) == 0);
	TRUE(chmod(tmp, 0600) == 0);
	TRUE(rename(tmp, path) == 0);
}

static void
fake2_set(struct fake2 *f, unsigned int accepted)
{
	pthread_mutex_lock(&f->mu);
	f->accepted = accepted;
	f->n = 0;
	pthread_mutex_unlock(&f->mu);
}

/* Starts the fake on ipc://TMPDIR/name; url gets its URL. */
static void
fake2_start(struct fake2 *f, const char *name, char *url, size_t len)
{
	int tmo = 100;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	snprintf(url, len, "ipc://%s/%s", tmpdir, name);
	TRUE((f->fk.sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_setsockopt(f->fk.sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
		 sizeof(tmo)) == 0);
	TRUE(nn_bind(f->fk.sock, url) >= 0);
	TRUE(pthread_create(&f->th, NULL, fake2_main, f) == 0);
}

static void
fake2_stop(struct fake2 *f)
{
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	nn_close(f->fk.sock);
	pthread_mutex_destroy(&f->mu);
}

/* The i-th request since fake2_set() was made with secret_no no. */
#define SEEN(f, i, no)                           \
	do {                                     \
		TRUE((f)->n > (i));              \
		EQ_INT((f)->seen_no[(i)], (no)); \
	} while (0)

/* One sign through h that must succeed. */
static void
sign_ok(struct hsmkey *h)
{
	char *sig = NULL;

	PASS(hsmkey_sign(h, "k", "m", 1, 0, &sig));
	free(sig);
}

static void
test_credentials_two(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL, *h2 = NULL;
	char	       url[300], p1[512], p2[512], p3[512], *sig = NULL;

	fake2_start(&f, "fake2.sock", url, sizeof(url));
	snprintf(p1, sizeof(p1), "%s/two-1.cred", tmpdir);
	snprintf(p2, sizeof(p2), "%s/two-2.cred", tmpdir);
	snprintf(p3, sizeof(p3), "%s/two-other.cred", tmpdir);
	write_cred(p1, url, "alice", 1);
	write_cred(p2, url, "alice", 2);
	write_cred(p3, url, "bob", 2);

	/* one credential, revoked: UNAUTHENTICATED; tried once more naming
	 * no secret (the secret may be another number), with the same nonce,
	 * and the file's number is kept */
	PASS(hsmkey_open(&h, p1, NULL));
	PASS(hsmkey_set_timeout(h, 5000));
	fake2_set(&f, 0);
	FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_EUNAUTH);
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 1);
	SEEN(&f, 1, 0);
	TRUE(memcmp(f.seen_nonce[0], f.seen_nonce[1], HK_NONCE_LEN) == 0);

	/* a second credential: the primary is refused, the second is tried
	 * once with the same nonce, and then leads */
	FAIL(hsmkey_add_credentials(h, p3), HSMKEY_EINVAL);
	TRUE(strstr(hsmkey_last_error(h), "same client") != NULL);
	PASS(hsmkey_add_credentials(h, p2));
	fake2_set(&f, 1u << 2);
	sign_ok(h);
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 1);
	SEEN(&f, 1, 2);
	TRUE(memcmp(f.seen_nonce[0], f.seen_nonce[1], HK_NONCE_LEN) == 0);
	fake2_set(&f, 1u << 2);
	sign_ok(h);
	EQ_INT(f.n, 1);
	SEEN(&f, 0, 2);

	/* both refused: one retry only, the order stays */
	fake2_set(&f, 0);
	FAIL(hsmkey_ping(h), HSMKEY_EUNAUTH);
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 2);
	SEEN(&f, 1, 1);
	fake2_set(&f, 1u << 2);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 1);
	SEEN(&f, 0, 2);

	/* a handle without a file has nothing to reload */
	PASS(hsmkey_open_secret(&h2, url, "alice", 2, secret, sizeof(secret)));
	FAIL(hsmkey_reload(h2), HSMKEY_EINVAL);
	hsmkey_close(h2);
	hsmkey_close(h);

	fake2_stop(&f);
}

/* A secret not named (secret_no 0, bit 0 of accepted): the reply's number
 * is sent from then on; when it is refused, once more with 0 and the same
 * nonce, and the new reply's number is learned. */
static void
test_credentials_learned(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL;
	char	       url[300];

	fake2_start(&f, "fake4.sock", url, sizeof(url));
	PASS(hsmkey_open_secret(&h, url, "alice", 0, secret, sizeof(secret)));
	PASS(hsmkey_set_timeout(h, 5000));
	f.fk.matched = 5;
	fake2_set(&f, 1u << 0 | 1u << 5);
	sign_ok(h);
	sign_ok(h);
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 0);
	SEEN(&f, 1, 5);
	f.fk.matched = 6;
	fake2_set(&f, 1u << 0 | 1u << 6);
	sign_ok(h);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 3);
	SEEN(&f, 0, 5);
	SEEN(&f, 1, 0);
	SEEN(&f, 2, 6);
	TRUE(memcmp(f.seen_nonce[0], f.seen_nonce[1], HK_NONCE_LEN) == 0);
	/* refused with 0 too: one retry only */
	fake2_set(&f, 0);
	FAIL(hsmkey_ping(h), HSMKEY_EUNAUTH);
	EQ_INT(f.n, 2);
	SEEN(&f, 1, 0);
	hsmkey_close(h);
	fake2_stop(&f);
}

static void
test_credentials_reload(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL;
	char	       url[300], p[512], bad[600];
	FILE	      *fp;

	fake2_start(&f, "fake3.sock", url, sizeof(url));
	snprintf(p, sizeof(p), "%s/svc.cred", tmpdir);
	write_cred(p, url, "svc", 1);
	PASS(hsmkey_open(&h, p, NULL));
	PASS(hsmkey_set_timeout(h, 5000));
	fake2_set(&f, 1u << 1);
	PASS(hsmkey_ping(h));
	SEEN(&f, 0, 1);

	/* the file is replaced: not looked at for a second, then used */
	write_cred(p, url, "svc", 2);
	fake2_set(&f, 1u << 1 | 1u << 2);
	PASS(hsmkey_ping(h));
	SEEN(&f, 0, 1);
	usleep(1100 * 1000);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 2);
	SEEN(&f, 1, 2);
	EQ_STR(hsmkey_last_error(h), "no error");

	/* a broken new version keeps the credential in use and says so,
	 * also after calls that succeed */
	snprintf(bad, sizeof(bad), "%s.tmp", p);
	TRUE((fp = fopen(bad, "w")) != NULL);
	fputs("[client]\nid = svc\nsecret = not*base64\n", fp);
	TRUE(fclose(fp) == 0);
	TRUE(rename(bad, p) == 0);
	usleep(1100 * 1000);
	fake2_set(&f, 1u << 2);
	PASS(hsmkey_ping(h));
	SEEN(&f, 0, 2);
	TRUE(strstr(hsmkey_last_error(h),
		 "still using client 'svc' secret "
		 "2") != NULL);
	TRUE(strstr(hsmkey_last_error(h), "base64") != NULL);
	FAIL(hsmkey_reload(h), HSMKEY_ECREDENTIALS);
	PASS(hsmkey_ping(h));
	TRUE(strstr(hsmkey_last_error(h), "still using") != NULL);

	/* secret 2 revoked right after the file changed: the refusal makes
	 * the handle look at once, and the retry uses the new secret */
	write_cred(p, url, "svc", 3);
	fake2_set(&f, 1u << 3);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 2);
	SEEN(&f, 1, 3);
	TRUE(memcmp(f.seen_nonce[0], f.seen_nonce[1], HK_NONCE_LEN) == 0);
	EQ_STR(hsmkey_last_error(h), "no error");

	/* hsmkey_reload(): at once, no one-second wait */
	write_cred(p, url, "svc", 4);
	PASS(hsmkey_reload(h));
	fake2_set(&f, 1u << 3 | 1u << 4);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 1);
	SEEN(&f, 0, 4);
	/* the same file again changes nothing */
	PASS(hsmkey_reload(h));

	/* automatic reload off: a changed file is not read */
	PASS(hsmkey_set_auto_reload(h, 0));
	write_cred(p, url, "svc", 5);
	usleep(1100 * 1000);
	fake2_set(&f, 1u << 4 | 1u << 5);
	PASS(hsmkey_ping(h));
	SEEN(&f, 0, 4);
	PASS(hsmkey_reload(h));
	PASS(hsmkey_ping(h));
	SEEN(&f, 1, 5);
	/* the previous credential stays as the second one */
	fake2_set(&f, 1u << 4);
	PASS(hsmkey_ping(h));
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 5);
	SEEN(&f, 1, 4);
	hsmkey_close(h);

	fake2_stop(&f);
}

/* The connection: lost, back, dropped, and nothing left behind */

enum link_mode {
	LINK_LOST, /* gets the request, then goes away */
	LINK_BACK, /* the same, and is back after 300 ms to answer */
};

/* A fake that binds url and does what mode says with one request. */
struct link_fake {
	pthread_t      th;
	enum link_mode mode;
	char	       url[300];
	int	       sock;
	int	       n;    /* requests received */
	int	       same; /* the resend was byte for byte the first */
};

/* Receives one raw request on sock into *msgp; its length. */
static int
link_recv(int sock, void **msgp)
{
	int tmo = 5000, n;

	TRUE(nn_setsockopt(
		 sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo)) == 0);
	TRUE((n = nn_recv(sock, msgp, NN_MSG, 0)) > 0);
	return n;
}

static int
link_bind(const char *url)
{
	int sock;

	TRUE((sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_bind(sock, url) >= 0);
	return sock;
}

static void *
link_main(void *arg)
{
	struct link_fake     *lf = arg;
	struct fake	      rep;
	Hsmkey__V1__Envelope *env;
	const char	     *why;
	void		     *first, *again;
	int		      n1, n2;

	n1 = link_recv(lf->sock, &first);
	lf->n++;
	nn_close(lf->sock);
	lf->sock = -1;
	if (lf->mode == LINK_LOST) {
		nn_freemsg(first);
		return NULL;
	}
	usleep(300 * 1000);
	lf->sock = link_bind(lf->url);
	n2 = link_recv(lf->sock, &again);
	lf->n++;
	lf->same = n1 == n2 && memcmp(first, again, (size_t)n1) == 0;
	PASS(hk_open_request(again, (size_t)n2, &env, &why));
	memset(&rep, 0, sizeof(rep));
	rep.sock = lf->sock;
	rep.mode = FAKE_SIGN_OK;
	fake_reply(&rep, env);
	hk_envelope_free(env);
	nn_freemsg(first);
	nn_freemsg(again);
	return NULL;
}

/* Starts the fake on ipc://TMPDIR/name and opens *hp on it. */
static void
link_start(struct link_fake *lf, enum link_mode mode, const char *name,
    struct hsmkey **hp)
{
	memset(lf, 0, sizeof(*lf));
	lf->mode = mode;
	snprintf(lf->url, sizeof(lf->url), "ipc://%s/%s", tmpdir, name);
	lf->sock = link_bind(lf->url);
	TRUE(pthread_create(&lf->th, NULL, link_main, lf) == 0);
	PASS(hsmkey_open_secret(hp, lf->url, "alice", 7, secret, 32));
	PASS(hsmkey_set_timeout(*hp, 20000));
}

static void
link_stop(struct link_fake *lf, struct hsmkey *h)
{
	pthread_join(lf->th, NULL);
	if (lf->sock >= 0) {
		nn_close(lf->sock);
	}
	hsmkey_close(h);
}

/* The service goes away with the request in flight: HSMKEY_ECONNLOST
 * after the connect timeout, not the reply timeout. */
static void
test_link_lost(void)
{
	struct link_fake lf;
	struct hsmkey	*h = NULL;
	long long	 t0, dt;
	char		*sig = NULL;

	link_start(&lf, LINK_LOST, "lost.sock", &h);
	PASS(hsmkey_set_connect_timeout(h, 500));
	t0 = mono_ms();
	FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_ECONNLOST);
	dt = mono_ms() - t0;
	TRUE(dt >= 450 && dt < 2500);
	TRUE(strstr(hsmkey_last_error(h), lf.url) != NULL);
	TRUE(strstr(hsmkey_last_error(h), "lost with the request in flight") !=
	    NULL);
	link_stop(&lf, h);
	EQ_INT(lf.n, 1);
}

/* Back within the connect timeout: REQ's resend, byte for byte, gets the
 * reply. */
static void
test_link_back(void)
{
	struct link_fake lf;
	struct hsmkey	*h = NULL;

	link_start(&lf, LINK_BACK, "back.sock", &h);
	PASS(hsmkey_set_connect_timeout(h, 3000));
	sign_ok(h);
	link_stop(&lf, h);
	EQ_INT(lf.n, 2);
	TRUE(lf.same);
}

/* A request over the service's receive limit: the service drops the
 * connection at each resend; the error says so.  A small one on the same
 * handle signs. */
static void
test_link_drop(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL;
	char	       url[300], *sig = NULL, *big;
	long long      t0, dt;
	int	       max = 4096;

	fake2_start(&f, "drop.sock", url, sizeof(url));
	TRUE(nn_setsockopt(f.fk.sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max,
		 sizeof(max)) == 0);
	fake2_set(&f, 1u << 7);
	PASS(hsmkey_open_secret(&h, url, "alice", 7, secret, 32));
	PASS(hsmkey_set_timeout(h, 20000));
	TRUE((big = calloc(1, 20000)) != NULL);
	t0 = mono_ms();
	FAIL(hsmkey_sign(h, "k", big, 20000, 0, &sig), HSMKEY_ECONNLOST);
	dt = mono_ms() - t0;
	TRUE(dt < 2500);
	/* 3 drops, or 4 when two fell into one look */
	TRUE(strncmp(hsmkey_last_error(h), "connection closed by the service ",
		 33) == 0);
	TRUE(strstr(hsmkey_last_error(h), " times after a request of ") !=
	    NULL);
	TRUE(strstr(hsmkey_last_error(h), "max_request?") != NULL);
	free(big);
	sign_ok(h);
	EQ_INT(f.n, 1);
	hsmkey_close(h);
	fake2_stop(&f);
}

/* A call that could not reach the service leaves nothing behind: when the
 * service comes up, the abandoned request does not arrive. */
static void
test_link_parked(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL;
	char	       url[300], *sig = NULL;

	snprintf(url, sizeof(url), "ipc://%s/parked.sock", tmpdir);
	PASS(hsmkey_open_secret(&h, url, "alice", 7, secret, 32));
	PASS(hsmkey_set_timeout(h, 20000));
	PASS(hsmkey_set_connect_timeout(h, 300));
	FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_ECONNECT);
	fake2_start(&f, "parked.sock", url, sizeof(url));
	fake2_set(&f, 1u << 7);
	usleep(600 * 1000);
	EQ_INT(f.n, 0);
	sign_ok(h);
	EQ_INT(f.n, 1);
	hsmkey_close(h);
	fake2_stop(&f);
}

TEST_LIST = {
	{ "setup", setup },
	{ "fake_start", fake_start },
	{ "fake_replies", test_fake_replies },
	{ "fake_cli_keys", test_fake_cli_keys },
	{ "fake_cli_sign", test_fake_cli_sign },
	{ "fake_cli_clients", test_fake_cli_clients },
	{ "fake_stop", fake_stop },
	{ "credentials_two", test_credentials_two },
	{ "credentials_reload", test_credentials_reload },
	{ "credentials_learned", test_credentials_learned },
	{ "link_lost", test_link_lost },
	{ "link_back", test_link_back },
	{ "link_drop", test_link_drop },
	{ "link_parked", test_link_parked },
	{ "teardown", teardown },
	{ NULL, NULL },
};

TEST_MAIN
