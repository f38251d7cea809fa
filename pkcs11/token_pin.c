/*
 * token_pin.c: the PIN file (see token_int.h).  The PIN lives in memory
 * from hk_secmem_alloc() (locked, not in core dumps) only until C_Login;
 * token_pin_free() zeroes it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "hk_err.h"
#include "log.h"
#include "secmem.h"
#include "token_int.h"

#define PIN_MAX	 256	       /* bytes in a PIN file */
#define PIN_SIZE (PIN_MAX + 1) /* what token_pin_read() allocates */
#define PIN_NEW	 16	       /* random bytes in a new PIN */

/*
 * Why a PIN file that fstat() describes is refused, or NULL if it is
 * fine: a regular file that only its owner (hsmkeyd's user, or root) may
 * read or write.
 */
static const char *
pin_refusal(const struct stat *st)
{
	if (!S_ISREG(st->st_mode)) {
		return "is not a regular file";
	}
	if ((st->st_mode & 077) != 0) {
		return "is open to group or others "
		       "(chmod 600 it)";
	}
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		return "belongs to another user (chown it to hsmkeyd's user)";
	}
	return NULL;
}

/*
 * Opens path for reading: never through a symbolic link (O_NOFOLLOW), and
 * the checks are made on the opened file (fstat), so nothing can be
 * swapped in between.  Every refusal is one line naming the file.
 */
static int
pin_open(const char *path, int *fdp)
{
	struct stat st;
	const char *why;
	int	    fd = -1, r = HK_ERR_PIN;

	*fdp = -1;
	if (path == NULL || *path == '\0') {
		log_error("no PIN file configured");
		goto out;
	}
	fd = open(
	    path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1 && errno == ELOOP) {
		log_error("PIN file %s is a symbolic link: refused (name the "
			  "file itself)",
		    path);
		goto out;
	}
	if (fd == -1) {
		log_warn("PIN file %s", path);
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("fstat %s", path);
		goto out;
	}
	if ((why = pin_refusal(&st)) != NULL) {
		log_error("PIN file %s (mode %04o, uid %u) %s: refused", path,
		    (unsigned int)(st.st_mode & 07777),
		    (unsigned int)st.st_uid, why);
		goto out;
	}
	/* success */
	*fdp = fd;
	fd = -1;
	r = 0;
out:
	if (fd != -1) {
		close(fd);
	}
	return r;
}

/* PIN_SIZE bytes of locked memory for a PIN; NULL when out of memory. */
static char *
pin_alloc(void)
{
	char *pin;
	int   locked;

	if ((pin = hk_secmem_alloc_locked(PIN_SIZE, &locked)) == NULL) {
		log_warn("PIN memory");
		return NULL;
	}
	if (!locked) {
		/* XXX RLIMIT_MEMLOCK may be 0 in containers: warn, go on */
		log_warn("mlock or MADV_DONTDUMP of the PIN page");
	}
	return pin;
}

/* Reads all of fd into pin (PIN_SIZE bytes); HK_ERR_PIN past PIN_MAX. */
static int
pin_fill(int fd, const char *path, char *pin, size_t *lenp)
{
	size_t	len = 0;
	ssize_t n;

	*lenp = 0;
	for (;;) {
		n = read(fd, pin + len, PIN_SIZE - len);
		if (n == -1 && errno == EINTR) {
			continue;
		}
		if (n == -1) {
			log_warn("read %s", path);
			return HK_ERR_PIN;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
		if (len > PIN_MAX) {
			log_warnx("PIN file %s is longer than %d bytes", path,
			    PIN_MAX);
			return HK_ERR_PIN;
		}
	}
	*lenp = len;
	return 0;
}

int
token_pin_read(const char *path, char **pinp, size_t *lenp)
{
	char  *pin = NULL;
	size_t len = 0;
	int    r = HK_ERR_INTERNAL, fd = -1;

	*pinp = NULL;
	*lenp = 0;
	if ((r = pin_open(path, &fd)) != 0) {
		goto out;
	}
	if ((pin = pin_alloc()) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	if ((r = pin_fill(fd, path, pin, &len)) != 0) {
		goto out;
	}
	if (len > 0 && pin[len - 1] == '\n') {
		pin[--len] = '\0';
	}
	if (len == 0) {
		log_warnx("PIN file %s is empty", path);
		r = HK_ERR_PIN;
		goto out;
	}
	/* success */
	*pinp = pin;
	*lenp = len;
	pin = NULL;
	r = 0;
out:
	token_pin_free(pin);
	if (fd != -1) {
		close(fd);
	}
	return r;
}

void
token_pin_free(char *pin)
{
	hk_secmem_free(pin, PIN_SIZE);
}

int
token_pin_new(char **pinp, size_t *lenp)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	  raw[PIN_NEW];
	char		 *pin = NULL;
	size_t		  i;
	int		  r = HK_ERR_INTERNAL;

	*pinp = NULL;
	*lenp = 0;
	if ((pin = pin_alloc()) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	if (RAND_priv_bytes(raw, sizeof(raw)) != 1) {
		log_warnx("no random bytes for a new PIN (OpenSSL RAND)");
		r = HK_ERR_INTERNAL;
		goto out;
	}
	for (i = 0; i < sizeof(raw); i++) {
		pin[2 * i] = hex[raw[i] >> 4];
		pin[2 * i + 1] = hex[raw[i] & 0xf];
	}
	/* success */
	*pinp = pin;
	*lenp = 2 * sizeof(raw);
	pin = NULL;
	r = 0;
out:
	explicit_bzero(raw, sizeof(raw));
	token_pin_free(pin);
	return r;
}

/* Writes all of buf to fd. */
static int
pin_put(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
token_pin_write(const char *path, const char *pin, size_t len)
{
	int fd, r = HK_ERR_SYSTEM;

	fd = open(path,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	    0600);
	if (fd == -1) {
		log_warn("cannot create PIN file %s", path);
		return errno == EEXIST ? HK_ERR_EXISTS : HK_ERR_SYSTEM;
	}
	/* the umask can only take bits away; make sure of 0600 anyway */
	if (fchmod(fd, 0600) == -1 || pin_put(fd, pin, len) != 0 ||
	    pin_put(fd, "\n", 1) != 0 || fsync(fd) == -1) {
		log_warn("cannot write PIN file %s", path);
		goto out;
	}
	r = 0;
out:
	if (close(fd) == -1 && r == 0) {
		log_warn("cannot write PIN file %s", path);
		r = HK_ERR_SYSTEM;
	}
	if (r != 0) {
		(void)unlink(path);
	}
	return r;
}
