/*
 * credentials.h: the client credentials file (DESIGN.md): an INI file
 *
 *   [client]
 *   id = alice
 *   secret = <base64 of the raw secret>
 *   secret_no = 2          ; optional: 0 (none) when absent
 *   connect = ipc:///run/hsmkey/hsmkey.sock
 *
 * read with libinih.  The file is read into memory that is zeroed after
 * parsing.  Thread-safe (no shared state).
 */
#ifndef HK_CREDENTIALS_H
#define HK_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

#define HK_CREDENTIALS_MAX (64 * 1024) /* bytes in the file */
#define HK_SECRET_MIN	   16
#define HK_SECRET_MAX	   64

struct hk_credentials {
	char	 id[65];
	uint32_t secret_no; /* 0: the file names none */
	uint8_t *secret;    /* zeroed by hk_credentials_clear() */
	size_t	 secret_len;
	char	*connect; /* NULL when the file has none */
};

/*
 * Reads path into *c.  Returns 0, or HSMKEY_ECREDENTIALS (HSMKEY_ENOMEM)
 * with a one-line message in err.  Caller must hk_credentials_clear(c),
 * also after a failure.
 */
int hk_credentials_load(
    const char *path, struct hk_credentials *c, char *err, size_t errlen);
/* Zeroes and frees what c holds.  Accepts NULL. */
void hk_credentials_clear(struct hk_credentials *c);

/*
 * What identifies one version of a file for reload-on-change: device,
 * inode, size, modification and change times.  An editor that rewrites in
 * place, an atomic rename over the file and a symlink swap (Kubernetes
 * secret volumes) all change it.
 */
struct hk_file_sig {
	unsigned long long dev, ino, size;
	long long	   mtime_s, mtime_ns, ctime_s, ctime_ns;
};

/* stat(2) of path (following symlinks) into *sig; 0 or -1 (errno). */
int hk_file_sig_get(const char *path, struct hk_file_sig *sig);
/* 1 if a and b describe the same version of a file. */
int
hk_file_sig_equal(const struct hk_file_sig *a, const struct hk_file_sig *b);

#endif /* HK_CREDENTIALS_H */
