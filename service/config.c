/* config.c: INI configuration (see config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "hk_err.h"
#include "log.h"
#include "wire.h"

struct parse_state {
	struct config *cfg;
	const char    *path;
	char	       why[160];
};

static int
set_str(char **dst, const char *value)
{
	char *v;

	if ((v = strdup(value)) == NULL) {
		return HK_ERR_NOMEM;
	}
	free(*dst);
	*dst = v;
	return 0;
}

static int
parse_uint(const char *value, unsigned long long max, unsigned long long *vp)
{
	unsigned long long v;
	char		  *end;

	if (*value < '0' || *value > '9') {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return HK_ERR_INVALID;
	}
	*vp = v;
	return 0;
}

static int
parse_bool(const char *value, int *vp)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
	    strcmp(value, "1") == 0 || strcmp(value, "on") == 0) {
		*vp = 1;
	} else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
	    strcmp(value, "0") == 0 || strcmp(value, "off") == 0) {
		*vp = 0;
	} else {
		return HK_ERR_INVALID;
	}
	return 0;
}

/* "4096", "512K", "64M", "2G" (powers of 1024) to bytes. */
static int
parse_size(const char *value, uint64_t *vp)
{
	unsigned long long v, mult = 1;
	char		  *end;

	if (*value < '0' || *value > '9') {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0) {
		return HK_ERR_INVALID;
	}
	if (*end == 'K' || *end == 'k') {
		mult = 1024ULL;
	} else if (*end == 'M' || *end == 'm') {
		mult = 1024ULL * 1024;
	} else if (*end == 'G' || *end == 'g') {
		mult = 1024ULL * 1024 * 1024;
	}
	if (mult != 1) {
		end++;
	}
	if (*end != '\0' || v > (1ULL << 50) / mult) {
		return HK_ERR_INVALID;
	}
	*vp = v * mult;
	return 0;
}

