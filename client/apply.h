/*
 * apply.h: the declarative file of `hsmkey apply` (README "apply:
 * provisioning as code"): [key NAME] and [client ID] sections, read with
 * libinih by apply_file.c; cli_apply.c compares it with the service and
 * applies the difference.  CLI only; single-threaded.
 */
#ifndef HK_APPLY_H
#define HK_APPLY_H

#include <stddef.h>
#include <stdint.h>

#define APPLY_MAX_GRANTS  32 /* what the service takes per client */
#define APPLY_MAX_REVOKES 64

/* One value of the file: set, its line, and the value parsed. */
struct apply_value {
	int	 set;
	int	 line;
	uint64_t v;
};

/* The values of a [key NAME] section, in this order in the file table. */
enum apply_key_field {
	APPLY_ALG, /* v: an hk_alg */
	APPLY_SIGN_OVERLAP,
	APPLY_VERIFY_GRACE,
	APPLY_ROTATE_EVERY,
	APPLY_EXPIRES, /* ms since the epoch, 0: never */
	APPLY_NFIELDS,
};

struct apply_key {
	char		   name[72];
	int		   line; /* of the section header */
	struct apply_value f[APPLY_NFIELDS];
};

struct apply_client {
	char		   id[72];
	int		   line;
	char		  *grants[APPLY_MAX_GRANTS];
	size_t		   ngrants;
	int		   grants_line; /* of the first grant */
	struct apply_value exact;	/* grants_exact: v 1 for yes */
	char		  *credentials; /* NULL: not given */
	int		   credentials_line;
	uint32_t	   revoke[APPLY_MAX_REVOKES];
	size_t		   nrevoke;
	int		   revoke_line;
};

struct apply_file {
	const char	    *path;
	struct apply_key    *keys;
	size_t		     nkeys;
	struct apply_client *clients;
	size_t		     nclients;
};

/*
 * Reads path into f.  0, or -1 with one line "PATH:LINE: what is wrong"
 * in err (nothing is half read: every section and value is checked).
 * Caller must apply_file_free(f) after any call.
 */
int apply_file_read(
    const char *path, struct apply_file *f, char *err, size_t errlen);
void apply_file_free(struct apply_file *f);

/* The file's name of a key field ("alg", "sign_overlap", ...). */
const char *apply_field_name(enum apply_key_field i);
/* A key field's value as the file writes it, into buf. */
const char *
apply_field_text(enum apply_key_field i, uint64_t v, char *buf, size_t len);

#endif /* HK_APPLY_H */
