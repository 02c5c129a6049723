/*
 * labeler.c - the node's labels (see labeler.h): the wanted set (pure), the merge patch that
 * applies it, and the apply function that PATCHes it, with the log lines an operator reads.
 *
 * The thread, the timing (send a change at once, re-assert every interval, back off after a
 * failure) and the prompt stop belong to the generic worker in reconciler.c, whose state here is
 * a struct label_set. The loop's thread only calls labeler_set(): it never waits on the network.
 */
#include "labeler.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void labels_desired(const char *domain, const struct sgx_caps *caps, struct label_set *ret) {
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

int labels_patch_body(const char *domain, const struct label_set *s, char **ret) {
        json_t *root = NULL, *labels;
        char key[320], *body;
        int r = -ENOMEM;

        labels = json_object();
        if (!labels)
                goto out;
        root = json_pack("{s:{s:o}}", "metadata", "labels", labels);
        if (!root)
                goto out; /* json_pack stole |labels| even on failure */
        for (size_t i = 0; i < N_OWNED; i++) {
                const char *v;

                snprintf(key, sizeof(key), "%s/%s", domain, owned[i]);
                v = label_value(s, key);
                if (json_object_set_new(labels, key, v ? json_string(v) : json_null()) < 0)
                        goto out;
        }
        if (json_text(root, JSON_COMPACT | JSON_SORT_KEYS, 0, &body, NULL) < 0)
                goto out;
        *ret = body;
        r = 0;
out:
        json_decref(root);
        return r;
}

/* "a=true, b=true" and "c, d" (ours, not wanted) for the log. */
static void describe(const char *domain, const struct label_set *s, char *set, size_t setsz,
                     char *unset, size_t unsetsz) {
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
}

/* ---- the reconciler's apply function ---- */

struct labeler {
        char domain[256];
        char node_name[256];
        char path[320]; /* /api/v1/nodes/NAME */
        struct api_client *api; /* the default request's client; NULL with cfg->request */
        labeler_request_fn request;
        void *request_userdata;
        struct reconciler *rc; /* the worker thread; its state is a struct label_set */
};

static int default_request(void *userdata, const char *path, const char *body, int cancel_fd,
                           struct api_response *resp, char *err, size_t errsz) {
        const struct labeler *lb = userdata;
        return api_client_request(lb->api, "PATCH", path, "application/merge-patch+json", body,
                                  strlen(body), cancel_fd, resp, err, errsz);
}

/* What an operator should do about an HTTP error |status|. */
static const char *status_hint(int status) {
        switch (status) {
        case 401:
                return "the service account token was refused (expired or not mounted?)";
        case 403:
                return "the service account needs RBAC: get and patch on nodes (ClusterRole rule "
                       "apiGroups [\"\"], resources [\"nodes\"], verbs [\"get\", \"patch\"]), or "
                       "an admission policy refused the change";
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
 * The reconciler's apply function: PATCHes the labels |state| once. Returns 0 on a 2xx answer,
 * -ECANCELED when stopping, else a negative value after logging why.
 */
static int send_labels(void *userdata, const void *state, const struct reconciler_attempt *a) {
        struct labeler *lb = userdata;
        const struct label_set *s = state;
        struct api_response resp = {0};
        char *body = NULL, err[512] = "", set[1024], unset[512], retry[32];
        int r;

        r = labels_patch_body(lb->domain, s, &body);
        if (r < 0) {
                log_error(NULL, lb->path, "labelling node %s failed: %s", lb->node_name,
                          strerror(-r));
                return r;
        }
        r = lb->request(lb->request_userdata, lb->path, body, a->cancel_fd, &resp, err,
                        sizeof(err));
        free(body);

        format_secs(a->retry_ms, retry, sizeof(retry));
        if (r == -ECANCELED) {
                /* stopping: nothing to report */
        } else if (r < 0) {
                log_warn(NULL, lb->path, "labelling node %s failed: %s, retrying in %s",
                         lb->node_name, err[0] ? err : strerror(-r), retry);
        } else if (resp.status < 200 || resp.status >= 300) {
                log_warn(NULL, lb->path,
                         "labelling node %s failed: HTTP %d: %s; %s, retrying in %s", lb->node_name,
                         resp.status, resp.message[0] ? resp.message : "(no message)",
                         status_hint(resp.status), retry);
                r = -EPROTO;
        } else {
                describe(lb->domain, s, set, sizeof(set), unset, sizeof(unset));
                if (a->changed)
                        log_info(NULL, lb->path, "node %s labelled: %s%sremoved if present: %s",
                                 lb->node_name, s->n ? set : "none of ours", unset[0] ? "; " : "",
                                 unset);
                else
                        log_debug(NULL, lb->path, "node %s labels re-asserted", lb->node_name);
        }
        api_response_clear(&resp);
        return r;
}

static bool label_sets_equal(const void *a, const void *b) {
        return labels_equal(a, b);
}

int labeler_start(const struct labeler_config *cfg, struct labeler **ret) {
        struct reconciler_config rcfg = {
                .state_size = sizeof(struct label_set),
                .interval_ms = cfg->interval_ms,
                .backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : LABEL_BACKOFF_MIN_MS,
                .backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : LABEL_BACKOFF_MAX_MS,
                .apply = send_labels,
                .equal = label_sets_equal,
        };
        struct labeler *lb;
        int r;

        if (!cfg->domain || !cfg->node_name || cfg->interval_ms == 0)
                return -EINVAL;
        lb = calloc(1, sizeof(*lb));
        if (!lb)
                return -ENOMEM;
        snprintf(lb->domain, sizeof(lb->domain), "%s", cfg->domain);
        snprintf(lb->node_name, sizeof(lb->node_name), "%s", cfg->node_name);
        snprintf(lb->path, sizeof(lb->path), "/api/v1/nodes/%s", cfg->node_name);
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

void labeler_set(struct labeler *lb, const struct label_set *s) {
        reconciler_set(lb->rc, s);
}

struct labeler *labeler_stop(struct labeler *lb) {
        if (!lb)
                return NULL;
        lb->rc = reconciler_stop(lb->rc);
        lb->api = api_client_free(lb->api);
        free(lb);
        return NULL;
}
