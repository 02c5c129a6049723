/*
 * test_labeler.c - unit tests for labeler.c: the wanted labels for each kind of node, the merge
 * patch (ours set or nulled, nothing else), and the worker thread driven through a fake request
 * function: one PATCH per change, re-assertion, backoff after failures, a change sent at once
 * while backing off, the log lines an operator reads, and a prompt stop during a hung request.
 * The EPC capacity beside them: its wanted value and merge patch of status.capacity, --compat
 * intel's label and capacity key, each part PATCHed only when it changed, the capacity re-sent
 * alone on a kick (a kubelet restart), and a 403 on nodes/status naming its RBAC rule.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capabilities.h"
#include "labeler.h"
#include "unit.h"

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static struct sgx_caps caps_inkernel_sgx2(void) {
        struct sgx_caps c;

        memset(&c, 0, sizeof(c));
        c.dcap = true;
        c.driver = SGX_DRIVER_INKERNEL;
        c.flc = true;
        c.sgx2_usable = true;
        c.epc_bytes = 128ull << 20;
        return c;
}

static const char *value_of(const struct label_set *s, const char *key) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->l[i].key, key) == 0)
                        return s->l[i].value;
        return NULL;
}

/* ---- the wanted set ---- */

static void test_labels_desired_no_device_wants_none(void) {
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;

        c.dcap = c.ias = false; /* the CPU can, but no device node: not an SGX node */
        labels_desired("sgx.k8s.io", false, &c, &s);
        CHECK_INT(s.n, 0);
}

static void test_labels_desired_inkernel_sgx2(void) {
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;

        labels_desired("sgx.k8s.io", false, &c, &s);
        CHECK_INT(s.n, 5);
        CHECK_STR(value_of(&s, "sgx.k8s.io/sgx"), "true");
        CHECK_STR(value_of(&s, "sgx.k8s.io/dcap"), "true");
        CHECK_STR(value_of(&s, "sgx.k8s.io/sgx2"), "true");
        CHECK_STR(value_of(&s, "sgx.k8s.io/flc"), "true");
        CHECK_STR(value_of(&s, "sgx.k8s.io/epc-mib"), "128");
        CHECK(value_of(&s, "sgx.k8s.io/ias") == NULL);
}

static void test_labels_desired_ias_only_legacy(void) {
        struct sgx_caps c;
        struct label_set s;

        memset(&c, 0, sizeof(c));
        c.ias = true;
        c.epc_bytes = 93ull << 20 | 12345; /* rounded down to whole MiB */
        labels_desired("example.com", false, &c, &s);
        CHECK_INT(s.n, 3);
        CHECK_STR(value_of(&s, "example.com/sgx"), "true");
        CHECK_STR(value_of(&s, "example.com/ias"), "true");
        CHECK_STR(value_of(&s, "example.com/epc-mib"), "93");
        CHECK(value_of(&s, "example.com/flc") == NULL);
        CHECK(value_of(&s, "example.com/dcap") == NULL);
}

static void test_labels_desired_unknown_epc_left_out(void) {
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;

        c.epc_bytes = 0;
        c.sgx2_usable = false;
        labels_desired("sgx.k8s.io", false, &c, &s);
        CHECK_INT(s.n, 3);
        CHECK(value_of(&s, "sgx.k8s.io/epc-mib") == NULL);
        CHECK(value_of(&s, "sgx.k8s.io/sgx2") == NULL);
}

static void test_labels_equal_ignores_order(void) {
        struct label_set a = {0}, b = {0};

        a.n = b.n = 2;
        strcpy(a.l[0].key, "d/sgx");
        strcpy(a.l[0].value, "true");
        strcpy(a.l[1].key, "d/epc-mib");
        strcpy(a.l[1].value, "64");
        b.l[0] = a.l[1];
        b.l[1] = a.l[0];
        CHECK(labels_equal(&a, &b));
        strcpy(b.l[0].value, "65");
        CHECK(!labels_equal(&a, &b));
        b.n = 1;
        CHECK(!labels_equal(&a, &b));
}

