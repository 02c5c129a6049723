/* test_registration.c - Register with the kubelet: the request, retries with backoff, stop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "grpc_server.h"
#include "loop.h"
#include "registration.h"
#include "unit.h"

/* A kubelet's Registration service that rejects the first |reject| calls. */
struct kubelet {
        struct loop *loop;
        struct grpc_server *server;
        int calls, reject, registered;
        char version[32], endpoint[64], resource[64];
        struct loop_source *stop; /* quits the loop when it fires */
};

static void on_register(struct grpc_call *call, const uint8_t *req, size_t len, void *userdata) {
        struct kubelet *k = userdata;
        V1beta1__RegisterRequest *r = v1beta1__register_request__unpack(NULL, len, req);

        k->calls++;
        if (!r) {
                grpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "undecodable");
                return;
        }
        snprintf(k->version, sizeof(k->version), "%s", r->version);
        snprintf(k->endpoint, sizeof(k->endpoint), "%s", r->endpoint);
        snprintf(k->resource, sizeof(k->resource), "%s", r->resource_name);
        v1beta1__register_request__free_unpacked(r, NULL);
        if (k->calls <= k->reject)
                grpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "not yet");
        else
                grpc_call_reply(call, (const uint8_t *) "", 0); /* Empty */
}

static const struct grpc_method methods[] = {
        {"/v1beta1.Registration/Register", false, on_register},
};

static void on_registered(struct reg *r, void *userdata) {
        struct kubelet *k = userdata;
        k->registered++;
        loop_quit(k->loop, 0);
}

static void on_stop(struct loop_source *s, void *userdata) {
        struct kubelet *k = userdata;
        loop_quit(k->loop, -ETIMEDOUT);
}

static char dir[64], sock[128];

static void kubelet_start(struct kubelet *k, int reject) {
        struct grpc_server_config cfg = {.methods = methods, .n_methods = 1, .userdata = k};

        memset(k, 0, sizeof(*k));
        k->reject = reject;
        snprintf(dir, sizeof(dir), "/tmp/test_reg.XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
        snprintf(sock, sizeof(sock), "%s/kubelet.sock", dir);
        CHECK_INT(loop_new(&k->loop), 0);
        CHECK_INT(grpc_server_new(k->loop, sock, &cfg, &k->server), 0);
        CHECK_INT(loop_add_timer(k->loop, on_stop, k, &k->stop), 0);
}

/* Runs the loop until registered or |usec| passed; returns the loop's code. */
static int run_for(struct kubelet *k, uint64_t usec) {
        loop_timer_arm(k->stop, usec, 0);
        return loop_run(k->loop);
}

static void kubelet_stop(struct kubelet *k) {
        k->stop = loop_source_free(k->stop);
        k->server = grpc_server_free(k->server);
        k->loop = loop_free(k->loop);
        rmdir(dir);
}

static void test_registration_sends_version_endpoint_and_resource(void) {
        struct kubelet k;
        struct reg *r;

        kubelet_start(&k, 0);
        CHECK_INT(reg_new(k.loop, sock, "sgx.k8s.io/dcap", "sgxdevplugin-dcap.sock", on_registered,
                          &k, &r),
                  0);
        CHECK(!reg_is_registered(r));
        CHECK_INT(reg_start(r), 0);
        CHECK_INT(run_for(&k, 5000000), 0);
        CHECK_INT(k.calls, 1);
        CHECK_INT(k.registered, 1);
        CHECK(reg_is_registered(r));
        CHECK_INT(reg_n_registered(r), 1);
        CHECK_STR(k.version, "v1beta1");
        CHECK_STR(k.endpoint, "sgxdevplugin-dcap.sock");
        CHECK_STR(k.resource, "sgx.k8s.io/dcap");
        reg_free(r);
        kubelet_stop(&k);
}

static void test_registration_rejected_is_retried_with_growing_backoff(void) {
        struct kubelet k;
        struct reg *r;
        uint64_t start;

        kubelet_start(&k, 2);
        CHECK_INT(reg_new(k.loop, sock, "sgx.k8s.io/sgx", "sgxdevplugin-sgx.sock", on_registered,
                          &k, &r),
                  0);
        start = loop_now_usec();
        CHECK_INT(reg_start(r), 0);
        CHECK_INT(run_for(&k, 5000000), 0);
        CHECK_INT(k.calls, 3);
        CHECK_INT(k.registered, 1);
        /* two failures: the retries waited 100 ms, then 200 ms */
        CHECK(loop_now_usec() - start >= REG_BACKOFF_MIN_USEC * 3);
        reg_free(r);
        kubelet_stop(&k);
}

static void test_registration_stop_cancels_the_retry(void) {
        struct kubelet k;
        struct reg *r;

        kubelet_start(&k, 1000);
        CHECK_INT(reg_new(k.loop, sock, "sgx.k8s.io/ias", "sgxdevplugin-ias.sock", on_registered,
                          &k, &r),
                  0);
        CHECK_INT(reg_start(r), 0);
        CHECK_INT(run_for(&k, 50000), -ETIMEDOUT); /* the first call fails, a retry is due */
        CHECK_INT(k.calls, 1);
        reg_stop(r);
        CHECK_INT(run_for(&k, 3 * REG_BACKOFF_MIN_USEC), -ETIMEDOUT);
        CHECK_INT(k.calls, 1);
        CHECK(!reg_is_registered(r));
        reg_free(r);
        kubelet_stop(&k);
}

static void test_registration_no_kubelet_keeps_retrying_without_success(void) {
        struct kubelet k;
        struct reg *r;

        kubelet_start(&k, 0);
        k.server = grpc_server_free(k.server); /* the socket is gone: ENOENT */
        CHECK_INT(reg_new(k.loop, sock, "sgx.k8s.io/sgx", "sgxdevplugin-sgx.sock", on_registered,
                          &k, &r),
                  0);
        CHECK_INT(reg_start(r), 0);
        CHECK_INT(run_for(&k, 250000), -ETIMEDOUT);
        CHECK_INT(k.registered, 0);
        CHECK(!reg_is_registered(r));
        reg_free(r); /* with a retry pending: nothing leaks (ASan) */
        kubelet_stop(&k);
}

int main(void) {
        RUN(test_registration_sends_version_endpoint_and_resource);
        RUN(test_registration_rejected_is_retried_with_growing_backoff);
        RUN(test_registration_stop_cancels_the_retry);
        RUN(test_registration_no_kubelet_keeps_retrying_without_success);
        return unit_done();
}
