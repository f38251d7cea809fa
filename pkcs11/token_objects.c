/*
 * token_objects.c: listing the token's objects, data objects and reading
 * attributes (see token.h, token_int.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hk_err.h"
#include "log.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include "token_int.h"

#define LIST_BATCH 256 /* handles per C_FindObjects */

int
token_attrs_get(struct token_session *s, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE *tmpl, CK_ULONG n, size_t max)
{
	struct token *t = s->t;
	CK_ULONG      i;
	int	      r = HK_ERR_INTERNAL;

	for (i = 0; i < n; i++) {
		tmpl[i].pValue = NULL;
		tmpl[i].ulValueLen = 0;
	}
	if ((r = token_away(t)) != 0 ||
	    (r = token_ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, obj, tmpl, n))) != 0) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
		    tmpl[i].ulValueLen > max) {
			log_warnx("object attribute 0x%lx is unavailable or "
				  "too long",
			    (unsigned long)tmpl[i].type);
			r = HK_ERR_TOO_LARGE;
			goto out;
		}
		/* +1: malloc(0) may return NULL */
		if ((tmpl[i].pValue = malloc(tmpl[i].ulValueLen + 1)) ==
		    NULL) {
			r = HK_ERR_NOMEM;
			goto out;
		}
	}
	if ((r = token_ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, obj, tmpl, n))) != 0) {
		goto out;
	}
	r = 0;
out:
	return r;
}

void
token_attrs_free(CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		free(tmpl[i].pValue);
		tmpl[i].pValue = NULL;
	}
}

static int
class_of(CK_OBJECT_CLASS c, enum token_class *kp)
{
	switch (c) {
	case CKO_PRIVATE_KEY:
		*kp = TOKEN_CLASS_PRIVATE;
		return 1;
	case CKO_PUBLIC_KEY:
		*kp = TOKEN_CLASS_PUBLIC;
		return 1;
	case CKO_SECRET_KEY:
		*kp = TOKEN_CLASS_SECRET;
		return 1;
	case CKO_DATA:
		*kp = TOKEN_CLASS_DATA;
		return 1;
	default:
		return 0;
	}
}

/* Every token object's handle, in one search.  Caller frees *hp. */
static int
find_all(struct token_session *s, CK_OBJECT_HANDLE **hp, size_t *np)
{
	struct token	 *t = s->t;
	CK_ATTRIBUTE	  tmpl[] = { ATTR_BOOL(CKA_TOKEN, 1) };
	CK_OBJECT_HANDLE *h = NULL, *tmp;
	CK_ULONG	  got;
	size_t		  n = 0, cap = 0;
	CK_RV		  rv;
	int		  r = HK_ERR_INTERNAL, active = 0;

	*hp = NULL;
	*np = 0;
	if ((r = token_away(t)) != 0 ||
	    (r = token_ck(t, "C_FindObjectsInit",
		 t->f->C_FindObjectsInit(s->h, tmpl, NITEMS(tmpl)))) != 0) {
		goto out;
	}
	active = 1;
	for (;;) {
		if (cap - n < LIST_BATCH) {
			if ((tmp = reallocarray(h, cap + 4 * LIST_BATCH,
				 sizeof(*h))) == NULL) {
				r = HK_ERR_NOMEM;
				goto out;
			}
			h = tmp;
			cap += 4 * LIST_BATCH;
		}
		got = 0;
		if ((r = token_ck(t, "C_FindObjects",
			 t->f->C_FindObjects(
			     s->h, h + n, LIST_BATCH, &got))) != 0) {
			goto out;
		}
		if (got == 0) {
			break;
		}
		n += got;
	}
	/* success */
	*hp = h;
	*np = n;
	h = NULL;
	r = 0;
out:
	if (active && (rv = t->f->C_FindObjectsFinal(s->h)) != CKR_OK) {
		token_rv_err(t, "C_FindObjectsFinal", rv);
		if (r == 0) {
			r = token_rv_map(rv);
			free(*hp);
			*hp = NULL;
			*np = 0;
		}
	}
	free(h);
	return r;
}

