/*
 * notify.c: readiness (see notify.h).  NOTIFY_SOCKET comes from the
 * service manager's environment, which libsystemd reads: a protocol, not
 * a switch of ours, so the shipped hsmkeyd has it.
 *
 * Daemonising keeps stderr until the service is ready, so that a start
 * that fails (the PIN file, the PIN, the module, the token) says why on
 * the terminal and in the exit status of the command that started it,
 * instead of after a daemon(3) that has already exited 0.
 */
#define _GNU_SOURCE /* pipe2 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hk_err.h"
#include "log.h"
#include "notify.h"

#ifdef HK_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

static int parent_fd = -1; /* the daemonising parent's pipe, until ready */

static void
notify(const char *state)
{
#ifdef HK_HAVE_SYSTEMD
	int r;

	/* < 0: the socket is set but unusable; 0: no service manager */
	if ((r = sd_notify(0, state)) < 0) {
		log_warnx("sd_notify %s: %s", state, strerror(-r));
	}
#else
	(void)state;
#endif
}

/* The parent: exits 0 once the child says it is ready, else with the
 * status the child exited with. */
static void __attribute__((noreturn)) wait_for_child(pid_t pid, int fd)
{
	char	c;
	ssize_t n;
	int	st;

	while ((n = read(fd, &c, 1)) == -1 && errno == EINTR) {
		;
	}
	if (n == 1) {
		_exit(0);
	}
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR) {
		;
	}
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

int
notify_daemonise(void)
{
	pid_t pid;
	int   p[2];

	if (pipe2(p, O_CLOEXEC) != 0) {
		log_warn("pipe");
		return HK_ERR_SYSTEM;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(p[0]);
		close(p[1]);
		return HK_ERR_SYSTEM;
	}
	if (pid != 0) {
		close(p[1]);
		wait_for_child(pid, p[0]);
	}
	close(p[0]);
	if (setsid() == -1 || chdir("/") != 0) {
		log_warn("setsid");
		close(p[1]);
		return HK_ERR_SYSTEM;
	}
	parent_fd = p[1];
	return 0;
}

void
notify_ready(void)
{
	int fd;

	notify("READY=1\nSTATUS=serving");
	if (parent_fd == -1) {
		return;
	}
	/* the terminal is the parent's: let go of it, then let it go */
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO) {
			close(fd);
		}
	}
	/* the parent sees EOF and our exit status if this fails */
	while (write(parent_fd, "R", 1) == -1 && errno == EINTR) {
		;
	}
	close(parent_fd);
	parent_fd = -1;
}

void
notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=stopping");
}
