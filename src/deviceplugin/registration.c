/*
 * registration.c - Register with the kubelet, for one resource (see registration.h).
 * Owns the in-flight grpc_client call, the retry timer and the backoff. Never blocks the loop:
 * a blocking Register would deadlock, since the kubelet calls us back before it answers.
 */
#include "registration.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "backoff.h"
#include "grpc_client.h"
#include "log.h"
#include "loop.h"

#define REGISTER_METHOD "/v1beta1.Registration/Register"
#define API_VERSION "v1beta1"

struct reg {
        struct loop *loop;  /* borrowed */
        char *kubelet_sock; /* DIR/kubelet.sock */
        char *resource;     /* "sgx.k8s.io/sgx" */
        char *endpoint;     /* "sgxdevplugin-sgx.sock" */
        reg_done_fn on_registered;
        void *userdata;

        struct grpc_client_call *call; /* in flight, or NULL */
        struct loop_source *retry;     /* the backoff timer */
        struct backoff backoff;        /* delay before the next retry, in µs */
        bool registered;               /* the last Register succeeded */
        unsigned n_registered;
        unsigned attempt; /* failures since the last reg_start */
};

int reg_new(struct loop *l, const char *kubelet_sock, const char *resource, const char *endpoint,
            reg_done_fn on_registered, void *userdata, struct reg **ret) {
        struct reg *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->loop = l;
        r->on_registered = on_registered;
        r->userdata = userdata;
        backoff_init(&r->backoff, REG_BACKOFF_MIN_USEC, REG_BACKOFF_MAX_USEC);
        r->kubelet_sock = strdup(kubelet_sock);
        r->resource = strdup(resource);
        r->endpoint = strdup(endpoint);
        if (!r->kubelet_sock || !r->resource || !r->endpoint)
                goto out_free;
        *ret = r;
        return 0;

out_free:
        reg_free(r);
        return -ENOMEM;
}

struct reg *reg_free(struct reg *r) {
        if (!r)
                return NULL;
        r->call = grpc_client_call_cancel(r->call);
        r->retry = loop_source_free(r->retry);
        free(r->kubelet_sock);
        free(r->resource);
        free(r->endpoint);
        free(r);
        return NULL;
}

static int send_register(struct reg *r);

static void on_retry(struct loop_source *s, void *userdata) {
        struct reg *r = userdata;
        (void) send_register(r);
}

static void schedule_retry(struct reg *r, const char *why, int err) {
        uint64_t delay;
        int q;

        if (r->attempt == 0 && err == -ECONNREFUSED)
                delay = REG_REFUSED_RETRY_USEC; /* the backoff starts with the next failure */
        else
                delay = backoff_next(&r->backoff);
        r->attempt++;
        if (!r->retry && (q = loop_add_timer(r->loop, on_retry, r, &r->retry)) < 0) {
                log_error(r->resource, r->kubelet_sock,
                          "register failed: %s; cannot schedule a retry: %s", why, strerror(-q));
                return;
        }
        loop_timer_arm(r->retry, delay, 0);
        log_warn(r->resource, r->kubelet_sock,
                 "register failed (attempt %u): %s, retrying in %.3g s", r->attempt, why,
                 (double) delay / 1e6);
}

static void on_register_done(int err, enum grpc_status status, const char *message,
                             const uint8_t *resp, size_t len, void *userdata) {
        struct reg *r = userdata;
        char why[512];

        r->call = NULL;
        if (err < 0) {
                snprintf(why, sizeof(why), "%s", strerror(-err));
                schedule_retry(r, why, err);
                return;
        }
        if (status != GRPC_STATUS_OK) {
                snprintf(why, sizeof(why), "kubelet answered %s: %s", grpc_status_name(status),
                         message ? message : "");
                schedule_retry(r, why, 0);
                return;
        }
        r->registered = true;
        r->n_registered++;
        r->attempt = 0;
        backoff_reset(&r->backoff);
        log_info(r->resource, r->kubelet_sock, "registered with the kubelet, endpoint %s",
                 r->endpoint);
        if (r->on_registered)
                r->on_registered(r, r->userdata);
}

static int send_register(struct reg *r) {
        V1beta1__RegisterRequest req = V1BETA1__REGISTER_REQUEST__INIT;
        V1beta1__DevicePluginOptions opts = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        uint8_t *buf;
        size_t len;
        int q;

        req.version = (char *) API_VERSION;
        req.endpoint = r->endpoint;
        req.resource_name = r->resource;
        req.options = &opts;
        len = v1beta1__register_request__get_packed_size(&req);
        buf = malloc(len ? len : 1);
        if (!buf) {
                schedule_retry(r, "out of memory", -ENOMEM);
                return -ENOMEM;
        }
        v1beta1__register_request__pack(&req, buf);
        q = grpc_client_unary(r->loop, r->kubelet_sock, NULL, REGISTER_METHOD, buf, len,
                              REG_TIMEOUT_USEC, on_register_done, r, &r->call);
        free(buf);
        if (q < 0) {
                r->call = NULL;
                schedule_retry(r, strerror(-q), q);
                return q;
        }
        log_debug(r->resource, r->kubelet_sock, "register sent, endpoint %s", r->endpoint);
        return 0;
}

int reg_start(struct reg *r) {
        reg_stop(r);
        backoff_reset(&r->backoff);
        return send_register(r);
}

void reg_stop(struct reg *r) {
        r->call = grpc_client_call_cancel(r->call);
        if (r->retry)
                loop_timer_arm(r->retry, 0, 0);
        r->registered = false;
        r->attempt = 0;
}

bool reg_is_registered(const struct reg *r) {
        return r->registered;
}

unsigned reg_n_registered(const struct reg *r) {
        return r->n_registered;
}
