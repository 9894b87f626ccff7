/* A bump allocator for copies of rows: strings and small records live
 * until store_arena_free, all at once.  No Lua here, so store code (and a
 * unit test) can use it alone; rowset.h builds on it.
 *
 * An arena may have a byte budget: an allocation past it fails like an
 * allocation the system refused, so one huge result cannot take the
 * process's memory. */
#ifndef O2C_STORE_STORE_ARENA_H
#define O2C_STORE_STORE_ARENA_H
#include <stddef.h>

struct store_arena_block;

struct store_arena {
    struct store_arena_block *head;
    size_t used;   /* bytes taken from the system */
    size_t budget; /* 0: no limit */
};

/* An empty arena of at most BUDGET bytes (0: unlimited). */
void store_arena_init(struct store_arena *a, size_t budget);
/* SIZE bytes aligned for any type, or NULL. */
void *store_arena_alloc(struct store_arena *a, size_t size);
/* Copy of LEN bytes at P with a NUL after them (NULL on failure). */
char *store_arena_memdup(struct store_arena *a, const void *p, size_t len);
/* Copy of S (NULL stays NULL). */
char *store_arena_strdup(struct store_arena *a, const char *s);
/* Frees everything; the arena is empty and usable again. */
void store_arena_free(struct store_arena *a);

#endif
