/*
 * cli_key.c: the key commands of hsmkey: create, list, describe, sign,
 * verify, pubkey, rotate, promote, policy, disable, destroy.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "hk_client.h"
#include "wire.h"

#define NAME_HINT "use [a-z0-9][a-z0-9._-]{0,63}"

/* Output */

static void
print_key_text(FILE *f, const Hsmkey__V1__KeyInfo *k)
{
	const Hsmkey__V1__Policy      *p = k->policy;
	const Hsmkey__V1__VersionInfo *v;
	char   t1[64], t2[64], t3[64], d1[32], d2[32], d3[32], ver[16];
	size_t i;

	fprintf(f, "key       %s\n", k->name);
	fprintf(f, "alg       %s\n",
	    hk_alg_name(hk_alg_from_wire(k->alg)) != NULL
		? hk_alg_name(hk_alg_from_wire(k->alg))
		: "unknown");
	fprintf(
	    f, "created   %s\n", cli_fmt_time(k->created_ms, t1, sizeof(t1)));
	if (k->primary != 0) {
		fprintf(f, "primary   v%" PRIu32 "\n", k->primary);
	} else {
		fprintf(f, "primary   none (no active version)\n");
	}
	if (p != NULL) {
		fprintf(f,
		    "policy    sign-overlap %s, verify-grace %s, "
		    "rotate-every %s, expires %s\n",
		    cli_fmt_duration(p->sign_overlap_s, d1, sizeof(d1)),
		    cli_fmt_duration(p->verify_grace_s, d2, sizeof(d2)),
		    p->rotate_every_s == 0
			? "off"
			: cli_fmt_duration(p->rotate_every_s, d3, sizeof(d3)),
		    p->expires_ms == 0
			? "never"
			: cli_fmt_time(p->expires_ms, t1, sizeof(t1)));
	}
	fprintf(f, "versions\n");
	fprintf(f, "  %-8s %-18s %-21s %-21s %s\n", "VERSION", "STATE",
	    "CREATED", "ACTIVATED", "UNTIL");
	for (i = 0; i < k->n_versions; i++) {
		v = k->versions[i];
		snprintf(ver, sizeof(ver), "v%" PRIu32 "%s", v->version,
		    v->primary ? "*" : "");
		fprintf(f, "  %-8s %-18s %-21s %-21s %s\n", ver,
		    hk_state_name(v->state),
		    cli_fmt_time(v->created_ms, t1, sizeof(t1)),
		    cli_fmt_time(v->activated_ms, t2, sizeof(t2)),
		    cli_fmt_time(v->retire_ms, t3, sizeof(t3)));
	}
	fprintf(f, "usage     since the service started\n");
	fprintf(f, "  %-8s %10s %10s %8s  %s\n", "VERSION", "SIGNS",
	    "VERIFIES", "ERRORS", "LAST-USE");
	for (i = 0; i < k->n_versions; i++) {
		v = k->versions[i];
		snprintf(ver, sizeof(ver), "v%" PRIu32, v->version);
		fprintf(f,
		    "  %-8s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 "  %s\n",
		    ver, v->signs, v->verifies, v->errors,
		    v->last_use_ms == 0
			? "never"
			: cli_fmt_time(v->last_use_ms, t1, sizeof(t1)));
	}
}

