/* test_cdi.c - the CDI device names and the rendered CDI spec (src/sgx/cdi.c): the JSON is parsed
 * back with jansson and checked field by field for each driver layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cdi.h"
#include "fake_nodes.h"
#include "unit.h"

static struct sgx_cdi_config config(void) {
        return (struct sgx_cdi_config){
                .domain = "sgx.k8s.io",
                .edits = {.provision = true},
        };
}

/* Renders |d| and parses it back; NULL (and a failed check) when either fails. */
static json_t *render(const struct sgx_cdi_config *cfg, const struct discovery *d) {
        json_error_t jerr;
        json_t *spec;
        char *text = NULL;
        size_t len = 0;

        CHECK_INT(sgx_cdi_render(cfg, d, &text, &len), 0);
        if (!text)
                return NULL;
        CHECK_INT(len, strlen(text));
        CHECK(len > 0 && text[len - 1] == '\n');
        spec = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!spec)
                fprintf(stderr, "unparsable spec (%s):\n%s", jerr.text, text);
        CHECK(spec != NULL);
        free(text);
        return spec;
}

static const char *str(json_t *obj, const char *key) {
        return json_string_value(json_object_get(obj, key));
}

/* The device named |name| of |spec|, or NULL. */
static json_t *device(json_t *spec, const char *name) {
        json_t *devs = json_object_get(spec, "devices"), *dev;
        size_t i;

        json_array_foreach(devs, i, dev) {
                const char *n = str(dev, "name");
                if (n && strcmp(n, name) == 0)
                        return dev;
        }
        return NULL;
}

/* The device names of |spec|, "a,b,c". */
static void names(json_t *spec, char *buf, size_t size) {
        json_t *devs = json_object_get(spec, "devices"), *dev;
        size_t i, off = 0;

        buf[0] = '\0';
        json_array_foreach(devs, i, dev) off +=
                (size_t) snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                  str(dev, "name") ? str(dev, "name") : "?");
}

/*
 * The deviceNodes of |name| as "path<-hostPath c major:minor rw;..." after checking every node has
 * exactly the fields of the spec with their types.
 */
static void nodes(json_t *spec, const char *name, char *buf, size_t size) {
        json_t *dev = device(spec, name), *edits, *list, *n;
        size_t i, off = 0;

        buf[0] = '\0';
        CHECK(dev != NULL);
        edits = json_object_get(dev, "containerEdits");
        CHECK(json_is_object(edits));
        list = json_object_get(edits, "deviceNodes");
        CHECK(json_is_array(list));
        json_array_foreach(list, i, n) {
                CHECK_INT(json_object_size(n), 6);
                CHECK(json_is_string(json_object_get(n, "path")));
                CHECK(json_is_string(json_object_get(n, "hostPath")));
                CHECK(json_is_integer(json_object_get(n, "major")));
                CHECK(json_is_integer(json_object_get(n, "minor")));
                off += (size_t) snprintf(
                        buf + off, size - off, "%s%s<-%s %s %lld:%lld %s", i ? ";" : "",
                        str(n, "path"), str(n, "hostPath"), str(n, "type"),
                        (long long) json_integer_value(json_object_get(n, "major")),
                        (long long) json_integer_value(json_object_get(n, "minor")),
                        str(n, "permissions"));
        }
}

static void check_header(json_t *spec, const char *kind) {
        CHECK_STR(str(spec, "cdiVersion"), "0.5.0");
        CHECK_STR(str(spec, "kind"), kind);
        CHECK_INT(json_object_size(spec), 3);
}

static void test_cdi_device_names_per_kind_and_config(void) {
        struct discovery d = node_in_kernel(), ias = {0}, none = {0};
        struct sgx_edit_config prov = {.provision = true}, noprov = {.provision = false};
        char buf[SGX_CDI_QUALIFIED_SIZE];

        set_node(&ias.ias_enclave, "/dev/isgx", 10, 57);
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_SGX, &prov, &d), "dcap");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_DCAP, &prov, &d), "dcap");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_SGX, &noprov, &d), "dcap-noprovision");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_DCAP, &noprov, &d), "dcap-noprovision");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_PROVISION, &noprov, &d), "provision");
        CHECK(sgx_cdi_device_name(SGX_KIND_IAS, &prov, &d) == NULL);
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_SGX, &prov, &ias), "ias");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_IAS, &prov, &ias), "ias");
        CHECK(sgx_cdi_device_name(SGX_KIND_DCAP, &prov, &ias) == NULL);
        CHECK(sgx_cdi_device_name(SGX_KIND_SGX, &prov, &none) == NULL);
        CHECK(sgx_cdi_device_name(SGX_KIND_MAX, &prov, &d) == NULL);

        CHECK_INT(sgx_cdi_qualified_name("sgx.k8s.io", SGX_KIND_SGX, &prov, &d, buf, sizeof(buf)),
                  0);
        CHECK_STR(buf, "sgx.k8s.io/sgx=dcap");
        CHECK_INT(
                sgx_cdi_qualified_name("example.com", SGX_KIND_DCAP, &noprov, &d, buf, sizeof(buf)),
                0);
        CHECK_STR(buf, "example.com/sgx=dcap-noprovision");
        CHECK_INT(sgx_cdi_qualified_name("sgx.k8s.io", SGX_KIND_IAS, &prov, &d, buf, sizeof(buf)),
                  -ENODEV);
        CHECK_INT(sgx_cdi_qualified_name("sgx.k8s.io", SGX_KIND_MAX, &prov, &d, buf, sizeof(buf)),
                  -EINVAL);
        CHECK_INT(sgx_cdi_qualified_name("sgx.k8s.io", SGX_KIND_SGX, &prov, &d, buf, 10),
                  -ENAMETOOLONG);
}

