/*
 * slices.h - the API side of the DRA driver: the node's devices as ResourceSlices
 * (resource.k8s.io/v1). One pool per node (pool.name = the node's name) in one slice, with
 * spec.driver D, spec.nodeName, an ownerReference to the Node (controller), and generateName
 * "<node>-D-"; one device per enclave class present (dcap, ias), shared (allowMultipleAllocations)
 * with an `epc` capacity in bytes, and the SGX facts as attributes under D. An empty pool still has
 * its one slice, with no devices.
 *
 * Two halves. What the slice should say is pure (from the capability facts and the devices), so
 * unit tests need no API server. The publisher is a worker (reconciler.h): the loop hands it a
 * pool and returns; the worker lists our slices by field selector, updates the one it keeps in
 * place (pool.generation bumped when anything changed), creates it when there is none, deletes
 * the others with uid/resourceVersion preconditions, retries with backoff and re-asserts every
 * interval. Nothing here runs on the kubelet's path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apiclient.h"

struct sgx_caps;
struct discovery;

#define DRA_MAX_DEVICES 2       /* dcap, ias */
#define DRA_ATTR_STRING_MAX 64  /* the API's limit on a string or version attribute */
#define DRA_GENERATED_PREFIX 58 /* the API server keeps this much of a generateName */
#define DRA_SLICES_API "/apis/resource.k8s.io/v1/resourceslices"

/* One device of the pool, as data. */
struct dra_device {
        char name[8];    /* "dcap", "ias": a DNS label */
        char driver[16]; /* "in-kernel", "dcap", "legacy-dcap", "ias" */
        bool sgx1, sgx2, flc, edmm, provisioning;
        uint64_t epc_bytes;                           /* the node's EPC; 0 when unknown */
        char kernel[DRA_ATTR_STRING_MAX + 1];         /* "6.5.0": a semantic version, "" unknown */
        char kernel_release[DRA_ATTR_STRING_MAX + 1]; /* "6.5.0-18-generic", cut to 64 */
};

/*
 * The node's pool. Zeroed before filling, so two pools compare with memcmp(). With |slots| > 0
 * (--dra-slots, for clusters without consumable capacity: Kubernetes 1.34, 1.35) each class is
 * published as |slots| exclusive devices "<class>-<i>" instead of one shared device.
 */
struct dra_pool {
        size_t n;
        struct dra_device dev[DRA_MAX_DEVICES];
        unsigned slots;
};

#define DRA_SLICE_MAX_DEVICES 128 /* the API's limit per ResourceSlice */
#define DRA_MAX_SLOTS 512         /* --dra-slots: devices per class (the list stays < 1 MiB) */

/*
 * The pool a node with |caps| and devices |d| publishes: "dcap" when a DCAP enclave device is
 * present (driver in-kernel, dcap or legacy-dcap; provisioning when its provisioning device is),
 * "ias" when /dev/isgx is. sgx1, sgx2 and flc as the CPU (and kernel, for flc) say; edmm when SGX2
 * is usable (the in-kernel driver on Linux 6.0+). Pure.
 */
void dra_pool_desired(const struct sgx_caps *caps, const struct discovery *d, struct dra_pool *ret);

/*
 * The semantic version "MAJOR.MINOR.PATCH" at the start of a kernel release ("6.5.0-18-generic"
 * -> "6.5.0", "6.8" -> "6.8.0"), without leading zeros. Returns 0, -EINVAL when |release| does
 * not start with MAJOR.MINOR, -ENOSPC.
 */
int dra_kernel_version(const char *release, char *buf, size_t size);

/* "<node>-<driver>-", cut to DRA_GENERATED_PREFIX characters as the API server would. */
void dra_generate_name(const char *node, const char *driver, char *buf, size_t size);

/* How many slices |pool| takes: 1, or with slots ceil(devices / 128). */
size_t dra_slice_parts(const struct dra_pool *pool);

/*
 * Slice |part| of the pool's spec: driver, nodeName, pool {name, generation, resourceSliceCount},
 * its devices (shared: one per class, allowMultipleAllocations, epc with a request policy; slots:
 * "<class>-<i>", exclusive, epc as it is). dra_slice_spec() is part 0. A new reference, NULL on
 * ENOMEM.
 */
json_t *dra_slice_spec_part(const char *driver, const char *node, const struct dra_pool *pool,
                            int64_t generation, size_t part);
json_t *dra_slice_spec(const char *driver, const char *node, const struct dra_pool *pool,
                       int64_t generation);

/*
 * A whole new ResourceSlice: apiVersion, kind, metadata {generateName, ownerReferences to the
 * Node |node| with |node_uid|, controller}, spec. New reference, NULL on ENOMEM.
 */
json_t *dra_slice_new(const char *driver, const char *node, const char *node_uid,
                      const struct dra_pool *pool, int64_t generation);
json_t *dra_slice_new_part(const char *driver, const char *node, const char *node_uid,
                           const struct dra_pool *pool, int64_t generation, size_t part);

/*
 * True when the spec |have| (from the API server) says what |want| says, pool.generation aside.
 * Quantities under "capacity" compare by value ("128Mi" is "134217728"), as the server may
 * rewrite them in canonical form.
 */
bool dra_spec_same(const json_t *have, const json_t *want);

/*
 * A Kubernetes quantity without fraction or sign ("134217728", "128Mi", "2k") as a number.
 * Returns 0, -EINVAL, -ERANGE.
 */
int dra_quantity_parse(const char *s, uint64_t *ret);

/* ---- the publisher ---- */

struct dra_slices;

/* One API request, as api_client_request(); tests replace it. */
typedef int (*dra_request_fn)(void *userdata, const char *method, const char *path,
                              const char *body, int cancel_fd, struct api_response *resp, char *err,
                              size_t errsz);

struct dra_slices_config {
        const char *driver;                      /* copied */
        const char *node_name;                   /* copied */
        struct api_config api;                   /* used by the default request function */
        unsigned interval_ms;                    /* re-assert period */
        unsigned backoff_min_ms, backoff_max_ms; /* 0: the reconciler's defaults */
        dra_request_fn request;                  /* NULL = api_client_request() with |api| */
        void *request_userdata;
};

/* Starts the worker (it publishes nothing until dra_slices_set()). Returns 0 or -errno. */
int dra_slices_start(const struct dra_slices_config *cfg, struct dra_slices **ret);

/* Hands the wanted pool to the worker; returns at once. */
void dra_slices_set(struct dra_slices *s, const struct dra_pool *pool);

/* Cancels a request in flight, joins the worker, frees. Accepts NULL, returns NULL. */
struct dra_slices *dra_slices_stop(struct dra_slices *s);