static void
print_key_json(struct json *j, const Hsmkey__V1__KeyInfo *k, uint32_t changed)
{
	const Hsmkey__V1__Policy      *p = k->policy;
	const Hsmkey__V1__VersionInfo *v;
	size_t			       i;

	json_object_begin(j);
	json_kv_string(j, "name", k->name);
	if (changed != 0) {
		json_kv_u64(j, "version", changed);
	}
	json_kv_string(j, "alg", hk_alg_name(hk_alg_from_wire(k->alg)));
	json_kv_u64(j, "primary", k->primary);
	cli_json_time(j, "created", k->created_ms);
	json_key(j, "policy");
	json_object_begin(j);
	json_kv_u64(j, "sign_overlap_s", p != NULL ? p->sign_overlap_s : 0);
	json_kv_u64(j, "verify_grace_s", p != NULL ? p->verify_grace_s : 0);
	json_kv_u64(j, "rotate_every_s", p != NULL ? p->rotate_every_s : 0);
	cli_json_time(j, "expires", p != NULL ? p->expires_ms : 0);
	json_object_end(j);
	json_key(j, "versions");
	json_array_begin(j);
	for (i = 0; i < k->n_versions; i++) {
		v = k->versions[i];
		json_object_begin(j);
		json_kv_u64(j, "version", v->version);
		json_kv_string(j, "state", hk_state_name(v->state));
		json_kv_bool(j, "primary", v->primary);
		cli_json_time(j, "created", v->created_ms);
		cli_json_time(j, "activated", v->activated_ms);
		cli_json_time(j, "retire", v->retire_ms);
		json_kv_u64(j, "signs", v->signs);
		json_kv_u64(j, "verifies", v->verifies);
		json_kv_u64(j, "errors", v->errors);
		cli_json_time(j, "last_use", v->last_use_ms);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

void
cli_print_key(struct cli *c, const Hsmkey__V1__KeyInfo *k, uint32_t changed)
{
	if (c->json) {
		print_key_json(&c->j, k, changed);
	} else {
		print_key_text(stdout, k);
	}
}

/* Helpers */

static int
check_name(struct cli *c, const char *name)
{
	if (!hk_valid_key_name(name)) {
		return cli_usage(c, "invalid key name '%s': " NAME_HINT, name);
	}
	c->key = name;
	return 0;
}

static int
opt_version(struct cli *c, const struct cli_args *a, const char *opt,
    int required, uint32_t *vp)
{
	const char *s = cli_opt(a, opt);

	*vp = 0;
	if (s == NULL) {
		if (required) {
			return cli_usage(c, "missing --%s N", opt);
		}
		return 0;
	}
	if (cli_parse_u32(s, 0, vp) != 0) {
		return cli_usage(c,
		    "invalid --%s '%s': give a version "
		    "number, 1 or more",
		    opt, s);
	}
	return 0;
}

/* Sends a request answered by a KeyResponse; *respp on success. */
static int
key_call(struct cli *c, Hsmkey__V1__Request *req, Hsmkey__V1__Response **respp)
{
	struct hsmkey *h;
	int	       r;

	*respp = NULL;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_client_call(
		 h, req, HSMKEY__V1__RESPONSE__RESULT_KEY, respp)) != 0) {
		return cli_fail(c, r);
	}
	if ((*respp)->key->key == NULL) {
		hk_client_response_free(*respp);
		*respp = NULL;
		return cli_error(c, HSMKEY_EPROTO, "", "reply carries no key");
	}
	return 0;
}

/* Prints the summary line (text) and the key. */
static void key_done(struct cli *c, const Hsmkey__V1__Response *resp,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
key_done(struct cli *c, const Hsmkey__V1__Response *resp, const char *fmt, ...)
{
	va_list ap;

	if (!c->json && fmt != NULL) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n\n");
	}
	cli_print_key(c, resp->key->key, resp->key->version);
}

/* Reads the message of sign/verify (--in FILE, else stdin). */
static int
read_message(struct cli *c, const char *path, uint8_t **bufp, size_t *lenp)
{
	char err[256];
	int  r;

	if ((r = cli_read_input(path, HK_CLIENT_MAX_DATA, bufp, lenp, err,
		 sizeof(err))) != 0) {
		if (r == -2) {
			return cli_usage(c, "%s", err);
		}
		return cli_error(c, HSMKEY_EINVAL, "", "%s", err);
	}
	if (*lenp == 0) {
		free(*bufp);
		*bufp = NULL;
		return cli_usage(c,
		    "message is empty: give --in FILE, data "
		    "on stdin, or --digest HEX");
	}
	return 0;
}

static int
sig_flags(struct cli *c, const struct cli_args *a, int *flagsp)
{
	*flagsp = 0;
	if (cli_opt(a, "raw") != NULL) {
		*flagsp |= HSMKEY_SIG_RAW;
	}
	if (cli_opt(a, "pkcs1") != NULL) {
		*flagsp |= HSMKEY_RSA_PKCS1;
	}
	if (cli_opt(a, "in") != NULL && cli_opt(a, "digest") != NULL) {
		return cli_usage(c,
		    "give --in FILE or --digest HEX, not "
		    "both");
	}
	return 0;
}

