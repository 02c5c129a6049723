/*
 * cdispec.c - the node's CDI spec file (see cdispec.h): rendering is sgx/cdi.c's, atomic writes
 * base/fileio.c's; here: when to write, the directory, the ownership of the file and the logs.
 */
#include "cdispec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"
#include "fileio.h"
#include "log.h"

#define SPEC_MODE 0644 /* runtimes read it; only we write it */
#define DIR_MODE 0755  /* as a runtime or the kubelet would create /var/run/cdi */

int cdispec_init(struct cdispec *s, const char *dir, const struct sgx_cdi_config *cfg) {
        memset(s, 0, sizeof(*s));
        s->cfg = *cfg;
        if ((size_t) snprintf(s->dir, sizeof(s->dir), "%s", dir) >= sizeof(s->dir))
                return -ENAMETOOLONG;
        return sgx_cdi_spec_path(dir, cfg->domain, s->path, sizeof(s->path));
}

bool cdispec_owns(const struct cdispec *s) {
        struct stat st;

        return s->ours && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* A failure: a warning when it differs from the last one logged, then try again later. */
static int failed(struct cdispec *s, const char *what, int r) {
        if (r != s->last_error)
                log_warn(NULL, s->path, "cannot %s the CDI spec: %s, retrying on the next change",
                         what, strerror(-r));
        s->last_error = r;
        s->pending = true;
        return r;
}

static int write_spec(struct cdispec *s, const struct discovery *d) {
        enum sgx_kind kinds[SGX_KIND_MAX];
        const char *names[SGX_KIND_MAX];
        char list[SGX_KIND_MAX * (SGX_CDI_DEVICE_NAME_MAX + 2)] = "";
        size_t n = sgx_cdi_devices(&s->cfg, d, kinds, names, SGX_KIND_MAX), len, off = 0;
        struct stat st;
        char *text;
        int r;

        r = sgx_cdi_render(&s->cfg, d, &text, &len);
        if (r < 0)
                return failed(s, "render", r);
        r = fileio_make_dirs(s->dir, DIR_MODE);
        if (r == 0)
                r = fileio_write_atomic(s->path, text, len, SPEC_MODE);
        free(text);
        if (r < 0)
                return failed(s, "write", r);
        if (lstat(s->path, &st) == 0) {
                s->ours = true;
                s->dev = st.st_dev;
                s->ino = st.st_ino;
        }
        for (size_t i = 0; i < n; i++)
                off += (size_t) snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
                                         names[i]);
        log_info(NULL, s->path, "wrote the CDI spec: kind %s/" SGX_CDI_CLASS ", devices %s",
                 s->cfg.domain, list);
        return 0;
}

static int remove_spec(struct cdispec *s) {
        if (unlink(s->path) < 0) {
                if (errno != ENOENT)
                        return failed(s, "remove", -errno);
        } else {
                log_info(NULL, s->path, "removed the CDI spec: no SGX device on this node");
        }
        s->ours = false;
        return 0;
}

int cdispec_sync(struct cdispec *s, const struct discovery *d) {
        enum sgx_kind kinds[SGX_KIND_MAX];
        const char *names[SGX_KIND_MAX];
        int r;

        /* no device is no valid spec: whoever wrote the file, what it names is gone */
        if (sgx_cdi_devices(&s->cfg, d, kinds, names, SGX_KIND_MAX) == 0)
                r = remove_spec(s);
        else
                r = write_spec(s, d);
        if (r == 0) {
                s->pending = false;
                s->last_error = 0;
        }
        return r;
}

void cdispec_release(struct cdispec *s) {
        if (!s->ours)
                return;
        if (!cdispec_owns(s)) {
                log_info(NULL, s->path, "the CDI spec is no longer ours, leaving it");
                return;
        }
        if (unlink(s->path) < 0 && errno != ENOENT)
                log_warn(NULL, s->path, "cannot remove the CDI spec: %s", strerror(errno));
        else
                log_info(NULL, s->path, "removed the CDI spec");
        s->ours = false;
}
