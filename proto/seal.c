/* seal.c: request and reply envelopes, sealed and opened (see seal.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "codec.h"
#include "hk_err.h"
#include "seal.h"
#include "wire.h"

int
hk_seal_request(const uint8_t	  daykey[HK_MAC_LEN],
    const struct hk_request_head *head, const uint8_t *req, size_t req_len,
    uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Envelope env = HSMKEY__V1__ENVELOPE__INIT;
	uint8_t		     mac[HK_MAC_LEN];
	int		     r;

	*outp = NULL;
	*lenp = 0;
	if (req_len > HK_MAX_MESSAGE) {
		return HK_ERR_TOO_LARGE;
	}
	if ((r = hk_mac_request(daykey, HK_PROTOCOL_VERSION, head->client_id,
		 head->secret_no, head->nonce, HK_NONCE_LEN,
		 head->timestamp_ms, req, req_len, mac)) != 0) {
		return r;
	}
	env.protocol = HK_PROTOCOL_VERSION;
	env.client_id = (char *)head->client_id;
	env.secret_no = head->secret_no;
	env.nonce.data = (uint8_t *)head->nonce;
	env.nonce.len = HK_NONCE_LEN;
	env.timestamp_ms = head->timestamp_ms;
	env.request.data = (uint8_t *)req;
	env.request.len = req_len;
	env.mac.data = mac;
	env.mac.len = sizeof(mac);
	return hk_encode(&env.base, outp, lenp);
}

/* What is wrong with a decoded envelope's shape, or NULL. */
static const char *
request_shape(const Hsmkey__V1__Envelope *env, int *rp)
{
	if (env->protocol != HK_PROTOCOL_VERSION) {
		*rp = HK_ERR_PROTOCOL;
		return "unsupported protocol version: this service speaks 1";
	}
	if (!hk_valid_client_id(env->client_id)) {
		*rp = HK_ERR_INVALID;
		return "invalid client id in the envelope";
	}
	if (env->nonce.len != HK_NONCE_LEN) {
		*rp = HK_ERR_INVALID;
		return "the envelope's nonce must be 16 bytes";
	}
	if (env->mac.len != HK_MAC_LEN) {
		*rp = HK_ERR_UNAUTHENTICATED;
		return "the envelope's MAC must be 32 bytes";
	}
	return NULL;
}

int
hk_envelope_precheck(const uint8_t *msg, size_t len)
{
	const ProtobufCFieldDescriptor *request;
	struct hk_pb_field		f;
	size_t				off = 0, n = 0, req_len = 0;
	int				r;

	request = protobuf_c_message_descriptor_get_field_by_name(
	    &hsmkey__v1__envelope__descriptor, "request");
	if (request == NULL) {
		return HK_ERR_INTERNAL;
	}
	while (off < len) {
		if (++n > HK_ENVELOPE_FIELDS) {
			return HK_ERR_TOO_LARGE;
		}
		if ((r = hk_pb_next(msg, len, &off, &f)) != 0) {
			return r;
		}
		if (f.number == request->id && f.wire_type == 2) {
			req_len = f.len;
		}
	}
	/* req_len <= len: it lies inside msg */
	if (len - req_len > HK_ENVELOPE_OVERHEAD) {
		return HK_ERR_TOO_LARGE;
	}
	return 0;
}

int
hk_open_request(const uint8_t *msg, size_t len, Hsmkey__V1__Envelope **envp,
    const char **whyp)
{
	Hsmkey__V1__Envelope *env = NULL;
	int		      r;

	*envp = NULL;
	*whyp = NULL;
	if (hk_envelope_precheck(msg, len) != 0 ||
	    (r = hk_decode_strict(&hsmkey__v1__envelope__descriptor, msg, len,
		 (ProtobufCMessage **)&env)) != 0) {
		*whyp = "malformed request envelope";
		return HK_ERR_DECODE;
	}
	*envp = env;
	if ((*whyp = request_shape(env, &r)) != NULL) {
		return r;
	}
	return 0;
}

