/*
 * draplugin.c - the kubelet side of the DRA driver (see draplugin.h): the Registration and
 * DRAPlugin answers, and the service that serves them on D-reg.sock and dra.sock and keeps both
 * sockets there.
 *
 * Owns: the PluginInfo we give, the per-claim answers of NodePrepareResources and
 * NodeUnprepareResources, the two grpc_servers, the inotify watches on --plugins-registry and
 * --dra-dir and the safety-net rescan. Leaves to others: HTTP/2 and gRPC framing (grpc_server.c),
 * the node's devices and the API server (node/plugin.c hands them over in later steps).
 *
 * Level-triggered like plugin.c: every event and the rescan run one resync that looks at both
 * directories and re-binds a socket whose path is gone, dra.sock first. A path that names
 * someone else's socket (another daemon during a rolling update) is left to them until it goes,
 * and never unlinked: grpc_server_free() unlinks only what it bound.
 */
#include "draplugin.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "dra_v1.pb-c.h"
#include "grpc_server.h"
#include "log.h"
#include "loop.h"
#include "pluginregistration.pb-c.h"
#include "text.h"

/* The v1 messages, which v1beta1 shares byte for byte. */
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Claim Claim;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesRequest PrepareRequest;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse PrepareResponse;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse__ClaimsEntry
        PrepareEntry;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourceResponse PrepareResult;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesRequest UnprepareRequest;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse UnprepareResponse;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry
        UnprepareEntry;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourceResponse UnprepareResult;

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)
#define MAX_WATCHES 4
#define WATCH_MASK                                                                             \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
         IN_ONLYDIR)
#define ERR_MAX 512 /* one per-claim error string */

int dra_socket_paths(const struct dra_config *cfg, char *reg, char *dra, size_t size) {
        size_t max = size - 1 < SUN_PATH_MAX ? size - 1 : SUN_PATH_MAX;
        int a, b;

        a = snprintf(reg, size, "%s/%s" DRA_REG_SUFFIX, cfg->registry_dir, cfg->driver);
        b = snprintf(dra, size, "%s/" DRA_SOCKET_NAME, cfg->dra_dir);
        if (a < 0 || b < 0 || (size_t) a > max || (size_t) b > max)
                return -ENAMETOOLONG;
        return 0;
}

/* A response buffer: malloc(0) may be NULL, so an empty message still gets one byte. */
static uint8_t *out_alloc(size_t len) {
        return malloc(len ? len : 1);
}

/* Copies an untrusted string for a message: printable ASCII only, at most 64 characters. */
static void shown(const char *s, char *buf, size_t size) {
        size_t n = strnlen(s, 65);

        text_printable(s, n, buf, size);
}

/* ---- Registration ---- */

int dra_encode_info(const char *driver, const char *endpoint, uint8_t **ret_buf, size_t *ret_len) {
        Pluginregistration__PluginInfo info = PLUGINREGISTRATION__PLUGIN_INFO__INIT;
        char *versions[] = {(char *) DRA_VERSION_V1, (char *) DRA_VERSION_V1BETA1};
        uint8_t *buf;
        size_t len;

        info.type = (char *) DRA_PLUGIN_TYPE;
        info.name = (char *) driver;
        info.endpoint = (char *) endpoint;
        info.n_supported_versions = sizeof(versions) / sizeof(versions[0]);
        info.supported_versions = versions;

        len = pluginregistration__plugin_info__get_packed_size(&info);
        buf = out_alloc(len);
        if (!buf)
                return -ENOMEM;
        *ret_len = pluginregistration__plugin_info__pack(&info, buf);
        *ret_buf = buf;
        return 0;
}

