/*
 * test_deviceplugin.c - the pure DevicePlugin handlers of deviceplugin.c, without sockets: device
 * lists, options, Allocate for every device layout, GetPreferredAllocation and PreStartContainer.
 * Answers are decoded with protobuf-c and checked field by field. Node states are built in C.
 * Then the service on a temp socket, driven through a small nghttp2 client in this file: unary
 * calls, ListAndWatch pushes on health changes, streams ended by the peer, relisten and free.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "api.pb-c.h"
#include "deviceplugin.h"
#include "discovery.h"
#include "log.h"
#include "loop.h"
#include "fake_nodes.h"
#include "unit.h"

/* ---- fixtures ---- */

static struct dp_config cfg_default(void) {
        return (struct dp_config){
                .domain = "sgx.k8s.io",
                .slots = 110,
                .edits = {.provision = true, .aesmd_dir = NULL},
        };
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
static enum grpc_status allocate_ids(const struct dp_config *cfg, enum sgx_kind k,
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

static enum grpc_status allocate_one(const struct dp_config *cfg, enum sgx_kind k,
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
static void check_allocate(const struct dp_config *cfg, enum sgx_kind k, const struct discovery *d,
                           const char *const *want) {
        V1beta1__AllocateResponse *resp;
        char id[32];

        snprintf(id, sizeof(id), "%s-0", sgx_kind_name(k));
        CHECK_INT(allocate_one(cfg, k, d, id, &resp), GRPC_STATUS_OK);
        if (!resp)
                return;
        CHECK_INT(resp->n_container_responses, 1);
        if (resp->n_container_responses == 1) {
                check_specs(resp->container_responses[0], want);
                CHECK_INT(resp->container_responses[0]->n_mounts, cfg->edits.aesmd_dir ? 1 : 0);
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
}

static void check_rejected(const struct dp_config *cfg, enum sgx_kind k, const struct discovery *d,
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

        CHECK_STR(sgx_kind_name(SGX_KIND_SGX), "sgx");
        CHECK_STR(sgx_kind_name(SGX_KIND_DCAP), "dcap");
        CHECK_STR(sgx_kind_name(SGX_KIND_IAS), "ias");
        CHECK_STR(sgx_kind_name(SGX_KIND_PROVISION), "provision");
        CHECK_INT(sgx_resource_name(cfg.domain, SGX_KIND_DCAP, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/dcap");
        cfg.domain = "example.com";
        CHECK_INT(sgx_resource_name(cfg.domain, SGX_KIND_PROVISION, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "example.com/provision");
        CHECK_INT(sgx_resource_name(cfg.domain, SGX_KIND_SGX, tiny, sizeof(tiny)), -ENAMETOOLONG);
        CHECK_STR(dp_health_name(DP_HEALTH_HEALTHY), "Healthy");
        CHECK_STR(dp_health_name(DP_HEALTH_UNHEALTHY), "Unhealthy");
}

static void test_deviceplugin_kind_present(void) {
        struct discovery k = node_in_kernel(), i = node_ias(), e = node_empty();
        struct discovery no_prov = node_in_kernel(), prov_only = node_empty();

        memset(&no_prov.dcap_provision, 0, sizeof(no_prov.dcap_provision));
        set_node(&prov_only.dcap_provision, "/dev/sgx_provision", 10, 126);

        CHECK(sgx_kind_present(SGX_KIND_SGX, &k));
        CHECK(sgx_kind_present(SGX_KIND_DCAP, &k));
        CHECK(!sgx_kind_present(SGX_KIND_IAS, &k));
        CHECK(sgx_kind_present(SGX_KIND_PROVISION, &k));

        CHECK(sgx_kind_present(SGX_KIND_SGX, &i));
        CHECK(!sgx_kind_present(SGX_KIND_DCAP, &i));
        CHECK(sgx_kind_present(SGX_KIND_IAS, &i));
        CHECK(!sgx_kind_present(SGX_KIND_PROVISION, &i));

        CHECK(sgx_kind_present(SGX_KIND_DCAP, &no_prov));
        CHECK(!sgx_kind_present(SGX_KIND_PROVISION, &no_prov));

        /* a provisioning device without an enclave device is no SGX */
        for (int kind = 0; kind < SGX_KIND_MAX; kind++) {
                CHECK(!sgx_kind_present(kind, &prov_only));
                CHECK(!sgx_kind_present(kind, &e));
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

        check_allocate(&cfg, SGX_KIND_DCAP, &d, want);
        check_allocate(&cfg, SGX_KIND_SGX, &d, want);
}

static void test_deviceplugin_allocate_dcap_driver_dir(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_dcap_dir();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx/enclave",
                              "/dev/sgx/enclave=/dev/sgx/enclave",
                              "/dev/sgx_provision=/dev/sgx/provision",
                              "/dev/sgx/provision=/dev/sgx/provision", NULL};

        check_allocate(&cfg, SGX_KIND_DCAP, &d, want);
        check_allocate(&cfg, SGX_KIND_SGX, &d, want);
}

static void test_deviceplugin_allocate_legacy_sgx(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_legacy();
        const char *want[] = {"/dev/sgx=/dev/sgx", "/dev/sgx_prv=/dev/sgx_prv", NULL};
        const char *want_noprov[] = {"/dev/sgx=/dev/sgx", NULL};

        check_allocate(&cfg, SGX_KIND_DCAP, &d, want);
        check_allocate(&cfg, SGX_KIND_SGX, &d, want);
        cfg.edits.provision = false;
        check_allocate(&cfg, SGX_KIND_DCAP, &d, want_noprov);
}

static void test_deviceplugin_allocate_ias_only(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_ias();
        const char *want[] = {"/dev/isgx=/dev/isgx", NULL};

        check_allocate(&cfg, SGX_KIND_IAS, &d, want);
        check_allocate(&cfg, SGX_KIND_SGX, &d, want);
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "dcap-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/dcap");
        check_rejected(&cfg, SGX_KIND_PROVISION, &d, "provision-0", GRPC_STATUS_FAILED_PRECONDITION,
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
        check_allocate(&cfg, SGX_KIND_SGX, &d, want_sgx);
        check_allocate(&cfg, SGX_KIND_IAS, &d, want_ias);
}

static void test_deviceplugin_allocate_no_provision(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave", NULL};
        const char *want_prov[] = {"/dev/sgx_provision=/dev/sgx_provision",
                                   "/dev/sgx/provision=/dev/sgx_provision", NULL};

        cfg.edits.provision = false;
        check_allocate(&cfg, SGX_KIND_DCAP, &d, want);
        check_allocate(&cfg, SGX_KIND_SGX, &d, want);
        /* the provision resource maps its device whatever --no-provision says */
        check_allocate(&cfg, SGX_KIND_PROVISION, &d, want_prov);
}

static void test_deviceplugin_allocate_enclave_without_provision_device(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave", NULL};

        memset(&d.dcap_provision, 0, sizeof(d.dcap_provision));
        check_allocate(&cfg, SGX_KIND_DCAP, &d, want);
        check_rejected(&cfg, SGX_KIND_PROVISION, &d, "provision-0", GRPC_STATUS_FAILED_PRECONDITION,
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

        check_allocate(&cfg, SGX_KIND_PROVISION, &k, want_k);
        check_allocate(&cfg, SGX_KIND_PROVISION, &dir, want_dir);
        check_allocate(&cfg, SGX_KIND_PROVISION, &leg, want_leg);
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

        cfg.edits.aesmd_dir = "/var/run/aesmd";
        req = pack_allocate(containers, &len);
        CHECK_INT(
                dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
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
                dp_handle_allocate(&cfg, SGX_KIND_IAS, &d, req, len, &out, &olen, err, sizeof(err)),
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
                check_rejected(&cfg, SGX_KIND_DCAP, &d, bad[i], GRPC_STATUS_INVALID_ARGUMENT, want);
                check_rejected(&cfg, SGX_KIND_DCAP, &d, bad[i], GRPC_STATUS_INVALID_ARGUMENT,
                               "sgx.k8s.io/dcap");
        }
        /* the edges are IDs */
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "dcap-0", GRPC_STATUS_OK, NULL);
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "dcap-109", GRPC_STATUS_OK, NULL);
        cfg.slots = 100000;
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "dcap-99999", GRPC_STATUS_OK, NULL);
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "dcap-100000", GRPC_STATUS_INVALID_ARGUMENT,
                       "dcap-100000");
}

static void test_deviceplugin_allocate_rejects_wrong_resource_ids(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();

        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        check_rejected(&cfg, SGX_KIND_DCAP, &d, "sgx-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "\"sgx-1\" for resource sgx.k8s.io/dcap");
        check_rejected(&cfg, SGX_KIND_SGX, &d, "dcap-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "\"dcap-1\" for resource sgx.k8s.io/sgx");
        check_rejected(&cfg, SGX_KIND_IAS, &d, "sgx-1", GRPC_STATUS_INVALID_ARGUMENT,
                       "sgx.k8s.io/ias");
        check_rejected(&cfg, SGX_KIND_PROVISION, &d, "dcap-1", GRPC_STATUS_INVALID_ARGUMENT,
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
                dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
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
        CHECK_INT(allocate_ids(&cfg, SGX_KIND_DCAP, &d, ids, &resp, err, sizeof(err)),
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
                dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
                GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "no device IDs"));
        free(req);

        /* no container requests at all (zero bytes) */
        err[0] = '\0';
        req = pack_allocate(no_containers, &len);
        CHECK_INT(len, 0);
        CHECK_INT(
                dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, req, len, &out, &olen, err, sizeof(err)),
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
                CHECK_INT(dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, garbage[i], 6, &out, &olen,
                                             err, sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
                CHECK(strstr(err, "undecodable"));
                CHECK_INT(dp_handle_preferred(&cfg, SGX_KIND_DCAP, garbage[i], 6, &out, &olen, err,
                                              sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
                CHECK_INT(dp_handle_prestart(&cfg, SGX_KIND_DCAP, garbage[i], 6, &out, &olen, err,
                                             sizeof(err)),
                          GRPC_STATUS_INVALID_ARGUMENT);
        }
        CHECK(out == NULL);
}

static void test_deviceplugin_allocate_absent_is_failed_precondition(void) {
        struct dp_config cfg = cfg_default();
        struct discovery e = node_empty(), prov_only = node_empty();

        set_node(&prov_only.dcap_provision, "/dev/sgx_provision", 10, 126);
        check_rejected(&cfg, SGX_KIND_SGX, &e, "sgx-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present on this node for resource sgx.k8s.io/sgx");
        check_rejected(&cfg, SGX_KIND_DCAP, &e, "dcap-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present on this node for resource sgx.k8s.io/dcap");
        check_rejected(&cfg, SGX_KIND_IAS, &e, "ias-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/ias");
        check_rejected(&cfg, SGX_KIND_SGX, &prov_only, "sgx-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/sgx");
        check_rejected(&cfg, SGX_KIND_PROVISION, &prov_only, "provision-0",
                       GRPC_STATUS_FAILED_PRECONDITION, "sgx.k8s.io/provision");
}

/* ---- Allocate with --cdi ---- */

/*
 * Allocates "<kind>-0" (and "<kind>-1" in a second container) with --cdi and checks that each
 * container gets exactly the CDI device |want| and no DeviceSpec, Mount or Env: the spec holds
 * them.
 */
static void check_cdi(const struct dp_config *cfg, enum sgx_kind k, const struct discovery *d,
                      const char *want) {
        char id0[32], id1[32], err[256];
        const char *c1[] = {id0, NULL}, *c2[] = {id1, NULL};
        const char *const *containers[] = {c1, c2, NULL};
        V1beta1__AllocateResponse *resp;
        uint8_t *req, *out = NULL;
        size_t len, olen = 0;

        snprintf(id0, sizeof(id0), "%s-0", sgx_kind_name(k));
        snprintf(id1, sizeof(id1), "%s-1", sgx_kind_name(k));
        req = pack_allocate(containers, &len);
        CHECK_INT(dp_handle_allocate(cfg, k, d, req, len, &out, &olen, err, sizeof(err)),
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

                CHECK_INT(c->n_cdi_devices, 1);
                if (c->n_cdi_devices == 1)
                        CHECK_STR(c->cdi_devices[0]->name, want);
                CHECK_INT(c->n_devices, 0);
                CHECK_INT(c->n_mounts, 0);
                CHECK_INT(c->n_envs, 0);
                CHECK_INT(c->n_annotations, 0);
        }
        v1beta1__allocate_response__free_unpacked(resp, NULL);
}

static void test_deviceplugin_allocate_cdi_names_the_device(void) {
        struct dp_config cfg = cfg_default();
        struct discovery inkernel = node_in_kernel(), dir = node_dcap_dir(), legacy = node_legacy(),
                         ias = node_ias(), both = node_in_kernel();

        cfg.cdi = true;
        set_node(&both.ias_enclave, "/dev/isgx", 10, 57);
        check_cdi(&cfg, SGX_KIND_SGX, &inkernel, "sgx.k8s.io/sgx=dcap");
        check_cdi(&cfg, SGX_KIND_DCAP, &inkernel, "sgx.k8s.io/sgx=dcap");
        check_cdi(&cfg, SGX_KIND_DCAP, &dir, "sgx.k8s.io/sgx=dcap");
        check_cdi(&cfg, SGX_KIND_DCAP, &legacy, "sgx.k8s.io/sgx=dcap");
        check_cdi(&cfg, SGX_KIND_PROVISION, &inkernel, "sgx.k8s.io/sgx=provision");
        check_cdi(&cfg, SGX_KIND_SGX, &ias, "sgx.k8s.io/sgx=ias");
        check_cdi(&cfg, SGX_KIND_IAS, &ias, "sgx.k8s.io/sgx=ias");
        check_cdi(&cfg, SGX_KIND_SGX, &both, "sgx.k8s.io/sgx=dcap");
        check_cdi(&cfg, SGX_KIND_IAS, &both, "sgx.k8s.io/sgx=ias");
}

static void test_deviceplugin_allocate_cdi_no_provision_and_domain(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();

        cfg.cdi = true;
        cfg.edits.provision = false;
        cfg.edits.aesmd_dir = "/var/run/aesmd"; /* in the spec, not in the answer */
        cfg.domain = "example.com";
        check_cdi(&cfg, SGX_KIND_SGX, &d, "example.com/sgx=dcap-noprovision");
        check_cdi(&cfg, SGX_KIND_DCAP, &d, "example.com/sgx=dcap-noprovision");
}

static void test_deviceplugin_allocate_cdi_absent_is_failed_precondition(void) {
        struct dp_config cfg = cfg_default();
        struct discovery e = node_empty(), ias = node_ias();

        cfg.cdi = true;
        check_rejected(&cfg, SGX_KIND_SGX, &e, "sgx-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "no SGX device present on this node for resource sgx.k8s.io/sgx");
        check_rejected(&cfg, SGX_KIND_DCAP, &ias, "dcap-0", GRPC_STATUS_FAILED_PRECONDITION,
                       "sgx.k8s.io/dcap");
        /* IDs are checked first, as without --cdi */
        check_rejected(&cfg, SGX_KIND_IAS, &ias, "ias-110", GRPC_STATUS_INVALID_ARGUMENT, NULL);
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

static enum grpc_status prestart(const struct dp_config *cfg, enum sgx_kind k,
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

        CHECK_INT(prestart(&cfg, SGX_KIND_SGX, good, err, sizeof(err)), GRPC_STATUS_OK);
        CHECK_INT(prestart(&cfg, SGX_KIND_SGX, bad, err, sizeof(err)), GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"sgx-110\""));
        CHECK_INT(prestart(&cfg, SGX_KIND_SGX, wrong, err, sizeof(err)),
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
static enum grpc_status preferred(const struct dp_config *cfg, enum sgx_kind k,
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

        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &c, 1, &r, err, sizeof(err)), GRPC_STATUS_OK);
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

        CHECK_INT(preferred(&cfg, SGX_KIND_SGX, c, 3, &r, err, sizeof(err)), GRPC_STATUS_OK);
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

        CHECK_INT(preferred(&cfg, SGX_KIND_IAS, &c, 1, &r, err, sizeof(err)), GRPC_STATUS_OK);
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

        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &too_big, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "allocation_size 3"));
        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &below_must, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "allocation_size 1"));
        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &negative, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, NULL, 0, &r, err, sizeof(err)),
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

        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &bad_avail, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"dcap-02\""));
        CHECK(strstr(err, "sgx.k8s.io/dcap"));
        CHECK_INT(preferred(&cfg, SGX_KIND_DCAP, &bad_must, 1, &r, err, sizeof(err)),
                  GRPC_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(err, "\"sgx-1\""));
}

