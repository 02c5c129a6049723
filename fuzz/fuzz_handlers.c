/*
 * fuzz_handlers.c - libFuzzer target for the v1beta1 request decoders and handlers
 * (dp_handle_allocate, dp_handle_preferred, dp_handle_prestart) with arbitrary protobuf, for every
 * dp_kind, several node layouts (struct discovery built here, as discovery_scan would fill it) and
 * configurations.
 *
 * Beyond "no crash, no leak", each answer is checked against a reference written here from the
 * contract in deviceplugin.h: the status is OK exactly when the request is valid (IDs
 * "<kind>-<n>", n < max_pods, decimal without leading zeros; the resource present for Allocate;
 * allocation sizes within bounds for GetPreferredAllocation); an OK answer decodes, has one entry
 * per container, maps only /dev/ host paths to /dev/ container paths ("rw"), mounts the aesmd
 * dir exactly when configured, and prefers only distinct, valid, offered IDs with every
 * must-include one; a failure leaves a one-line message.
 *
 * Input: byte 0 picks the kind (bits 0-1), the handler (bits 2-3, mod 3) and, with bits 4-5 both
 * set, a resource domain too long for a resource name; byte 1 picks the node layout (bits 0-2),
 * max_pods (bits 3-5), provision (bit 6) and aesmd (bit 7); the rest is the request message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "deviceplugin.h"
#include "discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum layout {
        NODE_EMPTY,          /* no SGX at all */
        NODE_IN_KERNEL,      /* /dev/sgx_enclave + /dev/sgx_provision */
        NODE_DCAP_DRIVER,    /* /dev/sgx/enclave + /dev/sgx/provision */
        NODE_LEGACY_DCAP,    /* /dev/sgx + /dev/sgx_prv */
        NODE_IAS,            /* /dev/isgx */
        NODE_DCAP_NO_PROV,   /* /dev/sgx_enclave alone, and /dev/isgx */
        NODE_PROVISION_ONLY, /* /dev/sgx_provision without an enclave: no SGX */
        NODE_EVERYTHING,     /* in-kernel DCAP + isgx */
};

static const unsigned max_pods_table[8] = {0, 1, 2, 10, 11, 110, 1000, 100000};

static const char long_domain[] =
        "a-very-long-resource-domain-that-no-one-would-ever-use.but-still-valid.example."
        "a-very-long-resource-domain-that-no-one-would-ever-use.but-still-valid.example."
        "a-very-long-resource-domain-that-no-one-would-ever-use.but-still-valid.example."
        "tail";

static void set_node(struct sgx_node *n, const char *path, unsigned major, unsigned minor) {
        n->present = true;
        snprintf(n->host_path, sizeof(n->host_path), "%s", path);
        n->major = major;
        n->minor = minor;
}

static void make_node(enum layout l, struct discovery *d) {
        memset(d, 0, sizeof(*d));
        switch (l) {
        case NODE_EMPTY:
                break;
        case NODE_IN_KERNEL:
        case NODE_EVERYTHING:
                set_node(&d->dcap_enclave, "/dev/sgx_enclave", 10, 125);
                set_node(&d->dcap_provision, "/dev/sgx_provision", 10, 126);
                if (l == NODE_EVERYTHING)
                        set_node(&d->ias_enclave, "/dev/isgx", 10, 57);
                break;
        case NODE_DCAP_DRIVER:
                set_node(&d->dcap_enclave, "/dev/sgx/enclave", 10, 55);
                set_node(&d->dcap_provision, "/dev/sgx/provision", 10, 56);
                break;
        case NODE_LEGACY_DCAP:
                set_node(&d->dcap_enclave, "/dev/sgx", 10, 58);
                set_node(&d->dcap_provision, "/dev/sgx_prv", 10, 59);
                d->dcap_legacy = true;
                break;
        case NODE_IAS:
                set_node(&d->ias_enclave, "/dev/isgx", 10, 57);
                break;
        case NODE_DCAP_NO_PROV:
                set_node(&d->dcap_enclave, "/dev/sgx_enclave", 10, 125);
                set_node(&d->ias_enclave, "/dev/isgx", 10, 57);
                break;
        case NODE_PROVISION_ONLY:
                set_node(&d->dcap_provision, "/dev/sgx_provision", 10, 126);
                break;
        }
}

/* ---- the reference ---- */

/* "<kind>-<n>", n < max_pods, decimal without leading zeros or sign. */
static bool ref_id_valid(enum sgx_kind k, unsigned max_pods, const char *id, unsigned *ret_n) {
        char want[32];
        unsigned long long n = 0;
        const char *p;
        int plen = snprintf(want, sizeof(want), "%s-", sgx_kind_name(k));

        if (strncmp(id, want, (size_t) plen) != 0)
                return false;
        p = id + plen;
        if (!*p || strlen(p) > 10 || strspn(p, "0123456789") != strlen(p))
                return false;
        if (p[0] == '0' && p[1])
                return false;
        n = strtoull(p, NULL, 10);
        if (n >= max_pods)
                return false;
        if (ret_n)
                *ret_n = (unsigned) n;
        return true;
}

