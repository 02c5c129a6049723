/*
 * test_kube_fault.c - the fault twin of test_labeler.c and test_apiclient.c's pure halves: every
 * allocation of labels_patch_body() and capacity_patch_body() (jansson's included,
 * failmalloc_hook_jansson()) and of one API request on the in-memory HTTP/2 client
 * (apiclient_internal.h: api_h2_new, the answer's body growing, api_h2_result) made to fail in
 * turn (failmalloc.h). Each must give -ENOMEM or the result it gives without the failure; nothing
 * leaks. nghttp2's own allocations are not caught.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "apiclient.h"
#include "apiclient_internal.h"
#include "failmalloc.h"
#include "labeler.h"
#include "unit.h"

static void test_kube_fault_labels_patch_body(void) {
        struct label_set s = {.n = 2};
        const char *want = "{\"metadata\":{\"labels\":{\"sgx.k8s.io/dcap\":\"true\","
                           "\"sgx.k8s.io/epc-mib\":null,\"sgx.k8s.io/flc\":null,"
                           "\"sgx.k8s.io/ias\":null,\"sgx.k8s.io/sgx\":\"true\","
                           "\"sgx.k8s.io/sgx2\":null}}}";
        unsigned long n;

        strcpy(s.l[0].key, "sgx.k8s.io/sgx");
        strcpy(s.l[0].value, "true");
        strcpy(s.l[1].key, "sgx.k8s.io/dcap");
        strcpy(s.l[1].value, "true");
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                char *body = NULL;
                int r;

                failmalloc_arm(n);
                r = labels_patch_body("sgx.k8s.io", false, &s, &body);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_STR(body, want);
                        free(body);
                        break;
                }
                if (r == 0)
                        CHECK_STR(body, want);
                else
                        CHECK_INT(r, -ENOMEM);
                free(body);
        }
        CHECK(n > 8); /* jansson's objects, strings and the dump */
}

static void test_kube_fault_capacity_patch_body(void) {
        const char *want = "{\"status\":{\"capacity\":{\"sgx.intel.com/epc\":\"4096\","
                           "\"sgx.k8s.io/epc\":\"4096\"}}}";
        unsigned long n;

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                char *body = NULL;
                int r;

                failmalloc_arm(n);
                r = capacity_patch_body("sgx.k8s.io", true, 4096, &body);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_STR(body, want);
                        free(body);
                        break;
                }
                if (r == 0)
                        CHECK_STR(body, want);
                else
                        CHECK_INT(r, -ENOMEM);
                free(body);
        }
        CHECK(n > 4);
}

/* ---- a server session answering from memory ---- */

struct srv {
        nghttp2_session *session;
        int status;
        const char *body;
        size_t body_len, off;
};

static ssize_t srv_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        struct srv *s = user_data;
        size_t n = s->body_len - s->off < length ? s->body_len - s->off : length;

        memcpy(buf, s->body + s->off, n);
        s->off += n;
        if (s->off == s->body_len)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
}

static int srv_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct srv *s = user_data;
        char st[4];
        nghttp2_nv hdrs[] = {
                {(uint8_t *) ":status", (uint8_t *) st, 7, 3, 0},
                {(uint8_t *) "content-type", (uint8_t *) "application/json", 12, 16, 0},
        };
        nghttp2_data_provider prd = {.read_callback = srv_read};

        if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        snprintf(st, sizeof(st), "%d", s->status);
        CHECK_INT(nghttp2_submit_response(session, frame->hd.stream_id, hdrs, 2, &prd), 0);
        return 0;
}

/* One PATCH answered with |status| and |body|; the outcome of api_h2_result in *ret. */
static int request(struct srv *s, struct api_response *ret, char *err, size_t errsz) {
        static const char patch[] = "{\"metadata\":{\"labels\":{\"sgx.k8s.io/sgx\":\"true\"}}}";
        nghttp2_session_callbacks *cb;
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384}};
        struct api_h2 *h = NULL;
        int r;

        CHECK_INT(nghttp2_session_callbacks_new(&cb), 0);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_on_frame);
        CHECK_INT(nghttp2_session_server_new(&s->session, cb, s), 0);
        nghttp2_session_callbacks_del(cb);
        CHECK_INT(nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, 1), 0);
        s->off = 0;

        r = api_h2_new("10.96.0.1:443", "PATCH", "/api/v1/nodes/n1", "application/merge-patch+json",
                       "tok", patch, sizeof(patch) - 1, &h);
        if (r < 0)
                goto out_free_server;
        for (int round = 0; round < 1000 && !api_h2_done(h); round++) {
                const uint8_t *d;
                ssize_t n;
                bool moved = false;

                while ((n = api_h2_send(h, &d)) > 0) {
                        CHECK_INT(nghttp2_session_mem_recv(s->session, d, (size_t) n), n);
                        moved = true;
                }
                while (!api_h2_done(h) && (n = nghttp2_session_mem_send(s->session, &d)) > 0) {
                        (void) api_h2_recv(h, d, (size_t) n);
                        moved = true;
                }
                if (!moved)
                        break;
        }
        if (!api_h2_done(h))
                api_h2_eof(h);
        r = api_h2_result(h, ret, err, errsz);
        api_h2_free(h);
out_free_server:
        nghttp2_session_del(s->session);
        return r;
}

static void fault_request(int status, const char *body, size_t body_len, const char *message,
                          unsigned long min_steps) {
        unsigned long n;

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                struct srv s = {.status = status, .body = body, .body_len = body_len};
                struct api_response resp;
                char err[256] = "";
                int r;

                memset(&resp, 0, sizeof(resp));
                failmalloc_arm(n);
                r = request(&s, &resp, err, sizeof(err));
                failmalloc_disarm();
                if (r == 0) {
                        CHECK_INT(resp.status, status);
                        CHECK_INT(resp.body_len, body_len);
                        CHECK(resp.body && memcmp(resp.body, body, body_len) == 0);
                        /* The Status message only reaches the log. Out of memory, jansson's
                         * lexer (2.14) drops bytes of a string it cannot append and still
                         * succeeds ("nodes \"n1\" i forbidden"), so only its absence of
                         * an injected failure makes it exact. */
                        if (!failmalloc_fired())
                                CHECK_STR(resp.message, message);
                } else {
                        CHECK(failmalloc_fired());
                        CHECK_INT(r, -ENOMEM);
                }
                api_response_clear(&resp);
                if (!failmalloc_fired())
                        break;
        }
        CHECK(n >= min_steps);
}

/* A 200 answer of 200 KiB: the body grows by doubling, each step can fail. */
static void test_kube_fault_api_h2_large_answer(void) {
        size_t len = 200 * 1024;
        char *body = malloc(len);

        CHECK(body != NULL);
        if (!body)
                return;
        memset(body, ' ', len);
        body[0] = '{';
        body[len - 1] = '}';
        fault_request(200, body, len, "", 4);
        free(body);
}

/* A 403 with a k8s Status: its message is read with jansson. */
static void test_kube_fault_api_h2_status_answer(void) {
        static const char status403[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                "\"nodes \\\"n1\\\" is forbidden\",\"reason\":\"Forbidden\",\"code\":403}";

        fault_request(403, status403, sizeof(status403) - 1, "nodes \"n1\" is forbidden", 3);
}

int main(void) {
        failmalloc_hook_jansson();
        RUN(test_kube_fault_labels_patch_body);
        RUN(test_kube_fault_capacity_patch_body);
        RUN(test_kube_fault_api_h2_large_answer);
        RUN(test_kube_fault_api_h2_status_answer);
        return unit_done();
}