void
hk_envelope_free(Hsmkey__V1__Envelope *env)
{
	if (env != NULL) {
		protobuf_c_message_free_unpacked(&env->base, NULL);
	}
}

int
hk_check_request(
    const Hsmkey__V1__Envelope *env, const uint8_t daykey[HK_MAC_LEN])
{
	uint8_t mac[HK_MAC_LEN];
	int	r;

	if (env->mac.len != HK_MAC_LEN) {
		return HK_ERR_MAC;
	}
	if ((r = hk_mac_request(daykey, env->protocol, env->client_id,
		 env->secret_no, env->nonce.data, env->nonce.len,
		 env->timestamp_ms, env->request.data, env->request.len,
		 mac)) == 0) {
		r = hk_mac_cmp(mac, env->mac.data, HK_MAC_LEN);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

int
hk_seal_response(const uint8_t *daykey, uint32_t secret_no,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__ResponseEnvelope re = HSMKEY__V1__RESPONSE_ENVELOPE__INIT;
	uint8_t			     mac[HK_MAC_LEN];
	int			     r;

	*outp = NULL;
	*lenp = 0;
	if (daykey != NULL) {
		if ((r = hk_mac_response(daykey, HK_PROTOCOL_VERSION, nonce,
			 nonce_len, resp, resp_len, secret_no, mac)) != 0) {
			return r;
		}
		re.mac.data = mac;
		re.mac.len = HK_MAC_LEN;
		re.secret_no = secret_no;
	}
	re.protocol = HK_PROTOCOL_VERSION;
	re.nonce.data = (uint8_t *)nonce;
	re.nonce.len = nonce_len;
	re.response.data = (uint8_t *)resp;
	re.response.len = resp_len;
	return hk_encode(&re.base, outp, lenp);
}

int
hk_open_response(const uint8_t daykey[HK_MAC_LEN],
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t *msg, size_t len,
    struct hk_opened_reply *o, const char **whyp)
{
	Hsmkey__V1__ResponseEnvelope *re;
	uint8_t			      mac[HK_MAC_LEN];
	int			      r;

	memset(o, 0, sizeof(*o));
	*whyp = NULL;
	if (len > HK_MAX_MESSAGE + 4096 ||
	    (re = hsmkey__v1__response_envelope__unpack(NULL, len, msg)) ==
		NULL) {
		*whyp = "malformed reply";
		return HK_ERR_DECODE;
	}
	o->renv = re;
	if (re->protocol != HK_PROTOCOL_VERSION) {
		*whyp = "the reply speaks another protocol version";
		return HK_ERR_PROTOCOL;
	}
	if (re->nonce.len != HK_NONCE_LEN ||
	    CRYPTO_memcmp(re->nonce.data, nonce, HK_NONCE_LEN) != 0) {
		*whyp =
		    "the reply does not answer this request (nonce differs)";
		return HK_ERR_PROTOCOL;
	}
	if (re->response.len > HK_MAX_MESSAGE) {
		*whyp = "the reply is too large";
		return HK_ERR_PROTOCOL;
	}
	o->resp = re->response.data;
	o->resp_len = re->response.len;
	if (re->mac.len == 0) {
		return 0; /* unauthenticated: the caller trusts its status only */
	}
	if ((r = hk_mac_response(daykey, HK_PROTOCOL_VERSION, nonce,
		 HK_NONCE_LEN, re->response.data, re->response.len,
		 re->secret_no, mac)) != 0) {
		return r;
	}
	if (re->mac.len != HK_MAC_LEN ||
	    hk_mac_cmp(re->mac.data, mac, HK_MAC_LEN) != 0) {
		*whyp = "the reply's MAC does not verify";
		return HK_ERR_MAC;
	}
	o->maced = 1;
	o->secret_no = re->secret_no;
	return 0;
}

void
hk_opened_reply_free(struct hk_opened_reply *o)
{
	if (o->renv != NULL) {
		hsmkey__v1__response_envelope__free_unpacked(o->renv, NULL);
	}
	memset(o, 0, sizeof(*o));
}