/* ---- ListAndWatch lists ---- */

/* Encodes and decodes a list; checks every ID and health. Returns the encoded size. */
static size_t check_list(const struct dp_config *cfg, enum sgx_kind k, enum dp_health h) {
        V1beta1__ListAndWatchResponse *l;
        uint8_t *buf = NULL;
        size_t len = 0, want_n = h == DP_HEALTH_NONE ? 0 : cfg->slots;

        CHECK_INT(dp_encode_list(cfg, k, h, &buf, &len), 0);
        CHECK(buf);
        l = v1beta1__list_and_watch_response__unpack(NULL, len, buf);
        CHECK(l);
        if (l) {
                size_t bad = 0;

                CHECK_INT(l->n_devices, want_n);
                for (size_t i = 0; i < l->n_devices; i++) {
                        char id[32];

                        snprintf(id, sizeof(id), "%s-%zu", sgx_kind_name(k), i);
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

        for (int k = 0; k < SGX_KIND_MAX; k++)
                check_list(&cfg, k, DP_HEALTH_HEALTHY);
        cfg.slots = 1;
        check_list(&cfg, SGX_KIND_DCAP, DP_HEALTH_HEALTHY);
}

static void test_deviceplugin_list_unhealthy(void) {
        struct dp_config cfg = cfg_default();

        for (int k = 0; k < SGX_KIND_MAX; k++)
                check_list(&cfg, k, DP_HEALTH_UNHEALTHY);
}

static void test_deviceplugin_list_none_is_empty(void) {
        struct dp_config cfg = cfg_default();

        for (int k = 0; k < SGX_KIND_MAX; k++)
                CHECK_INT(check_list(&cfg, k, DP_HEALTH_NONE), 0);
}

static void test_deviceplugin_list_100000_under_limit(void) {
        struct dp_config cfg = cfg_default();

        cfg.slots = 100000;
        /* the longest kind with the longest health is the largest list */
        CHECK(check_list(&cfg, SGX_KIND_PROVISION, DP_HEALTH_UNHEALTHY) < DP_LIST_LIMIT);
        CHECK(check_list(&cfg, SGX_KIND_SGX, DP_HEALTH_HEALTHY) < DP_LIST_LIMIT);
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

        cfg.slots = 10000;
        t0 = now_sec();
        for (int i = 0; i < 10; i++) {
                CHECK_INT(dp_encode_list(&cfg, SGX_KIND_DCAP, DP_HEALTH_HEALTHY, &buf, &len), 0);
                free(buf);
        }
        dt = (now_sec() - t0) / 10;
        /* a few hundred microseconds in practice; generous for sanitizers and loaded machines */
        if (dt > 0.05)
                fprintf(stderr, "  encoding 10000 slots took %.3f s\n", dt);
        CHECK(dt < 0.05);
}

/* ---- the service, over a socket ---- */

#define TC_MAX_STREAMS 8

/* One call of the test client: the request body, the gRPC messages and status received. */
struct tstream {
        int32_t id;
        uint8_t body[512];
        size_t body_len, body_off;
        uint8_t *rx; /* bytes of an unfinished gRPC message */
        size_t rx_len;
        size_t n_msgs;
        uint8_t *last; /* the last whole message */
        size_t last_len;
        int status; /* grpc-status, -1 until the trailers come */
        char message[256];
        bool closed;
};

/* A minimal HTTP/2 gRPC client on the test's loop. */
struct tclient {
        int fd;
        nghttp2_session *session;
        struct loop_source *src;
        struct tstream streams[TC_MAX_STREAMS];
        size_t n_streams;
        bool eof;
};

static struct tstream *tc_stream(struct tclient *c, int32_t id) {
        for (size_t i = 0; i < c->n_streams; i++)
                if (c->streams[i].id == id)
                        return &c->streams[i];
        return NULL;
}

static ssize_t tc_on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                          void *user_data) {
        struct tclient *c = user_data;
        size_t off = 0;

        while (off < length) {
                ssize_t n = send(c->fd, data + off, length - off, MSG_NOSIGNAL);

                if (n < 0)
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                off += (size_t) n;
        }
        return (ssize_t) length;
}

static int tc_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                      const uint8_t *data, size_t len, void *user_data) {
        struct tstream *t = tc_stream(user_data, stream_id);
        uint8_t *rx;

        if (!t)
                return 0;
        rx = realloc(t->rx, t->rx_len + len);
        if (!rx)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        memcpy(rx + t->rx_len, data, len);
        t->rx = rx;
        t->rx_len += len;
        while (t->rx_len >= 5) {
                size_t mlen = (size_t) t->rx[1] << 24 | (size_t) t->rx[2] << 16 |
                              (size_t) t->rx[3] << 8 | t->rx[4];

                if (t->rx_len < 5 + mlen)
                        break;
                free(t->last);
                t->last = malloc(mlen + 1);
                memcpy(t->last, t->rx + 5, mlen);
                t->last_len = mlen;
                t->n_msgs++;
                memmove(t->rx, t->rx + 5 + mlen, t->rx_len - 5 - mlen);
                t->rx_len -= 5 + mlen;
        }
        return 0;
}

