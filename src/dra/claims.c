/*
 * claims.c - preparing and unpreparing ResourceClaims (see claims.h): reading a claim and the
 * checkpoint (pure, jansson), and the worker thread that GETs claims, keeps the prepared ones,
 * writes the checkpoint and encodes the answers the loop sends.
 *
 * Threads: the loop calls dra_claims_submit() (queues a copy, signals the condition) and, on the
 * done eventfd, takes the finished jobs and calls on_done. The worker owns the prepared claims and
 * the checkpoint file; the lock guards only the two queues and |stopping|. dra_claims_stop()
 * writes the cancel eventfd, which an API request in flight polls.
 */
#include "claims.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "cdi.h"
#include "clock.h"
#include "dra_v1.pb-c.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "text.h"

#define CHECKPOINT_MAX (4u << 20) /* a checkpoint larger than this is not ours */

/* ---- pure ---- */

int dra_cdi_device_id(const char *driver, const char *device, bool provision, char *buf,
                      size_t size) {
        size_t len = strlen(device), end = len;
        const char *name = device;
        int n;

        /* a slot of --dra-slots ("dcap-7") is its class's device */
        while (end > 0 && device[end - 1] >= '0' && device[end - 1] <= '9')
                end--;
        if (end < len && end > 1 && device[end - 1] == '-')
                len = end - 1;
        if (len == 4 && strncmp(device, "dcap", 4) == 0)
                name = sgx_cdi_class_device(SGX_CLASS_DCAP, provision);
        else if (len == 3 && strncmp(device, "ias", 3) == 0)
                name = sgx_cdi_class_device(SGX_CLASS_IAS, provision);
        if (name != device)
                len = strlen(name);
        n = snprintf(buf, size, "%s/sgx=%.*s", driver, (int) len, name);
        return n < 0 || (size_t) n >= size ? -ENOSPC : 0;
}

static const char *str(const json_t *o, const char *key) {
        const char *v = json_string_value(json_object_get(o, key));
        return v ? v : "";
}

static bool copy(char *dst, size_t size, const char *src) {
        size_t n = strlen(src);

        if (n >= size)
                return false;
        memcpy(dst, src, n + 1);
        return true;
}

int dra_claim_read(const json_t *obj, const char *driver, const char *pool, struct dra_claim *c,
                   char *err, size_t errsz) {
        const json_t *md = json_object_get(obj, "metadata");
        const json_t *alloc = json_object_get(json_object_get(obj, "status"), "allocation");
        const json_t *results = json_object_get(json_object_get(alloc, "devices"), "results");
        char shown[80], others[160] = "";
        size_t n_others = 0;

        c->n = 0;
        if (strcmp(str(md, "uid"), c->uid) != 0) {
                text_printable(str(md, "uid"), strnlen(str(md, "uid"), 64), shown, sizeof(shown));
                errline(err, errsz,
                        "claim %s/%s has uid %s, not %s: the claim was deleted and made again",
                        c->ns, c->name, shown[0] ? shown : "(none)", c->uid);
                return -EINVAL;
        }
        if (!json_is_object(alloc)) {
                errline(err, errsz, "claim %s/%s is not allocated (no status.allocation)", c->ns,
                        c->name);
                return -EINVAL;
        }
        for (size_t i = 0; i < json_array_size(results); i++) {
                const json_t *r = json_array_get(results, i);
                struct dra_prepared_device *dev;

                if (strcmp(str(r, "driver"), driver) != 0 || strcmp(str(r, "pool"), pool) != 0) {
                        size_t len = strlen(others);

                        if (n_others++ < 2 && len < sizeof(others) - 1)
                                snprintf(others + len, sizeof(others) - len, "%s%.40s/%.60s",
                                         len ? ", " : "", str(r, "driver"), str(r, "pool"));
                        continue;
                }
                if (c->n == DRA_CLAIM_MAX_DEVICES) {
                        errline(err, errsz, "claim %s/%s has more than %u results of %s", c->ns,
                                c->name, DRA_CLAIM_MAX_DEVICES, driver);
                        return -EINVAL;
                }
                dev = &c->dev[c->n];
                if (!copy(dev->request, sizeof(dev->request), str(r, "request")) ||
                    !copy(dev->pool, sizeof(dev->pool), str(r, "pool")) ||
                    !copy(dev->device, sizeof(dev->device), str(r, "device")) || !dev->device[0]) {
                        errline(err, errsz, "claim %s/%s: a result of %s has no usable device name",
                                c->ns, c->name, driver);
                        return -EINVAL;
                }
                c->n++;
        }
        if (c->n == 0) {
                text_make_printable(others);
                errline(err, errsz,
                        "claim %s/%s has no device of driver %s in pool %s (its results: %s%s)",
                        c->ns, c->name, driver, pool, n_others ? others : "none",
                        n_others > 2 ? ", ..." : "");
                return -EINVAL;
        }
        return 0;
}

