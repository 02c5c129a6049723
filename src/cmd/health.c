/*
 * health.c - `sgxdevplugin health` (see health.h): one GetDevicePluginOptions call per socket of
 * the daemon, all started at once on a private loop with grpc_client, each bounded by --timeout,
 * then one line per socket. With --dra also GetInfo on D-reg.sock (a PluginInfo of type DRAPlugin
 * named D) and an empty NodeUnprepareResources on dra.sock (which the daemon's loop answers at
 * once, empty); with --no-device-plugin only those two. A daemon that is gone fails with
 * "connection refused" or "no socket"; a wedged one (its loop stuck, or the process stopped)
 * accepts the connection in the kernel but never answers, and fails when the timeout expires.
 * Knows the socket names, not the daemon.
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
#include "dra_v1.pb-c.h"
#include "draplugin.h"
#include "grpc_client.h"
#include "loop.h"
#include "pluginregistration.pb-c.h"

#define OPTIONS_METHOD "/v1beta1.DevicePlugin/GetDevicePluginOptions"
#define GET_INFO_METHOD "/pluginregistration.Registration/GetInfo"
#define UNPREPARE_METHOD "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources"

/* What a line names instead of a resource, for the DRA sockets. */
#define DRA_REG_LABEL "dra-registration"
#define DRA_PLUGIN_LABEL "dra-plugin"

struct health;
struct check;

/* Says whether answer |resp| (|len| bytes, non-NULL) is the one wanted; if not, why in c->why. */
typedef bool (*check_answer_fn)(struct check *c, const uint8_t *resp, size_t len);

/* One socket being checked. */
struct check {
        struct health *health;         /* back pointer, borrowed */
        char resource[SGX_RESOURCE_NAME_SIZE]; /* "sgx.k8s.io/dcap", or a DRA_*_LABEL */
        char path[PATH_MAX];           /* DIR/sgxdevplugin-dcap.sock */
        const char *dir_flag;          /* the flag naming the socket's directory */
        const char *method;            /* the call */
        check_answer_fn answer_ok;     /* its answer checked */
        struct grpc_client_call *call; /* in flight, or NULL */
        uint64_t start_usec;           /* when the call started */
        uint64_t took_usec;            /* how long it took to answer */
        bool ok;                       /* answered OK with a DevicePluginOptions */
        char why[512];                 /* what failed, when !ok */
};

struct health {
        struct loop *loop;                /* private, owned by check_all() */
        struct check checks[SGX_KIND_MAX + 2]; /* one per socket, in resource order, then DRA's */
        size_t n_checks;
        size_t pending;      /* calls started and not done */
        unsigned timeout_ms; /* --timeout */
        const char *driver;  /* D: the PluginInfo's name */
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
                         "no such socket (the daemon is not running with this %s, or the directory was wiped)", c->dir_flag);
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

/* GetDevicePluginOptions: any DevicePluginOptions. */
static bool options_ok(struct check *c, const uint8_t *resp, size_t len) {
        V1beta1__DevicePluginOptions *opts = v1beta1__device_plugin_options__unpack(NULL, len, resp);

        if (!opts) {
                snprintf(c->why, sizeof(c->why),
                         "the answer is no DevicePluginOptions message (%zu bytes)", len);
                return false;
        }
        v1beta1__device_plugin_options__free_unpacked(opts, NULL);
        return true;
}

/* GetInfo: a PluginInfo of type DRAPlugin named D. */
static bool info_ok(struct check *c, const uint8_t *resp, size_t len) {
        Pluginregistration__PluginInfo *info = pluginregistration__plugin_info__unpack(NULL, len,
                                                                                       resp);
        bool ok = false;

        if (!info) {
                snprintf(c->why, sizeof(c->why), "the answer is no PluginInfo message (%zu bytes)",
                         len);
                return false;
        }
        if (strcmp(info->type, DRA_PLUGIN_TYPE) != 0)
                snprintf(c->why, sizeof(c->why),
                         "the PluginInfo is of type '%.64s', not " DRA_PLUGIN_TYPE, info->type);
        else if (strcmp(info->name, c->health->driver) != 0)
                snprintf(c->why, sizeof(c->why),
                         "the PluginInfo names driver '%.300s', not this --resource-domain",
                         info->name);
        else
                ok = true;
        pluginregistration__plugin_info__free_unpacked(info, NULL);
        return ok;
}