enum grpc_status dra_handle_notify(const uint8_t *req, size_t len, bool *ret_registered,
                                   char *reason, size_t reasonsz, uint8_t **ret_buf,
                                   size_t *ret_len, char *err, size_t errsz) {
        Pluginregistration__RegistrationStatusResponse resp =
                PLUGINREGISTRATION__REGISTRATION_STATUS_RESPONSE__INIT;
        Pluginregistration__RegistrationStatus *st;
        uint8_t *buf;

        st = pluginregistration__registration_status__unpack(NULL, len, req);
        if (!st) {
                errline(err, errsz, "undecodable RegistrationStatus (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        *ret_registered = st->plugin_registered;
        text_printable(st->error, strlen(st->error), reason, reasonsz);
        pluginregistration__registration_status__free_unpacked(st, NULL);

        buf = out_alloc(0);
        if (!buf) {
                errline(err, errsz, "out of memory");
                return GRPC_STATUS_INTERNAL;
        }
        *ret_len = pluginregistration__registration_status_response__pack(&resp, buf);
        *ret_buf = buf;
        return GRPC_STATUS_OK;
}

/* ---- DRAPlugin ---- */

/* True when an earlier claim of |claims| has the UID of claims[i]. */
static bool uid_seen(Claim **claims, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (strcmp(claims[j]->uid, claims[i]->uid) == 0)
                        return true;
        return false;
}

/* The error for one claim of a prepare: what is missing in it, or that prepare is unavailable. */
static void prepare_error(const Claim *c, char *buf, size_t size) {
        char ns[80], name[80], uid[80];

        shown(c->namespace_, ns, sizeof(ns));
        shown(c->name, name, sizeof(name));
        shown(c->uid, uid, sizeof(uid));
        if (!c->uid[0] || !c->namespace_[0] || !c->name[0])
                snprintf(buf, size,
                         "claim %s/%s (uid \"%s\"): namespace, name and uid are all "
                         "required",
                         ns, name, uid);
        else
                snprintf(buf, size, "claim %s/%s (uid %s): " DRA_PREPARE_UNAVAILABLE, ns, name,
                         uid);
}

enum grpc_status dra_handle_prepare(const struct dra_config *cfg, const uint8_t *req, size_t len,
                                    uint8_t **ret_buf, size_t *ret_len, size_t *ret_n_claims,
                                    char *err, size_t errsz) {
        PrepareResponse resp =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_PREPARE_RESOURCES_RESPONSE__INIT;
        PrepareEntry *entries = NULL, **entry_ptrs = NULL;
        PrepareResult *results = NULL;
        PrepareRequest *r;
        enum grpc_status status = GRPC_STATUS_INTERNAL;
        char *errors = NULL;
        size_t n = 0, packed;
        uint8_t *buf;

        r = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__unpack(NULL, len,
                                                                                         req);
        if (!r) {
                errline(err, errsz, "undecodable NodePrepareResourcesRequest (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        if (r->n_claims > 0) {
                entries = calloc(r->n_claims, sizeof(*entries));
                entry_ptrs = calloc(r->n_claims, sizeof(*entry_ptrs));
                results = calloc(r->n_claims, sizeof(*results));
                errors = malloc(r->n_claims * ERR_MAX);
                if (!entries || !entry_ptrs || !results || !errors)
                        goto out_oom;
        }
        for (size_t i = 0; i < r->n_claims; i++) {
                if (uid_seen(r->claims, i))
                        continue;
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__claims_entry__init(
                        &entries[n]);
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resource_response__init(
                        &results[n]);
                prepare_error(r->claims[i], errors + n * ERR_MAX, ERR_MAX);
                results[n].error = errors + n * ERR_MAX;
                entries[n].key = r->claims[i]->uid;
                entries[n].value = &results[n];
                entry_ptrs[n] = &entries[n];
                n++;
        }
        resp.n_claims = n;
        resp.claims = entry_ptrs;

        packed =
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__get_packed_size(
                        &resp);
        buf = out_alloc(packed);
        if (!buf)
                goto out_oom;
        *ret_len = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__pack(
                &resp, buf);
        *ret_buf = buf;
        *ret_n_claims = n;
        status = GRPC_STATUS_OK;
        goto out_free;

out_oom:
        errline(err, errsz, "out of memory");
out_free:
        free(errors);
        free(results);
        free(entry_ptrs);
        free(entries);
        k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__free_unpacked(r,
                                                                                            NULL);
        (void) cfg;
        return status;
}

enum grpc_status dra_handle_unprepare(const struct dra_config *cfg, const uint8_t *req, size_t len,
                                      uint8_t **ret_buf, size_t *ret_len, size_t *ret_n_claims,
                                      char *err, size_t errsz) {
        UnprepareResponse resp =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_UNPREPARE_RESOURCES_RESPONSE__INIT;
        UnprepareEntry *entries = NULL, **entry_ptrs = NULL;
        UnprepareResult ok =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_UNPREPARE_RESOURCE_RESPONSE__INIT;
        UnprepareRequest *r;
        enum grpc_status status = GRPC_STATUS_INTERNAL;
        size_t n = 0, packed;
        uint8_t *buf;

        r = k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_request__unpack(
                NULL, len, req);
        if (!r) {
                errline(err, errsz, "undecodable NodeUnprepareResourcesRequest (%zu bytes)", len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        if (r->n_claims > 0) {
                entries = calloc(r->n_claims, sizeof(*entries));
                entry_ptrs = calloc(r->n_claims, sizeof(*entry_ptrs));
                if (!entries || !entry_ptrs)
                        goto out_oom;
        }
        /* nothing was prepared: every claim, known or not, is unprepared */
        for (size_t i = 0; i < r->n_claims; i++) {
                if (uid_seen(r->claims, i))
                        continue;
                k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__claims_entry__init(
                        &entries[n]);
                entries[n].key = r->claims[i]->uid;
                entries[n].value = &ok;
                entry_ptrs[n] = &entries[n];
                n++;
        }
        resp.n_claims = n;
        resp.claims = entry_ptrs;

        packed =
                k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__get_packed_size(
                        &resp);
        buf = out_alloc(packed);
        if (!buf)
                goto out_oom;
        *ret_len = k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__pack(
                &resp, buf);
        *ret_buf = buf;
        *ret_n_claims = n;
        status = GRPC_STATUS_OK;
        goto out_free;

out_oom:
        errline(err, errsz, "out of memory");
out_free:
        free(entry_ptrs);
        free(entries);
        k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_request__free_unpacked(r,
                                                                                              NULL);
        (void) cfg;
        return status;
}

/* ---- the service ---- */

struct dra_plugin {
        struct loop *loop;         /* borrowed */
        struct dra_config cfg;     /* strings borrowed */
        char reg_path[PATH_MAX];   /* <plugins-registry>/D-reg.sock */
        char dra_path[PATH_MAX];   /* <dra-dir>/dra.sock: the endpoint */
        struct grpc_server *reg;   /* NULL while the registry dir does not exist */
        struct grpc_server *dra;   /* NULL until --dra-dir could be made */
        bool reg_missing_logged;   /* "registry does not exist yet" said */
        int dra_error;             /* last error making --dra-dir or binding, logged once */
        bool reg_taken, dra_taken; /* "replaced by another process's" said */

        int inotify_fd;
        struct loop_source *inotify_src;
        int wds[MAX_WATCHES];
        size_t n_wds;
        struct loop_source *rescan;
};

static void on_get_info(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);
static void on_notify(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);
static void on_prepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);
static void on_unprepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);

static const struct grpc_method reg_methods[] = {
        {"/pluginregistration.Registration/GetInfo", false, on_get_info},
        {"/pluginregistration.Registration/NotifyRegistrationStatus", false, on_notify},
};

static const struct grpc_method dra_methods[] = {
        {"/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources", false, on_prepare},
        {"/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources", false, on_unprepare},
        {"/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources", false, on_prepare},
        {"/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources", false,
         on_unprepare},
};

/* "NodePrepareResources (v1beta1)" for a log line, from the call's method path. */
static void method_name(struct grpc_call *call, char *buf, size_t size) {
        const char *m = grpc_call_method(call), *slash = m ? strrchr(m, '/') : NULL;

        snprintf(buf, size, "%s (%s)", slash ? slash + 1 : "?",
                 m && strstr(m, ".v1beta1.") ? "v1beta1" : "v1");
}

/* Logs a rejected request and answers it. */
static void reject(struct dra_plugin *d, struct grpc_call *call, const char *path,
                   const char *method, enum grpc_status status, const char *err) {
        log_warn(d->cfg.driver, path, "%s rejected: %s (%s)", method, err,
                 grpc_status_name(status));
        (void) grpc_call_fail(call, status, err);
}

/* Answers a unary call with |buf| (freed here). */
static void reply(struct dra_plugin *d, struct grpc_call *call, const char *path,
                  const char *method, uint8_t *buf, size_t len) {
        int r = grpc_call_reply(call, buf, len);

        if (r < 0 && r != -EPIPE)
                log_warn(d->cfg.driver, path, "%s: cannot send the answer: %s", method,
                         strerror(-r));
        free(buf);
}

static void on_get_info(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dra_plugin *d = userdata;
        uint8_t *buf;
        size_t blen;

        if (dra_encode_info(d->cfg.driver, d->dra_path, &buf, &blen) < 0) {
                reject(d, call, d->reg_path, "GetInfo", GRPC_STATUS_INTERNAL, "out of memory");
                return;
        }
        log_debug(d->cfg.driver, d->reg_path,
                  "GetInfo: endpoint %s, versions " DRA_VERSION_V1 ", " DRA_VERSION_V1BETA1,
                  d->dra_path);
        reply(d, call, d->reg_path, "GetInfo", buf, blen);
}

static void on_notify(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dra_plugin *d = userdata;
        char err[256], reason[512];
        enum grpc_status st;
        bool registered;
        uint8_t *buf;
        size_t blen;

        st = dra_handle_notify(req, len, &registered, reason, sizeof(reason), &buf, &blen, err,
                               sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(d, call, d->reg_path, "NotifyRegistrationStatus", st, err);
                return;
        }
        if (registered)
                log_info(d->cfg.driver, d->reg_path,
                         "registered with the kubelet as DRA driver %s, endpoint %s", d->cfg.driver,
                         d->dra_path);
        else
                log_warn(d->cfg.driver, d->reg_path,
                         "the kubelet refused to register DRA driver %s: %s", d->cfg.driver,
                         reason[0] ? reason : "(no reason given)");
        reply(d, call, d->reg_path, "NotifyRegistrationStatus", buf, blen);
}

static void on_prepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dra_plugin *d = userdata;
        char err[256], method[64];
        enum grpc_status st;
        size_t blen, n;
        uint8_t *buf;

        method_name(call, method, sizeof(method));
        st = dra_handle_prepare(&d->cfg, req, len, &buf, &blen, &n, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(d, call, d->dra_path, method, st, err);
                return;
        }
        log_warn(d->cfg.driver, d->dra_path, "%s: %zu claim(s) not prepared: %s", method, n,
                 DRA_PREPARE_UNAVAILABLE);
        reply(d, call, d->dra_path, method, buf, blen);
}

static void on_unprepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dra_plugin *d = userdata;
        char err[256], method[64];
        enum grpc_status st;
        size_t blen, n;
        uint8_t *buf;

        method_name(call, method, sizeof(method));
        st = dra_handle_unprepare(&d->cfg, req, len, &buf, &blen, &n, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(d, call, d->dra_path, method, st, err);
                return;
        }
        log_info(d->cfg.driver, d->dra_path, "%s: %zu claim(s) unprepared", method, n);
        reply(d, call, d->dra_path, method, buf, blen);
}

/* ---- directories and watches ---- */

static bool is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Writes |path| or, when it does not exist, its nearest existing ancestor directory. */
static void nearest_existing(const char *path, char *out, size_t size) {
        snprintf(out, size, "%s", path);
        while (!is_dir(out)) {
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

/* Writes the directory that holds |path| ("/" for a top-level one). */
static void parent_dir(const char *path, char *out, size_t size) {
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

/* mkdir -p |path| with |mode|. Returns 0 or -errno. */
static int make_dirs(const char *path, mode_t mode) {
        char buf[PATH_MAX];
        size_t len = strlen(path);

        if (len >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return is_dir(buf) ? 0 : -ENOTDIR;
}

/*
 * Watches both directories and their parents (a directory removed while our socket is bound in
 * it may send no IN_DELETE_SELF of its own), each as its nearest existing ancestor.
 */
static void sync_watches(struct dra_plugin *d) {
        const char *dirs[] = {d->cfg.registry_dir, d->cfg.dra_dir};
        char paths[MAX_WATCHES][PATH_MAX], parent[PATH_MAX];
        int wds[MAX_WATCHES];
        size_t n = 0, n_wds = 0;

        for (size_t i = 0; i < 2; i++) {
                nearest_existing(dirs[i], paths[n++], PATH_MAX);
                parent_dir(dirs[i], parent, sizeof(parent));
                nearest_existing(parent, paths[n++], PATH_MAX);
        }
        for (size_t i = 0; i < n; i++) {
                int wd = inotify_add_watch(d->inotify_fd, paths[i], WATCH_MASK);
                if (wd < 0) {
                        log_debug(d->cfg.driver, paths[i],
                                  "cannot watch directory: %s, relying on rescans",
                                  strerror(errno));
                        continue;
                }
                wds[n_wds++] = wd;
        }
        for (size_t i = 0; i < d->n_wds; i++) {
                bool keep = false;
                for (size_t j = 0; j < n_wds; j++)
                        keep = keep || wds[j] == d->wds[i];
                if (!keep)
                        (void) inotify_rm_watch(d->inotify_fd, d->wds[i]);
        }
        memcpy(d->wds, wds, n_wds * sizeof(int));
        d->n_wds = n_wds;
}

/*
 * Binds |path| with |methods| into *srv unless *srv is bound there and still ours. A path that
 * names someone else's file (a second daemon during a rolling update) is left to them: we bind
 * again only once it is gone, so two daemons never take a socket from each other in turn.
 * *taken_logged says that was logged. Returns 1 when it (re)bound, 0 when nothing was to do
 * (or the path is another's), -errno.
 */
static int sync_server(struct dra_plugin *d, struct grpc_server **srv, const char *path,
                       const struct grpc_method *methods, size_t n_methods, bool *taken_logged) {
        const struct grpc_server_config gcfg = {
                .methods = methods,
                .n_methods = n_methods,
                .userdata = d,
                .max_recv_msg = 0,
                .log_resource = d->cfg.driver,
        };
        struct stat st;

        if (*srv && grpc_server_owns_path(*srv))
                return 0;
        if (*srv && lstat(path, &st) == 0) {
                if (!*taken_logged)
                        log_warn(d->cfg.driver, path,
                                 "our socket was replaced by another process's, leaving it to "
                                 "them until it goes");
                *taken_logged = true;
                return 0;
        }
        *taken_logged = false;
        /* ends the old connections; unlinks nothing, since the path is no longer ours */
        *srv = grpc_server_free(*srv);
        int r = grpc_server_new(d->loop, path, &gcfg, srv);
        return r < 0 ? r : 1;
}

static void sync_dra(struct dra_plugin *d) {
        bool had = d->dra != NULL;
        int r = make_dirs(d->cfg.dra_dir, 0750);

        if (r == 0)
                r = sync_server(d, &d->dra, d->dra_path, dra_methods,
                                sizeof(dra_methods) / sizeof(dra_methods[0]), &d->dra_taken);
        if (r < 0) {
                if (r != d->dra_error)
                        log_error(d->cfg.driver, d->dra_path,
                                  "cannot serve the DRA socket: %s, retrying on the next change",
                                  strerror(-r));
                d->dra_error = r;
                return;
        }
        d->dra_error = 0;
        if (r == 1)
                log_info(d->cfg.driver, d->dra_path, "%s",
                         had ? "DRA socket was removed, serving again" : "serving the DRA service");
}

static void sync_registration(struct dra_plugin *d) {
        bool had = d->reg != NULL;
        int r;

        if (!is_dir(d->cfg.registry_dir)) {
                if (!d->reg_missing_logged)
                        log_warn(d->cfg.driver, d->cfg.registry_dir,
                                 "kubelet plugin registry directory does not exist yet, watching "
                                 "for it");
                d->reg_missing_logged = true;
                return;
        }
        d->reg_missing_logged = false;
        /* the kubelet dials the endpoint once registered: only offer it while dra.sock is up */
        if (!d->dra)
                return;
        r = sync_server(d, &d->reg, d->reg_path, reg_methods,
                        sizeof(reg_methods) / sizeof(reg_methods[0]), &d->reg_taken);
        if (r < 0)
                log_error(d->cfg.driver, d->reg_path,
                          "cannot serve the registration socket: %s, retrying on the next change",
                          strerror(-r));
        else if (r == 1)
                log_info(d->cfg.driver, d->reg_path, "%s, waiting for the kubelet",
                         had ? "registration socket was removed, serving it again"
                             : "serving the registration socket");
}

void dra_plugin_resync(struct dra_plugin *d) {
        sync_watches(d);
        sync_dra(d);
        sync_registration(d);
}

static void drain_inotify(struct dra_plugin *d) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        while (read(d->inotify_fd, buf, sizeof(buf)) > 0)
                ;
}

static void on_inotify(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct dra_plugin *d = userdata;

        drain_inotify(d);
        dra_plugin_resync(d);
}

static void on_rescan(struct loop_source *s, void *userdata) {
        struct dra_plugin *d = userdata;

        drain_inotify(d);
        dra_plugin_resync(d);
}

int dra_plugin_new(struct loop *l, const struct dra_config *cfg, struct dra_plugin **ret) {
        struct dra_plugin *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        d->loop = l;
        d->cfg = *cfg;
        d->inotify_fd = -1;
        r = dra_socket_paths(cfg, d->reg_path, d->dra_path, sizeof(d->reg_path));
        if (r < 0)
                goto out_free;

        d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (d->inotify_fd < 0) {
                r = -errno;
                goto out_free;
        }
        r = loop_add_io(l, d->inotify_fd, EPOLLIN, on_inotify, d, &d->inotify_src);
        if (r < 0)
                goto out_free;
        r = loop_add_timer(l, on_rescan, d, &d->rescan);
        if (r < 0)
                goto out_free;
        r = loop_timer_arm(d->rescan, DRA_RESCAN_USEC, DRA_RESCAN_USEC);
        if (r < 0)
                goto out_free;

        dra_plugin_resync(d);
        *ret = d;
        return 0;

out_free:
        dra_plugin_free(d);
        return r;
}

struct dra_plugin *dra_plugin_free(struct dra_plugin *d) {
        if (!d)
                return NULL;
        /* the registration first: the kubelet must not find us while dra.sock goes */
        d->reg = grpc_server_free(d->reg);
        d->dra = grpc_server_free(d->dra);
        d->rescan = loop_source_free(d->rescan);
        d->inotify_src = loop_source_free(d->inotify_src);
        if (d->inotify_fd >= 0)
                close(d->inotify_fd);
        free(d);
        return NULL;
}

const char *dra_plugin_reg_path(const struct dra_plugin *d) {
        return d->reg_path;
}

const char *dra_plugin_dra_path(const struct dra_plugin *d) {
        return d->dra_path;
}

bool dra_plugin_serving(const struct dra_plugin *d) {
        return d->reg && grpc_server_owns_path(d->reg) && d->dra && grpc_server_owns_path(d->dra);
}