json_t *dra_checkpoint_json(const struct dra_claim *claims, size_t n) {
        json_t *arr = json_array(), *doc;

        if (!arr)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const struct dra_claim *c = &claims[i];
                json_t *devs = json_array(), *o;

                for (size_t j = 0; devs && j < c->n; j++) {
                        json_t *d = json_pack("{s:s,s:s,s:s}", "request", c->dev[j].request, "pool",
                                              c->dev[j].pool, "device", c->dev[j].device);
                        if (!d || json_array_append_new(devs, d) < 0) {
                                json_decref(devs);
                                devs = NULL;
                        }
                }
                o = devs ? json_pack("{s:s,s:s,s:s,s:o}", "uid", c->uid, "namespace", c->ns, "name",
                                     c->name, "devices", devs)
                         : NULL;
                if (!o || json_array_append_new(arr, o) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        doc = json_pack("{s:i,s:o}", "version", 1, "claims", arr);
        return doc;
}

int dra_checkpoint_parse(const json_t *doc, struct dra_claim **ret, size_t *ret_n, char *err,
                         size_t errsz) {
        const json_t *arr = json_object_get(doc, "claims");
        struct dra_claim *claims;
        size_t n = json_array_size(arr);

        if (json_integer_value(json_object_get(doc, "version")) != 1 || !json_is_array(arr)) {
                errline(err, errsz, "not a version 1 checkpoint");
                return -EINVAL;
        }
        claims = calloc(n ? n : 1, sizeof(*claims));
        if (!claims)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const json_t *o = json_array_get(arr, i), *devs = json_object_get(o, "devices");
                struct dra_claim *c = &claims[i];

                if (!copy(c->uid, sizeof(c->uid), str(o, "uid")) || !c->uid[0] ||
                    !copy(c->ns, sizeof(c->ns), str(o, "namespace")) ||
                    !copy(c->name, sizeof(c->name), str(o, "name")) ||
                    json_array_size(devs) > DRA_CLAIM_MAX_DEVICES) {
                        errline(err, errsz, "claim %zu is malformed", i);
                        free(claims);
                        return -EINVAL;
                }
                for (size_t j = 0; j < json_array_size(devs); j++) {
                        const json_t *d = json_array_get(devs, j);
                        struct dra_prepared_device *dev = &c->dev[j];

                        if (!copy(dev->request, sizeof(dev->request), str(d, "request")) ||
                            !copy(dev->pool, sizeof(dev->pool), str(d, "pool")) ||
                            !copy(dev->device, sizeof(dev->device), str(d, "device"))) {
                                errline(err, errsz, "claim %s: device %zu is malformed", c->uid, j);
                                free(claims);
                                return -EINVAL;
                        }
                }
                c->n = json_array_size(devs);
        }
        *ret = claims;
        *ret_n = n;
        return 0;
}

/* ---- the worker ---- */

struct job {
        uint64_t id;
        enum dra_job_kind kind;
        uint64_t submitted_ms;
        size_t n;
        struct dra_claim_ref *refs; /* strings point into |strings| */
        char *strings;
        uint8_t *resp; /* the answer, once done */
        size_t resp_len;
        struct job *next;
};

struct dra_claims {
        char driver[256];
        char pool[256];
        char checkpoint[PATH_MAX];
        bool provision; /* from the config */
        struct api_config api;
        bool have_api;
        dra_get_fn get;
        void *get_userdata;
        unsigned budget_ms;
        dra_job_done_fn on_done;
        void *userdata;

        /* the worker's own */
        struct dra_claim *prepared;
        size_t n_prepared, n_alloc;

        int cancel_fd; /* eventfd: readable once stopping */
        int done_fd;   /* eventfd: jobs are done */
        struct loop_source *done_src;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t mu; /* guards everything below */
        pthread_cond_t cond;
        bool stopping;
        struct job *todo, *todo_tail;
        struct job *done, *done_tail;
        uint64_t next_id;
};

static void job_free(struct job *j) {
        if (!j)
                return;
        free(j->refs);
        free(j->strings);
        free(j->resp);
        free(j);
}

