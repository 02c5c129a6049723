/*
 * discovery.c - finds the SGX character devices under --dev-root and classifies them (see
 * discovery.h). Knows nothing of gRPC, the kubelet or the API server.
 *
 * Every name is resolved by hand, one component at a time, relative to the dev root opened once:
 * symlinks are followed inside the root (an absolute target "/dev/x" means "<root>/x"), ".." may
 * not climb above the root, and at most LINK_HOPS_MAX links are followed per name. A name that
 * does not resolve to a character device (missing, dangling, looping, escaping, a directory, a
 * regular file...) is ignored; a lookup failing otherwise (EACCES, EIO) fails the whole scan, so
 * a caller keeps its last state instead of seeing devices vanish. A scan is about a dozen
 * fstatat/readlinkat calls and no allocation: it runs on every inotify event in the dev root.
 *
 * A device node found is then checked against what SGX drivers make (check_sgx_node): a
 * character device of the misc major, its real name an SGX name of the role looked for, and,
 * with a sys root, the kernel's DEVNAME for its major:minor an SGX name too. One that fails is
 * refused (listed in d->refused with the reason, never chosen): discovery trusts no name alone.
 */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"

#define LINK_HOPS_MAX 8

/* The names looked for, in order of preference within each class and role. */
static const struct name_spec {
        const char *name;
        enum sgx_class cls;
        enum sgx_role role;
} names[] = {
        {"sgx_enclave", SGX_CLASS_DCAP, SGX_ROLE_ENCLAVE},
        {"sgx/enclave", SGX_CLASS_DCAP, SGX_ROLE_ENCLAVE},
        {"sgx/sgx_enclave", SGX_CLASS_DCAP, SGX_ROLE_ENCLAVE},
        {"sgx", SGX_CLASS_DCAP, SGX_ROLE_ENCLAVE}, /* legacy single char device */
        {"sgx_provision", SGX_CLASS_DCAP, SGX_ROLE_PROVISION},
        {"sgx/provision", SGX_CLASS_DCAP, SGX_ROLE_PROVISION},
        {"sgx_prv", SGX_CLASS_DCAP, SGX_ROLE_PROVISION}, /* beside the legacy sgx */
        {"isgx", SGX_CLASS_IAS, SGX_ROLE_ENCLAVE},
};

#define LEGACY_ENCLAVE_HOST_PATH "/dev/sgx"
#define LEGACY_PROVISION_NAME "sgx_prv"

_Static_assert(sizeof(names) / sizeof(names[0]) <= DISCOVERY_MAX_ENTRIES, "too many names");

/* Appends component |c| (length |len|) to the root-relative path |path|. */
static int path_push(char *path, size_t size, const char *c, size_t len) {
        size_t n = strlen(path);
        size_t need = n + (n > 0) + len;

        if (need >= size)
                return -ENAMETOOLONG;
        if (n > 0)
                path[n++] = '/';
        memcpy(path + n, c, len);
        path[n + len] = '\0';
        return 0;
}

/* Drops the last component of |path|; -EXDEV when |path| is already the root. */
static int path_pop(char *path) {
        char *slash;

        if (path[0] == '\0')
                return -EXDEV;
        slash = strrchr(path, '/');
        if (slash)
                *slash = '\0';
        else
                path[0] = '\0';
        return 0;
}

/*
 * Resolves |name| inside the root open at |root_fd|. On success writes the real node's path
 * relative to the root into |ret_path| (non-empty) and its lstat into *ret_st, and returns 0.
 * Returns -ENOENT (missing or dangling), -ELOOP, -EXDEV (escapes the root), -ENOTDIR,
 * -ENAMETOOLONG, -EISDIR (the root itself) or another -errno from fstatat/readlinkat (-EACCES).
 * Success or not, *followed tells whether a link was followed (a failure is then the link's).
 */
