/*
 * test_deviceplugin.c - the pure DevicePlugin handlers of deviceplugin.c, without sockets: device
 * lists, options, Allocate for every device layout, GetPreferredAllocation and PreStartContainer.
 * Answers are decoded with protobuf-c and checked field by field. Node states are built in C.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.pb-c.h"
#include "deviceplugin.h"
#include "discovery.h"
#include "unit.h"

/* ---- fixtures ---- */

static struct dp_config cfg_default(void) {
        return (struct dp_config){
                .domain = "sgx.k8s.io",
                .max_pods = 110,
                .provision = true,
                .aesmd_dir = NULL,
        };
}

static void set_node(struct sgx_node *n, const char *path, unsigned major, unsigned minor) {
        n->present = true;
        snprintf(n->host_path, sizeof(n->host_path), "%s", path);
        n->major = major;
        n->minor = minor;
}

/* In-kernel driver (5.11+): /dev/sgx_enclave, /dev/sgx_provision. */
static struct discovery node_in_kernel(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx_enclave", 10, 125);
        set_node(&d.dcap_provision, "/dev/sgx_provision", 10, 126);
        return d;
}

/* Out-of-tree DCAP driver: /dev/sgx/enclave, /dev/sgx/provision. */
static struct discovery node_dcap_dir(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx/enclave", 10, 55);
        set_node(&d.dcap_provision, "/dev/sgx/provision", 10, 56);
        return d;
}

/* Legacy DCAP driver: one /dev/sgx char device, /dev/sgx_prv beside it. */
static struct discovery node_legacy(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.dcap_enclave, "/dev/sgx", 10, 60);
        set_node(&d.dcap_provision, "/dev/sgx_prv", 10, 61);
        d.dcap_legacy = true;
        return d;
}

/* Legacy IAS driver only: /dev/isgx. */
static struct discovery node_ias(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        return d;
}

static struct discovery node_empty(void) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        return d;
}

/* ---- request builders ---- */

/* |containers| is a NULL-terminated array of NULL-terminated ID lists. */
static uint8_t *pack_allocate(const char *const *const *containers, size_t *ret_len) {
        V1beta1__AllocateRequest req = V1BETA1__ALLOCATE_REQUEST__INIT;
        V1beta1__ContainerAllocateRequest c[8], *cp[8];
        size_t n = 0;
        uint8_t *buf;

        for (; containers[n]; n++) {
                size_t m = 0;

                v1beta1__container_allocate_request__init(&c[n]);
                while (containers[n][m])
                        m++;
                c[n].n_devices_ids = m;
                c[n].devices_ids = (char **) containers[n];
                cp[n] = &c[n];
        }
        req.n_container_requests = n;
        req.container_requests = cp;
        buf = malloc(v1beta1__allocate_request__get_packed_size(&req) + 1);
        *ret_len = v1beta1__allocate_request__pack(&req, buf);
        return buf;
}

/* Allocate with one container holding |ids| (NULL-terminated). */
static enum grpc_status allocate_ids(const struct dp_config *cfg, enum dp_kind k,
                                     const struct discovery *d, const char *const *ids,
                                     V1beta1__AllocateResponse **ret, char *err, size_t errsz) {
        const char *const *containers[] = {ids, NULL};
        uint8_t *req, *out = NULL;
        size_t len, olen = 0;
        enum grpc_status st;

        req = pack_allocate(containers, &len);
        st = dp_handle_allocate(cfg, k, d, req, len, &out, &olen, err, errsz);
        free(req);
        *ret = NULL;
        if (st == GRPC_STATUS_OK) {
                *ret = v1beta1__allocate_response__unpack(NULL, olen, out);
                CHECK(*ret);
                free(out);
        }
        return st;
}

static enum grpc_status allocate_one(const struct dp_config *cfg, enum dp_kind k,
                                     const struct discovery *d, const char *id,
                                     V1beta1__AllocateResponse **ret) {
        const char *ids[] = {id, NULL};
        char err[256];

        return allocate_ids(cfg, k, d, ids, ret, err, sizeof(err));
}

/* Checks that container response |c| holds exactly |want| ("container=host" pairs, in order). */
static void check_specs(const V1beta1__ContainerAllocateResponse *c, const char *const *want) {
        size_t n = 0;

        while (want[n])
                n++;
        CHECK_INT(c->n_devices, n);
        for (size_t i = 0; i < n && i < c->n_devices; i++) {
                char pair[600];

                snprintf(pair, sizeof(pair), "%s=%s", c->devices[i]->container_path,
                         c->devices[i]->host_path);
                CHECK_STR(pair, want[i]);
                CHECK_STR(c->devices[i]->permissions, "rw");
        }
        CHECK_INT(c->n_envs, 0);
        CHECK_INT(c->n_annotations, 0);
        CHECK_INT(c->n_cdi_devices, 0);
}

