/*
 * resources.c - the resource kinds as one table (see resources.h), and the names derived from it:
 * resource names, socket paths and device IDs.
 */
#include "resources.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "discovery.h"
#include "text.h"

static bool present_any(const struct discovery *d) {
        return discovery_has_dcap(d) || discovery_has_ias(d);
}

#define SOCKET(name) SGX_SOCKET_PREFIX name SGX_SOCKET_SUFFIX

const struct sgx_resource_desc sgx_resources[SGX_KIND_MAX] = {
        [SGX_KIND_SGX] = {SGX_KIND_SGX, "sgx", SOCKET("sgx"),
                          "any SGX device: DCAP when the node has it, else IAS", false,
                          SGX_SLOTS_MAX_PODS, present_any},
        [SGX_KIND_DCAP] = {SGX_KIND_DCAP, "dcap", SOCKET("dcap"),
                           "a DCAP enclave device (with its provisioning device)", false,
                           SGX_SLOTS_MAX_PODS, discovery_has_dcap},
        [SGX_KIND_IAS] = {SGX_KIND_IAS, "ias", SOCKET("ias"),
                          "the legacy IAS driver's /dev/isgx", false, SGX_SLOTS_MAX_PODS,
                          discovery_has_ias},
        [SGX_KIND_PROVISION] = {SGX_KIND_PROVISION, "provision", SOCKET("provision"),
                                "the DCAP provisioning device alone", true, SGX_SLOTS_MAX_PODS,
                                discovery_has_provision},
};

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
        return k == SGX_KIND_PROVISION && opt && opt->provision_resource;
}

bool sgx_kind_present(enum sgx_kind k, const struct discovery *d) {
        const struct sgx_resource_desc *r = sgx_resource(k);

        return r && r->present(d);
}

unsigned sgx_kind_slots(enum sgx_kind k, unsigned max_pods) {
        const struct sgx_resource_desc *r = sgx_resource(k);

        if (!r)
                return 0;
        switch (r->slots) {
        case SGX_SLOTS_MAX_PODS:
                return max_pods;
        }
        return 0;
}

int sgx_resource_name(const char *domain, enum sgx_kind k, char *buf, size_t size) {
        const struct sgx_resource_desc *r = sgx_resource(k);
        int n;

        if (!r || strlen(domain) > SGX_DOMAIN_MAX)
                return -EINVAL;
        n = snprintf(buf, size, "%s/%s", domain, r->name);
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

const char *sgx_longest_socket_name(void) {
        const char *longest = sgx_resources[0].socket_name;

        for (size_t i = 1; i < SGX_KIND_MAX; i++)
                if (strlen(sgx_resources[i].socket_name) > strlen(longest))
                        longest = sgx_resources[i].socket_name;
        return longest;
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