static int tc_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data) {
        struct tstream *t = tc_stream(user_data, frame->hd.stream_id);

        if (!t)
                return 0;
        if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
                t->status = atoi((const char *) value);
        else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
                snprintf(t->message, sizeof(t->message), "%.*s", (int) valuelen,
                         (const char *) value);
        return 0;
}

static int tc_on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                       void *user_data) {
        struct tstream *t = tc_stream(user_data, stream_id);

        if (t)
                t->closed = true;
        return 0;
}

static ssize_t tc_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data) {
        struct tstream *t = source->ptr;
        size_t n = t->body_len - t->body_off;

        if (n > length)
                n = length;
        memcpy(buf, t->body + t->body_off, n);
        t->body_off += n;
        if (t->body_off == t->body_len)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
}

static void tc_flush(struct tclient *c) {
        CHECK_INT(nghttp2_session_send(c->session), 0);
}

/* The connection is gone: every call on it has ended. */
static void tc_eof(struct tclient *c) {
        c->eof = true;
        c->src = loop_source_free(c->src);
        for (size_t i = 0; i < c->n_streams; i++)
                c->streams[i].closed = true;
}

static void tc_on_io(struct loop_source *s, int fd, uint32_t events, void *userdata) {
        struct tclient *c = userdata;
        uint8_t buf[16384];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        tc_eof(c);
                        return;
                }
                if (n < 0)
                        break;
                if (nghttp2_session_mem_recv(c->session, buf, (size_t) n) < 0) {
                        tc_eof(c);
                        return;
                }
        }
        tc_flush(c);
}

