/* client_testlib.c: helpers of the client unit tests (client_testlib.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client_testlib.h"
#include "testutil.h"

const uint8_t secret[32] = {
	1,
	2,
	3,
	4,
	5,
	6,
	7,
	8,
	9,
	10,
	11,
	12,
	13,
	14,
	15,
	16,
	17,
	18,
	19,
	20,
	21,
	22,
	23,
	24,
	25,
	26,
	27,
	28,
	29,
	30,
	31,
	32,
};

char tmpdir[256];

const char *
tmpfile_with(const char *name, const char *content)
{
	static char path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	TRUE((f = fopen(path, "w")) != NULL);
	fputs(content, f);
	fclose(f);
	chmod(path, 0600);
	return path;
}

long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs the CLI with stdout to outpath (NULL: silenced) and stderr silenced;
 * returns its exit code.
 */
static int
vrun_cli(const char *outpath, const char *a0, va_list ap)
{
	const char *argv[32];
	int	    argc = 0, r, out, err, null, fd;

	argv[argc++] = "hsmkey";
	for (argv[argc] = a0; argv[argc] != NULL && argc < 30;
	     argv[argc] = va_arg(ap, const char *)) {
		argc++;
	}
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	err = dup(2);
	null = open("/dev/null", O_WRONLY);
	fd = outpath != NULL
	    ? open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)
	    : null;
	TRUE(fd >= 0);
	dup2(fd, 1);
	dup2(null, 2);
	r = cli_run(argc, (char **)argv);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	if (fd != null) {
		close(fd);
	}
	return r;
}

int
run_cli(const char *a0, ...)
{
	va_list ap;
	int	r;

	va_start(ap, a0);
	r = vrun_cli(NULL, a0, ap);
	va_end(ap);
	return r;
}

/* Runs the CLI and returns its stdout in *outp (caller frees). */
int
run_cli_out(char **outp, const char *a0, ...)
{
	char	path[512];
	va_list ap;
	FILE   *f;
	long	len;
	int	r;

	snprintf(path, sizeof(path), "%s/cli.out", tmpdir);
	va_start(ap, a0);
	r = vrun_cli(path, a0, ap);
	va_end(ap);
	TRUE((f = fopen(path, "r")) != NULL);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	*outp = calloc(1, (size_t)len + 1);
	TRUE(fread(*outp, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	return r;
}

void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hsmkey-client-test.XXXXXX");
	TRUE(mkdtemp(tmpdir) != NULL);
}

void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	TRUE(system(cmd) == 0);
}
