/*
 * config.h: hsmkeyd's INI configuration (libinih).  Read once at start by
 * the main thread; read-only afterwards, so any thread may read it.
 */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTEN 8

struct config {
	char	    *listen[CONFIG_MAX_LISTEN];
	size_t	     nlisten;
	unsigned int workers;	    /* 0: max(64, 2 * max_parallel) */
	unsigned int max_parallel;  /* token slots of the gate; 0: no gate */
	uint64_t     busy_after_ms; /* a request's longest wait for a slot */
	int	     log_syslog;
	int	     log_level;
	char	    *socket_group;    /* group of ipc sockets */
	size_t	     max_request;     /* bytes of a Request (NN_RCVMAXSIZE) */
	unsigned int max_connections; /* sets RLIMIT_NOFILE (server.c) */

	char	*module;
	char	*allowed_modules; /* blank-separated paths; NULL: any */
	char	*token_uri;
	char	*pin_file;
	uint64_t keepalive_ms; /* probe an idle token this often (0: off) */
	uint64_t reconnect_max_ms; /* longest wait between reconnects */

	uint64_t clock_window_ms;
	uint64_t secret_lifetime_s;
	size_t	 nonce_per_client; /* nonce cache entries */
	size_t	 nonce_total;
	size_t	 reply_cache_bytes;

	uint64_t destroy_delay_s;
	uint64_t default_verify_grace_s;

	char	*audit_path;		 /* NULL: no audit log */
	int	 audit_signs;		 /* log every sign (default) */
	uint64_t audit_checkpoint_every; /* lines */
	uint64_t audit_checkpoint_interval_s;
	uint64_t audit_max_size;	   /* bytes; 0: no size rotation */
	uint64_t audit_refused_interval_s; /* one line per client and reason */
	uint64_t audit_max_waiting; /* bytes of replies waiting for the log */
	char	*metrics_path;	    /* NULL: no metrics file */
	uint64_t metrics_interval_s;
};

/* Parses path into a new config with defaults for what it omits; on error
 * logs one line naming the file, line and key.  Caller must config_free(). */
int  config_load(const char *path, struct config **cfgp);
void config_free(struct config *cfg);

#endif /* HK_CONFIG_H */
