#include "store/store_arena.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STORE_ARENA_BLOCK 16384

struct store_arena_block {
    struct store_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void store_arena_init(struct store_arena *a, size_t budget)
{
    memset(a, 0, sizeof *a);
    a->budget = budget;
}

/* A new block for SIZE bytes; near the budget it holds only SIZE. */
static struct store_arena_block *arena_grow(struct store_arena *a, size_t size)
{
    size_t cap = size > STORE_ARENA_BLOCK ? size : STORE_ARENA_BLOCK;
    size_t room = a->budget > a->used ? a->budget - a->used : 0;
    if (a->budget && cap > room)
        cap = size;
    struct store_arena_block *b = NULL;
    if (a->budget == 0 || cap <= room)
        b = malloc(sizeof *b + cap);
    if (b == NULL)
        return NULL;
    a->used += cap;
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
    return b;
}

void *store_arena_alloc(struct store_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct store_arena_block *b = a->head;
    if ((b == NULL || b->cap - b->used < size) && (b = arena_grow(a, size)) == NULL)
        return NULL;
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

char *store_arena_memdup(struct store_arena *a, const void *p, size_t len)
{
    char *copy = store_arena_alloc(a, len + 1);
    if (copy) {
        if (len)
            memcpy(copy, p, len);
        copy[len] = '\0';
    }
    return copy;
}

char *store_arena_strdup(struct store_arena *a, const char *s)
{
    return s ? store_arena_memdup(a, s, strlen(s)) : NULL;
}

void store_arena_free(struct store_arena *a)
{
    while (a->head) {
        struct store_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->used = 0;
}
