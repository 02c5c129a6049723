/*
 * deviceplugin.h - the kubelet's v1beta1 DevicePlugin service for one resource (sgx, dcap, ias or
 * provision): its socket, its handlers and its open ListAndWatch streams.
 *
 * Two halves. The handlers are pure functions from (config, node state, request bytes) to response
 * bytes or a gRPC status, so unit tests need no sockets. The service ties them to a grpc_server
 * on DIR/sgxdevplugin-<kind>.sock and pushes a new device list to every open ListAndWatch stream
 * when the node state changes its advertised health.
 *
 * Device IDs are "<kind>-<n>", n in 0..slots-1: deterministic (the kubelet checkpoints
 * allocations by ID) and short (the ListAndWatch answer must stay small).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edits.h"
#include "grpc_status.h"
#include "resources.h"

struct loop;
struct discovery;

enum dp_health {
        DP_HEALTH_NONE,      /* never seen since start: advertise no devices */
        DP_HEALTH_HEALTHY,   /* present: slots Healthy devices */
        DP_HEALTH_UNHEALTHY, /* seen before, gone now: slots Unhealthy devices */
};

/* Settings shared by every resource; strings borrowed, must outlive the services. */
struct dp_config {
        const char *domain;           /* "sgx.k8s.io" */
        unsigned slots;               /* devices advertised (--max-pods, or EPC MiB) */
        struct sgx_edit_config edits; /* what a container gets beside the devices */
        bool cdi; /* Allocate names the CDI device (D/sgx=dcap) instead of DeviceSpecs */
};

#define DP_LIST_LIMIT (3u * 1024 * 1024) /* largest ListAndWatch answer we accept to send */

const char *dp_health_name(enum dp_health h);

/* ---- pure handlers: caller frees *ret_buf (free()) ---- */

/* ListAndWatchResponse for |h|. Returns 0 or -ENOMEM. */
int dp_encode_list(const struct dp_config *cfg, enum sgx_kind k, enum dp_health h, uint8_t **ret_buf,
                   size_t *ret_len);

/*
 * The size of the largest ListAndWatchResponse (every device Unhealthy) for |slots| devices of
 * |k|, computed without encoding it.
 */
size_t dp_list_size(enum sgx_kind k, unsigned slots);

/* The largest slot count no larger than |want| whose list stays under DP_LIST_LIMIT. */
unsigned dp_slots_that_fit(enum sgx_kind k, unsigned want);

/* DevicePluginOptions: neither PreStartContainer nor GetPreferredAllocation advertised. */
int dp_encode_options(uint8_t **ret_buf, size_t *ret_len);

/*
 * Handlers: decode |req|, answer. On GRPC_STATUS_OK, *ret_buf and *ret_len hold the encoded
 * response. Otherwise |err| holds a one-line message for grpc-message and the log: INVALID_ARGUMENT
 * undecodable protobuf, unknown device ID, bad allocation_size FAILED_PRECONDITION the resource's
 * devices are not present on the node now INTERNAL            out of memory
 */
enum grpc_status dp_handle_allocate(const struct dp_config *cfg, enum sgx_kind k,
                                    const struct discovery *d, const uint8_t *req, size_t len,
                                    uint8_t **ret_buf, size_t *ret_len, char *err, size_t errsz);
enum grpc_status dp_handle_preferred(const struct dp_config *cfg, enum sgx_kind k,
                                     const uint8_t *req, size_t len, uint8_t **ret_buf,
                                     size_t *ret_len, char *err, size_t errsz);
enum grpc_status dp_handle_prestart(const struct dp_config *cfg, enum sgx_kind k, const uint8_t *req,
                                    size_t len, uint8_t **ret_buf, size_t *ret_len, char *err,
                                    size_t errsz);

/* ---- the service ---- */

struct dp_service;

/*
 * The kubelet ended one of our ListAndWatch streams, opened at |opened_usec| (loop_now_usec());
 * |remaining| streams stay open.
 */
typedef void (*dp_stream_ended_fn)(struct dp_service *s, size_t remaining, uint64_t opened_usec,
                                   void *userdata);

/*
 * Creates the service for |k| and binds its socket |socket_path| (DIR/sgxdevplugin-<kind>.sock),
 * starting from node state |d| (copied). Returns 0, -errno from the socket, -ENOMEM.
 */
int dp_service_new(struct loop *l, const struct dp_config *cfg, enum sgx_kind k,
                   const char *socket_path, const struct discovery *d,
                   dp_stream_ended_fn on_stream_ended, void *userdata, struct dp_service **ret);

/* Ends the streams, closes the socket and unlinks it if still ours. Accepts NULL, returns NULL. */
struct dp_service *dp_service_free(struct dp_service *s);

/* Re-creates the socket (the kubelet wiped its directory): ends the old connections. 0/-errno. */
int dp_service_relisten(struct dp_service *s);

/* The socket path still names the socket we bound. */
bool dp_service_owns_socket(const struct dp_service *s);

/*
 * New node state: copies |d|, recomputes the health and, if it changed, sends the new list to
 * every open ListAndWatch stream (and logs the change once).
 */
void dp_service_update(struct dp_service *s, const struct discovery *d);

enum dp_health dp_service_health(const struct dp_service *s);
enum sgx_kind dp_service_kind(const struct dp_service *s);
const char *dp_service_resource(const struct dp_service *s);    /* "sgx.k8s.io/dcap" */
const char *dp_service_socket_path(const struct dp_service *s); /* full path */
const char *dp_service_endpoint(const struct dp_service *s);    /* basename, for Register */
size_t dp_service_n_streams(const struct dp_service *s);