static int default_get(void *userdata, const char *path, unsigned timeout_ms, int cancel_fd,
                       struct api_response *resp, char *err, size_t errsz) {
        struct dra_claims *c = userdata;
        struct api_config cfg = c->api;

        /* --api-timeout, or less when the batch's budget has less left */
        if (timeout_ms < cfg.timeout_ms)
                cfg.timeout_ms = timeout_ms;
        return api_request(&cfg, "GET", path, NULL, NULL, 0, cancel_fd, resp, err, errsz);
}

static struct dra_claim *find_prepared(struct dra_claims *c, const char *uid) {
        for (size_t i = 0; i < c->n_prepared; i++)
                if (strcmp(c->prepared[i].uid, uid) == 0)
                        return &c->prepared[i];
        return NULL;
}

/* Writes the prepared claims to the checkpoint, atomically. Logs a failure. */
static int save(struct dra_claims *c) {
        json_t *doc = dra_checkpoint_json(c->prepared, c->n_prepared);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        int r = text ? fileio_write_atomic(c->checkpoint, text, strlen(text), 0600) : -ENOMEM;

        if (r < 0)
                log_error(c->driver, c->checkpoint, "cannot write the checkpoint: %s",
                          strerror(-r));
        free(text);
        json_decref(doc);
        return r;
}

static void load(struct dra_claims *c) {
        char *text = NULL, err[256] = "", aside[PATH_MAX + 8];
        json_error_t e;
        json_t *doc;
        size_t len;
        int r = fileio_read(c->checkpoint, CHECKPOINT_MAX, &text, &len, NULL);

        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_error(c->driver, c->checkpoint,
                          "cannot read the checkpoint: %s, starting without it",
                          strerror(-r));
                return;
        }
        doc = json_loadb(text, len, 0, &e);
        free(text);
        r = doc ? dra_checkpoint_parse(doc, &c->prepared, &c->n_prepared, err, sizeof(err))
                : -EINVAL;
        json_decref(doc);
        if (r == 0) {
                c->n_alloc = c->n_prepared ? c->n_prepared : 1;
                log_info(c->driver, c->checkpoint, "%zu prepared claim(s) from the checkpoint",
                         c->n_prepared);
                return;
        }
        snprintf(aside, sizeof(aside), "%s.bad", c->checkpoint);
        (void) rename(c->checkpoint, aside);
        log_error(c->driver, c->checkpoint,
                  "the checkpoint is unreadable (%s), moved to %s, starting without it",
                  doc ? err : e.text, aside);
}

/* Prepares one claim into |out| (ns, uid, name set); or writes its error. */
static int prepare_one(struct dra_claims *c, struct dra_claim *out, uint64_t deadline_ms, char *err,
                       size_t errsz) {
        struct api_response resp = {0};
        char path[512], gerr[512] = "";
        const struct dra_claim *have = find_prepared(c, out->uid);
        uint64_t now = monotonic_ms();
        json_error_t e;
        json_t *obj;
        int r;

        if (have) {
                *out = *have; /* idempotent: as prepared before */
                return 0;
        }
        if (!c->have_api && !c->get) {
                errline(err, errsz, "claim %s/%s: no API server to read it from", out->ns,
                        out->name);
                return -ENOTCONN;
        }
        if (now + 100 >= deadline_ms) {
                errline(err, errsz,
                        "claim %s/%s: no time left in this call to read it, the kubelet will ask again",
                        out->ns, out->name);
                return -ETIMEDOUT;
        }
        snprintf(path, sizeof(path), "/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/%s",
                 out->ns, out->name);
        r = c->get(c->get_userdata, path, (unsigned) (deadline_ms - now), c->cancel_fd, &resp, gerr,
                   sizeof(gerr));
        if (r < 0) {
                errline(err, errsz, "claim %s/%s: cannot read it from the API server: %s", out->ns,
                        out->name, gerr[0] ? gerr : strerror(-r));
                return r;
        }
        if (resp.status != 200) {
                errline(err, errsz, "claim %s/%s: reading it from the API server: HTTP %d: %s%s",
                        out->ns, out->name, resp.status,
                        resp.message[0] ? resp.message : "(no message)",
                        resp.status == 403 ? " (the service account needs RBAC: get on resourceclaims in apiGroup resource.k8s.io)"
                                           : "");
                api_response_clear(&resp);
                return -EPROTO;
        }
        obj = json_loadb(resp.body, resp.body_len, 0, &e);
        api_response_clear(&resp);
        if (!json_is_object(obj)) {
                errline(err, errsz, "claim %s/%s: the API server's answer is not a JSON object",
                        out->ns, out->name);
                json_decref(obj);
                return -EPROTO;
        }
        r = dra_claim_read(obj, c->driver, c->pool, out, err, errsz);
        json_decref(obj);
        if (r < 0)
                return r;
        if (c->n_prepared == c->n_alloc) {
                size_t n = c->n_alloc ? c->n_alloc * 2 : 4;
                struct dra_claim *a = realloc(c->prepared, n * sizeof(*a));

                if (!a) {
                        errline(err, errsz, "claim %s/%s: out of memory", out->ns, out->name);
                        return -ENOMEM;
                }
                c->prepared = a;
                c->n_alloc = n;
        }
        c->prepared[c->n_prepared++] = *out;
        r = save(c);
        if (r < 0) {
                c->n_prepared--; /* not prepared unless the checkpoint says so */
                errline(err, errsz, "claim %s/%s: cannot write the checkpoint: %s", out->ns,
                        out->name, strerror(-r));
                return r;
        }
        return 1;
}

typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Device Device;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourceResponse PrepareResult;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse__ClaimsEntry
        PrepareEntry;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry
        UnprepareEntry;

/* True when an earlier ref of |refs| has the UID of refs[i]. */
static bool uid_seen(const struct dra_claim_ref *refs, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (strcmp(refs[j].uid, refs[i].uid) == 0)
                        return true;
        return false;
}

/* The per-device arrays one prepared claim needs in the answer. */
struct answer {
        struct dra_claim claim;
        char error[768];
        Device devs[DRA_CLAIM_MAX_DEVICES];
        Device *dev_ptrs[DRA_CLAIM_MAX_DEVICES];
        char *request_ptrs[DRA_CLAIM_MAX_DEVICES];
        char cdi[DRA_CLAIM_MAX_DEVICES][320];
        char *cdi_ptrs[DRA_CLAIM_MAX_DEVICES];
        PrepareResult result;
        PrepareEntry entry;
};

static void run_prepare(struct dra_claims *c, struct job *j) {
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse resp =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_PREPARE_RESOURCES_RESPONSE__INIT;
        uint64_t deadline = j->submitted_ms + c->budget_ms;
        struct answer *ans = calloc(j->n ? j->n : 1, sizeof(*ans));
        PrepareEntry **entries = calloc(j->n ? j->n : 1, sizeof(*entries));
        size_t n = 0, ok = 0, fresh = 0;

        if (!ans || !entries)
                goto out_free;
        for (size_t i = 0; i < j->n; i++) {
                struct answer *a = &ans[n];
                const struct dra_claim_ref *ref = &j->refs[i];
                int r;

                if (uid_seen(j->refs, i))
                        continue;
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__claims_entry__init(
                        &a->entry);
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resource_response__init(
                        &a->result);
                a->entry.key = (char *) ref->uid;
                a->entry.value = &a->result;
                entries[n++] = &a->entry;
                if (!copy(a->claim.uid, sizeof(a->claim.uid), ref->uid) || !ref->uid[0] ||
                    !copy(a->claim.ns, sizeof(a->claim.ns), ref->ns) || !ref->ns[0] ||
                    !copy(a->claim.name, sizeof(a->claim.name), ref->name) || !ref->name[0]) {
                        char ns[80], name[80], uid[80];

                        text_printable(ref->ns, strnlen(ref->ns, 64), ns, sizeof(ns));
                        text_printable(ref->name, strnlen(ref->name, 64), name, sizeof(name));
                        text_printable(ref->uid, strnlen(ref->uid, 64), uid, sizeof(uid));
                        errline(a->error, sizeof(a->error),
                                "claim %s/%s (uid \"%s\"): namespace, name and uid are all required, within 63, 253 and 63 characters",
                                ns, name, uid);
                        a->result.error = a->error;
                        continue;
                }
                r = prepare_one(c, &a->claim, deadline, a->error, sizeof(a->error));
                if (r < 0) {
                        log_warn(c->driver, NULL, "NodePrepareResources: %s", a->error);
                        a->result.error = a->error;
                        continue;
                }
                ok++;
                fresh += r == 1;
                for (size_t k = 0; k < a->claim.n; k++) {
                        Device *d = &a->devs[k];

                        k8s__io__kubelet__pkg__apis__dra__v1__device__init(d);
                        a->request_ptrs[k] = a->claim.dev[k].request;
                        d->n_request_names = a->claim.dev[k].request[0] ? 1 : 0;
                        d->request_names = &a->request_ptrs[k];
                        d->pool_name = a->claim.dev[k].pool;
                        d->device_name = a->claim.dev[k].device;
                        (void) dra_cdi_device_id(c->driver, a->claim.dev[k].device, c->provision,
                                                 a->cdi[k],
                                                 sizeof(a->cdi[k]));
                        a->cdi_ptrs[k] = a->cdi[k];
                        d->n_cdi_device_ids = 1;
                        d->cdi_device_ids = &a->cdi_ptrs[k];
                        a->dev_ptrs[k] = d;
                }
                a->result.n_devices = a->claim.n;
                a->result.devices = a->dev_ptrs;
                log_info(c->driver, c->checkpoint, "claim %s/%s (uid %s) %s: %zu device(s), %s%s",
                         a->claim.ns, a->claim.name, a->claim.uid,
                         r == 1 ? "prepared" : "already prepared", a->claim.n,
                         a->claim.n ? a->cdi[0] : "", a->claim.n > 1 ? ", ..." : "");
        }
        resp.n_claims = n;
        resp.claims = entries;
        j->resp_len =
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__get_packed_size(
                        &resp);
        j->resp = malloc(j->resp_len ? j->resp_len : 1);
        if (j->resp)
                (void) k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__pack(
                        &resp, j->resp);
        log_debug(c->driver, c->checkpoint,
                  "NodePrepareResources: %zu of %zu claim(s) prepared, %zu read from the API server",
                  ok, n, fresh);
out_free:
        free(entries);
        free(ans);
}