/* NodeUnprepareResources of no claims: an empty NodeUnprepareResourcesResponse. */
static bool unprepare_ok(struct check *c, const uint8_t *resp, size_t len) {
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse *r =
                k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__unpack(
                        NULL, len, resp);
        bool ok = false;

        if (!r) {
                snprintf(c->why, sizeof(c->why),
                         "the answer is no NodeUnprepareResourcesResponse message (%zu bytes)",
                         len);
                return false;
        }
        if (r->n_claims != 0)
                snprintf(c->why, sizeof(c->why),
                         "the NodeUnprepareResourcesResponse to no claims has %zu", r->n_claims);
        else
                ok = true;
        k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__free_unpacked(r,
                                                                                             NULL);
        return ok;
}

static void on_call_done(int err, enum grpc_status status, const char *message,
                         const uint8_t *resp, size_t len, void *userdata) {
        struct check *c = userdata;
        struct health *h = c->health;
        static const uint8_t empty[1];

        c->call = NULL;
        if (err < 0) {
                describe_transport_error(c, err, h->timeout_ms);
        } else if (status != GRPC_STATUS_OK) {
                snprintf(c->why, sizeof(c->why), "answered %s: %s", grpc_status_name(status),
                         message && message[0] ? message : "(no message)");
        } else {
                c->ok = c->answer_ok(c, resp ? resp : empty, len);
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
        c->dir_flag = "--kubelet-dir";
        c->method = OPTIONS_METHOD;
        c->answer_ok = options_ok;
        h->n_checks++;
        return 0;
}

/* Adds the checks of D-reg.sock in --plugins-registry and dra.sock in --dra-dir. */
static int add_dra_checks(struct health *h, const struct cli_options *opt) {
        struct check *reg = &h->checks[h->n_checks], *dra = &h->checks[h->n_checks + 1];
        const struct dra_config cfg = {
                .driver = opt->domain,
                .registry_dir = opt->plugins_registry,
                .dra_dir = opt->dra_dir,
        };
        int r;

        r = dra_socket_paths(&cfg, reg->path, dra->path, sizeof(reg->path));
        if (r < 0)
                return r;
        snprintf(reg->resource, sizeof(reg->resource), "%s", DRA_REG_LABEL);
        reg->dir_flag = "--plugins-registry";
        reg->method = GET_INFO_METHOD;
        reg->answer_ok = info_ok;
        snprintf(dra->resource, sizeof(dra->resource), "%s", DRA_PLUGIN_LABEL);
        dra->dir_flag = "--dra-dir";
        dra->method = UNPREPARE_METHOD;
        dra->answer_ok = unprepare_ok;
        h->n_checks += 2;
        return 0;
}

/* Starts the call of |c|; a call that cannot even start is a failed check. */
static int start_check(struct health *h, struct check *c) {
        int r;

        c->health = h;
        c->start_usec = loop_now_usec();
        /* every request is an empty message: InfoRequest, no options, no claims to unprepare */
        r = grpc_client_unary(h->loop, c->path, NULL, c->method, NULL, 0,
                              (uint64_t) h->timeout_ms * 1000, on_call_done, c, &c->call);
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
        struct health h = {.timeout_ms = opt->health_timeout_ms, .driver = opt->domain};
        struct stat st;
        size_t failed = 0;
        int r;

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX && !opt->no_device_plugin; k++) {
                r = add_check(&h, opt, k);
                if (r < 0)
                        return r;
                /* an opt-in kind's socket exists only when it was asked for */
                if (sgx_resource(k)->opt_in && stat(h.checks[h.n_checks - 1].path, &st) < 0)
                        h.n_checks--;
        }
        if (opt->dra) {
                r = add_dra_checks(&h, opt);
                if (r < 0)
                        return r;
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
