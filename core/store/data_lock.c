/* The data folder's lock (data_lock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/data_lock.h"
#include "store/db.h"

/* mkdir -p, 0700 for the parts it creates. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int data_lock_take(const char *data_dir, enum data_lock_mode mode, int *fd, char *err, size_t cap)
{
    char path[4096];
    *fd = -1;
    if (snprintf(path, sizeof path, "%s/%s", data_dir, DATA_LOCK_FILE) >= (int)sizeof path) {
        snprintf(err, cap, "%s: path too long", data_dir);
        return STORE_ERROR;
    }
    int lfd = make_dirs(data_dir) == 0 ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (lfd < 0) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return STORE_ERROR;
    }
    int how = (mode == DATA_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH) | LOCK_NB;
    while (flock(lfd, how) != 0) {
        if (errno == EINTR)
            continue;
        int busy = errno == EWOULDBLOCK;
        if (busy)
            snprintf(err, cap, "%s is held by another o2c process", path);
        else
            snprintf(err, cap, "cannot lock %s: %s", path, strerror(errno));
        close(lfd);
        return busy ? STORE_BUSY : STORE_ERROR;
    }
    *fd = lfd;
    return STORE_OK;
}

void data_lock_release(int fd)
{
    if (fd >= 0)
        close(fd); /* drops the flock */
}
