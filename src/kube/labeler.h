/*
 * labeler.h - the node's labels: which of our labels the node should carry (pure, from the
 * capability facts), the JSON merge patch that sets them and removes the rest of ours (never
 * touching labels we do not own), and a worker thread (reconciler.h) that PATCHes
 * /api/v1/nodes/NAME through apiclient.c whenever the wanted set changes, re-asserts it every
 * interval, and retries failures with capped exponential backoff. The event loop only hands it
 * label sets: it never waits on the API server.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
 * caps->sgx2_usable, D/flc=true with FLC, D/epc-mib=<MiB> when the EPC size is known.
 */
void labels_desired(const char *domain, const struct sgx_caps *caps, struct label_set *ret);

/* True when |a| and |b| hold the same labels (in any order). */
bool labels_equal(const struct label_set *a, const struct label_set *b);

/*
 * The merge patch {"metadata":{"labels":{...}}}: each label of |s|, and every label we own that
 * |s| lacks as null (removed). Returns a malloc'd NUL-terminated string in *ret, 0 or -ENOMEM.
 */
int labels_patch_body(const char *domain, const struct label_set *s, char **ret);

struct labeler;

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
        struct api_config api;        /* used by the default request function */
        unsigned interval_ms;         /* re-assert period */
        unsigned backoff_min_ms;      /* first retry delay; 0 = LABEL_BACKOFF_MIN_MS */
        unsigned backoff_max_ms;      /* cap; 0 = LABEL_BACKOFF_MAX_MS */
        labeler_request_fn request;   /* NULL = api_request() with |api| */
        void *request_userdata;
};

/* Starts the worker thread (it sends nothing until labeler_set()). Returns 0 or -errno. */
int labeler_start(const struct labeler_config *cfg, struct labeler **ret);

/* Hands the wanted labels to the worker; returns at once. A changed set is PATCHed next. */
void labeler_set(struct labeler *lb, const struct label_set *s);

/* Cancels a request in flight, joins the thread, frees. Accepts NULL, returns NULL. */
struct labeler *labeler_stop(struct labeler *lb);