static int tc_connect(struct loop *l, const char *path, struct tclient *c) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        nghttp2_session_callbacks *cbs;
        nghttp2_settings_entry window = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20};

        memset(c, 0, sizeof(*c));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, tc_on_send);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, tc_on_data);
        nghttp2_session_callbacks_set_on_header_callback(cbs, tc_on_header);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, tc_on_close);
        nghttp2_session_client_new(&c->session, cbs, c);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, &window, 1);
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
        tc_flush(c);
        return loop_add_io(l, c->fd, EPOLLIN, tc_on_io, c, &c->src);
}

static void tc_close(struct tclient *c) {
        c->src = loop_source_free(c->src);
        nghttp2_session_del(c->session);
        if (c->fd >= 0)
                close(c->fd);
        for (size_t i = 0; i < c->n_streams; i++) {
                free(c->streams[i].rx);
                free(c->streams[i].last);
        }
        memset(c, 0, sizeof(*c));
        c->fd = -1;
}

#define NV(n, v) \
        { (uint8_t *) (n), (uint8_t *) (v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }

/* Starts a call of |method| ("Allocate") sending the message |msg|. Returns the stream. */
static struct tstream *tc_call(struct tclient *c, const char *method, const uint8_t *msg,
                               size_t len) {
        char path[128];
        nghttp2_nv nva[] = {
                NV(":method", "POST"),
                NV(":scheme", "http"),
                {(uint8_t *) ":path", (uint8_t *) path, 5, 0, NGHTTP2_NV_FLAG_NONE},
                NV(":authority", "localhost"),
                NV("content-type", "application/grpc"),
                NV("te", "trailers"),
        };
        nghttp2_data_provider prd;
        struct tstream *t;

        if (c->n_streams == TC_MAX_STREAMS || len + 5 > sizeof(t->body))
                return NULL;
        t = &c->streams[c->n_streams];
        memset(t, 0, sizeof(*t));
        t->status = -1;
        t->body[0] = 0;
        t->body[1] = (uint8_t) (len >> 24);
        t->body[2] = (uint8_t) (len >> 16);
        t->body[3] = (uint8_t) (len >> 8);
        t->body[4] = (uint8_t) len;
        if (len)
                memcpy(t->body + 5, msg, len);
        t->body_len = 5 + len;
        snprintf(path, sizeof(path), "/v1beta1.DevicePlugin/%s", method);
        nva[2].valuelen = strlen(path);
        prd.source.ptr = t;
        prd.read_callback = tc_read_body;
        t->id = nghttp2_submit_request(c->session, NULL, nva, sizeof(nva) / sizeof(nva[0]), &prd,
                                       NULL);
        if (t->id < 0)
                return NULL;
        c->n_streams++;
        tc_flush(c);
        return t;
}

/* Runs the loop until |cond| holds (checked every millisecond) or 5 s pass. */
struct waiter {
        bool (*cond)(void *arg);
        void *arg;
        unsigned ticks;
};

static void on_tick(struct loop_source *s, void *userdata) {
        struct waiter *w = userdata;

        if (w->cond(w->arg))
                loop_quit(loop_source_loop(s), 0);
        else if (++w->ticks > 5000)
                loop_quit(loop_source_loop(s), -ETIMEDOUT);
}

static int run_until(struct loop *l, bool (*cond)(void *arg), void *arg) {
        struct waiter w = {cond, arg, 0};
        struct loop_source *timer;
        int r;

        if (cond(arg))
                return 0;
        r = loop_add_timer(l, on_tick, &w, &timer);
        if (r < 0)
                return r;
        loop_timer_arm(timer, 1000, 1000);
        r = loop_run(l);
        loop_source_free(timer);
        return r;
}

static bool stream_closed(void *arg) {
        return ((struct tstream *) arg)->closed;
}

struct msgs_wait {
        struct tstream *t;
        size_t n;
};

static bool stream_has_msgs(void *arg) {
        struct msgs_wait *m = arg;

        return m->t->n_msgs >= m->n || m->t->closed;
}

/* A service fixture: a loop, a temp dir, the service on DIR/sgxdevplugin-<kind>.sock. */
struct fixture {
        struct loop *loop;
        char dir[64];
        char path[128];
        struct dp_service *svc;
        struct dp_config cfg;
        size_t n_ended, last_remaining;
        struct dp_service *ended_svc;
};

static void on_stream_ended(struct dp_service *s, size_t remaining, uint64_t opened_usec,
                            void *userdata) {
        struct fixture *f = userdata;

        f->n_ended++;
        f->last_remaining = remaining;
        f->ended_svc = s;
}

static bool fixture_setup(struct fixture *f, enum sgx_kind k, const struct discovery *d) {
        memset(f, 0, sizeof(*f));
        f->cfg = cfg_default();
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_dp.XXXXXX");
        CHECK(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/sgxdevplugin-%s.sock", f->dir, sgx_kind_name(k));
        CHECK_INT(loop_new(&f->loop), 0);
        CHECK_INT(dp_service_new(f->loop, &f->cfg, k, f->path, d, on_stream_ended, f, &f->svc), 0);
        return f->svc != NULL;
}

static void fixture_teardown(struct fixture *f) {
        f->svc = dp_service_free(f->svc);
        unlink(f->path);
        rmdir(f->dir);
        f->loop = loop_free(f->loop);
}

static void test_deviceplugin_service_names(void) {
        struct discovery d = node_in_kernel();
        struct fixture f;
        struct stat st;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &d))
                goto out;
        CHECK_STR(dp_service_resource(f.svc), "sgx.k8s.io/dcap");
        CHECK_STR(dp_service_socket_path(f.svc), f.path);
        CHECK_STR(dp_service_endpoint(f.svc), "sgxdevplugin-dcap.sock");
        CHECK_INT(dp_service_kind(f.svc), SGX_KIND_DCAP);
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_HEALTHY);
        CHECK_INT(dp_service_n_streams(f.svc), 0);
        CHECK(dp_service_owns_socket(f.svc));
        CHECK(stat(f.path, &st) == 0 && S_ISSOCK(st.st_mode));
        /* free unlinks the socket it still owns */
        f.svc = dp_service_free(f.svc);
        CHECK(stat(f.path, &st) < 0 && errno == ENOENT);
