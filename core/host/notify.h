/* Tells the service manager (systemd, Type=notify) what o2c serve is doing:
 * READY=1 once it listens, RELOADING=1 then READY=1 around a SIGHUP reload,
 * STOPPING=1 when it starts shutting down.  Through sd_notify when built
 * with libsystemd (O2C_HAVE_SYSTEMD), which does nothing unless
 * $NOTIFY_SOCKET is set; without libsystemd every call is a no-op. */
#ifndef O2C_HOST_NOTIFY_H
#define O2C_HOST_NOTIFY_H

/* STATUS is a one-line human text shown by `systemctl status`, or NULL. */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);

#endif