/* Allocates "<kind>-0" and checks the one container's device specs and that no mount is made. */
static void check_allocate(const struct dp_config *cfg, enum dp_kind k, const struct discovery *d,
                           const char *const *want) {
        V1beta1__AllocateResponse *resp;
        char id[32];

        snprintf(id, sizeof(id), "%s-0", dp_kind_name(k));
        CHECK_INT(allocate_one(cfg, k, d, id, &resp), GRPC_STATUS_OK);
        if (!resp)
                return;
        CHECK_INT(resp->n_container_responses, 1);
        if (resp->n_container_responses == 1) {
                check_specs(resp->container_responses[0], want);
                CHECK_INT(resp->container_responses[0]->n_mounts, cfg->aesmd_dir ? 1 : 0);
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
}

static void check_rejected(const struct dp_config *cfg, enum dp_kind k, const struct discovery *d,
                           const char *id, enum grpc_status want, const char *msg_part) {
        V1beta1__AllocateResponse *resp;
        const char *ids[] = {id, NULL};
        char err[256] = "";

        CHECK_INT(allocate_ids(cfg, k, d, ids, &resp, err, sizeof(err)), want);
        CHECK((want == GRPC_STATUS_OK) == (resp != NULL));
        if (msg_part && !strstr(err, msg_part)) {
                fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, msg_part);
                CHECK(strstr(err, msg_part));
        }
        if (resp)
                v1beta1__allocate_response__free_unpacked(resp, NULL);
}

/* ---- names and presence ---- */

