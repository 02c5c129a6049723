/*
 * draplugin.h - the kubelet side of our DRA driver: the kubelet's plugin registration service
 * (pluginregistration.Registration, served on <plugins-registry>/D-reg.sock, which the kubelet
 * finds by watching that directory) and the DRA service (k8s.io.kubelet.pkg.apis.dra.v1 and
 * v1beta1 DRAPlugin, served on <dra-dir>/dra.sock, the endpoint GetInfo names). D, the driver
 * name, is the resource domain.
 *
 * Two halves, as in deviceplugin.h. The handlers are pure functions from (config, request bytes)
 * to response bytes or a gRPC status, so unit tests need no sockets. The service ties them to two
 * grpc_servers and keeps both sockets alive: inotify on both directories (and their parents,
 * and the nearest existing ancestor while they do not exist) and a slow rescan re-create a socket
 * that vanished (a kubelet restart, a wiped directory), dra.sock always before D-reg.sock, since
 * the kubelet dials the endpoint as soon as it has registered us. A socket replaced by another
 * process's is left to it.
 *
 * NodePrepareResources and NodeUnprepareResources are decoded here (malformed protobuf is
 * INVALID_ARGUMENT at once) and answered by claims.c's worker: the call waits, the loop does not.
 * An unprepare of no claims is answered at once, empty, by the loop (`sgxdevplugin health`).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc_status.h"

struct loop;
struct api_config;
struct dra_claim_ref;
struct dra_pool;

#define DRA_PLUGIN_TYPE "DRAPlugin"
#define DRA_REG_SUFFIX "-reg.sock"       /* <plugins-registry>/<driver>-reg.sock */
#define DRA_SOCKET_NAME "dra.sock"       /* <dra-dir>/dra.sock */
#define DRA_RESCAN_USEC (30u * 1000000u) /* safety-net rescan period */

/* The service API versions GetInfo offers, the kubelet's newest first. */
#define DRA_VERSION_V1 "v1.DRAPlugin"
#define DRA_VERSION_V1BETA1 "v1beta1.DRAPlugin"
#define DRA_VERSION_HEALTH "v1.DRAResourceHealth" /* NodeWatchResources, on dra.sock too */

/* Settings; strings borrowed, must outlive the service. */
struct dra_config {
        const char *driver;           /* D: the driver name, "sgx.k8s.io" */
        const char *registry_dir;     /* the kubelet's plugins_registry directory */
        const char *dra_dir;          /* our directory, absolute: dra.sock and checkpoint.json */
        const char *pool;             /* our pool: the node's name */
        const struct api_config *api; /* where claims are read; NULL: nowhere (each fails) */
        bool provision;               /* the dcap device maps its provisioning device too */
};

/*
 * The two socket paths of |cfg| into |reg| and |dra| (|size| bytes each). Returns 0, or
 * -ENAMETOOLONG when one would not fit a unix socket address (sun_path) or the buffer.
 */
int dra_socket_paths(const struct dra_config *cfg, char *reg, char *dra, size_t size);

/* ---- pure handlers: caller frees *ret_buf (free()) ---- */

/*
 * PluginInfo{type "DRAPlugin", name |driver|, endpoint |endpoint|, supported_versions
 * v1.DRAPlugin, v1beta1.DRAPlugin and v1.DRAResourceHealth}. Returns 0 or -ENOMEM.
 */
int dra_encode_info(const char *driver, const char *endpoint, uint8_t **ret_buf, size_t *ret_len);

/*
 * Decodes a RegistrationStatus: *ret_registered and, when refused, the kubelet's reason (made
 * printable, truncated) into |reason|; answers with an empty RegistrationStatusResponse.
 * INVALID_ARGUMENT (undecodable: |err| says so) or INTERNAL (out of memory).
 */
enum grpc_status dra_handle_notify(const uint8_t *req, size_t len, bool *ret_registered,
                                   char *reason, size_t reasonsz, uint8_t **ret_buf,
                                   size_t *ret_len, char *err, size_t errsz);

/*
 * Decodes a NodePrepareResourcesRequest or NodeUnprepareResourcesRequest (the same bytes:
 * repeated Claim claims = 1) into *ret_refs (*ret_n entries, caller frees the array) pointing
 * into *ret_msg (free with dra_claims_msg_free()). INVALID_ARGUMENT (undecodable: |err| says
 * which message) or INTERNAL (out of memory).
 */
enum grpc_status dra_decode_claims(const uint8_t *req, size_t len, const char *what,
                                   struct dra_claim_ref **ret_refs, size_t *ret_n, void **ret_msg,
                                   char *err, size_t errsz);
void dra_claims_msg_free(void *msg);

/* One device's health as NodeWatchResources streams it. */
struct dra_device_health {
        char name[8];  /* "dcap", "ias" */
        bool healthy;  /* present now; seen before and gone: unhealthy */
        int64_t since; /* Unix seconds of the last change */
};

/*
 * NodeWatchResourcesResponse: every device of |pool_name| in |devs| (the complete list; with
 * |slots| > 0 each class as its slot devices "<class>-<i>"), HEALTHY or UNHEALTHY with its time
 * and a message. Returns 0 or -ENOMEM.
 */
int dra_encode_health(const char *pool_name, const struct dra_device_health *devs, size_t n,
                      unsigned slots, uint8_t **ret_buf, size_t *ret_len);

/* ---- the service ---- */

struct dra_plugin;

/*
 * Creates the service: makes --dra-dir (mode 0750, parents too) when missing, starts the claims
 * worker (loading the checkpoint), binds dra.sock, then D-reg.sock when the registry directory
 * exists (else logs and waits for it), and watches both. Returns 0, -ENAMETOOLONG, -ENOMEM,
 * -errno of inotify, the loop or the worker. A socket that cannot be bound now is logged and
 * tried again on the next change.
 */
int dra_plugin_new(struct loop *l, const struct dra_config *cfg, struct dra_plugin **ret);

/* Closes both sockets, unlinking each only if still ours (same dev/ino). Accepts NULL, returns
 * NULL. */
struct dra_plugin *dra_plugin_free(struct dra_plugin *d);

/*
 * The devices present now (the node's pool, as slices.c publishes it): a device seen before and
 * missing now turns UNHEALTHY, one present HEALTHY; a change goes to every NodeWatchResources
 * stream at once (and is logged).
 */
void dra_plugin_set_devices(struct dra_plugin *d, const struct dra_pool *pool);

/* Looks at both directories now (what an inotify event or the rescan does). */
void dra_plugin_resync(struct dra_plugin *d);

/* For tests and health: the socket paths, and whether each is bound and still ours. */
const char *dra_plugin_reg_path(const struct dra_plugin *d);
const char *dra_plugin_dra_path(const struct dra_plugin *d);
bool dra_plugin_serving(const struct dra_plugin *d);