out:
        fixture_teardown(&f);
}

static void test_deviceplugin_service_health_follows_updates(void) {
        struct discovery d = node_empty(), k = node_in_kernel(), i = node_ias();
        struct fixture f;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &d))
                goto out;
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_NONE);
        dp_service_update(f.svc, &i); /* IAS is no DCAP */
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_NONE);
        dp_service_update(f.svc, &k);
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_HEALTHY);
        dp_service_update(f.svc, &d);
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_UNHEALTHY);
        dp_service_update(f.svc, &i);
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_UNHEALTHY);
        dp_service_update(f.svc, &k);
        CHECK_INT(dp_service_health(f.svc), DP_HEALTH_HEALTHY);
out:
        fixture_teardown(&f);
}

/* Runs one unary call to completion. */
static struct tstream *unary(struct fixture *f, struct tclient *c, const char *method,
                             const uint8_t *msg, size_t len) {
        struct tstream *t = tc_call(c, method, msg, len);

        CHECK(t);
        if (!t)
                return NULL;
        CHECK_INT(run_until(f->loop, stream_closed, t), 0);
        return t;
}

static void test_deviceplugin_service_allocate_over_socket(void) {
        struct discovery d = node_in_kernel();
        const char *c1[] = {"dcap-7", NULL};
        const char *const *containers[] = {c1, NULL};
        const char *want[] = {"/dev/sgx_enclave=/dev/sgx_enclave",
                              "/dev/sgx/enclave=/dev/sgx_enclave",
                              "/dev/sgx_provision=/dev/sgx_provision",
                              "/dev/sgx/provision=/dev/sgx_provision", NULL};
        V1beta1__AllocateResponse *resp;
        struct tclient c = {.fd = -1};
        struct fixture f;
        struct tstream *t;
        uint8_t *req;
        size_t len;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &d))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);
        req = pack_allocate(containers, &len);
        t = unary(&f, &c, "Allocate", req, len);
        free(req);
        if (!t)
                goto out;
        CHECK_INT(t->status, GRPC_STATUS_OK);
        CHECK_INT(t->n_msgs, 1);
        resp = v1beta1__allocate_response__unpack(NULL, t->last_len, t->last);
        CHECK(resp);
        if (resp) {
                CHECK_INT(resp->n_container_responses, 1);
                if (resp->n_container_responses == 1)
                        check_specs(resp->container_responses[0], want);
                v1beta1__allocate_response__free_unpacked(resp, NULL);
        }
