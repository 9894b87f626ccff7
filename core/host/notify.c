#include <stdio.h>
#include "host/log.h"
#include "host/notify.h"

#ifdef O2C_HAVE_SYSTEMD
#include <string.h>
#include <systemd/sd-daemon.h>

static void notify_send(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0) /* the service manager misses a state: say so once per call, never fatal */
        log_msg(LOG_WARN, "cannot notify the service manager", "state", state, "error",
                strerror(-rc), NULL);
}
#else
static void notify_send(const char *state)
{
    (void)state;
}
#endif

void notify_ready(const char *status)
{
    char state[512];
    if (status)
        snprintf(state, sizeof state, "READY=1\nSTATUS=%s", status);
    else
        snprintf(state, sizeof state, "READY=1");
    notify_send(state);
}

void notify_reloading(void)
{
    notify_send("RELOADING=1\nSTATUS=reloading scripts and KB");
}

void notify_stopping(void)
{
    notify_send("STOPPING=1\nSTATUS=shutting down");
}