/* The message or digest of sign/verify. */
static int
sig_data(struct cli *c, const struct cli_args *a, int *flagsp, uint8_t **datap,
    size_t *lenp)
{
	const char *hex = cli_opt(a, "digest"), *path;

	*datap = NULL;
	*lenp = 0;
	if (hex == NULL) {
		path = cli_opt(a, "in");
		if ((path == NULL || strcmp(path, "-") == 0) &&
		    isatty(STDIN_FILENO)) {
			fprintf(stderr,
			    "hsmkey: reading the message from "
			    "stdin (end it with Ctrl-D)\n");
		}
		return read_message(c, path, datap, lenp);
	}
	if (cli_parse_hex(hex, datap, lenp) != 0) {
		return cli_usage(c, "invalid --digest: not hex");
	}
	if (*lenp != 32 && *lenp != 48) {
		free(*datap);
		*datap = NULL;
		return cli_usage(c,
		    "invalid --digest: %zu bytes; give a "
		    "SHA-256 (32 bytes) or SHA-384 (48 bytes) digest",
		    *lenp);
	}
	*flagsp |= HSMKEY_DIGEST;
	return 0;
}

/* Commands */

static int
cmd_create(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__CreateRequest cr = HSMKEY__V1__CREATE_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	const char		 *alg = cli_opt(a, "alg");
	hk_alg			  al = HK_ALG_ECDSA_P256;
	char			  names[128];
	int			  r;

	if ((r = check_name(c, a->pos[0])) != 0) {
		return r;
	}
	if (alg != NULL && hk_alg_parse(alg, &al) != 0) {
		return cli_usage(c, "unknown algorithm '%s': use %s", alg,
		    hk_alg_list(names, sizeof(names)));
	}
	cr.name = (char *)a->pos[0];
	cr.alg = hk_alg_to_wire(al);
	req.op_case = HSMKEY__V1__REQUEST__OP_CREATE;
	req.create = &cr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	key_done(c, resp, "created key '%s' (%s): v%" PRIu32 " is primary",
	    resp->key->key->name,
	    hk_alg_name(hk_alg_from_wire(resp->key->key->alg)),
	    resp->key->key->primary);
	hk_client_response_free(resp);
	return 0;
}

static int
cmd_list(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ListRequest	  lr = HSMKEY__V1__LIST_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	Hsmkey__V1__ListResponse *l;
	struct hsmkey		 *h;
	size_t			  i;
	int			  r;

	(void)a;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	req.op_case = HSMKEY__V1__REQUEST__OP_LIST;
	req.list = &lr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_LIST, &resp)) != 0) {
		return cli_fail(c, r);
	}
	l = resp->list;
	if (c->json) {
		json_object_begin(&c->j);
		json_key(&c->j, "keys");
		json_array_begin(&c->j);
		for (i = 0; i < l->n_keys; i++) {
			print_key_json(&c->j, l->keys[i], 0);
		}
		json_array_end(&c->j);
		json_object_end(&c->j);
	} else if (l->n_keys == 0) {
		printf("no keys (create one with 'hsmkey create NAME')\n");
	} else {
		for (i = 0; i < l->n_keys; i++) {
			if (i > 0) {
				printf("\n");
			}
			print_key_text(stdout, l->keys[i]);
		}
	}
	hk_client_response_free(resp);
	return 0;
}

static int
describe(struct cli *c, const char *name)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DescribeRequest dr = HSMKEY__V1__DESCRIBE_REQUEST__INIT;
	Hsmkey__V1__Response	   *resp = NULL;
	int			    r;

	if ((r = check_name(c, name)) != 0) {
		return r;
	}
	dr.name = (char *)name;
	req.op_case = HSMKEY__V1__REQUEST__OP_DESCRIBE;
	req.describe = &dr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	cli_print_key(c, resp->key->key, 0);
	hk_client_response_free(resp);
	return 0;
}

static int
cmd_describe(struct cli *c, struct cli_args *a)
{
	return describe(c, a->pos[0]);
}

