/*
 * ptrace_probe.c: can this process attach to PID with ptrace?
 *
 *   ptrace_probe PID
 *
 * Exits 0 if PTRACE_ATTACH worked (it detaches at once), 1 if it was
 * refused (EPERM), 2 on any other error.  tests/test_auth.sh runs it as an
 * unprivileged user against hsmkeyd running as that same user (refused
 * only because the daemon made itself non-dumpable) and against a control
 * process of that user (attach works), so the check can fail.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

int
main(int argc, char **argv)
{
	pid_t pid;
	char *end;
	long  v;

	if (argc != 2) {
		fprintf(stderr, "usage: ptrace_probe PID\n");
		return 2;
	}
	v = strtol(argv[1], &end, 10);
	if (*end != '\0' || v <= 0) {
		return 2;
	}
	pid = (pid_t)v;
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0) {
		printf("attach %ld: %s\n", v, strerror(errno));
		return errno == EPERM ? 1 : 2;
	}
	(void)waitpid(pid, NULL, __WALL);
	(void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
	printf("attach %ld: attached\n", v);
	return 0;
}
