/* hsmkeyd.c: the hsmkey daemon's main: flags, config, then server_run(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hk_err.h"
#include "log.h"
#include "server.h"
#include "testhooks.h"
#include "token.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hsmkeyd --config FILE [--foreground]\n"
	    "       hsmkeyd --config FILE --bootstrap-admin ID "
	    "--credentials-out FILE\n"
	    "       hsmkeyd --version | --help\n"
	    "\n"
	    "Serves signing keys kept in a PKCS#11 token over nanomsg.\n"
	    "  --config FILE           the INI configuration (see README)\n"
	    "  --foreground            do not daemonise; log to stderr\n"
	    "  --bootstrap-admin ID    create the first admin client ID and "
	    "exit\n"
	    "  --credentials-out FILE  where to write its credentials "
	    "(mode 0600)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "bootstrap-admin", required_argument, NULL, 'b' },
		{ "credentials-out", required_argument, NULL, 'o' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config *cfg = NULL;
	const char    *config = NULL, *admin = NULL, *out = NULL;
	int	       ch, foreground = 0, r;

	hk_log_init("hsmkeyd", 0, HK_LOG_INFO);
	testhooks_init();
	while ((ch = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'b':
			admin = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'V':
			printf("hsmkeyd %s\n", HSMKEY_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || config == NULL) {
		fprintf(stderr,
		    "hsmkeyd: --config FILE is required "
		    "(see hsmkeyd --help)\n");
		return 2;
	}
	if ((admin == NULL) != (out == NULL)) {
		fprintf(stderr,
		    "hsmkeyd: --bootstrap-admin and "
		    "--credentials-out go together\n");
		return 2;
	}
	if (config_load(config, &cfg) != 0) {
		fprintf(stderr,
		    "hsmkeyd: cannot use config %s (see the line "
		    "above)\n",
		    config);
		return 2;
	}
	hk_log_init("hsmkeyd", cfg->log_syslog && !foreground && admin == NULL,
	    cfg->log_level);
	if (admin != NULL) {
		r = server_bootstrap(cfg, admin, out);
	} else {
		r = server_run(cfg, foreground);
	}
	config_free(cfg);
	if (r != 0 && token_said(r)) {
		/* refused to start: the PIN file, the PIN or the module (a
		 * service manager must not try again: RestartPreventExitStatus) */
		return 3;
	}
	if (r != 0) {
		log_err_r(r, "%s failed", admin ? "bootstrap" : "service");
		return 1;
	}
	return 0;
}
