/* config_test.c: the INI configuration parser (config.c). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "hk_err.h"
#include "log.h"
#include "testutil.h"

#define PIN "4711-SECRET-PIN"

/* The lines every valid file needs. */
#define SERVICE "[service]\nlisten = ipc:///tmp/hk.sock\n"
#define PKCS11                                                 \
	"[pkcs11]\nmodule = /usr/lib/softhsm/libsofthsm2.so\n" \
	"token = pkcs11:token=hsmkey\npin_file = "

static char dir[64];	   /* the mkdtemp() directory */
static char pin_path[128]; /* a PIN file in it, holding PIN */
static char ini_path[128]; /* the config file each load() writes */
static char err[4096];	   /* what the last load() logged */

static void
write_file(const char *path, const char *text)
{
	FILE *f;

	TRUE((f = fopen(path, "w")) != NULL);
	TRUE(fputs(text, f) >= 0);
	TRUE(fclose(f) == 0);
}

/* Writes text to ini_path and loads it, with stderr captured into err[]. */
static int
load(const char *text, struct config **cfgp)
{
	char	path[160];
	ssize_t n;
	int	fd, saved, r;

	write_file(ini_path, text);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	TRUE((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	fflush(stderr);
	TRUE((saved = dup(STDERR_FILENO)) >= 0);
	TRUE(dup2(fd, STDERR_FILENO) >= 0);
	r = config_load(ini_path, cfgp);
	TRUE(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	TRUE((n = pread(fd, err, sizeof(err) - 1, 0)) >= 0);
	err[n] = '\0';
	close(fd);
	TRUE(unlink(path) == 0);
	return r;
}

/* A valid file: the required lines, then extra. */
static int
load_with(const char *extra, struct config **cfgp)
{
	char text[2048];

	TRUE(snprintf(text, sizeof(text), SERVICE PKCS11 "%s\n%s", pin_path,
		 extra) < (int)sizeof(text));
	return load(text, cfgp);
}

/* The last load() failed with exactly one line holding want (and never the
 * PIN). */
static void
one_line_error(const char *want)
{
	char *nl = strchr(err, '\n');

	if (nl == NULL || nl[1] != '\0' || strstr(err, want) == NULL) {
		HK_TFAIL("want one line with \"%s\", got \"%s\"", want, err);
	}
	TRUE(strstr(err, PIN) == NULL);
}

static void
test_defaults(void)
{
	struct config *cfg;

	PASS(load_with("", &cfg));
	EQ_INT(err[0], '\0');
	EQ_INT(cfg->nlisten, 1);
	EQ_STR(cfg->listen[0], "ipc:///tmp/hk.sock");
	EQ_INT(cfg->workers, 0);
	EQ_INT(cfg->max_parallel, 32);
	EQ_INT(cfg->busy_after_ms, 1000);
	EQ_INT(cfg->log_syslog, 0);
	EQ_INT(cfg->log_level, HK_LOG_INFO);
	TRUE(cfg->socket_group == NULL);
	TRUE(cfg->allowed_modules == NULL);
	EQ_STR(cfg->module, "/usr/lib/softhsm/libsofthsm2.so");
	EQ_STR(cfg->token_uri, "pkcs11:token=hsmkey");
	EQ_STR(cfg->pin_file, pin_path);
	EQ_INT(cfg->clock_window_ms, 30000);
	EQ_INT(cfg->secret_lifetime_s, 90 * 86400);
	EQ_INT(cfg->nonce_per_client, 524288);
	EQ_INT(cfg->nonce_total, 1048576);
	EQ_INT(cfg->reply_cache_bytes, 268435456);
	EQ_INT(cfg->destroy_delay_s, 7 * 86400);
	EQ_INT(cfg->default_verify_grace_s, 30 * 86400);
	TRUE(cfg->audit_path == NULL);
	EQ_INT(cfg->audit_signs, 1);
	EQ_INT(cfg->audit_checkpoint_every, 1000);
	EQ_INT(cfg->audit_checkpoint_interval_s, 60);
	EQ_INT(cfg->audit_max_size, 64 * 1024 * 1024);
	TRUE(cfg->metrics_path == NULL);
	EQ_INT(cfg->metrics_interval_s, 5);
	EQ_INT(cfg->max_request, 64 * 1024);
	EQ_INT(cfg->max_connections, 1024);
	config_free(cfg);
}

static void
test_every_key(void)
{
	struct config *cfg;

	PASS(load_with("[service]\n"
		       "listen = ipc:///a.sock, tcp://127.0.0.1:7390\n"
		       "workers = 256\nlog = syslog\nlog_level = debug\n"
		       "socket_group = hsmkey\nbusy_after = 250ms\n"
		       "[pkcs11]\nmax_parallel = 256\n"
		       "allowed_modules = /usr/lib/a.so /usr/lib/b.so\n"
		       "[auth]\nclock_window = 1h\nsecret_lifetime = 2d\n"
		       "nonce_cache_per_client = 16\n"
		       "nonce_cache_total = 67108864\n"
		       "reply_cache_bytes = 1048576\n"
		       "[keys]\ndestroy_delay = 0\nverify_grace = 90m\n"
		       "[audit]\npath = /var/lib/hsmkey/audit.log\n"
		       "signs = off\ncheckpoint_every = 4294967296\n"
		       "checkpoint_interval = 1s\nmax_size = 512k\n"
		       "[metrics]\npath = /var/lib/hsmkey/hsmkey.prom\n"
		       "interval = 3600\n",
	    &cfg));
	EQ_INT(err[0], '\0');
	/* the second listen replaced the first */
	EQ_INT(cfg->nlisten, 2);
	EQ_STR(cfg->listen[0], "ipc:///a.sock");
	EQ_STR(cfg->listen[1], "tcp://127.0.0.1:7390");
	EQ_INT(cfg->workers, 256);
	EQ_INT(cfg->busy_after_ms, 250);
	EQ_INT(cfg->max_parallel, 256);
	EQ_STR(cfg->allowed_modules, "/usr/lib/a.so /usr/lib/b.so");
	EQ_INT(cfg->log_syslog, 1);
	EQ_INT(cfg->log_level, HK_LOG_DEBUG);
	EQ_STR(cfg->socket_group, "hsmkey");
	EQ_INT(cfg->clock_window_ms, 3600 * 1000);
	EQ_INT(cfg->secret_lifetime_s, 2 * 86400);
	EQ_INT(cfg->nonce_per_client, 16);
	EQ_INT(cfg->nonce_total, 1 << 26);
	EQ_INT(cfg->reply_cache_bytes, 1 << 20);
	EQ_INT(cfg->destroy_delay_s, 0);
	EQ_INT(cfg->default_verify_grace_s, 90 * 60);
	EQ_STR(cfg->audit_path, "/var/lib/hsmkey/audit.log");
	EQ_INT(cfg->audit_signs, 0);
	EQ_INT(cfg->audit_checkpoint_every, 1ULL << 32);
	EQ_INT(cfg->audit_checkpoint_interval_s, 1);
	EQ_INT(cfg->audit_max_size, 512 * 1024);
	EQ_STR(cfg->metrics_path, "/var/lib/hsmkey/hsmkey.prom");
	EQ_INT(cfg->metrics_interval_s, 3600);
	config_free(cfg);
}

/* Each accepted spelling of the words, bools, sizes and durations, and the
 * bounds of the numbers. */
static void
test_spellings(void)
{
	static const struct {
		const char *line;
		size_t	    off;
		uint64_t    want;
	} cases[] = {
#define AT(m) offsetof(struct config, m)
		{ "[audit]\nsigns = yes", AT(audit_signs), 1 },
		{ "[audit]\nsigns = true", AT(audit_signs), 1 },
		{ "[audit]\nsigns = 1", AT(audit_signs), 1 },
		{ "[audit]\nsigns = on", AT(audit_signs), 1 },
		{ "[audit]\nsigns = no", AT(audit_signs), 0 },
		{ "[audit]\nsigns = false", AT(audit_signs), 0 },
		{ "[audit]\nsigns = 0", AT(audit_signs), 0 },
		{ "[service]\nlog = stderr", AT(log_syslog), 0 },
		{ "[service]\nlog_level = error", AT(log_level), 0 },
		{ "[service]\nlog_level = warn", AT(log_level), 1 },
		{ "[service]\nlog_level = info", AT(log_level), 2 },
		{ "[audit]\nmax_size = 0", AT(audit_max_size), 0 },
		{ "[audit]\nmax_size = 4096", AT(audit_max_size), 4096 },
		{ "[audit]\nmax_size = 64M", AT(audit_max_size), 64 << 20 },
		{ "[audit]\nmax_size = 2g", AT(audit_max_size), 2ULL << 30 },
		{ "[auth]\nclock_window = 1", AT(clock_window_ms), 1000 },
		{ "[auth]\nclock_window = 2m", AT(clock_window_ms), 120000 },
		{ "[keys]\ndestroy_delay = 3d", AT(destroy_delay_s), 259200 },
		{ "[auth]\nnonce_cache_per_client = 16777216",
		    AT(nonce_per_client), 1 << 24 },
		{ "[auth]\nnonce_cache_total = 16", AT(nonce_total), 16 },
		{ "[auth]\nreply_cache_bytes = 17179869184",
		    AT(reply_cache_bytes), 1ULL << 34 },
		{ "[auth]\nsecret_lifetime = 1", AT(secret_lifetime_s), 1 },
		{ "[audit]\ncheckpoint_every = 1", AT(audit_checkpoint_every),
		    1 },
		{ "[metrics]\ninterval = 1h", AT(metrics_interval_s), 3600 },
		{ "[metrics]\ninterval = 1", AT(metrics_interval_s), 1 },
		{ "[service]\nworkers = 0", AT(workers), 0 },
		{ "[pkcs11]\nmax_parallel = 0", AT(max_parallel), 0 },
		{ "[pkcs11]\nmax_parallel = 1", AT(max_parallel), 1 },
		{ "[service]\nbusy_after = 0", AT(busy_after_ms), 0 },
		{ "[service]\nbusy_after = 1", AT(busy_after_ms), 1000 },
		{ "[service]\nbusy_after = 2s", AT(busy_after_ms), 2000 },
		{ "[service]\nbusy_after = 1m", AT(busy_after_ms), 60000 },
		{ "[service]\nbusy_after = 60000ms", AT(busy_after_ms),
		    60000 },
		{ "[service]\nmax_request = 4096", AT(max_request), 4096 },
		{ "[service]\nmax_request = 1M", AT(max_request), 1 << 20 },
		{ "[service]\nmax_connections = 16", AT(max_connections), 16 },
		{ "[service]\nmax_connections = 1048576", AT(max_connections),
		    1 << 20 },
#undef AT
	};
	struct config *cfg;
	uint64_t       v;
	size_t	       i;
	int	       v32;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "   %s\n", strchr(cases[i].line, '\n') + 1);
		PASS(load_with(cases[i].line, &cfg));
		if (cases[i].off == offsetof(struct config, audit_signs) ||
		    cases[i].off == offsetof(struct config, workers) ||
		    cases[i].off == offsetof(struct config, max_parallel) ||
		    cases[i].off == offsetof(struct config, max_connections) ||
		    cases[i].off == offsetof(struct config, log_syslog) ||
		    cases[i].off == offsetof(struct config, log_level)) {
			memcpy(&v32, (char *)cfg + cases[i].off, sizeof(v32));
			v = (uint64_t)v32;
		} else {
			memcpy(&v, (char *)cfg + cases[i].off, sizeof(v));
		}
		EQ_INT(v, cases[i].want);
		config_free(cfg);
	}
}

/* Every kind of bad value: refused with one line naming the key, never
 * echoing the value. */
static void
test_bad_values(void)
{
	static const struct {
		const char *section, *key, *value;
	} cases[] = {
		{ "service", "listen", "http://127.0.0.1:80" },
		{ "service", "listen", "ipc:///a tcp://b:1 nonsense" },
		{ "service", "listen",
		    "ipc:///1 ipc:///2 ipc:///3 ipc:///4 ipc:///5 ipc:///6 "
		    "ipc:///7 ipc:///8 ipc:///9" },
		{ "service", "workers", "257" },
		{ "service", "workers", "-1" },
		{ "service", "workers", "2x" },
		{ "service", "busy_after", "60001ms" },
		{ "service", "busy_after", "61s" },
		{ "service", "busy_after", "5us" },
		{ "service", "busy_after", "ms" },
		{ "service", "max_request", "4095" },
		{ "service", "max_request", "1025K" },
		{ "service", "max_request", "0" },
		{ "service", "max_connections", "15" },
		{ "service", "max_connections", "1048577" },
		{ "pkcs11", "max_parallel", "257" },
		{ "pkcs11", "max_parallel", "-1" },
		{ "service", "log", "file" },
		{ "service", "log_level", "verbose" },
		{ "pkcs11", "token", "token=hsmkey" },
		{ "auth", "clock_window", "0" },
		{ "auth", "clock_window", "3601" },
		{ "auth", "clock_window", "1w" },
		{ "auth", "secret_lifetime", "0s" },
		{ "auth", "secret_lifetime", "-5d" },
		{ "auth", "nonce_cache_per_client", "15" },
		{ "auth", "nonce_cache_per_client", "16777217" },
		{ "auth", "nonce_cache_total", "15" },
		{ "auth", "nonce_cache_total", "67108865" },
		{ "auth", "reply_cache_bytes", "1048575" },
		{ "auth", "reply_cache_bytes", "17179869185" },
		{ "auth", "reply_cache_bytes", "99999999999999999999999" },
		{ "keys", "destroy_delay", "7days" },
		{ "keys", "verify_grace", "" },
		{ "audit", "signs", "maybe" },
		{ "audit", "checkpoint_every", "0" },
		{ "audit", "checkpoint_every", "4294967297" },
		{ "audit", "checkpoint_interval", "0" },
		/* durations: at most 100 years (HK_DURATION_MAX_S) */
		{ "audit", "checkpoint_interval", "36526d" },
		{ "keys", "verify_grace", "3155760001" },
		{ "keys", "destroy_delay", "18446744073709551" },
		{ "auth", "secret_lifetime", "36526d" },
		{ "audit", "max_size", "4095" },
		{ "audit", "max_size", "1T" },
		{ "audit", "max_size", "12KB" },
		{ "audit", "max_size", "K" },
		{ "metrics", "interval", "0" },
		{ "metrics", "interval", "61m" },
	};
	struct config *cfg;
	char	       line[256], want[128];
	const char    *msg;
	size_t	       i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "   [%s] %s = %s\n", cases[i].section,
		    cases[i].key, cases[i].value);
		snprintf(line, sizeof(line), "[%s]\n%s = %s", cases[i].section,
		    cases[i].key, cases[i].value);
		FAIL(load_with(line, &cfg), HK_ERR_CONFIG);
		TRUE(cfg == NULL);
		snprintf(want, sizeof(want),
		    ":8: invalid value for '%s' in [%s]", cases[i].key,
		    cases[i].section);
		one_line_error(want);
		/* after the file name: the message itself */
		msg = strstr(err, ini_path) + strlen(ini_path);
		if (cases[i].value[0] != '\0') {
			TRUE(strstr(msg, cases[i].value) == NULL);
		}
	}
}

