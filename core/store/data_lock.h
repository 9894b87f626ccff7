/* The data folder's lock: DATA_DIR/o2c.lock, an flock(2) that the kernel
 * drops when the process ends, however it ends (no stale pid file).
 *
 * `o2c serve` holds it shared for as long as it runs (several servers may
 * share a data folder); `o2c db restore` needs it exclusive, so it cannot
 * replace the database under a running server, and a server cannot start
 * while a restore is under way. */
#ifndef O2C_STORE_DATA_LOCK_H
#define O2C_STORE_DATA_LOCK_H
#include <stddef.h>

#define DATA_LOCK_FILE "o2c.lock"

enum data_lock_mode { DATA_LOCK_SHARED, DATA_LOCK_EXCLUSIVE };

/* Takes the lock without waiting, creating DATA_DIR (0700) and the lock file
 * when missing.  STORE_OK with *FD set; STORE_BUSY when another process
 * holds it in a conflicting mode; STORE_ERROR with the reason in ERR. */
int data_lock_take(const char *data_dir, enum data_lock_mode mode, int *fd, char *err, size_t cap);

/* Releases a lock taken above (FD < 0: nothing). */
void data_lock_release(int fd);

#endif
