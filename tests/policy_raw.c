/*
 * policy_raw.c: one PolicyRequest made by hand (tests/rawproto.h), so that a
 * test can send a policy duration the CLI refuses to send.
 *
 *   policy_raw CREDFILE URL KEY FIELD SECONDS
 *
 * FIELD is sign_overlap, verify_grace or rotate_every.  Prints the reply's
 * status and message on one line ("INVALID_ARGUMENT the ...").  Exit 0 when
 * a reply with a valid MAC came back, 2 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"

static void
die(const char *what)
{
	fprintf(stderr, "policy_raw: %s\n", what);
	exit(2);
}

int
main(int argc, char **argv)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PolicyRequest pr = HSMKEY__V1__POLICY_REQUEST__INIT;
	Hsmkey__V1__U64Value	  val = HSMKEY__V1__U64_VALUE__INIT;
	struct rp_cred		  cred;
	struct rp_env		  e;
	struct rp_reply		  rep;
	uint8_t			 *b, *msg;
	size_t			  len, mlen;
	char			 *end;
	int			  sock;

	if (argc != 6) {
		die("usage: policy_raw CREDFILE URL KEY FIELD SECONDS");
	}
	errno = 0;
	val.value = strtoull(argv[5], &end, 10);
	if (errno != 0 || *end != '\0') {
		die("SECONDS is not a number");
	}
	pr.name = argv[3];
	if (strcmp(argv[4], "sign_overlap") == 0) {
		pr.sign_overlap_s = &val;
	} else if (strcmp(argv[4], "verify_grace") == 0) {
		pr.verify_grace_s = &val;
	} else if (strcmp(argv[4], "rotate_every") == 0) {
		pr.rotate_every_s = &val;
	} else {
		die("FIELD is sign_overlap, verify_grace or rotate_every");
	}
	req.op_case = HSMKEY__V1__REQUEST__OP_POLICY;
	req.policy = &pr;
	if (rp_cred_load(argv[1], &cred) != 0) {
		die("bad credentials file");
	}
	if ((sock = rp_connect(argv[2], 5000, 0)) < 0) {
		die("cannot connect");
	}
	rp_env_defaults(&e, &cred);
	if (rp_pack_request(&req, &b, &len) != 0 ||
	    rp_envelope(&e, b, len, &msg, &mlen) != 0) {
		die("cannot build the request");
	}
	if (rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &rep) != 0 ||
	    !rep.got || !rep.mac_ok) {
		die("no reply with a valid MAC");
	}
	printf("%s %s\n", rp_status_name(rep.status), rep.message);
	rp_reply_free(&rep);
	free(msg);
	free(b);
	rp_close(sock);
	rp_cred_clear(&cred);
	return 0;
}