static void test_cdi_qualified_name_fits_the_longest_domain(void) {
        struct discovery d = node_in_kernel();
        struct sgx_edit_config noprov = {.provision = false};
        char domain[SGX_DOMAIN_MAX + 1], buf[SGX_CDI_QUALIFIED_SIZE];

        memset(domain, 'a', SGX_DOMAIN_MAX);
        domain[SGX_DOMAIN_MAX] = '\0';
        CHECK_INT(sgx_cdi_qualified_name(domain, SGX_KIND_DCAP, &noprov, &d, buf, sizeof(buf)), 0);
        CHECK_INT(strlen(buf), SGX_CDI_QUALIFIED_SIZE - 1);
}

static void test_cdi_spec_path(void) {
        char buf[64];

        CHECK_INT(sgx_cdi_spec_path("/var/run/cdi", "sgx.k8s.io", buf, sizeof(buf)), 0);
        CHECK_STR(buf, "/var/run/cdi/sgx.k8s.io-sgx.json");
        CHECK_INT(sgx_cdi_spec_path("/var/run/cdi", "a-very-long-domain.example.com", buf, 32),
                  -ENAMETOOLONG);
}

static void test_cdi_in_kernel_spec(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = node_in_kernel();
        json_t *spec = render(&cfg, &d), *dev;
        char s[1024];

        check_header(spec, "sgx.k8s.io/sgx");
        names(spec, s, sizeof(s));
        CHECK_STR(s, "dcap"); /* sgx and dcap map to the same device; no IAS here */
        nodes(spec, "dcap", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave<-/dev/sgx_enclave c 10:125 rw;"
                     "/dev/sgx/enclave<-/dev/sgx_enclave c 10:125 rw;"
                     "/dev/sgx_provision<-/dev/sgx_provision c 10:126 rw;"
                     "/dev/sgx/provision<-/dev/sgx_provision c 10:126 rw");
        dev = device(spec, "dcap");
        CHECK_INT(json_object_size(dev), 2);
        /* no mounts, no environment: only what there is */
        CHECK_INT(json_object_size(json_object_get(dev, "containerEdits")), 1);
        json_decref(spec);
}

static void test_cdi_dcap_driver_dir_spec(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = {0};
        json_t *spec;
        char s[1024];

        set_node(&d.dcap_enclave, "/dev/sgx/enclave", 10, 125);
        set_node(&d.dcap_provision, "/dev/sgx/provision", 10, 126);
        cfg.domain = "example.com";
        spec = render(&cfg, &d);
        check_header(spec, "example.com/sgx");
        nodes(spec, "dcap", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave<-/dev/sgx/enclave c 10:125 rw;"
                     "/dev/sgx/enclave<-/dev/sgx/enclave c 10:125 rw;"
                     "/dev/sgx_provision<-/dev/sgx/provision c 10:126 rw;"
                     "/dev/sgx/provision<-/dev/sgx/provision c 10:126 rw");
        json_decref(spec);
}

