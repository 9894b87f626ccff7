/* Hot reload: watches every folder under scripts/ and kb/ (uv_fs_event, one
 * per folder, new folders picked up after each reload), debounces bursts of
 * changes, builds the next generation on the thread pool and swaps it in on
 * the loop when it validates.  When it does not, the last good generation
 * keeps serving and the errors are kept for /api/v1/status. */
#ifndef O2C_HOST_RELOAD_H
#define O2C_HOST_RELOAD_H
#include <stdint.h>
#include <uv.h>
#include "host/config.h"
#include "host/generation.h"

/* Loads the first generation synchronously, then starts watching. */
void reload_start(uv_loop_t *loop, const struct config *cfg);
/* Schedules a reload (debounced); WHY is logged.  The service manager is
 * told RELOADING=1 now and READY=1 when the reload is over (host/notify.h). */
void reload_now(const char *why);
/* Stops watching; a build in flight is dropped when it finishes. */
void reload_stop(void);

struct reload_status {
    const struct gen_errors *errors; /* of the last failed attempt, or empty */
    uint64_t loads, failures;
    double last_ms; /* time the last build took */
};
void reload_get_status(struct reload_status *out);

/* Called on the loop after every swap, e.g. to audit the change. */
typedef void (*reload_listener_fn)(struct generation *g, void *ud);
void reload_set_listener(reload_listener_fn fn, void *ud);

#endif