static int
cmd_sign(struct cli *c, struct cli_args *a)
{
	struct hsmkey *h;
	uint8_t	      *data = NULL;
	size_t	       len = 0;
	uint32_t       version;
	char	      *sig = NULL, *end;
	int	       r, flags;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 0, &version)) != 0 ||
	    (r = sig_flags(c, a, &flags)) != 0 ||
	    (r = sig_data(c, a, &flags, &data, &len)) != 0) {
		goto out;
	}
	if ((r = cli_handle(c, &h)) != 0) {
		goto out;
	}
	if ((r = hsmkey_sign_ex(
		 h, a->pos[0], data, len, version, flags, &sig)) != 0) {
		r = cli_fail(c, r);
		goto out;
	}
	if (c->json) {
		/* "hsmkey:v<N>:..." */
		version = (uint32_t)strtoul(sig + 8, &end, 10);
		json_object_begin(&c->j);
		json_kv_string(&c->j, "key", a->pos[0]);
		json_kv_u64(&c->j, "version", version);
		json_kv_string(&c->j, "signature", sig);
		json_object_end(&c->j);
	} else {
		printf("%s\n", sig);
	}
	r = 0;
out:
	free(sig);
	free(data);
	return r;
}

/* --sig TEXT or --sig @FILE. */
static int
read_sig(struct cli *c, const char *arg, char **sigp)
{
	uint8_t *buf = NULL;
	size_t	 len = 0;
	char	 err[256], *s;

	*sigp = NULL;
	if (arg == NULL) {
		return cli_usage(c,
		    "missing --sig SIG (the hsmkey:vN:... "
		    "text, or @FILE)");
	}
	if (arg[0] != '@') {
		*sigp = xstrdup(arg);
		return 0;
	}
	if (cli_read_input(arg + 1, 64 * 1024, &buf, &len, err, sizeof(err)) !=
	    0) {
		return cli_usage(c, "--sig %s: %s", arg, err);
	}
	s = xmalloc(len + 1);
	memcpy(s, buf, len);
	s[len] = '\0';
	free(buf);
	if (strlen(s) != len) {
		free(s);
		return cli_usage(c, "--sig %s: not a text file", arg);
	}
	while (len > 0 &&
	    (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
		s[len - 1] == '\t')) {
		s[--len] = '\0';
	}
	*sigp = s;
	return 0;
}

static int
cmd_verify(struct cli *c, struct cli_args *a)
{
	struct hsmkey_verify_result res;
	struct hsmkey		   *h;
	uint8_t			   *data = NULL, *raw = NULL;
	size_t			    len = 0, rawlen;
	uint32_t		    v;
	char			   *sig = NULL, t[64];
	int			    r, flags;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = sig_flags(c, a, &flags)) != 0 ||
	    (r = read_sig(c, cli_opt(a, "sig"), &sig)) != 0) {
		goto out;
	}
	if (hk_sigtext_parse(sig, &v, &raw, &rawlen) != 0) {
		r = cli_usage(c,
		    "invalid --sig: expected the text form "
		    "hsmkey:v<N>:<base64>");
		goto out;
	}
	if ((r = sig_data(c, a, &flags, &data, &len)) != 0) {
		goto out;
	}
	if ((r = cli_handle(c, &h)) != 0) {
		goto out;
	}
	if ((r = hsmkey_verify_ex(
		 h, a->pos[0], data, len, flags, sig, &res)) != 0) {
		r = cli_fail(c, r);
		goto out;
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_bool(&c->j, "valid", res.valid);
		json_kv_u64(&c->j, "version", res.version);
		json_kv_string(
		    &c->j, "state", res.state[0] != '\0' ? res.state : NULL);
		cli_json_time(&c->j, "retire", res.retire_ms);
		json_object_end(&c->j);
	} else if (res.valid) {
		printf("valid: signed by %s v%" PRIu32 " (%s)", a->pos[0],
		    res.version, res.state[0] != '\0' ? res.state : "unknown");
		if (res.retire_ms != 0) {
			printf(", retires %s",
			    cli_fmt_time(res.retire_ms, t, sizeof(t)));
		}
		printf("\n");
	} else if (strcmp(res.state, "disabled") == 0 ||
	    strcmp(res.state, "destroy-scheduled") == 0 ||
	    strcmp(res.state, "destroyed") == 0 ||
	    strcmp(res.state, "pending") == 0) {
		printf("invalid signature: %s v%" PRIu32 " is %s\n", a->pos[0],
		    res.version, res.state);
	} else {
		printf("invalid signature\n");
	}
	r = res.valid ? 0 : EXIT_INVALID;
