/*
 * edits.c - the container edits of each resource kind (see edits.h): which host device node
 * appears where in the container, and the mounts. The layout follows the driver generation:
 * the in-kernel and DCAP drivers' nodes appear under both names a runtime may open
 * (/dev/sgx_enclave and /dev/sgx/enclave), the legacy DCAP driver's as /dev/sgx and /dev/sgx_prv,
 * the IAS driver's as /dev/isgx.
 */
#include "edits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(SGX_EDIT_MAX_SPECS == SGX_EDIT_MAX_DEVICES * SGX_EDIT_MAX_PATHS,
               "one spec per device and path");
_Static_assert(SGX_EDIT_MAX_DEVICES >= 2, "an enclave device and its provisioning device");
_Static_assert(SGX_EDIT_MAX_PATHS >= 2, "/dev/sgx_enclave and /dev/sgx/enclave");

static void add_device(struct sgx_edits *e, const struct sgx_node *n, const char *c0,
                       const char *c1) {
        struct sgx_device_edit *dev;

        if (e->n_devices >= SGX_EDIT_MAX_DEVICES)
                return; /* cannot happen: the callers below add at most two */
        dev = &e->devices[e->n_devices++];
        snprintf(dev->host_path, sizeof(dev->host_path), "%s", n->host_path);
        dev->major = n->major;
        dev->minor = n->minor;
        dev->container_paths[0] = c0;
        dev->container_paths[1] = c1;
        dev->n_container_paths = c1 ? 2 : 1;
        dev->permissions = "rw";
}

static void add_provision(struct sgx_edits *e, const struct discovery *d) {
        if (d->dcap_legacy)
                add_device(e, &d->dcap_provision, "/dev/sgx_prv", NULL);
        else
                add_device(e, &d->dcap_provision, "/dev/sgx_provision", "/dev/sgx/provision");
}

static void add_dcap(struct sgx_edits *e, const struct sgx_edit_config *cfg,
                     const struct discovery *d) {
        if (d->dcap_legacy)
                add_device(e, &d->dcap_enclave, "/dev/sgx", NULL);
        else
                add_device(e, &d->dcap_enclave, "/dev/sgx_enclave", "/dev/sgx/enclave");
        if (cfg->provision && discovery_has_provision(d))
                add_provision(e, d);
}

static void add_ias(struct sgx_edits *e, const struct discovery *d) {
        add_device(e, &d->ias_enclave, "/dev/isgx", NULL);
}

int sgx_edits_for(enum sgx_kind k, const struct sgx_edit_config *cfg, const struct discovery *d,
                  struct sgx_edits *ret) {
        memset(ret, 0, sizeof(*ret));
        switch (k) {
        case SGX_KIND_SGX:
                if (discovery_has_dcap(d))
                        add_dcap(ret, cfg, d);
                else if (discovery_has_ias(d))
                        add_ias(ret, d);
                break;
        case SGX_KIND_DCAP:
                if (discovery_has_dcap(d))
                        add_dcap(ret, cfg, d);
                break;
        case SGX_KIND_IAS:
                if (discovery_has_ias(d))
                        add_ias(ret, d);
                break;
        case SGX_KIND_PROVISION:
        case SGX_KIND_INTEL_PROVISION:
                if (discovery_has_provision(d))
                        add_provision(ret, d);
                break;
        case SGX_KIND_INTEL_ENCLAVE: {
                /* Intel's enclave resource is the enclave device alone: provisioning is its own */
                const struct sgx_edit_config enclave_only = {.provision = false};

                if (discovery_has_dcap(d))
                        add_dcap(ret, &enclave_only, d);
                break;
        }
        case SGX_KIND_AZURE_EPC:
        case SGX_KIND_ALIBABA_EPC:
                /* any number of EPC MiB: the devices once per container */
                if (discovery_has_dcap(d))
                        add_dcap(ret, cfg, d);
                break;
        case SGX_KIND_MAX:
        default:
                return -EINVAL;
        }
        if (ret->n_devices == 0)
                return -ENODEV;
        if (cfg->aesmd_dir) {
                ret->mounts[0] = (struct sgx_mount_edit){
                        .host_path = cfg->aesmd_dir,
                        .container_path = cfg->aesmd_dir,
                        .read_only = false,
                };
                ret->n_mounts = 1;
        }
        return 0;
}

size_t sgx_edits_n_specs(const struct sgx_edits *e) {
        size_t n = 0;

        for (size_t i = 0; i < e->n_devices; i++)
                n += e->devices[i].n_container_paths;
        return n;
}

void sgx_edits_host_paths(const struct sgx_edits *e, char *buf, size_t size) {
        size_t off = 0;

        if (size == 0)
                return;
        buf[0] = '\0';
        for (size_t i = 0; i < e->n_devices && off < size; i++) {
                int r = snprintf(buf + off, size - off, "%s%s", i ? ", " : "",
                                 e->devices[i].host_path);
                if (r < 0)
                        break;
                off += (size_t) r;
        }
}
