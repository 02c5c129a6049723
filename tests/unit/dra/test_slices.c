/*
 * test_slices.c - what the node's ResourceSlice says (slices.c), without an API server: the pool
 * per device layout, the kernel version, generateName, the spec's JSON, the comparison that
 * decides whether to write (quantities by value, pool.generation aside), quantities. Then the
 * publisher with a scripted request function: a first publish creates, an equal slice is left
 * alone, a changed pool updates in place with the generation bumped, extra slices are deleted.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "capabilities.h"
#include "discovery.h"
#include "log.h"
#include "slices.h"
#include "unit.h"

#define D "sgx.k8s.io"
#define MIB (1ull << 20)

static struct sgx_caps caps_sgx2(enum sgx_driver drv) {
        struct sgx_caps c;

        memset(&c, 0, sizeof(c));
        c.cpu.sgx1 = c.cpu.sgx2 = true;
        c.flc = true;
        c.driver = drv;
        c.sgx2_usable = drv == SGX_DRIVER_INKERNEL;
        c.epc_bytes = 128 * MIB;
        snprintf(c.kernel.release, sizeof(c.kernel.release), "6.5.0-18-generic");
        return c;
}

static struct discovery node_devices(bool dcap, bool provision, bool ias) {
        struct discovery d;

        memset(&d, 0, sizeof(d));
        if (dcap) {
                d.dcap_enclave.present = true;
                snprintf(d.dcap_enclave.host_path, sizeof(d.dcap_enclave.host_path),
                         "/dev/sgx_enclave");
        }
        if (provision)
                d.dcap_provision.present = true;
        if (ias) {
                d.ias_enclave.present = true;
                snprintf(d.ias_enclave.host_path, sizeof(d.ias_enclave.host_path), "/dev/isgx");
        }
        return d;
}

static void test_slices_kernel_version(void) {
        char v[32];

        CHECK_INT(dra_kernel_version("6.5.0-18-generic", v, sizeof(v)), 0);
        CHECK_STR(v, "6.5.0");
        CHECK_INT(dra_kernel_version("6.8", v, sizeof(v)), 0);
        CHECK_STR(v, "6.8.0");
        CHECK_INT(dra_kernel_version("5.15.0-1049-azure", v, sizeof(v)), 0);
        CHECK_STR(v, "5.15.0");
        CHECK_INT(dra_kernel_version("4.18.0-513.el8.x86_64", v, sizeof(v)), 0);
        CHECK_STR(v, "4.18.0");
        CHECK_INT(dra_kernel_version("06.01.02", v, sizeof(v)), 0);
        CHECK_STR(v, "6.1.2"); /* no leading zeros in a semantic version */
        CHECK_INT(dra_kernel_version("", v, sizeof(v)), -EINVAL);
        CHECK_INT(dra_kernel_version("6", v, sizeof(v)), -EINVAL);
        CHECK_INT(dra_kernel_version("linux-6.5", v, sizeof(v)), -EINVAL);
        CHECK_INT(dra_kernel_version("6.5.0", v, 4), -ENOSPC);
}

static void test_slices_pool_per_layout(void) {
        struct sgx_caps c = caps_sgx2(SGX_DRIVER_INKERNEL);
        struct discovery d = node_devices(true, true, true);
        struct dra_pool p;

        dra_pool_desired(&c, &d, &p);
        CHECK_INT(p.n, 2);
        CHECK_STR(p.dev[0].name, "dcap");
        CHECK_STR(p.dev[0].driver, "in-kernel");
        CHECK(p.dev[0].provisioning && p.dev[0].edmm && p.dev[0].sgx2 && p.dev[0].flc);
        CHECK_INT(p.dev[0].epc_bytes, 128 * MIB);
        CHECK_STR(p.dev[0].kernel, "6.5.0");
        CHECK_STR(p.dev[0].kernel_release, "6.5.0-18-generic");
        CHECK_STR(p.dev[1].name, "ias");
        CHECK_STR(p.dev[1].driver, "ias");
        CHECK(!p.dev[1].provisioning);

        c = caps_sgx2(SGX_DRIVER_DCAP_LEGACY);
        d = node_devices(true, false, false);
        dra_pool_desired(&c, &d, &p);
        CHECK_INT(p.n, 1);
        CHECK_STR(p.dev[0].driver, "legacy-dcap");
        CHECK(!p.dev[0].provisioning && !p.dev[0].edmm);

        d = node_devices(false, false, false);
        dra_pool_desired(&c, &d, &p);
        CHECK_INT(p.n, 0);
        dra_pool_desired(&c, NULL, &p);
        CHECK_INT(p.n, 0);
}

