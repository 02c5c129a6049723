/*
 * resources.c - the resource kinds as one table (see resources.h), and the names derived from it:
 * resource names, socket paths and device IDs.
 */
#include "resources.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "discovery.h"
#include "text.h"

static bool present_any(const struct discovery *d) {
        return discovery_has_dcap(d) || discovery_has_ias(d);
}

#define SOCKET(name) SGX_SOCKET_PREFIX name SGX_SOCKET_SUFFIX

const struct sgx_resource_desc sgx_resources[SGX_KIND_MAX] = {
        [SGX_KIND_SGX] = {SGX_KIND_SGX, "sgx", NULL, "sgx", SOCKET("sgx"),
                          "any SGX device: DCAP when the node has it, else IAS", false,
                          SGX_COMPAT_NONE, SGX_SLOTS_MAX_PODS, present_any},
        [SGX_KIND_DCAP] = {SGX_KIND_DCAP, "dcap", NULL, "dcap", SOCKET("dcap"),
                           "a DCAP enclave device (with its provisioning device)", false,
                           SGX_COMPAT_NONE, SGX_SLOTS_MAX_PODS, discovery_has_dcap},
        [SGX_KIND_IAS] = {SGX_KIND_IAS, "ias", NULL, "ias", SOCKET("ias"),
                          "the legacy IAS driver's /dev/isgx", false, SGX_COMPAT_NONE,
                          SGX_SLOTS_MAX_PODS, discovery_has_ias},
        [SGX_KIND_PROVISION] = {SGX_KIND_PROVISION, "provision", NULL, "provision",
                                SOCKET("provision"), "the DCAP provisioning device alone", true,
                                SGX_COMPAT_NONE, SGX_SLOTS_MAX_PODS, discovery_has_provision},
        [SGX_KIND_INTEL_ENCLAVE] = {SGX_KIND_INTEL_ENCLAVE, "intel-enclave", "sgx.intel.com",
                                    "enclave", SOCKET("intel-enclave"),
                                    "Intel's plugin's name for the enclave device", true,
                                    SGX_COMPAT_INTEL, SGX_SLOTS_MAX_PODS, discovery_has_dcap},
        [SGX_KIND_INTEL_PROVISION] = {SGX_KIND_INTEL_PROVISION, "intel-provision", "sgx.intel.com",
                                      "provision", SOCKET("intel-provision"),
                                      "Intel's plugin's name for the provisioning device alone",
                                      true, SGX_COMPAT_INTEL, SGX_SLOTS_MAX_PODS,
                                      discovery_has_provision},
        [SGX_KIND_AZURE_EPC] = {SGX_KIND_AZURE_EPC, "azure-epc", "kubernetes.azure.com",
                                "sgx_epc_mem_in_MiB", SOCKET("azure-epc"),
                                "AKS's name: one device per MiB of EPC", true, SGX_COMPAT_AZURE,
                                SGX_SLOTS_EPC_MIB, discovery_has_dcap},
        [SGX_KIND_ALIBABA_EPC] = {SGX_KIND_ALIBABA_EPC, "alibaba-epc", "alibabacloud.com",
                                  "sgx_epc_MiB", SOCKET("alibaba-epc"),
                                  "Alibaba Cloud's name: one device per MiB of EPC", true,
                                  SGX_COMPAT_ALIBABA, SGX_SLOTS_EPC_MIB, discovery_has_dcap},
};

static const char *const compat_names[] = {"intel", "azure", "alibaba"};

_Static_assert(sizeof("kubernetes.azure.com/sgx_epc_mem_in_MiB") <= SGX_RESOURCE_NAME_SIZE,
               "a fixed resource name fits the resource-name buffer");
_Static_assert(sizeof("intel-provision") - 1 == SGX_KIND_NAME_MAX, "the longest kind name");

const struct sgx_resource_desc *sgx_resource(enum sgx_kind k) {
        if ((unsigned) k >= SGX_KIND_MAX)
                return NULL;
        return &sgx_resources[k];
}

const char *sgx_kind_name(enum sgx_kind k) {
        const struct sgx_resource_desc *d = sgx_resource(k);

        return d ? d->name : "unknown";
}

bool sgx_kind_enabled(enum sgx_kind k, const struct sgx_resource_options *opt) {
        const struct sgx_resource_desc *d = sgx_resource(k);

        if (!d)
                return false;
        if (!d->opt_in)
                return true;
        if (!opt)
                return false;
        if (d->compat != SGX_COMPAT_NONE)
                return (opt->compat & d->compat) != 0;
        return k == SGX_KIND_PROVISION && opt->provision_resource;
}

bool sgx_kind_present(enum sgx_kind k, const struct discovery *d) {
        const struct sgx_resource_desc *r = sgx_resource(k);

        return r && r->present(d);
}

