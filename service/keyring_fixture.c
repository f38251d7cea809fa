/* keyring_fixture.c: the unit tests' SoftHSM token (see
 * keyring_fixture.h). */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
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

/* Runs argv (from PATH), its output to /dev/null; 1 if it exited 0. */
static int
spawn_ok(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t			   pid;
	int			   st, e;

	if (posix_spawn_file_actions_init(&fa) != 0) {
		return 0;
	}
	posix_spawn_file_actions_addopen(
	    &fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0) {
		return 0;
	}
	while (waitpid(pid, &st, 0) == -1) {
		if (errno != EINTR) {
			return 0;
		}
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* No PKCS#11 call from here: SoftHSM's destructors may have run. */
static void
fixture_remove(void)
{
	char *argv[] = { "rm", "-rf", "--", fixdir, NULL };

	if (fixdir[0] != '\0') {
		(void)spawn_ok(argv);
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

static void
fixture_open(void)
{
	char  conf[PATH_MAX], pin[PATH_MAX], toks[PATH_MAX];
	char  text[PATH_MAX + 128];
	char *init[] = { "softhsm2-util", "--init-token", "--free", "--label",
		"hkunit", "--so-pin", FIX_SO_PIN, "--pin", FIX_PIN, NULL };

	if (fixtok != NULL) {
		return;
	}
	snprintf(fixdir, sizeof(fixdir), "%s/hk-unit.XXXXXX", P_tmpdir);
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
	TRUE(spawn_ok(init));
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