static void test_slices_generate_name_is_cut_like_the_server(void) {
        char buf[128], node[80];

        dra_generate_name("node-1", D, buf, sizeof(buf));
        CHECK_STR(buf, "node-1-sgx.k8s.io-");
        memset(node, 'n', sizeof(node) - 1);
        node[sizeof(node) - 1] = '\0';
        dra_generate_name(node, D, buf, sizeof(buf));
        CHECK_INT(strlen(buf), DRA_GENERATED_PREFIX);
}

static void test_slices_spec_json(void) {
        struct sgx_caps c = caps_sgx2(SGX_DRIVER_INKERNEL);
        struct discovery d = node_devices(true, true, false);
        struct dra_pool p;
        json_t *obj, *dev;
        char *s;

        dra_pool_desired(&c, &d, &p);
        obj = dra_slice_new(D, "node-1", "uid-1", &p, 3);
        CHECK(obj != NULL);
        if (!obj)
                return;
        CHECK_STR(json_string_value(json_object_get(obj, "apiVersion")), "resource.k8s.io/v1");
        CHECK_STR(json_string_value(
                          json_object_get(json_object_get(obj, "metadata"), "generateName")),
                  "node-1-sgx.k8s.io-");
        s = json_dumps(json_object_get(obj, "spec"), JSON_COMPACT | JSON_SORT_KEYS);
        CHECK(s && strstr(s, "\"pool\":{\"generation\":3,\"name\":\"node-1\","
                             "\"resourceSliceCount\":1}") != NULL);
        CHECK(s && strstr(s, "\"driver\":\"sgx.k8s.io\"") != NULL);
        CHECK(s && strstr(s, "\"nodeName\":\"node-1\"") != NULL);
        free(s);
        dev = json_array_get(json_object_get(json_object_get(obj, "spec"), "devices"), 0);
        s = json_dumps(dev, JSON_COMPACT | JSON_SORT_KEYS);
        CHECK(s && strstr(s, "\"allowMultipleAllocations\":true") != NULL);
        CHECK(s && strstr(s, "\"capacity\":{\"epc\":{\"requestPolicy\":{\"default\":\"0\","
                             "\"validRange\":{\"min\":\"0\"}},\"value\":\"134217728\"}}") != NULL);
        CHECK(s && strstr(s, "\"sgx.k8s.io/kernel\":{\"version\":\"6.5.0\"}") != NULL);
        CHECK(s && strstr(s, "\"sgx.k8s.io/epcBytes\":{\"int\":134217728}") != NULL);
        CHECK(s && strstr(s, "\"sgx.k8s.io/provisioning\":{\"bool\":true}") != NULL);
        free(s);
        s = json_dumps(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"),
                       JSON_COMPACT | JSON_SORT_KEYS);
        CHECK_STR(s, "[{\"apiVersion\":\"v1\",\"controller\":true,\"kind\":\"Node\",\"name\":"
                     "\"node-1\",\"uid\":\"uid-1\"}]");
        free(s);
        json_decref(obj);
}

static void test_slices_spec_same_ignores_generation_and_quantity_form(void) {
        struct sgx_caps c = caps_sgx2(SGX_DRIVER_INKERNEL);
        struct discovery d = node_devices(true, true, false);
        struct dra_pool p;
        json_t *a, *b, *epc;

        dra_pool_desired(&c, &d, &p);
        a = dra_slice_spec(D, "node-1", &p, 1);
        b = dra_slice_spec(D, "node-1", &p, 5);
        CHECK(dra_spec_same(a, b));
        /* the server's canonical form of 134217728 bytes */
        epc = json_object_get(
                json_object_get(json_object_get(json_array_get(json_object_get(b, "devices"), 0),
                                                "capacity"),
                                "epc"),
                "value");
        json_string_set(epc, "128Mi");
        CHECK(dra_spec_same(a, b));
        json_string_set(epc, "129Mi");
        CHECK(!dra_spec_same(a, b));
        json_decref(b);

        p.dev[0].flc = false;
        b = dra_slice_spec(D, "node-1", &p, 1);
        CHECK(!dra_spec_same(a, b));
        json_decref(b);
        p.n = 0;
        b = dra_slice_spec(D, "node-1", &p, 1);
        CHECK(!dra_spec_same(a, b));
        json_decref(b);
        CHECK(!dra_spec_same(a, NULL));
        json_decref(a);
}

