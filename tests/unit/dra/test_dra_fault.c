/*
 * test_dra_fault.c - the fault twin of test_draplugin.c, test_slices.c and test_claims.c: every
 * allocation of the DRA driver's pure functions (jansson's included) made to fail in turn
 * (failmalloc.h). Each must answer as without the failure or with its clean error (NULL, -ENOMEM,
 * GRPC_STATUS_INTERNAL, "not the same"), crash nowhere and leak nothing (the ASan build).
 * protobuf-c's own allocations (unpacking) are inside its shared library: not caught.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "capabilities.h"
#include "claims.h"
#include "discovery.h"
#include "dra_v1.pb-c.h"
#include "draplugin.h"
#include "failmalloc.h"
#include "log.h"
#include "slices.h"
#include "unit.h"

#define D "sgx.k8s.io"

static struct dra_pool pool_two(void) {
        struct sgx_caps c;
        struct discovery d;
        struct dra_pool p;

        memset(&c, 0, sizeof(c));
        memset(&d, 0, sizeof(d));
        c.cpu.sgx1 = c.cpu.sgx2 = c.flc = c.sgx2_usable = true;
        c.driver = SGX_DRIVER_INKERNEL;
        c.epc_bytes = 1 << 27;
        snprintf(c.kernel.release, sizeof(c.kernel.release), "6.5.0-18-generic");
        d.dcap_enclave.present = d.dcap_provision.present = d.ias_enclave.present = true;
        snprintf(d.dcap_enclave.host_path, sizeof(d.dcap_enclave.host_path), "/dev/sgx_enclave");
        snprintf(d.ias_enclave.host_path, sizeof(d.ias_enclave.host_path), "/dev/isgx");
        dra_pool_desired(&c, &d, &p);
        return p;
}

static void test_dra_fault_slice_json(void) {
        struct dra_pool p = pool_two();
        json_t *want = dra_slice_spec(D, "node-1", &p, 1);
        unsigned long n;

        CHECK(want != NULL);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                json_t *obj;

                failmalloc_arm(n);
                obj = dra_slice_new(D, "node-1", "uid-1", &p, 1);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK(obj != NULL);
                        CHECK(dra_spec_same(json_object_get(obj, "spec"), want));
                        json_decref(obj);
                        break;
                }
                json_decref(obj); /* NULL, or whole */
        }
        CHECK(n > 1 && n < FAILMALLOC_MAX_STEPS);
        /* the comparison copies: a failed copy is "not the same", never a crash */
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                bool same;

                failmalloc_arm(n);
                same = dra_spec_same(want, want);
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK(same);
                        break;
                }
        }
        json_decref(want);
}

static void test_dra_fault_checkpoint(void) {
        struct dra_claim in[2];
        unsigned long n;

        memset(in, 0, sizeof(in));
        snprintf(in[0].uid, sizeof(in[0].uid), "u1");
        snprintf(in[1].uid, sizeof(in[1].uid), "u2");
        in[0].n = 1;
        snprintf(in[0].dev[0].device, sizeof(in[0].dev[0].device), "dcap");
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                struct dra_claim *out = NULL;
                size_t n_out = 0;
                char err[128];
                json_t *doc;
                int r = -ENOMEM;

                failmalloc_arm(n);
                doc = dra_checkpoint_json(in, 2);
                if (doc)
                        r = dra_checkpoint_parse(doc, &out, &n_out, err, sizeof(err));
                failmalloc_disarm();
                if (!failmalloc_fired()) {
                        CHECK_INT(r, 0);
                        CHECK_INT(n_out, 2);
                        free(out);
                        json_decref(doc);
                        break;
                }
                CHECK(r == 0 || r == -ENOMEM);
                free(out);
                json_decref(doc);
        }
}

static void test_dra_fault_encoders(void) {
        const struct dra_device_health h[] = {{"dcap", true, 1}, {"ias", false, 2}};
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Claim
                c = K8S__IO__KUBELET__PKG__APIS__DRA__V1__CLAIM__INIT,
                *cp = &c;
        K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesRequest req =
                K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_PREPARE_RESOURCES_REQUEST__INIT;
        uint8_t wire[256];
        size_t wire_len;
        unsigned long n;

        c.namespace_ = (char *) "ns";
        c.uid = (char *) "u";
        c.name = (char *) "c";
        req.n_claims = 1;
        req.claims = &cp;
        wire_len = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__pack(&req,
                                                                                              wire);
        for (n = 1; n < FAILMALLOC_MAX_STEPS; n++) {
                struct dra_claim_ref *refs = NULL;
                uint8_t *a = NULL, *b = NULL;
                size_t al = 0, bl = 0, nref = 0;
                enum grpc_status st;
                void *msg = NULL;
                char err[128] = "";
                int ra, rb;

                failmalloc_arm(n);
                ra = dra_encode_info(D, "/x/dra.sock", &a, &al);
                rb = dra_encode_health("node-1", h, 2, 2, &b, &bl);
                st = dra_decode_claims(wire, wire_len, "NodePrepareResourcesRequest", &refs, &nref,
                                       &msg, err, sizeof(err));
                failmalloc_disarm();
                CHECK(ra == 0 || ra == -ENOMEM);
                CHECK(rb == 0 || rb == -ENOMEM);
                CHECK(st == GRPC_STATUS_OK ||
                      (st == GRPC_STATUS_INTERNAL && strcmp(err, "out of memory") == 0));
                free(a);
                free(b);
                free(refs);
                dra_claims_msg_free(st == GRPC_STATUS_OK ? msg : NULL);
                if (!failmalloc_fired()) {
                        CHECK(ra == 0 && rb == 0 && st == GRPC_STATUS_OK && nref == 1);
                        break;
                }
        }
}

int main(void) {
        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        failmalloc_hook_jansson();
        RUN(test_dra_fault_slice_json);
        RUN(test_dra_fault_checkpoint);
        RUN(test_dra_fault_encoders);
        return unit_done();
}