out:
        tc_close(&c);
        fixture_teardown(&f);
}

static void test_deviceplugin_service_rejects_over_socket(void) {
        struct discovery d = node_in_kernel(), e = node_empty();
        const char *bad[] = {"dcap-01", NULL}, *good[] = {"dcap-1", NULL};
        const char *const *bad_c[] = {bad, NULL}, *const * good_c[] = {good, NULL};
        struct tclient c = {.fd = -1};
        struct fixture f;
        struct tstream *t;
        uint8_t *req, garbage[] = {0xff, 0xff, 0xff};
        size_t len;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &d))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);

        req = pack_allocate(bad_c, &len);
        t = unary(&f, &c, "Allocate", req, len);
        free(req);
        if (t) {
                CHECK_INT(t->status, GRPC_STATUS_INVALID_ARGUMENT);
                CHECK_INT(t->n_msgs, 0);
                CHECK(strstr(t->message, "dcap-01"));
        }

        t = unary(&f, &c, "Allocate", garbage, sizeof(garbage));
        if (t)
                CHECK_INT(t->status, GRPC_STATUS_INVALID_ARGUMENT);

        /* the device vanished: the service answers from its copy of the node state */
        dp_service_update(f.svc, &e);
        req = pack_allocate(good_c, &len);
        t = unary(&f, &c, "Allocate", req, len);
        free(req);
        if (t) {
                CHECK_INT(t->status, GRPC_STATUS_FAILED_PRECONDITION);
                CHECK(strstr(t->message, "sgx.k8s.io"));
        }
