/*
 * token_init.c: a token initialised for hsmkeyd (see token_init.h).
 *
 * Order, so that a failure leaves nothing half done that matters: the
 * refusals first (label, slot, an initialised token, a label another token
 * has), then the PINs (read, or made and written to new files, synced,
 * before the token knows them: a crash after C_InitToken never loses a
 * PIN), then C_InitToken, then the token found again by its label
 * (SoftHSM gives an initialised token a new slot id), C_Login as the SO
 * and C_InitPIN.  PIN files this call wrote are unlinked when it fails
 * before C_InitToken succeeded; after, they stay (the token knows them).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hk_err.h"
#include "log.h"
#include "token_init.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include "token_int.h"
#include <p11-kit/uri.h>

/* One PIN: read from its file, or made and written to it. */
struct init_pin {
	const char *path;
	const char *what; /* "SO PIN", "user PIN" */
	char	   *pin;
	size_t	    len;
	int	    made;
};

/* 0 if label fits CK_TOKEN_INFO (1 to 32 bytes, no control character,
 * no trailing blank, which the padding would eat); padded gets it
 * blank-padded. */
static int
label_check(const char *label, CK_UTF8CHAR padded[TOKEN_INIT_LABEL_MAX])
{
	size_t len = label != NULL ? strlen(label) : 0, i;

	if (len == 0 || len > TOKEN_INIT_LABEL_MAX) {
		log_error("token label \"%s\" is %zu bytes: a label has 1 to "
			  "%d",
		    label != NULL ? label : "", len, TOKEN_INIT_LABEL_MAX);
		return HK_ERR_INVALID;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f) {
			log_error("token label has a control character");
			return HK_ERR_INVALID;
		}
	}
	if (label[len - 1] == ' ') {
		log_error("token label \"%s\" ends with a blank, which "
			  "PKCS#11 pads away",
		    label);
		return HK_ERR_INVALID;
	}
	memset(padded, ' ', TOKEN_INIT_LABEL_MAX);
	memcpy(padded, label, len);
	return 0;
}

/* The token info of slot; *presentp = 0 when it holds no token. */
static int
slot_info(struct token *t, CK_SLOT_ID slot, CK_TOKEN_INFO *info, int *presentp)
{
	CK_RV rv = t->f->C_GetTokenInfo(slot, info);

	*presentp = rv != CKR_TOKEN_NOT_PRESENT && rv != CKR_SLOT_ID_INVALID;
	return *presentp ? token_ck(t, "C_GetTokenInfo", rv) : 0;
}

/* 1 if info is an initialised token labelled padded. */
static int
info_labelled(const CK_TOKEN_INFO *info, const CK_UTF8CHAR *padded)
{
	return (info->flags & CKF_TOKEN_INITIALIZED) != 0 &&
	    memcmp(info->label, padded, TOKEN_INIT_LABEL_MAX) == 0;
}

/* What the slots hold, seen in one walk. */
struct slots_seen {
	CK_ULONG      nlabelled;     /* initialised tokens with the label */
	CK_SLOT_ID    labelled[2];   /* the first two of them */
	CK_TOKEN_INFO labelled_info; /* of labelled[0] */
	int	      have_empty;    /* an uninitialised token: */
	CK_SLOT_ID    empty;	     /* the first one */
	CK_TOKEN_INFO empty_info;
};

static int
slots_survey(struct token *t, const CK_UTF8CHAR *padded, struct slots_seen *sv)
{
	CK_SLOT_ID   *slots = NULL;
	CK_ULONG      n = 0, i;
	CK_TOKEN_INFO info;
	int	      r, present;

	memset(sv, 0, sizeof(*sv));
	if ((r = token_slot_list(t, &slots, &n)) != 0) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = slot_info(t, slots[i], &info, &present)) != 0) {
			goto out;
		}
		if (present && info_labelled(&info, padded)) {
			if (sv->nlabelled == 0) {
				sv->labelled_info = info;
			}
			if (sv->nlabelled < NITEMS(sv->labelled)) {
				sv->labelled[sv->nlabelled] = slots[i];
			}
			sv->nlabelled++;
		} else if (present && !sv->have_empty &&
		    (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
			sv->have_empty = 1;
			sv->empty = slots[i];
			sv->empty_info = info;
		}
	}
out:
	free(slots);
	return r;
}

/* Refuses when a token in another slot than target already has the
 * label: hsmkeyd's URI would match both. */