out:
	free(raw);
	free(data);
	free(sig);
	return r;
}

static int
write_out(struct cli *c, const char *path, const void *p, size_t len)
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

static int
cmd_pubkey(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PubkeyRequest   pr = HSMKEY__V1__PUBKEY_REQUEST__INIT;
	Hsmkey__V1__Response	   *resp = NULL;
	Hsmkey__V1__PubkeyResponse *pk;
	const char		   *out = cli_opt(a, "out");
	int			    der = cli_opt(a, "der") != NULL;
	struct hsmkey		   *h;
	uint32_t		    version;
	char			   *b64 = NULL;
	int			    r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 0, &version)) != 0) {
		return r;
	}
	if (der && !c->json && (out == NULL || strcmp(out, "-") == 0) &&
	    isatty(STDOUT_FILENO)) {
		return cli_usage(c,
		    "refusing to write DER to a terminal: "
		    "give --out FILE or redirect stdout");
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	pr.name = (char *)a->pos[0];
	pr.version = version;
	req.op_case = HSMKEY__V1__REQUEST__OP_PUBKEY;
	req.pubkey = &pr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_PUBKEY, &resp)) != 0) {
		return cli_fail(c, r);
	}
	pk = resp->pubkey;
	if (pk->der.len == 0 || pk->pem == NULL || *pk->pem == '\0') {
		r = cli_error(c, HSMKEY_EPROTO, "",
		    "reply carries no public "
		    "key");
		goto out;
	}
	if (c->json) {
		if (out != NULL &&
		    (r = write_out(c, out,
			 der ? pk->der.data : (const void *)pk->pem,
			 der ? pk->der.len : strlen(pk->pem))) != 0) {
			goto out;
		}
		if (hk_base64_encode(pk->der.data, pk->der.len, &b64) != 0) {
			r = cli_error(c, HSMKEY_ENOMEM, "", "out of memory");
			goto out;
		}
		json_object_begin(&c->j);
		json_kv_string(&c->j, "key", a->pos[0]);
		json_kv_u64(&c->j, "version", pk->version);
		json_kv_string(
		    &c->j, "alg", hk_alg_name(hk_alg_from_wire(pk->alg)));
		json_kv_string(&c->j, "pem", pk->pem);
		json_kv_string(&c->j, "der", b64);
		json_object_end(&c->j);
	} else if (der) {
		r = write_out(c, out, pk->der.data, pk->der.len);
		goto out;
	} else {
		r = write_out(c, out, pk->pem, strlen(pk->pem));
		goto out;
	}
	r = 0;
out:
	free(b64);
	hk_client_response_free(resp);
	return r;
}

static int
cmd_rotate(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__RotateRequest rr = HSMKEY__V1__ROTATE_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	uint32_t		  expect, n;
	int			  r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "expect", 0, &expect)) != 0) {
		return r;
	}
	rr.name = (char *)a->pos[0];
	rr.expect = expect;
	rr.stage = cli_opt(a, "stage") != NULL;
	req.op_case = HSMKEY__V1__REQUEST__OP_ROTATE;
	req.rotate = &rr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	n = resp->key->version;
	if (rr.stage) {
		key_done(c, resp,
		    "rotated '%s': v%" PRIu32 " is pending; "
		    "make it primary with 'hsmkey promote %s --version "
		    "%" PRIu32 "'",
		    a->pos[0], n, a->pos[0], n);
	} else {
		key_done(c, resp, "rotated '%s': v%" PRIu32 " is primary",
		    a->pos[0], n);
	}
	hk_client_response_free(resp);
	return 0;
}

static int
cmd_promote(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	   req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PromoteRequest pr = HSMKEY__V1__PROMOTE_REQUEST__INIT;
	Hsmkey__V1__Response	  *resp = NULL;
	uint32_t		   v;
	int			   r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 1, &v)) != 0) {
		return r;
	}
	pr.name = (char *)a->pos[0];
	pr.version = v;
	req.op_case = HSMKEY__V1__REQUEST__OP_PROMOTE;
	req.promote = &pr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	key_done(c, resp, "promoted '%s' v%" PRIu32 ": primary is v%" PRIu32,
	    a->pos[0], v, resp->key->key->primary);
	hk_client_response_free(resp);
	return 0;
}

