/* log.c: one-line event logging (see log.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "hk_err.h"
#include "log.h"

static const char *log_prog = "hsmkey";
static int	   log_syslog;
static int	   log_level = HK_LOG_INFO;

void
hk_log_init(const char *progname, int to_syslog, int level)
{
	log_prog = progname;
	log_syslog = to_syslog;
	log_level = level;
	if (to_syslog) {
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

void
hk_log_set_level(int level)
{
	log_level = level;
}

void
hk_log(
    int level, const char *func, int with_errno, int r, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	static const int   prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		  LOG_DEBUG };
	char		   msg[1024], line[1200], ts[32];
	int		   saved = errno, n;
	va_list		   ap;
	struct tm	   tm;
	time_t		   now;

	if (level > log_level || level < 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio[level], "%s%s%s%s%s", func ? func : "",
		    func ? ": " : "", msg, with_errno ? ": " : (r ? ": " : ""),
		    with_errno ? strerror(saved) : (r ? hk_strerror(r) : ""));
		errno = saved;
		return;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s %s[%ld] %s: %s%s%s%s%s\n", ts,
	    log_prog, (long)getpid(), names[level], func ? func : "",
	    func ? ": " : "", msg, with_errno ? ": " : (r ? ": " : ""),
	    with_errno ? strerror(saved) : (r ? hk_strerror(r) : ""));
	if (n > 0) {
		if ((size_t)n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		/* one write per line so that threads do not interleave */
		if (write(STDERR_FILENO, line, (size_t)n) < 0) {
			/* nowhere left to report it */
		}
	}
	errno = saved;
}
