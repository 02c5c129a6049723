/*
 * labeler.c - the node's labels and EPC capacity (see labeler.h): the wanted labels and EPC
 * (pure), the merge patches that apply them, and the apply function that PATCHes them, with the
 * log lines an operator reads.
 *
 * The thread, the timing (send a change at once, re-assert every interval, back off after a
 * failure) and the prompt stop belong to the generic worker in reconciler.c, whose state here is
 * a struct labeler_state: labels and capacity go through the same worker, one thread and one API
 * client (its TLS context) for both. The apply function sends each part only when it needs to:
 * a part not yet sent, changed, or last sent an interval ago; both on a re-assert; the capacity
 * on a kick (a kubelet restart). It remembers what it sent on the worker's thread, the only one
 * that touches those fields. The loop's thread only calls labeler_update() and friends: it never
 * waits on the network.
 */
#include "labeler.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capabilities.h"
#include "jsontext.h"
#include "log.h"
#include "reconciler.h"

static const char *const owned[] = {LABEL_SGX,  LABEL_DCAP, LABEL_IAS,
                                    LABEL_SGX2, LABEL_FLC,  LABEL_EPC_MIB};
#define N_OWNED (sizeof(owned) / sizeof(owned[0]))

/* ---- the wanted set (pure) ---- */

static void add_label(struct label_set *s, const char *domain, const char *name,
                      const char *value) {
        if (s->n >= LABELS_MAX)
                return;
        snprintf(s->l[s->n].key, sizeof(s->l[s->n].key), "%s/%s", domain, name);
        snprintf(s->l[s->n].value, sizeof(s->l[s->n].value), "%s", value);
        s->n++;
}

void labels_desired(const char *domain, bool intel, const struct sgx_caps *caps,
                    struct label_set *ret) {
        char mib[32];

        memset(ret, 0, sizeof(*ret));
        if (!caps->dcap && !caps->ias)
                return;
        add_label(ret, domain, LABEL_SGX, "true");
        if (caps->dcap)
                add_label(ret, domain, LABEL_DCAP, "true");
        if (caps->ias)
                add_label(ret, domain, LABEL_IAS, "true");
        if (caps->sgx2_usable)
                add_label(ret, domain, LABEL_SGX2, "true");
        if (caps->flc)
                add_label(ret, domain, LABEL_FLC, "true");
        if (caps->epc_bytes >= (1u << 20)) {
                snprintf(mib, sizeof(mib), "%llu", (unsigned long long) (caps->epc_bytes >> 20));
                add_label(ret, domain, LABEL_EPC_MIB, mib);
        }
        if (intel && ret->n < LABELS_MAX) {
                snprintf(ret->l[ret->n].key, sizeof(ret->l[ret->n].key), "%s", LABEL_INTEL_CAPABLE);
                snprintf(ret->l[ret->n].value, sizeof(ret->l[ret->n].value), "true");
                ret->n++;
        }
}

static const char *label_value(const struct label_set *s, const char *key) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->l[i].key, key) == 0)
                        return s->l[i].value;
        return NULL;
}

bool labels_equal(const struct label_set *a, const struct label_set *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                const char *v = label_value(b, a->l[i].key);
                if (!v || strcmp(v, a->l[i].value) != 0)
                        return false;
        }
        return true;
}

/*
 * Dumps |root| compactly into a malloc'd string. json_dumpb into a buffer of ours: json_dumps
 * ignores a failed write of an object key (jansson 2.14) and, out of memory, can hand back a
 * mangled document as a success. Returns 0 or -ENOMEM.
 */
static int dump(const json_t *root, char **ret) {
        return json_text(root, JSON_COMPACT | JSON_SORT_KEYS, 0, ret, NULL);
}

int labels_patch_body(const char *domain, bool intel, const struct label_set *s, char **ret) {
        json_t *root = NULL, *labels;
        char key[320];
        const char *v;
        int r = -ENOMEM;

        labels = json_object();
        if (!labels)
                goto out;
        root = json_pack("{s:{s:o}}", "metadata", "labels", labels);
        if (!root)
                goto out; /* json_pack stole |labels| even on failure */
        for (size_t i = 0; i < N_OWNED; i++) {
                snprintf(key, sizeof(key), "%s/%s", domain, owned[i]);
                v = label_value(s, key);
                if (json_object_set_new(labels, key, v ? json_string(v) : json_null()) < 0)
                        goto out;
        }
        if (intel) {
                v = label_value(s, LABEL_INTEL_CAPABLE);
                if (json_object_set_new(labels, LABEL_INTEL_CAPABLE,
                                        v ? json_string(v) : json_null()) < 0)
                        goto out;
        }
        r = dump(root, ret);
out:
        json_decref(root);
        return r;
}

