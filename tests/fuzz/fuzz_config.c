/*
 * fuzz_config.c: libFuzzer target for hsmkeyd's config parser: each input
 * is a whole config file, read by the real config_load() (service/config.c,
 * libinih).  A config that loads must hold what the service relies on.
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "fuzz_file.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hk_log_set_level(-1); /* one warning per bad input: nothing */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	size_t	       i;

	if (config_load(fuzz_file(data, size), &cfg) != 0) {
		if (cfg != NULL) {
			abort(); /* a failure hands nothing out */
		}
		return 0;
	}
	/* check_required()'s promises: at least one listen URL, a module,
	 * a token and a PIN file */
	if (cfg->nlisten == 0 || cfg->nlisten > CONFIG_MAX_LISTEN ||
	    cfg->module == NULL || cfg->token_uri == NULL ||
	    cfg->pin_file == NULL) {
		abort();
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i] == NULL) {
			abort();
		}
	}
	config_free(cfg);
	return 0;
}
