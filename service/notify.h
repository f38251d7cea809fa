/*
 * notify.h: the service manager's readiness protocol (systemd Type=notify,
 * sd_notify(3)).  Each call sends one state to $NOTIFY_SOCKET when the
 * service manager set it; without it, or in a build without libsystemd
 * (meson -Dsystemd=disabled), each is a no-op.  Any thread may call them.
 */
#ifndef HK_NOTIFY_H
#define HK_NOTIFY_H

/* READY=1: every listener is bound and every worker is serving. */
void notify_ready(void);
/* STOPPING=1: the service stops; sent before the workers finish. */
void notify_stopping(void);

#endif /* HK_NOTIFY_H */
