/* test_edits.c - the container edits per kind and driver generation (src/sgx/edits.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edits.h"
#include "fake_nodes.h"
#include "unit.h"

/* "host=c0,c1;host=c0" for comparison. */
static void describe(const struct sgx_edits *e, char *buf, size_t size) {
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < e->n_devices; i++) {
                const struct sgx_device_edit *dev = &e->devices[i];

                off += (size_t) snprintf(buf + off, size - off, "%s%s %u:%u %s=", i ? ";" : "",
                                         dev->host_path, dev->major, dev->minor, dev->permissions);
                for (size_t j = 0; j < dev->n_container_paths; j++)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s", j ? "," : "",
                                                 dev->container_paths[j]);
        }
}

static void test_edits_in_kernel_dcap_maps_both_names_and_provisioning(void) {
        struct discovery d = node_in_kernel();
        struct sgx_edit_config cfg = {.provision = true};
        struct sgx_edits e;
        char s[512];

        CHECK_INT(sgx_edits_for(SGX_KIND_DCAP, &cfg, &d, &e), 0);
        describe(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave 10:125 rw=/dev/sgx_enclave,/dev/sgx/enclave;"
                     "/dev/sgx_provision 10:126 rw=/dev/sgx_provision,/dev/sgx/provision");
        CHECK_INT(sgx_edits_n_specs(&e), 4);
        CHECK_INT(e.n_mounts, 0);
        sgx_edits_host_paths(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave, /dev/sgx_provision");
        /* SGX is DCAP when the node has it */
        CHECK_INT(sgx_edits_for(SGX_KIND_SGX, &cfg, &d, &e), 0);
        CHECK_INT(sgx_edits_n_specs(&e), 4);
}

static void test_edits_no_provision_and_aesmd_mount(void) {
        struct discovery d = node_in_kernel();
        struct sgx_edit_config cfg = {.provision = false, .aesmd_dir = "/var/run/aesmd"};
        struct sgx_edits e;

        CHECK_INT(sgx_edits_for(SGX_KIND_DCAP, &cfg, &d, &e), 0);
        CHECK_INT(e.n_devices, 1);
        CHECK_INT(e.n_mounts, 1);
        CHECK_STR(e.mounts[0].host_path, "/var/run/aesmd");
        CHECK_STR(e.mounts[0].container_path, "/var/run/aesmd");
        /* the provisioning kind maps the provisioning device alone, whatever --no-provision */
        CHECK_INT(sgx_edits_for(SGX_KIND_PROVISION, &cfg, &d, &e), 0);
        CHECK_INT(e.n_devices, 1);
        CHECK_STR(e.devices[0].host_path, "/dev/sgx_provision");
}

static void test_edits_legacy_and_ias(void) {
        struct discovery d = {0};
        struct sgx_edit_config cfg = {.provision = true};
        struct sgx_edits e;
        char s[512];

        set_node(&d.dcap_enclave, "/dev/sgx", 10, 60);
        set_node(&d.dcap_provision, "/dev/sgx_prv", 10, 61);
        d.dcap_legacy = true;
        CHECK_INT(sgx_edits_for(SGX_KIND_DCAP, &cfg, &d, &e), 0);
        describe(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/sgx 10:60 rw=/dev/sgx;/dev/sgx_prv 10:61 rw=/dev/sgx_prv");
        CHECK_INT(sgx_edits_for(SGX_KIND_IAS, &cfg, &d, &e), -ENODEV);
        CHECK_INT(e.n_devices, 0);

        memset(&d, 0, sizeof(d));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        CHECK_INT(sgx_edits_for(SGX_KIND_SGX, &cfg, &d, &e), 0);
        describe(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/isgx 10:57 rw=/dev/isgx");
        CHECK_INT(sgx_edits_for(SGX_KIND_DCAP, &cfg, &d, &e), -ENODEV);
        CHECK_INT(sgx_edits_for(SGX_KIND_MAX, &cfg, &d, &e), -EINVAL);
}

static void test_edits_compat_kinds(void) {
        struct discovery d = node_in_kernel();
        struct sgx_edit_config cfg = {.provision = true};
        struct sgx_edits e;
        char s[512];

        /* Intel's enclave resource: the enclave alone, whatever the provisioning setting */
        CHECK_INT(sgx_edits_for(SGX_KIND_INTEL_ENCLAVE, &cfg, &d, &e), 0);
        describe(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_enclave 10:125 rw=/dev/sgx_enclave,/dev/sgx/enclave");
        CHECK_INT(sgx_edits_for(SGX_KIND_INTEL_PROVISION, &cfg, &d, &e), 0);
        describe(&e, s, sizeof(s));
        CHECK_STR(s, "/dev/sgx_provision 10:126 rw=/dev/sgx_provision,/dev/sgx/provision");
        /* the EPC-per-MiB kinds: enclave and provisioning, as for dcap */
        for (enum sgx_kind k = SGX_KIND_AZURE_EPC; k <= SGX_KIND_ALIBABA_EPC; k++) {
                CHECK_INT(sgx_edits_for(k, &cfg, &d, &e), 0);
                CHECK_INT(e.n_devices, 2);
        }
        /* an IAS-only node has none of them */
        memset(&d, 0, sizeof(d));
        set_node(&d.ias_enclave, "/dev/isgx", 10, 57);
        for (enum sgx_kind k = SGX_KIND_INTEL_ENCLAVE; k < SGX_KIND_MAX; k++)
                CHECK_INT(sgx_edits_for(k, &cfg, &d, &e), -ENODEV);
}

int main(void) {
        RUN(test_edits_in_kernel_dcap_maps_both_names_and_provisioning);
        RUN(test_edits_no_provision_and_aesmd_mount);
        RUN(test_edits_legacy_and_ias);
        RUN(test_edits_compat_kinds);
        return unit_done();
}
