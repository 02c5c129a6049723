/*
 * cdi.c - the CDI device names and the CDI spec of the node's SGX devices (see cdi.h). The JSON
 * is built with jansson, never by hand: paths and the domain are copied, never escaped here.
 */
#include "cdi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "discovery.h"
#include "jsontext.h"

_Static_assert(sizeof("dcap-noprovision") - 1 == SGX_CDI_DEVICE_NAME_MAX,
               "the longest CDI device name");

const char *sgx_cdi_class_device(enum sgx_class cls, bool provision) {
        if (cls == SGX_CLASS_IAS)
                return "ias";
        return provision ? "dcap" : "dcap-noprovision";
}

const char *sgx_cdi_device_name(enum sgx_kind k, const struct sgx_edit_config *cfg,
                                const struct discovery *d) {
        const char *dcap = sgx_cdi_class_device(SGX_CLASS_DCAP, cfg->provision);

        switch (k) {
        case SGX_KIND_SGX:
                if (discovery_has_dcap(d))
                        return dcap;
                return discovery_has_ias(d) ? sgx_cdi_class_device(SGX_CLASS_IAS, false) : NULL;
        case SGX_KIND_DCAP:
                return discovery_has_dcap(d) ? dcap : NULL;
        case SGX_KIND_IAS:
                return discovery_has_ias(d) ? sgx_cdi_class_device(SGX_CLASS_IAS, false) : NULL;
        case SGX_KIND_PROVISION:
        case SGX_KIND_INTEL_PROVISION:
                return discovery_has_provision(d) ? "provision" : NULL;
        case SGX_KIND_INTEL_ENCLAVE:
                /* the enclave alone, whatever --no-provision says (edits.c) */
                return discovery_has_dcap(d) ? "dcap-noprovision" : NULL;
        case SGX_KIND_AZURE_EPC:
        case SGX_KIND_ALIBABA_EPC:
                return discovery_has_dcap(d) ? dcap : NULL;
        case SGX_KIND_MAX:
        default:
                return NULL;
        }
}

