/* Scheduled backups for `o2c serve` (config: backup = { dir, every, keep }).
 *
 * A timer on the loop starts a copy every EVERY seconds; the copy
 * (backup_write, on its own SQLite connection) and the pruning of the oldest
 * run on the libuv thread pool, so the loop goes on serving meanwhile.  One
 * copy at a time: a tick that finds the previous one still running is
 * skipped.  Every outcome is logged; a failure never stops the server. */
#ifndef O2C_STORE_BACKUP_SCHEDULE_H
#define O2C_STORE_BACKUP_SCHEDULE_H
#include <stddef.h>
#include <uv.h>

struct backup_schedule;

/* Creates DIR (0700) when missing and starts the timer; the first backup is
 * taken EVERY_S after start.  NULL with the reason in ERR. */
struct backup_schedule *backup_schedule_start(uv_loop_t *loop, const char *db_file, const char *dir,
                                              double every_s, int keep, char *err, size_t cap);

/* Stops the timer; a copy on the pool finishes (its result is logged). */
void backup_schedule_stop(struct backup_schedule *s);

/* After the loop has run out.  NULL: nothing. */
void backup_schedule_free(struct backup_schedule *s);

#endif