static bool ref_ids_valid(enum sgx_kind k, unsigned max_pods, char **ids, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!ref_id_valid(k, max_pods, ids[i], NULL))
                        return false;
        return true;
}

static bool ref_present(enum sgx_kind k, const struct discovery *d) {
        bool dcap = d->dcap_enclave.present, ias = d->ias_enclave.present;

        switch (k) {
        case SGX_KIND_SGX:
                return dcap || ias;
        case SGX_KIND_DCAP:
                return dcap;
        case SGX_KIND_IAS:
                return ias;
        default:
                return dcap && d->dcap_provision.present;
        }
}

/* The host nodes an Allocate of |k| maps (README, "Device mapping"). */
static size_t ref_host_paths(const struct dp_config *cfg, enum sgx_kind k, const struct discovery *d,
                             const char **ret) {
        bool dcap = d->dcap_enclave.present, prov = dcap && d->dcap_provision.present;
        size_t n = 0;

        switch (k) {
        case SGX_KIND_SGX:
        case SGX_KIND_DCAP:
                if (dcap) {
                        ret[n++] = d->dcap_enclave.host_path;
                        if (cfg->edits.provision && prov)
                                ret[n++] = d->dcap_provision.host_path;
                } else if (k == SGX_KIND_SGX && d->ias_enclave.present)
                        ret[n++] = d->ias_enclave.host_path;
                break;
        case SGX_KIND_IAS:
                if (d->ias_enclave.present)
                        ret[n++] = d->ias_enclave.host_path;
                break;
        default:
                if (prov)
                        ret[n++] = d->dcap_provision.host_path;
                break;
        }
        return n;
}

static void check_err(enum grpc_status st, const char *err) {
        if (st == GRPC_STATUS_OK)
                abort();
        if (!memchr(err, '\0', 256) || err[0] == '\0' || strchr(err, '\n'))
                abort();
}

static bool listed(char **ids, size_t n, const char *id) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(ids[i], id) == 0)
                        return true;
        return false;
}

