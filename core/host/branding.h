/* The firm's branding for client deliverables: its logo, checked and read
 * once at start-up (config_load), so a bad file stops o2c with a clear
 * message instead of a broken PDF later.  The text settings (firm name,
 * colour, footer, disclaimer) are ordinary config keys (branding.*). */
#ifndef O2C_HOST_BRANDING_H
#define O2C_HOST_BRANDING_H
#include <lua.h>
#include <stddef.h>

#define BRANDING_LOGO_MAX (512 * 1024) /* bytes: a logo, not a photograph */

/* Reads and checks the logo at PATH ("" clears it): a PNG, or an SVG
 * without scripts, of at most BRANDING_LOGO_MAX bytes.  0, or -1 with
 * ERR saying what is wrong and what to do. */
int branding_logo_load(const char *path, char *err, size_t cap);
/* The logo read last (NULL when none) and its MIME type. */
const char *branding_logo(size_t *len, const char **mime);

/* o2c.branding.logo() -> bytes, mime | nil (branding_lua.c); the text
 * settings reach Lua in o2c.config's branding table. */
int luaopen_o2c_branding(lua_State *L);

#endif