out:
        tc_close(&c);
        fixture_teardown(&f);
}

static void test_deviceplugin_service_options_preferred_prestart(void) {
        struct discovery d = node_ias();
        V1beta1__DevicePluginOptions *o;
        V1beta1__PreStartContainerRequest ps = V1BETA1__PRE_START_CONTAINER_REQUEST__INIT;
        char *ids[] = {(char *) "ias-3"};
        struct tclient c = {.fd = -1};
        struct fixture f;
        struct tstream *t;
        uint8_t buf[64];
        size_t len;

        if (!fixture_setup(&f, SGX_KIND_IAS, &d))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);

        t = unary(&f, &c, "GetDevicePluginOptions", NULL, 0);
        if (t) {
                CHECK_INT(t->status, GRPC_STATUS_OK);
                CHECK_INT(t->n_msgs, 1);
                o = v1beta1__device_plugin_options__unpack(NULL, t->last_len, t->last);
                CHECK(o);
                if (o) {
                        CHECK(!o->pre_start_required);
                        CHECK(!o->get_preferred_allocation_available);
                        v1beta1__device_plugin_options__free_unpacked(o, NULL);
                }
        }

        ps.n_devices_ids = 1;
        ps.devices_ids = ids;
        len = v1beta1__pre_start_container_request__pack(&ps, buf);
        t = unary(&f, &c, "PreStartContainer", buf, len);
        if (t) {
                CHECK_INT(t->status, GRPC_STATUS_OK);
                CHECK_INT(t->n_msgs, 1);
        }

        /* an empty PreferredAllocationRequest has no container requests */
        t = unary(&f, &c, "GetPreferredAllocation", NULL, 0);
        if (t)
                CHECK_INT(t->status, GRPC_STATUS_INVALID_ARGUMENT);
out:
        tc_close(&c);
        fixture_teardown(&f);
}

/* Decodes the last list on |t| and checks its size and health. */
static void check_last_list(const struct tstream *t, size_t n, const char *health) {
        V1beta1__ListAndWatchResponse *l;

        l = v1beta1__list_and_watch_response__unpack(NULL, t->last_len, t->last);
        CHECK(l);
        if (!l)
                return;
        CHECK_INT(l->n_devices, n);
        for (size_t i = 0; i < l->n_devices; i++)
                if (strcmp(l->devices[i]->health, health) != 0) {
                        CHECK_STR(l->devices[i]->health, health);
                        break;
                }
        v1beta1__list_and_watch_response__free_unpacked(l, NULL);
}

struct ended_wait {
        struct fixture *f;
        size_t n;
};

static bool ended(void *arg) {
        struct ended_wait *w = arg;

        return w->f->n_ended >= w->n;
}

static void test_deviceplugin_service_list_and_watch(void) {
        struct discovery d = node_empty(), k = node_in_kernel();
        struct tclient c = {.fd = -1}, c2 = {.fd = -1};
        struct fixture f;
        struct tstream *t, *t2;
        struct msgs_wait mw;
        struct ended_wait ew = {&f, 1};

        if (!fixture_setup(&f, SGX_KIND_SGX, &d))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);
        CHECK_INT(tc_connect(f.loop, f.path, &c2), 0);

        /* on open: the current list at once, empty for a class never seen */
        t = tc_call(&c, "ListAndWatch", NULL, 0);
        CHECK(t);
        if (!t)
                goto out;
        mw = (struct msgs_wait){t, 1};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        CHECK_INT(t->n_msgs, 1);
        CHECK_INT(t->last_len, 0);
        CHECK(!t->closed);
        CHECK_INT(dp_service_n_streams(f.svc), 1);

        /* a health change goes to every stream */
        t2 = tc_call(&c2, "ListAndWatch", NULL, 0);
        mw = (struct msgs_wait){t2, 1};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        CHECK_INT(dp_service_n_streams(f.svc), 2);
        dp_service_update(f.svc, &k);
        mw = (struct msgs_wait){t, 2};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        mw = (struct msgs_wait){t2, 2};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        check_last_list(t, 110, "Healthy");
        check_last_list(t2, 110, "Healthy");

        /* no change in health, no new list */
        dp_service_update(f.svc, &k);
        dp_service_update(f.svc, &d);
        mw = (struct msgs_wait){t, 3};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        CHECK_INT(t->n_msgs, 3);
        check_last_list(t, 110, "Unhealthy");
        CHECK(!t->closed);

        /* the kubelet ends one stream: reported with the number left */
        nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, t->id, NGHTTP2_CANCEL);
        tc_flush(&c);
        CHECK_INT(run_until(f.loop, ended, &ew), 0);
        CHECK_INT(f.n_ended, 1);
        CHECK_INT(f.last_remaining, 1);
        CHECK(f.ended_svc == f.svc);
        CHECK_INT(dp_service_n_streams(f.svc), 1);

        /* the kubelet goes away: the other stream ends too */
        tc_close(&c2);
        ew.n = 2;
        CHECK_INT(run_until(f.loop, ended, &ew), 0);
        CHECK_INT(f.n_ended, 2);
        CHECK_INT(f.last_remaining, 0);
        CHECK_INT(dp_service_n_streams(f.svc), 0);
