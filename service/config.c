/*
 * config.c: INI configuration (see config.h).  Every key is one row of
 * keys[]: where it lives, how its value is parsed, its bounds and its
 * default.  The ini handler only looks the key up and calls the row's
 * setter; defaults and config_free() walk the same table.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "codec.h"
#include "config.h"
#include "hk_err.h"
#include "log.h"
#include "wire.h"

struct parse_state {
	struct config *cfg;
	char	       why[160];
};

/* One word a key accepts and the number it stands for. */
struct cfg_word {
	const char *word;
	int	    value;
};

struct cfg_key;
typedef int (*cfg_set_fn)(const struct cfg_key *, void *, const char *);

/*
 * One configuration key.  Numbers (count, duration, size) must lie in
 * [min, max] (or be 0 when zero_ok) and are stored times scale into a
 * field of any unsigned width; def is in the same units as min and max.
 * Words store the matching value; strings need the prefix if one is set.
 */
struct cfg_key {
	const char	      *section, *name;
	cfg_set_fn	       set;
	size_t		       off, size; /* the field in struct config */
	uint64_t	       min, max, scale, def;
	int		       zero_ok;
	const struct cfg_word *words; /* ends with a NULL word */
	const char	      *prefix;
};

static int set_str(const struct cfg_key *, void *, const char *);
static int set_listen(const struct cfg_key *, void *, const char *);
static int set_count(const struct cfg_key *, void *, const char *);
static int set_duration(const struct cfg_key *, void *, const char *);
static int set_size(const struct cfg_key *, void *, const char *);
static int set_word(const struct cfg_key *, void *, const char *);
static int set_millis(const struct cfg_key *, void *, const char *);

static const struct cfg_word bool_words[] = { { "yes", 1 }, { "true", 1 },
	{ "1", 1 }, { "on", 1 }, { "no", 0 }, { "false", 0 }, { "0", 0 },
	{ "off", 0 }, { NULL, 0 } };
static const struct cfg_word log_words[] = { { "stderr", 0 }, { "syslog", 1 },
	{ NULL, 0 } };
static const struct cfg_word level_words[] = { { "error", HK_LOG_ERROR },
	{ "warn", HK_LOG_WARN }, { "info", HK_LOG_INFO },
	{ "debug", HK_LOG_DEBUG }, { NULL, 0 } };

/* clang-format off */
#define FIELD(m) offsetof(struct config, m), sizeof(((struct config *)0)->m)
#define DAY	 (24 * 3600ULL)
#define STR(s, k, m) { s, k, set_str, FIELD(m), 0, 0, 1, 0, 0, NULL, NULL }
#define NUM(s, k, fn, m, lo, hi, def) \
	{ s, k, fn, FIELD(m), lo, hi, 1, def, 0, NULL, NULL }
#define WORD(s, k, m, w, def) \
	{ s, k, set_word, FIELD(m), 0, 0, 1, def, 0, w, NULL }