static int
label_unused(struct token *t, CK_SLOT_ID target, const char *label,
    const CK_UTF8CHAR *padded)
{
	struct slots_seen sv;
	CK_ULONG	  i;
	int		  r;

	if ((r = slots_survey(t, padded, &sv)) != 0) {
		return r;
	}
	for (i = 0; i < sv.nlabelled && i < NITEMS(sv.labelled); i++) {
		if (sv.labelled[i] != target) {
			log_error("slot %lu already holds a token labelled "
				  "\"%s\": choose another label",
			    (unsigned long)sv.labelled[i], label);
			return HK_ERR_EXISTS;
		}
	}
	return 0;
}

/* Without --slot: the token labelled padded if there is one, else the
 * first slot with an uninitialised token, into *slotp and *info. */
static int
find_slot(struct token *t, const CK_UTF8CHAR *padded, CK_SLOT_ID *slotp,
    CK_TOKEN_INFO *info)
{
	struct slots_seen sv;
	int		  r;

	if ((r = slots_survey(t, padded, &sv)) != 0) {
		return r;
	}
	if (sv.nlabelled > 0) {
		*slotp = sv.labelled[0];
		*info = sv.labelled_info;
		return 0;
	}
	if (sv.have_empty) {
		*slotp = sv.empty;
		*info = sv.empty_info;
		return 0;
	}
	log_error("no slot of the module holds an uninitialised token "
		  "(name one with --slot N)");
	return HK_ERR_NOT_FOUND;
}

/* The slot to initialise into *slotp, refused when its token is
 * initialised and spec does not force. */
static int
pick_slot(struct token *t, const struct token_init_spec *spec,
    const CK_UTF8CHAR *padded, CK_SLOT_ID *slotp)
{
	CK_TOKEN_INFO info;
	int	      r, present = 1;

	*slotp = spec->slot;
	if (spec->any_slot) {
		r = find_slot(t, padded, slotp, &info);
	} else {
		r = slot_info(t, spec->slot, &info, &present);
	}
	if (r != 0) {
		return r;
	}
	if (!present) {
		log_error("slot %lu holds no token", spec->slot);
		return HK_ERR_NOT_FOUND;
	}
	if ((info.flags & CKF_TOKEN_INITIALIZED) != 0 && !spec->force) {
		token_slot_take(t, *slotp, &info);
		log_error("slot %lu holds the initialised token \"%s\": "
			  "refused (--force re-initialises it, destroying "
			  "every object in it)",
		    (unsigned long)*slotp, token_label(t));
		return HK_ERR_EXISTS;
	}
	return 0;
}

/* Reads p's file, or makes a PIN and writes it to a new file when there
 * is none. */
static int
pin_get(struct init_pin *p)
{
	struct stat st;
	int	    r;

	if (lstat(p->path, &st) == 0 || errno != ENOENT) {
		/* there (maybe as a link, which token_pin_read refuses) */
		return token_pin_read(p->path, &p->pin, &p->len);
	}
	if ((r = token_pin_new(&p->pin, &p->len)) != 0 ||
	    (r = token_pin_write(p->path, p->pin, p->len)) != 0) {
		return r;
	}
	p->made = 1;
	log_info("wrote a new %s to %s (mode 0600)%s", p->what, p->path,
	    strcmp(p->what, "SO PIN") == 0 ? "; keep it offline" : "");
	return 0;
}

/* Forgets the PINs; unlinks the files made when the call failed. */
static void
pins_done(struct init_pin *pins, size_t n, int failed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		token_pin_free(pins[i].pin);
		pins[i].pin = NULL;
		if (failed && pins[i].made && unlink(pins[i].path) == 0) {
			log_info("removed %s again", pins[i].path);
		}
	}
}

/* C_InitToken of slot with the SO PIN and the label. */
static int
init_slot(struct token *t, CK_SLOT_ID slot, const struct init_pin *so,
    CK_UTF8CHAR *padded)
{
	CK_RV rv;

	rv = t->f->C_InitToken(
	    slot, (CK_UTF8CHAR_PTR)so->pin, (CK_ULONG)so->len, padded);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		log_error("slot %lu refused the SO PIN in %s: %s",
		    (unsigned long)slot, so->path, p11_kit_strerror(rv));
		return HK_ERR_PIN;
	}
	if (rv == CKR_SESSION_EXISTS) {
		log_error("slot %lu: the token has open sessions (stop "
			  "hsmkeyd and whatever else uses it first)",
		    (unsigned long)slot);
		return HK_ERR_PRECONDITION;
	}
	return token_ck(t, "C_InitToken", rv);
}