out:
        tc_close(&c);
        tc_close(&c2);
        fixture_teardown(&f);
}

static void test_deviceplugin_service_free_ends_streams(void) {
        struct discovery k = node_in_kernel();
        struct tclient c = {.fd = -1};
        struct fixture f;
        struct tstream *t;
        struct msgs_wait mw;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &k))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);
        t = tc_call(&c, "ListAndWatch", NULL, 0);
        CHECK(t);
        if (!t)
                goto out;
        mw = (struct msgs_wait){t, 1};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        check_last_list(t, 110, "Healthy");

        f.svc = dp_service_free(f.svc);
        CHECK_INT(run_until(f.loop, stream_closed, t), 0);
        CHECK(t->closed);
        /* we ended it: not reported as the kubelet's doing */
        CHECK_INT(f.n_ended, 0);
out:
        tc_close(&c);
        fixture_teardown(&f);
}

static void test_deviceplugin_service_relisten(void) {
        struct discovery k = node_in_kernel();
        struct tclient c = {.fd = -1}, c2 = {.fd = -1};
        struct fixture f;
        struct tstream *t;
        struct msgs_wait mw;

        if (!fixture_setup(&f, SGX_KIND_DCAP, &k))
                goto out;
        CHECK_INT(tc_connect(f.loop, f.path, &c), 0);
        t = tc_call(&c, "ListAndWatch", NULL, 0);
        mw = (struct msgs_wait){t, 1};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);

        /* the kubelet wiped its directory */
        CHECK_INT(unlink(f.path), 0);
        CHECK(!dp_service_owns_socket(f.svc));
        CHECK_INT(dp_service_relisten(f.svc), 0);
        CHECK(dp_service_owns_socket(f.svc));
        CHECK_INT(dp_service_n_streams(f.svc), 0);
        CHECK_INT(f.n_ended, 0);

        /* the old connection is ended, the new socket serves */
        CHECK_INT(run_until(f.loop, stream_closed, t), 0);
        CHECK_INT(tc_connect(f.loop, f.path, &c2), 0);
        t = tc_call(&c2, "ListAndWatch", NULL, 0);
        mw = (struct msgs_wait){t, 1};
        CHECK_INT(run_until(f.loop, stream_has_msgs, &mw), 0);
        CHECK_INT(t->n_msgs, 1);
        check_last_list(t, 110, "Healthy");
        CHECK_INT(dp_service_n_streams(f.svc), 1);
out:
        tc_close(&c);
        tc_close(&c2);
        fixture_teardown(&f);
}

/* The computed list size is what protobuf-c really packs, for every kind and digit boundary. */
static void test_deviceplugin_list_size_matches_encoding(void) {
        static const unsigned slots[] = {0, 1, 9, 10, 11, 99, 100, 101, 1000, 12345};
        struct dp_config cfg = cfg_default();

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
                        uint8_t *buf = NULL;
                        size_t len = 0;

                        cfg.slots = slots[i];
                        CHECK_INT(dp_encode_list(&cfg, k, DP_HEALTH_UNHEALTHY, &buf, &len), 0);
                        CHECK_INT(dp_list_size(k, slots[i]), len);
                        free(buf);
                }
        }
}

/* The largest count that fits is under the limit, and one more is not. */
static void test_deviceplugin_slots_that_fit(void) {
        unsigned fit = dp_slots_that_fit(SGX_KIND_AZURE_EPC, 512u * 1024);

        CHECK(fit > 50000 && fit < 512u * 1024);
        CHECK(dp_list_size(SGX_KIND_AZURE_EPC, fit) < DP_LIST_LIMIT);
        CHECK(dp_list_size(SGX_KIND_AZURE_EPC, fit + 1) >= DP_LIST_LIMIT);
        CHECK_INT(dp_slots_that_fit(SGX_KIND_AZURE_EPC, 128), 128);
        CHECK_INT(dp_slots_that_fit(SGX_KIND_AZURE_EPC, 0), 0);
        CHECK_INT(dp_slots_that_fit(SGX_KIND_DCAP, 100000), 100000);
}

int main(void) {
        RUN(test_deviceplugin_list_size_matches_encoding);
        RUN(test_deviceplugin_slots_that_fit);
        log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
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
        RUN(test_deviceplugin_allocate_cdi_names_the_device);
        RUN(test_deviceplugin_allocate_cdi_no_provision_and_domain);
        RUN(test_deviceplugin_allocate_cdi_absent_is_failed_precondition);
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
        RUN(test_deviceplugin_service_names);
        RUN(test_deviceplugin_service_health_follows_updates);
        RUN(test_deviceplugin_service_allocate_over_socket);
        RUN(test_deviceplugin_service_rejects_over_socket);
        RUN(test_deviceplugin_service_options_preferred_prestart);
        RUN(test_deviceplugin_service_list_and_watch);
        RUN(test_deviceplugin_service_free_ends_streams);
        RUN(test_deviceplugin_service_relisten);
        return unit_done();
}