static int
opt_duration(struct cli *c, const struct cli_args *a, const char *opt,
    Hsmkey__V1__U64Value *u, Hsmkey__V1__U64Value **up)
{
	const char *s = cli_opt(a, opt);

	if (s == NULL) {
		return 0;
	}
	if (hk_parse_duration(s, &u->value) != 0) {
		return cli_usage(c,
		    "invalid --%s '%s': give a duration like "
		    "90, 30s, 15m, 12h or 7d",
		    opt, s);
	}
	*up = u;
	return 0;
}

static int
cmd_policy(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PolicyRequest pr = HSMKEY__V1__POLICY_REQUEST__INIT;
	Hsmkey__V1__U64Value	  so = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  vg = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  re = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  ex = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	const char		 *exp = cli_opt(a, "expires");
	int			  r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_duration(
		 c, a, "sign-overlap", &so, &pr.sign_overlap_s)) != 0 ||
	    (r = opt_duration(
		 c, a, "verify-grace", &vg, &pr.verify_grace_s)) != 0 ||
	    (r = opt_duration(
		 c, a, "rotate-every", &re, &pr.rotate_every_s)) != 0) {
		return r;
	}
	if (exp != NULL) {
		if (cli_parse_expiry(exp, &ex.value) != 0) {
			return cli_usage(c,
			    "invalid --expires '%s': give "
			    "never, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
			    exp);
		}
		pr.expires_ms = &ex;
	}
	if (pr.sign_overlap_s == NULL && pr.verify_grace_s == NULL &&
	    pr.rotate_every_s == NULL && pr.expires_ms == NULL) {
		/* nothing to change: show the policy */
		return describe(c, a->pos[0]);
	}
	pr.name = (char *)a->pos[0];
	req.op_case = HSMKEY__V1__REQUEST__OP_POLICY;
	req.policy = &pr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	key_done(c, resp, "updated the policy of '%s'", a->pos[0]);
	hk_client_response_free(resp);
	return 0;
}

static int
cmd_disable(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	   req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DisableRequest dr = HSMKEY__V1__DISABLE_REQUEST__INIT;
	Hsmkey__V1__Response	  *resp = NULL;
	uint32_t		   v;
	int			   r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 1, &v)) != 0) {
		return r;
	}
	dr.name = (char *)a->pos[0];
	dr.version = v;
	req.op_case = HSMKEY__V1__REQUEST__OP_DISABLE;
	req.disable = &dr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	key_done(c, resp, "disabled '%s' v%" PRIu32, a->pos[0], v);
	hk_client_response_free(resp);
	return 0;
}

static int
cmd_destroy(struct cli *c, struct cli_args *a)
{
	Hsmkey__V1__Request	       req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DestroyRequest     dr = HSMKEY__V1__DESTROY_REQUEST__INIT;
	Hsmkey__V1__Response	      *resp = NULL;
	const Hsmkey__V1__VersionInfo *vi = NULL;
	uint32_t		       v;
	size_t			       i;
	char			       t[64];
	int			       r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 1, &v)) != 0) {
		return r;
	}
	dr.name = (char *)a->pos[0];
	dr.version = v;
	req.op_case = HSMKEY__V1__REQUEST__OP_DESTROY;
	req.destroy = &dr;
	if ((r = key_call(c, &req, &resp)) != 0) {
		return r;
	}
	for (i = 0; i < resp->key->key->n_versions; i++) {
		if (resp->key->key->versions[i]->version == v) {
			vi = resp->key->key->versions[i];
		}
	}
	if (vi != NULL &&
	    vi->state == HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED) {
		key_done(c, resp, "'%s' v%" PRIu32 " will be destroyed at %s",
		    a->pos[0], v, cli_fmt_time(vi->retire_ms, t, sizeof(t)));
	} else {
		key_done(c, resp, "destroyed '%s' v%" PRIu32, a->pos[0], v);
	}
	hk_client_response_free(resp);
	return 0;
}