static void test_deviceplugin_names(void) {
        struct dp_config cfg = cfg_default();
        char buf[64], tiny[8];

        CHECK_STR(dp_kind_name(DP_KIND_SGX), "sgx");
        CHECK_STR(dp_kind_name(DP_KIND_DCAP), "dcap");
        CHECK_STR(dp_kind_name(DP_KIND_IAS), "ias");
        CHECK_STR(dp_kind_name(DP_KIND_PROVISION), "provision");
        CHECK_INT(dp_resource_name(&cfg, DP_KIND_DCAP, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/dcap");
        cfg.domain = "example.com";
        CHECK_INT(dp_resource_name(&cfg, DP_KIND_PROVISION, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "example.com/provision");
        CHECK_INT(dp_resource_name(&cfg, DP_KIND_SGX, tiny, sizeof(tiny)), -ENAMETOOLONG);
        CHECK_STR(dp_health_name(DP_HEALTH_HEALTHY), "Healthy");
        CHECK_STR(dp_health_name(DP_HEALTH_UNHEALTHY), "Unhealthy");
}

static void test_deviceplugin_kind_present(void) {
        struct discovery k = node_in_kernel(), i = node_ias(), e = node_empty();
        struct discovery no_prov = node_in_kernel(), prov_only = node_empty();

        memset(&no_prov.dcap_provision, 0, sizeof(no_prov.dcap_provision));
        set_node(&prov_only.dcap_provision, "/dev/sgx_provision", 10, 126);

        CHECK(dp_kind_present(DP_KIND_SGX, &k));
        CHECK(dp_kind_present(DP_KIND_DCAP, &k));
        CHECK(!dp_kind_present(DP_KIND_IAS, &k));
        CHECK(dp_kind_present(DP_KIND_PROVISION, &k));

        CHECK(dp_kind_present(DP_KIND_SGX, &i));
        CHECK(!dp_kind_present(DP_KIND_DCAP, &i));
        CHECK(dp_kind_present(DP_KIND_IAS, &i));
        CHECK(!dp_kind_present(DP_KIND_PROVISION, &i));

        CHECK(dp_kind_present(DP_KIND_DCAP, &no_prov));
        CHECK(!dp_kind_present(DP_KIND_PROVISION, &no_prov));

        /* a provisioning device without an enclave device is no SGX */
        for (int kind = 0; kind < DP_KIND_MAX; kind++) {
                CHECK(!dp_kind_present(kind, &prov_only));
                CHECK(!dp_kind_present(kind, &e));
        }
}

/* ---- Allocate: layouts ---- */

static void test_deviceplugin_allocate_in_kernel(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave",
                              "/dev/sgx_provision=/dev/sgx_provision",
                              "/dev/sgx/provision=/dev/sgx_provision", NULL};

        check_allocate(&cfg, DP_KIND_DCAP, &d, want);
        check_allocate(&cfg, DP_KIND_SGX, &d, want);
}

static void test_deviceplugin_allocate_dcap_driver_dir(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_dcap_dir();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx/enclave",
                              "/dev/sgx/enclave=/dev/sgx/enclave",
                              "/dev/sgx_provision=/dev/sgx/provision",
                              "/dev/sgx/provision=/dev/sgx/provision", NULL};

        check_allocate(&cfg, DP_KIND_DCAP, &d, want);
        check_allocate(&cfg, DP_KIND_SGX, &d, want);
}

static void test_deviceplugin_allocate_legacy_sgx(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_legacy();
        const char *want[] = {"/dev/sgx=/dev/sgx", "/dev/sgx_prv=/dev/sgx_prv", NULL};
        const char *want_noprov[] = {"/dev/sgx=/dev/sgx", NULL};

        check_allocate(&cfg, DP_KIND_DCAP, &d, want);
        check_allocate(&cfg, DP_KIND_SGX, &d, want);
        cfg.provision = false;
        check_allocate(&cfg, DP_KIND_DCAP, &d, want_noprov);
}

static void test_deviceplugin_allocate_ias_only(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_ias();
        const char *want[] = {"/dev/isgx=/dev/isgx", NULL};

        check_allocate(&cfg, DP_KIND_IAS, &d, want);
        check_allocate(&cfg, DP_KIND_SGX, &d, want);
        check_rejected(&cfg, DP_KIND_DCAP, &d, "dcap-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/dcap");
        check_rejected(&cfg, DP_KIND_PROVISION, &d, "provision-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/provision");
}

static void test_deviceplugin_allocate_sgx_prefers_dcap(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want_sgx[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                                  "/dev/sgx/enclave=/dev/sgx_enclave",
                                  "/dev/sgx_provision=/dev/sgx_provision",
                                  "/dev/sgx/provision=/dev/sgx_provision", NULL};
        const char *want_ias[] = {"/dev/isgx=/dev/isgx", NULL};

        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        check_allocate(&cfg, DP_KIND_SGX, &d, want_sgx);
        check_allocate(&cfg, DP_KIND_IAS, &d, want_ias);
}

static void test_deviceplugin_allocate_no_provision(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave", NULL};
        const char *want_prov[] = {"/dev/sgx_provision=/dev/sgx_provision",
                                   "/dev/sgx/provision=/dev/sgx_provision", NULL};

        cfg.provision = false;
        check_allocate(&cfg, DP_KIND_DCAP, &d, want);
        check_allocate(&cfg, DP_KIND_SGX, &d, want);
        /* the provision resource maps its device whatever --no-provision says */
        check_allocate(&cfg, DP_KIND_PROVISION, &d, want_prov);
}

static void test_deviceplugin_allocate_enclave_without_provision_device(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave", NULL};

        memset(&d.dcap_provision, 0, sizeof(d.dcap_provision));
        check_allocate(&cfg, DP_KIND_DCAP, &d, want);
        check_rejected(&cfg, DP_KIND_PROVISION, &d, "provision-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present");
}

static void test_deviceplugin_allocate_provision_resource(void) {
        struct dp_config cfg = cfg_default();
        struct discovery k = node_in_kernel(), dir = node_dcap_dir(), leg = node_legacy();
        const char *want_k[] = {"/dev/sgx_provision=/dev/sgx_provision",
                                "/dev/sgx/provision=/dev/sgx_provision", NULL};
        const char *want_dir[] = {"/dev/sgx_provision=/dev/sgx/provision",
                                  "/dev/sgx/provision=/dev/sgx/provision", NULL};
        const char *want_leg[] = {"/dev/sgx_prv=/dev/sgx_prv", NULL};

        check_allocate(&cfg, DP_KIND_PROVISION, &k, want_k);
        check_allocate(&cfg, DP_KIND_PROVISION, &dir, want_dir);
        check_allocate(&cfg, DP_KIND_PROVISION, &leg, want_leg);
}

static void test_deviceplugin_allocate_aesmd_mount(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *c1[] = {"dcap-3", NULL}, *c2[] = {"dcap-4", "dcap-5", NULL};
        const char *const *containers[] = {c1, c2, NULL};
        V1beta1__AllocateResponse *resp;
        char err[256];
        uint8_t *req, *out;
        size_t len, olen;

        cfg.aesmd_dir = "/var/run/aesmd";
        req = pack_allocate(containers, &len);
        CHECK_INT(
                dp_handle_allocate(&cfg, DP_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_OK);
        free(req);
        resp = v1beta1__allocate_response__unpack(NULL, olen, out);
        free(out);
        CHECK(resp);
        if (!resp)
                return;
        CHECK_INT(resp->n_container_responses, 2);
        for (size_t i = 0; i < resp->n_container_responses; i++) {
                const V1beta1__ContainerAllocateResponse *c = resp->container_responses[i];

                CHECK_INT(c->n_mounts, 1);
                if (c->n_mounts == 1) {
                        CHECK_STR(c->mounts[0]->container_path, "/var/run/aesmd");
                        CHECK_STR(c->mounts[0]->host_path, "/var/run/aesmd");
                        CHECK(!c->mounts[0]->read_only);
                }
                CHECK_INT(c->n_devices, 4);
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
}

static void test_deviceplugin_allocate_one_answer_per_container(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_ias();
        const char *c1[] = {"ias-0", NULL}, *c2[] = {"ias-1", NULL},
                   *c3[] = {"ias-109", "ias-2", NULL};
        const char *const *containers[] = {c1, c2, c3, NULL};
        const char *want[] = {"/dev/isgx=/dev/isgx", NULL};
        V1beta1__AllocateResponse *resp;
        char err[256];
        uint8_t *req, *out;
        size_t len, olen;

        req = pack_allocate(containers, &len);
        CHECK_INT(
                dp_handle_allocate(&cfg, DP_KIND_IAS, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_OK);
        free(req);
        resp = v1beta1__allocate_response__unpack(NULL, olen, out);
        free(out);
        CHECK(resp);
        if (!resp)
                return;
        CHECK_INT(resp->n_container_responses, 3);
        for (size_t i = 0; i < resp->n_container_responses; i++) {
                check_specs(resp->container_responses[i], want);
                CHECK_INT(resp->container_responses[i]->n_mounts, 0);
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
}

/* ---- Allocate: rejections ---- */

static void test_deviceplugin_allocate_rejects_unknown_ids(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        static const char *const bad[] = {
                "",        "dcap",     "dcap-",     "dcap-01",
                "dcap-00", "dcap-110", "dcap-1000", "dcap--1",
                "dcap-+1", "dcap-1x",  "dcap-1 ",   " dcap-1",
                "DCAP-1",  "dcap_1",   "dcap-0x1",  "dcap-99999999999999999999999999",
                "dcapx-1", "dca-1",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char want[64];

                snprintf(want, sizeof(want), "\"%s\"", bad[i]);
                if (strlen(bad[i]) > 20)
                        snprintf(want, sizeof(want), "\"%.20s", bad[i]);
                check_rejected(&cfg, DP_KIND_DCAP, &d, bad[i], GRPC_STATUS_INVALID_ARGUMENT, want);
                check_rejected(&cfg, DP_KIND_DCAP, &d, bad[i], GRPC_STATUS_INVALID_ARGUMENT,
                               "sgx.k8s.io/dcap");
        }
        /* the edges are IDs */
        check_rejected(&cfg, DP_KIND_DCAP, &d, "dcap-0", GRPC_STATUS_OK, NULL);
        check_rejected(&cfg, DP_KIND_DCAP, &d, "dcap-109", GRPC_STATUS_OK, NULL);
        cfg.max_pods = 100000;
        check_rejected(&cfg, DP_KIND_DCAP, &d, "dcap-99999", GRPC_STATUS_OK, NULL);
        check_rejected(&cfg, DP_KIND_DCAP, &d, "dcap-100000", GRPC_STATUS_INVALID_ARGUMENT,
                       "dcap-100000");
}

static void test_deviceplugin_allocate_rejects_wrong_resource_ids(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();

        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        check_rejected(&cfg, DP_KIND_DCAP, &d, "sgx-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "\"sgx-1\" for resource sgx.k8s.io/dcap");
        check_rejected(&cfg, DP_KIND_SGX, &d, "dcap-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "\"dcap-1\" for resource sgx.k8s.io/sgx");
        check_rejected(&cfg, DP_KIND_IAS, &d, "sgx-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "sgx.k8s.io/ias");
        check_rejected(&cfg, DP_KIND_PROVISION, &d, "dcap-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "sgx.k8s.io/provision");
}

static void test_deviceplugin_allocate_rejects_one_bad_id_among_good(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *c1[] = {"dcap-1", NULL}, *c2[] = {"dcap-2", "dcap-07", NULL};
        const char *const *containers[] = {c1, c2, NULL};
        char err[256] = "";
        uint8_t *req, *out = NULL;
        size_t len, olen;

        req = pack_allocate(containers, &len);
        CHECK_INT(
                dp_handle_allocate(&cfg, DP_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "dcap-07"));
        CHECK(out == NULL);
        free(req);
}

static void test_deviceplugin_allocate_garbled_id_is_sanitized(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        char id[300], err[256] = "";
        const char *ids[] = {id, NULL};
        V1beta1__AllocateResponse *resp;

        memset(id, 'A', sizeof(id) - 1);
        id[sizeof(id) - 1] = '\0';
        id[3] = '\n';
        CHECK_INT(allocate_ids(&cfg, DP_KIND_DCAP, &d, ids, &resp, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(!strchr(err, '\n'));
        CHECK(strstr(err, "AAA?AAAA"));
        CHECK(strstr(err, "...\""));
        CHECK(strstr(err, "sgx.k8s.io/dcap"));
        CHECK(strlen(err) < 200);
}

static void test_deviceplugin_allocate_rejects_empty_request(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *none[] = {NULL}, *c1[] = {"dcap-1", NULL};
        const char *const *containers[] = {c1, none, NULL};
        const char *const *no_containers[] = {NULL};
        char err[256] = "";
        uint8_t *req, *out = NULL;
        size_t len, olen;

        /* a container request without device IDs */
        req = pack_allocate(containers, &len);
        CHECK_INT(
                dp_handle_allocate(&cfg, DP_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "no device IDs"));
        free(req);

        /* no container requests at all (zero bytes) */
        err[0] = '\0';
        req = pack_allocate(no_containers, &len);
        CHECK_INT(len, 0);
        CHECK_INT(
                dp_handle_allocate(&cfg, DP_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "no container requests"));
        CHECK(out == NULL);
        free(req);
}

static void test_deviceplugin_allocate_rejects_garbage(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        static const uint8_t garbage[][6] = {
                {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* endless varint */
                {0x0a, 0x50, 0x0a, 0x02, 'x', 'y'},   /* length past the end */
                {0x0b, 0x00, 0x00, 0x00, 0x00, 0x00}, /* start-group wire type */
        };
        char err[256];
        uint8_t *out = NULL;
        size_t olen;

        for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
                err[0] = '\0';
                CHECK_INT(dp_handle_allocate(&cfg, DP_KIND_DCAP, &d, garbage[i], 6, &out, &olen,
                                             err, sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
                CHECK(strstr(err, "undecodable"));
                CHECK_INT(dp_handle_preferred(&cfg, DP_KIND_DCAP, garbage[i], 6, &out, &olen, err,
                                              sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
                CHECK_INT(dp_handle_prestart(&cfg, DP_KIND_DCAP, garbage[i], 6, &out, &olen, err,
                                             sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
        }
        CHECK(out == NULL);
}

static void test_deviceplugin_allocate_absent_is_failed_precondition(void) {
        struct dp_config cfg = cfg_default();
        struct discovery e = node_empty(), prov_only = node_empty();

        set_node(&prov_only.dcap_provision, "/dev/sgx_provision", 10, 126);
        check_rejected(&cfg, DP_KIND_SGX, &e, "sgx-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present on this node for resource sgx.k8s.io/sgx");
        check_rejected(&cfg, DP_KIND_DCAP, &e, "dcap-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present on this node for resource sgx.k8s.io/dcap");
        check_rejected(&cfg, DP_KIND_IAS, &e, "ias-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/ias");
        check_rejected(&cfg, DP_KIND_SGX, &prov_only, "sgx-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/sgx");
        check_rejected(&cfg, DP_KIND_PROVISION, &prov_only, "provision-0",
                       GRPC_STATUS_FAILED_PRECONDITION, "sgx.k8s.io/provision");
}

/* ---- options, PreStartContainer ---- */

static void test_deviceplugin_options(void) {
        V1beta1__DevicePluginOptions *o;
        uint8_t *buf = NULL;
        size_t len = 99;

        CHECK_INT(dp_encode_options(&buf, &len), 0);
        CHECK(buf);
        o = v1beta1__device_plugin_options__unpack(NULL, len, buf);
        CHECK(o);
        if (o) {
                CHECK(!o->pre_start_required);
                CHECK(!o->get_preferred_allocation_available);
                v1beta1__device_plugin_options__free_unpacked(o, NULL);
        }
        free(buf);
}

static enum grpc_status prestart(const struct dp_config *cfg, enum dp_kind k,
                                 const char *const *ids, char *err, size_t errsz) {
        V1beta1__PreStartContainerRequest req = V1BETA1__PRE_START_CONTAINER_REQUEST__INIT;
        V1beta1__PreStartContainerResponse *resp;
        enum grpc_status st;
        uint8_t buf[256], *out = NULL;
        size_t len, olen = 99;

        while (ids[req.n_devices_ids])
                req.n_devices_ids++;
        req.devices_ids = (char **) ids;
        len = v1beta1__pre_start_container_request__pack(&req, buf);
        st = dp_handle_prestart(cfg, k, buf, len, &out, &olen, err, errsz);
        if (st == GRPC_STATUS_OK) {
                CHECK_INT(olen, 0);
                resp = v1beta1__pre_start_container_response__unpack(NULL, olen, out);
                CHECK(resp);
                if (resp)
                        v1beta1__pre_start_container_response__free_unpacked(resp, NULL);
                free(out);
        } else {
                CHECK(out == NULL);
        }
        return st;
}

static void test_deviceplugin_prestart(void) {
        struct dp_config cfg = cfg_default();
        const char *good[] = {"sgx-0", "sgx-109", NULL}, *bad[] = {"sgx-1", "sgx-110", NULL};
        const char *wrong[] = {"ias-1", NULL};
        char err[256] = "";

        CHECK_INT(prestart(&cfg, DP_KIND_SGX, good, err, sizeof(err)), GRPC_STATUS_OK);
        CHECK_INT(prestart(&cfg, DP_KIND_SGX, bad, err, sizeof(err)), GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"sgx-110\""));
        CHECK_INT(prestart(&cfg, DP_KIND_SGX, wrong, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "sgx.k8s.io/sgx"));
}

/* ---- GetPreferredAllocation ---- */

struct pref_case {
        const char *const *available;
        const char *const *must;
        int size;
};

static size_t count(const char *const *v) {
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

/* Runs one request of |n| containers; on OK returns the decoded answer in *ret. */
static enum grpc_status preferred(const struct dp_config *cfg, enum dp_kind k,
                                  const struct pref_case *cases, size_t n,
                                  V1beta1__PreferredAllocationResponse **ret, char *err,
                                  size_t errsz) {
        V1beta1__PreferredAllocationRequest req = V1BETA1__PREFERRED_ALLOCATION_REQUEST__INIT;
        V1beta1__ContainerPreferredAllocationRequest c[4], *cp[4];
        enum grpc_status st;
        uint8_t *buf, *out = NULL;
        size_t len, olen;

        for (size_t i = 0; i < n; i++) {
                v1beta1__container_preferred_allocation_request__init(&c[i]);
                c[i].n_available_deviceids = count(cases[i].available);
                c[i].available_deviceids = (char **) cases[i].available;
                c[i].n_must_include_deviceids = count(cases[i].must);
                c[i].must_include_deviceids = (char **) cases[i].must;
                c[i].allocation_size = cases[i].size;
                cp[i] = &c[i];
        }
        req.n_container_requests = n;
        req.container_requests = cp;
        buf = malloc(v1beta1__preferred_allocation_request__get_packed_size(&req) + 1);
        len = v1beta1__preferred_allocation_request__pack(&req, buf);
        st = dp_handle_preferred(cfg, k, buf, len, &out, &olen, err, errsz);
        free(buf);
        *ret = NULL;
        if (st == GRPC_STATUS_OK) {
                *ret = v1beta1__preferred_allocation_response__unpack(NULL, olen, out);
                CHECK(*ret);
                free(out);
        } else {
                CHECK(out == NULL);
        }
        return st;
}

static void check_ids(const V1beta1__ContainerPreferredAllocationResponse *c,
                      const char *const *want) {
        CHECK_INT(c->n_deviceids, count(want));
        for (size_t i = 0; i < c->n_deviceids && i < count(want); i++)
                CHECK_STR(c->deviceids[i], want[i]);
}

static void test_deviceplugin_preferred_fills_from_available(void) {
        struct dp_config cfg = cfg_default();
        const char *avail[] = {"dcap-5", "dcap-3", "dcap-9", "dcap-1", NULL};
        const char *want[] = {"dcap-5", "dcap-3", NULL};
        struct pref_case c = {avail, NULL, 2};
        V1beta1__PreferredAllocationResponse *r;
        char err[256];

        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &c, 1, &r, err, sizeof(err)), GRPC_STATUS_OK);
        if (!r)
                return;
        CHECK_INT(r->n_container_responses, 1);
        if (r->n_container_responses == 1)
                check_ids(r->container_responses[0], want);
        v1beta1__preferred_allocation_response__free_unpacked(r, NULL);
}

static void test_deviceplugin_preferred_must_include_first_deduplicated(void) {
        struct dp_config cfg = cfg_default();
        const char *avail[] = {"sgx-1", "sgx-2", "sgx-7", "sgx-3", "sgx-4", NULL};
        const char *must[] = {"sgx-7", "sgx-3", "sgx-7", NULL};
        const char *want[] = {"sgx-7", "sgx-3", "sgx-1", "sgx-2", NULL};
        const char *avail2[] = {"sgx-8", "sgx-8", "sgx-9", NULL};
        const char *want2[] = {"sgx-8", "sgx-9", NULL};
        const char *want_all[] = {"sgx-7", "sgx-3", "sgx-1", "sgx-2", "sgx-4", NULL};
        struct pref_case c[] = {{avail, must, 4}, {avail2, NULL, 3}, {avail, must, 5}};
        V1beta1__PreferredAllocationResponse *r;
        char err[256];

        CHECK_INT(preferred(&cfg, DP_KIND_SGX, c, 3, &r, err, sizeof(err)), GRPC_STATUS_OK);
        if (!r)
                return;
        CHECK_INT(r->n_container_responses, 3);
        if (r->n_container_responses == 3) {
                check_ids(r->container_responses[0], want);
                /* duplicates in available never give one slot twice */
                check_ids(r->container_responses[1], want2);
                /* the slots chosen for one container do not leak into the next */
                check_ids(r->container_responses[2], want_all);
        }
        v1beta1__preferred_allocation_response__free_unpacked(r, NULL);
}

static void test_deviceplugin_preferred_size_zero(void) {
        struct dp_config cfg = cfg_default();
        const char *avail[] = {"ias-1", NULL};
        const char *none[] = {NULL};
        struct pref_case c = {avail, NULL, 0};
        V1beta1__PreferredAllocationResponse *r;
        char err[256];

        CHECK_INT(preferred(&cfg, DP_KIND_IAS, &c, 1, &r, err, sizeof(err)), GRPC_STATUS_OK);
        if (!r)
                return;
        CHECK_INT(r->n_container_responses, 1);
        if (r->n_container_responses == 1)
                check_ids(r->container_responses[0], none);
        v1beta1__preferred_allocation_response__free_unpacked(r, NULL);
}

static void test_deviceplugin_preferred_rejects_bad_sizes(void) {
        struct dp_config cfg = cfg_default();
        const char *avail[] = {"dcap-1", "dcap-2", NULL};
        const char *must[] = {"dcap-1", "dcap-2", NULL};
        struct pref_case too_big = {avail, NULL, 3}, below_must = {avail, must, 1},
                         negative = {avail, NULL, -1};
        V1beta1__PreferredAllocationResponse *r;
        char err[256] = "";

        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &too_big, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "allocation_size 3"));
        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &below_must, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "allocation_size 1"));
        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &negative, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, NULL, 0, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
}

static void test_deviceplugin_preferred_rejects_bad_ids(void) {
        struct dp_config cfg = cfg_default();
        const char *avail[] = {"dcap-1", "dcap-02", NULL};
        const char *good[] = {"dcap-1", "dcap-2", NULL};
        const char *must[] = {"sgx-1", NULL};
        struct pref_case bad_avail = {avail, NULL, 1}, bad_must = {good, must, 1};
        V1beta1__PreferredAllocationResponse *r;
        char err[256] = "";

        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &bad_avail, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"dcap-02\""));
        CHECK(strstr(err, "sgx.k8s.io/dcap"));
        CHECK_INT(preferred(&cfg, DP_KIND_DCAP, &bad_must, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"sgx-1\""));
}

/* ---- ListAndWatch lists ---- */

/* Encodes and decodes a list; checks every ID and health. Returns the encoded size. */
static size_t check_list(const struct dp_config *cfg, enum dp_kind k, enum dp_health h) {
        V1beta1__ListAndWatchResponse *l;
        uint8_t *buf = NULL;
        size_t len = 0, want_n = h == DP_HEALTH_NONE ? 0 : cfg->max_pods;

        CHECK_INT(dp_encode_list(cfg, k, h, &buf, &len), 0);
        CHECK(buf);
        l = v1beta1__list_and_watch_response__unpack(NULL, len, buf);
        CHECK(l);
        if (l) {
                size_t bad = 0;

                CHECK_INT(l->n_devices, want_n);
                for (size_t i = 0; i < l->n_devices; i++) {
                        char id[32];

                        snprintf(id, sizeof(id), "%s-%zu", dp_kind_name(k), i);
                        if (strcmp(l->devices[i]->id, id) != 0 ||
                            strcmp(l->devices[i]->health, dp_health_name(h)) != 0 ||
                            l->devices[i]->topology)
                                bad++;
                }
                CHECK_INT(bad, 0);
                v1beta1__list_and_watch_response__free_unpacked(l, NULL);
        }
        free(buf);
        return len;
}

static void test_deviceplugin_list_healthy(void) {
        struct dp_config cfg = cfg_default();

        for (int k = 0; k < DP_KIND_MAX; k++)
                check_list(&cfg, k, DP_HEALTH_HEALTHY);
        cfg.max_pods = 1;
        check_list(&cfg, DP_KIND_DCAP, DP_HEALTH_HEALTHY);
}

static void test_deviceplugin_list_unhealthy(void) {
        struct dp_config cfg = cfg_default();

        for (int k = 0; k < DP_KIND_MAX; k++)
                check_list(&cfg, k, DP_HEALTH_UNHEALTHY);
}

static void test_deviceplugin_list_none_is_empty(void) {
        struct dp_config cfg = cfg_default();

        for (int k = 0; k < DP_KIND_MAX; k++)
                CHECK_INT(check_list(&cfg, k, DP_HEALTH_NONE), 0);
}

static void test_deviceplugin_list_100000_under_limit(void) {
        struct dp_config cfg = cfg_default();

        cfg.max_pods = 100000;
        /* the longest kind with the longest health is the largest list */
        CHECK(check_list(&cfg, DP_KIND_PROVISION, DP_HEALTH_UNHEALTHY) < DP_LIST_LIMIT);
        CHECK(check_list(&cfg, DP_KIND_SGX, DP_HEALTH_HEALTHY) < DP_LIST_LIMIT);
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_deviceplugin_list_10000_is_fast(void) {
        struct dp_config cfg = cfg_default();
        uint8_t *buf;
        size_t len;
        double t0, dt;

        cfg.max_pods = 10000;
        t0 = now_sec();
        for (int i = 0; i < 10; i++) {
                CHECK_INT(dp_encode_list(&cfg, DP_KIND_DCAP, DP_HEALTH_HEALTHY, &buf, &len), 0);
                free(buf);
        }
        dt = (now_sec() - t0) / 10;
        /* a few hundred microseconds in practice; generous for sanitizers and loaded machines */
        if (dt > 0.05)
                fprintf(stderr, "  encoding 10000 slots took %.3f s\n", dt);
        CHECK(dt < 0.05);
}

int main(void) {
        RUN(test_deviceplugin_names);
        RUN(test_deviceplugin_kind_present);
        RUN(test_deviceplugin_allocate_in_kernel);
        RUN(test_deviceplugin_allocate_dcap_driver_dir);
        RUN(test_deviceplugin_allocate_legacy_sgx);
        RUN(test_deviceplugin_allocate_ias_only);
        RUN(test_deviceplugin_allocate_sgx_prefers_dcap);
        RUN(test_deviceplugin_allocate_no_provision);
        RUN(test_deviceplugin_allocate_enclave_without_provision_device);
        RUN(test_deviceplugin_allocate_provision_resource);
        RUN(test_deviceplugin_allocate_aesmd_mount);
        RUN(test_deviceplugin_allocate_one_answer_per_container);
        RUN(test_deviceplugin_allocate_rejects_unknown_ids);
        RUN(test_deviceplugin_allocate_rejects_wrong_resource_ids);
        RUN(test_deviceplugin_allocate_rejects_one_bad_id_among_good);
        RUN(test_deviceplugin_allocate_garbled_id_is_sanitized);
        RUN(test_deviceplugin_allocate_rejects_empty_request);
        RUN(test_deviceplugin_allocate_rejects_garbage);
        RUN(test_deviceplugin_allocate_absent_is_failed_precondition);
        RUN(test_deviceplugin_options);
        RUN(test_deviceplugin_prestart);
        RUN(test_deviceplugin_preferred_fills_from_available);
        RUN(test_deviceplugin_preferred_must_include_first_deduplicated);
        RUN(test_deviceplugin_preferred_size_zero);
        RUN(test_deviceplugin_preferred_rejects_bad_sizes);
        RUN(test_deviceplugin_preferred_rejects_bad_ids);
        RUN(test_deviceplugin_list_healthy);
        RUN(test_deviceplugin_list_unhealthy);
        RUN(test_deviceplugin_list_none_is_empty);
        RUN(test_deviceplugin_list_100000_under_limit);
        RUN(test_deviceplugin_list_10000_is_fast);
        return unit_done();
}