/* ---- the merge patch ---- */

static void test_patch_body_sets_ours_and_nulls_the_rest(void) {
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;
        json_error_t jerr;
        json_t *root, *labels;
        char *body = NULL;

        c.sgx2_usable = false;
        labels_desired("sgx.k8s.io", false, &c, &s);
        CHECK_INT(labels_patch_body("sgx.k8s.io", false, &s, &body), 0);
        root = json_loads(body, 0, &jerr);
        CHECK(root != NULL);
        if (!root)
                goto out;
        CHECK_INT(json_object_size(root), 1);                              /* only metadata */
        CHECK_INT(json_object_size(json_object_get(root, "metadata")), 1); /* only labels */
        labels = json_object_get(json_object_get(root, "metadata"), "labels");
        CHECK_INT(json_object_size(labels), 6); /* every label we own, nothing else */
        CHECK_STR(json_string_value(json_object_get(labels, "sgx.k8s.io/sgx")), "true");
        CHECK_STR(json_string_value(json_object_get(labels, "sgx.k8s.io/dcap")), "true");
        CHECK_STR(json_string_value(json_object_get(labels, "sgx.k8s.io/flc")), "true");
        CHECK_STR(json_string_value(json_object_get(labels, "sgx.k8s.io/epc-mib")), "128");
        CHECK(json_is_null(json_object_get(labels, "sgx.k8s.io/ias")));
        CHECK(json_is_null(json_object_get(labels, "sgx.k8s.io/sgx2")));
        json_decref(root);
out:
        free(body);
}

static void test_patch_body_no_sgx_removes_all_ours(void) {
        struct label_set s = {0};
        json_t *root, *labels;
        const char *key;
        json_t *v;
        char *body = NULL;
        size_t nulls = 0;

        CHECK_INT(labels_patch_body("my.domain", false, &s, &body), 0);
        root = json_loads(body, 0, NULL);
        labels = json_object_get(json_object_get(root, "metadata"), "labels");
        json_object_foreach(labels, key, v) {
                CHECK(strncmp(key, "my.domain/", 10) == 0);
                nulls += json_is_null(v);
        }
        CHECK_INT(nulls, 6);
        json_decref(root);
        free(body);
}

/* ---- the capacity and --compat intel ---- */

static void test_capacity_epc_desired(void) {
        struct sgx_caps c = caps_inkernel_sgx2();

        CHECK(capacity_epc_desired(&c) == 128ull << 20);
        c.dcap = false; /* the enclave device vanished */
        CHECK(capacity_epc_desired(&c) == 0);
        c.ias = true;
        CHECK(capacity_epc_desired(&c) == 128ull << 20);
}

static void test_capacity_patch_body(void) {
        char *body = NULL;

        CHECK_INT(capacity_patch_body("sgx.k8s.io", false, 201326592, &body), 0);
        CHECK_STR(body, "{\"status\":{\"capacity\":{\"sgx.k8s.io/epc\":\"201326592\"}}}");
        free(body);
        CHECK_INT(capacity_patch_body("my.domain", true, 1ull << 40, &body), 0);
        CHECK_STR(body, "{\"status\":{\"capacity\":{\"my.domain/epc\":\"1099511627776\","
                        "\"sgx.intel.com/epc\":\"1099511627776\"}}}");
        free(body);
        CHECK_INT(capacity_patch_body("sgx.k8s.io", true, 0, &body), 0); /* removed */
        CHECK_STR(body, "{\"status\":{\"capacity\":{\"sgx.intel.com/epc\":null,"
                        "\"sgx.k8s.io/epc\":null}}}");
        free(body);
}