/* ---- the wanted capacity (pure) ---- */

uint64_t capacity_epc_desired(const struct sgx_caps *caps) {
        return caps->dcap || caps->ias ? caps->epc_bytes : 0;
}

int capacity_patch_body(const char *domain, bool intel, uint64_t epc_bytes, char **ret) {
        json_t *root = NULL, *cap;
        char key[320], bytes[32];
        int r = -ENOMEM;

        cap = json_object();
        if (!cap)
                goto out;
        root = json_pack("{s:{s:o}}", "status", "capacity", cap);
        if (!root)
                goto out; /* json_pack stole |cap| even on failure */
        snprintf(bytes, sizeof(bytes), "%" PRIu64, epc_bytes);
        snprintf(key, sizeof(key), "%s/%s", domain, CAPACITY_EPC);
        if (json_object_set_new(cap, key, epc_bytes ? json_string(bytes) : json_null()) < 0)
                goto out;
        if (intel && json_object_set_new(cap, CAPACITY_INTEL_EPC,
                                         epc_bytes ? json_string(bytes) : json_null()) < 0)
                goto out;
        r = dump(root, ret);
out:
        json_decref(root);
        return r;
}

/* "a=true, b=true" and "c, d" (ours, not wanted) for the log. */
static void describe(const char *domain, bool intel, const struct label_set *s, char *set,
                     size_t setsz, char *unset, size_t unsetsz) {
        size_t a = 0, b = 0;
        char key[320];

        set[0] = unset[0] = '\0';
        for (size_t i = 0; i < s->n && a < setsz; i++)
                a += (size_t) snprintf(set + a, setsz - a, "%s%s=%s", a ? ", " : "", s->l[i].key,
                                       s->l[i].value);
        for (size_t i = 0; i < N_OWNED && b < unsetsz; i++) {
                snprintf(key, sizeof(key), "%s/%s", domain, owned[i]);
                if (!label_value(s, key))
                        b += (size_t) snprintf(unset + b, unsetsz - b, "%s%s", b ? ", " : "", key);
        }
        if (intel && !label_value(s, LABEL_INTEL_CAPABLE) && b < unsetsz)
                snprintf(unset + b, unsetsz - b, "%s%s", b ? ", " : "", LABEL_INTEL_CAPABLE);
}

/* ---- the reconciler's apply function ---- */

struct labeler {
        char domain[256];
        char node_name[256];
        char path[320];         /* /api/v1/nodes/NAME */
        char status_path[336];  /* /api/v1/nodes/NAME/status */
        bool labels, capacity;  /* the parts we keep */
        bool intel;             /* --compat intel */
        unsigned interval_ms;   /* re-assert period, also per part */
        struct api_client *api; /* the default request's client; NULL with cfg->request */
        labeler_request_fn request;
        void *request_userdata;
        struct reconciler *rc; /* the worker thread; its state is a struct labeler_state */

        struct labeler_state wanted; /* the loop's thread's: the last state handed over */

        /* the worker's thread's: what each part last sent successfully, and when */
        bool labels_sent, epc_sent;
        struct label_set labels_last;
        uint64_t epc_last;
        uint64_t labels_at_ms, epc_at_ms;
};

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int default_request(void *userdata, const char *path, const char *body, int cancel_fd,
                           struct api_response *resp, char *err, size_t errsz) {
        const struct labeler *lb = userdata;
        return api_client_request(lb->api, "PATCH", path, "application/merge-patch+json", body,
                                  strlen(body), cancel_fd, resp, err, errsz);
}

/* What an operator should do about an HTTP error |status| (|status_path|: of nodes/status). */
static const char *status_hint(int status, bool status_path) {
        switch (status) {
        case 401:
                return "the service account token was refused (expired or not mounted?)";
        case 403:
                return status_path
                               ? "the service account needs RBAC: patch on nodes/status (ClusterRole rule apiGroups [\"\"], resources [\"nodes/status\"], verbs [\"patch\"]), or an admission policy refused the change"
                               : "the service account needs RBAC: get and patch on nodes (ClusterRole rule apiGroups [\"\"], resources [\"nodes\"], verbs [\"get\", \"patch\"]), or an admission policy refused the change";
        case 404:
                return "the node was not found: check --node-name / NODE_NAME";
        case 409:
                return "the API server reported a conflict";
        case 422:
                return "the API server refused the patch as invalid";
        case 429:
                return "the API server is throttling requests";
        default:
                return status >= 500 ? "the API server failed" : "unexpected answer";
        }
}

