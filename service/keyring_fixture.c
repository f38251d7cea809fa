/* keyring_fixture.c: the unit tests' SoftHSM token (see
 * keyring_fixture.h). */
#define _GNU_SOURCE /* nftw */

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyring_fixture.h"
#include "testutil.h"

#ifndef SOFTHSM_MODULE
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define FIX_SO_PIN "12345678" /* throw-away test token only */
#define FIX_PIN	   "87654321"

extern char **environ;

static char		     fixdir[PATH_MAX];
static struct token	    *fixtok;
static struct token_session *fixsess;

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* No PKCS#11 call from here: SoftHSM's destructors may have run. */
static void
fixture_remove(void)
{
	if (fixdir[0] != '\0' && getenv("HK_TEST_KEEP") == NULL) {
		nftw(fixdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* Writes text to dir/name (mode 0600); path gets the file's path. */
static void
put_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	TRUE(snprintf(path, len, "%s/%s", fixdir, name) < (int)len);
	TRUE((f = fopen(path, "w")) != NULL);
	TRUE(fchmod(fileno(f), 0600) == 0);
	TRUE(fputs(text, f) >= 0);
	TRUE(fclose(f) == 0);
}

/* softhsm2-util --init-token, its output to /dev/null. */
static void
init_token(void)
{
	char *argv[] = { "softhsm2-util", "--init-token", "--free", "--label",
		"hkunit", "--so-pin", FIX_SO_PIN, "--pin", FIX_PIN, NULL };
	posix_spawn_file_actions_t fa;
	pid_t			   pid;
	int			   st;

	TRUE(posix_spawn_file_actions_init(&fa) == 0);
	TRUE(posix_spawn_file_actions_addopen(
		 &fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0) == 0);
	TRUE(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0);
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, 0) == -1) {
		TRUE(errno == EINTR);
	}
	TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
fixture_open(void)
{
	const char *tmp = getenv("TMPDIR");
	char	    conf[PATH_MAX], pin[PATH_MAX], toks[PATH_MAX];
	char	    text[PATH_MAX + 128];

	if (fixtok != NULL) {
		return;
	}
	snprintf(fixdir, sizeof(fixdir), "%s/hk-unit.XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	TRUE(mkdtemp(fixdir) != NULL);
	atexit(fixture_remove);
	TRUE(snprintf(toks, sizeof(toks), "%s/tokens", fixdir) <
	    (int)sizeof(toks));
	TRUE(mkdir(toks, 0700) == 0);
	snprintf(text, sizeof(text),
	    "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\n",
	    toks);
	put_file("softhsm2.conf", text, conf, sizeof(conf));
	TRUE(setenv("SOFTHSM2_CONF", conf, 1) == 0);
	init_token();
	put_file("pin", FIX_PIN "\n", pin, sizeof(pin));
	PASS(token_open(&fixtok, SOFTHSM_MODULE, "pkcs11:token=hkunit", pin));
	PASS(token_session_open(fixtok, &fixsess));
}

struct token *
fixture_token(void)
{
	fixture_open();
	return fixtok;
}

struct token_session *
fixture_session(void)
{
	fixture_open();
	return fixsess;
}

void
fixture_objects(struct token_object **objsp, size_t *np)
{
	PASS(token_list_all(fixture_session(), "hsmkey", 100000, objsp, np));
}

long
fixture_dead_pid(void)
{
	pid_t pid;
	int   st;

	TRUE((pid = fork()) != -1);
	if (pid == 0) {
		_exit(0);
	}
	TRUE(waitpid(pid, &st, 0) == pid);
	return (long)pid;
}

void
fixture_close(void)
{
	token_session_close(fixsess);
	fixsess = NULL;
	token_close(fixtok);
	fixtok = NULL;
}