int
token_list(struct token_session *s, const char		     *prefix,
    int (*cb)(void *arg, const struct token_object *o), void *arg)
{
	struct token	   *t = s->t;
	struct token_object o;
	CK_OBJECT_HANDLE   *h = NULL;
	CK_OBJECT_CLASS	    cls;
	CK_BBOOL	    sign;
	CK_ATTRIBUTE	    a[4];
	size_t		    n = 0, i, plen;
	CK_RV		    rv;
	int		    r = HK_ERR_INTERNAL;

	if (prefix == NULL) {
		prefix = "";
	}
	plen = strlen(prefix);
	if ((r = find_all(s, &h, &n)) != 0) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		a[0] = (CK_ATTRIBUTE)ATTR_VAR(CKA_CLASS, cls);
		a[1] = (CK_ATTRIBUTE)ATTR(CKA_LABEL, o.label, TOKEN_LABEL_MAX);
		a[2] = (CK_ATTRIBUTE)ATTR(CKA_ID, o.id, TOKEN_ID_MAX);
		/* one call per object: at 20,000 objects each call costs
		 * SoftHSM a file check; keys answer CKA_SIGN, the others
		 * mark it unavailable */
		sign = CK_FALSE;
		a[3] = (CK_ATTRIBUTE)ATTR_VAR(CKA_SIGN, sign);
		rv = t->f->C_GetAttributeValue(s->h, h[i], a, NITEMS(a));
		switch (rv) {
		case CKR_OK:
		case CKR_ATTRIBUTE_TYPE_INVALID: /* CKO_DATA: no CKA_ID */
		case CKR_ATTRIBUTE_SENSITIVE:
			/* the other attributes are filled in all the same */
			mark_ok(t);
			break;
		case CKR_BUFFER_TOO_SMALL:	/* label or id too long */
		case CKR_OBJECT_HANDLE_INVALID: /* destroyed meanwhile */
			continue;
		default:
			r = token_rv_err(t, "C_GetAttributeValue", rv);
			goto out;
		}
		if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
		    a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			continue;
		}
		if (a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			a[2].ulValueLen = 0;
		}
		if (!class_of(cls, &o.klass) ||
		    a[1].ulValueLen > TOKEN_LABEL_MAX ||
		    a[2].ulValueLen > TOKEN_ID_MAX || a[1].ulValueLen < plen ||
		    memcmp(o.label, prefix, plen) != 0 ||
		    memchr(o.label, '\0', a[1].ulValueLen) != NULL) {
			continue;
		}
		o.handle = h[i];
		o.label[a[1].ulValueLen] = '\0';
		o.id_len = a[2].ulValueLen;
		if ((o.klass == TOKEN_CLASS_PRIVATE ||
			o.klass == TOKEN_CLASS_SECRET) &&
		    a[3].ulValueLen == sizeof(sign)) {
			o.can_sign = sign == CK_TRUE;
		}
		if ((r = cb(arg, &o)) != 0) {
			goto out;
		}
	}
	r = 0;
out:
	free(h);
	return r;
}

struct list_all {
	struct token_object *objs;
	size_t		     n, cap, max;
};

static int
list_all_cb(void *arg, const struct token_object *o)
{
	struct list_all	    *c = arg;
	struct token_object *nobjs;

	if (c->n == c->cap) {
		if (c->cap >= c->max) {
			return HK_ERR_TOO_LARGE;
		}
		c->cap = c->cap ? c->cap * 2 : 256;
		if (c->cap > c->max) {
			c->cap = c->max;
		}
		if ((nobjs = reallocarray(c->objs, c->cap, sizeof(*nobjs))) ==
		    NULL) {
			return HK_ERR_NOMEM;
		}
		c->objs = nobjs;
	}
	c->objs[c->n++] = *o;
	return 0;
}

int
token_list_all(struct token_session *s, const char *prefix, size_t max,
    struct token_object **objsp, size_t *np)
{
	struct list_all c = { NULL, 0, 0, max };
	int		r;

	r = token_list(s, prefix, list_all_cb, &c);
	*objsp = c.objs;
	*np = c.n;
	return r;
}

static const char app_hsmkey[] = "hsmkey";

int
token_label_ok(const char *label, size_t *lenp)
{
	*lenp = 0;
	if (label == NULL || (*lenp = strlen(label)) > TOKEN_LABEL_MAX) {
		return 0;
	}
	return 1;
}

int
token_create_object(
    struct token_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, token_obj_t *objp)
{
	struct token	*t = s->t;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	int		 r;

	*objp = TOKEN_OBJ_NONE;
	if ((r = token_away(t)) != 0 ||
	    (r = token_ck(t, "C_CreateObject",
		 t->f->C_CreateObject(s->h, tmpl, n, &obj))) != 0) {
		return r;
	}
	*objp = obj;
	return 0;
}

int
token_data_create(struct token_session *s, const char *label,
    const uint8_t *value, size_t len, token_obj_t *objp)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	size_t		labellen;

	*objp = TOKEN_OBJ_NONE;
	if (!token_label_ok(label, &labellen) || (value == NULL && len != 0) ||
	    len > ATTR_MAX) {
		return HK_ERR_INVALID;
	}
	CK_ATTRIBUTE tmpl[] = {
		ATTR_VAR(CKA_CLASS, cls),
		ATTR_BOOL(CKA_TOKEN, 1),
		ATTR_BOOL(CKA_PRIVATE, 1),
		ATTR_BOOL(CKA_MODIFIABLE, 1),
		ATTR(CKA_APPLICATION, app_hsmkey, sizeof(app_hsmkey) - 1),
		ATTR(CKA_LABEL, label, labellen),
		ATTR(CKA_VALUE, value, len),
	};

	return token_create_object(s, tmpl, NITEMS(tmpl), objp);
}

int
token_data_read(
    struct token_session *s, token_obj_t obj, uint8_t **valuep, size_t *lenp)
{
	CK_ATTRIBUTE a[1] = { { CKA_VALUE, NULL, 0 } };
	int	     r = HK_ERR_INTERNAL;

	*valuep = NULL;
	*lenp = 0;
	if ((r = token_attrs_get(s, obj, a, 1, ATTR_MAX)) != 0) {
		goto out;
	}
	/* success */
	*valuep = a[0].pValue;
	*lenp = a[0].ulValueLen;
	a[0].pValue = NULL;
	r = 0;
out:
	token_attrs_free(a, 1);
	return r;
}