int sgx_cdi_qualified_name(const char *domain, enum sgx_kind k, const struct sgx_edit_config *cfg,
                           const struct discovery *d, char *buf, size_t size) {
        const char *dev;
        int n;

        if (!sgx_resource(k))
                return -EINVAL;
        dev = sgx_cdi_device_name(k, cfg, d);
        if (!dev)
                return -ENODEV;
        n = snprintf(buf, size, "%s/" SGX_CDI_CLASS "=%s", domain, dev);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int sgx_cdi_spec_path(const char *dir, const char *domain, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/%s-" SGX_CDI_CLASS ".json", dir, domain);

        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

size_t sgx_cdi_devices(const struct sgx_cdi_config *cfg, const struct discovery *d,
                       enum sgx_kind *ret_kinds, const char **ret_names, size_t max) {
        size_t n = 0;

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX && n < max; k++) {
                const char *name;
                bool seen = false;

                if (!sgx_kind_enabled(k, &cfg->kinds))
                        continue;
                name = sgx_cdi_device_name(k, &cfg->edits, d);
                if (!name)
                        continue;
                for (size_t i = 0; i < n; i++)
                        seen = seen || strcmp(ret_names[i], name) == 0;
                if (seen)
                        continue;
                ret_kinds[n] = k;
                ret_names[n] = name;
                n++;
        }
        return n;
}

/* Appends |v| to |arr|, taking the reference whatever happens; false when either is NULL or
 * jansson failed (then |v| is freed). */
static bool append(json_t *arr, json_t *v) {
        if (!arr) {
                json_decref(v);
                return false;
        }
        return v && json_array_append_new(arr, v) == 0;
}

/* Sets |key| of |obj| to |v|, taking the reference whatever happens; false on failure. */
static bool set(json_t *obj, const char *key, json_t *v) {
        if (!obj) {
                json_decref(v);
                return false;
        }
        return v && json_object_set_new(obj, key, v) == 0;
}

/* The containerEdits of one device: its nodes at each container path, mounts, environment. */
static json_t *render_edits(const struct sgx_edits *e) {
        json_t *edits = json_object(), *nodes;
        bool ok = set(edits, "deviceNodes", json_array());

        /* every value is made inside the call that takes it: a chain cut short leaks nothing */
        nodes = ok ? json_object_get(edits, "deviceNodes") : NULL;

        for (size_t i = 0; ok && i < e->n_devices; i++) {
                const struct sgx_device_edit *dev = &e->devices[i];

                for (size_t j = 0; ok && j < dev->n_container_paths; j++) {
                        json_t *node = json_object();

                        ok = append(nodes, node) &&
                             set(node, "path", json_string(dev->container_paths[j])) &&
                             set(node, "hostPath", json_string(dev->host_path)) &&
                             set(node, "type", json_string("c")) &&
                             set(node, "major", json_integer(dev->major)) &&
                             set(node, "minor", json_integer(dev->minor)) &&
                             set(node, "permissions", json_string(dev->permissions));
                }
        }
        if (ok && e->n_mounts > 0) {
                json_t *mounts;

                ok = set(edits, "mounts", json_array());
                mounts = ok ? json_object_get(edits, "mounts") : NULL;
                for (size_t i = 0; ok && i < e->n_mounts; i++) {
                        const struct sgx_mount_edit *m = &e->mounts[i];
                        json_t *mount = json_object();

                        ok = append(mounts, mount) &&
                             set(mount, "hostPath", json_string(m->host_path)) &&
                             set(mount, "containerPath", json_string(m->container_path)) &&
                             set(mount, "options", json_pack("[ss]", "rbind",
                                                             m->read_only ? "ro" : "rw"));
                }
        }
        if (ok && e->n_env > 0) {
                json_t *env;

                ok = set(edits, "env", json_array());
                env = ok ? json_object_get(edits, "env") : NULL;
                for (size_t i = 0; ok && i < e->n_env; i++)
                        ok = append(env, json_sprintf("%s=%s", e->env[i].name, e->env[i].value));
        }
        if (!ok) {
                json_decref(edits);
                return NULL;
        }
        return edits;
}

int sgx_cdi_render(const struct sgx_cdi_config *cfg, const struct discovery *d, char **ret_json,
                   size_t *ret_len) {
        enum sgx_kind kinds[SGX_KIND_MAX];
        const char *names[SGX_KIND_MAX];
        size_t n = sgx_cdi_devices(cfg, d, kinds, names, SGX_KIND_MAX);
        json_t *spec, *devices;
        char *buf;
        size_t len;
        bool ok;
        int r;

        if (n == 0)
                return -ENODEV;
        spec = json_object();
        ok = set(spec, "cdiVersion", json_string(SGX_CDI_VERSION)) &&
             set(spec, "kind", json_sprintf("%s/" SGX_CDI_CLASS, cfg->domain)) &&
             set(spec, "devices", json_array());
        devices = ok ? json_object_get(spec, "devices") : NULL;
        for (size_t i = 0; ok && i < n; i++) {
                struct sgx_edits e;
                json_t *dev = json_object();

                ok = append(devices, dev) && set(dev, "name", json_string(names[i])) &&
                     sgx_edits_for(kinds[i], &cfg->edits, d, &e) == 0 &&
                     set(dev, "containerEdits", render_edits(&e));
        }
        /* one more byte for the final newline: a text file ends in one */
        r = ok ? json_text(spec, JSON_INDENT(2) | JSON_PRESERVE_ORDER, 1, &buf, &len) : -ENOMEM;
        json_decref(spec);
        if (r < 0)
                return r;
        buf[len] = '\n';
        buf[len + 1] = '\0';
        *ret_json = buf;
        if (ret_len)
                *ret_len = len + 1;
        return 0;
}
