/* test_resources.c - the resource table (src/sgx/resources.c): names, sockets, IDs, presence. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "discovery.h"
#include "resources.h"
#include "fake_nodes.h"
#include "unit.h"

static void test_resources_table_is_indexed_by_kind(void) {
        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                const struct sgx_resource_desc *d = sgx_resource(k);

                CHECK(d != NULL);
                if (!d)
                        continue;
                CHECK_INT(d->kind, k);
                CHECK(strlen(d->name) <= SGX_KIND_NAME_MAX);
                CHECK(strlen(d->socket_name) <= SGX_SOCKET_NAME_MAX);
                CHECK(d->help && d->help[0]);
                CHECK(d->present != NULL);
        }
        CHECK(sgx_resource(SGX_KIND_MAX) == NULL);
        CHECK(sgx_resource((enum sgx_kind) -1) == NULL);
        CHECK_STR(sgx_kind_name(SGX_KIND_MAX), "unknown");
        CHECK_STR(sgx_longest_socket_name(SGX_COMPAT_NONE), "sgxdevplugin-provision.sock");
        CHECK_STR(sgx_longest_socket_name(SGX_COMPAT_AZURE), "sgxdevplugin-provision.sock");
        CHECK_STR(sgx_longest_socket_name(SGX_COMPAT_INTEL), "sgxdevplugin-intel-provision.sock");
        CHECK_INT(strlen(sgx_longest_socket_name(~0u)), SGX_SOCKET_NAME_MAX);
}

static void test_resources_names_fit_the_longest_domain(void) {
        char domain[SGX_DOMAIN_MAX + 2], buf[SGX_RESOURCE_NAME_SIZE];

        memset(domain, 'a', SGX_DOMAIN_MAX);
        domain[SGX_DOMAIN_MAX] = '\0';
        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++)
                CHECK_INT(sgx_resource_name(domain, k, buf, sizeof(buf)), 0);
        CHECK_INT(sgx_resource_name(domain, SGX_KIND_PROVISION, buf, sizeof(buf)), 0);
        CHECK_INT(strlen(buf), SGX_RESOURCE_NAME_MAX);
        /* one more is not a domain */
        domain[SGX_DOMAIN_MAX] = 'a';
        domain[SGX_DOMAIN_MAX + 1] = '\0';
        CHECK_INT(sgx_resource_name(domain, SGX_KIND_SGX, buf, sizeof(buf)), -EINVAL);
        CHECK_INT(sgx_resource_name("sgx.k8s.io", SGX_KIND_MAX, buf, sizeof(buf)), -EINVAL);
        CHECK_INT(sgx_resource_name("sgx.k8s.io", SGX_KIND_DCAP, buf, 8), -ENAMETOOLONG);
}

