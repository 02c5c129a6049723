/*
 * fileio.c - bounded whole-file reads and atomic whole-file writes (see fileio.h).
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                bool *ret_truncated) {
        char *buf;
        size_t len = 0;
        int fd, r;

        if (max > SIZE_MAX - 2)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 2);
        if (!buf) {
                r = -ENOMEM;
                goto out_close;
        }
        /* one byte more than allowed, to know whether the file goes on */
        while (len < max + 1) {
                ssize_t n = read(fd, buf + len, max + 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out_free_buf;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (ret_truncated)
                *ret_truncated = len > max;
        if (len > max)
                len = max;
        buf[len] = '\0';
        *ret_buf = buf;
        if (ret_len)
                *ret_len = len;
        close(fd);
        return 0;

out_free_buf:
        free(buf);
out_close:
        close(fd);
        return r;
}

bool fileio_is_dir(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void fileio_nearest_existing(const char *path, char *out, size_t size) {
        snprintf(out, size, "%s", path);
        while (!fileio_is_dir(out)) {
                char *slash = strrchr(out, '/');

                if (!slash) {
                        snprintf(out, size, ".");
                        return;
                }
                if (slash == out) {
                        out[1] = '\0';
                        return;
                }
                *slash = '\0';
        }
}

void fileio_parent_dir(const char *path, char *out, size_t size) {
        size_t len;
        char *slash;

        snprintf(out, size, "%s", path);
        len = strlen(out);
        while (len > 1 && out[len - 1] == '/')
                out[--len] = '\0';
        slash = strrchr(out, '/');
        if (!slash)
                snprintf(out, size, ".");
        else if (slash == out)
                out[1] = '\0';
        else
                *slash = '\0';
}

int fileio_make_dirs(const char *path, mode_t mode) {
        char buf[PATH_MAX];
        size_t len = strlen(path);

        if (len >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1;; p++) {
                char c = *p;

                if (c != '/' && c != '\0')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) == 0) {
                        /* the umask does not decide who may read it */
                        if (chmod(buf, mode) < 0)
                                return -errno;
                } else if (errno != EEXIST) {
                        return -errno;
                }
                *p = c;
                if (c == '\0')
                        break;
        }
        return fileio_is_dir(buf) ? 0 : -ENOTDIR;
}

/* Writes all of |data| to |fd|. Returns 0 or -errno. */
static int write_all(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, data, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

/* The directory part of |path| into |buf|: "." for a bare name. */
static int dir_of(const char *path, char *buf, size_t size) {
        const char *slash = strrchr(path, '/');
        size_t n;

        if (!slash) {
                snprintf(buf, size, ".");
                return 0;
        }
        n = slash == path ? 1 : (size_t) (slash - path);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(buf, path, n);
        buf[n] = '\0';
        return 0;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[PATH_MAX], dir[PATH_MAX];
        int fd, dfd, r;

        r = dir_of(path, dir, sizeof(dir));
        if (r < 0)
                return r;
        if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid()) >=
            sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        /* the umask does not decide who may read it */
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto out_unlink;
        }
        r = write_all(fd, data, len);
        if (r < 0)
                goto out_unlink;
        if (fsync(fd) < 0) {
                r = -errno;
                goto out_unlink;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                goto out_unlink;
        }
        fd = -1;
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto out_unlink;
        }
        /* the rename itself survives a crash only once the directory is synced */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                (void) fsync(dfd);
                close(dfd);
        }
        return 0;

out_unlink:
        if (fd >= 0)
                close(fd);
        unlink(tmp);
        return r;
}
