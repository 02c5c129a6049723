/*
 * labeler.c - the node's labels (see labeler.h): the wanted set (pure), the merge patch that
 * applies it, and the worker thread that sends it.
 *
 * The worker owns all API traffic. The loop's thread only calls labeler_set(), which copies the
 * set under a mutex and signals a condition variable: it never waits on the network. The worker
 * sends a PATCH when the wanted set changed since the last success, re-asserts it every interval
 * (someone may have removed a label behind our back), and after a failure waits a backoff that
 * doubles from backoff_min_ms to backoff_max_ms; a change of the wanted set is sent at once
 * regardless. labeler_stop() wakes the worker and writes to an eventfd that the request in
 * flight polls, so stopping never waits for a slow API server.
 */
#include "labeler.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "capabilities.h"
#include "log.h"

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
        size_t len;
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
        /* json_dumpb into a buffer of ours: json_dumps ignores a failed write of an object key
         * (jansson 2.14) and, out of memory, can hand back a mangled document as a success. */
        len = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
        if (len == 0)
                goto out;
        body = malloc(len + 1);
        if (!body)
                goto out;
        if (json_dumpb(root, body, len, JSON_COMPACT | JSON_SORT_KEYS) != len) {
                free(body);
                goto out;
        }
        body[len] = '\0';
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

/* ---- the worker ---- */

struct labeler {
        char domain[256];
        char node_name[256];
        char path[320]; /* /api/v1/nodes/NAME */
        struct api_config api;
        unsigned interval_ms, backoff_min_ms, backoff_max_ms;
        labeler_request_fn request;
        void *request_userdata;

        pthread_t thread;
        bool thread_started;
        int cancel_fd; /* eventfd: readable once stopping */