static void run_unprepare(struct dra_claims *c, struct job *j) {
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse resp =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_UNPREPARE_RESOURCES_RESPONSE__INIT;
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourceResponse ok =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_UNPREPARE_RESOURCE_RESPONSE__INIT;
        UnprepareEntry *entries = calloc(j->n ? j->n : 1, sizeof(*entries));
        UnprepareEntry **ptrs = calloc(j->n ? j->n : 1, sizeof(*ptrs));
        size_t n = 0, removed = 0;

        if (!entries || !ptrs)
                goto out_free;
        for (size_t i = 0; i < j->n; i++) {
                struct dra_claim *have;

                if (uid_seen(j->refs, i))
                        continue;
                k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__claims_entry__init(
                        &entries[n]);
                entries[n].key = (char *) j->refs[i].uid;
                entries[n].value = &ok;
                ptrs[n] = &entries[n];
                n++;
                have = find_prepared(c, j->refs[i].uid);
                if (!have)
                        continue; /* unknown: nothing to undo */
                log_info(c->driver, c->checkpoint, "claim %s/%s (uid %s) unprepared", have->ns,
                         have->name, have->uid);
                *have = c->prepared[--c->n_prepared];
                removed++;
        }
        /* a failed write leaves the claims in the checkpoint: unpreparing them again is harmless */
        if (removed)
                (void) save(c);
        resp.n_claims = n;
        resp.claims = ptrs;
        j->resp_len =
                k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__get_packed_size(
                        &resp);
        j->resp = malloc(j->resp_len ? j->resp_len : 1);
        if (j->resp)
                (void) k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__pack(
                        &resp, j->resp);
out_free:
        free(ptrs);
        free(entries);
}

static void *worker(void *arg) {
        struct dra_claims *c = arg;
        uint64_t one = 1;

        pthread_mutex_lock(&c->mu);
        for (;;) {
                struct job *j;

                while (!c->stopping && !c->todo)
                        pthread_cond_wait(&c->cond, &c->mu);
                if (c->stopping)
                        break;
                j = c->todo;
                c->todo = j->next;
                if (!c->todo)
                        c->todo_tail = NULL;
                pthread_mutex_unlock(&c->mu);

                if (j->kind == DRA_JOB_PREPARE)
                        run_prepare(c, j);
                else
                        run_unprepare(c, j);

                pthread_mutex_lock(&c->mu);
                j->next = NULL;
                if (c->done_tail)
                        c->done_tail->next = j;
                else
                        c->done = j;
                c->done_tail = j;
                if (write(c->done_fd, &one, sizeof(one)) < 0) {
                        /* an eventfd write only fails on overflow, which cannot happen here */
                }
        }
        pthread_mutex_unlock(&c->mu);
        return NULL;
}

