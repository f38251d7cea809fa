/*
 * token_init.h: initialising a token for hsmkeyd (hsmkey-admin
 * init-token): C_InitToken with the SO PIN, then the user PIN set with
 * C_InitPIN, both PINs read from files, or made and written to new files
 * (mode 0600) when the files do not exist yet.  Not thread-safe: it loads
 * and finalises the module, for a process that does nothing else with it.
 */
#ifndef HK_TOKEN_INIT_H
#define HK_TOKEN_INIT_H

#include <stddef.h>

#define TOKEN_INIT_LABEL_MAX 32 /* bytes in CK_TOKEN_INFO's label */

struct token_init_spec {
	const char   *module;	   /* a path, or a p11-kit module name */
	int	      any_slot;	   /* 1: the token labelled label, else the
				    * first slot with an uninitialised one */
	unsigned long slot;	   /* else this slot id */
	const char   *label;	   /* 1 to 32 bytes */
	const char   *so_pin_file; /* read, or made if it does not exist */
	const char   *pin_file;	   /* the user PIN, likewise */
	int	      force;	   /* re-initialise an initialised token */
};

/* What was initialised.  Caller must token_init_result_free(). */
struct token_init_result {
	unsigned long slot; /* where the token is now (SoftHSM moves it) */
	char	      label[33];
	char	      serial[17];
	char	     *uri; /* RFC 7512: token, manufacturer, serial, model */
	int	      made_so_pin, made_pin; /* the files were written */
};

/*
 * Initialises the token spec names and fills *res.  Refuses, with one
 * line naming what: a label that is empty, over 32 bytes, or used by
 * another token (HK_ERR_INVALID, HK_ERR_EXISTS); an initialised token
 * without force (HK_ERR_EXISTS); no such slot or no empty token
 * (HK_ERR_NOT_FOUND); a PIN file that is a symbolic link, not regular, open
 * to group or others or another user's, or a SO PIN the token refuses
 * (HK_ERR_PIN).  PIN files it wrote are removed again when it fails.  The
 * PINs are kept in locked memory and zeroed after use.
 */
int
token_init(const struct token_init_spec *spec, struct token_init_result *res);
void token_init_result_free(struct token_init_result *res);

#endif /* HK_TOKEN_INIT_H */