static void test_resources_socket_path(void) {
        char buf[64];

        CHECK_INT(sgx_socket_path("/k", SGX_KIND_DCAP, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "/k/sgxdevplugin-dcap.sock");
        CHECK_INT(sgx_socket_path("/k", SGX_KIND_DCAP, buf, 10), -ENAMETOOLONG);
        CHECK_INT(sgx_socket_path("/k", SGX_KIND_MAX, buf, sizeof(buf)), -EINVAL);
}

static void test_resources_ids(void) {
        unsigned n = 99;

        CHECK(sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-0", &n));
        CHECK_INT(n, 0);
        CHECK(sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-109", &n));
        CHECK_INT(n, 109);
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-110", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-01", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap--1", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-1x", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "sgx-1", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap1", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 0, "dcap-0", NULL));
        CHECK(!sgx_parse_id(SGX_KIND_DCAP, 110, "dcap-99999999999999999999999", NULL));
        CHECK(sgx_parse_id(SGX_KIND_SGX, 100000, "sgx-99999", &n));
        CHECK_INT(n, 99999);
        CHECK(!sgx_parse_id(SGX_KIND_MAX, 110, "x-0", NULL));
}

static void test_resources_enabled_and_present(void) {
        struct sgx_resource_options off = {.provision_resource = false};
        struct sgx_resource_options on = {.provision_resource = true};
        struct discovery d = {0};

        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++) {
                CHECK(sgx_kind_enabled(k, &on) == (sgx_resource(k)->compat == SGX_COMPAT_NONE));
                CHECK(sgx_kind_enabled(k, &off) == !sgx_resource(k)->opt_in);
                CHECK(!sgx_kind_present(k, &d));
        }
        CHECK(!sgx_kind_enabled(SGX_KIND_MAX, &on));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 55);
        CHECK(sgx_kind_present(SGX_KIND_SGX, &d));
        CHECK(sgx_kind_present(SGX_KIND_IAS, &d));
        CHECK(!sgx_kind_present(SGX_KIND_DCAP, &d));
        CHECK(!sgx_kind_present(SGX_KIND_PROVISION, &d));
}

static void test_resources_slots_from_max_pods_or_epc(void) {
        CHECK_INT(sgx_kind_slots(SGX_KIND_DCAP, 110, 128ull << 20), 110);
        CHECK_INT(sgx_kind_slots(SGX_KIND_INTEL_ENCLAVE, 7, 0), 7);
        /* one per whole MiB of EPC */
        CHECK_INT(sgx_kind_slots(SGX_KIND_AZURE_EPC, 110, 128ull << 20), 128);
        CHECK_INT(sgx_kind_slots(SGX_KIND_ALIBABA_EPC, 110, (93ull << 20) + 12345), 93);
        CHECK_INT(sgx_kind_slots(SGX_KIND_AZURE_EPC, 110, 0), 0);
        CHECK_INT(sgx_kind_slots(SGX_KIND_AZURE_EPC, 110, UINT64_MAX), UINT32_MAX);
        CHECK_INT(sgx_kind_slots(SGX_KIND_MAX, 110, 0), 0);
}

static void test_resources_compat_names_and_fixed_domains(void) {
        char buf[SGX_RESOURCE_NAME_SIZE];

        CHECK_INT(sgx_resource_name("sgx.k8s.io", SGX_KIND_INTEL_ENCLAVE, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.intel.com/enclave");
        CHECK_INT(sgx_resource_name("example.com", SGX_KIND_INTEL_PROVISION, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "sgx.intel.com/provision");
        CHECK_INT(sgx_resource_name("sgx.k8s.io", SGX_KIND_AZURE_EPC, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "kubernetes.azure.com/sgx_epc_mem_in_MiB");
        CHECK_INT(sgx_resource_name("sgx.k8s.io", SGX_KIND_ALIBABA_EPC, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "alibabacloud.com/sgx_epc_MiB");
        CHECK_INT(sgx_socket_path("/k", SGX_KIND_AZURE_EPC, buf, sizeof(buf)), 0);
        CHECK_STR(buf, "/k/sgxdevplugin-azure-epc.sock");
}

static void test_resources_compat_enables_its_kinds_only(void) {
        struct sgx_resource_options intel = {.compat = SGX_COMPAT_INTEL};
        struct sgx_resource_options cloud = {.compat = SGX_COMPAT_AZURE | SGX_COMPAT_ALIBABA};

        CHECK(sgx_kind_enabled(SGX_KIND_INTEL_ENCLAVE, &intel));
        CHECK(sgx_kind_enabled(SGX_KIND_INTEL_PROVISION, &intel));
        CHECK(!sgx_kind_enabled(SGX_KIND_AZURE_EPC, &intel));
        CHECK(!sgx_kind_enabled(SGX_KIND_PROVISION, &intel));
        CHECK(sgx_kind_enabled(SGX_KIND_AZURE_EPC, &cloud));
        CHECK(sgx_kind_enabled(SGX_KIND_ALIBABA_EPC, &cloud));
        CHECK(!sgx_kind_enabled(SGX_KIND_INTEL_ENCLAVE, &cloud));
        CHECK(sgx_kind_enabled(SGX_KIND_DCAP, &cloud));
}

static void test_resources_compat_parse(void) {
        unsigned bits = 99;
        const char *bad = NULL;
        const char *in = "azure,bogus";

        CHECK_INT(sgx_compat_parse("intel", &bits, &bad), 0);
        CHECK_INT(bits, SGX_COMPAT_INTEL);
        CHECK_INT(sgx_compat_parse("alibaba,intel,azure", &bits, &bad), 0);
        CHECK_INT(bits, SGX_COMPAT_INTEL | SGX_COMPAT_AZURE | SGX_COMPAT_ALIBABA);
        CHECK_INT(sgx_compat_parse(in, &bits, &bad), -EINVAL);
        CHECK(bad == in + 6);
        CHECK_INT(sgx_compat_parse("intel,intel", &bits, &bad), -EINVAL);
        CHECK_INT(sgx_compat_parse("", &bits, &bad), -EINVAL);
        CHECK_INT(sgx_compat_parse("intel,", &bits, &bad), -EINVAL);
        CHECK_INT(sgx_compat_parse(",intel", &bits, &bad), -EINVAL);
        CHECK_INT(sgx_compat_parse("Intel", &bits, &bad), -EINVAL);
        CHECK_STR(sgx_compat_name(SGX_COMPAT_AZURE), "azure");
        CHECK_STR(sgx_compat_name(SGX_COMPAT_NONE), "none");
        CHECK_STR(sgx_compat_name((enum sgx_compat) 3), "unknown");
}

static void test_resources_other_plugin_sockets(void) {
        const char *r = "x";

        CHECK(sgx_is_other_plugin_socket("sgx.intel.com-enclave.sock", &r));
        CHECK_STR(r, "sgx.intel.com/enclave");
        CHECK(sgx_is_other_plugin_socket("sgx.intel.com-provision.sock", &r));
        CHECK_STR(r, "sgx.intel.com/provision");
        CHECK(sgx_is_other_plugin_socket("SGX-plugin.sock", &r));
        CHECK(r == NULL);
        CHECK(sgx_is_other_plugin_socket("azure-epc.sock", NULL));
        /* ours, the kubelet's and unrelated plugins are not */
        CHECK(!sgx_is_other_plugin_socket("sgxdevplugin-dcap.sock", &r));
        CHECK(!sgx_is_other_plugin_socket("kubelet.sock", &r));
        CHECK(!sgx_is_other_plugin_socket("nvidia-gpu.sock", &r));
        CHECK(r == NULL);
}

int main(void) {
        RUN(test_resources_table_is_indexed_by_kind);
        RUN(test_resources_names_fit_the_longest_domain);
        RUN(test_resources_socket_path);
        RUN(test_resources_ids);
        RUN(test_resources_enabled_and_present);
        RUN(test_resources_slots_from_max_pods_or_epc);
        RUN(test_resources_compat_names_and_fixed_domains);
        RUN(test_resources_compat_enables_its_kinds_only);
        RUN(test_resources_compat_parse);
        RUN(test_resources_other_plugin_sockets);
        return unit_done();
}