static void format_secs(unsigned ms, char *buf, size_t size) {
        if (ms % 1000 == 0)
                snprintf(buf, size, "%u s", ms / 1000);
        else
                snprintf(buf, size, "%.3g s", ms / 1000.0);
}

/*
 * PATCHes |path| with |body| once; |what| names the work in a failure's log line ("labelling
 * node N"). Returns 0 on a 2xx answer, -ECANCELED when stopping, else a negative value after
 * logging why.
 */
static int patch(struct labeler *lb, const char *path, const char *body, const char *what,
                 const struct reconciler_attempt *a) {
        struct api_response resp = {0};
        char err[512] = "", retry[32];
        int r;

        r = lb->request(lb->request_userdata, path, body, a->cancel_fd, &resp, err, sizeof(err));
        format_secs(a->retry_ms, retry, sizeof(retry));
        if (r == -ECANCELED) {
                /* stopping: nothing to report */
        } else if (r < 0) {
                log_warn(NULL, path, "%s failed: %s, retrying in %s", what,
                         err[0] ? err : strerror(-r), retry);
        } else if (resp.status < 200 || resp.status >= 300) {
                log_warn(NULL, path, "%s failed: HTTP %d: %s; %s, retrying in %s", what,
                         resp.status, resp.message[0] ? resp.message : "(no message)",
                         status_hint(resp.status, path == lb->status_path), retry);
                r = -EPROTO;
        }
        api_response_clear(&resp);
        return r;
}

/* PATCHes the labels |s| once; see patch(). */
static int send_labels(struct labeler *lb, const struct label_set *s,
                       const struct reconciler_attempt *a) {
        char *body = NULL, what[320], set[1024], unset[512];
        int r;

        snprintf(what, sizeof(what), "labelling node %s", lb->node_name);
        r = labels_patch_body(lb->domain, lb->intel, s, &body);
        if (r < 0) {
                log_error(NULL, lb->path, "%s failed: %s", what, strerror(-r));
                return r;
        }
        r = patch(lb, lb->path, body, what, a);
        free(body);
        if (r < 0)
                return r;
        if (!lb->labels_sent || !labels_equal(s, &lb->labels_last)) {
                describe(lb->domain, lb->intel, s, set, sizeof(set), unset, sizeof(unset));
                log_info(NULL, lb->path, "node %s labelled: %s%sremoved if present: %s",
                         lb->node_name, s->n ? set : "none of ours", unset[0] ? "; " : "", unset);
        } else {
                log_debug(NULL, lb->path, "node %s labels re-asserted", lb->node_name);
        }
        lb->labels_sent = true;
        lb->labels_last = *s;
        lb->labels_at_ms = now_ms();
        return 0;
}

/* PATCHes the status capacity |epc_bytes| once; see patch(). */
static int send_capacity(struct labeler *lb, uint64_t epc_bytes,
                         const struct reconciler_attempt *a) {
        char *body = NULL, what[320];
        int r;

        snprintf(what, sizeof(what), "publishing the EPC capacity of node %s", lb->node_name);
        r = capacity_patch_body(lb->domain, lb->intel, epc_bytes, &body);
        if (r < 0) {
                log_error(NULL, lb->status_path, "%s failed: %s", what, strerror(-r));
                return r;
        }
        r = patch(lb, lb->status_path, body, what, a);
        free(body);
        if (r < 0)
                return r;
        if (!lb->epc_sent || epc_bytes != lb->epc_last) {
                if (epc_bytes && lb->intel)
                        log_info(NULL, lb->status_path,
                                 "node %s capacity: %s/" CAPACITY_EPC "=%" PRIu64
                                 ", " CAPACITY_INTEL_EPC "=%" PRIu64,
                                 lb->node_name, lb->domain, epc_bytes, epc_bytes);
                else if (epc_bytes)
                        log_info(NULL, lb->status_path,
                                 "node %s capacity: %s/" CAPACITY_EPC "=%" PRIu64, lb->node_name,
                                 lb->domain, epc_bytes);
                else
                        log_info(NULL, lb->status_path,
                                 "node %s capacity: no SGX enclave device or EPC unknown, removed if present: %s/" CAPACITY_EPC "%s",
                                 lb->node_name, lb->domain,
                                 lb->intel ? ", " CAPACITY_INTEL_EPC : "");
        } else {
                log_debug(NULL, lb->status_path, "node %s capacity re-asserted%s", lb->node_name,
                          a->forced ? " after a kubelet restart" : "");
        }
        lb->epc_sent = true;
        lb->epc_last = epc_bytes;
        lb->epc_at_ms = now_ms();
        return 0;
}

