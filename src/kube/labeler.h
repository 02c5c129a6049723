/*
 * labeler.h - what the node shows the cluster of its SGX: which of our labels the node should
 * carry and its EPC as an extended resource in status.capacity (pure, from the capability facts),
 * the JSON merge patches that set them and remove the rest of ours (never touching labels or
 * capacity keys we do not own), and one worker thread (reconciler.h) that PATCHes
 * /api/v1/nodes/NAME (labels, with --label-node) and /api/v1/nodes/NAME/status (capacity, with
 * --epc-resource) through apiclient.c whenever the wanted state changes, re-asserts it every
 * interval, and retries failures with capped exponential backoff. The event loop only hands it
 * states: it never waits on the API server.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apiclient.h"
#include "reconciler.h"

struct sgx_caps;

#define LABELS_MAX 8
#define LABEL_BACKOFF_MIN_MS RECONCILER_BACKOFF_MIN_MS
#define LABEL_BACKOFF_MAX_MS RECONCILER_BACKOFF_MAX_MS

/* The label names we own, after "<domain>/". */
#define LABEL_SGX "sgx"
#define LABEL_DCAP "dcap"
#define LABEL_IAS "ias"
#define LABEL_SGX2 "sgx2"
#define LABEL_FLC "flc"
#define LABEL_EPC_MIB "epc-mib"
/* With --compat intel, the label Intel's plugin sets (a full key, not under our domain). */
#define LABEL_INTEL_CAPABLE "sgx.intel.com/capable"

/* The status.capacity keys we own: "<domain>/epc", and with --compat intel Intel's name. */
#define CAPACITY_EPC "epc"
#define CAPACITY_INTEL_EPC "sgx.intel.com/epc"

struct label_set {
        size_t n;
        struct {
                char key[320]; /* "sgx.k8s.io/sgx" */
                char value[64];
        } l[LABELS_MAX];
};

/*
 * The labels a node with |caps| should carry under |domain|: none without an SGX enclave
 * device; else D/sgx=true, D/dcap=true and/or D/ias=true by driver, D/sgx2=true when
 * caps->sgx2_usable, D/flc=true with FLC, D/epc-mib=<MiB> when the EPC size is known, and with
 * |intel| (--compat intel) sgx.intel.com/capable=true.
 */
void labels_desired(const char *domain, bool intel, const struct sgx_caps *caps,
                    struct label_set *ret);

/* True when |a| and |b| hold the same labels (in any order). */
bool labels_equal(const struct label_set *a, const struct label_set *b);

/*
 * The merge patch {"metadata":{"labels":{...}}}: each label of |s|, and every label we own (under
 * |domain|, and with |intel| LABEL_INTEL_CAPABLE) that |s| lacks as null (removed). Returns a
 * malloc'd NUL-terminated string in *ret, 0 or -ENOMEM.
 */
int labels_patch_body(const char *domain, bool intel, const struct label_set *s, char **ret);

/*
 * The EPC a node with |caps| should publish in status.capacity, in bytes: caps->epc_bytes (the
 * kernel's per-NUMA-node total, else CPUID's EPC sections) with an SGX enclave device, else 0
 * (none: our keys removed).
 */
uint64_t capacity_epc_desired(const struct sgx_caps *caps);

/*
 * The merge patch {"status":{"capacity":{"D/epc":"<bytes>"}}} (and "sgx.intel.com/epc" with
 * |intel|): the quantity as a plain integer string, or null (removed) when |epc_bytes| is 0.
 * Returns a malloc'd NUL-terminated string in *ret, 0 or -ENOMEM.
 */
int capacity_patch_body(const char *domain, bool intel, uint64_t epc_bytes, char **ret);

struct labeler;

/* What the worker keeps on the node. */
struct labeler_state {
        struct label_set labels; /* with cfg->labels */
        uint64_t epc_bytes;      /* with cfg->capacity: 0 removes our capacity keys */
};

/*
 * Sends one PATCH of |path| with |body| (application/merge-patch+json) and fills *resp; the same
 * contract as api_request(). The worker calls it without holding any lock. Tests replace it.
 */
typedef int (*labeler_request_fn)(void *userdata, const char *path, const char *body,
                                  int cancel_fd, struct api_response *resp, char *err,
                                  size_t errsz);

struct labeler_config {
        const char *domain;           /* copied */
        const char *node_name;        /* copied */
        bool labels;                  /* keep our labels (--label-node) */
        bool capacity;                /* keep our status.capacity keys (--epc-resource) */
        bool intel;                   /* --compat intel: Intel's label and capacity key too */
        struct api_config api;        /* used by the default request function */
        unsigned interval_ms;         /* re-assert period */
        unsigned backoff_min_ms;      /* first retry delay; 0 = LABEL_BACKOFF_MIN_MS */
        unsigned backoff_max_ms;      /* cap; 0 = LABEL_BACKOFF_MAX_MS */
        labeler_request_fn request;   /* NULL = api_request() with |api| */
        void *request_userdata;
};

/*
 * Starts the worker thread (it sends nothing until labeler_set() or labeler_update()). Returns 0,
 * -EINVAL (no domain or node name, a zero interval, neither labels nor capacity) or -errno.
 */
int labeler_start(const struct labeler_config *cfg, struct labeler **ret);

/*
 * Hands the wanted state to the worker; returns at once. A changed part is PATCHed next (labels
 * to the node, capacity to its status), each only when it changed; a re-assert sends both.
 */
void labeler_update(struct labeler *lb, const struct labeler_state *st);

/* labeler_update() with new labels and the capacity last handed over. */
void labeler_set(struct labeler *lb, const struct label_set *s);

/*
 * The kubelet restarted: it may have reset the node's extended capacity, so the worker PATCHes
 * the capacity again at once although it is unchanged (nothing without cfg->capacity).
 */
void labeler_reassert_capacity(struct labeler *lb);

/* Cancels a request in flight, joins the thread, frees. Accepts NULL, returns NULL. */
struct labeler *labeler_stop(struct labeler *lb);
