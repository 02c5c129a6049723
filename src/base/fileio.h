/*
 * fileio.h - whole-file reads with a bound, and atomic whole-file writes: what the daemon reads
 * from /proc, /sys, token and recorded-CPUID files, and what it writes for others to read whole
 * (CDI specs, checkpoints) so that a reader never sees half a file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Reads at most |max| bytes of |path| into a NUL-terminated buffer (caller frees). The file is
 * opened non-blocking and without becoming a controlling terminal. *ret_truncated (may be NULL)
 * tells whether the file goes on past |max|. Returns 0 or -errno (-ENOMEM).
 */
int fileio_read(const char *path, size_t max, char **ret_buf, size_t *ret_len,
                bool *ret_truncated);

/* |path| names a directory (symlinks followed). */
bool fileio_is_dir(const char *path);

/* Writes |path| into |out| or, when it is no directory, its nearest existing ancestor directory
 * ("." for a relative path none of whose parts exists, "/" at the top). */
void fileio_nearest_existing(const char *path, char *out, size_t size);

/* Writes the directory that holds |path| into |out|: "." for a bare name, "/" for a top-level
 * one; trailing slashes of |path| are ignored. */
void fileio_parent_dir(const char *path, char *out, size_t size);

/*
 * mkdir -p |path|: every missing directory made with |mode|, exactly (chmod after mkdir: the
 * umask does not decide who may read them). Existing ones are left as they are. Returns 0,
 * -ENAMETOOLONG, -ENOTDIR (a part is no directory), or -errno of mkdir.
 */
int fileio_make_dirs(const char *path, mode_t mode);

/*
 * Writes |len| bytes of |data| to |path| atomically: a temporary file beside it (same
 * directory, mode |mode|), fsync, rename over |path|, fsync of the directory. A reader sees the
 * old file or the new one, never a part. Returns 0 or -errno; on failure |path| is unchanged and
 * no temporary file is left.
 */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