static void on_done(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct dra_claims *c = userdata;
        struct job *list;
        uint64_t v;

        if (read(c->done_fd, &v, sizeof(v)) < 0) {
                /* EAGAIN: another wakeup took them */
        }
        pthread_mutex_lock(&c->mu);
        list = c->done;
        c->done = c->done_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        while (list) {
                struct job *j = list;

                list = j->next;
                c->on_done(c->userdata, j->id, j->resp, j->resp ? j->resp_len : 0);
                job_free(j);
        }
}

int dra_claims_submit(struct dra_claims *c, enum dra_job_kind kind,
                      const struct dra_claim_ref *claims, size_t n, uint64_t *ret_job) {
        struct job *j = calloc(1, sizeof(*j));
        size_t total = 0, off = 0;

        if (!j)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                total += strlen(claims[i].ns) + strlen(claims[i].uid) + strlen(claims[i].name) + 3;
        j->refs = calloc(n ? n : 1, sizeof(*j->refs));
        j->strings = malloc(total ? total : 1);
        if (!j->refs || !j->strings) {
                job_free(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const char *src[3] = {claims[i].ns, claims[i].uid, claims[i].name};
                const char **dst[3] = {&j->refs[i].ns, &j->refs[i].uid, &j->refs[i].name};

                for (int k = 0; k < 3; k++) {
                        size_t len = strlen(src[k]) + 1;

                        memcpy(j->strings + off, src[k], len);
                        *dst[k] = j->strings + off;
                        off += len;
                }
        }
        j->n = n;
        j->kind = kind;
        j->submitted_ms = monotonic_ms();
        pthread_mutex_lock(&c->mu);
        j->id = ++c->next_id;
        if (c->todo_tail)
                c->todo_tail->next = j;
        else
                c->todo = j;
        c->todo_tail = j;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
        *ret_job = j->id;
        return 0;
}

int dra_claims_start(struct loop *l, const struct dra_claims_config *cfg, struct dra_claims **ret) {
        struct dra_claims *c = calloc(1, sizeof(*c));
        sigset_t all, old;
        int r;

        if (!c)
                return -ENOMEM;
        c->cancel_fd = c->done_fd = -1;
        snprintf(c->driver, sizeof(c->driver), "%s", cfg->driver);
        snprintf(c->pool, sizeof(c->pool), "%s", cfg->pool);
        if ((size_t) snprintf(c->checkpoint, sizeof(c->checkpoint), "%s/" DRA_CHECKPOINT_NAME,
                              cfg->dra_dir) >= sizeof(c->checkpoint)) {
                free(c);
                return -ENAMETOOLONG;
        }
        if (cfg->api) {
                c->api = *cfg->api;
                c->have_api = true;
        }
        c->get = cfg->get ? cfg->get : (c->have_api ? default_get : NULL);
        c->get_userdata = cfg->get ? cfg->get_userdata : c;
        c->budget_ms = cfg->budget_ms ? cfg->budget_ms : DRA_PREPARE_BUDGET_MS;
        c->provision = cfg->provision;
        c->on_done = cfg->on_done;
        c->userdata = cfg->userdata;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cond, NULL);
        load(c);

        c->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        c->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->cancel_fd < 0 || c->done_fd < 0) {
                r = -errno;
                goto out_free;
        }
        r = loop_add_io(l, c->done_fd, EPOLLIN, on_done, c, &c->done_src);
        if (r < 0)
                goto out_free;
        /* the loop's signalfd takes the signals: the worker must not */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&c->thread, NULL, worker, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto out_free;
        c->thread_started = true;
        *ret = c;
        return 0;

out_free:
        dra_claims_stop(c);
        return r;
}

struct dra_claims *dra_claims_stop(struct dra_claims *c) {
        uint64_t one = 1;

        if (!c)
                return NULL;
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
        if (c->cancel_fd >= 0 && write(c->cancel_fd, &one, sizeof(one)) < 0) {
                /* cannot overflow with one write */
        }
        if (c->thread_started)
                pthread_join(c->thread, NULL);
        while (c->todo) {
                struct job *j = c->todo;
                c->todo = j->next;
                job_free(j);
        }
        while (c->done) {
                struct job *j = c->done;
                c->done = j->next;
                job_free(j);
        }
        c->done_src = loop_source_free(c->done_src);
        if (c->cancel_fd >= 0)
                close(c->cancel_fd);
        if (c->done_fd >= 0)
                close(c->done_fd);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c->prepared);
        free(c);
        return NULL;
}
