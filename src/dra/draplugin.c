/*
 * draplugin.c - the kubelet side of the DRA driver (see draplugin.h): the Registration and
 * DRAPlugin answers, and the service that serves them on D-reg.sock and dra.sock and keeps both
 * sockets there.
 *
 * Owns: the PluginInfo we give, the decoding of NodePrepareResources and NodeUnprepareResources
 * and the calls waiting for their answers, the two grpc_servers, the inotify watches on
 * --plugins-registry and --dra-dir and the safety-net rescan. Leaves to others: HTTP/2 and gRPC
 * framing (grpc_server.c), reading claims and the checkpoint (claims.c's worker, whose answers
 * come back through the loop), the ResourceSlices (slices.c).
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
#include <time.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "claims.h"
#include "dra_health_v1.pb-c.h"
#include "dra_v1.pb-c.h"
#include "grpc_server.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "pluginregistration.pb-c.h"
#include "slices.h"
#include "text.h"

/* The v1 messages, which v1beta1 shares byte for byte. */
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesRequest PrepareRequest;

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)
#define MAX_WATCHES 4
#define WATCH_MASK                                                                             \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
         IN_ONLYDIR)

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

/* ---- Registration ---- */

int dra_encode_info(const char *driver, const char *endpoint, uint8_t **ret_buf, size_t *ret_len) {
        Pluginregistration__PluginInfo info = PLUGINREGISTRATION__PLUGIN_INFO__INIT;
        char *versions[] = {(char *) DRA_VERSION_V1, (char *) DRA_VERSION_V1BETA1,
                            (char *) DRA_VERSION_HEALTH};
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

enum grpc_status dra_decode_claims(const uint8_t *req, size_t len, const char *what,
                                   struct dra_claim_ref **ret_refs, size_t *ret_n, void **ret_msg,
                                   char *err, size_t errsz) {
        PrepareRequest *r;
        struct dra_claim_ref *refs;

        /* NodeUnprepareResourcesRequest has the same single field: one decoder for both */
        r = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__unpack(NULL, len,
                                                                                         req);
        if (!r) {
                errline(err, errsz, "undecodable %s (%zu bytes)", what, len);
                return GRPC_STATUS_INVALID_ARGUMENT;
        }
        refs = calloc(r->n_claims ? r->n_claims : 1, sizeof(*refs));
        if (!refs) {
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__free_unpacked(
                        r, NULL);
                errline(err, errsz, "out of memory");
                return GRPC_STATUS_INTERNAL;
        }
        for (size_t i = 0; i < r->n_claims; i++)
                refs[i] = (struct dra_claim_ref){.ns = r->claims[i]->namespace_,
                                                 .uid = r->claims[i]->uid,
                                                 .name = r->claims[i]->name};
        *ret_refs = refs;
        *ret_n = r->n_claims;
        *ret_msg = r;
        return GRPC_STATUS_OK;
}

int dra_encode_health(const char *pool_name, const struct dra_device_health *devs, size_t n,
                      unsigned slots, uint8_t **ret_buf, size_t *ret_len) {
        V1__NodeWatchResourcesResponse resp = V1__NODE_WATCH_RESOURCES_RESPONSE__INIT;
        size_t per = slots ? slots : 1, total = n * per, len;
        V1__DeviceIdentifier *ids = calloc(total ? total : 1, sizeof(*ids));
        V1__DeviceHealth *hs = calloc(total ? total : 1, sizeof(*hs));
        V1__DeviceHealth **ptrs = calloc(total ? total : 1, sizeof(*ptrs));
        char *names = calloc(total ? total : 1, 24);
        uint8_t *buf = NULL;
        int r = -ENOMEM;

        if (!ids || !hs || !ptrs || !names)
                goto out_free;
        for (size_t i = 0; i < total; i++) {
                const struct dra_device_health *dev = &devs[i / per];
                char *name = names + i * 24;

                if (slots) /* the slot devices of --dra-slots share their class's health */
                        snprintf(name, 24, "%s-%zu", dev->name, i % per);
                else
                        snprintf(name, 24, "%s", dev->name);
                v1__device_identifier__init(&ids[i]);
                ids[i].pool_name = (char *) pool_name;
                ids[i].device_name = name;
                v1__device_health__init(&hs[i]);
                hs[i].device = &ids[i];
                hs[i].health =
                        dev->healthy ? V1__HEALTH_STATUS__HEALTHY : V1__HEALTH_STATUS__UNHEALTHY;
                hs[i].last_updated_time = dev->since;
                hs[i].message = (char *) (dev->healthy ? "enclave device present"
                                                       : "enclave device vanished from the node");
                ptrs[i] = &hs[i];
        }
        resp.n_devices = total;
        resp.devices = ptrs;
        len = v1__node_watch_resources_response__get_packed_size(&resp);
        buf = out_alloc(len);
        if (!buf)
                goto out_free;
        *ret_len = v1__node_watch_resources_response__pack(&resp, buf);
        *ret_buf = buf;
        r = 0;
out_free:
        free(names);
        free(ptrs);
        free(hs);
        free(ids);
        return r;
}

void dra_claims_msg_free(void *msg) {
        if (msg)
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__free_unpacked(
                        msg, NULL);
}

/* ---- the service ---- */

/* A NodePrepareResources / NodeUnprepareResources call waiting for its job. */
struct pending {
        uint64_t job;
        struct grpc_call *call; /* NULL once the call ended (the kubelet gave up) */
        char method[64];
        uint64_t started_usec;
};

/* An open NodeWatchResources stream and the health generation it was sent. */
struct health_stream {
        struct grpc_call *call;
        uint64_t sent_gen;
};

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
        struct dra_claims *claims; /* the worker that prepares */
        struct dra_device_health health[DRA_MAX_DEVICES]; /* every device seen since start */
        size_t n_health;
        struct health_stream *streams; /* open NodeWatchResources streams */
        size_t n_streams, n_streams_alloc;
        uint64_t health_gen;     /* bumped by each change, to broadcast once per stream */
        unsigned health_slots;   /* --dra-slots: devices per class, 0 = one shared device */
        struct pending *pending; /* calls waiting for the worker */
        size_t n_pending, n_pending_alloc;

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

static void on_watch(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata);

static const struct grpc_method dra_methods[] = {
        {"/v1.DRAResourceHealth/NodeWatchResources", true, on_watch},
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

/* Hands the claims of a prepare or unprepare to the worker; the call waits for on_job_done. */
static void submit(struct dra_plugin *d, struct grpc_call *call, const uint8_t *req, size_t len,
                   enum dra_job_kind kind, const char *what) {
        struct dra_claim_ref *refs = NULL;
        char err[256], method[64];
        enum grpc_status st;
        void *msg = NULL;
        uint64_t job;
        size_t n = 0;
        int r;

        method_name(call, method, sizeof(method));
        st = dra_decode_claims(req, len, what, &refs, &n, &msg, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                reject(d, call, d->dra_path, method, st, err);
                return;
        }
        if (kind == DRA_JOB_UNPREPARE && n == 0) {
                /* nothing to unprepare: the empty answer at once, not behind the worker's queue
                 * (`sgxdevplugin health` asks this to see that the loop answers dra.sock) */
                static const uint8_t empty[1];

                r = grpc_call_reply(call, empty, 0);
                if (r < 0 && r != -EPIPE)
                        log_warn(d->cfg.driver, d->dra_path, "%s: cannot send the answer: %s",
                                 method, strerror(-r));
                goto out_free;
        }
        if (d->n_pending == d->n_pending_alloc) {
                size_t na = d->n_pending_alloc ? d->n_pending_alloc * 2 : 4;
                struct pending *a = realloc(d->pending, na * sizeof(*a));

                if (!a) {
                        reject(d, call, d->dra_path, method, GRPC_STATUS_INTERNAL, "out of memory");
                        goto out_free;
                }
                d->pending = a;
                d->n_pending_alloc = na;
        }
        r = dra_claims_submit(d->claims, kind, refs, n, &job);
        if (r < 0) {
                reject(d, call, d->dra_path, method, GRPC_STATUS_INTERNAL, "out of memory");
                goto out_free;
        }
        d->pending[d->n_pending] =
                (struct pending){.job = job, .call = call, .started_usec = loop_now_usec()};
        snprintf(d->pending[d->n_pending].method, sizeof(d->pending[0].method), "%s", method);
        d->n_pending++;
        grpc_call_set_userdata(call, d); /* marks it as waiting, for on_call_closed */
        log_debug(d->cfg.driver, d->dra_path, "%s: %zu claim(s) handed to the worker", method, n);
out_free:
        free(refs);
        dra_claims_msg_free(msg);
}

static void on_prepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        submit(userdata, call, req, len, DRA_JOB_PREPARE, "NodePrepareResourcesRequest");
}

static void on_unprepare(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        submit(userdata, call, req, len, DRA_JOB_UNPREPARE, "NodeUnprepareResourcesRequest");
}

/* The worker answered job |job|: send it on its call, if the kubelet still waits. */
static void on_job_done(void *userdata, uint64_t job, const uint8_t *resp, size_t len) {
        struct dra_plugin *d = userdata;
        struct pending p;
        size_t i;
        int r;

        for (i = 0; i < d->n_pending && d->pending[i].job != job; i++)
                ;
        if (i == d->n_pending)
                return;
        p = d->pending[i];
        d->pending[i] = d->pending[--d->n_pending];
        if (!p.call) {
                log_warn(d->cfg.driver, d->dra_path,
                         "%s: answered after %.1f s, but the kubelet no longer waits; it will ask again",
                         p.method, (double) (loop_now_usec() - p.started_usec) / 1e6);
                return;
        }
        grpc_call_set_userdata(p.call, NULL);
        if (!resp) {
                reject(d, p.call, d->dra_path, p.method, GRPC_STATUS_INTERNAL, "out of memory");
                return;
        }
        r = grpc_call_reply(p.call, resp, len);
        if (r < 0 && r != -EPIPE)
                log_warn(d->cfg.driver, d->dra_path, "%s: cannot send the answer: %s", p.method,
                         strerror(-r));
}

static void on_call_closed(struct grpc_call *call, bool by_peer, void *userdata) {
        struct dra_plugin *d = userdata;

        if (grpc_call_get_userdata(call) == &d->streams) {
                for (size_t i = 0; i < d->n_streams; i++)
                        if (d->streams[i].call == call)
                                d->streams[i] = d->streams[--d->n_streams];
                log_debug(d->cfg.driver, d->dra_path, "NodeWatchResources ended by %s, %zu left",
                          by_peer ? "the kubelet" : "us", d->n_streams);
                return;
        }
        if (grpc_call_get_userdata(call) != d)
                return; /* answered, or no job */
        for (size_t i = 0; i < d->n_pending; i++)
                if (d->pending[i].call == call)
                        d->pending[i].call = NULL;
}

/* ---- device health ---- */

/* Sends the whole health list to |call|. */
static void send_health(struct dra_plugin *d, struct grpc_call *call) {
        uint8_t *buf;
        size_t len;
        int r;

        if (dra_encode_health(d->cfg.pool ? d->cfg.pool : "", d->health, d->n_health,
                              d->health_slots, &buf, &len) < 0) {
                log_error(d->cfg.driver, d->dra_path,
                          "cannot encode the device health: out of memory, not sending it");
                return;
        }
        /* each message is the whole state: one a slow reader has not begun to get is dropped */
        r = grpc_call_send_latest(call, buf, len);
        if (r < 0 && r != -EPIPE)
                log_warn(d->cfg.driver, d->dra_path,
                         "cannot send the device health: %s, keeping the stream", strerror(-r));
        free(buf);
}

static void on_watch(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct dra_plugin *d = userdata;

        if (d->n_streams == d->n_streams_alloc) {
                size_t n = d->n_streams_alloc ? d->n_streams_alloc * 2 : 2;
                struct health_stream *a = realloc(d->streams, n * sizeof(*a));

                if (!a) {
                        reject(d, call, d->dra_path, "NodeWatchResources", GRPC_STATUS_INTERNAL,
                               "out of memory");
                        return;
                }
                d->streams = a;
                d->n_streams_alloc = n;
        }
        d->streams[d->n_streams++] =
                (struct health_stream){.call = call, .sent_gen = d->health_gen};
        grpc_call_set_userdata(call, &d->streams); /* marks it as a stream, for on_call_closed */
        log_debug(d->cfg.driver, d->dra_path, "NodeWatchResources opened, %zu stream(s)",
                  d->n_streams);
        send_health(d, call);
}

void dra_plugin_set_devices(struct dra_plugin *d, const struct dra_pool *pool) {
        int64_t now = (int64_t) time(NULL);
        bool changed = pool->slots != d->health_slots;

        d->health_slots = pool->slots;
        /* new devices */
        for (size_t i = 0; i < pool->n; i++) {
                size_t j;

                for (j = 0; j < d->n_health && strcmp(d->health[j].name, pool->dev[i].name); j++)
                        ;
                if (j == d->n_health && d->n_health < DRA_MAX_DEVICES) {
                        snprintf(d->health[j].name, sizeof(d->health[j].name), "%s",
                                 pool->dev[i].name);
                        d->health[j].healthy = false; /* turned healthy below */
                        d->n_health++;
                }
        }
        /* every device seen: healthy when in the pool now */
        for (size_t j = 0; j < d->n_health; j++) {
                struct dra_device_health *h = &d->health[j];
                bool present = false;

                for (size_t i = 0; i < pool->n; i++)
                        present = present || strcmp(pool->dev[i].name, h->name) == 0;
                if (present == h->healthy && h->since)
                        continue;
                h->healthy = present;
                h->since = now;
                changed = true;
                log_info(d->cfg.driver, d->dra_path, "device %s %s, %zu health stream(s) told",
                         h->name, present ? "healthy" : "vanished: unhealthy", d->n_streams);
        }
        if (!changed)
                return;
        /*
         * Sending may, in principle, end calls (and so change the set) under us: each stream is
         * marked with the generation it got, and the scan restarts after every send.
         */
        d->health_gen++;
        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < d->n_streams; i++) {
                        if (d->streams[i].sent_gen == d->health_gen)
                                continue;
                        d->streams[i].sent_gen = d->health_gen;
                        send_health(d, d->streams[i].call);
                        again = true;
                        break;
                }
        }
}

