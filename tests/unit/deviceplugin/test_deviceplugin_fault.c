/*
 * test_deviceplugin_fault.c - the fault twin of test_deviceplugin.c: every allocation of the pure
 * handlers (dp_encode_list, dp_encode_options, dp_handle_allocate, dp_handle_preferred,
 * dp_handle_prestart) and of dp_service_new() made to fail in turn (failmalloc.h). Each must
 * answer either as without the failure or with the clean error: -ENOMEM from the encoders,
 * GRPC_STATUS_INTERNAL "out of memory" from the handlers, no answer buffer, nothing leaked.
 * protobuf-c's own allocations (unpacking the request) are inside its shared library: not caught.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "deviceplugin.h"
#include "discovery.h"
#include "failmalloc.h"
#include "loop.h"
#include "fake_nodes.h"
#include "unit.h"

static struct dp_config cfg_default(void) {
        return (struct dp_config){
                .domain = "sgx.k8s.io",
                .slots = 110,
                .edits = {.provision = true, .aesmd_dir = "/var/run/aesmd"},
        };
}

/* Checks one handler outcome under an injected failure: OK with an answer, or INTERNAL with
 * "out of memory" and no answer. Frees the answer. */
static void check_handler_outcome(enum grpc_status st, uint8_t *out, const char *err, bool fired) {
        if (!fired) {
                CHECK_INT(st, GRPC_STATUS_OK);
        } else if (st != GRPC_STATUS_OK) {
                CHECK_INT(st, GRPC_STATUS_INTERNAL);
                CHECK_STR(err, "out of memory");
                CHECK(out == NULL);
        }
        if (st == GRPC_STATUS_OK)
                CHECK(out != NULL);
        free(out);
}

static void test_deviceplugin_fault_encode_list(void) {
        struct dp_config cfg = cfg_default();
        const enum dp_health hs[] = {DP_HEALTH_HEALTHY, DP_HEALTH_UNHEALTHY, DP_HEALTH_NONE};

        for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
                unsigned long n;

                for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                        uint8_t *buf = NULL;
                        size_t len = 0;
                        int r;

                        failmalloc_arm(n);
                        r = dp_encode_list(&cfg, SGX_KIND_DCAP, hs[i], &buf, &len);
                        failmalloc_disarm();
                        if (!failmalloc_fired()) {
                                CHECK_INT(r, 0);
                                CHECK(buf != NULL);
                                free(buf);
                                break;
                        }
                        CHECK(r == 0 || r == -ENOMEM);
                        if (r < 0)
                                CHECK(buf == NULL);
                        free(buf);
                }
                /* healthy and unhealthy: three arrays and the answer; none: the answer */
                CHECK_INT(n, hs[i] == DP_HEALTH_NONE ? 2 : 5);
        }
}

static void test_deviceplugin_fault_encode_options(void) {
        unsigned long n;

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                int r;

                failmalloc_arm(n);
                r = dp_encode_options(&buf, &len);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        free(buf);
                        break;
                }
                CHECK_INT(r, -ENOMEM);
                CHECK(buf == NULL);
        }
        CHECK_INT(n, 2);
}

/* Three containers, two IDs each. */
static uint8_t *pack_allocate(size_t *ret_len) {
        V1beta1__AllocateRequest req = V1BETA1__ALLOCATE_REQUEST__INIT;
        V1beta1__ContainerAllocateRequest c[3], *cp[3];
        char *ids[] = {"dcap-0", "dcap-109"};
        uint8_t *buf;

        for (size_t i = 0; i < 3; i++) {
                v1beta1__container_allocate_request__init(&c[i]);
                c[i].n_devices_ids = 2;
                c[i].devices_ids = ids;
                cp[i] = &c[i];
        }
        req.n_container_requests = 3;
        req.container_requests = cp;
        buf = malloc(v1beta1__allocate_request__get_packed_size(&req) + 1);
        if (buf)
                *ret_len = v1beta1__allocate_request__pack(&req, buf);
        return buf;
}

static void test_deviceplugin_fault_allocate(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        size_t len = 0;
        uint8_t *req = pack_allocate(&len);
        unsigned long n;

        CHECK(req != NULL);
        for (n = 1; req && n < FAILMALLOC_MAX_STEPS; n++) {
                uint8_t *out = NULL;
                size_t olen = 0;
                char err[256] = "";
                enum grpc_status st;
                bool fired;

                failmalloc_arm(n);
                st = dp_handle_allocate(&cfg, SGX_KIND_DCAP, &d, req, len, &out, &olen, err,
                                        sizeof(err));
                failmalloc_disarm();
                fired = failmalloc_fired();
                if (st == GRPC_STATUS_OK) {
                        V1beta1__AllocateResponse *resp =
                                v1beta1__allocate_response__unpack(NULL, olen, out);

                        CHECK(resp != NULL);
                        if (resp) {
                                CHECK_INT(resp->n_container_responses, 3);
                                v1beta1__allocate_response__free_unpacked(resp, NULL);
                        }
                }
                check_handler_outcome(st, out, err, fired);
                if (!fired)
                        break;
        }
        CHECK_INT(n, 3); /* the pointer array and the answer */
        free(req);
}

