/*
 * bench_proc.c: the processes hsmkey-bench starts (hsmkeyd, its own echo
 * server), their start-up time and memory, and the echo server itself.
 *
 * Every child is recorded here and killed by PID on exit
 * (bench_kill_all); its PID is also written to DIR/<name>.pid so that the
 * wrapper script's EXIT trap can kill it if this program dies first.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "nnmsg.h"

#include "bench.h"

extern char **environ;

#define MAXCHILD 16
static pid_t children[MAXCHILD];
static int   nchildren;
static int   nstarts;

static void
child_add(pid_t pid)
{
	if (nchildren < MAXCHILD) {
		children[nchildren++] = pid;
	}
}

static void
child_forget(pid_t pid)
{
	int i;

	for (i = 0; i < nchildren; i++) {
		if (children[i] == pid) {
			children[i] = children[--nchildren];
			return;
		}
	}
}

void
bench_kill_all(void)
{
	int i;

	for (i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	nchildren = 0;
}

/* 1 if the file contains needle (a line of it, read line by line: a
 * daemon that logs a lot before "ready" is read to the end). */
static int
file_has(const char *path, const char *needle)
{
	char  line[4096];
	int   found = 0;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		return 0;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		found = strstr(line, needle) != NULL;
	}
	fclose(f);
	return found;
}

/* Spawns argv with stdin /dev/null, stdout+stderr to d->log and the
 * environment envp (NULL: ours), and waits until the log says "ready"
 * (at most wait_s seconds). */
static int
spawn_ready(struct bench_daemon *d, char *const *argv, const char *dir,
    const char *name, char *const *envp, double wait_s)
{
	posix_spawn_file_actions_t fa;
	char			   pidfile[600];
	struct timespec		   ts = { 0, 2 * 1000 * 1000 };
	double			   t0, deadline;
	int			   st, e;
	FILE			  *f;

	d->pid = -1;
	nstarts++;
	snprintf(d->log, sizeof(d->log), "%s/%s.%d.log", dir, name, nstarts);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(
	    &fa, 2, d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	t0 = bench_now();
	e = posix_spawn(
	    &d->pid, argv[0], &fa, NULL, argv, envp != NULL ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0) {
		fprintf(stderr, "bench: cannot start %s: %s\n", argv[0],
		    strerror(e));
		d->pid = -1;
		return -1;
	}
	child_add(d->pid);
	snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", dir, name);
	if ((f = fopen(pidfile, "w")) != NULL) {
		fprintf(f, "%ld\n", (long)d->pid);
		fclose(f);
	}
	deadline = t0 + wait_s;
	while (bench_now() < deadline) {
		if (file_has(d->log, "ready")) {
			d->startup_s = bench_now() - t0;
			return 0;
		}
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr,
			    "bench: %s exited before it was ready "
			    "(status %d); its log %s says:\n",
			    name, st, d->log);
			child_forget(d->pid);
			d->pid = -1;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "bench: %s not ready after %.0f s (log %s)\n", name,
	    wait_s, d->log);
	return -1;
}

char **
bench_env_with(const char *name, const char *value, char **madep)
{
	char **envp;
	size_t n = 0, i, j = 0, nlen = strlen(name);
	size_t len = nlen + strlen(value) + 2;

	*madep = NULL;
	while (environ[n] != NULL) {
		n++;
	}
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL ||
	    (*madep = malloc(len)) == NULL) {
		free(envp);
		return NULL;
	}
	snprintf(*madep, len, "%s=%s", name, value);
	for (i = 0; i < n; i++) {
		if (strncmp(environ[i], name, nlen) != 0 ||
		    environ[i][nlen] != '=') {
			envp[j++] = environ[i];
		}
	}
	envp[j++] = *madep;
	envp[j] = NULL;
	return envp;
}

int
bench_daemon_start(struct bench_daemon *d, const char *hsmkeyd,
    const char *conf, const char *dir)
{
	char *argv[] = { (char *)hsmkeyd, "--config", (char *)conf,
		"--foreground", NULL };

	return spawn_ready(d, argv, dir, "hsmkeyd", NULL, 60);
}