static const struct cfg_key keys[] = {
	{ "service", "listen", set_listen, FIELD(listen), 0, 0, 1, 0, 0, NULL,
	    NULL },
	NUM("service", "workers", set_count, workers, 0, 256, 0),
	NUM("service", "busy_after", set_millis, busy_after_ms, 0, 60000,
	    1000),
	WORD("service", "log", log_syslog, log_words, 0),
	WORD("service", "log_level", log_level, level_words, HK_LOG_INFO),
	STR("service", "socket_group", socket_group),
	{ "service", "max_request", set_size, FIELD(max_request), 4096,
	    HK_MAX_MESSAGE, 1, 64 * 1024, 0, NULL, NULL },
	NUM("service", "max_connections", set_count, max_connections, 16,
	    1U << 20, 1024),
	STR("pkcs11", "module", module),
	STR("pkcs11", "allowed_modules", allowed_modules),
	{ "pkcs11", "token", set_str, FIELD(token_uri), 0, 0, 1, 0, 0, NULL,
	    "pkcs11:" },
	STR("pkcs11", "pin_file", pin_file), /* a path: never opened here */
	{ "pkcs11", "keepalive", set_duration, FIELD(keepalive_ms), 0, 3600,
	    1000, 10, 0, NULL, NULL },
	{ "pkcs11", "reconnect_max", set_duration, FIELD(reconnect_max_ms), 1,
	    3600, 1000, 5, 0, NULL, NULL },
	NUM("pkcs11", "max_parallel", set_count, max_parallel, 0, 256, 32),
	{ "auth", "clock_window", set_duration, FIELD(clock_window_ms), 1,
	    3600, 1000, 30, 0, NULL, NULL },
	NUM("auth", "secret_lifetime", set_duration, secret_lifetime_s, 1,
	    UINT64_MAX, 90 * DAY),
	NUM("auth", "nonce_cache_per_client", set_count, nonce_per_client,
	    16, 1ULL << 24, 1ULL << 19),
	NUM("auth", "nonce_cache_total", set_count, nonce_total, 16,
	    1ULL << 26, 1ULL << 20),
	NUM("auth", "reply_cache_bytes", set_count, reply_cache_bytes,
	    1024 * 1024, 1ULL << 34, 256 * 1024 * 1024),
	NUM("keys", "destroy_delay", set_duration, destroy_delay_s, 0,
	    UINT64_MAX, 7 * DAY),
	NUM("keys", "verify_grace", set_duration, default_verify_grace_s, 0,
	    UINT64_MAX, 30 * DAY),
	STR("audit", "path", audit_path),
	WORD("audit", "signs", audit_signs, bool_words, 1),
	NUM("audit", "checkpoint_every", set_count, audit_checkpoint_every,
	    1, 1ULL << 32, 1000),
	NUM("audit", "checkpoint_interval", set_duration,
	    audit_checkpoint_interval_s, 1, UINT64_MAX, 60),
	{ "audit", "max_waiting", set_size, FIELD(audit_max_waiting),
	    64 * 1024, 1ULL << 40, 1, 64ULL * 1024 * 1024, 0, NULL, NULL },
	NUM("audit", "refused_interval", set_duration,
	    audit_refused_interval_s, 1, 3600, 10),
	{ "audit", "max_size", set_size, FIELD(audit_max_size), 4096,
	    UINT64_MAX, 1, 64ULL * 1024 * 1024, 1, NULL, NULL },
	STR("metrics", "path", metrics_path),
	NUM("metrics", "interval", set_duration, metrics_interval_s, 1, 3600,
	    5),
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void
store_uint(void *field, size_t size, uint64_t v)
{
	uint32_t v32 = (uint32_t)v;

	if (size == sizeof(v32)) {
		memcpy(field, &v32, sizeof(v32));
	} else {
		memcpy(field, &v, sizeof(v));
	}
}

/* Checks v against the key's bounds and stores it, scaled. */
static int
store_number(const struct cfg_key *k, void *field, uint64_t v)
{
	if (!(k->zero_ok && v == 0) && (v < k->min || v > k->max)) {
		return HK_ERR_INVALID;
	}
	store_uint(field, k->size, v * k->scale);
	return 0;
}

static int
set_str(const struct cfg_key *k, void *field, const char *value)
{
	char *v, **dst = field;

	if (k->prefix != NULL &&
	    strncmp(value, k->prefix, strlen(k->prefix)) != 0) {
		return HK_ERR_INVALID;
	}
	if ((v = strdup(value)) == NULL) {
		return HK_ERR_NOMEM;
	}
	free(*dst);
	*dst = v;
	return 0;
}

static int
set_count(const struct cfg_key *k, void *field, const char *value)
{
	unsigned long long v;
	char		  *end;

	if (*value < '0' || *value > '9') {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0') {
		return HK_ERR_INVALID;
	}
	return store_number(k, field, v);
}

static int
set_duration(const struct cfg_key *k, void *field, const char *value)
{
	uint64_t d;
	int	 r;

	if ((r = hk_parse_duration(value, &d)) != 0) {
		return r;
	}
	return store_number(k, field, d);
}

/* "250ms", or any duration hk_parse_duration() reads ("2s"), to ms. */
static int
set_millis(const struct cfg_key *k, void *field, const char *value)
{
	unsigned long long v;
	uint64_t	   s;
	char		  *end;
	int		   r;

	if (*value >= '0' && *value <= '9') {
		errno = 0;
		v = strtoull(value, &end, 10);
		if (errno == 0 && strcmp(end, "ms") == 0) {
			return store_number(k, field, v);
		}
	}
	if ((r = hk_parse_duration(value, &s)) != 0) {
		return r;
	}
	if (s > k->max / 1000) {
		return HK_ERR_INVALID;
	}
	return store_number(k, field, s * 1000);
}

/* "4096", "512K", "64M", "2G" (powers of 1024) to bytes. */
static int
set_size(const struct cfg_key *k, void *field, const char *value)
{
	static const char  units[] = "KkMmGg";
	unsigned long long v, mult = 1;
	const char	  *u;
	char		  *end;

	if (*value < '0' || *value > '9') {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0) {
		return HK_ERR_INVALID;
	}
	if (*end != '\0' && (u = strchr(units, *end)) != NULL) {
		mult = 1ULL << (10 * ((u - units) / 2 + 1));
		end++;
	}
	if (*end != '\0' || v > (1ULL << 50) / mult) {
		return HK_ERR_INVALID;
	}
	return store_number(k, field, v * mult);
}

static int
set_word(const struct cfg_key *k, void *field, const char *value)
{
	const struct cfg_word *w;

	for (w = k->words; w->word != NULL; w++) {
		if (strcmp(value, w->word) == 0) {
			store_uint(field, k->size, (uint64_t)w->value);
			return 0;
		}
	}
	return HK_ERR_INVALID;
}

static void
clear_listen(struct config *cfg)
{
	for (; cfg->nlisten > 0; cfg->nlisten--) {
		free(cfg->listen[cfg->nlisten - 1]);
		cfg->listen[cfg->nlisten - 1] = NULL;
	}
}

/* A list of ipc:// and tcp:// URLs split by blanks or commas; it replaces
 * any earlier one.  field is cfg->listen. */
static int
set_listen(const struct cfg_key *k, void *field, const char *value)
{
	struct config *cfg =
	    (struct config *)((char *)field - offsetof(struct config, listen));
	char *copy, *p, *tok;
	int   r = 0;

	(void)k;
	clear_listen(cfg);
	if ((copy = strdup(value)) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (p = copy; r == 0 && *(p += strspn(p, " \t,")) != '\0';) {
		tok = p;
		p += strcspn(p, " \t,");
		if (*p != '\0') {
			*p++ = '\0';
		}
		if (strncmp(tok, "ipc://", 6) != 0 &&
		    strncmp(tok, "tcp://", 6) != 0) {
			r = HK_ERR_INVALID;
		} else if (cfg->nlisten == CONFIG_MAX_LISTEN) {
			r = HK_ERR_TOO_LARGE;
		} else if ((cfg->listen[cfg->nlisten] = strdup(tok)) == NULL) {
			r = HK_ERR_NOMEM;
		} else {
			cfg->nlisten++;
		}
	}
	free(copy);
	return r;
}

static const struct cfg_key *
find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0) {
			return &keys[i];
		}
	}
	return NULL;
}

