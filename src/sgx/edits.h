/*
 * edits.h - what a container gets for a resource kind, as plain data: the device nodes (host
 * path -> the container paths it appears at, with permissions), the mounts and the environment.
 * Computed from what discovery found, without any transport: the device plugin's Allocate
 * encodes it, `probe` prints it, and a CDI spec or a DRA prepare step can write it out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "discovery.h"
#include "resources.h"

/* At most: an enclave device and its provisioning device. */
#define SGX_EDIT_MAX_DEVICES 2
/* Container paths one host node appears at ("/dev/sgx_enclave" and "/dev/sgx/enclave"). */
#define SGX_EDIT_MAX_PATHS 2
/* The aesmd socket directory. */
#define SGX_EDIT_MAX_MOUNTS 1
/* Environment variables set in the container (none today; sized for what is coming). */
#define SGX_EDIT_MAX_ENV 2
/* Every DeviceSpec of one container: each host node at each of its paths. */
#define SGX_EDIT_MAX_SPECS (SGX_EDIT_MAX_DEVICES * SGX_EDIT_MAX_PATHS)

struct sgx_device_edit {
        char host_path[DISCOVERY_PATH_MAX];                  /* "/dev/sgx_enclave" on the host */
        unsigned major, minor;                               /* the node's numbers, as scanned */
        const char *container_paths[SGX_EDIT_MAX_PATHS];     /* static strings */
        size_t n_container_paths;
        const char *permissions;                             /* "rw" */
};

struct sgx_mount_edit {
        const char *host_path;      /* borrowed from the config */
        const char *container_path; /* borrowed from the config */
        bool read_only;
};

struct sgx_env_edit {
        const char *name, *value; /* static or borrowed from the config */
};

struct sgx_edits {
        struct sgx_device_edit devices[SGX_EDIT_MAX_DEVICES];
        size_t n_devices;
        struct sgx_mount_edit mounts[SGX_EDIT_MAX_MOUNTS];
        size_t n_mounts;
        struct sgx_env_edit env[SGX_EDIT_MAX_ENV];
        size_t n_env;
};

/* What shapes the edits beside the devices; strings borrowed, must outlive the edits. */
struct sgx_edit_config {
        bool provision;        /* map the provisioning device with the DCAP enclave */
        const char *aesmd_dir; /* host dir mounted at the same path, NULL for none */
};

/*
 * Fills *ret with what a container asking for |k| gets with the devices in |d|. Returns 0, or
 * -ENODEV when the kind's devices are not present (*ret then holds nothing), -EINVAL for a kind
 * outside the table.
 */
int sgx_edits_for(enum sgx_kind k, const struct sgx_edit_config *cfg, const struct discovery *d,
                  struct sgx_edits *ret);

/* The number of (host node, container path) pairs: one DeviceSpec each. */
size_t sgx_edits_n_specs(const struct sgx_edits *e);

/* "/dev/sgx_enclave, /dev/sgx_provision" into |buf| (cut to |size|). */
void sgx_edits_host_paths(const struct sgx_edits *e, char *buf, size_t size);