/* ---- directories and watches ---- */

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
                fileio_nearest_existing(dirs[i], paths[n++], PATH_MAX);
                fileio_parent_dir(dirs[i], parent, sizeof(parent));
                fileio_nearest_existing(parent, paths[n++], PATH_MAX);
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
                .on_call_closed = on_call_closed,
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
                                 "our socket was replaced by another process's, leaving it to them until it goes");
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
        int r = fileio_make_dirs(d->cfg.dra_dir, 0750);

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

        if (!fileio_is_dir(d->cfg.registry_dir)) {
                if (!d->reg_missing_logged)
                        log_warn(d->cfg.driver, d->cfg.registry_dir,
                                 "kubelet plugin registry directory does not exist yet, watching for it");
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
        r = fileio_make_dirs(cfg->dra_dir, 0750); /* the checkpoint's home; sync_dra() says why not */
        if (r < 0)
                log_debug(cfg->driver, cfg->dra_dir, "cannot make the directory: %s", strerror(-r));
        const struct dra_claims_config ccfg = {
                .driver = cfg->driver,
                .pool = cfg->pool ? cfg->pool : "",
                .dra_dir = cfg->dra_dir,
                .api = cfg->api,
                .provision = cfg->provision,
                .on_done = on_job_done,
                .userdata = d,
        };
        r = dra_claims_start(l, &ccfg, &d->claims);
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
        d->dra = grpc_server_free(d->dra); /* ends the waiting calls (on_call_closed) */
        d->claims = dra_claims_stop(d->claims);
        free(d->pending);
        free(d->streams);
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