static void test_cdi_legacy_dcap_spec(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = {0};
        json_t *spec;
        char s[1024];

        set_node(&d.dcap_enclave, "/dev/sgx", 10, 60);
        set_node(&d.dcap_provision, "/dev/sgx_prv", 10, 61);
        d.dcap_legacy = true;
        spec = render(&cfg, &d);
        check_header(spec, "sgx.k8s.io/sgx");
        nodes(spec, "dcap", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx<-/dev/sgx c 10:60 rw;/dev/sgx_prv<-/dev/sgx_prv c 10:61 rw");
        json_decref(spec);
}

static void test_cdi_ias_and_both_spec(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = {0};
        json_t *spec;
        char s[1024];

        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        spec = render(&cfg, &d);
        names(spec, s, sizeof(s));
        CHECK_STR(s, "ias");
        nodes(spec, "ias", s, sizeof(s));
        CHECK_STR(s, "/dev/isgx<-/dev/isgx c 10:57 rw");
        json_decref(spec);

        /* a node with both drivers: sgx is dcap, and ias is a device of its own */
        d = node_in_kernel();
        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        spec = render(&cfg, &d);
        names(spec, s, sizeof(s));
        CHECK_STR(s, "dcap,ias");
        nodes(spec, "ias", s, sizeof(s));
        CHECK_STR(s, "/dev/isgx<-/dev/isgx c 10:57 rw");
        json_decref(spec);
}

static void test_cdi_no_provision_and_provision_resource(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = node_in_kernel();
        json_t *spec;
        char s[1024];

        cfg.edits.provision = false;
        spec = render(&cfg, &d);
        names(spec, s, sizeof(s));
        CHECK_STR(s, "dcap-noprovision");
        nodes(spec, "dcap-noprovision", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave<-/dev/sgx_enclave c 10:125 rw;"
                     "/dev/sgx/enclave<-/dev/sgx_enclave c 10:125 rw");
        json_decref(spec);

        /* D/provision served: its device too */
        cfg.kinds.provision_resource = true;
        spec = render(&cfg, &d);
        names(spec, s, sizeof(s));
        CHECK_STR(s, "dcap-noprovision,provision");
        nodes(spec, "provision", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_provision<-/dev/sgx_provision c 10:126 rw;"
                     "/dev/sgx/provision<-/dev/sgx_provision c 10:126 rw");
        json_decref(spec);
}

static void test_cdi_aesmd_mount(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = node_in_kernel();
        json_t *spec, *mounts, *m, *opts;

        cfg.edits.aesmd_dir = "/var/run/aesmd \"quoted\"";
        spec = render(&cfg, &d);
        mounts = json_object_get(json_object_get(device(spec, "dcap"), "containerEdits"), "mounts");
        CHECK_INT(json_array_size(mounts), 1);
        m = json_array_get(mounts, 0);
        CHECK_STR(str(m, "hostPath"), "/var/run/aesmd \"quoted\"");
        CHECK_STR(str(m, "containerPath"), "/var/run/aesmd \"quoted\"");
        opts = json_object_get(m, "options");
        CHECK_INT(json_array_size(opts), 2);
        CHECK_STR(json_string_value(json_array_get(opts, 0)), "rbind");
        CHECK_STR(json_string_value(json_array_get(opts, 1)), "rw");
        json_decref(spec);
}

static void test_cdi_no_device_is_no_spec(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = {0};
        enum sgx_kind kinds[SGX_KIND_MAX];
        const char *n[SGX_KIND_MAX];
        char *text = NULL;

        /* CDI requires at least one device: there is no valid spec to write */
        CHECK_INT(sgx_cdi_render(&cfg, &d, &text, NULL), -ENODEV);
        CHECK(text == NULL);
        CHECK_INT(sgx_cdi_devices(&cfg, &d, kinds, n, SGX_KIND_MAX), 0);
        /* a provisioning device alone is no SGX, unless D/provision is served */
        set_node(&d.dcap_provision, "/dev/sgx_provision", 10, 126);
        CHECK_INT(sgx_cdi_render(&cfg, &d, &text, NULL), -ENODEV);
}

/* --compat intel: its enclave resource gets the enclave alone, its provision resource the
 * provisioning device; the EPC kinds share dcap's device. */
static void test_cdi_compat_kinds(void) {
        struct sgx_cdi_config cfg = config();
        struct discovery d = node_in_kernel();
        json_t *spec;
        char s[1024];

        CHECK_STR(sgx_cdi_device_name(SGX_KIND_INTEL_ENCLAVE, &cfg.edits, &d), "dcap-noprovision");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_INTEL_PROVISION, &cfg.edits, &d), "provision");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_AZURE_EPC, &cfg.edits, &d), "dcap");
        CHECK_STR(sgx_cdi_device_name(SGX_KIND_ALIBABA_EPC, &cfg.edits, &d), "dcap");
        cfg.kinds.compat = SGX_COMPAT_INTEL | SGX_COMPAT_AZURE;
        spec = render(&cfg, &d);
        names(spec, s, sizeof(s));
        CHECK_STR(s, "dcap,dcap-noprovision,provision");
        nodes(spec, "dcap-noprovision", s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave<-/dev/sgx_enclave c 10:125 rw;"
                     "/dev/sgx/enclave<-/dev/sgx_enclave c 10:125 rw");
        json_decref(spec);
}

int main(void) {
        RUN(test_cdi_compat_kinds);
        RUN(test_cdi_device_names_per_kind_and_config);
        RUN(test_cdi_qualified_name_fits_the_longest_domain);
        RUN(test_cdi_spec_path);
        RUN(test_cdi_in_kernel_spec);
        RUN(test_cdi_dcap_driver_dir_spec);
        RUN(test_cdi_legacy_dcap_spec);
        RUN(test_cdi_ias_and_both_spec);
        RUN(test_cdi_no_provision_and_provision_resource);
        RUN(test_cdi_aesmd_mount);
        RUN(test_cdi_no_device_is_no_spec);
        return unit_done();
}
