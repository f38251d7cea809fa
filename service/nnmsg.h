/*
 * nnmsg.h: the nanomsg header of a zero-copy message with its routing
 * header (AF_SP_RAW sockets): for service/transport.c, and for the test
 * programs that move raw messages (resend_proxy, the benchmark's echo
 * service).
 */
#ifndef HK_NNMSG_H
#define HK_NNMSG_H

#include <string.h>

#include <nanomsg/nn.h>

/* Points hdr at *bodyp and *controlp, both NN_MSG chunks. */
static inline void
nnmsg_hdr(
    struct nn_msghdr *hdr, struct nn_iovec *iov, void **bodyp, void **controlp)
{
	memset(hdr, 0, sizeof(*hdr));
	iov->iov_base = bodyp;
	iov->iov_len = NN_MSG;
	hdr->msg_iov = iov;
	hdr->msg_iovlen = 1;
	hdr->msg_control = controlp;
	hdr->msg_controllen = NN_MSG;
}

#endif /* HK_NNMSG_H */
