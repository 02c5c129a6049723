/* test_resources.c - the resource table (src/sgx/resources.c): names, sockets, IDs, presence. */
#include <errno.h>
#include <string.h>

#include "discovery.h"
#include "resources.h"
#include "unit.h"

static void set_node(struct sgx_node *n, const char *path, unsigned major, unsigned minor) {
        n->present = true;
        strcpy(n->host_path, path);
        n->major = major;
        n->minor = minor;
}

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
        CHECK_STR(sgx_longest_socket_name(), "sgxdevplugin-provision.sock");
        CHECK_INT(strlen(sgx_longest_socket_name()), SGX_SOCKET_NAME_MAX);
}

static void test_resources_names_fit_the_longest_domain(void) {
        char domain[SGX_DOMAIN_MAX + 2], buf[SGX_RESOURCE_NAME_SIZE];

        memset(domain, 'a', SGX_DOMAIN_MAX);
        domain[SGX_DOMAIN_MAX] = '\0';
        for (enum sgx_kind k = 0; k < SGX_KIND_MAX; k++)
                CHECK_INT(sgx_resource_name(domain, k, buf, sizeof(buf)), 0);
        CHECK_INT(strlen(buf), SGX_DOMAIN_MAX + 1 + strlen(sgx_kind_name(SGX_KIND_MAX - 1)));
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
                CHECK(sgx_kind_enabled(k, &on));
                CHECK(sgx_kind_enabled(k, &off) == !sgx_resource(k)->opt_in);
                CHECK(!sgx_kind_present(k, &d));
                CHECK_INT(sgx_kind_slots(k, 110), 110);
        }
        CHECK(!sgx_kind_enabled(SGX_KIND_MAX, &on));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 55);
        CHECK(sgx_kind_present(SGX_KIND_SGX, &d));
        CHECK(sgx_kind_present(SGX_KIND_IAS, &d));
        CHECK(!sgx_kind_present(SGX_KIND_DCAP, &d));
        CHECK(!sgx_kind_present(SGX_KIND_PROVISION, &d));
}

int main(void) {
        RUN(test_resources_table_is_indexed_by_kind);
        RUN(test_resources_names_fit_the_longest_domain);
        RUN(test_resources_socket_path);
        RUN(test_resources_ids);
        RUN(test_resources_enabled_and_present);
        return unit_done();
}
