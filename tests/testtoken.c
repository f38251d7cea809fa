/* testtoken.c: throw-away SoftHSM tokens for unit tests (see testtoken.h). */
#define _GNU_SOURCE /* nftw */

#include <sys/stat.h>
#include <sys/types.h>
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

#include "testtoken.h"
#include "testutil.h"

extern char **environ;

static char dir[PATH_MAX];
static char pinfile[PATH_MAX];

const char *
testtoken_dir(void)
{
	return dir;
}

const char *
testtoken_pinfile(void)
{
	return pinfile;
}

void
testtoken_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	TRUE(n > 0 && (size_t)n < len);
}

void
testtoken_write(const char *path, const char *text, mode_t mode)
{
	FILE *f;
	int   fd;

	TRUE((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) != -1);
	TRUE((f = fdopen(fd, "w")) != NULL);
	TRUE(fputs(text, f) >= 0);
	TRUE(fclose(f) == 0);
}

int
testtoken_run(char *const argv[], const char *outfile)
{
	posix_spawn_file_actions_t fa;
	pid_t			   pid;
	int			   st, e;

	TRUE(posix_spawn_file_actions_init(&fa) == 0);
	TRUE(posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO,
		 outfile ? outfile : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
		 0600) == 0);
	if ((e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		fprintf(stderr, "spawn %s: %s\n", argv[0], strerror(e));
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, 0) == -1) {
		TRUE(errno == EINTR);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * Removes the dir at exit.  No PKCS#11 call may run from here: SoftHSM's
 * C++ static destructors, registered after this handler, have already run.
 */
static void
remove_dir(void)
{
	if (dir[0] != '\0' && getenv("HK_TEST_KEEP") == NULL) {
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
}

void
testtoken_setup(const char *const *labels)
{
	char	    conf[PATH_MAX], toks[PATH_MAX], text[3 * PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	char  *init[] = { "softhsm2-util", "--init-token", "--free", "--label",
		 NULL, "--so-pin", TESTTOKEN_SO_PIN, "--pin", TESTTOKEN_PIN,
		 NULL };
	size_t i;

	if (dir[0] != '\0') {
		return;
	}
	snprintf(dir, sizeof(dir), "%s/hk-test.XXXXXX", tmp ? tmp : "/tmp");
	TRUE(mkdtemp(dir) != NULL);
	atexit(remove_dir);
	testtoken_path(conf, sizeof(conf), "softhsm2.conf");
	testtoken_path(toks, sizeof(toks), "tokens");
	testtoken_path(pinfile, sizeof(pinfile), "pin");
	TRUE(mkdir(toks, 0700) == 0);
	snprintf(text, sizeof(text),
	    "directories.tokendir = %s\n"
	    "objectstore.backend = file\nlog.level = ERROR\n",
	    toks);
	testtoken_write(conf, text, 0600);
	TRUE(setenv("SOFTHSM2_CONF", conf, 1) == 0);
	for (i = 0; labels[i] != NULL; i++) {
		init[4] = (char *)labels[i];
		EQ_INT(testtoken_run(init, NULL), 0);
	}
	testtoken_write(pinfile, TESTTOKEN_PIN "\n", 0600);
}