/* Returning 0 makes ini_parse() report this line; ps->why says why. */
static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct parse_state   *ps = arg;
	const struct cfg_key *k;

	if ((k = find_key(section, name)) == NULL) {
		snprintf(ps->why, sizeof(ps->why), "unknown key '%s' in [%s]",
		    name, section);
		return 0;
	}
	if (k->set(k, (char *)ps->cfg + k->off, value) != 0) {
		snprintf(ps->why, sizeof(ps->why),
		    "invalid value for '%s' in [%s]", name, section);
		return 0;
	}
	return 1;
}

static void
set_defaults(struct config *cfg)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].set != set_str && keys[i].set != set_listen) {
			store_uint((char *)cfg + keys[i].off, keys[i].size,
			    keys[i].def * keys[i].scale);
		}
	}
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL) {
		return;
	}
	clear_listen(cfg);
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].set == set_str) {
			free(*(char **)((char *)cfg + keys[i].off));
		}
	}
	free(cfg);
}

static int
check_required(const struct config *cfg, const char *path)
{
	if (cfg->nlisten == 0) {
		log_warnx("%s: [service] listen is required", path);
		return HK_ERR_CONFIG;
	}
	if (cfg->module == NULL || cfg->token_uri == NULL ||
	    cfg->pin_file == NULL) {
		log_warnx("%s: [pkcs11] module, token and pin_file are "
			  "required",
		    path);
		return HK_ERR_CONFIG;
	}
	return 0;
}

int
config_load(const char *path, struct config **cfgp)
{
	struct parse_state ps;
	struct config	  *cfg;
	int		   r = HK_ERR_CONFIG, line;

	*cfgp = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		return HK_ERR_NOMEM;
	}
	set_defaults(cfg);
	ps.cfg = cfg;
	ps.why[0] = '\0';
	if ((line = ini_parse(path, handler, &ps)) < 0) {
		log_warn("cannot read config %s", path);
		goto out;
	}
	if (line > 0) {
		log_warnx("%s:%d: %s", path, line,
		    ps.why[0] ? ps.why : "syntax error");
		goto out;
	}
	if ((r = check_required(cfg, path)) != 0) {
		goto out;
	}
	/* success */
	*cfgp = cfg;
	cfg = NULL;
	r = 0;
out:
	config_free(cfg);
	return r;
}
