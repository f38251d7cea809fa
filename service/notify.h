/*
 * notify.h: telling whoever started hsmkeyd that it serves.  Under a
 * service manager that is systemd's Type=notify protocol (sd_notify(3)):
 * each call sends one state to $NOTIFY_SOCKET when the manager set it;
 * without it, or in a build without libsystemd (meson -Dsystemd=disabled),
 * that part is a no-op.  Without --foreground it is the daemonising
 * parent, which waits until the service is ready and exits 0, or exits
 * with the status of a start that failed.  Called by the main thread only.
 */
#ifndef HK_NOTIFY_H
#define HK_NOTIFY_H

/* Forks; the parent waits for notify_ready() and exits 0, or for the
 * child's exit and exits with its status.  0 in the child (setsid, cwd /),
 * HK_ERR_SYSTEM if the fork failed.  Before any thread and any token. */
int notify_daemonise(void);
/* Every listener is bound and every worker is serving: READY=1, and the
 * daemonising parent exits 0 (stdin, stdout and stderr become /dev/null). */
void notify_ready(void);
/* STOPPING=1: the service stops; sent before the workers finish. */
void notify_stopping(void);

#endif /* HK_NOTIFY_H */
