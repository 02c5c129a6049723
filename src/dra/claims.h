/*
 * claims.h - preparing and unpreparing ResourceClaims for the kubelet (NodePrepareResources,
 * NodeUnprepareResources), off the event loop.
 *
 * Two halves. The pure half reads a ResourceClaim (JSON, resource.k8s.io/v1) into the devices
 * the kubelet must hand the container runtime, or one error line: the UID must be the kubelet's,
 * the claim allocated, and its status.allocation.devices.results must hold results of our driver
 * and our pool (the node); each such result becomes one Device {request name, pool, device, the
 * CDI IDs "D/sgx=<device>"}. It also reads and writes the checkpoint: the claims prepared, as JSON.
 *
 * The worker half is a thread of its own with a queue: the loop decodes a request, hands its
 * claims over (dra_claims_submit(), never a wait) and gets the encoded answer back through an
 * eventfd the loop watches. The worker GETs each claim not prepared yet from the API server
 * (every request bounded so the whole batch answers within DRA_PREPARE_BUDGET_MS, under the
 * kubelet's 45 s), keeps the claims prepared and writes them atomically to
 * <dra-dir>/checkpoint.json after each change, so an unprepare after a restart is right. Prepare
 * of a claim already prepared answers from the checkpoint (idempotent); unprepare of an unknown
 * claim succeeds. A claim that fails is that claim's error string, never the batch's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "apiclient.h"

struct loop;

#define DRA_CHECKPOINT_NAME "checkpoint.json"
#define DRA_PREPARE_BUDGET_MS 40000u /* a whole batch, below the kubelet's 45 s */
#define DRA_CLAIM_MAX_DEVICES 8      /* results of ours in one claim (a node has two devices) */

/* One device of a prepared claim, as the kubelet gets it. */
struct dra_prepared_device {
        char request[128]; /* the result's request ("req" or "req/subreq") */
        char pool[256];
        char device[64]; /* its CDI ID is dra_cdi_device_id(driver, device) */
};

/* A claim prepared (or being prepared), by the kubelet's three names. */
struct dra_claim {
        char uid[64];
        char ns[64];
        char name[256];
        size_t n;
        struct dra_prepared_device dev[DRA_CLAIM_MAX_DEVICES];
};

/*
 * The CDI device ID the container runtime resolves for our |device| ("dcap", "ias"; a slot of
 * --dra-slots, "dcap-7", is its class's): "<driver>/sgx=<name>", the name being the CDI spec's
 * device for that class (sgx_cdi_class_device(): "dcap", or "dcap-noprovision" without
 * |provision|, "ias"), so the ID resolves in the spec the node writes. A device of no known class
 * keeps its own name. Returns 0, -ENOSPC.
 */
int dra_cdi_device_id(const char *driver, const char *device, bool provision, char *buf,
                      size_t size);

/*
 * Reads the ResourceClaim |obj| for claim |c| (its uid, ns and name set): fills c->n and c->dev
 * from the results of |driver| in |pool|. Returns 0, or -EINVAL with one line in |err| (the UID
 * differs, not allocated, no result of ours for this node, too many results). Pure.
 */
int dra_claim_read(const json_t *obj, const char *driver, const char *pool, struct dra_claim *c,
                   char *err, size_t errsz);

/* The checkpoint document of |n| claims: {"version":1,"claims":[...]}. NULL on ENOMEM. */
json_t *dra_checkpoint_json(const struct dra_claim *claims, size_t n);

/*
 * Reads a checkpoint document into a malloc'd array (caller frees) of *ret_n claims. Returns 0,
 * -EINVAL (not our document: |err| says why), -ENOMEM.
 */
int dra_checkpoint_parse(const json_t *doc, struct dra_claim **ret, size_t *ret_n, char *err,
                         size_t errsz);

/* ---- the worker ---- */

struct dra_claims;

enum dra_job_kind {
        DRA_JOB_PREPARE,
        DRA_JOB_UNPREPARE,
};

/* One claim of a request, as the kubelet names it (copied by dra_claims_submit()). */
struct dra_claim_ref {
        const char *ns, *uid, *name;
};

/*
 * A job is done: |resp| (|len| bytes, freed by the worker after the call) is the encoded
 * NodePrepareResourcesResponse or NodeUnprepareResourcesResponse (v1, which v1beta1 shares);
 * NULL when out of memory. Runs on the loop's thread.
 */
typedef void (*dra_job_done_fn)(void *userdata, uint64_t job, const uint8_t *resp, size_t len);

/* One GET of |path|, as api_client_request(); tests replace it. */
typedef int (*dra_get_fn)(void *userdata, const char *path, unsigned timeout_ms, int cancel_fd,
                          struct api_response *resp, char *err, size_t errsz);

struct dra_claims_config {
        const char *driver;           /* copied */
        const char *pool;             /* the node's name; copied */
        const char *dra_dir;          /* the checkpoint's directory; copied */
        const struct api_config *api; /* copied; NULL: no API server (each prepare fails) */
        bool provision;               /* the dcap device maps the provisioning device too */
        dra_get_fn get;               /* NULL = api_request() with |api| */
        void *get_userdata;
        unsigned budget_ms; /* a batch's time; 0 = DRA_PREPARE_BUDGET_MS */
        dra_job_done_fn on_done;
        void *userdata;
};

/*
 * Loads the checkpoint (a missing file is none; an unreadable or bad one is logged and set
 * aside) and starts the worker, whose answers arrive through |l|. Returns 0, -ENOMEM, -errno of
 * eventfd, the loop or pthread_create.
 */
int dra_claims_start(struct loop *l, const struct dra_claims_config *cfg, struct dra_claims **ret);

/* Queues a job for |n| claims (copied); *ret_job identifies its on_done. Returns 0, -ENOMEM. */
int dra_claims_submit(struct dra_claims *c, enum dra_job_kind kind,
                      const struct dra_claim_ref *claims, size_t n, uint64_t *ret_job);

/* Cancels a request in flight, joins the worker, drops the jobs not done. Accepts NULL. */
struct dra_claims *dra_claims_stop(struct dra_claims *c);