static void test_labels_intel_capable(void) {
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;
        char *body = NULL;

        labels_desired("sgx.k8s.io", true, &c, &s);
        CHECK_STR(value_of(&s, "sgx.intel.com/capable"), "true");
        labels_desired("sgx.k8s.io", false, &c, &s);
        CHECK(value_of(&s, "sgx.intel.com/capable") == NULL);
        CHECK_INT(labels_patch_body("sgx.k8s.io", false, &s, &body), 0);
        CHECK(strstr(body, "sgx.intel.com") == NULL); /* not ours without --compat intel */
        free(body);
        c.dcap = false;
        labels_desired("sgx.k8s.io", true, &c, &s);
        CHECK_INT(s.n, 0);
        CHECK_INT(labels_patch_body("sgx.k8s.io", true, &s, &body), 0);
        CHECK(strstr(body, "\"sgx.intel.com/capable\":null") != NULL);
        free(body);
}

/* ---- the worker, through a fake request function ---- */

#define MAX_CALLS 64

struct fake {
        pthread_mutex_t mu;
        unsigned n;
        uint64_t at_ms[MAX_CALLS];
        char body[MAX_CALLS][1024];
        char path[320];
        char paths[MAX_CALLS][64];
        /* scripted answers: calls below fail_until fail with |fail_errno| or |fail_status| */
        unsigned fail_until;
        int fail_errno;
        int fail_status;
        bool hang; /* block until cancel_fd is readable */
        bool saw_cancel;
};

static int fake_request(void *userdata, const char *path, const char *body, int cancel_fd,
                        struct api_response *resp, char *err, size_t errsz) {
        struct fake *f = userdata;
        unsigned i;
        bool hang;

        pthread_mutex_lock(&f->mu);
        i = f->n;
        if (f->n < MAX_CALLS) {
                f->at_ms[f->n] = mono_ms();
                snprintf(f->body[f->n], sizeof(f->body[0]), "%s", body);
                snprintf(f->paths[f->n], sizeof(f->paths[0]), "%s", path);
                f->n++;
        }
        snprintf(f->path, sizeof(f->path), "%s", path);
        hang = f->hang;
        pthread_mutex_unlock(&f->mu);

        memset(resp, 0, sizeof(*resp));
        if (hang) {
                struct pollfd p = {.fd = cancel_fd, .events = POLLIN};
                if (poll(&p, 1, 10000) == 1) {
                        pthread_mutex_lock(&f->mu);
                        f->saw_cancel = true;
                        pthread_mutex_unlock(&f->mu);
                        snprintf(err, errsz, "cancelled");
                        return -ECANCELED;
                }
                snprintf(err, errsz, "did not answer within 10 s");
                return -ETIMEDOUT;
        }
        if (i < f->fail_until && f->fail_errno) {
                snprintf(err, errsz, "connect to 127.0.0.1:1 failed: %s", strerror(f->fail_errno));
                return -f->fail_errno;
        }
        resp->status = i < f->fail_until ? f->fail_status : 200;
        if (resp->status == 403)
                snprintf(resp->message, sizeof(resp->message),
                         "nodes \"n1\" is forbidden: User \"system:serviceaccount:x:y\" cannot "
                         "patch resource \"nodes\"");
        resp->body = strdup("{}");
        resp->body_len = 2;
        return 0;
}

static unsigned fake_calls(struct fake *f) {
        unsigned n;
        pthread_mutex_lock(&f->mu);
        n = f->n;
        pthread_mutex_unlock(&f->mu);
        return n;
}

/* Waits up to |ms| for at least |n| calls. */
static bool wait_calls(struct fake *f, unsigned n, unsigned ms) {
        uint64_t end = mono_ms() + ms;
        while (fake_calls(f) < n) {
                if (mono_ms() > end)
                        return false;
                sleep_ms(2);
        }
        return true;
}

static struct labeler *start_parts(struct fake *f, unsigned interval_ms, unsigned bmin,
                                   unsigned bmax, bool labels, bool capacity, bool intel) {
        struct labeler_config cfg = {
                .domain = "sgx.k8s.io",
                .node_name = "n1",
                .labels = labels,
                .capacity = capacity,
                .intel = intel,
                .interval_ms = interval_ms,
                .backoff_min_ms = bmin,
                .backoff_max_ms = bmax,
                .request = fake_request,
                .request_userdata = f,
        };
        struct labeler *lb = NULL;

        pthread_mutex_init(&f->mu, NULL);
        CHECK_INT(labeler_start(&cfg, &lb), 0);
        return lb;
}