int
bench_daemon_start_env(struct bench_daemon *d, const char *hsmkeyd,
    const char *conf, const char *dir, const char *name, char *const *envp,
    double wait_s)
{
	char *argv[] = { (char *)hsmkeyd, "--config", (char *)conf,
		"--foreground", NULL };

	return spawn_ready(d, argv, dir, name, envp, wait_s);
}

int
bench_echo_start(struct bench_daemon *d, const char *self, const char *dir,
    char *const *urls)
{
	char *argv[8];
	int   i, n = 0;

	argv[n++] = (char *)self;
	argv[n++] = "--echo-server";
	for (i = 0; urls[i] != NULL && n < 7; i++) {
		argv[n++] = urls[i];
	}
	argv[n] = NULL;
	return spawn_ready(d, argv, dir, "echo", NULL, 60);
}

int
bench_daemon_stop(struct bench_daemon *d)
{
	double		deadline;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int		st;

	if (d->pid <= 0) {
		return -1;
	}
	kill(d->pid, SIGTERM);
	deadline = bench_now() + 15;
	while (bench_now() < deadline) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			child_forget(d->pid);
			d->pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + WTERMSIG(st);
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "bench: pid %ld ignored SIGTERM for 15 s: killed\n",
	    (long)d->pid);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	child_forget(d->pid);
	d->pid = -1;
	return -1;
}

int
bench_rss(pid_t pid, long *hwm_kib, long *rss_kib)
{
	char  path[64], line[256];
	FILE *f;

	*hwm_kib = *rss_kib = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			*hwm_kib = strtol(line + 6, NULL, 10);
		} else if (strncmp(line, "VmRSS:", 6) == 0) {
			*rss_kib = strtol(line + 6, NULL, 10);
		}
	}
	fclose(f);
	return *hwm_kib >= 0 && *rss_kib >= 0 ? 0 : -1;
}

/* ---- the echo server ---------------------------------------------------
 *
 * The transport alone, built the way hsmkeyd's transport is: one
 * AF_SP_RAW NN_REP socket bound to every endpoint, two threads (hsmkeyd's
 * workers = 2) that receive a message with its routing header and send
 * the same bytes back.
 */

static int echo_sock = -1;

static void *
echo_worker(void *arg)
{
	struct nn_msghdr hdr;
	struct nn_iovec	 iov;
	void		*body, *control;
	int		 n;

	(void)arg;
	for (;;) {
		body = control = NULL;
		nnmsg_hdr(&hdr, &iov, &body, &control);
		if ((n = nn_recvmsg(echo_sock, &hdr, 0)) < 0) {
			if (nn_errno() == EBADF || nn_errno() == ETERM) {
				return NULL;
			}
			continue;
		}
		/* send the received chunk back: nanomsg takes both chunks */
		iov.iov_base = &body;
		iov.iov_len = NN_MSG;
		hdr.msg_control = &control;
		hdr.msg_controllen = NN_MSG;
		if (nn_sendmsg(echo_sock, &hdr, 0) < 0) {
			nn_freemsg(body);
			nn_freemsg(control);
		}
	}
}

int
bench_echo_main(int argc, char **argv)
{
	pthread_t th[2];
	int	  i, maxsz = 1024 * 1024 + 4096;

	if ((echo_sock = nn_socket(AF_SP_RAW, NN_REP)) < 0 ||
	    nn_setsockopt(echo_sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
		sizeof(maxsz)) < 0) {
		fprintf(
		    stderr, "echo: nn_socket: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "ipc://", 6) == 0) {
			unlink(argv[i] + 6);
		}
		if (nn_bind(echo_sock, argv[i]) < 0) {
			fprintf(stderr, "echo: bind %s: %s\n", argv[i],
			    nn_strerror(nn_errno()));
			return 1;
		}
	}
	for (i = 0; i < 2; i++) {
		if (pthread_create(&th[i], NULL, echo_worker, NULL) != 0) {
			fprintf(stderr, "echo: pthread_create failed\n");
			return 1;
		}
	}
	fprintf(stderr, "echo server ready\n");
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
	}
	return 0;
}
