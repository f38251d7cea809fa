/*
 * client_test.c: unit tests of libhsmkey and the hsmkey CLI that need no
 * hsmkeyd: credentials files, JSON escaping, duration/expiry parsing,
 * argument checks and timeouts, with no service; the reply checks and
 * the CLI's argument checks (client_fake_test.c has the fake service).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "cli.h"
#include "client_testlib.h"
#include "codec.h"
#include "credentials.h"
#include "envelope.h"
#include "hk_call.h"
#include "hsmkey.h"
#include "json.h"
#include "testutil.h"
#include "wire.h"

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
	EQ_INT(c.secret_no, 0); /* not named */
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
	static const struct {
		const char *g;
		int	    valid;
	} grants[] = {
		{ "sign:payments-*", 1 },
		{ "admin:*", 1 },
		{ "verify:k[0-9]", 1 },
		{ "sign", 0 },
		{ "sign:", 0 },
		{ "delete:*", 0 },
		{ "sign:A*", 0 },
		{ "sign:a b", 0 },
	};
	uint8_t *d;
	size_t	 len, i;
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

	for (i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
		if (cli_valid_grant(grants[i].g) != grants[i].valid) {
			HK_TFAIL("cli_valid_grant(\"%s\") is not %d",
			    grants[i].g, grants[i].valid);
		}
	}
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
	FAIL(hsmkey_rotate_ex(h, "k", 0,
		 HSMKEY_ROTATE_STAGE | HSMKEY_ROTATE_EMERGENCY, NULL),
	    HSMKEY_EINVAL);
	FAIL(hsmkey_set_timeout(h, 0), HSMKEY_EINVAL);
	FAIL(hsmkey_set_connect_timeout(h, 0), HSMKEY_EINVAL);
	TRUE(strstr(hsmkey_last_error(h), "connect timeout 0 ms") != NULL);
	FAIL(hsmkey_set_connect_timeout(NULL, 100), HSMKEY_EINVAL);
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
	EQ_INT(hsmkey_exit_code(HSMKEY_ECONNECT), 5);
	EQ_INT(hsmkey_exit_code(HSMKEY_ECONNLOST), 5);
	EQ_STR(hsmkey_error_name(HSMKEY_ENOTFOUND), "NOT_FOUND");
	EQ_STR(hsmkey_error_name(HSMKEY_ECONNLOST), "CONNECTION_LOST");
	EQ_STR(hsmkey_strerror(HSMKEY_ECONNLOST),
	    "connection lost with a request in flight");
	TRUE(hsmkey_strerror(12345) != NULL);
}

/*
 * Nothing listens: the call fails as "cannot reach" (HSMKEY_ECONNECT)
 * after the connect timeout, or after the reply timeout when that is
 * shorter, never as a reply timeout.
 */
static void
test_unreachable(void)
{
	const char *urls[] = {
		"ipc:///tmp/hsmkey-client-test-nothing-here.sock",
		"tcp://127.0.0.1:9",
		NULL,
	};
	struct hsmkey *h = NULL;
	long long      t0, dt;
	char	      *sig = NULL, want[128];
	int	       i;

	for (i = 0; urls[i] != NULL; i++) {
		snprintf(want, sizeof(want),
		    "cannot reach %s: nothing answers", urls[i]);
		PASS(hsmkey_open_secret(
		    &h, urls[i], "alice", 1, secret, sizeof(secret)));
		PASS(hsmkey_set_timeout(h, 300));
		t0 = mono_ms();
		FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_ECONNECT);
		dt = mono_ms() - t0;
		TRUE(dt >= 250 && dt < 1500);
		TRUE(strstr(hsmkey_last_error(h), want) != NULL);
		/* a second call on the same handle behaves the same */
		FAIL(hsmkey_ping(h), HSMKEY_ECONNECT);
		/* the connect timeout, shorter than the reply timeout */
		PASS(hsmkey_set_timeout(h, 20000));
		PASS(hsmkey_set_connect_timeout(h, 400));
		t0 = mono_ms();
		FAIL(hsmkey_ping(h), HSMKEY_ECONNECT);
		dt = mono_ms() - t0;
		TRUE(dt >= 350 && dt < 1500);
		TRUE(strstr(hsmkey_last_error(h), "within 0.4 s") != NULL);
		hsmkey_close(h);
	}
}

/* A listener that never answers the handshake (a stopped service): the
 * handshake times out every second, and that is "cannot reach", not a
 * service that closes connections. */
static void
test_link_silent(void)
{
	struct sockaddr_un sa;
	struct hsmkey	  *h = NULL;
	char		   url[300], *sig = NULL;
	int		   l;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(url, sizeof(url), "ipc://%s/silent.sock", tmpdir);
	TRUE(strlen(url + 6) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, url + 6, strlen(url + 6));
	TRUE((l = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	TRUE(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	TRUE(listen(l, 16) == 0);
	PASS(hsmkey_open_secret(&h, url, "alice", 7, secret, 32));
	PASS(hsmkey_set_timeout(h, 20000));
	PASS(hsmkey_set_connect_timeout(h, 3500));
	FAIL(hsmkey_sign(h, "k", "m", 1, 0, &sig), HSMKEY_ECONNECT);
	TRUE(strstr(hsmkey_last_error(h), "nothing answers") != NULL);
	hsmkey_close(h);
	close(l);
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
	{ "unreachable", test_unreachable },
	{ "link_silent", test_link_silent },
	{ "teardown", teardown },
	{ NULL, NULL },
};

TEST_MAIN
