/*
 * health.c - `sgxdevplugin health` (see health.h): one GetDevicePluginOptions call per socket of
 * the daemon, all started at once on a private loop with grpc_client, each bounded by --timeout,
 * then one line per socket. A daemon that is gone fails with "connection refused" or "no socket";
 * a wedged one (its loop stuck, or the process stopped) accepts the connection in the kernel but
 * never answers, and fails when the timeout expires. Knows the socket names, not the daemon.
 */
#include "health.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.pb-c.h"
#include "cli.h"
#include "deviceplugin.h"
#include "grpc_client.h"
#include "loop.h"

#define OPTIONS_METHOD "/v1beta1.DevicePlugin/GetDevicePluginOptions"

struct health;

/* One socket being checked. */
struct check {
        struct health *health;         /* back pointer, borrowed */
        char resource[SGX_RESOURCE_NAME_SIZE]; /* "sgx.k8s.io/dcap" */
        char path[PATH_MAX];           /* DIR/sgxdevplugin-dcap.sock */
        struct grpc_client_call *call; /* in flight, or NULL */
        uint64_t start_usec;           /* when the call started */
        uint64_t took_usec;            /* how long it took to answer */
        bool ok;                       /* answered OK with a DevicePluginOptions */
        char why[512];                 /* what failed, when !ok */
};

struct health {
        struct loop *loop;                /* private, owned by check_all() */
        struct check checks[SGX_KIND_MAX]; /* one per socket, in resource order */
        size_t n_checks;
        size_t pending;      /* calls started and not done */
        unsigned timeout_ms; /* --timeout */
};

/* Says why the transport failed, in an operator's words. */
static void describe_transport_error(struct check *c, int err, unsigned timeout_ms) {
        switch (err) {
        case -ETIMEDOUT:
                snprintf(c->why, sizeof(c->why),
                         "no answer within %g s (the daemon is wedged or stopped)",
                         (double) timeout_ms / 1000.0);
                break;
        case -ENOENT:
                snprintf(c->why, sizeof(c->why),
                         "no such socket (the daemon is not running with this --kubelet-dir, or "
                         "the directory was wiped)");
                break;
        case -ECONNREFUSED:
                snprintf(c->why, sizeof(c->why),
                         "connection refused (nothing listens: the daemon is gone)");
                break;
        case -ECONNRESET:
                snprintf(c->why, sizeof(c->why), "connection closed before an answer");
                break;
        case -EPROTO:
                snprintf(c->why, sizeof(c->why), "malformed gRPC answer");
                break;
        default:
                snprintf(c->why, sizeof(c->why), "%s", strerror(-err));
                break;
        }
}

/* One call is over: the loop ends with the last one. */
static void finish(struct health *h, struct check *c) {
        c->took_usec = loop_now_usec() - c->start_usec;
        if (--h->pending == 0)
                loop_quit(h->loop, 0);
}

static void on_options_done(int err, enum grpc_status status, const char *message,
                            const uint8_t *resp, size_t len, void *userdata) {
        struct check *c = userdata;
        struct health *h = c->health;
        static const uint8_t empty[1];
        V1beta1__DevicePluginOptions *opts;

        c->call = NULL;
        if (err < 0) {
                describe_transport_error(c, err, h->timeout_ms);
        } else if (status != GRPC_STATUS_OK) {
                snprintf(c->why, sizeof(c->why), "answered %s: %s", grpc_status_name(status),
                         message && message[0] ? message : "(no message)");
        } else {
                opts = v1beta1__device_plugin_options__unpack(NULL, len, resp ? resp : empty);
                if (!opts) {
                        snprintf(c->why, sizeof(c->why),
                                 "the answer is no DevicePluginOptions message (%zu bytes)", len);
                } else {
                        v1beta1__device_plugin_options__free_unpacked(opts, NULL);
                        c->ok = true;
                }
        }
        finish(h, c);
}

/* Adds the check of resource |k| at its socket in --kubelet-dir. */
static int add_check(struct health *h, const struct cli_options *opt, enum sgx_kind k) {
        struct check *c = &h->checks[h->n_checks];
        int r;

        r = sgx_resource_name(opt->domain, k, c->resource, sizeof(c->resource));
        if (r < 0)
                return r;
        r = sgx_socket_path(opt->kubelet_dir, k, c->path, sizeof(c->path));
        if (r < 0)
                return r;
        h->n_checks++;
        return 0;
}

/* Starts the call of |c|; a call that cannot even start is a failed check. */
static int start_check(struct health *h, struct check *c) {
        int r;

        c->health = h;
        c->start_usec = loop_now_usec();
        r = grpc_client_unary(h->loop, c->path, NULL, OPTIONS_METHOD, NULL, 0,
                              (uint64_t) h->timeout_ms * 1000, on_options_done, c, &c->call);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(c->why, sizeof(c->why), "cannot start the call: %s", strerror(-r));
                return 0;
        }
        h->pending++;
        return 0;
}

/* Runs every check and writes the report; returns what health_check() does, without the line
 * for a check that could not run. */
static int check_all(FILE *out, const struct cli_options *opt) {
        struct health h = {.timeout_ms = opt->health_timeout_ms};
        struct stat st;
        size_t failed = 0;
        int r;

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                r = add_check(&h, opt, k);
                if (r < 0)
                        return r;
                /* an opt-in kind's socket exists only when it was asked for */
                if (sgx_resource(k)->opt_in && stat(h.checks[h.n_checks - 1].path, &st) < 0)
                        h.n_checks--;
        }

        r = loop_new(&h.loop);
        if (r < 0)
                return r;
        for (size_t i = 0; i < h.n_checks; i++) {
                r = start_check(&h, &h.checks[i]);
                if (r < 0)
                        goto out_free_loop;
        }
        if (h.pending > 0) {
                r = loop_run(h.loop);
                if (r < 0)
                        goto out_free_loop;
        }

        for (size_t i = 0; i < h.n_checks; i++) {
                struct check *c = &h.checks[i];

                if (c->ok)
                        fprintf(out, "%s %s: ok (answered in %.1f ms)\n", c->resource, c->path,
                                (double) c->took_usec / 1000.0);
                else {
                        fprintf(out, "%s %s: FAILED: %s\n", c->resource, c->path, c->why);
                        failed++;
                }
        }
        fflush(out);
        r = failed > INT_MAX ? INT_MAX : (int) failed;

out_free_loop:
        for (size_t i = 0; i < h.n_checks; i++)
                h.checks[i].call = grpc_client_call_cancel(h.checks[i].call);
        h.loop = loop_free(h.loop);
        return r;
}

int health_check(FILE *out, const struct cli_options *opt) {
        int r = check_all(out, opt);

        if (r < 0) {
                fprintf(out, "health check could not run: %s\n", strerror(-r));
                fflush(out);
        }
        return r;
}