static struct labeler *start(struct fake *f, unsigned interval_ms, unsigned bmin, unsigned bmax) {
        return start_parts(f, interval_ms, bmin, bmax, true, false, false);
}

/*
 * stderr goes to a temp file while |fn| runs; returns what was logged (malloc'd).
 */
static int saved_stderr = -1;
static FILE *capture;

static void capture_start(void) {
        fflush(stderr);
        capture = tmpfile();
        saved_stderr = dup(2);
        dup2(fileno(capture), 2);
}

static char *capture_end(void) {
        char *buf = calloc(1, 65536);
        size_t n;

        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
        rewind(capture);
        n = fread(buf, 1, 65535, capture);
        buf[n] = '\0';
        fclose(capture);
        return buf;
}

static void test_worker_sends_once_per_change(void) {
        struct fake f = {0};
        struct labeler *lb = start(&f, 60000, 0, 0);
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s;

        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 0); /* nothing wanted yet: nothing sent */
        labels_desired("sgx.k8s.io", false, &c, &s);
        labeler_set(lb, &s);
        CHECK(wait_calls(&f, 1, 2000));
        labeler_set(lb, &s); /* the same set again: no request */
        sleep_ms(100);
        CHECK_INT(fake_calls(&f), 1);
        CHECK_STR(f.path, "/api/v1/nodes/n1");
        CHECK(strstr(f.body[0], "\"sgx.k8s.io/sgx\":\"true\"") != NULL);

        c.dcap = false; /* the device vanished */
        labels_desired("sgx.k8s.io", false, &c, &s);
        labeler_set(lb, &s);
        CHECK(wait_calls(&f, 2, 2000));
        CHECK(strstr(f.body[1], "\"sgx.k8s.io/sgx\":null") != NULL);
        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 2);
        labeler_stop(lb);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_reasserts_every_interval(void) {
        struct fake f = {0};
        struct labeler *lb = start(&f, 40, 0, 0);
        struct label_set s = {0};

        labeler_set(lb, &s);
        CHECK(wait_calls(&f, 4, 3000));
        labeler_stop(lb);
        for (unsigned i = 1; i < 4; i++)
                CHECK(f.at_ms[i] - f.at_ms[i - 1] >= 39); /* not sooner than the interval */
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_backs_off_and_recovers(void) {
        struct fake f = {.fail_until = 4, .fail_status = 500};
        struct labeler *lb = start(&f, 60000, 20, 50);
        struct label_set s = {0};

        capture_start();
        labeler_set(lb, &s);
        bool ok = wait_calls(&f, 5, 5000);
        sleep_ms(100);
        char *log = capture_end();
        CHECK(ok);
        CHECK_INT(fake_calls(&f), 5); /* the fifth succeeded: no more until the interval */
        /* waits of at least 20, 40, 50 (capped), 50 ms */
        CHECK(f.at_ms[1] - f.at_ms[0] >= 19);
        CHECK(f.at_ms[2] - f.at_ms[1] >= 39);
        CHECK(f.at_ms[3] - f.at_ms[2] >= 49);
        CHECK(f.at_ms[4] - f.at_ms[3] >= 49);
        CHECK(strstr(log, "HTTP 500") != NULL);
        CHECK(strstr(log, "retrying in 0.02 s") != NULL);
        CHECK(strstr(log, "retrying in 0.05 s") != NULL);
        CHECK(strstr(log, "node n1 labelled") != NULL);
        labeler_stop(lb);
        free(log);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_403_names_the_rbac_rule(void) {
        struct fake f = {.fail_until = 1, .fail_status = 403};
        struct labeler *lb = start(&f, 60000, 10, 10);
        struct label_set s = {0};

        capture_start();
        labeler_set(lb, &s);
        bool ok = wait_calls(&f, 2, 3000);
        sleep_ms(20);
        char *log = capture_end();
        CHECK(ok);
        CHECK(strstr(log, "HTTP 403") != NULL);
        CHECK(strstr(log, "cannot patch resource") != NULL); /* the server's own message */
        CHECK(strstr(log, "get and patch on nodes") != NULL);
        CHECK(strstr(log, "path=/api/v1/nodes/n1") != NULL);
        /* one line per event: the failure is a single line */
        char *line = strstr(log, "HTTP 403");
        CHECK(line && strchr(line, '\n') && strstr(strchr(line, '\n'), "HTTP 403") == NULL);
        labeler_stop(lb);
        free(log);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_transport_error_logged_and_retried(void) {
        struct fake f = {.fail_until = 2, .fail_errno = ECONNREFUSED};
        struct labeler *lb = start(&f, 60000, 10, 1000);
        struct label_set s = {0};

        capture_start();
        labeler_set(lb, &s);
        bool ok = wait_calls(&f, 3, 3000);
        sleep_ms(20);
        char *log = capture_end();
        CHECK(ok);
        CHECK(strstr(log, "Connection refused, retrying in") != NULL);
        CHECK(strstr(log, "labelled") != NULL);
        labeler_stop(lb);
        free(log);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_change_goes_out_while_backing_off(void) {
        struct fake f = {.fail_until = 1, .fail_status = 500};
        struct labeler *lb = start(&f, 60000, 10000, 10000);
        struct sgx_caps c = caps_inkernel_sgx2();
        struct label_set s = {0};
        uint64_t t0;

        capture_start();
        labeler_set(lb, &s);
        bool ok1 = wait_calls(&f, 1, 2000);
        labels_desired("sgx.k8s.io", false, &c, &s);
        t0 = mono_ms();
        labeler_set(lb, &s); /* a device appeared: not held back by the 10 s backoff */
        bool ok2 = wait_calls(&f, 2, 2000);
        char *log = capture_end();
        CHECK(ok1);
        CHECK(ok2);
        CHECK(mono_ms() - t0 < 2000);
        labeler_stop(lb);
        free(log);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_stop_cancels_a_hung_request(void) {
        struct fake f = {.hang = true};
        struct labeler *lb = start(&f, 60000, 0, 0);
        struct label_set s = {0};
        uint64_t t0;

        labeler_set(lb, &s);
        CHECK(wait_calls(&f, 1, 2000));
        t0 = mono_ms();
        labeler_stop(lb);
        CHECK(mono_ms() - t0 < 1000);
        CHECK(f.saw_cancel);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_each_part_only_when_it_changed(void) {
        struct fake f = {0};
        struct labeler *lb = start_parts(&f, 60000, 0, 0, true, true, false);
        struct sgx_caps c = caps_inkernel_sgx2();
        struct labeler_state st = {0};

        labels_desired("sgx.k8s.io", false, &c, &st.labels);
        st.epc_bytes = capacity_epc_desired(&c);
        labeler_update(lb, &st);
        CHECK(wait_calls(&f, 2, 2000)); /* both parts, once each */
        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 2);
        CHECK_STR(f.paths[0], "/api/v1/nodes/n1");
        CHECK_STR(f.paths[1], "/api/v1/nodes/n1/status");
        CHECK_STR(f.body[1], "{\"status\":{\"capacity\":{\"sgx.k8s.io/epc\":\"134217728\"}}}");

        st.epc_bytes = 64ull << 20; /* only the capacity changed: only the status PATCH */
        labeler_update(lb, &st);
        CHECK(wait_calls(&f, 3, 2000));
        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 3);
        CHECK_STR(f.paths[2], "/api/v1/nodes/n1/status");

        c.flc = false; /* only the labels changed */
        labels_desired("sgx.k8s.io", false, &c, &st.labels);
        labeler_update(lb, &st);
        CHECK(wait_calls(&f, 4, 2000));
        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 4);
        CHECK_STR(f.paths[3], "/api/v1/nodes/n1");

        labeler_reassert_capacity(lb); /* a kubelet restart: the capacity alone, at once */
        CHECK(wait_calls(&f, 5, 2000));
        sleep_ms(50);
        CHECK_INT(fake_calls(&f), 5);
        CHECK_STR(f.paths[4], "/api/v1/nodes/n1/status");
        CHECK(strstr(f.body[4], "\"67108864\"") != NULL);
        labeler_stop(lb);
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_capacity_alone(void) {
        struct fake f = {0};
        struct labeler *lb = start_parts(&f, 40, 0, 0, false, true, true);
        struct labeler_state st = {.epc_bytes = 1ull << 30};

        labeler_update(lb, &st);
        CHECK(wait_calls(&f, 3, 2000)); /* sent, then re-asserted every 40 ms */
        labeler_stop(lb);
        for (unsigned i = 0; i < 3; i++) {
                CHECK_STR(f.paths[i], "/api/v1/nodes/n1/status");
                CHECK(strstr(f.body[i], "\"sgx.intel.com/epc\":\"1073741824\"") != NULL);
        }
        pthread_mutex_destroy(&f.mu);
}

static void test_worker_status_403_names_the_rbac_rule(void) {
        struct fake f = {.fail_until = 1, .fail_status = 403};
        struct labeler *lb = start_parts(&f, 60000, 10, 10, false, true, false);
        struct labeler_state st = {.epc_bytes = 1ull << 30};

        capture_start();
        labeler_update(lb, &st);
        bool ok = wait_calls(&f, 2, 2000);
        sleep_ms(20);
        char *log = capture_end();
        CHECK(ok);
        CHECK(strstr(log, "HTTP 403") != NULL);
        CHECK(strstr(log, "resources [\"nodes/status\"], verbs [\"patch\"]") != NULL);
        CHECK(strstr(log, "retrying in") != NULL);
        CHECK(strstr(log, "sgx.k8s.io/epc=1073741824") != NULL); /* then it landed */
        labeler_stop(lb);
        free(log);
        pthread_mutex_destroy(&f.mu);
}

static void test_start_rejects_bad_config(void) {
        struct labeler_config cfg = {.domain = "sgx.k8s.io", .node_name = NULL, .interval_ms = 1};
        struct labeler *lb = NULL;

        CHECK_INT(labeler_start(&cfg, &lb), -EINVAL);
        cfg.node_name = "n";
        cfg.interval_ms = 0;
        CHECK_INT(labeler_start(&cfg, &lb), -EINVAL);
        cfg.interval_ms = 1; /* neither labels nor capacity: nothing to do */
        CHECK_INT(labeler_start(&cfg, &lb), -EINVAL);
        CHECK(lb == NULL);
        CHECK(labeler_stop(NULL) == NULL);
}

int main(void) {
        RUN(test_labels_desired_no_device_wants_none);
        RUN(test_labels_desired_inkernel_sgx2);
        RUN(test_labels_desired_ias_only_legacy);
        RUN(test_labels_desired_unknown_epc_left_out);
        RUN(test_labels_equal_ignores_order);
        RUN(test_patch_body_sets_ours_and_nulls_the_rest);
        RUN(test_patch_body_no_sgx_removes_all_ours);
        RUN(test_capacity_epc_desired);
        RUN(test_capacity_patch_body);
        RUN(test_labels_intel_capable);
        RUN(test_worker_sends_once_per_change);
        RUN(test_worker_reasserts_every_interval);
        RUN(test_worker_backs_off_and_recovers);
        RUN(test_worker_403_names_the_rbac_rule);
        RUN(test_worker_transport_error_logged_and_retried);
        RUN(test_worker_change_goes_out_while_backing_off);
        RUN(test_worker_stop_cancels_a_hung_request);
        RUN(test_worker_each_part_only_when_it_changed);
        RUN(test_worker_capacity_alone);
        RUN(test_worker_status_403_names_the_rbac_rule);
        RUN(test_start_rejects_bad_config);
        return unit_done();
}
