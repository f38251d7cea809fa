/*
 * notify.c: sd_notify() readiness (see notify.h).  The socket comes from
 * the service manager's environment, which libsystemd reads: a protocol,
 * not a switch of ours, so the shipped hsmkeyd has it.
 */
#include "log.h"
#include "notify.h"

#ifdef HK_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#include <string.h>

static void
notify(const char *state)
{
	int r;

	/* < 0: the socket is set but unusable; 0: no service manager */
	if ((r = sd_notify(0, state)) < 0) {
		log_warnx("sd_notify %s: %s", state, strerror(-r));
	}
}
#else
static void
notify(const char *state)
{
	(void)state;
}
#endif

void
notify_ready(void)
{
	notify("READY=1\nSTATUS=serving");
}

void
notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=stopping");
}