static void test_slices_slots_are_cut_every_128(void) {
        struct sgx_caps c = caps_sgx2(SGX_DRIVER_INKERNEL);
        struct discovery d = node_devices(true, true, true);
        struct dra_pool p;
        json_t *spec, *devs, *dev;

        dra_pool_desired(&c, &d, &p);
        CHECK_INT(dra_slice_parts(&p), 1);
        p.slots = 110; /* 220 devices: 128 + 92 */
        CHECK_INT(dra_slice_parts(&p), 2);
        spec = dra_slice_spec_part(D, "node-1", &p, 4, 1);
        devs = json_object_get(spec, "devices");
        CHECK_INT(json_array_size(devs), 92);
        CHECK_INT(json_integer_value(
                          json_object_get(json_object_get(spec, "pool"), "resourceSliceCount")),
                  2);
        dev = json_array_get(devs, 0); /* device 128: ias-18 */
        CHECK_STR(json_string_value(json_object_get(dev, "name")), "ias-18");
        CHECK(json_object_get(dev, "allowMultipleAllocations") == NULL); /* exclusive */
        CHECK(json_object_get(json_object_get(json_object_get(dev, "capacity"), "epc"),
                              "requestPolicy") == NULL);
        CHECK_STR(json_string_value(json_object_get(json_array_get(devs, 91), "name")), "ias-109");
        json_decref(spec);
        spec = dra_slice_spec_part(D, "node-1", &p, 4, 0);
        CHECK_INT(json_array_size(json_object_get(spec, "devices")), 128);
        CHECK_STR(json_string_value(json_object_get(
                          json_array_get(json_object_get(spec, "devices"), 127), "name")),
                  "ias-17");
        json_decref(spec);
        p.n = 0; /* no device: still one (empty) slice */
        CHECK_INT(dra_slice_parts(&p), 1);
}

static void test_slices_quantity_parse(void) {
        uint64_t v;

        CHECK_INT(dra_quantity_parse("134217728", &v), 0);
        CHECK_INT(v, 134217728);
        CHECK_INT(dra_quantity_parse("128Mi", &v), 0);
        CHECK_INT(v, 128 * MIB);
        CHECK_INT(dra_quantity_parse("2k", &v), 0);
        CHECK_INT(v, 2000);
        CHECK_INT(dra_quantity_parse("0", &v), 0);
        CHECK_INT(v, 0);
        CHECK_INT(dra_quantity_parse("1.5Gi", &v), -EINVAL);
        CHECK_INT(dra_quantity_parse("-1", &v), -EINVAL);
        CHECK_INT(dra_quantity_parse("1X", &v), -EINVAL);
        CHECK_INT(dra_quantity_parse("", &v), -EINVAL);
        CHECK_INT(dra_quantity_parse("99999999999999999999", &v), -ERANGE);
        CHECK_INT(dra_quantity_parse("16Ei", &v), -ERANGE);
}

/* ---- the publisher, against a scripted API server ---- */

struct script {
        int n_calls;
        char methods[32][8];
        char paths[32][256];
        char *bodies[32];
        json_t *stored; /* the one slice the "server" holds, or NULL */
        int rv;
        bool extra; /* the list also holds a second slice of ours */
        bool deleted;
};

static int scripted(void *userdata, const char *method, const char *path, const char *body,
                    int cancel_fd, struct api_response *resp, char *err, size_t errsz) {
        struct script *sc = userdata;
        json_t *out = NULL;
        int i = sc->n_calls < 32 ? sc->n_calls : 31;

        snprintf(sc->methods[i], sizeof(sc->methods[i]), "%s", method);
        snprintf(sc->paths[i], sizeof(sc->paths[i]), "%s", path);
        free(sc->bodies[i]);
        sc->bodies[i] = body ? strdup(body) : NULL;
        sc->n_calls++;
        resp->status = 200;
        if (strcmp(method, "GET") == 0 && strncmp(path, "/api/v1/nodes/", 14) == 0) {
                out = json_pack("{s:{s:s,s:s}}", "metadata", "name", "node-1", "uid", "uid-1");
        } else if (strcmp(method, "GET") == 0) {
                json_t *items = json_array();

                if (sc->stored)
                        json_array_append(items, sc->stored);
                if (sc->extra && !sc->deleted)
                        json_array_append_new(items, json_pack("{s:{s:s,s:s,s:s},s:{s:{s:i}}}",
                                                               "metadata", "name", "zzz", "uid",
                                                               "u-z", "resourceVersion", "9",
                                                               "spec", "pool", "generation", 4));
                out = json_pack("{s:o}", "items", items);
        } else if (strcmp(method, "DELETE") == 0) {
                sc->deleted = true;
                out = json_object();
        } else {
                json_t *obj = json_loads(body, 0, NULL);
                json_t *md = json_object_get(obj, "metadata");
                char rv[16];

                if (strcmp(method, "POST") == 0) {
                        json_object_set_new(md, "name", json_string("node-1-sgx.k8s.io-abcde"));
                        resp->status = 201;
                }
                snprintf(rv, sizeof(rv), "%d", ++sc->rv);
                json_object_set_new(md, "resourceVersion", json_string(rv));
                json_decref(sc->stored);
                sc->stored = json_incref(obj);
                out = obj;
        }
        resp->body = json_dumps(out, JSON_COMPACT);
        resp->body_len = strlen(resp->body);
        json_decref(out);
        return 0;
}

