/* branding.h: the logo file, checked once and kept in memory. */
#include "host/branding.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static char *logo_data;
static size_t logo_len;
static const char *logo_mime;

static const unsigned char PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Finds NEEDLE (lower case) in the first N bytes of TEXT, ignoring case. */
static int contains_nocase(const char *text, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(text + i, needle, k) == 0)
            return 1;
    return 0;
}

/* An SVG document: text (no NUL byte) whose root element, within its first
 * 4 KiB, is <svg. */
static int looks_like_svg(const char *data, size_t len)
{
    if (memchr(data, '\0', len))
        return 0;
    return contains_nocase(data, len < 4096 ? len : 4096, "<svg");
}

static const char *logo_type(const char *data, size_t len)
{
    if (len >= sizeof PNG_SIGNATURE && memcmp(data, PNG_SIGNATURE, sizeof PNG_SIGNATURE) == 0)
        return "image/png";
    if (looks_like_svg(data, len))
        return "image/svg+xml";
    return NULL;
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, cap, "branding.logo: cannot read %s (%s): give the path of a PNG or SVG file",
                 path, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    if (st.st_size > BRANDING_LOGO_MAX) {
        snprintf(err, cap,
                 "branding.logo: %s is %lld KiB; the limit is %d KiB: use a smaller PNG or an SVG",
                 path, (long long)(st.st_size + 1023) / 1024, BRANDING_LOGO_MAX / 1024);
        fclose(f);
        return -1;
    }
    *out = malloc((size_t)st.st_size + 1);
    *len = *out ? fread(*out, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!*out || *len != (size_t)st.st_size) {
        snprintf(err, cap, "branding.logo: cannot read %s", path);
        free(*out);
        return -1;
    }
    return 0;
}

int branding_logo_load(const char *path, char *err, size_t cap)
{
    char *data = NULL;
    size_t len = 0;
    const char *mime = NULL;
    if (path[0] != '\0') {
        if (read_file(path, &data, &len, err, cap) != 0)
            return -1;
        mime = logo_type(data, len);
        const char *why = NULL;
        if (!mime)
            why = "is neither a PNG nor an SVG image: export the logo as PNG or SVG";
        else if (strcmp(mime, "image/svg+xml") == 0 &&
                 (contains_nocase(data, len, "<script") ||
                  contains_nocase(data, len, "<foreignobject")))
            why = "is an SVG with scripts or embedded HTML: save it as plain SVG or PNG";
        if (why) {
            snprintf(err, cap, "branding.logo: %s %s", path, why);
            free(data);
            return -1;
        }
    }
    free(logo_data);
    logo_data = data, logo_len = len, logo_mime = mime;
    return 0;
}

const char *branding_logo(size_t *len, const char **mime)
{
    *len = logo_len;
    *mime = logo_mime;
    return logo_data;
}
