/* WAL checkpoints off the loop, for the server's connection (SQLite).
 *
 * SQLite's automatic checkpoint copies up to 1,000 pages inside whichever
 * commit crosses the threshold, which held the loop for ~4 ms about once per
 * hundred answer saves (the p99 of a save through the API).  Started here,
 * the connection does not checkpoint: its WAL hook sees each commit's WAL
 * size and, past 1,000 frames (SQLite's own threshold), a passive checkpoint
 * runs on the thread pool on a second connection of its own while writers
 * go on, and the loop then copies only the frames written meanwhile.  The
 * WAL stays as short as with automatic checkpoints (a long WAL slows every
 * read). */
#ifndef O2C_STORE_DB_CHECKPOINT_H
#define O2C_STORE_DB_CHECKPOINT_H
#include <uv.h>
#include "store/db.h"

struct db_checkpoint;

/* Moves DB's checkpoints onto LOOP's thread pool; NULL when out of memory
 * (DB then keeps the automatic checkpoint). */
struct db_checkpoint *db_checkpoint_start(struct db *db, uv_loop_t *loop);
/* Starts no new checkpoint (one on the pool still finishes). */
void db_checkpoint_stop(struct db_checkpoint *c);
/* After the loop has run out: gives DB its automatic checkpoint back and
 * frees C (NULL: nothing). */
void db_checkpoint_close(struct db_checkpoint *c);

#endif
