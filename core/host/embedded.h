/* Files of core/lua and core/web compiled into the binary (see core/tools/embed.c). */
#ifndef O2C_HOST_EMBEDDED_H
#define O2C_HOST_EMBEDDED_H
#include <stddef.h>

struct embedded_file {
    const char *name; /* relative to core/, e.g. "lua/router.lua" */
    const char *data; /* NUL-terminated for convenience; size excludes it */
    size_t size;
};

/* Terminated by an entry whose name is NULL. */
extern const struct embedded_file embedded_files[];

/* The embedded file NAME, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