static void test_deviceplugin_fault_preferred(void) {
        struct dp_config cfg = cfg_default();
        V1beta1__PreferredAllocationRequest req = V1BETA1__PREFERRED_ALLOCATION_REQUEST__INIT;
        V1beta1__ContainerPreferredAllocationRequest c[2], *cp[2];
        char *avail[] = {"sgx-3", "sgx-1", "sgx-2", "sgx-7"}, *must[] = {"sgx-2"};
        uint8_t buf[256];
        size_t len;
        unsigned long n;

        for (size_t i = 0; i < 2; i++) {
                v1beta1__container_preferred_allocation_request__init(&c[i]);
                c[i].n_available_deviceids = 4;
                c[i].available_deviceids = avail;
                c[i].n_must_include_deviceids = 1;
                c[i].must_include_deviceids = must;
                c[i].allocation_size = 2;
                cp[i] = &c[i];
        }
        req.n_container_requests = 2;
        req.container_requests = cp;
        CHECK(v1beta1__preferred_allocation_request__get_packed_size(&req) <= sizeof(buf));
        len = v1beta1__preferred_allocation_request__pack(&req, buf);

        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                uint8_t *out = NULL;
                size_t olen = 0;
                char err[256] = "";
                enum grpc_status st;

                failmalloc_arm(n);
                st = dp_handle_preferred(&cfg, SGX_KIND_SGX, buf, len, &out, &olen, err,
                                         sizeof(err));
                failmalloc_disarm();
                check_handler_outcome(st, out, err, failmalloc_fired());
                if (!failmalloc_fired())
                        break;
        }
        CHECK(n > 1);
}

static void test_deviceplugin_fault_prestart(void) {
        struct dp_config cfg = cfg_default();
        V1beta1__PreStartContainerRequest req = V1BETA1__PRE_START_CONTAINER_REQUEST__INIT;
        char *ids[] = {"sgx-0", "sgx-109"};
        uint8_t buf[64];
        size_t len;
        unsigned long n;

        req.n_devices_ids = 2;
        req.devices_ids = ids;
        len = v1beta1__pre_start_container_request__pack(&req, buf);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                uint8_t *out = NULL;
                size_t olen = 0;
                char err[256] = "";
                enum grpc_status st;

                failmalloc_arm(n);
                st = dp_handle_prestart(&cfg, SGX_KIND_SGX, buf, len, &out, &olen, err,
                                        sizeof(err));
                failmalloc_disarm();
                check_handler_outcome(st, out, err, failmalloc_fired());
                if (!failmalloc_fired())
                        break;
        }
        CHECK(n > 1);
}

/* dp_service_new(): -ENOMEM or a working service; no socket left behind by a failed one. */
static void test_deviceplugin_fault_service_new(void) {
        struct dp_config cfg = cfg_default();
        struct discovery d = node_in_kernel();
        char dir[] = "/tmp/test_dp_fault.XXXXXX", path[128];
        struct loop *l = NULL;
        unsigned long n;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/sgxdevplugin-dcap.sock", dir);
        CHECK_INT(loop_new(&l), 0);
        for (n = 1; l && n < FAILMALLOC_MAX_STEPS; n++) {
                struct dp_service *s = NULL;
                int r;

                failmalloc_arm(n);
                r = dp_service_new(l, &cfg, SGX_KIND_DCAP, path, &d, NULL, NULL, &s);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK(s != NULL && dp_service_owns_socket(s));
                        dp_service_free(s);
                        break;
                }
                if (r < 0) {
                        CHECK_INT(r, -ENOMEM);
                        CHECK(access(path, F_OK) < 0);
                } else {
                        CHECK(dp_service_owns_socket(s));
                        CHECK_INT(dp_service_health(s), DP_HEALTH_HEALTHY);
                        dp_service_free(s);
                }
        }
        CHECK(n > 2);
        loop_free(l);
        (void) unlink(path);
        (void) rmdir(dir);
}

int main(void) {
        RUN(test_deviceplugin_fault_encode_list);
        RUN(test_deviceplugin_fault_encode_options);
        RUN(test_deviceplugin_fault_allocate);
        RUN(test_deviceplugin_fault_preferred);
        RUN(test_deviceplugin_fault_prestart);
        RUN(test_deviceplugin_fault_service_new);
        return unit_done();
}