static bool has_prefix(const char *s, const char *prefix) {
        return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_allocate(const struct dp_config *cfg, enum sgx_kind k, const struct discovery *d,
                           const uint8_t *req, size_t len) {
        V1beta1__AllocateRequest *r = v1beta1__allocate_request__unpack(NULL, len, req);
        V1beta1__AllocateResponse *resp;
        const char *want[2];
        size_t n_want;
        bool valid = r && r->n_container_requests > 0;
        enum grpc_status st;
        uint8_t *buf = NULL;
        size_t blen = 0;
        char err[256];

        for (size_t i = 0; valid && i < r->n_container_requests; i++) {
                const V1beta1__ContainerAllocateRequest *c = r->container_requests[i];

                valid = c->n_devices_ids > 0 &&
                        ref_ids_valid(k, cfg->slots, c->devices_ids, c->n_devices_ids);
        }
        st = dp_handle_allocate(cfg, k, d, req, len, &buf, &blen, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                check_err(st, err);
                if (valid && ref_present(k, d))
                        abort(); /* a valid request for a present resource was refused */
                if (valid != (st == GRPC_STATUS_FAILED_PRECONDITION))
                        abort(); /* the wrong reason */
                goto out;
        }
        if (!valid || !ref_present(k, d))
                abort();
        n_want = ref_host_paths(cfg, k, d, want);
        resp = v1beta1__allocate_response__unpack(NULL, blen, buf);
        if (!resp || resp->n_container_responses != r->n_container_requests)
                abort();
        for (size_t i = 0; i < resp->n_container_responses; i++) {
                const V1beta1__ContainerAllocateResponse *c = resp->container_responses[i];

                if (c->n_devices == 0 || c->n_devices > 4)
                        abort();
                for (size_t j = 0; j < c->n_devices; j++) {
                        const V1beta1__DeviceSpec *s = c->devices[j];

                        if (!has_prefix(s->host_path, "/dev/") ||
                            !has_prefix(s->container_path, "/dev/") ||
                            strcmp(s->permissions, "rw") != 0)
                                abort();
                        if (!listed((char **) want, n_want, s->host_path))
                                abort(); /* a device this resource does not map */
                }
                for (size_t j = 0; j < n_want; j++) {
                        bool found = false;

                        for (size_t m = 0; m < c->n_devices; m++)
                                found = found || strcmp(c->devices[m]->host_path, want[j]) == 0;
                        if (!found)
                                abort(); /* a device this resource maps is missing */
                }
                if (cfg->edits.aesmd_dir) {
                        if (c->n_mounts != 1 || strcmp(c->mounts[0]->host_path, cfg->edits.aesmd_dir) ||
                            strcmp(c->mounts[0]->container_path, cfg->edits.aesmd_dir))
                                abort();
                } else if (c->n_mounts != 0)
                        abort();
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
out:
        free(buf);
        if (r)
                v1beta1__allocate_request__free_unpacked(r, NULL);
}

static bool ref_preferred_valid(const struct dp_config *cfg, enum sgx_kind k,
                                const V1beta1__PreferredAllocationRequest *r) {
        if (!r || r->n_container_requests == 0)
                return false;
        for (size_t i = 0; i < r->n_container_requests; i++) {
                const V1beta1__ContainerPreferredAllocationRequest *c = r->container_requests[i];

                if (!ref_ids_valid(k, cfg->slots, c->available_deviceids,
                                   c->n_available_deviceids) ||
                    !ref_ids_valid(k, cfg->slots, c->must_include_deviceids,
                                   c->n_must_include_deviceids))
                        return false;
                if (c->allocation_size < 0 ||
                    (size_t) c->allocation_size < c->n_must_include_deviceids ||
                    (size_t) c->allocation_size > c->n_available_deviceids)
                        return false;
        }
        return true;
}

static void check_preferred(const struct dp_config *cfg, enum sgx_kind k, const uint8_t *req,
                            size_t len) {
        V1beta1__PreferredAllocationRequest *r =
                v1beta1__preferred_allocation_request__unpack(NULL, len, req);
        V1beta1__PreferredAllocationResponse *resp;
        bool valid = ref_preferred_valid(cfg, k, r);
        enum grpc_status st;
        uint8_t *buf = NULL;
        size_t blen = 0;
        char err[256];

        st = dp_handle_preferred(cfg, k, req, len, &buf, &blen, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                check_err(st, err);
                if (valid)
                        abort();
                goto out;
        }
        if (!valid)
                abort();
        resp = v1beta1__preferred_allocation_response__unpack(NULL, blen, buf);
        if (!resp || resp->n_container_responses != r->n_container_requests)
                abort();
        for (size_t i = 0; i < resp->n_container_responses; i++) {
                const V1beta1__ContainerPreferredAllocationRequest *c = r->container_requests[i];
                const V1beta1__ContainerPreferredAllocationResponse *a =
                        resp->container_responses[i];

                if (a->n_deviceids > (size_t) c->allocation_size)
                        abort();
                for (size_t j = 0; j < a->n_deviceids; j++) {
                        const char *id = a->deviceids[j];

                        if (!ref_id_valid(k, cfg->slots, id, NULL))
                                abort();
                        if (!listed(c->available_deviceids, c->n_available_deviceids, id) &&
                            !listed(c->must_include_deviceids, c->n_must_include_deviceids, id))
                                abort(); /* never offered */
                        if (listed(a->deviceids, j, id))
                                abort(); /* chosen twice */
                }
                for (size_t j = 0; j < c->n_must_include_deviceids; j++)
                        if (!listed(a->deviceids, a->n_deviceids, c->must_include_deviceids[j]))
                                abort(); /* a must-include ID left out */
        }
        v1beta1__preferred_allocation_response__free_unpacked(resp, NULL);
out:
        free(buf);
        if (r)
                v1beta1__preferred_allocation_request__free_unpacked(r, NULL);
}

static void check_prestart(const struct dp_config *cfg, enum sgx_kind k, const uint8_t *req,
                           size_t len) {
        V1beta1__PreStartContainerRequest *r =
                v1beta1__pre_start_container_request__unpack(NULL, len, req);
        V1beta1__PreStartContainerResponse *resp;
        bool valid = r && ref_ids_valid(k, cfg->slots, r->devices_ids, r->n_devices_ids);
        enum grpc_status st;
        uint8_t *buf = NULL;
        size_t blen = 0;
        char err[256];

        st = dp_handle_prestart(cfg, k, req, len, &buf, &blen, err, sizeof(err));
        if (st != GRPC_STATUS_OK) {
                check_err(st, err);
                if (valid)
                        abort();
                goto out;
        }
        if (!valid)
                abort();
        resp = v1beta1__pre_start_container_response__unpack(NULL, blen, buf);
        if (!resp)
                abort();
        v1beta1__pre_start_container_response__free_unpacked(resp, NULL);
out:
        free(buf);
        if (r)
                v1beta1__pre_start_container_request__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct dp_config cfg = {.domain = "sgx.k8s.io"};
        struct discovery d;
        enum sgx_kind k;
        uint8_t *req;
        size_t len;

        if (size < 2)
                return 0;
        k = (enum sgx_kind) (data[0] & 3);
        make_node((enum layout) (data[1] & 7), &d);
        cfg.slots = max_pods_table[(data[1] >> 3) & 7];
        cfg.edits.provision = data[1] & 0x40;
        cfg.edits.aesmd_dir = data[1] & 0x80 ? "/var/run/aesmd" : NULL;
        if ((data[0] & 0x30) == 0x30)
                cfg.domain = long_domain; /* messages fall back to the kind's name */

        /* An exact-size copy, so a read past the request's end is seen. */
        len = size - 2;
        req = malloc(len ? len : 1);
        if (!req)
                abort();
        memcpy(req, data + 2, len);
        switch (((data[0] >> 2) & 3) % 3) {
        case 0:
                check_allocate(&cfg, k, &d, req, len);
                break;
        case 1:
                check_preferred(&cfg, k, req, len);
                break;
        case 2:
                check_prestart(&cfg, k, req, len);
                break;
        }
        free(req);
        return 0;
}
