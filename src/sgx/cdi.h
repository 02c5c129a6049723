/*
 * cdi.h - the node's SGX devices as a Container Device Interface (CDI) spec: which CDI device a
 * resource kind maps to on this node and config ("dcap", "dcap-noprovision", "ias",
 * "provision"), the names derived from it ("D/sgx", "D/sgx=dcap", "<dir>/D-sgx.json") and the
 * whole spec rendered as JSON from the container edits (edits.h). Pure: no files, no sockets;
 * writing the file is the node's (src/node/cdi_file.c).
 *
 * The spec is cdiVersion 0.5.0, the first with `hostPath` in `deviceNodes`, kind "D/sgx", one
 * device per mapping: its device nodes (path, hostPath, type "c", major, minor, permissions),
 * the aesmd mount when configured and the environment.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "edits.h"
#include "resources.h"

struct discovery;

#define SGX_CDI_VERSION "0.5.0"
#define SGX_CDI_CLASS "sgx"
/* The longest CDI device name ("dcap-noprovision"). */
#define SGX_CDI_DEVICE_NAME_MAX 16
/* "D/sgx=<device>" and its NUL. */
#define SGX_CDI_QUALIFIED_SIZE \
        (SGX_DOMAIN_MAX + 1 + sizeof(SGX_CDI_CLASS) - 1 + 1 + SGX_CDI_DEVICE_NAME_MAX + 1)

/* What the spec is made from; strings borrowed. */
struct sgx_cdi_config {
        const char *domain;                /* "sgx.k8s.io": the kind is "<domain>/sgx" */
        struct sgx_resource_options kinds; /* which kinds are served (--provision-resource) */
        struct sgx_edit_config edits;      /* provisioning mapped, the aesmd dir */
};

/*
 * The CDI device of an enclave class: "dcap" (with its provisioning device when |provision|),
 * "dcap-noprovision", "ias". The one place these names are made: the device plugin's kinds and
 * the DRA driver's devices (its classes) both name the spec's devices through it.
 */
const char *sgx_cdi_class_device(enum sgx_class cls, bool provision);

/*
 * The CDI device a container asking for |k| gets on a node with |d|: "dcap" (a DCAP enclave with
 * provisioning mapped), "dcap-noprovision" (with --no-provision), "ias" (the IAS driver's
 * device), "provision" (the provisioning device alone). NULL when the kind's devices are not
 * present (or |k| is outside the table). A static string.
 */
const char *sgx_cdi_device_name(enum sgx_kind k, const struct sgx_edit_config *cfg,
                                const struct discovery *d);

/* Writes "<domain>/sgx=<device>" for |k| into |buf|. Returns 0, -ENODEV (the kind's devices are
 * not present), -ENAMETOOLONG, -EINVAL (a kind outside the table). */
int sgx_cdi_qualified_name(const char *domain, enum sgx_kind k, const struct sgx_edit_config *cfg,
                           const struct discovery *d, char *buf, size_t size);

/* Writes "<dir>/<domain>-sgx.json" (the CDI convention: vendor-class.json). Returns 0 or
 * -ENAMETOOLONG. */
int sgx_cdi_spec_path(const char *dir, const char *domain, char *buf, size_t size);

/*
 * The devices of the spec for |d|: one per distinct CDI device name of the kinds served and
 * present, in table order. Fills |ret_kinds| (a kind that maps to each) and |ret_names| (static
 * strings), each of |max| entries. Returns how many (0: no SGX device, the spec would be invalid).
 */
size_t sgx_cdi_devices(const struct sgx_cdi_config *cfg, const struct discovery *d,
                       enum sgx_kind *ret_kinds, const char **ret_names, size_t max);

/*
 * Renders the whole spec for |d| as JSON text, NUL-terminated, ending in a newline (caller
 * frees). Returns 0, -ENODEV (no device present: CDI requires at least one, so there is no
 * valid spec - remove the file), -ENOMEM.
 */
int sgx_cdi_render(const struct sgx_cdi_config *cfg, const struct discovery *d, char **ret_json,
                   size_t *ret_len);