/*
 * The reconciler's apply function: PATCHes each part of |state| that needs it (see the top of
 * the file). Returns 0 when every part sent succeeded, -ECANCELED when stopping, else the first
 * failure (each logged).
 */
static int send_state(void *userdata, const void *state, const struct reconciler_attempt *a) {
        struct labeler *lb = userdata;
        const struct labeler_state *st = state;
        bool reassert = !a->changed && !a->forced;
        uint64_t now = now_ms();
        int r = 0, q;

        if (lb->labels &&
            (reassert || !lb->labels_sent || !labels_equal(&st->labels, &lb->labels_last) ||
             now - lb->labels_at_ms >= lb->interval_ms)) {
                q = send_labels(lb, &st->labels, a);
                if (q == -ECANCELED)
                        return q;
                r = q;
        }
        if (lb->capacity &&
            (reassert || a->forced || !lb->epc_sent || st->epc_bytes != lb->epc_last ||
             now - lb->epc_at_ms >= lb->interval_ms)) {
                q = send_capacity(lb, st->epc_bytes, a);
                if (q == -ECANCELED)
                        return q;
                if (r == 0)
                        r = q;
        }
        return r;
}

static bool states_equal(const void *a, const void *b) {
        const struct labeler_state *x = a, *y = b;
        return x->epc_bytes == y->epc_bytes && labels_equal(&x->labels, &y->labels);
}

int labeler_start(const struct labeler_config *cfg, struct labeler **ret) {
        struct reconciler_config rcfg = {
                .state_size = sizeof(struct labeler_state),
                .interval_ms = cfg->interval_ms,
                .backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : LABEL_BACKOFF_MIN_MS,
                .backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : LABEL_BACKOFF_MAX_MS,
                .apply = send_state,
                .equal = states_equal,
        };
        struct labeler *lb;
        int r;

        if (!cfg->domain || !cfg->node_name || cfg->interval_ms == 0 ||
            (!cfg->labels && !cfg->capacity))
                return -EINVAL;
        lb = calloc(1, sizeof(*lb));
        if (!lb)
                return -ENOMEM;
        snprintf(lb->domain, sizeof(lb->domain), "%s", cfg->domain);
        snprintf(lb->node_name, sizeof(lb->node_name), "%s", cfg->node_name);
        snprintf(lb->path, sizeof(lb->path), "/api/v1/nodes/%s", cfg->node_name);
        snprintf(lb->status_path, sizeof(lb->status_path), "/api/v1/nodes/%s/status",
                 cfg->node_name);
        lb->labels = cfg->labels;
        lb->capacity = cfg->capacity;
        lb->intel = cfg->intel;
        lb->interval_ms = cfg->interval_ms;
        lb->request = cfg->request ? cfg->request : default_request;
        lb->request_userdata = cfg->request ? cfg->request_userdata : lb;
        if (!cfg->request) {
                r = api_client_new(&cfg->api, &lb->api);
                if (r < 0)
                        goto out_free;
        }
        rcfg.userdata = lb;
        r = reconciler_start(&rcfg, &lb->rc);
        if (r < 0)
                goto out_free;
        *ret = lb;
        return 0;

out_free:
        api_client_free(lb->api);
        free(lb);
        return r;
}

void labeler_update(struct labeler *lb, const struct labeler_state *st) {
        lb->wanted = *st;
        reconciler_set(lb->rc, &lb->wanted);
}

void labeler_set(struct labeler *lb, const struct label_set *s) {
        struct labeler_state st = lb->wanted;

        st.labels = *s;
        labeler_update(lb, &st);
}

void labeler_reassert_capacity(struct labeler *lb) {
        if (lb->capacity)
                reconciler_kick(lb->rc);
}

struct labeler *labeler_stop(struct labeler *lb) {
        if (!lb)
                return NULL;
        lb->rc = reconciler_stop(lb->rc);
        lb->api = api_client_free(lb->api);
        free(lb);
        return NULL;
}