static void wait_calls(struct script *sc, int n) {
        for (int i = 0; i < 500 && __atomic_load_n(&sc->n_calls, __ATOMIC_SEQ_CST) < n; i++)
                usleep(10000);
        usleep(50000); /* and nothing more */
}

static int64_t stored_generation(const struct script *sc) {
        return json_integer_value(json_object_get(
                json_object_get(json_object_get(sc->stored, "spec"), "pool"), "generation"));
}

static void test_slices_publisher_creates_keeps_updates_deletes(void) {
        struct sgx_caps c = caps_sgx2(SGX_DRIVER_INKERNEL);
        struct discovery d = node_devices(true, true, true);
        struct script sc = {.n_calls = 0};
        struct dra_slices_config cfg = {
                .driver = D,
                .node_name = "node-1",
                .interval_ms = 3600000,
                .backoff_min_ms = 10,
                .backoff_max_ms = 20,
                .request = scripted,
                .request_userdata = &sc,
        };
        struct dra_slices *s = NULL;
        struct dra_pool p;

        CHECK_INT(dra_slices_start(&cfg, &s), 0);
        if (!s)
                return;
        dra_pool_desired(&c, &d, &p);
        dra_slices_set(s, &p);
        wait_calls(&sc, 3);
        CHECK_INT(sc.n_calls, 3); /* GET node, LIST, POST */
        CHECK_STR(sc.methods[1], "GET");
        CHECK_STR(sc.paths[1], "/apis/resource.k8s.io/v1/resourceslices?fieldSelector="
                               "spec.driver%3Dsgx.k8s.io%2Cspec.nodeName%3Dnode-1");
        CHECK_STR(sc.methods[2], "POST");
        CHECK_INT(stored_generation(&sc), 1);

        /* the same pool again: nothing is sent */
        dra_slices_set(s, &p);
        wait_calls(&sc, 4);
        CHECK_INT(sc.n_calls, 3);

        /* a device gone, and an extra slice of ours (generation 4) appeared */
        sc.extra = true;
        d = node_devices(true, true, false);
        dra_pool_desired(&c, &d, &p);
        dra_slices_set(s, &p);
        wait_calls(&sc, 7);
        CHECK_INT(sc.n_calls, 7); /* GET node, LIST, PUT, DELETE */
        CHECK_STR(sc.methods[5], "PUT");
        CHECK_STR(sc.paths[5], "/apis/resource.k8s.io/v1/resourceslices/node-1-sgx.k8s.io-abcde");
        CHECK(sc.bodies[5] && strstr(sc.bodies[5], "\"resourceVersion\":\"1\"") != NULL);
        CHECK_INT(stored_generation(&sc), 5); /* above every generation seen */
        CHECK_STR(sc.methods[6], "DELETE");
        CHECK_STR(sc.paths[6], "/apis/resource.k8s.io/v1/resourceslices/zzz");
        CHECK(sc.bodies[6] && strstr(sc.bodies[6], "\"preconditions\":{\"uid\":\"u-z\","
                                                   "\"resourceVersion\":\"9\"}") != NULL);

        s = dra_slices_stop(s);
        CHECK(s == NULL);
        json_decref(sc.stored);
        for (int i = 0; i < 32; i++)
                free(sc.bodies[i]);
}

int main(void) {
        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        RUN(test_slices_kernel_version);
        RUN(test_slices_pool_per_layout);
        RUN(test_slices_generate_name_is_cut_like_the_server);
        RUN(test_slices_spec_json);
        RUN(test_slices_spec_same_ignores_generation_and_quantity_form);
        RUN(test_slices_slots_are_cut_every_128);
        RUN(test_slices_quantity_parse);
        RUN(test_slices_publisher_creates_keeps_updates_deletes);
        return unit_done();
}