/* Finds the token labelled padded again: its slot, label and info. */
static int
find_again(struct token *t, const CK_UTF8CHAR *padded, CK_TOKEN_INFO *found)
{
	struct slots_seen sv;
	int		  r;

	if ((r = slots_survey(t, padded, &sv)) != 0) {
		return r;
	}
	if (sv.nlabelled != 1) {
		log_error("after C_InitToken %lu tokens have the label",
		    (unsigned long)sv.nlabelled);
		return HK_ERR_INTERNAL;
	}
	token_slot_take(t, sv.labelled[0], &sv.labelled_info);
	*found = sv.labelled_info;
	return 0;
}

/* As the SO on t's slot: sets the user PIN. */
static int
set_user_pin(
    struct token *t, const struct init_pin *so, const struct init_pin *user)
{
	CK_SESSION_HANDLE h;
	int		  r;

	if ((r = token_ck(t, "C_OpenSession",
		 t->f->C_OpenSession(t->slot,
		     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h))) !=
	    0) {
		return r;
	}
	if ((r = token_ck(t, "C_Login",
		 t->f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so->pin,
		     (CK_ULONG)so->len))) == 0) {
		r = token_ck(t, "C_InitPIN",
		    t->f->C_InitPIN(
			h, (CK_UTF8CHAR_PTR)user->pin, (CK_ULONG)user->len));
		(void)t->f->C_Logout(h);
	}
	(void)t->f->C_CloseSession(h);
	return r;
}

/* The token's RFC 7512 URI and names into res. */
static int
describe(const struct token *t, const CK_TOKEN_INFO *info,
    struct token_init_result *res)
{
	P11KitUri *pu;
	size_t	   l;
	int	   r = HK_ERR_NOMEM;

	res->slot = (unsigned long)t->slot;
	memcpy(res->label, t->label, sizeof(res->label));
	memcpy(res->serial, info->serialNumber, sizeof(info->serialNumber));
	res->serial[sizeof(info->serialNumber)] = '\0';
	for (l = sizeof(info->serialNumber);
	     l > 0 && res->serial[l - 1] == ' '; l--) {
		res->serial[l - 1] = '\0';
	}
	if ((pu = p11_kit_uri_new()) == NULL) {
		return r;
	}
	*p11_kit_uri_get_token_info(pu) = *info;
	if (p11_kit_uri_format(pu, P11_KIT_URI_FOR_TOKEN, &res->uri) ==
	    P11_KIT_URI_OK) {
		r = 0;
	}
	p11_kit_uri_free(pu);
	return r;
}

int
token_init(const struct token_init_spec *spec, struct token_init_result *res)
{
	struct token   *t = NULL;
	struct init_pin pins[2] = {
		{ spec->so_pin_file, "SO PIN", NULL, 0, 0 },
		{ spec->pin_file, "user PIN", NULL, 0, 0 },
	};
	CK_UTF8CHAR   padded[TOKEN_INIT_LABEL_MAX];
	CK_TOKEN_INFO info;
	CK_SLOT_ID    slot;
	int	      r = HK_ERR_INTERNAL, inited = 0;

	memset(res, 0, sizeof(*res));
	if ((r = label_check(spec->label, padded)) != 0 ||
	    (r = token_new(&t, spec->module, NULL, NULL)) != 0 ||
	    (r = token_module_load(t, spec->module, NULL)) != 0 ||
	    (r = token_module_init(t)) != 0 ||
	    (r = pick_slot(t, spec, padded, &slot)) != 0 ||
	    (r = label_unused(t, slot, spec->label, padded)) != 0 ||
	    (r = pin_get(&pins[0])) != 0 || (r = pin_get(&pins[1])) != 0 ||
	    (r = init_slot(t, slot, &pins[0], padded)) != 0) {
		goto out;
	}
	/* the token knows the SO PIN now: its file stays, whatever comes */
	inited = 1;
	if ((r = find_again(t, padded, &info)) != 0 ||
	    (r = set_user_pin(t, &pins[0], &pins[1])) != 0 ||
	    (r = describe(t, &info, res)) != 0) {
		goto out;
	}
	/* success */
	res->made_so_pin = pins[0].made;
	res->made_pin = pins[1].made;
	r = 0;
out:
	pins_done(pins, NITEMS(pins), r != 0 && !inited);
	token_close(t);
	if (r != 0) {
		token_init_result_free(res);
	}
	return r;
}

void
token_init_result_free(struct token_init_result *res)
{
	if (res != NULL) {
		free(res->uri);
		res->uri = NULL;
	}
}
