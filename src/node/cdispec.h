/*
 * cdispec.h - the node's CDI spec file (--cdi): <cdi-dir>/<domain>-sgx.json, rendered by
 * sgx/cdi.c from the devices now present, written atomically whenever they change and removed
 * when none is left (CDI requires at least one device). Remembers the file it wrote (device and
 * inode), so that on exit it removes the file only while it is still ours: during a rolling update
 * the new pod rewrites it, and must keep it. A failed write is a warning, tried again on the next
 * look; never fatal.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cdi.h"

struct discovery;

struct cdispec {
        struct sgx_cdi_config cfg; /* strings borrowed from the node's config */
        char dir[PATH_MAX];        /* --cdi-dir */
        char path[PATH_MAX];       /* <dir>/<domain>-sgx.json */
        bool ours;                 /* we wrote path; dev/ino name that file */
        dev_t dev;
        ino_t ino;
        bool pending;   /* the last write or removal failed: try again on the next look */
        int last_error; /* the failure last logged (-errno), to warn once per change */
};

/* Sets up |s| for |dir| and |cfg| (borrowed). Returns 0 or -ENAMETOOLONG. Touches no file. */
int cdispec_init(struct cdispec *s, const char *dir, const struct sgx_cdi_config *cfg);

/*
 * Makes the file match |d|: writes the spec (creating |dir| with mode 0755 when missing) or, with
 * no device present, removes the file. Logs one line per write or removal, with the path and the
 * device names; a failure is a warning and leaves |pending| set. Returns 0 or -errno.
 */
int cdispec_sync(struct cdispec *s, const struct discovery *d);

/* The file at the path is the one we wrote last. */
bool cdispec_owns(const struct cdispec *s);

/* On exit: removes the file if it is still ours (logged), else leaves it (logged). */
void cdispec_release(struct cdispec *s);