        pthread_mutex_t mu; /* guards everything below */
        pthread_cond_t cond;
        bool stopping;
        bool have_wanted;
        struct label_set wanted;
        uint64_t gen; /* bumped by every change of |wanted| */
};

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int default_request(void *userdata, const char *path, const char *body, int cancel_fd,
                           struct api_response *resp, char *err, size_t errsz) {
        const struct labeler *lb = userdata;
        return api_request(&lb->api, "PATCH", path, "application/merge-patch+json", body,
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
 * Sends |s| once. Returns 0 on a 2xx answer, -ECANCELED when stopping, else a negative value
 * after logging why (the caller logs nothing more).
 */
static int send_labels(struct labeler *lb, const struct label_set *s, bool changed,
                       unsigned retry_ms) {
        struct api_response resp = {0};
        char *body = NULL, err[512] = "", set[1024], unset[512], retry[32];
        int r;

        r = labels_patch_body(lb->domain, s, &body);
        if (r < 0) {
                log_error(NULL, lb->path, "labelling node %s failed: %s", lb->node_name,
                          strerror(-r));
                return r;
        }
        r = lb->request(lb->request_userdata, lb->path, body, lb->cancel_fd, &resp, err,
                        sizeof(err));
        free(body);

        format_secs(retry_ms, retry, sizeof(retry));
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
                if (changed)
                        log_info(NULL, lb->path, "node %s labelled: %s%sremoved if present: %s",
                                 lb->node_name, s->n ? set : "none of ours", unset[0] ? "; " : "",
                                 unset);
                else
                        log_debug(NULL, lb->path, "node %s labels re-asserted", lb->node_name);
        }
        api_response_clear(&resp);
        return r;
}

/* Waits on the condition until |deadline_ms| (CLOCK_MONOTONIC, as now_ms()) or a signal. */
static void wait_until(struct labeler *lb, uint64_t deadline_ms) {
        struct timespec ts = {.tv_sec = (time_t) (deadline_ms / 1000u),
                              .tv_nsec = (long) (deadline_ms % 1000u) * 1000000L};

        (void) pthread_cond_timedwait(&lb->cond, &lb->mu, &ts);
}

static void *worker(void *userdata) {
        struct labeler *lb = userdata;
        uint64_t applied_gen = 0, failed_gen = 0, due_ms = 0;
        unsigned backoff = lb->backoff_min_ms;
        bool applied = false, failing = false;

        pthread_mutex_lock(&lb->mu);
        while (!lb->stopping) {
                struct label_set s;
                uint64_t gen;
                bool changed;
                int r;

                if (!lb->have_wanted) {
                        pthread_cond_wait(&lb->cond, &lb->mu);
                        continue;
                }
                changed = !applied || lb->gen != applied_gen;
                /* a change not tried yet goes out at once; a retry or re-assert waits its time */
                if (!(changed && (!failing || lb->gen != failed_gen)) && now_ms() < due_ms) {
                        wait_until(lb, due_ms);
                        continue;
                }
                s = lb->wanted;
                gen = lb->gen;
                pthread_mutex_unlock(&lb->mu);

                r = send_labels(lb, &s, changed, backoff);

                pthread_mutex_lock(&lb->mu);
                if (r == -ECANCELED)
                        break;
                if (r == 0) {
                        applied = true;
                        applied_gen = gen;
                        failing = false;
                        backoff = lb->backoff_min_ms;
                        due_ms = now_ms() + lb->interval_ms;
                } else {
                        failing = true;
                        failed_gen = gen;
                        due_ms = now_ms() + backoff;
                        backoff =
                                backoff > lb->backoff_max_ms / 2 ? lb->backoff_max_ms : backoff * 2;
                }
        }
        pthread_mutex_unlock(&lb->mu);
        return NULL;
}

int labeler_start(const struct labeler_config *cfg, struct labeler **ret) {
        struct labeler *lb;
        sigset_t all, old;
        int r;

        if (!cfg->domain || !cfg->node_name || cfg->interval_ms == 0)
                return -EINVAL;
        lb = calloc(1, sizeof(*lb));
        if (!lb)
                return -ENOMEM;
        snprintf(lb->domain, sizeof(lb->domain), "%s", cfg->domain);
        snprintf(lb->node_name, sizeof(lb->node_name), "%s", cfg->node_name);
        snprintf(lb->path, sizeof(lb->path), "/api/v1/nodes/%s", cfg->node_name);
        lb->api = cfg->api;
        lb->interval_ms = cfg->interval_ms;
        lb->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : LABEL_BACKOFF_MIN_MS;
        lb->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : LABEL_BACKOFF_MAX_MS;
        if (lb->backoff_max_ms < lb->backoff_min_ms)
                lb->backoff_max_ms = lb->backoff_min_ms;
        lb->request = cfg->request ? cfg->request : default_request;
        lb->request_userdata = cfg->request ? cfg->request_userdata : lb;
        lb->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (lb->cancel_fd < 0) {
                r = -errno;
                free(lb);
                return r;
        }

        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&lb->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&lb->mu, NULL);

        /* the worker takes no signals: the loop's signalfd gets them all */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&lb->thread, NULL, worker, lb);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                labeler_stop(lb);
                return r;
        }
        lb->thread_started = true;
        *ret = lb;
        return 0;
}

void labeler_set(struct labeler *lb, const struct label_set *s) {
        pthread_mutex_lock(&lb->mu);
        if (!lb->have_wanted || !labels_equal(&lb->wanted, s)) {
                lb->wanted = *s;
                lb->have_wanted = true;
                lb->gen++;
                pthread_cond_signal(&lb->cond);
        }
        pthread_mutex_unlock(&lb->mu);
}

struct labeler *labeler_stop(struct labeler *lb) {
        uint64_t one = 1;

        if (!lb)
                return NULL;
        pthread_mutex_lock(&lb->mu);
        lb->stopping = true;
        pthread_cond_signal(&lb->cond);
        pthread_mutex_unlock(&lb->mu);
        if (write(lb->cancel_fd, &one, sizeof(one)) < 0) {
                /* an eventfd write only fails on overflow, which one write cannot reach */
        }
        if (lb->thread_started)
                pthread_join(lb->thread, NULL);
        close(lb->cancel_fd);
        pthread_cond_destroy(&lb->cond);
        pthread_mutex_destroy(&lb->mu);
        free(lb);
        return NULL;
}
