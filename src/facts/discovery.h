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
 *
 * SGX and only SGX: every SGX driver (in-kernel, out-of-tree DCAP, legacy DCAP, IAS) registers
 * its nodes as misc devices (major 10) under one of the names above. A name that resolves to a
 * device node that is not a character device of major 10, or whose real name is not an SGX name
 * of the same role, or whose kernel name (DEVNAME= in <sys-root>/dev/char/MAJ:MIN/uevent, when
 * that exists) is not one, is refused: never chosen, listed in `refused` with the reason, so a
 * node such as "sgx_enclave -> mem" (1:1) is never handed to a container.
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

/* Why a device node under an SGX name was refused. */
enum discovery_refusal {
        DISCOVERY_REFUSED_NOT_CHAR,      /* a block device */
        DISCOVERY_REFUSED_NOT_MISC,      /* a character device whose major is not 10 (misc) */
        DISCOVERY_REFUSED_NOT_SGX_NAME,  /* the real node's name is not an SGX name of its role */
        DISCOVERY_REFUSED_KERNEL_NAME,   /* sysfs's DEVNAME= is not an SGX name of its role */
        DISCOVERY_REFUSED_KERNEL_NONAME, /* sysfs's uevent has no DEVNAME= */
};

#define DISCOVERY_MISC_MAJOR 10
#define DISCOVERY_DEVNAME_MAX 64

/* One name under the dev root that leads to a device node refused as not SGX. */
struct discovery_refused {
        char name[64]; /* the SGX name looked up, relative to the dev root: "sgx_enclave" */
        enum sgx_class cls;
        enum sgx_role role;
        bool is_link;                    /* the name is a symlink */
        char path[DISCOVERY_PATH_MAX];   /* the name as the host sees it: "/dev/sgx_enclave" */
        char target[DISCOVERY_PATH_MAX]; /* the real node: "/dev/mem" */
        char kernel_name[DISCOVERY_DEVNAME_MAX]; /* DEVNAME= from sysfs, "" when not read */
        unsigned major, minor;
        enum discovery_refusal reason;
};

struct discovery {
        struct sgx_node dcap_enclave; /* first of sgx_enclave, sgx/enclave, sgx/sgx_enclave, sgx */
        struct sgx_node dcap_provision; /* the provisioning device that goes with it */
        struct sgx_node ias_enclave;    /* isgx */
        bool dcap_legacy;               /* dcap_enclave is the legacy single `sgx` char device */
        bool dev_root_missing;          /* the dev root itself does not exist (yet) */
        size_t n_entries;               /* every matching name found, in the order above */
        struct discovery_entry entries[DISCOVERY_MAX_ENTRIES];
        size_t n_refused; /* names refused as not SGX, in the order above */
        struct discovery_refused refused[DISCOVERY_MAX_ENTRIES];
};

/*
 * Scans |dev_root| and fills *ret. A missing dev root or missing names is no error (nothing is
 * found, dev_root_missing tells the first). With |sys_root| (the host's /sys; NULL skips it), the
 * kernel's name of each device node found is checked too; a missing or unreadable uevent file is
 * no error. Returns 0, or -errno for a dev root that exists but cannot be read (-ENOTDIR, -EACCES).
 */
int discovery_scan_at(const char *dev_root, const char *sys_root, struct discovery *ret);
/* discovery_scan_at(dev_root, NULL, ret): without the kernel's view. */
int discovery_scan(const char *dev_root, struct discovery *ret);

/*
 * Finds DEVNAME= in a sysfs uevent text (|len| bytes, need not be NUL-terminated) and copies its
 * value into |ret| (|size| bytes, NUL-terminated). Returns 0, -ENOENT when there is no DEVNAME=
 * line, -EINVAL when the text holds a NUL byte or the value is empty, -ENAMETOOLONG when it does
 * not fit.
 */
int discovery_parse_uevent(const char *text, size_t len, char *ret, size_t size);

/* True when |name| (relative to the dev root) is one of the SGX names of |role|. */
bool discovery_is_sgx_name(const char *name, enum sgx_role role);

/* A DCAP enclave device is present (a provisioning device alone is no SGX). */
bool discovery_has_dcap(const struct discovery *d);
/* An IAS enclave device is present. */
bool discovery_has_ias(const struct discovery *d);
/* A DCAP enclave device and its provisioning device are both present. */
bool discovery_has_provision(const struct discovery *d);

/* True when the devices chosen for use (not the list of names) are the same in |a| and |b|. */
bool discovery_same_devices(const struct discovery *a, const struct discovery *b);
/* True when |a| and |b| refused the same names for the same nodes and reasons. */
bool discovery_same_refusals(const struct discovery *a, const struct discovery *b);

/* "not-char", "not-misc", "not-sgx-name", "kernel-name", "kernel-no-name" */
const char *discovery_refusal_name(enum discovery_refusal r);
/* One phrase for an operator: "not a misc device (major 10)" */
const char *discovery_refusal_reason(enum discovery_refusal r);

const char *sgx_class_name(enum sgx_class c); /* "dcap", "ias" */
const char *sgx_role_name(enum sgx_role r);   /* "enclave", "provision" */
