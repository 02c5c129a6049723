/*
 * test_claims.c - claims.c without an API server: reading a ResourceClaim (our results, the UID,
 * not allocated, another driver's, too many), the checkpoint document both ways, the CDI ID.
 * Then the worker on a loop with a scripted GET: a prepare reads the claim once and answers
 * with its device, a second prepare answers from memory, a new worker answers from the
 * checkpoint file, unprepare empties it, and a claim the GET fails is that claim's error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "claims.h"
#include "dra_v1.pb-c.h"
#include "log.h"
#include "loop.h"
#include "unit.h"

#define D "sgx.k8s.io"

static json_t *claim(const char *uid, const char *results) {
        char text[2048];

        snprintf(text, sizeof(text), "{\"metadata\":{\"uid\":\"%s\"},\"status\":{%s%s%s}}", uid,
                 results ? "\"allocation\":{\"devices\":{\"results\":" : "", results ? results : "",
                 results ? "}}" : "");
        return json_loads(text, 0, NULL);
}

static struct dra_claim ref(const char *uid) {
        struct dra_claim c;

        memset(&c, 0, sizeof(c));
        snprintf(c.uid, sizeof(c.uid), "%s", uid);
        snprintf(c.ns, sizeof(c.ns), "ns");
        snprintf(c.name, sizeof(c.name), "c");
        return c;
}

static void test_claims_read_takes_our_results(void) {
        struct dra_claim c = ref("u1");
        char err[256] = "";
        json_t *o = claim("u1", "[{\"request\":\"a\",\"driver\":\"gpu.x\",\"pool\":\"node-1\","
                                "\"device\":\"g0\"},{\"request\":\"b\",\"driver\":\"" D "\","
                                "\"pool\":\"node-1\",\"device\":\"dcap\"}]");

        CHECK_INT(dra_claim_read(o, D, "node-1", &c, err, sizeof(err)), 0);
        CHECK_INT(c.n, 1);
        CHECK_STR(c.dev[0].request, "b");
        CHECK_STR(c.dev[0].pool, "node-1");
        CHECK_STR(c.dev[0].device, "dcap");
        json_decref(o);
}

static void test_claims_read_errors(void) {
        struct dra_claim c = ref("u1");
        char err[256] = "";
        json_t *o;

        o = claim("u2", "[]");
        CHECK_INT(dra_claim_read(o, D, "node-1", &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "has uid u2, not u1") != NULL);
        json_decref(o);

        o = claim("u1", NULL);
        CHECK_INT(dra_claim_read(o, D, "node-1", &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "is not allocated") != NULL);
        json_decref(o);

        o = claim("u1", "[{\"request\":\"a\",\"driver\":\"" D "\",\"pool\":\"node-2\","
                        "\"device\":\"dcap\"}]");
        CHECK_INT(dra_claim_read(o, D, "node-1", &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "no device of driver " D " in pool node-1 (its results: " D "/node-2)") !=
              NULL);
        json_decref(o);

        o = claim("u1", "[{\"request\":\"a\",\"driver\":\"" D "\",\"pool\":\"node-1\"}]");
        CHECK_INT(dra_claim_read(o, D, "node-1", &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "no usable device name") != NULL);
        json_decref(o);
}

static void test_claims_checkpoint_round_trip(void) {
        struct dra_claim in[2] = {ref("u1"), ref("u2")}, *out = NULL;
        char err[128];
        size_t n = 0;
        json_t *doc;

        in[0].n = 1;
        snprintf(in[0].dev[0].request, sizeof(in[0].dev[0].request), "r");
        snprintf(in[0].dev[0].pool, sizeof(in[0].dev[0].pool), "node-1");
        snprintf(in[0].dev[0].device, sizeof(in[0].dev[0].device), "dcap");
        doc = dra_checkpoint_json(in, 2);
        CHECK(doc != NULL);
        CHECK_INT(dra_checkpoint_parse(doc, &out, &n, err, sizeof(err)), 0);
        CHECK_INT(n, 2);
        if (n == 2) {
                CHECK_STR(out[0].uid, "u1");
                CHECK_INT(out[0].n, 1);
                CHECK_STR(out[0].dev[0].device, "dcap");
                CHECK_STR(out[1].uid, "u2");
                CHECK_INT(out[1].n, 0);
        }
        free(out);
        json_decref(doc);

        doc = json_loads("{\"version\":2,\"claims\":[]}", 0, NULL);
        CHECK_INT(dra_checkpoint_parse(doc, &out, &n, err, sizeof(err)), -EINVAL);
        json_decref(doc);
        doc = json_loads("{\"version\":1,\"claims\":[{\"uid\":\"\"}]}", 0, NULL);
        CHECK_INT(dra_checkpoint_parse(doc, &out, &n, err, sizeof(err)), -EINVAL);
        json_decref(doc);
}

static void test_claims_cdi_device_id(void) {
        char buf[64];

        CHECK_INT(dra_cdi_device_id(D, "dcap", true, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=dcap");
        CHECK_INT(dra_cdi_device_id(D, "dcap", true, buf, 8), -ENOSPC);
        CHECK_INT(dra_cdi_device_id(D, "dcap-17", true, buf, sizeof(buf)), 0); /* a --dra-slots slot */
        CHECK_STR(buf, "sgx.k8s.io/sgx=dcap");
        CHECK_INT(dra_cdi_device_id(D, "ias-0", true, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=ias");
        CHECK_INT(dra_cdi_device_id(D, "x2", true, buf, sizeof(buf)), 0); /* no '-': as it is */
        CHECK_STR(buf, "sgx.k8s.io/sgx=x2");
        /* --no-provision: the spec's device of the class is dcap-noprovision (sgx/cdi.c) */
        CHECK_INT(dra_cdi_device_id(D, "dcap", false, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=dcap-noprovision");
        CHECK_INT(dra_cdi_device_id(D, "dcap-3", false, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=dcap-noprovision");
        CHECK_INT(dra_cdi_device_id(D, "ias", false, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=ias");
}

/* ---- the worker ---- */

struct harness {
        struct loop *loop;
        int gets;
        bool fail_get;
        uint8_t *resp;
        size_t len;
};

static int scripted_get(void *userdata, const char *path, unsigned timeout_ms, int cancel_fd,
                        struct api_response *resp, char *err, size_t errsz) {
        struct harness *h = userdata;
        const char *body = "{\"metadata\":{\"uid\":\"u1\"},\"status\":{\"allocation\":{"
                           "\"devices\":{\"results\":[{\"request\":\"r\",\"driver\":\"" D "\","
                           "\"pool\":\"node-1\",\"device\":\"dcap\"}]}}}}";

        __atomic_add_fetch(&h->gets, 1, __ATOMIC_SEQ_CST);
        if (h->fail_get) {
                snprintf(err, errsz, "API server 127.0.0.1:1 did not answer within 1.0 s");
                return -ETIMEDOUT;
        }
        resp->status = 200;
        resp->body = strdup(body);
        resp->body_len = strlen(body);
        return 0;
}

static void on_done(void *userdata, uint64_t job, const uint8_t *resp, size_t len) {
        struct harness *h = userdata;

        free(h->resp);
        h->resp = malloc(len + 1);
        memcpy(h->resp, resp, len);
        h->len = len;
        loop_quit(h->loop, 0);
}

/* Runs one job to its answer; returns the error of claim u1 ("" when prepared with a device). */
static void run(struct harness *h, struct dra_claims *c, enum dra_job_kind kind, char *err,
                size_t errsz, size_t *ret_devices) {
        const struct dra_claim_ref refs[] = {{.ns = "ns", .uid = "u1", .name = "c"}};
        uint64_t job;

        err[0] = '\0';
        *ret_devices = 0;
        CHECK_INT(dra_claims_submit(c, kind, refs, 1, &job), 0);
        CHECK_INT(loop_run(h->loop), 0);
        if (kind == DRA_JOB_PREPARE) {
                K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse *r =
                        k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__unpack(
                                NULL, h->len, h->resp);
                CHECK(r && r->n_claims == 1);
                if (r && r->n_claims == 1) {
                        snprintf(err, errsz, "%s", r->claims[0]->value->error);
                        *ret_devices = r->claims[0]->value->n_devices;
                        if (*ret_devices)
                                CHECK_STR(r->claims[0]->value->devices[0]->cdi_device_ids[0],
                                          "sgx.k8s.io/sgx=dcap");
                }
                k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__free_unpacked(
                        r, NULL);
        }
}

static void test_claims_worker_prepares_checkpoints_unprepares(void) {
        char dir[] = "/tmp/test-claims-XXXXXX", err[512], path[128];
        struct harness h = {.gets = 0};
        struct dra_claims *c = NULL;
        struct dra_claims_config cfg = {
                .driver = D,
                .pool = "node-1",
                .provision = true,
                .dra_dir = dir,
                .get = scripted_get,
                .get_userdata = &h,
                .on_done = on_done,
                .userdata = &h,
        };
        size_t n;

        CHECK(mkdtemp(dir) != NULL);
        CHECK_INT(loop_new(&h.loop), 0);
        CHECK_INT(dra_claims_start(h.loop, &cfg, &c), 0);
        run(&h, c, DRA_JOB_PREPARE, err, sizeof(err), &n);
        CHECK_STR(err, "");
        CHECK_INT(n, 1);
        CHECK_INT(h.gets, 1);
        run(&h, c, DRA_JOB_PREPARE, err, sizeof(err), &n); /* idempotent, no GET */
        CHECK_INT(n, 1);
        CHECK_INT(h.gets, 1);
        c = dra_claims_stop(c);

        /* a new worker (a restart) answers from the checkpoint, even with the API down */
        h.fail_get = true;
        CHECK_INT(dra_claims_start(h.loop, &cfg, &c), 0);
        run(&h, c, DRA_JOB_PREPARE, err, sizeof(err), &n);
        CHECK_STR(err, "");
        CHECK_INT(n, 1);
        CHECK_INT(h.gets, 1);
        run(&h, c, DRA_JOB_UNPREPARE, err, sizeof(err), &n);
        /* gone: the next prepare must read it, and the GET fails: that claim's error */
        run(&h, c, DRA_JOB_PREPARE, err, sizeof(err), &n);
        CHECK(strstr(err, "claim ns/c: cannot read it from the API server: API server "
                          "127.0.0.1:1 did not answer") != NULL);
        CHECK_INT(n, 0);
        CHECK_INT(h.gets, 2);
        c = dra_claims_stop(c);

        free(h.resp);
        h.loop = loop_free(h.loop);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        CHECK_INT(system(path), 0);
}

int main(void) {
        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        RUN(test_claims_read_takes_our_results);
        RUN(test_claims_read_errors);
        RUN(test_claims_checkpoint_round_trip);
        RUN(test_claims_cdi_device_id);
        RUN(test_claims_worker_prepares_checkpoints_unprepares);
        return unit_done();
}