static int resolve(int root_fd, const char *name, char *ret_path, size_t size, struct stat *ret_st,
                   bool *followed) {
        char done[PATH_MAX] = ""; /* resolved so far, no links in it */
        char bufs[2][PATH_MAX], link[PATH_MAX];
        char *todo = bufs[0], *spare = bufs[1];
        struct stat st;
        bool have_st = false;
        unsigned hops = 0;
        int r;

        *followed = false;
        if (strlen(name) >= sizeof(bufs[0]))
                return -ENAMETOOLONG;
        strcpy(todo, name);

        for (;;) {
                const char *c, *rest;
                size_t len;

                while (*todo == '/')
                        todo++;
                if (*todo == '\0')
                        break;
                c = todo;
                len = strcspn(c, "/");
                rest = c + len;
                todo = (char *) rest;

                if (len == 1 && c[0] == '.')
                        continue;
                if (len == 2 && c[0] == '.' && c[1] == '.') {
                        r = path_pop(done);
                        if (r < 0)
                                return r;
                        have_st = false;
                        continue;
                }

                r = path_push(done, sizeof(done), c, len);
                if (r < 0)
                        return r;
                if (fstatat(root_fd, done, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;

                if (S_ISLNK(st.st_mode)) {
                        const char *target;
                        ssize_t n;

                        if (++hops > LINK_HOPS_MAX)
                                return -ELOOP;
                        n = readlinkat(root_fd, done, link, sizeof(link) - 1);
                        if (n < 0)
                                return -errno;
                        if ((size_t) n >= sizeof(link) - 1)
                                return -ENAMETOOLONG;
                        link[n] = '\0';
                        *followed = true;

                        (void) path_pop(done); /* back to the link's directory */
                        target = link;
                        if (target[0] == '/') {
                                /* A host path: only "/dev" and below lie inside the root. */
                                if (strncmp(target, "/dev", 4) != 0 ||
                                    (target[4] != '\0' && target[4] != '/'))
                                        return -EXDEV;
                                target += 4;
                                done[0] = '\0';
                        }
                        r = snprintf(spare, sizeof(bufs[0]), "%s/%s", target, rest);
                        if (r < 0 || (size_t) r >= sizeof(bufs[0]))
                                return -ENAMETOOLONG;
                        todo = spare;
                        spare = (spare == bufs[0]) ? bufs[1] : bufs[0];
                        have_st = false;
                        continue;
                }

                have_st = true;
                /* Something follows: this must be a directory. */
                while (*todo == '/')
                        todo++;
                if (*todo != '\0' && !S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }

        if (done[0] == '\0')
                return -EISDIR;
        if (!have_st && fstatat(root_fd, done, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (strlen(done) >= size)
                return -ENAMETOOLONG;
        strcpy(ret_path, done);
        *ret_st = st;
        return 0;
}

static const char *why_ignored(int r) {
        switch (r) {
        case -ENOENT:
                return "dangling link";
        case -ELOOP:
                return "too many levels of links";
        case -EXDEV:
                return "link leads outside the dev root";
        case -EISDIR:
                return "link leads to the dev root itself";
        case -ENOTDIR:
                return "link leads through a non-directory";
        case -ENAMETOOLONG:
                return "path too long";
        }
        return "cannot resolve";
}

bool discovery_is_sgx_name(const char *name, enum sgx_role role) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].role == role && strcmp(names[i].name, name) == 0)
                        return true;
        return false;
}

int discovery_parse_uevent(const char *text, size_t len, char *ret, size_t size) {
        static const char key[] = "DEVNAME=";
        const size_t klen = sizeof(key) - 1;
        size_t i = 0;

        if (memchr(text, '\0', len))
                return -EINVAL;
        while (i < len) {
                const char *line = text + i, *nl = memchr(line, '\n', len - i);
                size_t n = nl ? (size_t) (nl - line) : len - i;

                i += n + 1;
                if (n < klen || memcmp(line, key, klen) != 0)
                        continue;
                line += klen;
                n -= klen;
                if (n == 0)
                        return -EINVAL;
                if (n >= size)
                        return -ENAMETOOLONG;
                memcpy(ret, line, n);
                ret[n] = '\0';
                return 0;
        }
        return -ENOENT;
}

/*
 * Reads the kernel's name of the character device |maj|:|min| from
 * <sys_root>/dev/char/MAJ:MIN/uevent. Returns 0 with the name in |ret|, -ENOENT when there is no
 * such file (no sysfs here, or no such device), -ENODATA when it names no device (no DEVNAME=,
 * or a bad one), or another -errno when it cannot be read.
 */
static int read_devname(const char *sys_root, unsigned maj, unsigned min, char *ret, size_t size) {
        char path[PATH_MAX], buf[4096];
        ssize_t n;
        int fd, r;

        r = snprintf(path, sizeof(path), "%s/dev/char/%u:%u/uevent", sys_root, maj, min);
        if (r < 0 || (size_t) r >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOTDIR ? -ENOENT : -errno;
        do
                n = read(fd, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        r = n < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        r = discovery_parse_uevent(buf, (size_t) n, ret, size);
        return r < 0 ? -ENODATA : 0;
}

/*
 * Checks the device node |st| that |spec| resolved to (|real|, relative to the root) against
 * what an SGX driver makes. Returns 0 when it passes, else 1 with the reason in *ret_reason and
 * the kernel's name (when read) in |kname|.
 */
static int check_sgx_node(const char *dev_root, const char *sys_root, const struct name_spec *spec,
                          const char *real, const struct stat *st, char *kname, size_t ksize,
                          enum discovery_refusal *ret_reason) {
        int r;

        kname[0] = '\0';
        if (!S_ISCHR(st->st_mode)) {
                *ret_reason = DISCOVERY_REFUSED_NOT_CHAR;
                return 1;
        }
        if (major(st->st_rdev) != DISCOVERY_MISC_MAJOR) {
                *ret_reason = DISCOVERY_REFUSED_NOT_MISC;
                return 1;
        }
        if (!discovery_is_sgx_name(real, spec->role)) {
                *ret_reason = DISCOVERY_REFUSED_NOT_SGX_NAME;
                return 1;
        }
        if (!sys_root)
                return 0;
        r = read_devname(sys_root, major(st->st_rdev), minor(st->st_rdev), kname, ksize);
        if (r == -ENODATA) {
                kname[0] = '\0';
                *ret_reason = DISCOVERY_REFUSED_KERNEL_NONAME;
                return 1;
        }
        if (r < 0) {
                /* No sysfs view (tests, some containers): the checks above stand alone. */
                kname[0] = '\0';
                if (r != -ENOENT)
                        log_debug(NULL, dev_root, "%s: cannot read the kernel's name of %u:%u: %s",
                                  spec->name, major(st->st_rdev), minor(st->st_rdev), strerror(-r));
                return 0;
        }
        if (!discovery_is_sgx_name(kname, spec->role)) {
                *ret_reason = DISCOVERY_REFUSED_KERNEL_NAME;
                return 1;
        }
        return 0;
}

/*
 * Looks up one name. Returns 1 and fills *ret when it is an SGX character device, 2 and fills
 * *ret_refused when it is a device node refused as not SGX, 0 when it is to be ignored, or -errno
 * when the root cannot be read.
 */
static int scan_name(int root_fd, const char *dev_root, const char *sys_root,
                     const struct name_spec *spec, struct discovery_entry *ret,
                     struct discovery_refused *ret_refused) {
        char real[PATH_MAX];
        struct stat st = {0};
        enum discovery_refusal reason;
        bool is_link;
        int r, n;

        r = resolve(root_fd, spec->name, real, sizeof(real), &st, &is_link);
        /* Plain absence (or "sgx/enclave" beside a legacy "sgx" device) is no news. */
        if ((r == -ENOENT || r == -ENOTDIR) && !is_link)
                return 0;
        if (r == -ENOENT || r == -ELOOP || r == -EXDEV || r == -ENOTDIR || r == -ENAMETOOLONG ||
            r == -EISDIR) {
                log_debug(NULL, dev_root, "%s: %s, ignoring", spec->name, why_ignored(r));
                return 0;
        }
        if (r < 0)
                return r;
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
                /* A directory "sgx" is the DCAP driver's layout, not worth a line. */
                if (!(S_ISDIR(st.st_mode) && strcmp(spec->name, "sgx") == 0))
                        log_debug(NULL, dev_root, "%s: not a character device, ignoring",
                                  spec->name);
                return 0;
        }

        if (check_sgx_node(dev_root, sys_root, spec, real, &st, ret_refused->kernel_name,
                           sizeof(ret_refused->kernel_name), &reason) > 0) {
                snprintf(ret_refused->name, sizeof(ret_refused->name), "%s", spec->name);
                snprintf(ret_refused->path, sizeof(ret_refused->path), "/dev/%s", spec->name);
                n = snprintf(ret_refused->target, sizeof(ret_refused->target), "/dev/%s", real);
                if (n < 0 || (size_t) n >= sizeof(ret_refused->target))
                        snprintf(ret_refused->target, sizeof(ret_refused->target),
                                 "(path too long)");
                ret_refused->cls = spec->cls;
                ret_refused->role = spec->role;
                ret_refused->is_link = is_link;
                ret_refused->major = major(st.st_rdev);
                ret_refused->minor = minor(st.st_rdev);
                ret_refused->reason = reason;
                return 2;
        }
        memset(ret_refused, 0, sizeof(*ret_refused)); /* the slot stays free */

        n = snprintf(ret->host_path, sizeof(ret->host_path), "/dev/%s", real);
        if (n < 0 || (size_t) n >= sizeof(ret->host_path)) {
                log_debug(NULL, dev_root, "%s: resolved path too long, ignoring", spec->name);
                return 0;
        }
        snprintf(ret->name, sizeof(ret->name), "%s", spec->name);
        ret->cls = spec->cls;
        ret->role = spec->role;
        ret->is_link = is_link;
        ret->major = major(st.st_rdev);
        ret->minor = minor(st.st_rdev);
        return 1;
}

static void node_from_entry(struct sgx_node *node, const struct discovery_entry *e) {
        node->present = true;
        snprintf(node->host_path, sizeof(node->host_path), "%s", e->host_path);
        node->major = e->major;
        node->minor = e->minor;
}

static const struct discovery_entry *find_entry(const struct discovery *d, const char *name) {
        for (size_t i = 0; i < d->n_entries; i++)
                if (strcmp(d->entries[i].name, name) == 0)
                        return &d->entries[i];
        return NULL;
}

static bool same_devnum(const struct discovery_entry *e, const struct sgx_node *n) {
        return n->present && e->major == n->major && e->minor == n->minor;
}

/* Picks the devices to use from the names found (d->entries). */
static void choose(struct discovery *d) {
        const struct discovery_entry *prv;

        for (size_t i = 0; i < d->n_entries; i++) {
                const struct discovery_entry *e = &d->entries[i];

                if (e->cls == SGX_CLASS_DCAP && e->role == SGX_ROLE_ENCLAVE &&
                    !d->dcap_enclave.present)
                        node_from_entry(&d->dcap_enclave, e);
        }
        d->dcap_legacy = d->dcap_enclave.present &&
                         strcmp(d->dcap_enclave.host_path, LEGACY_ENCLAVE_HOST_PATH) == 0;

        if (d->dcap_legacy) {
                prv = find_entry(d, LEGACY_PROVISION_NAME);
                if (prv)
                        node_from_entry(&d->dcap_provision, prv);
        } else {
                for (size_t i = 0; i < d->n_entries; i++) {
                        const struct discovery_entry *e = &d->entries[i];

                        if (e->cls == SGX_CLASS_DCAP && e->role == SGX_ROLE_PROVISION &&
                            strcmp(e->name, LEGACY_PROVISION_NAME) != 0) {
                                node_from_entry(&d->dcap_provision, e);
                                break;
                        }
                }
        }

        for (size_t i = 0; i < d->n_entries; i++) {
                const struct discovery_entry *e = &d->entries[i];

                /* isgx naming the DCAP device (same major:minor) is that device, not IAS. */
                if (e->cls == SGX_CLASS_IAS && !d->ias_enclave.present &&
                    !same_devnum(e, &d->dcap_enclave) && !same_devnum(e, &d->dcap_provision))
                        node_from_entry(&d->ias_enclave, e);
        }
}

int discovery_scan_at(const char *dev_root, const char *sys_root, struct discovery *ret) {
        struct discovery d = {0};
        int root_fd, r = 0;

        if (!dev_root || !ret)
                return -EINVAL;

        root_fd = open(dev_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                if (errno != ENOENT)
                        return -errno;
                d.dev_root_missing = true;
                goto out_done;
        }

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                r = scan_name(root_fd, dev_root, sys_root, &names[i], &d.entries[d.n_entries],
                              &d.refused[d.n_refused]);
                if (r < 0)
                        goto out_close_root;
                if (r == 1)
                        d.n_entries++;
                else if (r == 2)
                        d.n_refused++;
        }
        choose(&d);
        r = 0;

out_close_root:
        close(root_fd);
        if (r < 0)
                return r;
out_done:
        *ret = d;
        return 0;
}

int discovery_scan(const char *dev_root, struct discovery *ret) {
        return discovery_scan_at(dev_root, NULL, ret);
}

bool discovery_has_dcap(const struct discovery *d) {
        return d->dcap_enclave.present;
}

bool discovery_has_ias(const struct discovery *d) {
        return d->ias_enclave.present;
}

bool discovery_has_provision(const struct discovery *d) {
        return d->dcap_enclave.present && d->dcap_provision.present;
}

static bool same_node(const struct sgx_node *a, const struct sgx_node *b) {
        if (a->present != b->present)
                return false;
        if (!a->present)
                return true;
        return a->major == b->major && a->minor == b->minor &&
               strcmp(a->host_path, b->host_path) == 0;
}

bool discovery_same_devices(const struct discovery *a, const struct discovery *b) {
        return same_node(&a->dcap_enclave, &b->dcap_enclave) &&
               same_node(&a->dcap_provision, &b->dcap_provision) &&
               same_node(&a->ias_enclave, &b->ias_enclave) && a->dcap_legacy == b->dcap_legacy;
}

bool discovery_same_refusals(const struct discovery *a, const struct discovery *b) {
        if (a->n_refused != b->n_refused)
                return false;
        for (size_t i = 0; i < a->n_refused; i++) {
                const struct discovery_refused *x = &a->refused[i], *y = &b->refused[i];

                if (strcmp(x->name, y->name) != 0 || strcmp(x->target, y->target) != 0 ||
                    strcmp(x->kernel_name, y->kernel_name) != 0 || x->major != y->major ||
                    x->minor != y->minor || x->reason != y->reason)
                        return false;
        }
        return true;
}

const char *discovery_refusal_name(enum discovery_refusal r) {
        switch (r) {
        case DISCOVERY_REFUSED_NOT_CHAR:
                return "not-char";
        case DISCOVERY_REFUSED_NOT_MISC:
                return "not-misc";
        case DISCOVERY_REFUSED_NOT_SGX_NAME:
                return "not-sgx-name";
        case DISCOVERY_REFUSED_KERNEL_NAME:
                return "kernel-name";
        case DISCOVERY_REFUSED_KERNEL_NONAME:
                return "kernel-no-name";
        }
        return "unknown";
}

const char *discovery_refusal_reason(enum discovery_refusal r) {
        switch (r) {
        case DISCOVERY_REFUSED_NOT_CHAR:
                return "not a character device";
        case DISCOVERY_REFUSED_NOT_MISC:
                return "not a misc device (major 10), which every SGX driver makes";
        case DISCOVERY_REFUSED_NOT_SGX_NAME:
                return "the node it resolves to has no SGX name of its role";
        case DISCOVERY_REFUSED_KERNEL_NAME:
                return "the kernel (sysfs DEVNAME) names that device";
        case DISCOVERY_REFUSED_KERNEL_NONAME:
                return "the kernel's uevent for that device has no DEVNAME";
        }
        return "unknown";
}

const char *sgx_class_name(enum sgx_class c) {
        switch (c) {
        case SGX_CLASS_DCAP:
                return "dcap";
        case SGX_CLASS_IAS:
                return "ias";
        }
        return "unknown";
}

const char *sgx_role_name(enum sgx_role r) {
        switch (r) {
        case SGX_ROLE_ENCLAVE:
                return "enclave";
        case SGX_ROLE_PROVISION:
                return "provision";
        }
        return "unknown";
}
