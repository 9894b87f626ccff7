#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "host/install_dirs.h"

#ifndef O2C_SHARE_REL
#define O2C_SHARE_REL "../share/o2c"
#endif
#ifndef O2C_SYSCONF_REL
#define O2C_SYSCONF_REL "../etc/o2c"
#endif
#ifndef O2C_INSTALLED_DATA_DIR
#define O2C_INSTALLED_DATA_DIR "/var/lib/o2c"
#endif
#define CONFIG_NAME "o2c.conf.lua"

static struct {
    int resolved;
    char bin_dir[PATH_MAX];
    char share[PATH_MAX]; /* "" when not installed */
    char config[PATH_MAX];
} dirs;

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder this executable is in, from the kernel (not argv[0]). */
static int find_bin_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static int use_config(const char *candidate)
{
    return access(candidate, R_OK) == 0 && realpath(candidate, dirs.config) != NULL;
}

/* PREFIX/etc/o2c/o2c.conf.lua; for the /usr prefix, /etc/o2c (as
 * GNUInstallDirs puts it) is tried first.  Under DESTDIR both are below it. */
static void find_config(void)
{
    char candidate[PATH_MAX + sizeof O2C_SYSCONF_REL + sizeof CONFIG_NAME + 2];
    size_t len = strlen(dirs.bin_dir);
    if (len >= 8 && strcmp(dirs.bin_dir + len - 8, "/usr/bin") == 0) {
        snprintf(candidate, sizeof candidate, "%.*s/etc/o2c/" CONFIG_NAME, (int)(len - 8),
                 dirs.bin_dir);
        if (use_config(candidate))
            return;
    }
    snprintf(candidate, sizeof candidate, "%s/" O2C_SYSCONF_REL "/" CONFIG_NAME, dirs.bin_dir);
    if (!use_config(candidate))
        dirs.config[0] = '\0';
}

static void resolve(void)
{
    if (dirs.resolved)
        return;
    dirs.resolved = 1;
    char share[PATH_MAX + sizeof O2C_SHARE_REL + 1];
    if (find_bin_dir(dirs.bin_dir, sizeof dirs.bin_dir) != 0)
        return;
    snprintf(share, sizeof share, "%s/" O2C_SHARE_REL, dirs.bin_dir);
    /* realpath: logs and `o2c check` show /usr/share/o2c, not /usr/bin/../share/o2c */
    if (!is_dir(share) || !realpath(share, dirs.share)) {
        dirs.share[0] = '\0';
        return;
    }
    find_config();
}

const char *install_share_dir(void)
{
    resolve();
    return dirs.share[0] ? dirs.share : NULL;
}

const char *install_config_file(void)
{
    resolve();
    return dirs.share[0] && dirs.config[0] ? dirs.config : NULL;
}

const char *install_data_dir(void)
{
    return install_share_dir() ? O2C_INSTALLED_DATA_DIR : NULL;
}