static int
parse_listen(struct config *cfg, const char *value)
{
	char *copy, *p, *tok;
	int   r = 0;

	if ((copy = strdup(value)) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (p = copy; r == 0 && *p != '\0';) {
		p += strspn(p, " \t,");
		if (*p == '\0') {
			break;
		}
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

static int
parse_level(const char *value, int *vp)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	size_t		   i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(value, names[i]) == 0) {
			*vp = (int)i;
			return 0;
		}
	}
	return HK_ERR_INVALID;
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = arg;
	struct config	   *cfg = ps->cfg;
	unsigned long long  n;
	uint64_t	    d;
	int		    r = HK_ERR_INVALID, known = 1;

#define IS(s, k) (strcmp(section, (s)) == 0 && strcmp(name, (k)) == 0)
	if (IS("service", "listen")) {
		for (; cfg->nlisten > 0; cfg->nlisten--) {
			free(cfg->listen[cfg->nlisten - 1]);
		}
		r = parse_listen(cfg, value);
	} else if (IS("service", "workers")) {
		if ((r = parse_uint(value, 256, &n)) == 0) {
			cfg->workers = (unsigned int)n;
		}
	} else if (IS("service", "log")) {
		if (strcmp(value, "stderr") == 0 ||
		    strcmp(value, "syslog") == 0) {
			cfg->log_syslog = strcmp(value, "syslog") == 0;
			r = 0;
		}
	} else if (IS("service", "log_level")) {
		r = parse_level(value, &cfg->log_level);
	} else if (IS("service", "socket_group")) {
		r = set_str(&cfg->socket_group, value);
	} else if (IS("pkcs11", "module")) {
		r = set_str(&cfg->module, value);
	} else if (IS("pkcs11", "token")) {
		r = strncmp(value, "pkcs11:", 7) == 0
		    ? set_str(&cfg->token_uri, value)
		    : HK_ERR_INVALID;
	} else if (IS("pkcs11", "pin_file")) {
		r = set_str(&cfg->pin_file, value);
	} else if (IS("auth", "clock_window")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->clock_window_ms = d * 1000;
			r = d >= 1 && d <= 3600 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("auth", "secret_lifetime")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->secret_lifetime_s = d;
			r = d >= 1 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("auth", "nonce_cache_per_client")) {
		if ((r = parse_uint(value, 1 << 24, &n)) == 0) {
			cfg->nonce_per_client = (size_t)n;
			r = n >= 16 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("auth", "nonce_cache_total")) {
		if ((r = parse_uint(value, 1 << 26, &n)) == 0) {
			cfg->nonce_total = (size_t)n;
			r = n >= 16 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("auth", "reply_cache_bytes")) {
		if ((r = parse_uint(value, 1ULL << 34, &n)) == 0) {
			cfg->reply_cache_bytes = (size_t)n;
			r = n >= 1024 * 1024 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("keys", "destroy_delay")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->destroy_delay_s = d;
		}
	} else if (IS("keys", "verify_grace")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->default_verify_grace_s = d;
		}
	} else if (IS("audit", "path")) {
		r = set_str(&cfg->audit_path, value);
	} else if (IS("audit", "signs")) {
		r = parse_bool(value, &cfg->audit_signs);
	} else if (IS("audit", "checkpoint_every")) {
		if ((r = parse_uint(value, 1ULL << 32, &n)) == 0) {
			cfg->audit_checkpoint_every = n;
			r = n >= 1 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("audit", "checkpoint_interval")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->audit_checkpoint_interval_s = d;
			r = d >= 1 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("audit", "max_size")) {
		if ((r = parse_size(value, &d)) == 0) {
			cfg->audit_max_size = d;
			r = d == 0 || d >= 4096 ? 0 : HK_ERR_INVALID;
		}
	} else if (IS("metrics", "path")) {
		r = set_str(&cfg->metrics_path, value);
	} else if (IS("metrics", "interval")) {
		if ((r = hk_parse_duration(value, &d)) == 0) {
			cfg->metrics_interval_s = d;
			r = d >= 1 && d <= 3600 ? 0 : HK_ERR_INVALID;
		}
	} else {
		known = 0;
	}
#undef IS
	/* returning 0 makes ini_parse() report this line */
	if (!known) {
		snprintf(ps->why, sizeof(ps->why), "unknown key '%s' in [%s]",
		    name, section);
		return 0;
	}
	if (r != 0) {
		snprintf(ps->why, sizeof(ps->why),
		    "invalid value for '%s' in "
		    "[%s]",
		    name, section);
		return 0;
	}
	return 1;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL) {
		return;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		free(cfg->listen[i]);
	}
	free(cfg->socket_group);
	free(cfg->module);
	free(cfg->token_uri);
	free(cfg->pin_file);
	free(cfg->audit_path);
	free(cfg->metrics_path);
	free(cfg);
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
	cfg->log_level = HK_LOG_INFO;
	cfg->clock_window_ms = 30 * 1000;
	cfg->secret_lifetime_s = 90 * 86400;
	cfg->nonce_per_client = 1 << 19;
	cfg->nonce_total = 1 << 20;
	cfg->reply_cache_bytes = 256 * 1024 * 1024;
	cfg->destroy_delay_s = 7 * 86400;
	cfg->default_verify_grace_s = 30 * 86400;
	cfg->audit_signs = 1;
	cfg->audit_checkpoint_every = 1000;
	cfg->audit_checkpoint_interval_s = 60;
	cfg->audit_max_size = 64ULL * 1024 * 1024;
	cfg->metrics_interval_s = 5;

	ps.cfg = cfg;
	ps.path = path;
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
	if (cfg->nlisten == 0) {
		log_warnx("%s: [service] listen is required", path);
		goto out;
	}
	if (cfg->module == NULL || cfg->token_uri == NULL ||
	    cfg->pin_file == NULL) {
		log_warnx("%s: [pkcs11] module, token and pin_file are "
			  "required",
		    path);
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
