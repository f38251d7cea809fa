/*
 * client_test.c: unit tests of libhsmkey and the hsmkey CLI that need no
 * hsmkeyd: credentials files, JSON escaping, duration/expiry parsing,
 * argument checks, timeouts, and the reply checks (MAC, nonce, status)
 * against a fake service on an ipc socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "cli.h"
#include "codec.h"
#include "credentials.h"
#include "envelope.h"
#include "hk_client.h"
#include "hsmkey.h"
#include "json.h"
#include "testutil.h"
#include "wire.h"

/* 32 bytes 0x01..0x20 */
#define SECRET_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

static const uint8_t secret[32] = {
	1,
	2,
	3,
	4,
	5,
	6,
	7,
	8,
	9,
	10,
	11,
	12,
	13,
	14,
	15,
	16,
	17,
	18,
	19,
	20,
	21,
	22,
	23,
	24,
	25,
	26,
	27,
	28,
	29,
	30,
	31,
	32,
};

static char tmpdir[256];

static const char *
tmpfile_with(const char *name, const char *content)
{
	static char path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	TRUE((f = fopen(path, "w")) != NULL);
	fputs(content, f);
	fclose(f);
	chmod(path, 0600);
	return path;
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Credentials */

static void
test_creds_good(void)
{
	struct hk_credentials c;
	char		      err[256];
	const char	     *p;

	p = tmpfile_with("good.ini",
	    "; comment\n[client]\nid = alice\n"
	    "secret = " SECRET_B64 "\nsecret_no = 3\n"
	    "connect = ipc:///tmp/x.sock\n[other]\nid = bob\n");
	PASS(hk_credentials_load(p, &c, err, sizeof(err)));
	EQ_STR(c.id, "alice");
	EQ_INT(c.secret_no, 3);
	EQ_INT(c.secret_len, 32);
	TRUE(memcmp(c.secret, secret, 32) == 0);
	EQ_STR(c.connect, "ipc:///tmp/x.sock");
	hk_credentials_clear(&c);

	p = tmpfile_with(
	    "defaults.ini", "[client]\nid=bob\nsecret=" SECRET_B64 "\n");
	PASS(hk_credentials_load(p, &c, err, sizeof(err)));
	EQ_INT(c.secret_no, 1);
	TRUE(c.connect == NULL);
	hk_credentials_clear(&c);
}

static void
test_creds_bad(void)
{
	struct hk_credentials c;
	char		      err[256];
	const char	     *p;

	p = tmpfile_with("nosecret.ini", "[client]\nid = alice\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	TRUE(strstr(err, "no secret") != NULL);
	hk_credentials_clear(&c);

	p = tmpfile_with("noid.ini", "[client]\nsecret = " SECRET_B64 "\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	TRUE(strstr(err, "no id") != NULL);
	hk_credentials_clear(&c);

	p = tmpfile_with(
	    "b64.ini", "[client]\nid = a\nsecret = not*base64!\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	TRUE(strstr(err, "base64") != NULL);
	/* the message never carries the secret */
	TRUE(strstr(err, "not*base64") == NULL);
	hk_credentials_clear(&c);

	p = tmpfile_with("short.ini", "[client]\nid = a\nsecret = AAAA\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	hk_credentials_clear(&c);

	p = tmpfile_with("no.ini",
	    "[client]\nid = a\nsecret = " SECRET_B64 "\nsecret_no = 0\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	hk_credentials_clear(&c);

	p = tmpfile_with(
	    "badid.ini", "[client]\nid = -a b\nsecret = " SECRET_B64 "\n");
	FAIL(
	    hk_credentials_load(p, &c, err, sizeof(err)), HSMKEY_ECREDENTIALS);
	hk_credentials_clear(&c);

	FAIL(hk_credentials_load("/nonexistent/creds", &c, err, sizeof(err)),
	    HSMKEY_ECREDENTIALS);
	TRUE(strstr(err, "/nonexistent/creds") != NULL);
	hk_credentials_clear(&c);
	FAIL(hk_credentials_load(NULL, &c, err, sizeof(err)),
	    HSMKEY_ECREDENTIALS);
	hk_credentials_clear(&c);
}

static void
test_open_precedence(void)
{
	struct hsmkey *h = NULL;
	const char    *p;

	p = tmpfile_with("conn.ini",
	    "[client]\nid = alice\nsecret = " SECRET_B64
	    "\nconnect = ipc:///tmp/from-file.sock\n");
	unsetenv("HSMKEY_CONNECT");
	PASS(hsmkey_open(&h, p, NULL));
	EQ_STR(hk_client_url(h), "ipc:///tmp/from-file.sock");
	EQ_STR(hk_client_id(h), "alice");
	hsmkey_close(h);

	setenv("HSMKEY_CONNECT", "ipc:///tmp/from-env.sock", 1);
	PASS(hsmkey_open(&h, p, NULL));
	EQ_STR(hk_client_url(h), "ipc:///tmp/from-env.sock");
	hsmkey_close(h);

	PASS(hsmkey_open(&h, p, "ipc:///tmp/from-arg.sock"));
	EQ_STR(hk_client_url(h), "ipc:///tmp/from-arg.sock");
	hsmkey_close(h);
	unsetenv("HSMKEY_CONNECT");

	setenv("HSMKEY_CREDENTIALS", p, 1);
	PASS(hsmkey_open(&h, NULL, NULL));
	hsmkey_close(h);
	unsetenv("HSMKEY_CREDENTIALS");
	FAIL(hsmkey_open(&h, NULL, NULL), HSMKEY_ECREDENTIALS);
	TRUE(h == NULL);
	TRUE(strstr(hsmkey_last_error(NULL), "HSMKEY_CREDENTIALS") != NULL);

	p = tmpfile_with(
	    "noconn.ini", "[client]\nid = alice\nsecret = " SECRET_B64 "\n");
	FAIL(hsmkey_open(&h, p, NULL), HSMKEY_ECREDENTIALS);
	TRUE(strstr(hsmkey_last_error(NULL), "--connect") != NULL);
	FAIL(hsmkey_open(&h, p, "bogus://x"), HSMKEY_EINVAL);
}

/* JSON */

static char *
json_of(void (*fn)(struct json *))
{
	struct json j;
	char	   *buf = NULL;
	size_t	    len = 0;
	FILE	   *f;

	TRUE((f = open_memstream(&buf, &len)) != NULL);
	json_init(&j, f);
	fn(&j);
	fclose(f);
	return buf;
}

static void
json_escapes(struct json *j)
{
	json_object_begin(j);
	json_kv_string(j, "s", "a\"b\\c\nd\te\x01\x1f/\xc3\xa9");
	json_kv_string(j, "null", NULL);
	json_kv_u64(j, "n", 18446744073709551615ULL);
	json_key(j, "a");
	json_array_begin(j);
	json_bool(j, 1);
	json_bool(j, 0);
	json_null(j);
	json_object_begin(j);
	json_object_end(j);
	json_array_end(j);
	json_key(j, "e");
	json_array_begin(j);
	json_array_end(j);
	json_object_end(j);
}

static void
test_json(void)
{
	char *s = json_of(json_escapes);

	EQ_STR(s,
	    "{\"s\":\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f/\xc3\xa9\","
	    "\"null\":null,\"n\":18446744073709551615,"
	    "\"a\":[true,false,null,{}],\"e\":[]}\n");
	free(s);
}

/* Parsing */

static void
test_duration(void)
{
	uint64_t s;
	char	 buf[32];

	PASS(hk_parse_duration("90", &s));
	EQ_INT(s, 90);
	PASS(hk_parse_duration("30s", &s));
	EQ_INT(s, 30);
	PASS(hk_parse_duration("15m", &s));
	EQ_INT(s, 900);
	PASS(hk_parse_duration("12h", &s));
	EQ_INT(s, 43200);
	PASS(hk_parse_duration("7d", &s));
	EQ_INT(s, 604800);
	TRUE(hk_parse_duration("7w", &s) != 0);
	TRUE(hk_parse_duration("-1", &s) != 0);
	TRUE(hk_parse_duration("", &s) != 0);
	TRUE(hk_parse_duration("1dd", &s) != 0);
	EQ_STR(cli_fmt_duration(604800, buf, sizeof(buf)), "7d");
	EQ_STR(cli_fmt_duration(43200, buf, sizeof(buf)), "12h");
	EQ_STR(cli_fmt_duration(900, buf, sizeof(buf)), "15m");
	EQ_STR(cli_fmt_duration(90, buf, sizeof(buf)), "90s");
	EQ_STR(cli_fmt_duration(0, buf, sizeof(buf)), "0s");
}

static void
test_expiry(void)
{
	uint64_t ms;
	char	 buf[64];

	TRUE(cli_parse_expiry("never", &ms) == 0);
	EQ_INT(ms, 0);
	TRUE(cli_parse_expiry("2030-01-02", &ms) == 0);
	EQ_INT(ms, 1893542400000LL);
	TRUE(cli_parse_expiry("2030-01-02T03:04:05Z", &ms) == 0);
	EQ_INT(ms, 1893542400000LL + (3 * 3600 + 4 * 60 + 5) * 1000LL);
	EQ_STR(cli_fmt_time(ms, buf, sizeof(buf)), "2030-01-02T03:04:05Z");
	EQ_STR(cli_fmt_time(0, buf, sizeof(buf)), "-");
	TRUE(cli_parse_expiry("2030-02-30", &ms) != 0);
	TRUE(cli_parse_expiry("2030-1-2", &ms) != 0);
	TRUE(cli_parse_expiry("2030-01-02T03:04:05", &ms) != 0);
	TRUE(cli_parse_expiry("2030-01-02 03:04:05Z", &ms) != 0);
	TRUE(cli_parse_expiry("tomorrow", &ms) != 0);
	TRUE(cli_parse_expiry("", &ms) != 0);
}

static void
test_cli_parsers(void)
{
	uint8_t *d;
	size_t	 len;
	uint32_t v;
	int	 ms;

	TRUE(cli_parse_timeout("30", &ms) == 0);
	EQ_INT(ms, 30000);
	TRUE(cli_parse_timeout("0.3", &ms) == 0);
	EQ_INT(ms, 300);
	TRUE(cli_parse_timeout("250ms", &ms) == 0);
	EQ_INT(ms, 250);
	TRUE(cli_parse_timeout("0", &ms) != 0);
	TRUE(cli_parse_timeout("x", &ms) != 0);
	TRUE(cli_parse_timeout("1.", &ms) != 0);

	TRUE(cli_parse_hex("00ffA0", &d, &len) == 0);
	EQ_INT(len, 3);
	TRUE(d[0] == 0 && d[1] == 0xff && d[2] == 0xa0);
	free(d);
	TRUE(cli_parse_hex("abc", &d, &len) != 0);
	TRUE(cli_parse_hex("zz", &d, &len) != 0);
	TRUE(cli_parse_hex("", &d, &len) != 0);

	TRUE(cli_parse_u32("7", 0, &v) == 0 && v == 7);
	TRUE(cli_parse_u32("0", 0, &v) != 0);
	TRUE(cli_parse_u32("0", 1, &v) == 0);
	TRUE(cli_parse_u32("4294967296", 0, &v) != 0);
	TRUE(cli_parse_u32("-1", 0, &v) != 0);
	TRUE(cli_parse_u32("1x", 0, &v) != 0);

	TRUE(cli_valid_grant("sign:payments-*"));
	TRUE(cli_valid_grant("admin:*"));
	TRUE(cli_valid_grant("verify:k[0-9]"));
	TRUE(!cli_valid_grant("sign"));
	TRUE(!cli_valid_grant("sign:"));
	TRUE(!cli_valid_grant("delete:*"));
	TRUE(!cli_valid_grant("sign:A*"));
	TRUE(!cli_valid_grant("sign:a b"));
}

/*
 * Runs the CLI with stdout to outpath (NULL: silenced) and stderr silenced;
 * returns its exit code.
 */
static int
vrun_cli(const char *outpath, const char *a0, va_list ap)
{
	const char *argv[32];
	int	    argc = 0, r, out, err, null, fd;

	argv[argc++] = "hsmkey";
	for (argv[argc] = a0; argv[argc] != NULL && argc < 30;
	     argv[argc] = va_arg(ap, const char *)) {
		argc++;
	}
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	err = dup(2);
	null = open("/dev/null", O_WRONLY);
	fd = outpath != NULL
	    ? open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)
	    : null;
	TRUE(fd >= 0);
	dup2(fd, 1);
	dup2(null, 2);
	r = cli_run(argc, (char **)argv);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	if (fd != null) {
		close(fd);
	}
	return r;
}

static int
run_cli(const char *a0, ...)
{
	va_list ap;
	int	r;

	va_start(ap, a0);
	r = vrun_cli(NULL, a0, ap);
	va_end(ap);
	return r;
}

/* Runs the CLI and returns its stdout in *outp (caller frees). */
static int
run_cli_out(char **outp, const char *a0, ...)
{
	char	path[512];
	va_list ap;
	FILE   *f;
	long	len;
	int	r;

	snprintf(path, sizeof(path), "%s/cli.out", tmpdir);
	va_start(ap, a0);
	r = vrun_cli(path, a0, ap);
	va_end(ap);
	TRUE((f = fopen(path, "r")) != NULL);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	*outp = calloc(1, (size_t)len + 1);
	TRUE(fread(*outp, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	return r;
}

static void
test_cli_usage(void)
{
	EQ_INT(run_cli("help", NULL), 0);
	EQ_INT(run_cli("--help", NULL), 0);
	EQ_INT(run_cli("sign", "--help", NULL), 0);
	EQ_INT(run_cli("help", "client", "add", NULL), 0);
	EQ_INT(run_cli(NULL), 2);
	EQ_INT(run_cli("frobnicate", NULL), 2);
	EQ_INT(run_cli("client", NULL), 2);
	EQ_INT(run_cli("client", "frob", NULL), 2);
	EQ_INT(run_cli("audit", "verify", "x", NULL), 2);
	EQ_INT(run_cli("sign", NULL), 2);
	EQ_INT(run_cli("sign", "Bad_Name", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--bogus", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--digest", "zz", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--digest", "abcd", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--version", "0", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--in", "/dev/null", NULL), 2);
	EQ_INT(run_cli("sign", "k", "--in", "x", "--digest", "00", NULL), 2);
	EQ_INT(run_cli("sign", "k", "l", NULL), 2);
	EQ_INT(run_cli("verify", "k", NULL), 2);
	EQ_INT(run_cli("verify", "k", "--sig", "nope", NULL), 2);
	EQ_INT(run_cli("create", "k", "--alg", "dsa", NULL), 2);
	EQ_INT(run_cli("promote", "k", NULL), 2);
	EQ_INT(run_cli("policy", "k", "--verify-grace", "3w", NULL), 2);
	EQ_INT(run_cli("policy", "k", "--expires", "soon", NULL), 2);
	EQ_INT(run_cli("client", "add", "alice", NULL), 2);
	EQ_INT(run_cli("client", "add", "alice", "--grant", "fly:*", NULL), 2);
	EQ_INT(run_cli("client", "add", "-bad", "--grant", "sign:*", NULL), 2);
	EQ_INT(run_cli("client", "revoke", "alice", NULL), 2);
	EQ_INT(run_cli("--timeout", "x", "list", NULL), 2);
	EQ_INT(run_cli("list", "--json=1", NULL), 2);
	/* no credentials anywhere: exit 2 */
	unsetenv("HSMKEY_CREDENTIALS");
	EQ_INT(run_cli("list", NULL), 2);
}

/* Library argument checks (no request is sent). */
static void
test_lib_args(void)
{
	struct hsmkey_verify_result res;
	struct hsmkey		   *h = NULL;
	uint8_t			    d[32] = { 0 };
	char			   *sig = NULL, *big;

	PASS(hsmkey_open_secret(&h, "ipc:///tmp/hsmkey-nowhere.sock", "alice",
	    1, secret, sizeof(secret)));
	FAIL(hsmkey_sign(h, "Bad", "m", 1, 0, &sig), HSMKEY_EINVAL);
	TRUE(strstr(hsmkey_last_error(h), "invalid key name") != NULL);
	FAIL(hsmkey_sign(h, "k", "", 0, 0, &sig), HSMKEY_EINVAL);
	EQ_STR(hsmkey_last_error(h), "message is empty");
	big = calloc(1, HK_CLIENT_MAX_DATA + 1);
	FAIL(hsmkey_sign(h, "k", big, HK_CLIENT_MAX_DATA + 1, 0, &sig),
	    HSMKEY_EINVAL);
	TRUE(strstr(hsmkey_last_error(h), "the limit is") != NULL);
	free(big);
	FAIL(hsmkey_sign_digest(h, "k", d, 31, 0, &sig), HSMKEY_EINVAL);
	FAIL(hsmkey_verify(h, "k", "m", 1, "hsmkey:v0:AAAA", &res),
	    HSMKEY_EINVAL);
	FAIL(hsmkey_verify(h, "k", "m", 1, "garbage", &res), HSMKEY_EINVAL);
	FAIL(hsmkey_create(h, "k", "dsa"), HSMKEY_EINVAL);
	FAIL(hsmkey_set_timeout(h, 0), HSMKEY_EINVAL);
	TRUE(sig == NULL);
	hsmkey_close(h);

	FAIL(hsmkey_open_secret(&h, "ipc:///x", "alice", 1, secret, 4),
	    HSMKEY_EINVAL);
	FAIL(hsmkey_open_secret(&h, "ipc:///x", "a b", 1, secret, 32),
	    HSMKEY_EINVAL);
	hsmkey_close(NULL);

	EQ_INT(hsmkey_exit_code(HSMKEY_OK), 0);
	EQ_INT(hsmkey_exit_code(HSMKEY_EINVAL), 2);
	EQ_INT(hsmkey_exit_code(HSMKEY_ECREDENTIALS), 2);
	EQ_INT(hsmkey_exit_code(HSMKEY_EUNAUTH), 3);
	EQ_INT(hsmkey_exit_code(HSMKEY_EDENIED), 3);
	EQ_INT(hsmkey_exit_code(HSMKEY_EREPLAY), 3);
	EQ_INT(hsmkey_exit_code(HSMKEY_ENOTFOUND), 4);
	EQ_INT(hsmkey_exit_code(HSMKEY_EPRECONDITION), 5);
	EQ_INT(hsmkey_exit_code(HSMKEY_ETIMEOUT), 5);
	EQ_STR(hsmkey_error_name(HSMKEY_ENOTFOUND), "NOT_FOUND");
	TRUE(hsmkey_strerror(12345) != NULL);
}

static void
test_timeout(void)
{
	const char *urls[] = {
		"ipc:///tmp/hsmkey-client-test-nothing-here.sock",
		"tcp://127.0.0.1:9",
		NULL,
	};
	struct hsmkey *h = NULL;
	long long      t0, dt;
	char	      *sig = NULL;
	int	       i;

	for (i = 0; urls[i] != NULL; i++) {
		PASS(hsmkey_open_secret(
		    &h, urls[i], "alice", 1, secret, sizeof(secret)));
		PASS(hsmkey_set_timeout(h, 300));
		t0 = mono_ms();
		FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_ETIMEOUT);
		dt = mono_ms() - t0;
		TRUE(dt >= 250 && dt < 1500);
		TRUE(strstr(hsmkey_last_error(h), "within 0.3 s") != NULL);
		TRUE(strstr(hsmkey_last_error(h), "is hsmkeyd running?") !=
		    NULL);
		/* a second call on the same handle behaves the same */
		FAIL(hsmkey_ping(h), HSMKEY_ETIMEOUT);
		hsmkey_close(h);
	}
}

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
};

static void
fake_reply(struct fake *fk, const Hsmkey__V1__Envelope *env)
{
	Hsmkey__V1__ResponseEnvelope renv =
	    HSMKEY__V1__RESPONSE_ENVELOPE__INIT;
	Hsmkey__V1__Response	   resp = HSMKEY__V1__RESPONSE__INIT;
	Hsmkey__V1__SignResponse   sr = HSMKEY__V1__SIGN_RESPONSE__INIT;
	Hsmkey__V1__HealthResponse hr = HSMKEY__V1__HEALTH_RESPONSE__INIT;
	ProtobufCBinaryData	   sig = { 3, (uint8_t *)"sig" };
	Hsmkey__V1__VersionInfo	   v1 = HSMKEY__V1__VERSION_INFO__INIT;
	Hsmkey__V1__VersionInfo	   v2 = HSMKEY__V1__VERSION_INFO__INIT;
	Hsmkey__V1__VersionInfo	  *vs[2] = { &v1, &v2 };
	Hsmkey__V1__Policy	   pol = HSMKEY__V1__POLICY__INIT;
	Hsmkey__V1__KeyInfo	   ki = HSMKEY__V1__KEY_INFO__INIT;
	Hsmkey__V1__KeyResponse	   kr = HSMKEY__V1__KEY_RESPONSE__INIT;
	Hsmkey__V1__VerifyResponse vr = HSMKEY__V1__VERIFY_RESPONSE__INIT;
	Hsmkey__V1__ClientSecretResponse cs =
	    HSMKEY__V1__CLIENT_SECRET_RESPONSE__INIT;
	uint8_t *rb = NULL, *eb = NULL, mac[HK_MAC_LEN], nonce[HK_NONCE_LEN];
	uint8_t	 daykey[HK_MAC_LEN];
	size_t	 rlen, elen;
	struct hk_buf *b;
	uint8_t	       wrong[32] = { 0 };

	resp.status = HSMKEY__V1__STATUS__STATUS_OK;
	switch (fk->mode) {
	case FAKE_NO_MAC_UNAUTH:
		resp.status = HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
		resp.message = "unknown client";
		break;
	case FAKE_NOT_FOUND:
		resp.status = HSMKEY__V1__STATUS__STATUS_NOT_FOUND;
		resp.message = "key 'k' not found";
		break;
	case FAKE_WRONG_RESULT:
		resp.result_case = HSMKEY__V1__RESPONSE__RESULT_HEALTH;
		resp.health = &hr;
		break;
	case FAKE_KEY:
		/* 2024-01-01, 2024-01-15, 2024-02-01 */
		v1.version = 1;
		v1.state = HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
		v1.created_ms = v1.activated_ms = 1704067200000ULL;
		v1.retire_ms = 1706745600000ULL;
		v2.version = 2;
		v2.state = HSMKEY__V1__VERSION_STATE__STATE_ACTIVE;
		v2.created_ms = v2.activated_ms = 1705276800000ULL;
		v2.primary = 1;
		pol.verify_grace_s = 30 * 86400;
		ki.name = "pay";
		ki.alg = HSMKEY__V1__ALGORITHM__ALG_ECDSA_P384;
		ki.primary = 2;
		ki.n_versions = 2;
		ki.versions = vs;
		ki.policy = &pol;
		ki.created_ms = 1704067200000ULL;
		kr.key = &ki;
		kr.version = 2;
		resp.result_case = HSMKEY__V1__RESPONSE__RESULT_KEY;
		resp.key = &kr;
		break;
	case FAKE_SECRET:
		cs.id = "svc";
		cs.secret_no = 2;
		cs.secret.data = (uint8_t *)secret;
		cs.secret.len = sizeof(secret);
		cs.expires_ms = 1706745600000ULL;
		resp.result_case = HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET;
		resp.client_secret = &cs;
		break;
	case FAKE_VERIFY:
		vr.valid = 1;
		vr.version = 1;
		vr.state = HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
		vr.retire_ms = 1706745600000ULL;
		resp.result_case = HSMKEY__V1__RESPONSE__RESULT_VERIFY;
		resp.verify = &vr;
		break;
	default:
		sr.version = 2;
		sr.n_signatures = 1;
		sr.signatures = &sig;
		resp.result_case = HSMKEY__V1__RESPONSE__RESULT_SIGN;
		resp.sign = &sr;
		break;
	}
	PASS(hk_encode(&resp.base, &rb, &rlen));
	memcpy(nonce, env->nonce.data, sizeof(nonce));
	if (fk->mode == FAKE_WRONG_NONCE) {
		nonce[0] ^= 1;
	}
	TRUE((b = hk_buf_new(HK_MAX_MESSAGE * 2)) != NULL);
	PASS(hk_mac_input_response(b, 1, nonce, sizeof(nonce), rb, rlen));
	PASS(hk_day_key(fk->mode == FAKE_BAD_MAC ? wrong : secret, 32,
	    hk_mac_day(env->timestamp_ms), daykey));
	PASS(hk_hmac_sha256(daykey, 32, hk_buf_ptr(b), hk_buf_len(b), mac));
	hk_buf_free(b);
	renv.protocol = 1;
	renv.nonce.data = nonce;
	renv.nonce.len = sizeof(nonce);
	renv.response.data = rb;
	renv.response.len = rlen;
	if (fk->mode != FAKE_NO_MAC_UNAUTH && fk->mode != FAKE_NO_MAC_OK) {
		renv.mac.data = mac;
		renv.mac.len = sizeof(mac);
	}
	PASS(hk_encode(&renv.base, &eb, &elen));
	if (fk->mode == FAKE_GARBAGE) {
		memset(eb, 0xff, elen);
	}
	TRUE(nn_send(fk->sock, eb, elen, 0) == (int)elen);
	free(rb);
	free(eb);
}

static void *
fake_main(void *arg)
{
	struct fake	     *fk = arg;
	Hsmkey__V1__Envelope *env;
	ProtobufCMessage     *m;
	struct hk_buf	     *b;
	uint8_t		      mac[HK_MAC_LEN], daykey[HK_MAC_LEN];
	void		     *msg;
	int		      n;

	for (;;) {
		if ((n = nn_recv(fk->sock, &msg, NN_MSG, 0)) < 0) {
			return NULL;
		}
		PASS(hk_decode_strict(
		    &hsmkey__v1__envelope__descriptor, msg, (size_t)n, &m));
		nn_freemsg(msg);
		env = (Hsmkey__V1__Envelope *)m;
		TRUE((b = hk_buf_new(HK_MAX_MESSAGE * 2)) != NULL);
		PASS(hk_mac_input_request(b, env->protocol, env->client_id,
		    env->secret_no, env->nonce.data, env->nonce.len,
		    env->timestamp_ms, env->request.data, env->request.len));
		PASS(hk_day_key(
		    secret, 32, hk_mac_day(env->timestamp_ms), daykey));
		PASS(hk_hmac_sha256(
		    daykey, 32, hk_buf_ptr(b), hk_buf_len(b), mac));
		hk_buf_free(b);
		fk->req_mac_ok = env->mac.len == 32 &&
		    hk_mac_cmp(mac, env->mac.data, 32) == 0 &&
		    env->nonce.len == HK_NONCE_LEN && env->protocol == 1;
		if (fk->last != NULL) {
			hsmkey__v1__request__free_unpacked(fk->last, NULL);
		}
		PASS(hk_decode_strict(&hsmkey__v1__request__descriptor,
		    env->request.data, env->request.len,
		    (ProtobufCMessage **)&fk->last));
		fk->last_op = (int)fk->last->op_case;
		if (fk->mode == FAKE_STOP) {
			hsmkey__v1__envelope__free_unpacked(env, NULL);
			return NULL;
		}
		fake_reply(fk, env);
		hsmkey__v1__envelope__free_unpacked(env, NULL);
	}
}

static void
test_fake_service(void)
{
	struct fake    fk;
	struct hsmkey *h = NULL;
	pthread_t      th;
	char url[300], *sig = NULL, *out, cred[1024], path[512], err[256];
	struct hk_credentials c;
	struct stat	      sb;

	memset(&fk, 0, sizeof(fk));
	snprintf(url, sizeof(url), "ipc://%s/fake.sock", tmpdir);
	TRUE((fk.sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_bind(fk.sock, url) >= 0);
	TRUE(pthread_create(&th, NULL, fake_main, &fk) == 0);

	PASS(hsmkey_open_secret(&h, url, "alice", 7, secret, sizeof(secret)));
	PASS(hsmkey_set_timeout(h, 5000));

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

	fk.mode = FAKE_BAD_MAC;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EPROTO);
	TRUE(strstr(hsmkey_last_error(h), "MAC does not verify") != NULL);

	fk.mode = FAKE_NO_MAC_UNAUTH;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EUNAUTH);
	EQ_STR(hsmkey_last_error(h), "unknown client (unauthenticated reply)");

	fk.mode = FAKE_NO_MAC_OK;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EPROTO);

	fk.mode = FAKE_WRONG_NONCE;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EPROTO);

	fk.mode = FAKE_NOT_FOUND;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_ENOTFOUND);
	EQ_STR(hsmkey_last_error(h), "key 'k' not found");

	fk.mode = FAKE_WRONG_RESULT;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EPROTO);

	fk.mode = FAKE_GARBAGE;
	FAIL(hsmkey_sign(h, "k", "hello", 5, 0, &sig), HSMKEY_EPROTO);
	TRUE(sig == NULL);

	/* the handle still works after failures */
	fk.mode = FAKE_SIGN_OK;
	PASS(hsmkey_sign_digest(h, "k", secret, 32, 3, &sig));
	EQ_INT(fk.last->sign->version, 3);
	EQ_INT(fk.last->sign->items[0]->digest.len, 32);
	free(sig);

	/* CLI output (golden) */
	snprintf(cred, sizeof(cred),
	    "[client]\nid = alice\nsecret = %s\n"
	    "secret_no = 7\nconnect = %s\n",
	    SECRET_B64, url);
	setenv("HSMKEY_CREDENTIALS", tmpfile_with("fake.ini", cred), 1);
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
	    "\"created\":\"2024-01-01T00:00:00Z\",\"policy\":{"
	    "\"sign_overlap_s\":0,\"verify_grace_s\":2592000,"
	    "\"rotate_every_s\":0,\"expires\":null},\"versions\":["
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
	EQ_INT(run_cli_out(&out, "policy", "pay", "--verify-grace", "7d",
		   "--expires", "2030-01-02", NULL),
	    0);
	EQ_INT(fk.last->op_case, HSMKEY__V1__REQUEST__OP_POLICY);
	TRUE(fk.last->policy->sign_overlap_s == NULL);
	TRUE(fk.last->policy->rotate_every_s == NULL);
	EQ_INT(fk.last->policy->verify_grace_s->value, 7 * 86400);
	EQ_INT(fk.last->policy->expires_ms->value, 1893542400000LL);
	free(out);

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

	fk.mode = FAKE_NOT_FOUND;
	EQ_INT(run_cli_out(&out, "--json", "describe", "k", NULL), 4);
	EQ_STR(out,
	    "{\"error\":\"NOT_FOUND\",\"message\":\"key 'k' not "
	    "found (see 'hsmkey list')\"}\n");
	free(out);
	unsetenv("HSMKEY_CREDENTIALS");

	fk.mode = FAKE_STOP;
	PASS(hsmkey_set_timeout(h, 300));
	FAIL(hsmkey_ping(h), HSMKEY_ETIMEOUT);
	pthread_join(th, NULL);
	hsmkey_close(h);
	if (fk.last != NULL) {
		hsmkey__v1__request__free_unpacked(fk.last, NULL);
	}
	nn_close(fk.sock);
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
};

static void *
fake2_main(void *arg)
{
	struct fake2	     *f = arg;
	Hsmkey__V1__Envelope *env;
	ProtobufCMessage     *m;
	void		     *msg;
	int		      n, ok;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		ok = !f->stop;
		pthread_mutex_unlock(&f->mu);
		if (!ok) {
			return NULL;
		}
		if ((n = nn_recv(f->fk.sock, &msg, NN_MSG, 0)) < 0) {
			continue; /* NN_RCVTIMEO: look at stop */
		}
		PASS(hk_decode_strict(
		    &hsmkey__v1__envelope__descriptor, msg, (size_t)n, &m));
		nn_freemsg(msg);
		env = (Hsmkey__V1__Envelope *)m;
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
		hsmkey__v1__envelope__free_unpacked(env, NULL);
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

/* The i-th request since fake2_set() was made with secret_no no. */
#define SEEN(f, i, no)                           \
	do {                                     \
		TRUE((f)->n > (i));              \
		EQ_INT((f)->seen_no[(i)], (no)); \
	} while (0)

static void
test_credentials_two(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL, *h2 = NULL;
	pthread_t      th;
	char	       url[300], p1[512], p2[512], p3[512], *sig = NULL;
	int	       tmo = 100;

	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	snprintf(url, sizeof(url), "ipc://%s/fake2.sock", tmpdir);
	TRUE((f.fk.sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_setsockopt(f.fk.sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
		 sizeof(tmo)) == 0);
	TRUE(nn_bind(f.fk.sock, url) >= 0);
	TRUE(pthread_create(&th, NULL, fake2_main, &f) == 0);
	snprintf(p1, sizeof(p1), "%s/two-1.cred", tmpdir);
	snprintf(p2, sizeof(p2), "%s/two-2.cred", tmpdir);
	snprintf(p3, sizeof(p3), "%s/two-other.cred", tmpdir);
	write_cred(p1, url, "alice", 1);
	write_cred(p2, url, "alice", 2);
	write_cred(p3, url, "bob", 2);

	/* one credential, revoked: UNAUTHENTICATED, nothing to retry */
	PASS(hsmkey_open(&h, p1, NULL));
	PASS(hsmkey_set_timeout(h, 5000));
	fake2_set(&f, 0);
	FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_EUNAUTH);
	EQ_INT(f.n, 1);

	/* a second credential: the primary is refused, the second is tried
	 * once with the same nonce, and then leads */
	FAIL(hsmkey_add_credentials(h, p3), HSMKEY_EINVAL);
	TRUE(strstr(hsmkey_last_error(h), "same client") != NULL);
	PASS(hsmkey_add_credentials(h, p2));
	fake2_set(&f, 1u << 2);
	PASS(hsmkey_sign(h, "k", "m", 1, 0, &sig));
	free(sig);
	sig = NULL;
	EQ_INT(f.n, 2);
	SEEN(&f, 0, 1);
	SEEN(&f, 1, 2);
	TRUE(memcmp(f.seen_nonce[0], f.seen_nonce[1], HK_NONCE_LEN) == 0);
	fake2_set(&f, 1u << 2);
	PASS(hsmkey_sign(h, "k", "m", 1, 0, &sig));
	free(sig);
	sig = NULL;
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

	pthread_mutex_lock(&f.mu);
	f.stop = 1;
	pthread_mutex_unlock(&f.mu);
	pthread_join(th, NULL);
	nn_close(f.fk.sock);
	pthread_mutex_destroy(&f.mu);
}

static void
test_credentials_reload(void)
{
	struct fake2   f;
	struct hsmkey *h = NULL;
	pthread_t      th;
	char	       url[300], p[512], bad[600];
	int	       tmo = 100;
	FILE	      *fp;

	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	snprintf(url, sizeof(url), "ipc://%s/fake3.sock", tmpdir);
	TRUE((f.fk.sock = nn_socket(AF_SP, NN_REP)) >= 0);
	TRUE(nn_setsockopt(f.fk.sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
		 sizeof(tmo)) == 0);
	TRUE(nn_bind(f.fk.sock, url) >= 0);
	TRUE(pthread_create(&th, NULL, fake2_main, &f) == 0);
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

	pthread_mutex_lock(&f.mu);
	f.stop = 1;
	pthread_mutex_unlock(&f.mu);
	pthread_join(th, NULL);
	nn_close(f.fk.sock);
	pthread_mutex_destroy(&f.mu);
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hsmkey-client-test.XXXXXX");
	TRUE(mkdtemp(tmpdir) != NULL);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	TRUE(system(cmd) == 0);
}

TEST_LIST = {
	{ "setup", setup },
	{ "creds_good", test_creds_good },
	{ "creds_bad", test_creds_bad },
	{ "open_precedence", test_open_precedence },
	{ "json", test_json },
	{ "duration", test_duration },
	{ "expiry", test_expiry },
	{ "cli_parsers", test_cli_parsers },
	{ "cli_usage", test_cli_usage },
	{ "lib_args", test_lib_args },
	{ "timeout", test_timeout },
	{ "fake_service", test_fake_service },
	{ "credentials_two", test_credentials_two },
	{ "credentials_reload", test_credentials_reload },
	{ "teardown", teardown },
	{ NULL, NULL },
};

TEST_MAIN