unsigned sgx_kind_slots(enum sgx_kind k, unsigned max_pods, uint64_t epc_bytes) {
        const struct sgx_resource_desc *r = sgx_resource(k);
        uint64_t mib = epc_bytes >> 20;

        if (!r)
                return 0;
        switch (r->slots) {
        case SGX_SLOTS_MAX_PODS:
                return max_pods;
        case SGX_SLOTS_EPC_MIB:
                return mib > UINT32_MAX ? UINT32_MAX : (unsigned) mib;
        }
        return 0;
}

int sgx_compat_parse(const char *s, unsigned *ret_bits, const char **ret_bad) {
        unsigned bits = 0;
        const char *p = s;

        for (;;) {
                size_t len = strcspn(p, ",");
                unsigned bit = 0;

                for (size_t i = 0; i < sizeof(compat_names) / sizeof(compat_names[0]); i++)
                        if (strlen(compat_names[i]) == len && strncmp(p, compat_names[i], len) == 0)
                                bit = 1u << i;
                if (!bit || (bits & bit)) {
                        if (ret_bad)
                                *ret_bad = p;
                        return -EINVAL;
                }
                bits |= bit;
                if (p[len] == '\0')
                        break;
                p += len + 1;
        }
        *ret_bits = bits;
        return 0;
}

const char *sgx_compat_name(enum sgx_compat c) {
        if (c == SGX_COMPAT_NONE)
                return "none";
        for (size_t i = 0; i < sizeof(compat_names) / sizeof(compat_names[0]); i++)
                if ((unsigned) c == 1u << i)
                        return compat_names[i];
        return "unknown";
}

int sgx_resource_name(const char *domain, enum sgx_kind k, char *buf, size_t size) {
        const struct sgx_resource_desc *r = sgx_resource(k);
        int n;

        if (!r || strlen(domain) > SGX_DOMAIN_MAX)
                return -EINVAL;
        n = snprintf(buf, size, "%s/%s", r->domain ? r->domain : domain, r->suffix);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int sgx_socket_path(const char *dir, enum sgx_kind k, char *buf, size_t size) {
        const struct sgx_resource_desc *r = sgx_resource(k);
        int n;

        if (!r)
                return -EINVAL;
        n = snprintf(buf, size, "%s/%s", dir, r->socket_name);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

const char *sgx_longest_socket_name(unsigned compat) {
        const char *longest = sgx_resources[0].socket_name;

        for (size_t i = 1; i < SGX_KIND_MAX; i++) {
                const struct sgx_resource_desc *r = &sgx_resources[i];

                if (r->compat != SGX_COMPAT_NONE && !(r->compat & compat))
                        continue;
                if (strlen(r->socket_name) > strlen(longest))
                        longest = r->socket_name;
        }
        return longest;
}

/* Other plugins' socket names whose resource is known (Intel's: "<domain>-<device>.sock"). */
static const struct {
        const char *socket, *resource;
} known_sockets[] = {
        {"sgx.intel.com-enclave.sock", "sgx.intel.com/enclave"},
        {"sgx.intel.com-provision.sock", "sgx.intel.com/provision"},
};

/* |hay| holds |needle| in any case. */
static bool contains_nocase(const char *hay, const char *needle) {
        size_t n = strlen(needle);

        for (; *hay; hay++)
                if (strncasecmp(hay, needle, n) == 0)
                        return true;
        return false;
}

bool sgx_is_other_plugin_socket(const char *name, const char **ret_resource) {
        if (ret_resource)
                *ret_resource = NULL;
        if (strcmp(name, "kubelet.sock") == 0 ||
            strncmp(name, SGX_SOCKET_PREFIX, sizeof(SGX_SOCKET_PREFIX) - 1) == 0)
                return false;
        if (!contains_nocase(name, "sgx") && !contains_nocase(name, "epc"))
                return false;
        for (size_t i = 0; i < sizeof(known_sockets) / sizeof(known_sockets[0]); i++)
                if (strcmp(name, known_sockets[i].socket) == 0 && ret_resource)
                        *ret_resource = known_sockets[i].resource;
        return true;
}

bool sgx_parse_id(enum sgx_kind k, unsigned slots, const char *id, unsigned *ret_n) {
        const struct sgx_resource_desc *r = sgx_resource(k);
        const char *p;
        size_t nlen;
        uint64_t n;

        if (!r)
                return false;
        nlen = strlen(r->name);
        if (strncmp(id, r->name, nlen) != 0 || id[nlen] != '-')
                return false;
        p = id + nlen + 1;
        /* one spelling per ID: no leading zeros */
        if (*p == '0' && p[1] != '\0')
                return false;
        if (slots == 0 || text_parse_u64(p, slots - 1, &n) < 0)
                return false;
        if (ret_n)
                *ret_n = (unsigned) n;
        return true;
}
