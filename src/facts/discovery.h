/*
 * discovery.h - finds the SGX character devices under --dev-root and classifies them.
 * Pure functions over a root path: knows nothing of gRPC, the kubelet or the API server.
 *
 * Names looked for (relative to the dev root):
 *   DCAP enclave:       sgx_enclave, sgx/enclave, sgx/sgx_enclave, sgx (legacy single char device)
 *   DCAP provisioning:  sgx_provision, sgx/provision, sgx_prv (beside the legacy sgx)
 *   IAS enclave:        isgx (legacy out-of-tree driver)
 * Only character devices count. Symlinks are resolved inside the dev root (an absolute target
 * "/dev/x" means "<dev-root>/x"); several names of one device (same major:minor) are one device.
 * Host paths are reported as the host sees them: "/dev/" + the real node's path under the root.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum sgx_class {
        SGX_CLASS_DCAP,
        SGX_CLASS_IAS,
};

enum sgx_role {
        SGX_ROLE_ENCLAVE,
        SGX_ROLE_PROVISION,
};

#define DISCOVERY_PATH_MAX 256
#define DISCOVERY_MAX_ENTRIES 16

/* One name found under the dev root (for probe and logs). */
struct discovery_entry {
        char name[64]; /* relative to the dev root: "sgx/enclave" */
        enum sgx_class cls;
        enum sgx_role role;
        bool is_link;                       /* the name is a symlink */
        char host_path[DISCOVERY_PATH_MAX]; /* real node as the host sees it: "/dev/sgx_enclave" */
        unsigned major, minor;
};

/* One device chosen for use. */
struct sgx_node {
        bool present;
        char host_path[DISCOVERY_PATH_MAX]; /* "/dev/sgx_enclave" */
        unsigned major, minor;
};

struct discovery {
        struct sgx_node dcap_enclave; /* first of sgx_enclave, sgx/enclave, sgx/sgx_enclave, sgx */
        struct sgx_node dcap_provision; /* the provisioning device that goes with it */
        struct sgx_node ias_enclave;    /* isgx */
        bool dcap_legacy;               /* dcap_enclave is the legacy single `sgx` char device */
        bool dev_root_missing;          /* the dev root itself does not exist (yet) */
        size_t n_entries;               /* every matching name found, in the order above */
        struct discovery_entry entries[DISCOVERY_MAX_ENTRIES];
};

/*
 * Scans |dev_root| and fills *ret. A missing dev root or missing names is no error (nothing is
 * found, dev_root_missing tells the first). Returns 0, or -errno for a dev root that exists but
 * cannot be read (-ENOTDIR, -EACCES).
 */
int discovery_scan(const char *dev_root, struct discovery *ret);

/* A DCAP enclave device is present (a provisioning device alone is no SGX). */
bool discovery_has_dcap(const struct discovery *d);
/* An IAS enclave device is present. */
bool discovery_has_ias(const struct discovery *d);
/* A DCAP enclave device and its provisioning device are both present. */
bool discovery_has_provision(const struct discovery *d);

/* True when the devices chosen for use (not the list of names) are the same in |a| and |b|. */
bool discovery_same_devices(const struct discovery *a, const struct discovery *b);

const char *sgx_class_name(enum sgx_class c); /* "dcap", "ias" */
const char *sgx_role_name(enum sgx_role r);   /* "enclave", "provision" */