static const struct cli_opt create_opts[] = {
	{ "alg", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt none_opts[] = {
	{ NULL, 0, 0 },
};
static const struct cli_opt sign_opts[] = {
	{ "in", 1, 0 },
	{ "digest", 1, 0 },
	{ "version", 1, 0 },
	{ "raw", 0, 0 },
	{ "pkcs1", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt verify_opts[] = {
	{ "sig", 1, 0 },
	{ "in", 1, 0 },
	{ "digest", 1, 0 },
	{ "raw", 0, 0 },
	{ "pkcs1", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt pubkey_opts[] = {
	{ "version", 1, 0 },
	{ "der", 0, 0 },
	{ "out", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt rotate_opts[] = {
	{ "expect", 1, 0 },
	{ "stage", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt version_opts[] = {
	{ "version", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt policy_opts[] = {
	{ "sign-overlap", 1, 0 },
	{ "verify-grace", 1, 0 },
	{ "rotate-every", 1, 0 },
	{ "expires", 1, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_key_cmds[] = {
	{ "create", cmd_create, "NAME [--alg ALG]",
	    "Creates a key in the token; version 1 is primary. ALG: "
	    "ecdsa-p256 (default), "
	    "ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096.",
	    create_opts, 1, 1 },
	{ "list", cmd_list, "",
	    "Lists the keys with their versions, states, dates and policy.",
	    none_opts, 0, 0 },
	{ "describe", cmd_describe, "NAME",
	    "Shows one key: algorithm, primary version, policy, and each "
	    "version's "
	    "state and dates (UTC; UNTIL: when it leaves that state).",
	    none_opts, 1, 1 },
	{ "sign", cmd_sign,
	    "NAME [--in FILE] [--digest HEX] [--version N] [--raw] [--pkcs1]",
	    "Signs the message in FILE (default: stdin), or a SHA-256/384 "
	    "digest given "
	    "in hex, with the primary version (or version N). Prints "
	    "hsmkey:vN:<base64>. "
	    "--raw: ECDSA r||s instead of DER; --pkcs1: RSA PKCS#1 v1.5 "
	    "instead of PSS.",
	    sign_opts, 1, 1 },
	{ "verify", cmd_verify,
	    "NAME --sig SIG [--in FILE] [--digest HEX] [--raw] [--pkcs1]",
	    "Verifies SIG (hsmkey:vN:..., or @FILE holding it) over the "
	    "message in FILE "
	    "(default: stdin) or a digest. Exit 0 valid, 1 invalid (also "
	    "when the "
	    "version is disabled).",
	    verify_opts, 1, 1 },
	{ "pubkey", cmd_pubkey, "NAME [--version N] [--der] [--out FILE]",
	    "Prints the public key (SubjectPublicKeyInfo) of the primary "
	    "version, or N, "
	    "as PEM; --der writes DER. --out FILE writes to FILE.",
	    pubkey_opts, 1, 1 },
	{ "rotate", cmd_rotate, "NAME [--expect N] [--stage]",
	    "Makes a new version and makes it primary. --expect N: fail "
	    "unless N is "
	    "the newest version (exit 5 when another rotation won). "
	    "--stage: the new "
	    "version stays pending until 'promote'.",
	    rotate_opts, 1, 1 },
	{ "promote", cmd_promote, "NAME --version N",
	    "Makes pending version N active and primary.", version_opts, 1,
	    1 },
	{ "policy", cmd_policy,
	    "NAME [--sign-overlap D] [--verify-grace D] [--rotate-every D] "
	    "[--expires T]",
	    "Changes the given policy fields (D: 90, 30s, 15m, 12h, 7d; "
	    "--rotate-every 0: "
	    "off; T: never, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ). No flag: "
	    "shows the key.",
	    policy_opts, 1, 1 },
	{ "disable", cmd_disable, "NAME --version N",
	    "Disables version N: it no longer signs or verifies.",
	    version_opts, 1, 1 },
	{ "destroy", cmd_destroy, "NAME --version N",
	    "Schedules version N for destruction: after a delay (default 7 "
	    "days) its "
	    "objects are deleted from the token.",
	    version_opts, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
