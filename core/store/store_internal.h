/* Helpers shared by the store_*.c files only. */
#ifndef O2C_STORE_STORE_INTERNAL_H
#define O2C_STORE_STORE_INTERNAL_H
#include "store/query.h"
#include "store/rowset.h"
#include "store/store.h"

/* 1 when S is non-NULL, non-empty and at most MAX bytes. */
int store_text_ok(const char *s, size_t max);

#endif
