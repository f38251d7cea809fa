/*
 * cli_keyset.c: what hsmkey gives verifiers: jwks (the key set, signed or
 * not), pubkey --all (the same versions as PEM) and sign --jws.  The
 * service builds and signs key sets; the library puts a JWS together.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wire.h"

int
cli_jws_check(struct cli *c, const struct cli_args *a)
{
	static const char *const refused[] = { "digest", "raw", "version" };
	size_t			 i;

	if (cli_opt(a, "jws") == NULL) {
		return 0;
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (cli_opt(a, refused[i]) != NULL) {
			return cli_usage(c,
			    "--jws signs the message with the primary "
			    "version: it takes no --%s",
			    refused[i]);
		}
	}
	return 0;
}

int
cli_sign_jws(struct cli *c, struct hsmkey *h, const char *key,
    const uint8_t *data, size_t len, int flags)
{
	char *jws = NULL;
	int   r;

	if ((r = hsmkey_sign_jws(
		 h, key, data, len, flags & HSMKEY_RSA_PKCS1, &jws)) != 0) {
		return cli_fail(c, r);
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "key", key);
		json_kv_string(&c->j, "jws", jws);
		json_object_end(&c->j);
	} else {
		printf("%s\n", jws);
	}
	free(jws);
	return 0;
}

/* Prints the PEMs of ks: concatenated blocks, or a JSON array. */
static int
print_pems(struct cli *c, const struct hk_keyset *ks, const char *out)
{
	char  *all = NULL, *pem;
	size_t i, len = 0, n;
	int    r = 0;

	if (c->json) {
		json_array_begin(&c->j);
	}
	for (i = 0; r == 0 && i < ks->n; i++) {
		if (hk_pubkey_pem(ks->entries[i].der, ks->entries[i].der_len,
			&pem) != 0) {
			r = cli_error(c, HSMKEY_EPROTO, "",
			    "v%" PRIu32 " of the key set is no public key",
			    ks->entries[i].version);
			break;
		}
		if (c->json) {
			json_object_begin(&c->j);
			json_kv_u64(&c->j, "version", ks->entries[i].version);
			json_kv_string(&c->j, "state", ks->entries[i].state);
			json_kv_string(&c->j, "pem", pem);
			json_object_end(&c->j);
		} else {
			n = strlen(pem);
			all = xreallocarray(all, len + n + 1, 1);
			memcpy(all + len, pem, n + 1);
			len += n;
		}
		free(pem);
	}
	if (c->json) {
		json_array_end(&c->j);
	} else if (r == 0) {
		r = cli_write_out(c, out, all != NULL ? all : "", len);
	}
	free(all);
	return r;
}

int
cli_pubkey_all(struct cli *c, const struct cli_args *a)
{
	struct hk_keyset ks;
	struct hsmkey	*h;
	const char	*name = a->pos[0];
	int		 r;

	if (cli_opt(a, "version") != NULL || cli_opt(a, "der") != NULL) {
		return cli_usage(c,
		    "--all takes every version, as PEM: no --version, --der");
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_keyset(h, &name, 1, 0, &ks)) != 0) {
		hk_keyset_free(&ks);
		return cli_fail(c, r);
	}
	r = print_pems(c, &ks, cli_opt(a, "out"));
	hk_keyset_free(&ks);
	return r;
}

static int
cmd_jwks(struct cli *c, struct cli_args *a)
{
	struct hk_keyset ks;
	struct hsmkey	*h;
	int		 i, r, signed_ = cli_opt(a, "signed") != NULL;
	char		 kid[96], *line;

	for (i = 0; i < a->npos; i++) {
		if (!hk_valid_key_name(a->pos[i])) {
			return cli_usage(c,
			    "invalid key name '%s': use "
			    "[a-z0-9][a-z0-9._-]{0,63}",
			    a->pos[i]);
		}
	}
	c->key = a->pos[0];
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_keyset(h, a->pos, (size_t)a->npos, signed_, &ks)) != 0) {
		hk_keyset_free(&ks);
		return cli_fail(c, r);
	}
	if (c->json && signed_) {
		snprintf(kid, sizeof(kid), "hsmkey-keyset/v%" PRIu32,
		    ks.keyset_version);
		json_object_begin(&c->j);
		json_kv_string(&c->j, "kid", kid);
		json_kv_string(&c->j, "jws", ks.jws);
		json_object_end(&c->j);
	} else if (signed_) {
		/* one line, as the unsigned set */
		line = xmalloc(strlen(ks.jws) + 2);
		snprintf(line, strlen(ks.jws) + 2, "%s\n", ks.jws);
		r = cli_write_out(c, cli_opt(a, "out"), line, strlen(line));
		free(line);
	} else {
		/* JSON already, with or without --json */
		r = cli_write_out(
		    c, cli_opt(a, "out"), ks.jwks, strlen(ks.jwks));
	}
	hk_keyset_free(&ks);
	return r;
}

static const struct cli_opt jwks_opts[] = {
	{ "signed", 0, 0 },
	{ "out", 1, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_keyset_cmds[] = {
	{ "jwks", cmd_jwks, "NAME... [--signed] [--out FILE]",
	    "Prints the JSON Web Key Set of the keys: every version that "
	    "verifies or is pending, kid NAME/vN, with its state "
	    "(hsmkey_state) and until when it signs and verifies. --signed: "
	    "a compact JWS of the set by the service key hsmkey-keyset.",
	    jwks_opts, 1, CLI_MAX_POS },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};

int
cli_write_out(struct cli *c, const char *path, const void *p, size_t len)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (cli_write_all(stdout, p, len) != 0) {
			return cli_error(
			    c, HSMKEY_EINTERNAL, "", "cannot write to stdout");
		}
		return 0;
	}
	if ((f = fopen(path, "w")) == NULL) {
		return cli_error(
		    c, HSMKEY_EINVAL, "", "cannot create %s: %m", path);
	}
	if (cli_write_all(f, p, len) != 0) {
		fclose(f);
		return cli_error(c, HSMKEY_EINTERNAL, "",
		    "cannot write %s: "
		    "%m",
		    path);
	}
	if (fclose(f) != 0) {
		return cli_error(c, HSMKEY_EINTERNAL, "",
		    "cannot write %s: "
		    "%m",
		    path);
	}
	return 0;
}
