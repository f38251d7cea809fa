/* store.c: records in CKO_DATA objects (see store.h). */
#include <stdlib.h>

#include "codec.h"
#include "hk_err.h"
#include "log.h"
#include "store.h"

int
store_replace(struct token_session *s, const char *label,
    const ProtobufCMessage *m, token_obj_t *metap)
{
	uint8_t	   *buf = NULL;
	size_t	    len;
	token_obj_t obj;
	int	    r;

	if ((r = hk_encode(m, &buf, &len)) != 0) {
		return r;
	}
	if ((r = token_data_create(s, label, buf, len, &obj)) != 0) {
		log_err_r(r, "cannot write record %s", label);
		free(buf);
		return r;
	}
	free(buf);
	if (*metap != TOKEN_OBJ_NONE && (r = token_destroy(s, *metap)) != 0 &&
	    r != HK_ERR_NOT_FOUND) {
		/* two records: the next start keeps the newer one */
		log_err_r(r, "cannot remove the old record %s", label);
	}
	*metap = obj;
	return 0;
}