static void
test_unknown(void)
{
	struct config *cfg;

	FAIL(load_with("[service]\nthreads = 4", &cfg), HK_ERR_CONFIG);
	one_line_error(":8: unknown key 'threads' in [service]");
	FAIL(load_with("[nosuch]\nlisten = ipc:///x", &cfg), HK_ERR_CONFIG);
	one_line_error(":8: unknown key 'listen' in [nosuch]");
	/* a key of another section */
	FAIL(load_with("[audit]\ninterval = 5s", &cfg), HK_ERR_CONFIG);
	one_line_error(":8: unknown key 'interval' in [audit]");
	/* before any section */
	FAIL(load("workers = 2\n" SERVICE, &cfg), HK_ERR_CONFIG);
	one_line_error(":1: unknown key 'workers' in []");
	/* an unknown section with no key in it is harmless */
	PASS(load_with("[later]\n", &cfg));
	config_free(cfg);
	FAIL(load_with("[audit]\nthis is not ini", &cfg), HK_ERR_CONFIG);
	one_line_error(":8: syntax error");
}

static void
test_required(void)
{
	struct config *cfg;
	char	       text[512];

	FAIL(load("[pkcs11]\nmodule = m\ntoken = pkcs11:\npin_file = p\n",
		 &cfg),
	    HK_ERR_CONFIG);
	one_line_error("[service] listen is required");
	FAIL(load(SERVICE "[service]\nlisten =\n" PKCS11 "p\n", &cfg),
	    HK_ERR_CONFIG);
	one_line_error("[service] listen is required");
	FAIL(load(SERVICE "[pkcs11]\ntoken = pkcs11:\npin_file = p\n", &cfg),
	    HK_ERR_CONFIG);
	one_line_error("[pkcs11] module, token and pin_file are required");
	FAIL(load(SERVICE "[pkcs11]\nmodule = m\npin_file = p\n", &cfg),
	    HK_ERR_CONFIG);
	one_line_error("[pkcs11] module, token and pin_file are required");
	FAIL(load(SERVICE "[pkcs11]\nmodule = m\ntoken = pkcs11:\n", &cfg),
	    HK_ERR_CONFIG);
	one_line_error("[pkcs11] module, token and pin_file are required");
	snprintf(text, sizeof(text), "%s/no-such.ini", dir);
	FAIL(config_load(text, &cfg), HK_ERR_CONFIG);
	TRUE(cfg == NULL);
}

/* pin_file is a path the parser keeps; it never opens it, so a missing PIN
 * file parses, and no error shows the PIN. */
static void
test_pin_file_not_read(void)
{
	struct config *cfg;
	char	       text[512];

	snprintf(text, sizeof(text), SERVICE PKCS11 "%s/no-such-pin\n", dir);
	PASS(load(text, &cfg));
	TRUE(strstr(cfg->pin_file, "/no-such-pin") != NULL);
	config_free(cfg);
	FAIL(load_with("[auth]\nclock_window = forever", &cfg), HK_ERR_CONFIG);
	one_line_error("invalid value for 'clock_window' in [auth]");
	snprintf(text, sizeof(text), PKCS11 "%s\n", pin_path);
	FAIL(load(text, &cfg), HK_ERR_CONFIG);
	one_line_error("[service] listen is required");
}

TEST_LIST = {
	{ "defaults", test_defaults },
	{ "every_key", test_every_key },
	{ "spellings", test_spellings },
	{ "bad_values", test_bad_values },
	{ "unknown", test_unknown },
	{ "required", test_required },
	{ "pin_file_not_read", test_pin_file_not_read },
	{ NULL, NULL },
};

static void
cleanup(void)
{
	unlink(pin_path);
	unlink(ini_path);
	rmdir(dir);
}

int hk_config_test_main(int argc, char **argv);

#define main hk_config_test_main
TEST_MAIN
#undef main

int
main(int argc, char **argv)
{
	int r;

	snprintf(dir, sizeof(dir), "/tmp/config_test.XXXXXX");
	TRUE(mkdtemp(dir) != NULL);
	snprintf(pin_path, sizeof(pin_path), "%s/pin", dir);
	snprintf(ini_path, sizeof(ini_path), "%s/hsmkeyd.ini", dir);
	write_file(pin_path, PIN "\n");
	atexit(cleanup);
	hk_log_init("config_test", 0, HK_LOG_DEBUG);
	r = hk_config_test_main(argc, argv);
	return r;
}
